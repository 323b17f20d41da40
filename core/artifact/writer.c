/* SPDX-License-Identifier: Apache-2.0 */
/* molt_artifact_write: Mender Artifact v3 laid out like mender-artifact 3.9 (docs/reference §1.1-§1.7):
 * header built in memory, payload streamed into data/0000.tar* whose outer size is patched. */
#include "artifact/writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "artifact/tar_write.h"
#include "trust/signature.h"
#include "util/crypto_lib.h"
#include "util/encoding.h"
#include "util/fs.h"

#define VERSION_JSON "{\"format\":\"mender\",\"version\":3}"
#define MAX_STRING_CHARS 256
#define COPY_BUF_SIZE (64 * 1024)

/* ---- JSON the way Go's encoding/json writes it ------------------------------------------- */

/* A growable byte buffer with a hard maximum. */
typedef struct buf {
    char *data;
    size_t len, cap, max;
    bool failed;
} buf;

static void buf_add(buf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        if (b->len + n + 1 > cap) {
            b->failed = true;
            return;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_str(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* A JSON string with Go's escaping: <, >, & and U+2028/U+2029 as \u escapes. */
static void go_string(buf *b, const char *s, size_t len)
{
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_add(b, esc, 2);
        } else if (c == '\n') {
            buf_add(b, "\\n", 2);
        } else if (c == '\r') {
            buf_add(b, "\\r", 2);
        } else if (c == '\t') {
            buf_add(b, "\\t", 2);
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_add(b, esc, 6);
        } else if (c == 0xe2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            buf_str(b, (unsigned char)s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
            i += 2;
        } else {
            buf_add(b, &s[i], 1);
        }
    }
    buf_add(b, "\"", 1);
}

/* A float64 as Go's encoding/json prints it: the shortest digits that read back to the same
 * value, %f style unless the magnitude is below 1e-6 or at least 1e21. */
static void go_number(buf *b, double v)
{
    char tmp[64], out[400];
    if (!isfinite(v)) {
        buf_str(b, "null"); /* Go refuses these; jansson cannot produce them */
        return;
    }
    if (v == 0) {
        buf_str(b, signbit(v) ? "-0" : "0");
        return;
    }
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    /* tmp = [-]d[.ddd]e[+-]XX: collect the digits and the exponent */
    char digits[32];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    double a = fabs(v);
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (a < 1e-6 || a >= 1e21) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        /* Go writes at least two exponent digits, then trims "e-0X" to "e-X" */
        if (exp10 < 0)
            o += (size_t)snprintf(out + o, sizeof out - o, "e-%d", -exp10);
        else
            o += (size_t)snprintf(out + o, sizeof out - o, "e+%02d", exp10);
    } else if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else if ((size_t)exp10 >= nd - 1) {
        memcpy(out + o, digits, nd);
        o += nd;
        for (int i = 0; i < exp10 - (int)(nd - 1); i++)
            out[o++] = '0';
    } else {
        memcpy(out + o, digits, (size_t)exp10 + 1);
        o += (size_t)exp10 + 1;
        out[o++] = '.';
        memcpy(out + o, digits + exp10 + 1, nd - (size_t)exp10 - 1);
        o += nd - (size_t)exp10 - 1;
    }
    out[o] = '\0';
    buf_str(b, out);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Compact JSON; object keys sorted when sort is true (Go maps), else in insertion order
 * (Go structs). Integers print as integers, reals as Go's float64. */
static void go_json(buf *b, json_t *j, bool sort)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(j), i = 0;
        const char **keys = calloc(n ? n : 1, sizeof *keys);
        if (!keys) {
            b->failed = true;
            return;
        }
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) keys[i++] = k;
        if (sort)
            qsort(keys, n, sizeof *keys, key_cmp);
        buf_add(b, "{", 1);
        for (i = 0; i < n; i++) {
            if (i)
                buf_add(b, ",", 1);
            go_string(b, keys[i], strlen(keys[i]));
            buf_add(b, ":", 1);
            go_json(b, json_object_get(j, keys[i]), sort);
        }
        buf_add(b, "}", 1);
        free(keys);
        break;
    }
    case JSON_ARRAY: {
        buf_add(b, "[", 1);
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                buf_add(b, ",", 1);
            go_json(b, json_array_get(j, i), sort);
        }
        buf_add(b, "]", 1);
        break;
    }
    case JSON_STRING:
        go_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER: {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        buf_str(b, tmp);
        break;
    }
    case JSON_REAL:
        go_number(b, json_real_value(j));
        break;
    case JSON_TRUE:
        buf_str(b, "true");
        break;
    case JSON_FALSE:
        buf_str(b, "false");
        break;
    case JSON_NULL:
        buf_str(b, "null");
        break;
    }
}

/* ---- validation ---------------------------------------------------------------------------- */

/* mender-artifact's rule for names, types, groups, keys: at most 256 characters, printable. */
static int check_string(const char *what, const char *s, bool allow_empty, molt_err *err)
{
    if (!s || (!allow_empty && !*s))
        return molt_err_set(err, MOLT_EINVAL, "%s must not be empty", what);
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return molt_err_set(err, MOLT_EINVAL, "%s \"%s\" contains a control character", what,
                                s);
        if ((*p & 0xc0) != 0x80)
            chars++;
    }
    if (chars > MAX_STRING_CHARS)
        return molt_err_set(err, MOLT_EINVAL, "%s is %zu characters long; at most %d allowed",
                            what, chars, MAX_STRING_CHARS);
    return 0;
}

static int check_strings(const char *what, const char *const *v, size_t n, molt_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int r = check_string(what, v[i], false, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* An object whose values are all strings (what the C++ client accepts in type-info). */
static int check_string_map(const char *what, json_t *obj, molt_err *err)
{
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return molt_err_set(err, MOLT_EINVAL, "%s must be a JSON object", what);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int r = check_string(what, k, false, err);
        if (r < 0)
            return r;
        if (!json_is_string(v))
            return molt_err_set(err, MOLT_EINVAL, "%s: value of \"%s\" must be a string", what, k);
        r = check_string(what, json_string_value(v), true, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Payload names as mender-artifact allows them: ^[\w\-.,]+$ (and not "." or ".."), at most
 * 90 bytes so that "data/0000/<name>" fits a manifest line the C++ client accepts. */
static bool payload_name_ok(const char *name)
{
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strlen(name) > 90)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ','))
            return false;
    }
    return true;
}

/* State script names: Artifact<State>_<Enter|Leave|Error>_NN[...], as mender-artifact checks. */
static bool script_name_ok(const char *name)
{
    static const char *const states[] = {"ArtifactInstall_", "ArtifactReboot_",
                                         "ArtifactCommit_", "ArtifactRollback_",
                                         "ArtifactRollbackReboot_", "ArtifactFailure_"};
    static const char *const actions[] = {"Enter_", "Leave_", "Error_"};
    const char *p = NULL;
    for (size_t i = 0; i < sizeof states / sizeof states[0] && !p; i++)
        if (strncmp(name, states[i], strlen(states[i])) == 0)
            p = name + strlen(states[i]);
    if (!p)
        return false;
    const char *q = NULL;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0] && !q; i++)
        if (strncmp(p, actions[i], strlen(actions[i])) == 0)
            q = p + strlen(actions[i]);
    if (!q || !(q[0] >= '0' && q[0] <= '9') || !(q[1] >= '0' && q[1] <= '9'))
        return false;
    return payload_name_ok(name);
}

static int check_names(const char *what, const char *const *paths, size_t n,
                       bool (*ok)(const char *), const char *rule, molt_err *err)
{
    if (n > MOLT_ARTIFACT_MAX_FILES)
        return molt_err_set(err, MOLT_ELIMIT, "%zu %s given; at most %d allowed", n, what,
                            MOLT_ARTIFACT_MAX_FILES);
    for (size_t i = 0; i < n; i++) {
        const char *b = base_name(paths[i]);
        if (!ok(b))
            return molt_err_set(err, MOLT_EINVAL, "%s name \"%s\" (from %s) is not allowed: %s",
                                what, b, paths[i], rule);
        for (size_t j = 0; j < i; j++)
            if (strcmp(b, base_name(paths[j])) == 0)
                return molt_err_set(err, MOLT_EINVAL, "%s %s and %s have the same name \"%s\"",
                                    what, paths[j], paths[i], b);
    }
    return 0;
}

static int check_spec(const molt_artifact_spec *s, molt_err *err)
{
    int r;
    if ((r = check_string("artifact name", s->name, false, err)) < 0)
        return r;
    if (s->group && (r = check_string("artifact group", s->group, false, err)) < 0)
        return r;
    if (s->n_device_types == 0)
        return molt_err_set(err, MOLT_EINVAL, "at least one device type is required");
    if ((r = check_strings("device type", s->device_types, s->n_device_types, err)) < 0 ||
        (r = check_strings("artifact name depends", s->depends_names, s->n_depends_names, err)) <
            0 ||
        (r = check_strings("artifact group depends", s->depends_groups, s->n_depends_groups,
                           err)) < 0)
        return r;
    if (s->payload_type && (r = check_string("payload type", s->payload_type, false, err)) < 0)
        return r;
    if (!s->payload_type && (s->n_files || s->meta_data || s->empty_meta_data))
        return molt_err_set(err, MOLT_EINVAL, "an empty-payload (bootstrap) artifact cannot have "
                            "payload files or meta-data");
    if ((r = check_string_map("provides", s->provides, err)) < 0 ||
        (r = check_string_map("depends", s->depends, err)) < 0)
        return r;
    if (s->clears) {
        if (!json_is_array(s->clears))
            return molt_err_set(err, MOLT_EINVAL, "clears_artifact_provides must be an array");
        for (size_t i = 0; i < json_array_size(s->clears); i++) {
            json_t *g = json_array_get(s->clears, i);
            if (!json_is_string(g))
                return molt_err_set(err, MOLT_EINVAL, "clears_artifact_provides[%zu] must be a "
                                    "string", i);
            if ((r = check_string("clears_artifact_provides pattern", json_string_value(g), false,
                                  err)) < 0)
                return r;
        }
    }
    if (s->meta_data && !json_is_object(s->meta_data))
        return molt_err_set(err, MOLT_EINVAL, "meta-data must be a JSON object");
    if ((r = check_names("payload file", s->files, s->n_files, payload_name_ok,
                         "only letters, digits and _-., are allowed, at most 90 of them",
                         err)) < 0)
        return r;
    return check_names("state script", s->scripts, s->n_scripts, script_name_ok,
                       "expected Artifact<Install|Reboot|Commit|Rollback|RollbackReboot|Failure>"
                       "_<Enter|Leave|Error>_NN[_description]", err);
}

/* ---- the JSON documents ---------------------------------------------------------------------- */

static void strings_array(buf *b, const char *key, const char *const *v, size_t n, bool *first)
{
    if (!n)
        return;
    if (!*first)
        buf_add(b, ",", 1);
    *first = false;
    go_string(b, key, strlen(key));
    buf_add(b, ":[", 2);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_add(b, ",", 1);
        go_string(b, v[i], strlen(v[i]));
    }
    buf_add(b, "]", 1);
}

/* The payload type, or null for an empty payload. */
static void payload_type_json(buf *b, const molt_artifact_spec *s)
{
    if (s->payload_type)
        go_string(b, s->payload_type, strlen(s->payload_type));
    else
        buf_str(b, "null");
}

static void header_info_json(buf *b, const molt_artifact_spec *s)
{
    buf_str(b, "{\"payloads\":[{\"type\":");
    payload_type_json(b, s);
    buf_str(b, "}],\"artifact_provides\":{\"artifact_name\":");
    go_string(b, s->name, strlen(s->name));
    if (s->group) {
        buf_str(b, ",\"artifact_group\":");
        go_string(b, s->group, strlen(s->group));
    }
    buf_str(b, "},\"artifact_depends\":{");
    bool first = true;
    strings_array(b, "artifact_name", s->depends_names, s->n_depends_names, &first);
    strings_array(b, "device_type", s->device_types, s->n_device_types, &first);
    strings_array(b, "artifact_group", s->depends_groups, s->n_depends_groups, &first);
    buf_str(b, "}}");
}

static void type_info_json(buf *b, const molt_artifact_spec *s)
{
    buf_str(b, "{\"type\":");
    payload_type_json(b, s);
    if (s->depends && json_object_size(s->depends)) {
        buf_str(b, ",\"artifact_depends\":");
        go_json(b, s->depends, true);
    }
    if (s->provides && json_object_size(s->provides)) {
        buf_str(b, ",\"artifact_provides\":");
        go_json(b, s->provides, true);
    }
    if (s->clears && json_array_size(s->clears)) {
        buf_str(b, ",\"clears_artifact_provides\":");
        go_json(b, s->clears, true);
    }
    buf_str(b, "}");
}

/* ---- inner tars: Go's tar header layout, compressed by a libarchive filter ------------------ */

/* Where compressed output goes: a bounded memory buffer (header) or the outer file (data). */
typedef struct sink {
    buf *mem;
    int fd;
    uint64_t written;
    molt_err err;
} sink;

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *data, size_t len)
{
    sink *s = ctx;
    if (s->mem) {
        buf_add(s->mem, data, len);
        if (s->mem->failed) {
            molt_err_set(&s->err, MOLT_ELIMIT, "compressed header is larger than %zu bytes",
                         s->mem->max);
            archive_set_error(a, ENOMEM, "header too large");
            return -1;
        }
    } else if (molt_write_all(s->fd, data, len, &s->err, "data tar") < 0) {
        archive_set_error(a, EIO, "write failed");
        return -1;
    }
    s->written += len;
    return (la_ssize_t)len;
}

/* An inner tar. The tar bytes are ours (tar_write.c lays headers out like Go's archive/tar, so
 * the uncompressed tars match mender-artifact's); libarchive's "raw" format only runs them
 * through the gzip/xz/zstd filter. */
typedef struct ztar {
    struct archive *a;
    sink s;
    uint64_t limit, tar_len; /* uncompressed bytes: maximum and so far */
} ztar;

static int ztar_fail(ztar *z, const char *what, molt_err *err)
{
    if (z->s.err.code)
        return molt_err_set(err, z->s.err.code, "%s: %s", what, z->s.err.msg);
    const char *why = archive_error_string(z->a);
    return molt_err_set(err, MOLT_EIO, "%s: %s", what, why ? why : "libarchive error");
}

static int ztar_open(ztar *z, molt_compression c, buf *mem, int fd, uint64_t limit,
                     const char *what, molt_err *err)
{
    memset(z, 0, sizeof *z);
    /* a missing liblzma or libzstd is said here, before libarchive calls it */
    int lr = molt_compression_load(c, what, err);
    if (lr < 0)
        return lr;
    z->s.mem = mem;
    z->s.fd = fd;
    z->limit = limit;
    z->a = archive_write_new();
    if (!z->a)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory for %s", what);
    int ok = archive_write_set_format_raw(z->a) == ARCHIVE_OK;
    switch (c) {
    case MOLT_COMPRESSION_NONE:
        break;
    case MOLT_COMPRESSION_GZIP:
        /* no timestamp in the gzip header, like Go's gzip writer */
        ok = ok && archive_write_add_filter_gzip(z->a) == ARCHIVE_OK &&
             archive_write_set_filter_option(z->a, "gzip", "timestamp", NULL) == ARCHIVE_OK;
        break;
    case MOLT_COMPRESSION_XZ:
        ok = ok && archive_write_add_filter_xz(z->a) == ARCHIVE_OK;
        break;
    case MOLT_COMPRESSION_ZSTD:
        ok = ok && archive_write_add_filter_zstd(z->a) == ARCHIVE_OK;
        break;
    default:
        ok = 0;
    }
    /* no padding of the compressed stream to 10240-byte records */
    ok = ok && archive_write_set_bytes_per_block(z->a, 0) == ARCHIVE_OK &&
         archive_write_open(z->a, &z->s, NULL, sink_write, NULL) == ARCHIVE_OK;
    struct archive_entry *e = ok ? archive_entry_new() : NULL;
    if (e) {
        archive_entry_set_pathname(e, what);
        archive_entry_set_filetype(e, AE_IFREG);
        ok = archive_write_header(z->a, e) == ARCHIVE_OK;
        archive_entry_free(e);
    }
    if (!ok || !e) {
        int r = ztar_fail(z, what, err);
        archive_write_free(z->a);
        z->a = NULL;
        return r;
    }
    return 0;
}

static int ztar_write(ztar *z, const void *p, size_t n, const char *what, molt_err *err)
{
    if (z->tar_len + n > z->limit)
        return molt_err_set(err, MOLT_ELIMIT, "%s: the tar would exceed %llu bytes", what,
                            (unsigned long long)z->limit);
    z->tar_len += n;
    while (n) {
        la_ssize_t w = archive_write_data(z->a, p, n);
        if (w <= 0)
            return ztar_fail(z, what, err);
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

static int ztar_header(ztar *z, const char *name, uint64_t size, const molt_tar_meta *meta,
                       molt_err *err)
{
    unsigned char block[MOLT_TAR_BLOCK];
    int r = molt_tar_header_fill(block, name, size, meta, err);
    return r < 0 ? r : ztar_write(z, block, sizeof block, name, err);
}

static int ztar_pad(ztar *z, uint64_t size, molt_err *err)
{
    static const unsigned char zero[MOLT_TAR_BLOCK];
    size_t pad = (size_t)(molt_tar_padded(size) - size);
    return pad ? ztar_write(z, zero, pad, "tar padding", err) : 0;
}

/* A member held in memory: mode 0600, uid/gid 0, no owner names, mtime 0. */
static int ztar_add_mem(ztar *z, const char *name, const void *data, size_t len,
                        molt_err *err)
{
    const molt_tar_meta meta = {.mode = 0600};
    int r = ztar_header(z, name, len, &meta, err);
    if (r == 0 && len)
        r = ztar_write(z, data, len, name, err);
    return r < 0 ? r : ztar_pad(z, len, err);
}

/* End the tar (two zero blocks) and flush the compressor. */
static int ztar_close(ztar *z, const char *what, molt_err *err)
{
    static const unsigned char zero[2 * MOLT_TAR_BLOCK];
    int r = ztar_write(z, zero, sizeof zero, what, err);
    if (r == 0 && archive_write_close(z->a) != ARCHIVE_OK)
        r = ztar_fail(z, what, err);
    return r;
}

static void ztar_free(ztar *z)
{
    if (z->a)
        archive_write_free(z->a);
    z->a = NULL;
}

/* Metadata of a member copied from a file: its mode, mtime and owner (with names), like Go's
 * tar.FileInfoHeader. Names go into the caller's buffers. */
static void file_meta(const struct stat *st, molt_tar_meta *m, char uname[32], char gname[32])
{
    char tmp[4096];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    uname[0] = gname[0] = '\0';
    if (getpwuid_r(st->st_uid, &pw, tmp, sizeof tmp, &pwp) == 0 && pwp &&
        strlen(pwp->pw_name) < 32)
        strcpy(uname, pwp->pw_name);
    if (getgrgid_r(st->st_gid, &gr, tmp, sizeof tmp, &grp) == 0 && grp &&
        strlen(grp->gr_name) < 32)
        strcpy(gname, grp->gr_name);
    *m = (molt_tar_meta){.mode = st->st_mode & 07777, .uid = st->st_uid, .gid = st->st_gid,
                         .uname = uname, .gname = gname, .mtime = st->st_mtime};
}

static int open_regular(const char *path, const char *what, int *ret_fd, struct stat *ret_st,
                        molt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                              "cannot open %s %s", what, path);
    if (fstat(fd, ret_st) != 0 || !S_ISREG(ret_st->st_mode)) {
        close(fd);
        return molt_err_set(err, MOLT_EINVAL, "%s %s is not a regular file", what, path);
    }
    *ret_fd = fd;
    return 0;
}

/* ---- the header ------------------------------------------------------------------------------ */

static int add_script(ztar *z, const char *path, molt_err *err)
{
    int fd = -1;
    struct stat st;
    char *data = NULL;
    int r = open_regular(path, "state script", &fd, &st, err);
    if (r < 0)
        return r;
    close(fd);
    size_t len = 0;
    if ((r = molt_read_file(path, MOLT_ARTIFACT_MAX_HEADER_MEMBER, &data, &len, err)) < 0)
        goto out;
    char name[MOLT_ARTIFACT_MAX_NAME + 16], uname[32], gname[32];
    snprintf(name, sizeof name, "scripts/%s", base_name(path));
    molt_tar_meta meta;
    file_meta(&st, &meta, uname, gname);
    if ((r = ztar_header(z, name, len, &meta, err)) == 0 &&
        (len == 0 || (r = ztar_write(z, data, len, name, err)) == 0))
        r = ztar_pad(z, len, err);
out:
    free(data);
    return r;
}

/* header.tar<suffix>, compressed, into hdr (bounded). */
static int build_header(const molt_artifact_spec *spec, buf *hdr, molt_err *err)
{
    ztar z;
    buf doc = {.max = MOLT_ARTIFACT_MAX_HEADER_MEMBER};
    int r = ztar_open(&z, spec->compression, hdr, -1, MOLT_ARTIFACT_MAX_HEADER_TOTAL,
                      "header.tar", err);
    if (r < 0)
        return r;
    header_info_json(&doc, spec);
    if (doc.failed) {
        r = molt_err_set(err, MOLT_ELIMIT, "header-info is too large");
        goto out;
    }
    if ((r = ztar_add_mem(&z, "header-info", doc.data, doc.len, err)) < 0)
        goto out;
    for (size_t i = 0; i < spec->n_scripts; i++)
        if ((r = add_script(&z, spec->scripts[i], err)) < 0)
            goto out;
    doc.len = 0;
    type_info_json(&doc, spec);
    if (doc.failed) {
        r = molt_err_set(err, MOLT_ELIMIT, "type-info is too large");
        goto out;
    }
    if ((r = ztar_add_mem(&z, "headers/0000/type-info", doc.data, doc.len, err)) < 0)
        goto out;
    if (spec->meta_data || spec->empty_meta_data) {
        doc.len = 0;
        if (spec->meta_data)
            go_json(&doc, spec->meta_data, true);
        if (doc.failed) {
            r = molt_err_set(err, MOLT_ELIMIT, "meta-data is larger than %u bytes",
                             MOLT_ARTIFACT_MAX_HEADER_MEMBER);
            goto out;
        }
        if ((r = ztar_add_mem(&z, "headers/0000/meta-data", doc.data, doc.len, err)) < 0)
            goto out;
    }
    r = ztar_close(&z, "header.tar", err);
out:
    ztar_free(&z);
    free(doc.data);
    return r;
}

/* ---- payload files --------------------------------------------------------------------------- */

/* Stream fd through SHA-256; when z is given, also into that tar (at most limit bytes). */
static int stream_file(int fd, const char *path, ztar *z, uint64_t limit, unsigned char sha[32],
                       uint64_t *ret_len, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    unsigned char *chunk = malloc(COPY_BUF_SIZE);
    EVP_MD_CTX *md = crypto->EVP_MD_CTX_new();
    uint64_t total = 0;
    int r = 0;
    if (!chunk || !md || crypto->EVP_DigestInit_ex(md, crypto->EVP_sha256(), NULL) != 1) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory hashing %s", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, COPY_BUF_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot read %s", path);
            goto out;
        }
        if (n == 0)
            break;
        if (z && total + (uint64_t)n > limit) {
            r = molt_err_set(err, MOLT_EIO, "%s grew while the artifact was being written", path);
            goto out;
        }
        total += (uint64_t)n;
        crypto->EVP_DigestUpdate(md, chunk, (size_t)n);
        if (z && (r = ztar_write(z, chunk, (size_t)n, path, err)) < 0)
            goto out;
    }
    crypto->EVP_DigestFinal_ex(md, sha, NULL);
    *ret_len = total;
out:
    crypto->EVP_MD_CTX_free(md);
    free(chunk);
    return r;
}

int molt_artifact_file_sha256(const char *path, unsigned char ret_sha256[32], molt_err *err)
{
    int fd = -1;
    struct stat st;
    uint64_t len;
    int r = open_regular(path, "file", &fd, &st, err);
    if (r < 0)
        return r;
    r = stream_file(fd, path, NULL, 0, ret_sha256, &len, err);
    close(fd);
    return r;
}

typedef struct payload {
    const char *path, *name;
    uint64_t size;
    unsigned char sha256[32];
} payload;

static int hash_payloads(const molt_artifact_spec *spec, payload *p, molt_err *err)
{
    for (size_t i = 0; i < spec->n_files; i++) {
        int fd = -1;
        struct stat st;
        p[i].path = spec->files[i];
        p[i].name = base_name(spec->files[i]);
        int r = open_regular(p[i].path, "payload file", &fd, &st, err);
        if (r < 0)
            return r;
        r = stream_file(fd, p[i].path, NULL, 0, p[i].sha256, &p[i].size, err);
        close(fd);
        if (r < 0)
            return r;
    }
    return 0;
}

/* data/0000.tar<suffix>: the payload files by base name, streamed into fd. */
static int write_data_tar(const molt_artifact_spec *spec, const payload *p, int fd,
                          uint64_t *ret_size, molt_err *err)
{
    ztar z;
    int r = ztar_open(&z, spec->compression, NULL, fd, UINT64_MAX, "data tar", err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < spec->n_files; i++) {
        int in;
        struct stat st;
        if ((r = open_regular(p[i].path, "payload file", &in, &st, err)) < 0)
            goto out;
        char uname[32], gname[32];
        molt_tar_meta meta;
        file_meta(&st, &meta, uname, gname);
        unsigned char sha[32];
        uint64_t len = 0;
        if ((uint64_t)st.st_size != p[i].size)
            r = molt_err_set(err, MOLT_EIO, "%s changed size while the artifact was being "
                             "written", p[i].path);
        else if ((r = ztar_header(&z, p[i].name, p[i].size, &meta, err)) == 0)
            r = stream_file(in, p[i].path, &z, p[i].size, sha, &len, err);
        close(in);
        if (r < 0)
            goto out;
        if (len != p[i].size || memcmp(sha, p[i].sha256, 32) != 0) {
            r = molt_err_set(err, MOLT_EIO, "%s changed while the artifact was being written",
                             p[i].path);
            goto out;
        }
        if ((r = ztar_pad(&z, len, err)) < 0)
            goto out;
    }
    if ((r = ztar_close(&z, "data tar", err)) < 0)
        goto out;
    *ret_size = z.s.written;
out:
    ztar_free(&z);
    return r;
}

/* ---- the outer tar --------------------------------------------------------------------------- */

/* Build time for the header and data members; SOURCE_DATE_EPOCH makes builds reproducible. */
static int64_t build_time(void)
{
    const char *e = getenv("SOURCE_DATE_EPOCH");
    if (e && *e) {
        char *end;
        long long v = strtoll(e, &end, 10);
        if (!*end && v >= 0)
            return v;
    }
    return (int64_t)time(NULL);
}

static void manifest_line(buf *m, const unsigned char sha[32], const char *name)
{
    char hex[65];
    molt_hex_encode(sha, 32, hex);
    buf_str(m, hex);
    buf_str(m, "  ");
    buf_str(m, name);
    buf_str(m, "\n");
}

int molt_artifact_write(const molt_artifact_spec *spec, const char *out_path, molt_err *err)
{
    payload *p = NULL;
    buf hdr = {.max = MOLT_ARTIFACT_MAX_HEADER_TOTAL}, man = {.max = MOLT_ARTIFACT_MAX_MANIFEST};
    char *sig = NULL, *tmp = NULL;
    int fd = -1;
    if (!spec || !out_path)
        return molt_err_set(err, MOLT_EINVAL, "molt_artifact_write: invalid arguments");
    int r = check_spec(spec, err);
    if (r < 0)
        return r;
    const char *suffix = molt_compression_suffix(spec->compression);
    p = calloc(spec->n_files ? spec->n_files : 1, sizeof *p);
    if (!p)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    if ((r = hash_payloads(spec, p, err)) < 0 || (r = build_header(spec, &hdr, err)) < 0)
        goto out;

    char header_name[32], data_name[32];
    snprintf(header_name, sizeof header_name, "header.tar%s", suffix);
    snprintf(data_name, sizeof data_name, "data/0000.tar%s", suffix);
    for (size_t i = 0; i < spec->n_files; i++) {
        char name[MOLT_ARTIFACT_MAX_NAME + 16];
        snprintf(name, sizeof name, "data/0000/%s", p[i].name);
        manifest_line(&man, p[i].sha256, name);
    }
    unsigned char sha[32];
    molt_sha256(hdr.data, hdr.len, sha);
    manifest_line(&man, sha, header_name);
    molt_sha256(VERSION_JSON, strlen(VERSION_JSON), sha);
    manifest_line(&man, sha, "version");
    if (man.failed) {
        r = molt_err_set(err, MOLT_ELIMIT, "manifest is larger than %u bytes",
                         MOLT_ARTIFACT_MAX_MANIFEST);
        goto out;
    }
    if (spec->signing_key &&
        (r = molt_signature_sign(spec->signing_key, man.data, man.len, &sig, err)) < 0) {
        molt_err_prefix(err, "signing the manifest: ");
        goto out;
    }

    if ((r = molt_atomic_open(out_path, 0644, &fd, &tmp, err)) < 0)
        goto out;
    const molt_tar_meta mem_meta = {.mode = 0600};
    /* header and data as mender-artifact copies them from temporary files */
    const molt_tar_meta copied_meta = {.mode = 0600, .uname = "root", .gname = "root",
                                       .mtime = build_time()};
    if ((r = molt_tar_write_member(fd, "version", VERSION_JSON, strlen(VERSION_JSON), &mem_meta,
                                   err)) < 0 ||
        (r = molt_tar_write_member(fd, "manifest", man.data, man.len, &mem_meta, err)) < 0 ||
        (sig && (r = molt_tar_write_member(fd, "manifest.sig", sig, strlen(sig), &mem_meta,
                                           err)) < 0) ||
        (r = molt_tar_write_member(fd, header_name, hdr.data, hdr.len, &copied_meta, err)) < 0)
        goto out;

    /* data member: header with size 0 now, the real size patched in once it is known */
    unsigned char block[MOLT_TAR_BLOCK];
    off_t at = lseek(fd, 0, SEEK_CUR);
    if (at < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot seek in %s", tmp);
        goto out;
    }
    uint64_t data_size = 0;
    if ((r = molt_tar_header_fill(block, data_name, 0, &copied_meta, err)) < 0 ||
        (r = molt_write_all(fd, block, sizeof block, err, data_name)) < 0 ||
        (r = write_data_tar(spec, p, fd, &data_size, err)) < 0 ||
        (r = molt_tar_write_padding(fd, data_size, err)) < 0 ||
        (r = molt_tar_write_end(fd, err)) < 0)
        goto out;
    molt_tar_header_set_size(block, data_size);
    if (pwrite(fd, block, sizeof block, at) != (ssize_t)sizeof block) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot patch the %s header in %s", data_name,
                           tmp);
        goto out;
    }
    r = molt_atomic_commit(fd, tmp, out_path, err);
    fd = -1;
out:
    if (fd >= 0)
        molt_atomic_abort(fd, tmp);
    free(tmp);
    free(sig);
    free(man.data);
    free(hdr.data);
    free(p);
    return r;
}
