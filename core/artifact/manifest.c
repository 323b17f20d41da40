/* SPDX-License-Identifier: Apache-2.0 */
/* Strict parser for the artifact manifest: what it lists is exactly what the reader accepts. */
#include "artifact/manifest.h"

#include <stdlib.h>
#include <string.h>
#include "artifact/tar_in.h"

#define SHA256_HEX 64

bool molt_manifest_file_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > MOLT_ARTIFACT_MAX_NAME)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '/' || ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

molt_manifest_entry *molt_manifest_find(molt_manifest_entry *entries, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(entries[i].name, name) == 0)
            return &entries[i];
    }
    return NULL;
}

void molt_manifest_free(molt_manifest_entry *entries, size_t n)
{
    if (!entries)
        return;
    for (size_t i = 0; i < n; i++)
        free(entries[i].name);
    free(entries);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* What kind of name a manifest line carries: 0 version, 1 header, 2 payload file, -1 other. */
static int classify(const char *name, size_t len)
{
    molt_compression c;
    if (strcmp(name, "version") == 0)
        return 0;
    if (molt_tar_in_compression(name, "header.tar", &c) == 0)
        return 1;
    if (len > 10 && strncmp(name, "data/0000/", 10) == 0 &&
        molt_manifest_file_name_ok(name + 10, len - 10))
        return 2;
    return -1;
}

int molt_manifest_parse(const char *data, size_t len, molt_manifest_entry **ret, size_t *ret_n,
                        molt_err *err)
{
    int rc = 0;
    molt_manifest_entry *entries = NULL;
    size_t n = 0, n_lines = 0, n_files = 0, n_headers = 0;
    char shown[MOLT_ARTIFACT_MAX_NAME + 16];

    if (len == 0)
        return molt_err_set(err, MOLT_EFORMAT, "manifest is empty");
    if (data[len - 1] != '\n')
        return molt_err_set(err, MOLT_EFORMAT,
                            "manifest: the last line does not end with a newline");
    for (size_t i = 0; i < len; i++)
        n_lines += data[i] == '\n';
    if (n_lines > MOLT_ARTIFACT_MAX_FILES + 2)
        return molt_err_set(err, MOLT_ELIMIT, "manifest has %zu lines; the limit is %d",
                            n_lines, MOLT_ARTIFACT_MAX_FILES + 2);
    entries = calloc(n_lines, sizeof *entries);
    if (!entries)
        return molt_err_set(err, MOLT_ENOMEM, "manifest: out of memory");

    const char *line = data;
    for (size_t lineno = 1; lineno <= n_lines; lineno++) {
        const char *end = memchr(line, '\n', (size_t)(data + len - line));
        size_t ll = (size_t)(end - line);
        if (ll < SHA256_HEX + 3 || line[SHA256_HEX] != ' ' || line[SHA256_HEX + 1] != ' ') {
            rc = molt_err_set(err, MOLT_EFORMAT,
                              "manifest line %zu: expected \"<sha256 hex>  <name>\"", lineno);
            goto out;
        }
        unsigned char sum[32];
        for (size_t i = 0; i < 32; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                rc = molt_err_set(err, MOLT_EFORMAT,
                                  "manifest line %zu: the checksum is not 64 lower-case hex "
                                  "digits", lineno);
                goto out;
            }
            sum[i] = (unsigned char)(hi << 4 | lo);
        }
        const char *name = line + SHA256_HEX + 2;
        size_t nl = ll - SHA256_HEX - 2;
        if (nl > MOLT_ARTIFACT_MAX_NAME + 10) {
            rc = molt_err_set(err, MOLT_ELIMIT, "manifest line %zu: name of %zu bytes; the "
                              "limit is %d", lineno, nl, MOLT_ARTIFACT_MAX_NAME + 10);
            goto out;
        }
        char *copy = strndup(name, nl);
        if (!copy) {
            rc = molt_err_set(err, MOLT_ENOMEM, "manifest: out of memory");
            goto out;
        }
        entries[n].name = copy;
        memcpy(entries[n].sha256, sum, sizeof sum);
        n++;
        molt_tar_in_printable(copy, shown, sizeof shown);
        int kind = strlen(copy) == nl ? classify(copy, nl) : -1;
        for (size_t i = 0; kind >= 0 && i < nl; i++) {
            if (copy[i] == ' ' || copy[i] == '\t')
                kind = -1;
        }
        if (kind < 0) {
            rc = molt_err_set(err, MOLT_EFORMAT,
                              "manifest line %zu: unexpected name \"%s\" (expected version, "
                              "header.tar[.gz|.xz|.zst] or data/0000/<file>)", lineno, shown);
            goto out;
        }
        if (kind == 1 && ++n_headers > 1) {
            rc = molt_err_set(err, MOLT_EFORMAT, "manifest line %zu: a second header (%s)",
                              lineno, shown);
            goto out;
        }
        if (kind == 2 && ++n_files > MOLT_ARTIFACT_MAX_FILES) {
            rc = molt_err_set(err, MOLT_ELIMIT, "manifest lists more than %d payload files",
                              MOLT_ARTIFACT_MAX_FILES);
            goto out;
        }
        for (size_t i = 0; i + 1 < n; i++) {
            if (strcmp(entries[i].name, copy) == 0) {
                rc = molt_err_set(err, MOLT_EFORMAT, "manifest line %zu: duplicate entry %s",
                                  lineno, shown);
                goto out;
            }
        }
        line = end + 1;
    }
    *ret = entries;
    *ret_n = n;
    entries = NULL;
out:
    molt_manifest_free(entries, n);
    return rc;
}
