/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming reader for Mender Artifact v3: the outer tar in one pass through libarchive, the
 * small members verified in memory, the payload files streamed and hashed as they are read. */
#include "artifact/reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <archive.h>
#include <archive_entry.h>
#include "artifact/header_parse.h"
#include "artifact/manifest.h"
#include "artifact/read_hash.h"
#include "artifact/tar_in.h"
#include "trust/signature.h"
#include "util/encoding.h"

#define MAX_VERSION 4096
/* Payload bytes pass through SLOTS buffers of up to SLOT_SIZE bytes. 4 x 128 KiB reads as fast
 * as 4 x 256 KiB (gzip and zstd, docs/performance.md); 64 KiB slots made zstd reads ~20% slower.
 * A slot is allocated when it is first filled, and grown (never shrunk) up to what is left of the
 * file, in SLOT_STEP steps: a small artifact's payload takes one small slot from the heap instead
 * of 512 KiB that malloc maps, faults in and unmaps (docs/performance.md). */
#define SLOTS 4
#define SLOT_SIZE (128u << 10)
#define SLOT_STEP (4u << 10)
/* The compressed header member: its uncompressed content is capped separately. */
#define MAX_HEADER_MEMBER_STORED (MOLT_ARTIFACT_MAX_HEADER_TOTAL + (1u << 20))

enum state {
    ST_BETWEEN,     /* no current payload file; the next one (or the end) is ahead */
    ST_IN_FILE,     /* a payload file is being read */
    ST_FILE_END,    /* the current file was read to its end and matched */
    ST_DONE,        /* the whole artifact was checked */
    ST_FAILED,      /* an error happened; every later call repeats it */
};

struct molt_artifact_reader {
    molt_source *src;
    struct archive *outer;
    struct archive *inner;   /* data/0000.tar*, reading from the outer member */
    molt_artifact_info *info;
    enum state state;

    /* What the source told the outer read callback. */
    bool src_eof;
    int src_code;
    molt_err src_err;

    /* The current outer member. */
    char member[MOLT_ARTIFACT_MAX_NAME + 1];
    int64_t member_size, member_pos;
    bool in_member;

    /* data/0000.tar*: its compression, the magic bytes seen so far, and a failure inside the
     * inner read callback (libarchive only learns that it failed). */
    molt_compression data_comp;
    unsigned char magic[8];
    size_t magic_have;
    bool magic_checked;
    int cb_code;
    molt_err cb_err;
    size_t n_files;

    /* The current payload file. */
    char file_name[MOLT_ARTIFACT_MAX_NAME + 1];
    molt_manifest_entry *file_entry;
    int64_t file_size, file_pos;   /* declared size, bytes handed out */
    int64_t archive_pos;           /* bytes taken from libarchive */
    const unsigned char *lb;       /* libarchive's current block, not yet copied */
    size_t lb_len;
    bool entry_eof;

    /* Payload bytes are copied into these slots and hashed on a worker thread. */
    molt_read_hasher *hasher;
    unsigned char *slots[SLOTS];
    size_t slot_cap[SLOTS];        /* bytes allocated at slots[i] */
    uint64_t slot_count;
    uint64_t slot_seq[SLOTS];
    const unsigned char *blk;  /* unread rest of the last block, for molt_artifact_reader_read */
    size_t blk_len;

    int fail_code;
    molt_err fail_err;
};

/* Remember the first failure so that every later call reports it again. */
static int fail(molt_artifact_reader *r, int code, molt_err *err)
{
    molt_artifact_reader_clear_sink(r);   /* a sink has returned for the last time */
    r->state = ST_FAILED;
    r->fail_code = code;
    if (err)
        r->fail_err = *err;
    else
        molt_err_set(&r->fail_err, code, "%s", molt_strerror(code));
    return code;
}

static int failed_again(const molt_artifact_reader *r, molt_err *err)
{
    if (err)
        *err = r->fail_err;
    return r->fail_code;
}

static la_ssize_t outer_read(struct archive *a, void *ud, const void **buf)
{
    molt_artifact_reader *r = ud;
    if (r->src_eof)
        return 0;
    ssize_t n = molt_source_read(r->src, buf, &r->src_err);
    if (n < 0) {
        r->src_code = (int)n;
        archive_set_error(a, EIO, "%s", r->src_err.msg);
        return -1;
    }
    if (n == 0)
        r->src_eof = true;
    return n;
}

/* An error from the outer archive while in (or after) the current member. */
static int outer_error(molt_artifact_reader *r, molt_err *err)
{
    const char *msg = archive_error_string(r->outer);
    if (r->src_code && r->member[0])
        return molt_err_set(err, r->src_code, "%s (while reading %s)", r->src_err.msg,
                            r->member);
    if (r->src_code)
        return molt_err_set(err, r->src_code, "%s", r->src_err.msg);
    if (!r->in_member && !r->member[0]) {
        if (r->src_eof && r->src->offset == 0)
            return molt_err_set(err, MOLT_EFORMAT, "%s is empty, not a Mender artifact",
                                r->src->name);
        return molt_err_set(err, MOLT_EFORMAT, "%s is not a Mender artifact (not a tar archive: "
                            "%s)", r->src->name, msg ? msg : "unknown error");
    }
    /* Also when libarchive failed skipping the unread rest of the member. */
    if (r->in_member && r->member_pos < r->member_size)
        return molt_err_set(err, MOLT_EFORMAT, "artifact truncated in %s (a member of %lld bytes)",
                            r->member, (long long)r->member_size);
    if (r->src_eof && msg && strstr(msg, "runcated"))
        return molt_err_set(err, MOLT_EFORMAT, "artifact truncated after %s", r->member);
    return molt_err_set(err, MOLT_EFORMAT, "artifact: bad tar data after %s: %s", r->member,
                        msg ? msg : "unknown error");
}

/* Move to the next outer member: 1 with r->member set, 0 at the end of the artifact. */
static int outer_next(molt_artifact_reader *r, molt_err *err)
{
    struct archive_entry *e;
    const char *name;
    int rc = archive_read_next_header(r->outer, &e);
    if (rc == ARCHIVE_EOF) {
        r->in_member = false;
        return 0;
    }
    if (rc != ARCHIVE_OK)
        return outer_error(r, err);
    rc = molt_tar_in_check_entry(e, "artifact", &name, err);
    if (rc < 0)
        return rc;
    snprintf(r->member, sizeof r->member, "%s", name);
    r->member_size = archive_entry_size(e);
    r->member_pos = 0;
    r->in_member = true;
    return 1;
}

/* libarchive's next non-empty data block of the current entry of a, which must continue at *pos
 * and end by size (tar entries we accept have no holes): ENTRY_BLOCK with the block,
 * ENTRY_END, ENTRY_ARCHIVE_ERROR (message in a) or ENTRY_HOLE. */
enum { ENTRY_BLOCK = 1, ENTRY_END = 0, ENTRY_ARCHIVE_ERROR = -1, ENTRY_HOLE = -2 };
static int entry_block(struct archive *a, int64_t *pos, int64_t size, const void **ret_buf,
                       size_t *ret_len)
{
    for (;;) {
        const void *b;
        size_t n;
        la_int64_t off;
        int rc = archive_read_data_block(a, &b, &n, &off);
        if (rc == ARCHIVE_EOF)
            return ENTRY_END;
        if (rc != ARCHIVE_OK)
            return ENTRY_ARCHIVE_ERROR;
        if (off != *pos || (int64_t)n > size - *pos)
            return ENTRY_HOLE;
        *pos += (int64_t)n;
        if (n > 0) {
            *ret_buf = b;
            *ret_len = n;
            return ENTRY_BLOCK;
        }
    }
}

/* Next block of the current outer member: 1 with the block, 0 at its end. */
static int outer_block(molt_artifact_reader *r, const void **ret_buf, size_t *ret_len,
                       molt_err *err)
{
    switch (entry_block(r->outer, &r->member_pos, r->member_size, ret_buf, ret_len)) {
    case ENTRY_BLOCK:
        return 1;
    case ENTRY_END:
        if (r->member_pos != r->member_size)
            return molt_err_set(err, MOLT_EFORMAT, "artifact truncated in %s (%lld of %lld bytes)",
                                r->member, (long long)r->member_pos,
                                (long long)r->member_size);
        return 0;
    case ENTRY_ARCHIVE_ERROR:
        return outer_error(r, err);
    default:
        return molt_err_set(err, MOLT_EFORMAT, "%s: holes or overlaps in the tar member",
                            r->member);
    }
}

/* The whole current outer member, if it is at most cap bytes, in a new NUL-terminated buffer. */
static int outer_slurp(molt_artifact_reader *r, size_t cap, unsigned char **ret, size_t *ret_len,
                       molt_err *err)
{
    unsigned char *buf;
    size_t len = 0;
    int rc;
    if (r->member_size > (int64_t)cap)
        return molt_err_set(err, MOLT_ELIMIT, "%s is %lld bytes; the limit is %zu", r->member,
                            (long long)r->member_size, cap);
    buf = malloc((size_t)r->member_size + 1);
    if (!buf)
        return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", r->member);
    for (;;) {
        const void *b;
        size_t n;
        rc = outer_block(r, &b, &n, err);
        if (rc < 0) {
            free(buf);
            return rc;
        }
        if (rc == 0)
            break;
        memcpy(buf + len, b, n);
        len += n;
    }
    buf[len] = '\0';
    *ret = buf;
    *ret_len = len;
    return 0;
}

static int check_sum(const molt_manifest_entry *entry, const unsigned char actual[32],
                     const char *what, molt_err *err)
{
    if (memcmp(entry->sha256, actual, 32) == 0)
        return 0;
    char want[65], got[65];
    molt_hex_encode(entry->sha256, 32, want);
    molt_hex_encode(actual, 32, got);
    return molt_err_set(err, MOLT_ECHECKSUM, "%s: checksum mismatch: manifest says %s, content "
                        "is %s", what, want, got);
}

static int read_version(molt_artifact_reader *r, unsigned char **ret, size_t *ret_len,
                        molt_err *err)
{
    unsigned char *buf = NULL;
    size_t len;
    json_t *j = NULL;
    json_error_t je;
    int rc = outer_next(r, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return molt_err_set(err, MOLT_EFORMAT, "%s is not a Mender artifact: no members",
                            r->src->name);
    if (strcmp(r->member, "version") != 0)
        return molt_err_set(err, MOLT_EFORMAT,
                            "version must be the first member of an artifact; found %s",
                            r->member);
    rc = outer_slurp(r, MAX_VERSION, &buf, &len, err);
    if (rc < 0)
        return rc;
    j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        rc = molt_err_set(err, MOLT_EFORMAT, "version: invalid JSON at line %d, column %d: %s",
                          je.line, je.column, je.text);
        goto out;
    }
    json_t *format = json_object_get(j, "format");
    json_t *version = json_object_get(j, "version");
    if (!json_is_object(j) || !json_is_string(format) || !json_is_integer(version)) {
        rc = molt_err_set(err, MOLT_EFORMAT,
                          "version: expected {\"format\":\"mender\",\"version\":3}");
        goto out;
    }
    if (strcmp(json_string_value(format), "mender") != 0) {
        char shown[64];
        molt_tar_in_printable(json_string_value(format), shown, sizeof shown);
        rc = molt_err_set(err, MOLT_EUNSUPPORTED,
                          "artifact format \"%s\" is not supported; molt reads Mender Artifact "
                          "format version 3", shown);
        goto out;
    }
    if (json_integer_value(version) != 3) {
        rc = molt_err_set(err, MOLT_EUNSUPPORTED,
                          "artifact format version %lld is not supported; molt reads Mender "
                          "Artifact format version 3", (long long)json_integer_value(version));
        goto out;
    }
    if (json_object_size(j) != 2) {
        rc = molt_err_set(err, MOLT_EFORMAT,
                          "version: unexpected keys besides \"format\" and \"version\"");
        goto out;
    }
    *ret = buf;
    *ret_len = len;
    buf = NULL;
out:
    json_decref(j);
    free(buf);
    return rc;
}

static int verify_signature(molt_artifact_reader *r, const molt_artifact_opts *opts,
                            const unsigned char *manifest, size_t manifest_len,
                            const char *sig, size_t sig_len, molt_err *err)
{
    char detail[640] = "";
    size_t used = 0;
    int code = MOLT_ESIGNATURE;
    bool any_bad_signature = false;

    /* mender-artifact writes no newline, but Go's base64 decoder skips one: accept it. */
    while (sig_len > 0 && (sig[sig_len - 1] == '\n' || sig[sig_len - 1] == '\r'))
        sig_len--;
    for (size_t i = 0; i < opts->n_verify_keys; i++) {
        molt_err kerr = { 0 };
        int rc = molt_signature_verify(opts->verify_keys[i], manifest, manifest_len, sig,
                                       sig_len, &kerr);
        if (rc == 0) {
            r->info->signature_verified = true;
            r->info->verified_by = strdup(opts->verify_keys[i]);
            if (!r->info->verified_by)
                return molt_err_set(err, MOLT_ENOMEM, "manifest.sig: out of memory");
            return 0;
        }
        if (rc == MOLT_ESIGNATURE)
            any_bad_signature = true;
        else
            code = rc;
        if (used + 8 < sizeof detail) {
            int n = snprintf(detail + used, sizeof detail - used, "%s%s", i ? "; " : "",
                             kerr.msg);
            if (n > 0)
                used += (size_t)n;
        }
    }
    if (any_bad_signature)
        code = MOLT_ESIGNATURE;
    return molt_err_set(err, code,
                        "manifest.sig: the signature does not verify with any of the %zu "
                        "configured keys (%s)", opts->n_verify_keys, detail);
}

static int read_header(molt_artifact_reader *r, molt_err *err)
{
    molt_artifact_info *info = r->info;
    unsigned char *buf = NULL;
    size_t len;
    unsigned char sum[32];
    molt_compression c;
    int rc;

    if (molt_tar_in_compression(r->member, "header.tar", &c) < 0)
        return molt_err_set(err, MOLT_EFORMAT, "unexpected member %s where "
                            "header.tar[.gz|.xz|.zst] was expected", r->member);
    molt_manifest_entry *entry = molt_manifest_find(info->manifest, info->n_manifest, r->member);
    if (!entry)
        return molt_err_set(err, MOLT_EFORMAT, "%s is not listed in the manifest", r->member);
    info->compression = c;
    info->header_member = strdup(r->member);
    if (!info->header_member)
        return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", r->member);
    /* Small and capped: hash the stored bytes, compare, and only then decompress. */
    rc = outer_slurp(r, MAX_HEADER_MEMBER_STORED, &buf, &len, err);
    if (rc < 0)
        return rc;
    molt_sha256(buf, len, sum);
    rc = check_sum(entry, sum, r->member, err);
    if (rc == 0) {
        entry->seen = true;
        rc = molt_header_parse(buf, len, c, r->member, info, err);
    }
    free(buf);
    return rc;
}

static la_ssize_t inner_read(struct archive *a, void *ud, const void **ret_buf)
{
    molt_artifact_reader *r = ud;
    const void *b = NULL;
    size_t n = 0;
    int rc = outer_block(r, &b, &n, &r->cb_err);
    if (rc < 0)
        goto failed;
    if (!r->magic_checked) {
        size_t want = molt_tar_in_magic_len(r->data_comp);
        size_t take = want - r->magic_have < n ? want - r->magic_have : n;
        if (take)
            memcpy(r->magic + r->magic_have, b, take);
        r->magic_have += take;
        if (r->magic_have == want || rc == 0) {
            rc = molt_tar_in_check_magic(r->data_comp, r->magic, r->magic_have, r->member,
                                         &r->cb_err);
            if (rc < 0)
                goto failed;
            r->magic_checked = true;
        }
    }
    *ret_buf = b;
    return (la_ssize_t)n;
failed:
    r->cb_code = rc;
    archive_set_error(a, EIO, "%s", r->cb_err.msg);
    return -1;
}

/* An error from the data tar: the callback's own if it failed, else libarchive's. */
static int inner_error(molt_artifact_reader *r, const char *what, molt_err *err)
{
    if (r->cb_code)
        return molt_err_set(err, r->cb_code, "%s", r->cb_err.msg);
    const char *msg = archive_error_string(r->inner);
    return molt_err_set(err, MOLT_EFORMAT, "%s: %s", what, msg ? msg : "unknown error");
}

static int open_data(molt_artifact_reader *r, molt_err *err)
{
    int rc = molt_tar_in_compression(r->member, "data/0000.tar", &r->data_comp);
    if (rc < 0)
        return molt_err_set(err, MOLT_EFORMAT, "unexpected member %s after %s", r->member,
                            r->info->header_member);
    r->magic_checked = molt_tar_in_magic_len(r->data_comp) == 0;
    rc = molt_tar_in_new(&r->inner, r->data_comp, true, r->member, err);
    if (rc < 0)
        return rc;
    if (archive_read_open(r->inner, r, NULL, inner_read, NULL) != ARCHIVE_OK) {
        char what[sizeof r->member + 48];
        snprintf(what, sizeof what, "%s: not a tar archive inside", r->member);
        return inner_error(r, what, err);
    }
    return molt_tar_in_check_filter(r->inner, r->data_comp, r->member, err);
}

/* What follows the header: augment members are refused, data/0000.tar* is opened. */
static int after_header(molt_artifact_reader *r, molt_err *err)
{
    int rc = outer_next(r, err);
    if (rc <= 0)
        return rc;   /* no data member: allowed, the manifest decides at the end */
    if (strncmp(r->member, "header-augment", 14) == 0)
        return molt_err_set(err, MOLT_EUNSUPPORTED,
                            "augmented artifacts are not supported (found %s)", r->member);
    if (strncmp(r->member, "data/", 5) == 0 && strncmp(r->member, "data/0000.", 10) != 0)
        return molt_err_set(err, MOLT_EUNSUPPORTED,
                            "%s: artifacts with more than one payload are not supported",
                            r->member);
    return open_data(r, err);
}

int molt_artifact_reader_open(molt_artifact_reader **ret, molt_source *src,
                              const molt_artifact_opts *opts, molt_err *err)
{
    static const molt_artifact_opts no_opts = { NULL, 0 };
    molt_artifact_reader *r = NULL;
    unsigned char *version = NULL, *manifest = NULL, *sig = NULL;
    size_t version_len = 0, manifest_len = 0, sig_len = 0;
    int rc;

    if (!ret || !src)
        return molt_err_set(err, MOLT_EINVAL, "molt_artifact_reader_open: no source");
    if (!opts)
        opts = &no_opts;
    r = calloc(1, sizeof *r);
    if (!r)
        return molt_err_set(err, MOLT_ENOMEM, "artifact reader: out of memory");
    r->src = src;
    r->info = molt_artifact_info_new();
    r->outer = archive_read_new();
    if (!r->info || !r->outer) {
        rc = molt_err_set(err, MOLT_ENOMEM, "artifact reader: out of memory");
        goto out;
    }
    r->info->format_version = 3;
    /* The outer container is a plain tar: no decompression at this level. */
    archive_read_support_format_tar(r->outer);
    if (archive_read_open(r->outer, r, NULL, outer_read, NULL) != ARCHIVE_OK) {
        rc = outer_error(r, err);
        goto out;
    }

    rc = read_version(r, &version, &version_len, err);
    if (rc < 0)
        goto out;

    rc = outer_next(r, err);
    if (rc < 0)
        goto out;
    if (rc == 0 || strcmp(r->member, "manifest") != 0) {
        rc = rc == 0 ? molt_err_set(err, MOLT_EFORMAT, "artifact truncated after version: no "
                                    "manifest")
                     : molt_err_set(err, MOLT_EFORMAT, "manifest must follow version; found %s",
                                    r->member);
        goto out;
    }
    rc = outer_slurp(r, MOLT_ARTIFACT_MAX_MANIFEST, &manifest, &manifest_len, err);
    if (rc < 0)
        goto out;
    rc = molt_manifest_parse((const char *)manifest, manifest_len, &r->info->manifest,
                             &r->info->n_manifest, err);
    if (rc < 0)
        goto out;

    rc = outer_next(r, err);
    if (rc < 0)
        goto out;
    if (rc > 0 && strcmp(r->member, "manifest.sig") == 0) {
        r->info->is_signed = true;
        rc = outer_slurp(r, MOLT_ARTIFACT_MAX_SIGNATURE, &sig, &sig_len, err);
        if (rc < 0)
            goto out;
        rc = outer_next(r, err);
        if (rc < 0)
            goto out;
    }
    int more = rc;

    /* The signature covers the manifest, and through it everything else: check it first. */
    if (opts->n_verify_keys > 0) {
        if (!sig) {
            rc = molt_err_set(err, MOLT_ESIGNATURE,
                              "artifact is not signed, but verify keys are configured");
            goto out;
        }
        rc = verify_signature(r, opts, manifest, manifest_len, (const char *)sig, sig_len, err);
        if (rc < 0)
            goto out;
    }

    molt_manifest_entry *ve = molt_manifest_find(r->info->manifest, r->info->n_manifest,
                                                 "version");
    if (!ve) {
        rc = molt_err_set(err, MOLT_EFORMAT, "version is not listed in the manifest");
        goto out;
    }
    unsigned char sum[32];
    molt_sha256(version, version_len, sum);
    rc = check_sum(ve, sum, "version", err);
    if (rc < 0)
        goto out;
    ve->seen = true;

    if (!more) {
        rc = molt_err_set(err, MOLT_EFORMAT, "artifact truncated after %s: no header",
                          r->member);
        goto out;
    }
    if (strcmp(r->member, "manifest-augment") == 0 ||
        strncmp(r->member, "header-augment", 14) == 0) {
        rc = molt_err_set(err, MOLT_EUNSUPPORTED,
                          "augmented artifacts are not supported (found %s)", r->member);
        goto out;
    }
    rc = read_header(r, err);
    if (rc < 0)
        goto out;
    rc = after_header(r, err);
    if (rc < 0)
        goto out;
    r->state = ST_BETWEEN;
    *ret = r;
    r = NULL;
    rc = 0;
out:
    free(version);
    free(manifest);
    free(sig);
    molt_artifact_reader_free(r);
    return rc;
}

const molt_artifact_info *molt_artifact_reader_info(const molt_artifact_reader *r)
{
    return r ? r->info : NULL;
}

/* Make libarchive's next block of the current payload file the pending one (r->lb): 1, or 0 at
 * the end of the file. */
static int next_archive_block(molt_artifact_reader *r, molt_err *err)
{
    const void *b;
    size_t n;
    char what[2 * MOLT_ARTIFACT_MAX_NAME + 16];
    switch (entry_block(r->inner, &r->archive_pos, r->file_size, &b, &n)) {
    case ENTRY_BLOCK:
        r->lb = b;
        r->lb_len = n;
        return 1;
    case ENTRY_END:
        r->entry_eof = true;
        return 0;
    case ENTRY_ARCHIVE_ERROR:
        snprintf(what, sizeof what, "%s: reading %s", r->member, r->file_name);
        return inner_error(r, what, err);
    default:
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s has holes or overlaps", r->member,
                            r->file_name);
    }
}

/* The code of a failed sink, as the reader's error. */
static int sink_check(molt_artifact_reader *r, molt_err *err)
{
    int rc = molt_read_hasher_sink_code(r->hasher);
    if (rc < 0)
        molt_err_set(err, rc, "data/0000/%s: the payload sink failed: %s", r->file_name,
                     molt_strerror(rc));
    return rc;
}

int molt_artifact_reader_set_sink(molt_artifact_reader *r,
                                  int (*sink)(void *ctx, const void *p, size_t len), void *ctx,
                                  molt_err *err)
{
    if (!r || !sink)
        return molt_err_set(err, MOLT_EINVAL, "molt_artifact_reader_set_sink: no reader or sink");
    if (r->state != ST_IN_FILE || r->file_pos != 0 || r->blk_len != 0)
        return molt_err_set(err, MOLT_ESTATE, "artifact reader: a payload sink is set before "
                            "the first read of a file");
    molt_read_hasher_set_sink(r->hasher, sink, ctx);
    return 0;
}

void molt_artifact_reader_clear_sink(molt_artifact_reader *r)
{
    if (r && r->hasher) {
        molt_read_hasher_drain(r->hasher);
        molt_read_hasher_set_sink(r->hasher, NULL, NULL);
    }
}

/* The end of the current payload file: compare its digest with the manifest. */
static int end_file(molt_artifact_reader *r, molt_err *err)
{
    unsigned char sum[32];
    char what[MOLT_ARTIFACT_MAX_NAME + 16];
    snprintf(what, sizeof what, "data/0000/%s", r->file_name);
    if (r->file_pos != r->file_size)
        return molt_err_set(err, MOLT_EFORMAT, "artifact truncated in %s (%lld of %lld bytes)",
                            what, (long long)r->file_pos, (long long)r->file_size);
    int rc = molt_read_hasher_final(r->hasher, sum, err);
    if (rc < 0 || (rc = sink_check(r, err)) < 0)
        return rc;
    rc = check_sum(r->file_entry, sum, what, err);
    if (rc < 0)
        return rc;
    r->file_entry->seen = true;
    r->state = ST_FILE_END;
    return 0;
}

/* Next block of the current payload file. Decompressed bytes are copied into the next of a
 * few slots, which the hasher thread digests while the caller uses them and libarchive
 * decompresses the following ones; a slot is refilled only once it has been hashed. */
static ssize_t fetch_block(molt_artifact_reader *r, const void **ret_buf, molt_err *err)
{
    size_t idx = (size_t)(r->slot_count % SLOTS);
    size_t filled = 0;
    int rc;

    if (r->slot_count >= SLOTS)
        molt_read_hasher_wait(r->hasher, r->slot_seq[idx]);
    if ((rc = sink_check(r, err)) < 0)
        return fail(r, rc, err);
    size_t cap = 0;   /* stays 0 when the entry has ended and nothing of it is left to copy */
    if (r->lb_len > 0 || !r->entry_eof) {
        /* The slot is idle now (hashed and sunk, and the caller is done with what it returned
         * before). It is grown to what is left of the file and one byte more, so that the block
         * ends where it does with SLOT_SIZE: at the file's end, found in the same fill. */
        uint64_t left = (uint64_t)(r->file_size - r->file_pos);
        size_t want = left >= SLOT_SIZE - SLOT_STEP
                          ? SLOT_SIZE
                          : ((size_t)left + SLOT_STEP) / SLOT_STEP * SLOT_STEP;
        if (r->slot_cap[idx] < want) {
            free(r->slots[idx]);
            r->slot_cap[idx] = 0;
            if (!(r->slots[idx] = malloc(want))) {
                rc = molt_err_set(err, MOLT_ENOMEM, "data/0000/%s: out of memory",
                                  r->file_name);
                return fail(r, rc, err);
            }
            r->slot_cap[idx] = want;
        }
        cap = r->slot_cap[idx];
    }
    unsigned char *slot = r->slots[idx];
    while (filled < cap) {
        if (r->lb_len == 0) {
            if (r->entry_eof)
                break;
            rc = next_archive_block(r, err);
            if (rc < 0)
                return fail(r, rc, err);
            if (rc == 0)
                break;
        }
        size_t take = r->lb_len < cap - filled ? r->lb_len : cap - filled;
        memcpy(slot + filled, r->lb, take);
        r->lb += take;
        r->lb_len -= take;
        filled += take;
    }
    if (filled == 0) {
        rc = end_file(r, err);
        return rc < 0 ? fail(r, rc, err) : 0;
    }
    r->slot_seq[idx] = molt_read_hasher_submit(r->hasher, slot, filled);
    r->slot_count++;
    r->file_pos += (int64_t)filled;
    *ret_buf = slot;
    return (ssize_t)filled;
}

ssize_t molt_artifact_reader_read_block(molt_artifact_reader *r, const void **ret_buf,
                                        molt_err *err)
{
    if (!r || !ret_buf)
        return molt_err_set(err, MOLT_EINVAL, "molt_artifact_reader_read_block: no reader");
    if (r->state == ST_FAILED)
        return failed_again(r, err);
    if (r->state == ST_FILE_END)
        return 0;
    if (r->state != ST_IN_FILE)
        return molt_err_set(err, MOLT_EINVAL, "artifact reader: no current payload file");
    if (r->blk_len > 0) {
        ssize_t n = (ssize_t)r->blk_len;
        *ret_buf = r->blk;
        r->blk_len = 0;
        return n;
    }
    return fetch_block(r, ret_buf, err);
}

ssize_t molt_artifact_reader_read(molt_artifact_reader *r, void *buf, size_t len,
                                  molt_err *err)
{
    if (!r || !buf || len == 0)
        return molt_err_set(err, MOLT_EINVAL, "molt_artifact_reader_read: no buffer");
    if (r->blk_len == 0) {
        const void *b;
        ssize_t n = molt_artifact_reader_read_block(r, &b, err);
        if (n <= 0)
            return n;
        r->blk = b;
        r->blk_len = (size_t)n;
    }
    size_t take = len < r->blk_len ? len : r->blk_len;
    memcpy(buf, r->blk, take);
    r->blk += take;
    r->blk_len -= take;
    return (ssize_t)take;
}

/* The data tar has ended: nothing may follow, and every manifest entry must have been seen. */
static int check_end(molt_artifact_reader *r, molt_err *err)
{
    bool had_data = r->inner != NULL;
    if (r->inner) {
        char data_member[sizeof r->member];
        memcpy(data_member, r->member, sizeof data_member);
        archive_read_free(r->inner);
        r->inner = NULL;
        int rc = outer_next(r, err);
        if (rc < 0)
            return rc;
        if (rc > 0)
            return molt_err_set(err, strncmp(r->member, "data/", 5) == 0 ? MOLT_EUNSUPPORTED
                                                                         : MOLT_EFORMAT,
                                "unexpected member %s after %s%s", r->member, data_member,
                                strncmp(r->member, "data/", 5) == 0
                                    ? " (artifacts with more than one payload are not supported)"
                                    : "");
    }
    for (size_t i = 0; i < r->info->n_manifest; i++) {
        if (!r->info->manifest[i].seen)
            return molt_err_set(err, MOLT_EFORMAT,
                                "manifest lists %s, but the artifact does not contain it%s",
                                r->info->manifest[i].name,
                                had_data ? "" : " (it ends without a data/0000.tar member: "
                                                "truncated?)");
    }
    return 0;
}

/* Check a data tar entry and make it the current payload file. */
static int start_file(molt_artifact_reader *r, struct archive_entry *e, molt_err *err)
{
    const char *name;
    char key[MOLT_ARTIFACT_MAX_NAME + 16];
    int rc = molt_tar_in_check_entry(e, r->member, &name, err);
    if (rc < 0)
        return rc;
    if (!molt_manifest_file_name_ok(name, strlen(name)))
        return molt_err_set(err, MOLT_EFORMAT,
                            "%s: entry \"%s\": payload files must be plain names (no '/', "
                            "not . or ..)", r->member, name);
    if (!r->info->payload_type)
        return molt_err_set(err, MOLT_EFORMAT,
                            "%s: the payload is empty (type null) but contains the file %s",
                            r->member, name);
    if (++r->n_files > MOLT_ARTIFACT_MAX_FILES)
        return molt_err_set(err, MOLT_ELIMIT, "%s: more than %d payload files", r->member,
                            MOLT_ARTIFACT_MAX_FILES);
    snprintf(key, sizeof key, "data/0000/%s", name);
    molt_manifest_entry *entry = molt_manifest_find(r->info->manifest, r->info->n_manifest, key);
    if (!entry)
        return molt_err_set(err, MOLT_EFORMAT, "%s: payload file %s is not listed in the "
                            "manifest", r->member, name);
    if (entry->seen)
        return molt_err_set(err, MOLT_EFORMAT, "%s: payload file %s appears twice", r->member,
                            name);
    if (!r->hasher) {
        rc = molt_read_hasher_new(&r->hasher, err);
        if (rc < 0)
            return rc;
    }
    rc = molt_read_hasher_start(r->hasher, archive_entry_size(e), err);
    if (rc < 0)
        return rc;
    snprintf(r->file_name, sizeof r->file_name, "%s", name);
    r->file_entry = entry;
    r->file_size = archive_entry_size(e);
    r->file_pos = 0;
    r->archive_pos = 0;
    r->lb_len = 0;
    r->entry_eof = false;
    r->blk_len = 0;
    r->state = ST_IN_FILE;
    return 0;
}

int molt_artifact_reader_next(molt_artifact_reader *r, const char **ret_name, int64_t *ret_size,
                              molt_err *err)
{
    int rc;
    if (!r)
        return molt_err_set(err, MOLT_EINVAL, "molt_artifact_reader_next: no reader");
    if (r->state == ST_FAILED)
        return failed_again(r, err);
    if (r->state == ST_DONE)
        return 0;
    if (r->state == ST_IN_FILE) {
        const void *b;
        ssize_t n;
        r->blk_len = 0;
        while ((n = molt_artifact_reader_read_block(r, &b, err)) > 0)
            ;
        if (n < 0)
            return (int)n;
    }
    r->state = ST_BETWEEN;
    if (r->inner) {
        struct archive_entry *e;
        int ar = archive_read_next_header(r->inner, &e);
        if (ar == ARCHIVE_OK) {
            rc = start_file(r, e, err);
            if (rc < 0)
                return fail(r, rc, err);
            if (ret_name)
                *ret_name = r->file_name;
            if (ret_size)
                *ret_size = r->file_size;
            return 1;
        }
        if (ar != ARCHIVE_EOF)
            return fail(r, inner_error(r, r->member, err), err);
    }
    rc = check_end(r, err);
    if (rc < 0)
        return fail(r, rc, err);
    r->state = ST_DONE;
    return 0;
}

int molt_artifact_reader_finish(molt_artifact_reader *r, molt_err *err)
{
    int rc;
    while ((rc = molt_artifact_reader_next(r, NULL, NULL, err)) > 0)
        ;
    return rc;
}

void molt_artifact_reader_free(molt_artifact_reader *r)
{
    if (!r)
        return;
    if (r->inner)
        archive_read_free(r->inner);
    if (r->outer)
        archive_read_free(r->outer);
    molt_artifact_info_free(r->info);
    molt_read_hasher_free(r->hasher);
    for (size_t i = 0; i < SLOTS; i++)
        free(r->slots[i]);
    free(r);
}
