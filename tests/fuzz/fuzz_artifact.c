/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the streaming artifact reader: the input is an artifact file. It is read to
 * the end without keys, with one ECDSA public key (so the signature path runs too), and once
 * more with the manifest's checksums of version and header fixed up to match the mutated bytes,
 * so that mutations inside the header reach the tar and JSON parsers behind the checksum.
 * Runs under libFuzzer (MOLT_FUZZ) and, over the committed corpus, as an ordinary test through
 * corpus_driver.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact/reader.h"
#include "artifact/source.h"
#include "util/encoding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key that signed the signed seeds in tests/fuzz/corpus/artifact/ (its private half is not
 * kept: the seeds are data, not something to regenerate). */
static const char fuzz_pub_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErIHLK2rD62jf6HQasvGcXvLu6mGo\n"
    "IP8FVyDDaaBI3ShWWmVhh4zjxxpCZb7aLMmIgRvER/8Zss3TL/IQ/w5AfQ==\n"
    "-----END PUBLIC KEY-----\n";

static char key_path[64];

static void remove_key(void)
{
    unlink(key_path);
}

/* Writes the public key to a temporary file once; returns its path, or NULL if that failed
 * (then only the keyless pass runs). */
static const char *fuzz_key(void)
{
    static int state; /* 0 = not tried, 1 = ready, -1 = failed */
    if (state == 0) {
        state = -1;
        snprintf(key_path, sizeof key_path, "/tmp/molt-fuzz-key.XXXXXX");
        int fd = mkstemp(key_path);
        if (fd >= 0) {
            size_t n = sizeof fuzz_pub_pem - 1;
            if (write(fd, fuzz_pub_pem, n) == (ssize_t)n) {
                state = 1;
                atexit(remove_key);
            } else {
                unlink(key_path);
            }
            close(fd);
        }
    }
    return state == 1 ? key_path : NULL;
}

/* Opens the artifact and reads every payload file to its end (through the zero-copy call or
 * through a small copy buffer), then the rest of the artifact. */
static void read_all(const uint8_t *data, size_t size, const molt_artifact_opts *opts,
                     int zero_copy)
{
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    molt_err err = {0};
    const char *name;
    int64_t fsize;
    int rc;

    if (molt_source_mem_new(&src, data, size, &err) < 0)
        return;
    if (molt_artifact_reader_open(&r, src, opts, &err) < 0)
        goto out;
    (void)molt_artifact_reader_info(r);
    while ((rc = molt_artifact_reader_next(r, &name, &fsize, &err)) == 1) {
        unsigned char copy[4096];
        const void *buf;
        ssize_t n;
        do
            n = zero_copy ? molt_artifact_reader_read_block(r, &buf, &err)
                          : molt_artifact_reader_read(r, copy, sizeof copy, &err);
        while (n > 0);
        if (n < 0)
            goto out;
    }
    if (rc == 0)
        (void)molt_artifact_reader_finish(r, &err);
out:
    molt_artifact_reader_free(r);
    molt_source_free(src);
}

/* Where an outer member's content lies, found by walking the ustar headers; 0 if not found. */
static int find_member(const uint8_t *data, size_t size, const char *prefix, size_t *ret_off,
                       size_t *ret_len, char *ret_name, size_t name_size)
{
    size_t off = 0;
    while (off + 512 <= size && data[off]) {
        char name[101], sz[13];
        memcpy(name, data + off, 100);
        name[100] = '\0';
        memcpy(sz, data + off + 124, 12);
        sz[12] = '\0';
        char *end;
        unsigned long long len = strtoull(sz, &end, 8);
        if (end == sz || len > size)
            return 0;
        size_t content = off + 512;
        if (strncmp(name, prefix, strlen(prefix)) == 0 && content + len <= size) {
            *ret_off = content;
            *ret_len = (size_t)len;
            snprintf(ret_name, name_size, "%s", name);
            return 1;
        }
        off = content + (size_t)((len + 511) / 512 * 512);
    }
    return 0;
}

/* In the manifest (inside buf), set the checksum of the line naming `name` to that of the
 * member's bytes. */
static void fix_line(uint8_t *buf, size_t man_off, size_t man_len, const char *name,
                     const uint8_t *content, size_t content_len)
{
    char want[128];
    int n = snprintf(want, sizeof want, "  %s\n", name);
    if (n <= 0 || (size_t)n >= sizeof want)
        return;
    for (size_t i = 64; i + (size_t)n <= man_len; i++) {
        if (memcmp(buf + man_off + i, want, (size_t)n) == 0 &&
            (i == 64 || buf[man_off + i - 65] == '\n')) {
            unsigned char sum[32];
            char hex[65];
            molt_sha256(content, content_len, sum);
            molt_hex_encode(sum, sizeof sum, hex);
            memcpy(buf + man_off + i - 64, hex, 64);
            return;
        }
    }
}

/* A copy of the input whose manifest lists the real checksums of version and header.tar*;
 * NULL when the input has no such members. Caller frees. */
static uint8_t *with_fixed_checksums(const uint8_t *data, size_t size)
{
    size_t man_off, man_len, off, len;
    char name[101];
    if (!find_member(data, size, "manifest", &man_off, &man_len, name, sizeof name) ||
        strcmp(name, "manifest") != 0)
        return NULL;
    uint8_t *buf = malloc(size);
    if (!buf)
        return NULL;
    memcpy(buf, data, size);
    if (find_member(data, size, "version", &off, &len, name, sizeof name))
        fix_line(buf, man_off, man_len, "version", data + off, len);
    if (find_member(data, size, "header.tar", &off, &len, name, sizeof name))
        fix_line(buf, man_off, man_len, name, data + off, len);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    molt_artifact_opts no_keys = {0};
    read_all(data, size, &no_keys, 1);

    const char *key = fuzz_key();
    if (key) {
        const char *keys[] = {key};
        molt_artifact_opts with_key = {.verify_keys = keys, .n_verify_keys = 1};
        read_all(data, size, &with_key, 0);
    }

    uint8_t *fixed = with_fixed_checksums(data, size);
    if (fixed) {
        read_all(fixed, size, &no_keys, 1);
        free(fixed);
    }
    return 0;
}
