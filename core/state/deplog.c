/* SPDX-License-Identifier: Apache-2.0 */
/* Deployment logs: naming, numbering and pruning of <logs_dir>/deployment.<NNNN>.<id>.log, and
 * reading them back (for `molt status` and for the upload body of docs/reference §3.4). */
#include "state/deplog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/log.h"

#define DEPLOG_PREFIX "deployment."
#define DEPLOG_SUFFIX ".log"
/* Only the tail of a log is read back: the upload takes < 1 MB and status a few lines. */
#define DEPLOG_READ_MAX (4u * 1024 * 1024)
/* Entries kept in memory while reading (the oldest beyond this are dropped). */
#define DEPLOG_ENTRIES_MAX 20000
/* Logs looked at in one folder; more than this is not something molt wrote. */
#define DEPLOG_FILES_MAX 4096
/* The first allocation of the listing, doubled up to DEPLOG_FILES_MAX (a power of two). */
#define DEPLOG_FILES_FIRST 16
#define EPOCH_TIMESTAMP "1970-01-01T00:00:00.000000000Z"

typedef struct deplog_file {
    unsigned long num;
    char *name;   /* file name inside logs_dir */
    char *id;
} deplog_file;

typedef struct deplog_list {
    deplog_file *files;
    size_t n;
} deplog_list;

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

int molt_deplog_check_id(const char *id, molt_err *err)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0)
        return molt_err_set(err, MOLT_EINVAL, "deployment id is empty");
    if (len > MOLT_DEPLOG_ID_MAX)
        return molt_err_set(err, MOLT_EINVAL, "deployment id is %zu characters, at most %d",
                            len, MOLT_DEPLOG_ID_MAX);
    if (id[0] == '.')
        return molt_err_set(err, MOLT_EINVAL, "deployment id \"%s\" starts with '.'", id);
    for (size_t i = 0; i < len; i++) {
        if (!id_char(id[i]))
            return molt_err_set(err, MOLT_EINVAL, "deployment id \"%s\": character 0x%02x is "
                                "not one of A-Z a-z 0-9 . _ -", id, (unsigned char)id[i]);
    }
    return 0;
}

/* "deployment.<digits>.<id>.log" -> num and id; false for any other name. */
static bool parse_name(const char *name, unsigned long *ret_num, char **ret_id)
{
    size_t len = strlen(name);
    size_t plen = strlen(DEPLOG_PREFIX), slen = strlen(DEPLOG_SUFFIX);
    if (len <= plen + slen || strncmp(name, DEPLOG_PREFIX, plen) != 0 ||
        strcmp(name + len - slen, DEPLOG_SUFFIX) != 0)
        return false;
    const char *p = name + plen;
    unsigned long num = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 9) {
        num = num * 10 + (unsigned long)(*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || *p != '.')
        return false;
    p++;
    size_t id_len = (size_t)(name + len - slen - p);
    if (id_len == 0)
        return false;
    char *id = strndup(p, id_len);
    if (!id)
        return false;
    if (molt_deplog_check_id(id, NULL) != 0) {
        free(id);
        return false;
    }
    *ret_num = num;
    *ret_id = id;
    return true;
}

static void list_free(deplog_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->files[i].name);
        free(list->files[i].id);
    }
    free(list->files);
    list->files = NULL;
    list->n = 0;
}

static int by_num(const void *a, const void *b)
{
    const deplog_file *x = a, *y = b;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The deployment logs in logs_dir, oldest (smallest number) first. A missing folder is an
 * empty list. */
static int list_logs(const char *logs_dir, deplog_list *ret, molt_err *err)
{
    deplog_list list = {NULL, 0};
    DIR *d = opendir(logs_dir);
    if (!d) {
        if (errno == ENOENT) {
            *ret = list;
            return 0;
        }
        return molt_err_errno(err, MOLT_EIO, errno, "cannot read the log folder %s", logs_dir);
    }
    /* Grown as logs are found: a folder holds keep_deployment_logs of them (5 by default), and
     * the limit's 4096 entries up front cost ~100 KB of heap and its page faults at every
     * deployment's start. */
    size_t cap = 0;
    struct dirent *e;
    int r = 0;
    while ((e = readdir(d))) {
        unsigned long num;
        char *id;
        if (!parse_name(e->d_name, &num, &id))
            continue;
        if (list.n == DEPLOG_FILES_MAX) {
            free(id);
            r = molt_err_set(err, MOLT_ELIMIT, "%s holds more than %d deployment logs",
                             logs_dir, DEPLOG_FILES_MAX);
            break;
        }
        if (list.n == cap) {
            size_t more = cap ? cap * 2 : DEPLOG_FILES_FIRST;
            deplog_file *grown = realloc(list.files, more * sizeof *grown);
            if (!grown) {
                free(id);
                r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
                break;
            }
            list.files = grown;
            cap = more;
        }
        char *name = strdup(e->d_name);
        if (!name) {
            free(id);
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
            break;
        }
        list.files[list.n++] = (deplog_file){num, name, id};
    }
    closedir(d);
    if (r != 0) {
        list_free(&list);
        return r;
    }
    if (list.n > 1)
        qsort(list.files, list.n, sizeof *list.files, by_num);
    *ret = list;
    return 0;
}

static int join(const char *dir, const char *name, char **ret, molt_err *err)
{
    char *path = molt_path_join(dir, name);
    if (!path)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    *ret = path;
    return 0;
}

/* Index of the newest log of id in list, or -1. */
static long find_in(const deplog_list *list, const char *id)
{
    for (size_t i = list->n; i-- > 0;) {
        if (strcmp(list->files[i].id, id) == 0)
            return (long)i;
    }
    return -1;
}

int molt_deplog_find(const char *logs_dir, const char *id, char **ret_path, molt_err *err)
{
    deplog_list list;
    int r = molt_deplog_check_id(id, err);
    if (r == 0)
        r = list_logs(logs_dir, &list, err);
    if (r != 0)
        return r;
    long i = find_in(&list, id);
    if (i < 0)
        r = molt_err_set(err, MOLT_ENOTFOUND, "no log of deployment %s in %s", id, logs_dir);
    else
        r = join(logs_dir, list.files[i].name, ret_path, err);
    list_free(&list);
    return r;
}

/* The path of id's log in list (the newest of id), or of a new one numbered after the last. */
static int path_in(const char *logs_dir, const deplog_list *list, const char *id, char **ret_path,
                   bool *ret_new, molt_err *err)
{
    long i = find_in(list, id);
    unsigned long next = list->n ? list->files[list->n - 1].num + 1 : 1;
    *ret_new = i < 0;
    if (i >= 0)
        return join(logs_dir, list->files[i].name, ret_path, err);
    if (next > 999999999UL)
        return molt_err_set(err, MOLT_ELIMIT, "%s: deployment log numbers exhausted", logs_dir);
    char name[sizeof DEPLOG_PREFIX + 16 + MOLT_DEPLOG_ID_MAX + sizeof DEPLOG_SUFFIX];
    snprintf(name, sizeof name, DEPLOG_PREFIX "%04lu.%s" DEPLOG_SUFFIX, next, id);
    return join(logs_dir, name, ret_path, err);
}

int molt_deplog_path(const char *logs_dir, const char *id, char **ret_path, molt_err *err)
{
    deplog_list list;
    bool is_new;
    int r = molt_deplog_check_id(id, err);
    if (r == 0)
        r = molt_mkdir_p(logs_dir, 0700, err);
    if (r == 0)
        r = list_logs(logs_dir, &list, err);
    if (r != 0)
        return r;
    r = path_in(logs_dir, &list, id, ret_path, &is_new, err);
    list_free(&list);
    return r;
}

/* Remove the oldest logs of list, which holds `added` more (newer) logs than listed, so that
 * keep are left. */
static int prune_list(const char *logs_dir, const deplog_list *list, size_t added, int keep,
                      molt_err *err)
{
    if (keep < 1)
        return molt_err_set(err, MOLT_EINVAL, "keep_deployment_logs must be at least 1, got %d",
                            keep);
    int r = 0;
    for (size_t i = 0; r == 0 && i < list->n && i + (size_t)keep < list->n + added; i++) {
        char *path = molt_path_join(logs_dir, list->files[i].name);
        if (!path)
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        else if (unlink(path) != 0 && errno != ENOENT)
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot remove old deployment log %s", path);
        free(path);
    }
    return r;
}

int molt_deplog_prune(const char *logs_dir, int keep, molt_err *err)
{
    if (keep < 1)
        return prune_list(logs_dir, NULL, 0, keep, err);
    deplog_list list;
    int r = list_logs(logs_dir, &list, err);
    if (r != 0)
        return r;
    r = prune_list(logs_dir, &list, 0, keep, err);
    list_free(&list);
    return r;
}

/* Make the oldest log of list, which pruning removes, the new log path: emptied, then renamed.
 * One inode fewer to allocate and one fewer to free per deployment, for the same files (on ext4
 * without a journal a new inode is searched for past the recently deleted ones, and the freed
 * one's blocks are discarded at once where the file system is mounted with discard: ~0.1-0.4 ms
 * of an install, docs/performance.md). A cut between the two leaves the oldest log empty under
 * its own name, which was going anyway; one after them, the new log empty. Only a regular file
 * with no other name is taken (a hard link kept elsewhere keeps its content, as with unlink); a
 * reader holding the oldest log open sees it emptied instead of unlinked. Whether it was taken:
 * when not, the new log is created and the oldest removed as before. */
static bool take_oldest(const char *logs_dir, const deplog_list *list, const char *path)
{
    char *old = molt_path_join(logs_dir, list->files[0].name);
    int fd = old ? open(old, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
    struct stat st;
    bool taken = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
                 ftruncate(fd, 0) == 0 && rename(old, path) == 0;
    if (fd >= 0)
        close(fd);
    free(old);
    return taken;
}

int molt_deplog_open(const char *logs_dir, const char *id, int keep, char **ret_path,
                     molt_err *err)
{
    /* One listing for both: the path (id's log, or a new one after the last) and the pruning. */
    char *path = NULL;
    deplog_list list;
    bool is_new = false;
    int r = molt_deplog_check_id(id, err);
    if (r == 0)
        r = molt_mkdir_p(logs_dir, 0700, err);
    if (r == 0)
        r = list_logs(logs_dir, &list, err);
    if (r != 0)
        return r;
    r = path_in(logs_dir, &list, id, &path, &is_new, err);
    /* A new log when keep are there already: the oldest one becomes it (take_oldest). */
    size_t taken = r == 0 && is_new && keep >= 1 && list.n >= (size_t)keep &&
                   take_oldest(logs_dir, &list, path) ? 1 : 0;
    if (r == 0)
        r = molt_log_open_deployment(path, err);
    /* After opening: the new log has the largest number, so pruning never removes it. */
    if (r == 0) {
        deplog_list rest = {taken ? list.files + 1 : list.files, list.n - taken};
        r = prune_list(logs_dir, &rest, is_new ? 1 : 0, keep, err);
    }
    list_free(&list);
    if (r == 0 && ret_path) {
        *ret_path = path;
        path = NULL;
    }
    free(path);
    return r;
}

int molt_deplog_latest(const char *logs_dir, char **ret_path, char **ret_id, molt_err *err)
{
    deplog_list list;
    int r = list_logs(logs_dir, &list, err);
    if (r != 0)
        return r;
    if (list.n == 0) {
        list_free(&list);
        return molt_err_set(err, MOLT_ENOTFOUND, "no deployment logs in %s", logs_dir);
    }
    deplog_file *last = &list.files[list.n - 1];
    char *path = NULL;
    r = join(logs_dir, last->name, &path, err);
    if (r == 0) {
        *ret_path = path;
        if (ret_id) {
            *ret_id = last->id;
            last->id = NULL;
        }
    }
    list_free(&list);
    return r;
}

/* What reading a log gave: the entries kept, and what was left out at the start. */
typedef struct deplog_entries {
    json_t *array;        /* oldest first */
    size_t dropped;       /* whole entries left out (beyond the count limit) */
    long long skipped;    /* bytes not read at the start of a file over DEPLOG_READ_MAX */
} deplog_entries;

static json_t *make_entry(const char *timestamp, const char *level, const char *message)
{
    return json_pack("{s:s, s:s, s:s}", "timestamp", timestamp, "level", level, "message",
                     message);
}

/* Read the last DEPLOG_READ_MAX bytes of path into *ret_buf; *ret_skipped = bytes before. */
static int read_tail(const char *path, char **ret_buf, size_t *ret_len, long long *ret_skipped,
                     molt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                              "cannot open deployment log %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return molt_err_set(err, MOLT_EIO, "%s is not a readable file", path);
    }
    long long skipped = st.st_size > (off_t)DEPLOG_READ_MAX ? st.st_size - DEPLOG_READ_MAX : 0;
    size_t want = (size_t)(st.st_size - skipped);
    char *buf = malloc(want + 1);
    if (!buf) {
        close(fd);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    size_t len = 0;
    while (len < want) {
        ssize_t n = pread(fd, buf + len, want - len, (off_t)(skipped + (long long)len));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return molt_err_errno(err, MOLT_EIO, e, "cannot read deployment log %s", path);
        }
        if (n == 0)
            break;   /* shrank while reading: take what is there */
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *ret_buf = buf;
    *ret_len = len;
    *ret_skipped = skipped;
    return 0;
}

/* Parse the JSON lines of path, keeping at most `limit` newest entries. */
static int read_entries(const char *path, size_t limit, deplog_entries *ret, molt_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    long long skipped = 0;
    int r = read_tail(path, &buf, &len, &skipped, err);
    if (r != 0)
        return r;
    if (limit == 0 || limit > DEPLOG_ENTRIES_MAX)
        limit = DEPLOG_ENTRIES_MAX;
    /* A ring of the newest `limit` entries, so a long log costs bounded memory. */
    json_t **ring = calloc(limit, sizeof *ring);
    json_t *array = json_array();
    size_t count = 0;
    char last_ts[64] = EPOCH_TIMESTAMP;
    if (!ring || !array) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    char *p = buf, *end = buf + len;
    if (skipped > 0) {
        /* We started mid-file: the first partial line is not an entry. */
        char *nl = memchr(p, '\n', len);
        skipped += nl ? nl + 1 - p : end - p;
        p = nl ? nl + 1 : end;
    }
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        size_t line_len = (size_t)(line_end - p);
        json_t *entry = NULL;
        if (line_len > 0) {
            entry = json_loadb(p, line_len, 0, NULL);
            if (entry && !json_is_object(entry)) {
                json_decref(entry);
                entry = NULL;
            }
            if (entry) {
                const char *ts = json_string_value(json_object_get(entry, "timestamp"));
                if (ts && strlen(ts) < sizeof last_ts)
                    strcpy(last_ts, ts);
            } else {
                entry = make_entry(last_ts, "error", "(CORRUPTED LOG DATA)");
                if (!entry) {
                    r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
                    goto out;
                }
            }
            json_t **slot = &ring[count % limit];
            json_decref(*slot);   /* the oldest, once the ring is full */
            *slot = entry;
            count++;
        }
        p = nl ? nl + 1 : end;
    }
    size_t kept = count < limit ? count : limit;
    for (size_t i = count - kept; i < count; i++) {
        if (json_array_append(array, ring[i % limit]) != 0) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
            goto out;
        }
    }
    ret->array = array;
    ret->dropped = count - kept;
    ret->skipped = skipped;
    array = NULL;
out:
    if (ring) {
        for (size_t i = 0; i < limit; i++)
            json_decref(ring[i]);
        free(ring);
    }
    json_decref(array);
    free(buf);
    return r;
}

int molt_deplog_read(const char *path, size_t last, json_t **ret, molt_err *err)
{
    deplog_entries entries;
    int r = read_entries(path, last, &entries, err);
    if (r == 0)
        *ret = entries.array;
    return r;
}

/* The warning entry that opens a truncated upload; NULL when out of memory. */
static char *truncation_entry(const char *timestamp, size_t dropped, long long skipped)
{
    char message[160];
    if (skipped > 0)
        snprintf(message, sizeof message, "(THE ORIGINAL LOGS WERE TRUNCATED: THE FIRST %lld "
                 "BYTES AND %zu MORE OLDEST ENTRIES DROPPED)", skipped, dropped);
    else
        snprintf(message, sizeof message,
                 "(THE ORIGINAL LOGS WERE TRUNCATED: %zu OLDEST ENTRIES DROPPED)", dropped);
    json_t *entry = make_entry(timestamp, "warning", message);
    char *text = entry ? json_dumps(entry, JSON_COMPACT) : NULL;
    json_decref(entry);
    return text;
}

int molt_deplog_upload_body(const char *path, size_t max_bytes, char **ret_body, size_t *ret_len,
                            molt_err *err)
{
    static const char open_text[] = "{\"messages\":[", close_text[] = "]}";
    const size_t frame = sizeof open_text - 1 + sizeof close_text - 1;
    deplog_entries entries;
    int r = read_entries(path, 0, &entries, err);
    if (r != 0)
        return r;
    size_t n = json_array_size(entries.array);
    char **texts = calloc(n ? n : 1, sizeof *texts);
    size_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    char *warning = NULL, *body = NULL;
    if (!texts || !sizes) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    /* total = frame + every entry + a comma between entries. */
    size_t total = frame;
    for (size_t i = 0; i < n; i++) {
        texts[i] = json_dumps(json_array_get(entries.array, i), JSON_COMPACT);
        if (!texts[i]) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
            goto out;
        }
        sizes[i] = strlen(texts[i]);
        total += sizes[i] + (i > 0);
    }
    /* Drop the oldest until the rest plus the warning fits; a log that was already cut when
     * read gets the warning too. */
    size_t first = 0;
    if (total > max_bytes || entries.dropped > 0 || entries.skipped > 0) {
        for (;;) {
            const char *ts = EPOCH_TIMESTAMP;
            if (first < n) {
                const char *t = json_string_value(
                    json_object_get(json_array_get(entries.array, first), "timestamp"));
                ts = t ? t : ts;
            }
            free(warning);
            warning = truncation_entry(ts, entries.dropped + first, entries.skipped);
            if (!warning) {
                r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
                goto out;
            }
            size_t with = total + strlen(warning) + (first < n);
            if (with <= max_bytes) {
                total = with;
                break;
            }
            if (first == n) {
                r = molt_err_set(err, MOLT_ELIMIT, "deployment log upload: %zu bytes cannot "
                                 "hold even the truncation notice", max_bytes);
                goto out;
            }
            /* Remove entry `first` and the comma after it (or before the next). */
            total -= sizes[first] + (n - first > 1);
            first++;
        }
    }
    body = malloc(total + 1);
    if (!body) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    size_t o = 0;
    memcpy(body + o, open_text, sizeof open_text - 1);
    o += sizeof open_text - 1;
    if (warning) {
        size_t w = strlen(warning);
        memcpy(body + o, warning, w);
        o += w;
    }
    for (size_t i = first; i < n; i++) {
        if (o > sizeof open_text - 1)
            body[o++] = ',';
        memcpy(body + o, texts[i], sizes[i]);
        o += sizes[i];
    }
    memcpy(body + o, close_text, sizeof close_text - 1);
    o += sizeof close_text - 1;
    body[o] = '\0';
    if (o != total) {
        r = molt_err_set(err, MOLT_EINVAL, "deployment log upload: internal size mismatch "
                         "(%zu != %zu)", o, total);
        goto out;
    }
    *ret_body = body;
    if (ret_len)
        *ret_len = o;
    body = NULL;
out:
    free(body);
    free(warning);
    if (texts) {
        for (size_t i = 0; i < n; i++)
            free(texts[i]);
    }
    free(texts);
    free(sizes);
    json_decref(entries.array);
    return r;
}
