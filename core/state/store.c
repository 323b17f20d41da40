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
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/encoding.h"
#include "util/slots.h"
#include "util/fs.h"
#include "util/json.h"

/* The store holds states, provides and a few names: a few KiB. The cap keeps a damaged file
 * from deciding how much we allocate. */
#define STORE_DATA_MAX (16u * 1024 * 1024)
#define STORE_MAGIC "molt-store "
#define STORE_HEADER_MAX 128
#define STORE_SLOTS_SUFFIX ".slots"
#define STORE2_MAGIC "molt-store 2 legacy="

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

/* The store's data (either format): a JSON object, no duplicate keys. */
static int parse_object(const char *path, const char *data, size_t len, json_t **ret,
                        molt_err *err)
{
    json_error_t jerr;
    json_t *doc = molt_json_loadb(data, len, &jerr);
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

/* The legacy file's header (buf: the file, or its first STORE_HEADER_MAX bytes or fewer):
 * sum the SHA-256 of the data it names, *ret_data where the data starts and *ret_data_len its
 * length. */
static int parse_header(const char *path, const char *buf, size_t len, unsigned char sum[32],
                        const char **ret_data, unsigned long long *ret_data_len, molt_err *err)
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
    if (!lower_hex || molt_hex_decode(p, 64, sum, 32) != 0)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: the SHA-256 in the header is not lower-case hex",
                            path);
    p += 65;
    after = parse_decimal(p, end, '\n', STORE_DATA_MAX, ret_data_len);
    if (!after || after - buf > STORE_HEADER_MAX)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: header is truncated or its length "
                            "is malformed", path);
    *ret_data = after;
    return 0;
}

/* Check the legacy header and the data; fills *ret with the parsed object. */
static int parse_store(const char *path, const char *buf, size_t len, json_t **ret, molt_err *err)
{
    const char *p;
    unsigned long long data_len;
    unsigned char want[32];
    int r = parse_header(path, buf, len, want, &p, &data_len, err);
    if (r != 0)
        return r;
    size_t have = (size_t)(buf + len - p);
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
    return parse_object(path, p, have, ret, err);
}

/* The legacy file (format 1, path itself): parsed as it was written up to this release. */
static int load_legacy(const char *path, json_t **ret, molt_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int r = molt_read_file(path, STORE_DATA_MAX + STORE_HEADER_MAX, &buf, &len, err);
    if (r == MOLT_ELIMIT)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s is larger than %u bytes: corrupt",
                            path, STORE_DATA_MAX + STORE_HEADER_MAX);
    if (r != 0) {
        if (r != MOLT_ENOTFOUND)
            molt_err_prefix(err, "loading the store: ");
        return r;
    }
    r = parse_store(path, buf, len, ret, err);
    free(buf);
    return r;
}

/* The identity of the legacy file at path as text, "-" when there is none: "<stat> <sum>", its
 * device, inode, size and modification time, then the first LEGACY_SUM_HEX digits of the SHA-256
 * its header names (the sum is left out of a file whose header is not a store's). A molt of an
 * earlier release replaces the file at every write, so a stat that is not the one the slots
 * file's newest record names means the file was written after that record (by an earlier molt
 * that ran in between: an A/B rollback to it, or a downgrade) or that the same file was copied
 * or its file system's device renumbered (a data dir copied with cp -a or restored from a
 * backup; a data partition whose block device is numbered in another order at the next boot,
 * as mmcblk0 and mmcblk1 can be); the sum tells the two apart, without reading the file unless
 * the stat changed. */
#define LEGACY_SUM_HEX 32
#define LEGACY_STAT_MAX 88   /* the longest stat text (81 characters) and its NUL */
#define LEGACY_ID_MAX MOLT_STORE_LEGACY_ID_MAX   /* a stat, ' ', the sum and the NUL fit */

static int legacy_stat(const char *path, char *buf, size_t cap, bool *exists, molt_err *err)
{
    struct stat st;
    *exists = stat(path, &st) == 0;
    if (!*exists) {
        if (errno != ENOENT)
            return molt_err_errno(err, MOLT_EIO, errno, "cannot stat %s", path);
        snprintf(buf, cap, "-");
        return 0;
    }
    snprintf(buf, cap, "%llx:%llx:%llx:%lld.%09ld", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return 0;
}

/* The sum of the legacy file's header: its first LEGACY_SUM_HEX digits into sum, "" when the
 * file cannot be read or its header is not a store's (such a file is refused if it is ever
 * loaded: parse_store). Only the header is read: the sum is what the file says of itself. */
static void legacy_sum(const char *path, char sum[LEGACY_SUM_HEX + 1])
{
    char head[STORE_HEADER_MAX];
    const char *data;
    unsigned char header_sum[32];
    unsigned long long data_len;
    sum[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return;
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n > 0 && parse_header(path, head, (size_t)n, header_sum, &data, &data_len, NULL) == 0)
        molt_hex_encode(header_sum, LEGACY_SUM_HEX / 2, sum);
}

/* id: stat, then " " and the sum when there is one. */
static void legacy_id_join(char *id, size_t cap, const char *stat_text, const char *sum)
{
    snprintf(id, cap, "%s%s%s", stat_text, *sum ? " " : "", sum);
}

/* Whether identity id has the stat stat_text. */
static bool stat_part_is(const char *id, const char *stat_text)
{
    const char *space = strchr(id, ' ');
    size_t len = space ? (size_t)(space - id) : strlen(id);
    return strlen(stat_text) == len && memcmp(stat_text, id, len) == 0;
}

/* Whether the legacy file is the one recorded (the record's identity): the same stat, or
 * another stat and the recorded sum (a copy of the file, or its device renumbered). A record of
 * molt before the sum (its identity has no ' ') is compared by the stat alone. A legacy file that
 * is gone is no newer than the record (no molt removes it: an earlier release replaces it),
 * unless the record names none. *now gets the file's identity as it is (both parts when it
 * exists), which the next record names. */
static int legacy_unchanged(const char *path, const char *recorded, char *now, size_t cap,
                            bool *same, molt_err *err)
{
    char st[LEGACY_STAT_MAX], sum[LEGACY_SUM_HEX + 1] = "";
    bool exists;
    int r = legacy_stat(path, st, sizeof st, &exists, err);
    if (r != 0)
        return r;
    const char *space = strchr(recorded, ' ');
    bool same_stat = stat_part_is(recorded, st);
    if (same_stat && space) {
        snprintf(now, cap, "%s", recorded);
        *same = true;
        return 0;
    }
    if (exists)
        legacy_sum(path, sum);
    legacy_id_join(now, cap, st, sum);
    *same = same_stat || (!exists && strcmp(recorded, "-") != 0) ||
            (space && *sum && strcmp(space + 1, sum) == 0);
    return 0;
}

static char *slots_path(const char *path)
{
    size_t n = strlen(path);
    char *s = malloc(n + sizeof STORE_SLOTS_SUFFIX);
    if (s) {
        memcpy(s, path, n);
        memcpy(s + n, STORE_SLOTS_SUFFIX, sizeof STORE_SLOTS_SUFFIX);
    }
    return s;
}

/* A record of the slots file: "molt-store 2 legacy=<identity>\n" and the JSON object. */
static int parse_slot_record(const char *spath, const char *buf, size_t len, char *legacy,
                             size_t legacy_cap, json_t **ret, molt_err *err)
{
    const char *nl = memchr(buf, '\n', len);
    size_t magic = strlen(STORE2_MAGIC);
    if (!nl || (size_t)(nl - buf) < magic || memcmp(buf, STORE2_MAGIC, magic) != 0 ||
        (size_t)(nl - buf) - magic >= legacy_cap)
        return molt_err_set(err, MOLT_ECORRUPT, "store %s: the record does not start with "
                            "\"%s\"", spath, STORE2_MAGIC);
    memcpy(legacy, buf + magic, (size_t)(nl - buf) - magic);
    legacy[(size_t)(nl - buf) - magic] = '\0';
    const char *data = nl + 1;
    size_t have = len - (size_t)(data - buf);
    return parse_object(spath, data, have, ret, err);
}

int molt_store_load_info(const char *path, json_t **ret, molt_store_info *info, molt_err *err)
{
    molt_store_info none;
    if (!info)
        info = &none;
    memset(info, 0, sizeof *info);
    info->damaged = -1;
    char *spath = slots_path(path), *buf = NULL;
    if (!spath)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    size_t len = 0;
    molt_slots_read_info si;
    char recorded[LEGACY_ID_MAX], now[LEGACY_ID_MAX];
    bool same = false;
    json_t *doc = NULL;
    int r = molt_slots_read(spath, STORE_DATA_MAX, &buf, &len, &si, err);
    if (r == 0) {
        info->slots_read = true;
        info->slots = si;
    }
    if (r == 0)
        r = parse_slot_record(spath, buf, len, recorded, sizeof recorded, &doc, err);
    if (r == 0)
        r = legacy_unchanged(path, recorded, now, sizeof now, &same, err);
    if (r == 0 && same) {
        snprintf(info->legacy_id, sizeof info->legacy_id, "%s", now);
        info->damaged = si.damaged;
        snprintf(info->why, sizeof info->why, "%s", si.why);
        *ret = doc;
        doc = NULL;
    } else if (r == 0 || r == MOLT_ENOTFOUND) {
        /* No slots file yet (a fresh device, or a data dir of an earlier release), or a legacy
         * file written after the slots file's last record: the legacy file is the newest. */
        info->legacy = true;
        if (r == 0)
            snprintf(info->legacy_id, sizeof info->legacy_id, "%s", now);
        r = load_legacy(path, ret, err);
        if (r == MOLT_ENOTFOUND) {
            *ret = json_object();
            r = *ret ? 0 : molt_err_set(err, MOLT_ENOMEM, "out of memory");
        }
    } else if (r != MOLT_ENOMEM) {
        molt_err_prefix(err, "loading the store: ");
    }
    json_decref(doc);
    free(buf);
    free(spath);
    return r;
}

int molt_store_load(const char *path, json_t **ret, molt_err *err)
{
    return molt_store_load_info(path, ret, NULL, err);
}

/* The legacy file's content for doc (format 1: header with SHA-256 and length, then data). */
static int save_legacy(const char *path, const char *json, size_t json_len,
                       char written[LEGACY_SUM_HEX + 1], molt_err *err)
{
    size_t data_len = json_len + 1;
    char *file = malloc(STORE_HEADER_MAX + data_len);
    if (!file)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory saving store %s", path);
    char *data = file + STORE_HEADER_MAX;
    memcpy(data, json, json_len);
    data[json_len] = '\n';
    unsigned char sum[32];
    char hex[65];
    molt_sha256(data, data_len, sum);
    molt_hex_encode(sum, sizeof sum, hex);
    memcpy(written, hex, LEGACY_SUM_HEX);
    written[LEGACY_SUM_HEX] = '\0';
    char header[STORE_HEADER_MAX];
    int hlen = snprintf(header, sizeof header, "%s%d %s %zu\n", STORE_MAGIC, MOLT_STORE_FORMAT,
                        hex, data_len);
    /* Put the header right before the data so one buffer is written. */
    char *start = data - hlen;
    memcpy(start, header, (size_t)hlen);
    int r = molt_write_file_atomic(path, start, (size_t)hlen + data_len, 0600, err);
    free(file);
    return r;
}

int molt_store_sync(const char *path, molt_err *err)
{
    char *spath = slots_path(path);
    int r = spath ? molt_slots_sync(spath, err) : molt_err_set(err, MOLT_ENOMEM, "out of memory");
    if (r < 0 && r != MOLT_ENOMEM)
        molt_err_prefix(err, "saving the store: ");
    free(spath);
    return r;
}

struct molt_store_writer {
    char *path;
    molt_slots_writer *slots;
    char legacy[LEGACY_ID_MAX];   /* the legacy file's identity; "" until stat'd */
    char known[LEGACY_ID_MAX];    /* its identity as the load found it; "" if not known */
};

int molt_store_writer_new(const char *path, molt_store_writer **ret, molt_err *err)
{
    molt_store_writer *w = calloc(1, sizeof *w);
    char *spath = slots_path(path);
    if (w)
        w->path = strdup(path);
    if (!w || !w->path || !spath || molt_slots_writer_new(spath, &w->slots, err) < 0) {
        free(spath);
        molt_store_writer_free(w);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    free(spath);
    *ret = w;
    return 0;
}

void molt_store_writer_known(molt_store_writer *w, const molt_store_info *info)
{
    if (info->slots_read)
        molt_slots_writer_known(w->slots, &info->slots);
    snprintf(w->known, sizeof w->known, "%s", info->legacy_id);
}

void molt_store_writer_free(molt_store_writer *w)
{
    if (!w)
        return;
    molt_slots_writer_free(w->slots);
    free(w->path);
    free(w);
}

/* The legacy file's identity for the writer's records, taken at its first save and again after
 * a save that wrote the file (written: the sum of what it wrote): the stat, then the sum the
 * load found while the stat is the load's, else the file's. */
static int writer_identity(molt_store_writer *w, const char *written, molt_err *err)
{
    char st[LEGACY_STAT_MAX], sum[LEGACY_SUM_HEX + 1] = "";
    bool exists;
    int r = legacy_stat(w->path, st, sizeof st, &exists, err);
    if (r != 0)
        return r;
    if (*written) {
        snprintf(sum, sizeof sum, "%s", written);
    } else if (exists && w->known[0] && stat_part_is(w->known, st)) {
        snprintf(w->legacy, sizeof w->legacy, "%s", w->known);
        return 0;
    } else if (exists) {
        legacy_sum(w->path, sum);
    }
    legacy_id_join(w->legacy, sizeof w->legacy, st, sum);
    return 0;
}

/* The room before a record's text for its first line ("molt-store 2 legacy=<identity>\n"). */
#define TEXT_ROOM (sizeof STORE2_MAGIC - 1 + sizeof ((molt_store_writer *)0)->legacy + 1)

static int record_text(const molt_record *rec, size_t room, char **ret, size_t *ret_len);

/* Save the text made into buf (json_len bytes after TEXT_ROOM, r its making's result) as the
 * next record; buf is freed. */
static int write_text(molt_store_writer *w, int r, char *buf, size_t json_len, unsigned flags,
                      molt_err *err)
{
    const char *path = w->path;
    size_t magic = strlen(STORE2_MAGIC);
    if (r == MOLT_ELIMIT)
        r = molt_err_set(err, r, "store %s: the document is more than %u bytes", path,
                         STORE_DATA_MAX - 1);
    else if (r < 0)
        r = molt_err_set(err, r, "store %s: cannot serialise the document (%s)", path,
                         r == MOLT_ENOMEM ? "out of memory"
                                          : "a string that is not UTF-8, a value out of range, "
                                            "or nested too deep");
    if (r < 0)
        goto out;
    char *json = buf + TEXT_ROOM;
    char written[LEGACY_SUM_HEX + 1] = "";
    if (flags & MOLT_STORE_HANDOVER) {
        w->legacy[0] = w->known[0] = '\0';   /* a new file: its identity is taken again */
        if ((r = save_legacy(path, json, json_len, written, err)) < 0)
            goto out;
    }
    /* Only molt writes the legacy file while the writer's process holds the lock (an earlier
     * release runs only after a reboot): its identity changes only by our own save_legacy. */
    if (!w->legacy[0] && (r = writer_identity(w, written, err)) < 0)
        goto out;
    size_t llen = strlen(w->legacy);
    size_t n = magic + llen + 1 + json_len + 1;
    char *rec = json - (magic + llen + 1);
    memcpy(rec, STORE2_MAGIC, magic);
    memcpy(rec + magic, w->legacy, llen);
    rec[magic + llen] = '\n';
    json[json_len] = '\n';   /* where the text's '\0' was */
    r = molt_slots_writer_put(w->slots, rec, n, !(flags & MOLT_STORE_LAZY), err);
out:
    if (r < 0 && r != MOLT_ENOMEM)
        molt_err_prefix(err, "saving the store: ");
    free(buf);
    return r;
}

int molt_store_write(molt_store_writer *w, const json_t *doc, unsigned flags, molt_err *err)
{
    if (!json_is_object(doc))
        return molt_err_set(err, MOLT_EINVAL, "store %s: the document to save is not an object",
                            w->path);
    char *buf = NULL;
    size_t len = 0;
    int r = molt_json_dump_sorted(doc, TEXT_ROOM, STORE_DATA_MAX - 1, &buf, &len);
    return write_text(w, r, buf, len, flags, err);
}

int molt_store_save(const char *path, const json_t *doc, unsigned flags, molt_err *err)
{
    molt_store_writer *w = NULL;
    int r = molt_store_writer_new(path, &w, err);
    if (r == 0)
        r = molt_store_write(w, doc, flags, err);
    molt_store_writer_free(w);
    return r;
}

/* ---- the typed record ------------------------------------------------------------------------ */

static const char *const state_names[MOLT_DS_COUNT] = {
    [MOLT_DS_DOWNLOAD] = "Download",
    [MOLT_DS_ARTIFACT_INSTALL] = "ArtifactInstall",
    [MOLT_DS_ARTIFACT_REBOOT] = "ArtifactReboot",
    [MOLT_DS_ARTIFACT_VERIFY_REBOOT] = "ArtifactVerifyReboot",
    [MOLT_DS_ARTIFACT_COMMIT] = "ArtifactCommit",
    [MOLT_DS_ARTIFACT_COMMIT_LEAVE] = "ArtifactCommit_Leave",
    [MOLT_DS_ARTIFACT_ROLLBACK] = "ArtifactRollback",
    [MOLT_DS_ARTIFACT_ROLLBACK_REBOOT] = "ArtifactRollbackReboot",
    [MOLT_DS_ARTIFACT_VERIFY_ROLLBACK_REBOOT] = "ArtifactVerifyRollbackReboot",
    [MOLT_DS_ARTIFACT_FAILURE] = "ArtifactFailure",
    [MOLT_DS_CLEANUP] = "Cleanup",
};

static const char *const pending_names[MOLT_PENDING_COUNT] = {
    [MOLT_PENDING_NONE] = NULL,
    [MOLT_PENDING_COMMIT] = "commit",
    [MOLT_PENDING_REBOOT] = "reboot",
    [MOLT_PENDING_ROLLBACK_REBOOT] = "rollback-reboot",
    [MOLT_PENDING_ROLLBACK] = "rollback",
};

static const char *const answer_names[MOLT_REC_COUNT] = {
    [MOLT_REC_UNSET] = NULL,
    [MOLT_REC_NO] = "no",
    [MOLT_REC_YES] = "yes",
    [MOLT_REC_AUTOMATIC] = "automatic",
};

static const char *const result_names[MOLT_RESULT_COUNT] = {
    [MOLT_RESULT_SUCCESS] = "success",
    [MOLT_RESULT_FAILURE] = "failure",
    [MOLT_RESULT_ROLLED_BACK] = "rolled-back",
};

static const char *const kind_names[] = {
    [MOLT_MODULE_NATIVE] = "native",
    [MOLT_MODULE_EXEC] = "exec",
};
#define KIND_COUNT ((int)(sizeof kind_names / sizeof kind_names[0]))

const char *molt_dep_state_name(molt_dep_state s)
{
    return (int)s >= 0 && s < MOLT_DS_COUNT ? state_names[s] : NULL;
}

const char *molt_pending_name(molt_pending p)
{
    return (int)p >= 0 && p < MOLT_PENDING_COUNT ? pending_names[p] : NULL;
}

const char *molt_rec_answer_name(molt_rec_answer a)
{
    return (int)a >= 0 && a < MOLT_REC_COUNT ? answer_names[a] : NULL;
}

const char *molt_result_name(molt_result r)
{
    return (int)r >= 0 && r < MOLT_RESULT_COUNT ? result_names[r] : NULL;
}

const char *molt_module_kind_name(molt_module_kind k)
{
    return (int)k >= 0 && (int)k < KIND_COUNT ? kind_names[k] : NULL;
}

const char *molt_result_server_status(molt_result r)
{
    return r == MOLT_RESULT_SUCCESS ? "success" : "failure";
}

/* Where the parser is: the store's path for the messages, and the first error. */
typedef struct rparse {
    const char *path;
    molt_err *err;
    int r;
} rparse;

/* Record the first error; later calls are no-ops, so a parse reads as a list of gets. */
__attribute__((format(printf, 4, 5)))
static void rp_fail(rparse *p, const char *where, const char *key, const char *fmt, ...)
{
    if (p->r < 0)
        return;
    char what[MOLT_ERR_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    p->r = molt_err_set(p->err, MOLT_ECORRUPT, "store %s: %s%s%.100s %s", p->path, where,
                        *where && key ? "." : "", key ? key : "", what);
}

static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Every key of obj must be one of allowed (NULL-terminated). */
static void rp_keys(rparse *p, const json_t *obj, const char *where, const char *const *allowed)
{
    const char *key = molt_json_unknown_key(obj, allowed);
    if (key)
        rp_fail(p, where, key, "is not a key molt knows (a newer molt's store, or damaged)");
}

/* The value at key: absent (NULL) is an error when required; JSON null is "absent" when
 * nullable, an error otherwise. */
static const json_t *rp_get(rparse *p, const json_t *obj, const char *where, const char *key,
                            bool required, bool nullable)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            rp_fail(p, where, key, "is missing");
        return NULL;
    }
    if (json_is_null(v)) {
        if (!nullable)
            rp_fail(p, where, key, "is null");
        return NULL;
    }
    return v;
}

static char *rp_str(rparse *p, const json_t *obj, const char *where, const char *key,
                    bool required, bool nullable)
{
    const json_t *v = rp_get(p, obj, where, key, required, nullable);
    if (!v || p->r < 0)
        return NULL;
    if (!json_is_string(v)) {
        rp_fail(p, where, key, "is %s, expected a string", type_word(v));
        return NULL;
    }
    char *s = strdup(json_string_value(v));
    if (!s)
        p->r = molt_err_set(p->err, MOLT_ENOMEM, "out of memory loading the store");
    return s;
}

static bool rp_bool(rparse *p, const json_t *obj, const char *where, const char *key,
                    bool required)
{
    const json_t *v = rp_get(p, obj, where, key, required, false);
    if (v && !json_is_boolean(v))
        rp_fail(p, where, key, "is %s, expected true or false", type_word(v));
    return v && json_is_true(v);
}

static int rp_int(rparse *p, const json_t *obj, const char *where, const char *key,
                  bool required, int max)
{
    const json_t *v = rp_get(p, obj, where, key, required, false);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        rp_fail(p, where, key, "is %s, expected an integer from 0 to %d",
                json_is_integer(v) ? "out of range" : type_word(v), max);
        return 0;
    }
    return (int)json_integer_value(v);
}

/* A name from names[0..n) (NULL entries: the value absent or null, allowed when nullable). */
static int rp_enum(rparse *p, const json_t *obj, const char *where, const char *key,
                   bool required, const char *const *names, int n, int absent)
{
    bool nullable = false;
    for (int i = 0; i < n; i++)
        nullable = nullable || !names[i];
    const json_t *v = rp_get(p, obj, where, key, required, nullable);
    if (!v)
        return absent;
    if (json_is_string(v))
        for (int i = 0; i < n; i++)
            if (names[i] && strcmp(names[i], json_string_value(v)) == 0)
                return i;
    char list[256] = "";
    for (int i = 0; i < n; i++)
        if (names[i])
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"",
                     *list ? ", " : "", names[i]);
    if (json_is_string(v))
        rp_fail(p, where, key, "is \"%.100s\", expected one of %s", json_string_value(v), list);
    else
        rp_fail(p, where, key, "is %s, expected one of %s", type_word(v), list);
    return absent;
}

/* An object or array kept as JSON (a new reference). */
static json_t *rp_json(rparse *p, const json_t *obj, const char *where, const char *key,
                       bool required, bool nullable, json_type type)
{
    const json_t *v = rp_get(p, obj, where, key, required, nullable);
    if (!v || p->r < 0)
        return NULL;
    if (json_typeof(v) != type) {
        rp_fail(p, where, key, "is %s, expected %s", type_word(v),
                type == JSON_OBJECT ? "an object" : "an array");
        return NULL;
    }
    return json_incref((json_t *)v);
}

static const json_t *rp_object(rparse *p, const json_t *obj, const char *where, const char *key,
                               bool required)
{
    const json_t *v = rp_get(p, obj, where, key, required, false);
    if (v && !json_is_object(v)) {
        rp_fail(p, where, key, "is %s, expected an object", type_word(v));
        return NULL;
    }
    return v;
}

static void artifact_clear(molt_dep_artifact *a)
{
    free(a->name);
    free(a->group);
    free(a->payload_type);
    json_decref(a->provides);
    json_decref(a->clears);
    json_decref(a->depends);
    json_decref(a->type_info);
    json_decref(a->header_info);
    json_decref(a->meta_data);
}

void molt_deployment_free(molt_deployment *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->started);
    free(d->source);
    free(d->rollback_error);
    artifact_clear(&d->artifact);
    free(d->module_type);
    free(d->module_path);
    free(d->module_tree);
    free(d->error);
    json_decref(d->module_values);
    free(d);
}

void molt_last_deployment_free(molt_last_deployment *l)
{
    if (!l)
        return;
    free(l->id);
    free(l->artifact_name);
    free(l->finished);
    free(l);
}

void molt_record_free(molt_record *rec)
{
    if (!rec)
        return;
    json_decref(rec->device);
    free(rec->last_error);
    molt_last_deployment_free(rec->last);
    molt_deployment_free(rec->dep);
    free(rec);
}

const char *molt_record_artifact_name(const molt_record *rec)
{
    return json_string_value(json_object_get(rec->device, "artifact_name"));
}

const char *molt_record_artifact_group(const molt_record *rec)
{
    return json_string_value(json_object_get(rec->device, "artifact_group"));
}

int molt_record_new(molt_record **ret, molt_err *err)
{
    molt_record *rec = calloc(1, sizeof *rec);
    if (rec)
        rec->device = json_object();
    if (!rec || !rec->device) {
        molt_record_free(rec);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    *ret = rec;
    return 0;
}

static void parse_artifact(rparse *p, const json_t *o, molt_dep_artifact *a)
{
    static const char *const keys[] = {"name", "group", "payload_type", "provides", "clears",
                                       "depends", "type_info", "header_info", "meta_data", NULL};
    const char *w = "deployment.artifact";
    rp_keys(p, o, w, keys);
    a->name = rp_str(p, o, w, "name", true, false);
    a->group = rp_str(p, o, w, "group", false, true);
    a->payload_type = rp_str(p, o, w, "payload_type", true, false);
    a->provides = rp_json(p, o, w, "provides", true, false, JSON_OBJECT);
    a->clears = rp_json(p, o, w, "clears", false, true, JSON_ARRAY);
    a->depends = rp_json(p, o, w, "depends", true, false, JSON_OBJECT);
    a->type_info = rp_json(p, o, w, "type_info", false, true, JSON_OBJECT);
    a->header_info = rp_json(p, o, w, "header_info", false, true, JSON_OBJECT);
    a->meta_data = rp_json(p, o, w, "meta_data", false, true, JSON_OBJECT);
}

static molt_deployment *parse_deployment(rparse *p, const json_t *o, molt_kind_of_fn kind_of,
                                         void *kind_ctx)
{
    static const char *const keys[] = {
        "version", "id", "started", "source", "state", "pending", "state_count",
        "rollback_retries", "rollback_error", "artifact", "module", "reboot", "rollback",
        "rollback_reboot", "failed", "rolled_back", "rollback_failed", "user_rollback", "error",
        "module_values", NULL};
    static const char *const module_keys[] = {"kind", "type", "path", "tree", NULL};
    const char *w = "deployment";
    molt_deployment *d = calloc(1, sizeof *d);
    if (!d) {
        p->r = molt_err_set(p->err, MOLT_ENOMEM, "out of memory loading the store");
        return NULL;
    }
    /* The version first: a newer record is refused as such, not for its new keys. */
    int version = json_object_get(o, "version") ? rp_int(p, o, w, "version", true, 1000000) : 1;
    if (p->r == 0 && (version < 1 || version > MOLT_DEPLOYMENT_VERSION))
        rp_fail(p, w, "version", "is %d: this molt reads deployment records of version 1 to %d "
                "(a newer molt wrote it)", version, MOLT_DEPLOYMENT_VERSION);
    rp_keys(p, o, w, keys);
    d->id = rp_str(p, o, w, "id", true, false);
    d->started = rp_str(p, o, w, "started", true, false);
    d->source = rp_str(p, o, w, "source", true, false);
    d->state = rp_enum(p, o, w, "state", true, state_names, MOLT_DS_COUNT, 0);
    d->pending = rp_enum(p, o, w, "pending", true, pending_names, MOLT_PENDING_COUNT,
                         MOLT_PENDING_NONE);
    d->state_count = rp_int(p, o, w, "state_count", true, 1000000);
    d->rollback_retries = rp_int(p, o, w, "rollback_retries", false, 1000000000);
    d->rollback_error = rp_str(p, o, w, "rollback_error", false, true);
    d->reboot = rp_enum(p, o, w, "reboot", false, answer_names, MOLT_REC_COUNT, MOLT_REC_UNSET);
    d->rollback = rp_enum(p, o, w, "rollback", false, answer_names, MOLT_REC_COUNT,
                          MOLT_REC_UNSET);
    d->rollback_reboot = rp_enum(p, o, w, "rollback_reboot", false, answer_names,
                                 MOLT_REC_COUNT, MOLT_REC_UNSET);
    d->failed = rp_bool(p, o, w, "failed", true);
    d->rolled_back = rp_bool(p, o, w, "rolled_back", true);
    d->rollback_failed = rp_bool(p, o, w, "rollback_failed", true);
    /* Optional: the release of 9f1b70b removed it when a user rollback proved impossible. */
    d->user_rollback = rp_bool(p, o, w, "user_rollback", false);
    d->error = rp_str(p, o, w, "error", false, true);
    /* Optional (since 2026-12): absent when the module set none. */
    d->module_values = rp_json(p, o, w, "module_values", false, false, JSON_OBJECT);
    const char *vk;
    json_t *vv;
    json_object_foreach(d->module_values, vk, vv) {
        const char *hex = json_string_value(vv);
        size_t n = hex ? strlen(hex) : 0;
        if (p->r == 0 && !hex)
            rp_fail(p, "deployment.module_values", vk, "is %s, expected a string (hex)",
                    type_word(vv));
        else if (p->r == 0 && (n % 2 != 0 || strspn(hex, "0123456789abcdef") != n))
            rp_fail(p, "deployment.module_values", vk, "is \"%.40s\", expected lower-case hex "
                    "digits, an even count", hex);
    }
    const json_t *art = rp_object(p, o, w, "artifact", true);
    if (art)
        parse_artifact(p, art, &d->artifact);
    const json_t *mod = rp_object(p, o, w, "module", true);
    const char *mw = "deployment.module";
    if (mod) {
        rp_keys(p, mod, mw, module_keys);
        d->module_type = rp_str(p, mod, mw, "type", true, false);
        d->module_path = rp_str(p, mod, mw, "path", true, false);
        d->module_tree = rp_str(p, mod, mw, "tree", true, false);
        if (version >= 2)
            d->module_kind = rp_enum(p, mod, mw, "kind", true, kind_names, KIND_COUNT, 0);
        else if (p->r == 0 && json_object_get(mod, "kind"))
            rp_fail(p, mw, "kind", "is set in a version 1 record (which has none)");
    }
    if (p->r == 0 && version < 2) {
        /* Written before the kind was recorded: inferred once, from today's configuration, and
         * recorded by the next save. */
        if (!kind_of)
            p->r = molt_err_set(p->err, MOLT_EINVAL, "store %s: a version 1 deployment record "
                                "needs the module kind inferred", p->path);
        else
            d->module_kind = kind_of(kind_ctx, d->module_path);
    }
    if (p->r < 0) {
        molt_deployment_free(d);
        return NULL;
    }
    return d;
}

static molt_last_deployment *parse_last(rparse *p, const json_t *o)
{
    static const char *const keys[] = {"id", "artifact_name", "result", "rolled_back",
                                       "finished", NULL};
    const char *w = "last_deployment";
    molt_last_deployment *l = calloc(1, sizeof *l);
    if (!l) {
        p->r = molt_err_set(p->err, MOLT_ENOMEM, "out of memory loading the store");
        return NULL;
    }
    rp_keys(p, o, w, keys);
    l->id = rp_str(p, o, w, "id", true, false);
    l->artifact_name = rp_str(p, o, w, "artifact_name", true, false);
    l->result = rp_enum(p, o, w, "result", true, result_names, MOLT_RESULT_COUNT, 0);
    l->rolled_back = rp_bool(p, o, w, "rolled_back", true);
    l->finished = rp_str(p, o, w, "finished", true, false);
    if (p->r < 0) {
        molt_last_deployment_free(l);
        return NULL;
    }
    return l;
}

static int parse_record(rparse *p, const json_t *doc, molt_kind_of_fn kind_of, void *kind_ctx,
                        molt_record *rec)
{
    static const char *const keys[] = {"artifact_name", "artifact_group", "artifact_provides",
                                       "last_error", "last_deployment", "deployment", NULL};
    rp_keys(p, doc, "", keys);
    static const char *const device_keys[] = {"artifact_name", "artifact_group", NULL};
    for (int i = 0; device_keys[i]; i++) {
        const json_t *v = rp_get(p, doc, "", device_keys[i], false, false);
        if (v && !json_is_string(v))
            rp_fail(p, "", device_keys[i], "is %s, expected a string", type_word(v));
        else if (v && p->r == 0)
            json_object_set(rec->device, device_keys[i], (json_t *)v);
    }
    const json_t *provides = rp_object(p, doc, "", "artifact_provides", false);
    const char *key;
    json_t *v;
    if (provides) {
        json_object_foreach((json_t *)provides, key, v)
            if (!json_is_string(v))
                rp_fail(p, "artifact_provides", key, "is %s, expected a string", type_word(v));
        if (p->r == 0)
            json_object_set(rec->device, "artifact_provides", (json_t *)provides);
    }
    rec->last_error = rp_str(p, doc, "", "last_error", false, false);
    const json_t *last = rp_object(p, doc, "", "last_deployment", false);
    if (last && p->r == 0)
        rec->last = parse_last(p, last);
    const json_t *dep = rp_object(p, doc, "", "deployment", false);
    if (dep && p->r == 0)
        rec->dep = parse_deployment(p, dep, kind_of, kind_ctx);
    return p->r;
}

int molt_record_from_json(const char *path, const json_t *doc, molt_kind_of_fn kind_of,
                          void *kind_ctx, molt_record **ret, molt_err *err)
{
    molt_record *rec = NULL;
    int r = molt_record_new(&rec, err);
    if (r == 0 && !json_is_object(doc))
        r = molt_err_set(err, MOLT_ECORRUPT, "store %s: data is not a JSON object", path);
    if (r == 0) {
        rparse p = {.path = path, .err = err};
        r = parse_record(&p, doc, kind_of, kind_ctx, rec);
    }
    if (r < 0) {
        molt_record_free(rec);
        return r;
    }
    *ret = rec;
    return 0;
}

int molt_record_load(const char *path, molt_kind_of_fn kind_of, void *kind_ctx, molt_record **ret,
                     molt_store_info *info, molt_err *err)
{
    json_t *doc = NULL;
    molt_store_info none;
    if (!info)
        info = &none;
    int r = molt_store_load_info(path, &doc, info, err);
    char *spath = r == 0 && !info->legacy ? slots_path(path) : NULL;
    if (r == 0 && !info->legacy && !spath)
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
    if (r == 0) /* the messages name the file the record came from */
        r = molt_record_from_json(spath ? spath : path, doc, kind_of, kind_ctx, ret, err);
    free(spath);
    json_decref(doc);
    return r;
}

/* ---- saving ---------------------------------------------------------------------------------- */

/* Set key to a new value; a NULL value (out of memory) marks the build failed. */
static void put(json_t *o, const char *key, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(o, key, v) != 0)
        *ok = false;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *json_or_null(json_t *v)
{
    return v ? json_incref(v) : json_null();
}

/* The artifact's keys (the store's "deployment.artifact"), in byte order, with where each value
 * is: one list for its JSON object (molt_dep_artifact_json) and its text (text_deployment).
 * Absent values are null, as the release of 9f1b70b wrote them. */
static const struct artifact_field {
    const char *key;
    size_t at;      /* offsetof in molt_dep_artifact */
    bool json;      /* a json_t *, else a char * */
} artifact_fields[] = {
    {"clears", offsetof(molt_dep_artifact, clears), true},
    {"depends", offsetof(molt_dep_artifact, depends), true},
    {"group", offsetof(molt_dep_artifact, group), false},
    {"header_info", offsetof(molt_dep_artifact, header_info), true},
    {"meta_data", offsetof(molt_dep_artifact, meta_data), true},
    {"name", offsetof(molt_dep_artifact, name), false},
    {"payload_type", offsetof(molt_dep_artifact, payload_type), false},
    {"provides", offsetof(molt_dep_artifact, provides), true},
    {"type_info", offsetof(molt_dep_artifact, type_info), true},
};

static const void *artifact_value(const molt_dep_artifact *a, const struct artifact_field *f)
{
    const char *at = (const char *)a + f->at;
    return f->json ? (const void *)*(json_t *const *)at : (const void *)*(char *const *)at;
}

json_t *molt_dep_artifact_json(const molt_dep_artifact *a)
{
    json_t *o = json_object();
    bool ok = o != NULL;
    for (size_t i = 0; ok && i < sizeof artifact_fields / sizeof artifact_fields[0]; i++) {
        const struct artifact_field *f = &artifact_fields[i];
        const void *v = artifact_value(a, f);
        put(o, f->key, f->json ? json_or_null((json_t *)v) : str_or_null(v), &ok);
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A member whose value is the name of one of the record's enums; an out-of-range value (NULL
 * name) fails the text. */
static void text_name(molt_json_text *t, const char *key, const char *name)
{
    molt_json_text_key(t, key);
    if (name)
        molt_json_text_string(t, name);
    else
        molt_json_text_fail(t, MOLT_EINVAL);
}

/* A member of an object: the key, then the value (a NULL string is null). */
static void text_str(molt_json_text *t, const char *key, const char *s)
{
    molt_json_text_key(t, key);
    molt_json_text_string(t, s);
}

static void text_bool(molt_json_text *t, const char *key, bool b)
{
    molt_json_text_key(t, key);
    molt_json_text_bool(t, b);
}

static void text_int(molt_json_text *t, const char *key, long long i)
{
    molt_json_text_key(t, key);
    molt_json_text_int(t, i);
}

/* The deployment object, its keys in byte order (as jansson's sorted dump put them); optional
 * keys only when set, as the release of 9f1b70b wrote them. */
static void text_deployment(molt_json_text *t, const molt_deployment *d)
{
    molt_json_text_raw(t, "{");
    molt_json_text_key(t, "artifact");
    molt_json_text_raw(t, "{");
    for (size_t i = 0; i < sizeof artifact_fields / sizeof artifact_fields[0]; i++) {
        const struct artifact_field *f = &artifact_fields[i];
        const void *v = artifact_value(&d->artifact, f);
        molt_json_text_key(t, f->key);
        if (f->json)
            molt_json_text_value(t, v);
        else
            molt_json_text_string(t, v);
    }
    molt_json_text_raw(t, "}");
    if (d->error)
        text_str(t, "error", d->error);
    text_bool(t, "failed", d->failed);
    text_str(t, "id", d->id);
    molt_json_text_key(t, "module");
    molt_json_text_raw(t, "{");
    text_name(t, "kind", molt_module_kind_name(d->module_kind));
    text_str(t, "path", d->module_path);
    text_str(t, "tree", d->module_tree);
    text_str(t, "type", d->module_type);
    molt_json_text_raw(t, "}");
    if (json_object_size(d->module_values) > 0) {
        molt_json_text_key(t, "module_values");
        molt_json_text_value(t, d->module_values);
    }
    text_str(t, "pending", molt_pending_name(d->pending));
    if (d->reboot != MOLT_REC_UNSET)
        text_name(t, "reboot", molt_rec_answer_name(d->reboot));
    if (d->rollback != MOLT_REC_UNSET)
        text_name(t, "rollback", molt_rec_answer_name(d->rollback));
    if (d->rollback_error)
        text_str(t, "rollback_error", d->rollback_error);
    text_bool(t, "rollback_failed", d->rollback_failed);
    if (d->rollback_reboot != MOLT_REC_UNSET)
        text_name(t, "rollback_reboot", molt_rec_answer_name(d->rollback_reboot));
    if (d->rollback_retries > 0)
        text_int(t, "rollback_retries", d->rollback_retries);
    text_bool(t, "rolled_back", d->rolled_back);
    text_str(t, "source", d->source);
    text_str(t, "started", d->started);
    text_name(t, "state", molt_dep_state_name(d->state));
    text_int(t, "state_count", d->state_count);
    text_bool(t, "user_rollback", d->user_rollback);
    text_int(t, "version", MOLT_DEPLOYMENT_VERSION);
    molt_json_text_raw(t, "}");
}

static void text_last(molt_json_text *t, const molt_last_deployment *l)
{
    molt_json_text_raw(t, "{");
    text_str(t, "artifact_name", l->artifact_name);
    text_str(t, "finished", l->finished);
    text_str(t, "id", l->id);
    text_name(t, "result", molt_result_name(l->result));
    text_bool(t, "rolled_back", l->rolled_back);
    molt_json_text_raw(t, "}");
}

/* A member of the document's top level: one of the device's (value) or of the record's own. */
typedef struct top_member {
    const char *key;
    const json_t *value;
} top_member;

#define TOP_MEMBERS_MAX 64   /* the device holds three keys; more is not a store molt wrote */

/* The record's text (molt_record_to_text) after room bytes for the caller's header. */
static int record_text(const molt_record *rec, size_t room, char **ret, size_t *ret_len)
{
    /* The top level: the device's keys and the record's, in byte order; a record's key wins
     * over the device's of the same name (as json_object_set made it). */
    static const char *const own[] = {"deployment", "last_deployment", "last_error"};
    const bool has[] = {rec->dep != NULL, rec->last != NULL, rec->last_error != NULL};
    top_member m[TOP_MEMBERS_MAX];
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(rec->device, key, v) {
        bool shadowed = false;
        for (int i = 0; i < 3; i++)
            shadowed = shadowed || (has[i] && strcmp(key, own[i]) == 0);
        if (shadowed)
            continue;
        if (n == TOP_MEMBERS_MAX - 3)
            return MOLT_ELIMIT;
        m[n++] = (top_member){key, v};
    }
    for (int i = 0; i < 3; i++)
        if (has[i])
            m[n++] = (top_member){own[i], NULL};
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(m[j - 1].key, m[j].key) > 0; j--) {
            top_member x = m[j];
            m[j] = m[j - 1];
            m[j - 1] = x;
        }
    molt_json_text t;
    molt_json_text_init(&t, room, STORE_DATA_MAX - 1);
    molt_json_text_raw(&t, "{");
    for (size_t i = 0; i < n; i++) {
        molt_json_text_key(&t, m[i].key);
        if (m[i].value)
            molt_json_text_value(&t, m[i].value);
        else if (m[i].key == own[0])
            text_deployment(&t, rec->dep);
        else if (m[i].key == own[1])
            text_last(&t, rec->last);
        else
            molt_json_text_string(&t, rec->last_error);
    }
    molt_json_text_raw(&t, "}");
    return molt_json_text_finish(&t, ret, ret_len);
}

int molt_record_to_text(const molt_record *rec, char **ret, size_t *ret_len)
{
    return record_text(rec, 0, ret, ret_len);
}

json_t *molt_record_to_json(const molt_record *rec)
{
    char *text = NULL;
    size_t len = 0;
    if (molt_record_to_text(rec, &text, &len) < 0)
        return NULL;
    json_t *doc = molt_json_loadb(text, len, NULL);
    free(text);
    return doc;
}

int molt_record_save(const char *path, const molt_record *rec, unsigned flags, molt_err *err)
{
    molt_store_writer *w = NULL;
    int r = molt_store_writer_new(path, &w, err);
    if (r == 0)
        r = molt_record_write(w, rec, flags, err);
    molt_store_writer_free(w);
    return r;
}

int molt_record_write(molt_store_writer *w, const molt_record *rec, unsigned flags, molt_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int r = record_text(rec, TEXT_ROOM, &buf, &len);
    return write_text(w, r, buf, len, flags, err);
}
