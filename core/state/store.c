/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent store: one JSON object in one file, replaced atomically and checked on load.
 *
 * On-disk format (version 1), chosen so that any torn or altered file is detected:
 *
 *     molt-store 1 <sha256 of DATA, 64 lower-case hex digits> <length of DATA in decimal>\n
 *     DATA
 *
 * DATA is the compact JSON text of the object (keys sorted) followed by one "\n". The header is
 * plain text so a person can read the file with cat; the length catches truncation and
 * trailing garbage, the SHA-256 catches anything else. Saving goes through
 * molt_write_file_atomic, so after a crash the file is the old or the new version, never a mix. */
#include "state/store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/encoding.h"
#include "util/fs.h"

/* The store holds states, provides and a few names: a few KiB. The cap keeps a damaged file
 * from deciding how much we allocate. */
#define STORE_DATA_MAX (16u * 1024 * 1024)
#define STORE_MAGIC "molt-store "
#define STORE_HEADER_MAX 128

/* Parse a decimal number of 1..digits_max digits without sign or leading zeros (except "0"),
 * ending at *end_char. Returns the position after the terminator, NULL if malformed. */
static const char *parse_decimal(const char *p, const char *end, char end_char,
                                 unsigned long long max, unsigned long long *ret)
{
    unsigned long long v = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned)(*p - '0');
        if (v > max)
            return NULL;
        p++;
    }
    if (p == start || p == end || *p != end_char || (p - start > 1 && *start == '0'))
        return NULL;
    *ret = v;
    return p + 1;
}

/* Check the header and the data; fills *ret with the parsed object. */
static int parse_store(const char *path, const char *buf, size_t len, json_t **ret, molt_err *err)
{
    const char *end = buf + len;
    if (len == 0)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s is empty (expected a \"%s%d\" header)",
                            path, STORE_MAGIC, MOLT_STORE_FORMAT);
    if (len < strlen(STORE_MAGIC) || memcmp(buf, STORE_MAGIC, strlen(STORE_MAGIC)) != 0)
        return molt_err_set(err, MOLT_ECORRUPT,
                            "store %s does not start with \"%s\": not a molt store or damaged",
                            path, STORE_MAGIC);
    const char *p = buf + strlen(STORE_MAGIC);
    unsigned long long format;
    const char *after = parse_decimal(p, end, ' ', 1000000, &format);
    if (!after)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: malformed format version in header",
                            path);
    if (format != MOLT_STORE_FORMAT)
        return molt_err_set(err, MOLT_ECORRUPT,
                            "store %s has format version %llu; this molt reads version %d",
                            path, format, MOLT_STORE_FORMAT);
    p = after;
    if (end - p < 65 || p[64] != ' ')
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: header is truncated or malformed "
                            "(expected 64 hex digits of SHA-256)", path);
    /* Lower case only, as written: one file, one spelling, so any altered byte is noticed. */
    bool lower_hex = true;
    for (int i = 0; i < 64; i++)
        lower_hex = lower_hex && ((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'));
    unsigned char want[32];
    if (!lower_hex || molt_hex_decode(p, 64, want, sizeof want) != 0)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: the SHA-256 in the header is not lower-case hex",
                            path);
    p += 65;
    unsigned long long data_len;
    after = parse_decimal(p, end, '\n', STORE_DATA_MAX, &data_len);
    if (!after || after - buf > STORE_HEADER_MAX)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: header is truncated or its length "
                            "is malformed", path);
    p = after;
    size_t have = (size_t)(end - p);
    if (have != data_len)
        return molt_err_set(err, MOLT_ECORRUPT,
                            "store %s is torn: header says %llu bytes of data, file has %zu",
                            path, data_len, have);
    unsigned char got[32];
    molt_sha256(p, have, got);
    if (memcmp(got, want, sizeof got) != 0) {
        char want_hex[65], got_hex[65];
        molt_hex_encode(want, sizeof want, want_hex);
        molt_hex_encode(got, sizeof got, got_hex);
        return molt_err_set(err, MOLT_ECORRUPT,
                            "store %s is corrupt: SHA-256 of the data is %s, header says %s",
                            path, got_hex, want_hex);
    }
    json_error_t jerr;
    json_t *doc = json_loadb(p, have, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: data is not JSON (line %d: %s)",
                            path, jerr.line, jerr.text);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: data is not a JSON object", path);
    }
    *ret = doc;
    return 0;
}

int molt_store_load(const char *path, json_t **ret, molt_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int r = molt_read_file(path, STORE_DATA_MAX + STORE_HEADER_MAX, &buf, &len, err);
    if (r == MOLT_ENOTFOUND) {
        json_t *empty = json_object();
        if (!empty)
            return molt_err_set(err, MOLT_ENOMEM, "out of memory");
        *ret = empty;
        return 0;
    }
    if (r == MOLT_ELIMIT)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s is larger than %u bytes: corrupt",
                            path, STORE_DATA_MAX + STORE_HEADER_MAX);
    if (r != 0) {
        molt_err_prefix(err, "loading the store: ");
        return r;
    }
    r = parse_store(path, buf, len, ret, err);
    free(buf);
    return r;
}

int molt_store_save(const char *path, const json_t *doc, molt_err *err)
{
    if (!json_is_object(doc))
        return molt_err_set(err, MOLT_EINVAL, "store %s: the document to save is not an object",
                            path);
    char *json = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (!json)
        return molt_err_set(err, MOLT_ENOMEM, "store %s: cannot serialise the document", path);
    size_t json_len = strlen(json);
    size_t data_len = json_len + 1;
    char *file = NULL;
    int r = 0;
    if (data_len > STORE_DATA_MAX) {
        r = molt_err_set(err, MOLT_ELIMIT, "store %s: document is %zu bytes, more than %u",
                         path, data_len, STORE_DATA_MAX);
        goto out;
    }
    file = malloc(STORE_HEADER_MAX + data_len);
    if (!file) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory saving store %s", path);
        goto out;
    }
    char *data = file + STORE_HEADER_MAX;
    memcpy(data, json, json_len);
    data[json_len] = '\n';
    unsigned char sum[32];
    char hex[65];
    molt_sha256(data, data_len, sum);
    molt_hex_encode(sum, sizeof sum, hex);
    char header[STORE_HEADER_MAX];
    int hlen = snprintf(header, sizeof header, "%s%d %s %zu\n", STORE_MAGIC, MOLT_STORE_FORMAT,
                        hex, data_len);
    /* Put the header right before the data so one buffer is written. */
    char *start = data - hlen;
    memcpy(start, header, (size_t)hlen);
    r = molt_write_file_atomic(path, start, (size_t)hlen + data_len, 0600, err);
    if (r != 0)
        molt_err_prefix(err, "saving the store: ");
out:
    free(file);
    free(json);
    return r;
}
