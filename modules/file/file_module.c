/* SPDX-License-Identifier: Apache-2.0 */
/* The file module: payload types single-file, directory (the files of Mender's community modules)
 * and file (entries listed in meta-data), streamed into temporary siblings of their destinations,
 * activated by rename / renameat2(RENAME_EXCHANGE), rolled back from a backup kept until commit.
 * See README.md for the contract, the on-disk names and the recovery rules. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "file_module.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define ENTRIES_MAX 256
#define CTL_MAX 4096           /* dest_dir, filename, permissions: read into memory */
#define PLAN_MAX 65536         /* the kv store's value limit */
#define KEY_PLAN "plan"
#define KEY_COMMITTED "committed"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* One destination: a file or a tree, its staged content identified by device and inode (kept
 * by rename, so a later process can tell whether the destination holds the new content). */
typedef struct entry {
    char kind;                 /* 'f' file, 't' tree */
    long mode;                 /* -1: default (0644 for a file, the tar's for a tree) */
    long uid, gid;             /* -1: unchanged */
    unsigned long long dev, ino;   /* of the staged content; 0 until staged */
    char *dest;                /* resolved absolute path */
    char *made;                /* the topmost folder created for it, or NULL */
    char *payload;             /* payload file name (Download only) */
} entry;

typedef struct plan {
    entry e[ENTRIES_MAX];
    size_t n;
} plan;

/* ---- the plan in the kv store ---------------------------------------------------------------- */

static void plan_free(plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->e[i].dest);
        free(p->e[i].made);
        free(p->e[i].payload);
    }
    p->n = 0;
}

static int plan_save(fm *m, const plan *p, struct molt_sdk_error *err)
{
    char *buf = malloc(PLAN_MAX);
    size_t used = 0;
    if (!buf)
        return fm_err(err, MOLT_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n; i++) {
        const entry *e = &p->e[i];
        int n = snprintf(buf + used, PLAN_MAX - used, "%c %ld %ld %ld %llu %llu %s\t%s\n",
                         e->kind, e->mode, e->uid, e->gid, e->dev, e->ino, e->dest,
                         e->made ? e->made : "");
        if (n < 0 || (size_t)n >= PLAN_MAX - used) {
            free(buf);
            return fm_err(err, MOLT_ELIMIT, "the list of destinations exceeds %d bytes", PLAN_MAX);
        }
        used += (size_t)n;
    }
    int r = m->h->kv_set(m->h, KEY_PLAN, buf, used);
    free(buf);
    return r < 0 ? fm_err(err, r, "kv store: saving the destinations failed") : 0;
}

static int plan_load(fm *m, plan *p, struct molt_sdk_error *err)
{
    char *buf = malloc(PLAN_MAX + 1);
    size_t len = 0;
    int r = buf ? m->h->kv_get(m->h, KEY_PLAN, buf, PLAN_MAX, &len) : MOLT_ENOMEM;
    p->n = 0;
    if (r == MOLT_ENOTFOUND) {
        free(buf);
        return 0;
    }
    if (r < 0) {
        free(buf);
        return fm_err(err, r, "kv store: reading the destinations failed");
    }
    buf[len] = '\0';
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        entry *e = &p->e[p->n];
        int off = 0;
        if (p->n == ENTRIES_MAX ||
            sscanf(line, "%c %ld %ld %ld %llu %llu %n", &e->kind, &e->mode, &e->uid, &e->gid,
                   &e->dev, &e->ino, &off) != 6 || off == 0 || line[off] != '/') {
            plan_free(p);
            free(buf);
            return fm_err(err, MOLT_EFORMAT, "kv store: bad destination line '%.200s'", line);
        }
        e->payload = e->made = NULL;
        char *tab = strchr(line + off, '\t');
        if (tab) {
            *tab = '\0';
            if (tab[1] && !(e->made = strdup(tab + 1))) {
                plan_free(p);
                free(buf);
                return fm_err(err, MOLT_ENOMEM, "out of memory");
            }
        }
        if (!(e->dest = strdup(line + off))) {
            free(e->made);
            plan_free(p);
            free(buf);
            return fm_err(err, MOLT_ENOMEM, "out of memory");
        }
        p->n++;
    }
    free(buf);
    return 0;
}

static int is_committed(fm *m)
{
    char v[4];
    size_t len;
    return m->h->kv_get(m->h, KEY_COMMITTED, v, sizeof v, &len) == 0;
}

/* ---- init ------------------------------------------------------------------------------------ */

static int init(const struct molt_host_api *host, void **ret_state)
{
    fm *m = calloc(1, sizeof *m);
    if (!m)
        return MOLT_ENOMEM;
    m->h = host;
    /* Test-only knob (docs: README.md "Testing"): simulate a power cut. */
    const char *kill = getenv("MOLT_FILE_TEST_KILL");
    if (kill && strncmp(kill, "bytes=", 6) == 0)
        m->kill_bytes = strtoll(kill + 6, NULL, 10);
    else if (kill && strncmp(kill, "at=", 3) == 0)
        m->kill_at = kill + 3;
    const char *noex = getenv("MOLT_FILE_TEST_NO_EXCHANGE");
    m->no_exchange = noex && strcmp(noex, "1") == 0;
    /* The umask, for the default mode of a tree's top folder (read once, set back at once). */
    m->umask = umask(022);
    umask(m->umask);
    *ret_state = m;
    return 0;
}

static void fini(void *st)
{
    fm *m = st;
    for (size_t i = 0; i < m->n_roots; i++)
        free(m->roots[i]);
    free(m->roots);
    free(m);
}

/* ---- Download -------------------------------------------------------------------------------- */

/* Parse an octal mode ("0644", "755"); -1 if it is not one. */
static long parse_mode(const char *s)
{
    char *end;
    if (!*s || strspn(s, "01234567") != strlen(s) || strlen(s) > 5)
        return -1;
    long v = strtol(s, &end, 8);
    return v <= 07777 ? v : -1;
}

static int fsync_parent(const char *path, struct molt_sdk_error *err)
{
    char *dir = fm_dirname(path);
    int r = dir ? molt_sdk_fsync_dir(dir, err) : fm_err(err, MOLT_ENOMEM, "out of memory");
    free(dir);
    return r;
}

/* Copy the current payload file (or the staged copy src_fd >= 0) to fd; bytes in *ret. */
static int copy_in(fm *m, int src_fd, int fd, int64_t size, const char *what,
                   struct molt_sdk_error *err)
{
    int64_t done = 0;
    int r = 0;
    /* A staged copy: in the kernel (copy_file_range), in 8 MiB steps for the progress. */
    while (src_fd >= 0) {
        ssize_t n = copy_file_range(src_fd, NULL, fd, NULL, 8u << 20, 0);
        if (n == 0)
            return 0;
        if (n < 0 && done == 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                                   errno == EOPNOTSUPP))
            break;   /* not here: read and write */
        if (n < 0)
            return molt_sdk_err_errno(err, errno, "copy to %s", what);
        done += n;
        m->h->progress(m->h, (uint64_t)done, size > 0 ? (uint64_t)size : 0);
    }
    char *buf = src_fd >= 0 ? malloc(65536) : NULL;
    if (src_fd >= 0 && !buf)
        return fm_err(err, MOLT_ENOMEM, "out of memory");
    for (;;) {
        const void *p = buf;
        int64_t n = src_fd >= 0 ? (int64_t)read(src_fd, buf, 65536) : m->h->read_block(m->h, &p);
        if (n == 0)
            break;
        if (n < 0) {
            r = src_fd >= 0 ? molt_sdk_err_errno(err, errno, "read the staged %s", what)
                            : fm_err(err, (int)n, "payload file %s: read failed", what);
            break;
        }
        for (int64_t off = 0; off < n;) {
            ssize_t w = write(fd, (const char *)p + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                r = molt_sdk_err_errno(err, errno, "write %s", what);
                goto out;
            }
            off += w;
        }
        done += n;
        m->h->progress(m->h, (uint64_t)done, size > 0 ? (uint64_t)size : 0);
        if (src_fd < 0)
            fm_count_bytes(m, n);
    }
out:
    free(buf);
    return r;
}

/* Stage entry e's file: from the payload stream (raw == NULL) or the staged copy raw, into the
 * temporary sibling of its destination, with mode and owner, fsync'd. */
static int stage_file(fm *m, plan *p, entry *e, int64_t size, const char *raw,
                      struct molt_sdk_error *err)
{
    char *tmp = fm_sibling(e->dest, "new"), *dir = fm_dirname(e->dest);
    int fd = -1, src = -1, r;
    struct stat st;
    if (!tmp || !dir) {
        r = fm_err(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    if ((r = fm_rm_rf(tmp, err)) < 0 || (r = fm_check_space(dir, (uint64_t)size, e->dest, err)) < 0)
        goto out;
    if ((r = plan_save(m, p, err)) < 0)   /* Cleanup knows the sibling before it exists */
        goto out;
    /* A staged copy on the destination's file system is moved, not copied. */
    struct stat raw_st, dir_st;
    int move = raw && stat(raw, &raw_st) == 0 && stat(dir, &dir_st) == 0 &&
               raw_st.st_dev == dir_st.st_dev;
    if (move && rename(raw, tmp) != 0) {
        if (errno != EXDEV) {   /* EXDEV: two mounts of one file system (bind): copy */
            r = molt_sdk_err_errno(err, errno, "rename %s to %s", raw, tmp);
            goto out;
        }
        move = 0;
    }
    fd = move ? open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
              : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fstat(fd, &st) != 0) {
        r = molt_sdk_err_errno(err, errno, "create %s", tmp);
        goto out;
    }
    /* The inode goes into the kv store with the plan saved at the end of Download: nothing
     * reads it before ArtifactInstall (Cleanup removes the sibling by name). */
    e->dev = (unsigned long long)st.st_dev;
    e->ino = (unsigned long long)st.st_ino;
    if (raw && !move && (src = open(raw, O_RDONLY | O_CLOEXEC)) < 0) {
        r = molt_sdk_err_errno(err, errno, "open %s", raw);
        goto out;
    }
    if (!move && (r = copy_in(m, raw ? src : -1, fd, size, e->dest, err)) < 0)
        goto out;
    if ((e->uid >= 0 || e->gid >= 0) && fchown(fd, (uid_t)e->uid, (gid_t)e->gid) != 0) {
        r = molt_sdk_err_errno(err, errno, "chown %s to %ld:%ld", tmp, e->uid, e->gid);
        goto out;
    }
    if (fchmod(fd, (mode_t)(e->mode >= 0 ? e->mode : 0644)) != 0 || fsync(fd) != 0) {
        r = molt_sdk_err_errno(err, errno, "chmod/fsync %s", tmp);
        goto out;
    }
    /* The sibling's name needs no folder fsync here: ArtifactInstall fsyncs the folder (after
     * the backup link, or the rename) before anything depends on the name, and a sibling lost
     * by a power cut before that is an install that did not happen (docs/performance.md). */
    r = close(fd) == 0 ? 0 : fm_err(err, MOLT_EIO, "close %s", tmp);
    fd = -1;
    if (r == 0)
        molt_sdk_log_info(m->h, "staged %s (%lld bytes) as %s", e->dest, (long long)size, tmp);
out:
    if (fd >= 0)
        close(fd);
    if (src >= 0)
        close(src);
    free(tmp);
    free(dir);
    return r;
}

/* The file of a tree's deferred owners and modes (fm_extract_tar): an unnamed file in the
 * deployment's tmp_dir(), starting with the default of the top folder (0755 under the umask,
 * molt's owner), which a "." entry of the tar overrides. */
static int fixup_file(fm *m, int *ret_fd, struct molt_sdk_error *err)
{
    int fd = open(m->h->tmp_dir(m->h), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        FILE *f = tmpfile();   /* a file system without O_TMPFILE */
        fd = f ? fcntl(fileno(f), F_DUPFD_CLOEXEC, 0) : -1;
        if (f)
            fclose(f);
    }
    if (fd < 0)
        return molt_sdk_err_errno(err, errno, "a temporary file in %s", m->h->tmp_dir(m->h));
    int r = fm_fixup_add(fd, "", geteuid(), getegid(), 0755 & ~(mode_t)m->umask, err);
    if (r < 0) {
        close(fd);
        return r;
    }
    *ret_fd = fd;
    return 0;
}

/* Stage entry e's tree: the tar from the payload stream (raw == NULL) or from raw, extracted
 * into the temporary sibling folder of its destination. */
static int stage_tree(fm *m, plan *p, entry *e, int64_t size, const char *raw,
                      struct molt_sdk_error *err)
{
    char *tmp = fm_sibling(e->dest, "new"), *dir = fm_dirname(e->dest);
    struct archive *a = NULL;
    int status = 0, r, fix = -1;
    uint64_t avail = 0;
    struct stat st;
    if (!tmp || !dir) {
        r = fm_err(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    /* The tar's size bounds what it holds: refuse early when even that is too much. */
    if ((r = fm_rm_rf(tmp, err)) < 0 || (r = fm_free_bytes(dir, &avail, err)) < 0 ||
        (r = fm_check_space(dir, (uint64_t)size, e->dest, err)) < 0 ||
        (r = plan_save(m, p, err)) < 0)
        goto out;
    /* 0700 until the payload verified: no other user reaches what an attacker may have sent. */
    if (mkdir(tmp, 0700) != 0 || stat(tmp, &st) != 0) {
        r = molt_sdk_err_errno(err, errno, "create %s", tmp);
        goto out;
    }
    /* The inode goes into the kv store with the plan saved at the end of Download: nothing
     * reads it before ArtifactInstall (Cleanup removes the sibling by name). */
    e->dev = (unsigned long long)st.st_dev;
    e->ino = (unsigned long long)st.st_ino;
    if ((r = fixup_file(m, &fix, err)) < 0)
        goto out;
    a = raw ? fm_archive_from_file(raw) : fm_archive_from_payload(m, &status);
    if (!a) {
        r = fm_err(err, MOLT_EIO, "open the tar of %s", e->dest);
        goto out;
    }
    r = fm_extract_tar(m, a, tmp, avail, fix, err);
    if (status < 0)
        r = fm_err(err, status, "payload file %s: read failed", e->payload);
    if (r < 0)
        goto out;
    if (!raw) {   /* the host needs the end of the payload file to check its checksum */
        const void *rest;
        int64_t n;
        while ((n = m->h->read_block(m->h, &rest)) > 0)
            fm_count_bytes(m, n);
        if (n < 0) {
            r = fm_err(err, (int)n, "payload file %s: read failed", e->payload);
            goto out;
        }
    }
    /* Verified (the read returned 0, or raw is a verified copy): the tar's owners and modes. */
    if ((r = fm_apply_fixups(fix, tmp, err)) < 0)
        goto out;
    if ((e->uid >= 0 || e->gid >= 0) && lchown(tmp, (uid_t)e->uid, (gid_t)e->gid) != 0) {
        r = molt_sdk_err_errno(err, errno, "chown %s", tmp);
        goto out;
    }
    if (e->mode >= 0 && chmod(tmp, (mode_t)e->mode) != 0) {
        r = molt_sdk_err_errno(err, errno, "chmod %s", tmp);
        goto out;
    }
    r = fsync_parent(tmp, err);
    if (r == 0)
        molt_sdk_log_info(m->h, "staged the tree %s as %s", e->dest, tmp);
out:
    if (a)
        archive_read_free(a);
    if (fix >= 0)
        close(fix);
    if (r < 0 && tmp)
        fm_rm_rf(tmp, NULL);
    free(tmp);
    free(dir);
    return r;
}

/* Read a small control file (dest_dir, filename, permissions) whole, trailing blanks dropped (as
 * the community modules' $(cat file)). */
static int read_ctl(fm *m, const char *name, int64_t size, char **ret, struct molt_sdk_error *err)
{
    if (size > CTL_MAX)
        return fm_err(err, MOLT_ELIMIT, "payload file %s: %lld bytes, at most %d allowed", name,
                      (long long)size, CTL_MAX);
    char *buf = malloc(CTL_MAX + 1);
    size_t len = 0;
    if (!buf)
        return fm_err(err, MOLT_ENOMEM, "out of memory");
    for (;;) {
        int64_t n = m->h->read(m->h, buf + len, CTL_MAX + 1 - len);
        if (n == 0)
            break;
        if (n < 0) {
            free(buf);
            return fm_err(err, (int)n, "payload file %s: read failed", name);
        }
        len += (size_t)n;
        if (len > CTL_MAX) {
            free(buf);
            return fm_err(err, MOLT_ELIMIT, "payload file %s: more than %d bytes", name, CTL_MAX);
        }
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        free(buf);
        return fm_err(err, MOLT_EFORMAT, "payload file %s holds a NUL byte", name);
    }
    while (len > 0 && strchr(" \t\r\n", buf[len - 1]))
        buf[--len] = '\0';
    free(*ret);
    *ret = buf;
    return 0;
}

/* Stage the current payload file into tmp_dir()/<name>, for a destination not yet known. */
static int stage_raw(fm *m, const char *name, int64_t size, struct molt_sdk_error *err)
{
    char *path = NULL, *tmp = NULL;
    int fd, r = molt_sdk_path_join(m->h->tmp_dir(m->h), name, &path, err);
    if (r == 0)
        r = fm_check_space(m->h->tmp_dir(m->h), (uint64_t)size, name, err);
    if (r == 0)
        r = molt_sdk_atomic_open(path, 0600, &fd, &tmp, err);
    if (r == 0) {
        r = copy_in(m, -1, fd, size, name, err);
        if (r == 0)
            r = molt_sdk_atomic_commit(fd, tmp, path, err);
        else
            molt_sdk_atomic_abort(fd, tmp);
    }
    if (r == 0)
        molt_sdk_log_info(m->h, "payload file %s arrived before its destination was known: "
                          "staged in %s (it is moved or copied next to the destination at the "
                          "end of Download)", name, path);
    free(path);
    return r;
}

/* single-file: permissions given after the file was staged: chmod the staged file. */
static int apply_mode(entry *e, const char *perms, struct molt_sdk_error *err)
{
    char *tmp = fm_sibling(e->dest, "new");
    int fd = tmp ? open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1, r = 0;
    if ((e->mode = parse_mode(perms)) < 0)
        r = fm_err(err, MOLT_EINVAL, "permissions '%s' is not an octal mode", perms);
    else if (fd < 0 || fchmod(fd, (mode_t)e->mode) != 0 || fsync(fd) != 0)
        r = molt_sdk_err_errno(err, errno, "chmod %s", tmp ? tmp : e->dest);
    if (fd >= 0)
        close(fd);
    free(tmp);
    return r;
}

/* A new entry of p for raw destination dest, resolved and checked. */
static int add_entry(fm *m, plan *p, char kind, const char *dest, const char *payload,
                     entry **ret, struct molt_sdk_error *err)
{
    if (p->n == ENTRIES_MAX)
        return fm_err(err, MOLT_ELIMIT, "more than %d destinations", ENTRIES_MAX);
    entry *e = &p->e[p->n];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->mode = e->uid = e->gid = -1;
    int r = fm_resolve_dest(m, dest, &e->dest, &e->made, err);
    if (r < 0)
        return r;
    p->n++;   /* from here on, Cleanup knows it (and the folders made for it) */
    for (size_t i = 0; i + 1 < p->n; i++)
        if (strcmp(p->e[i].dest, e->dest) == 0)
            return fm_err(err, MOLT_EINVAL, "destination %s is named twice", dest);
    struct stat st;
    if (lstat(e->dest, &st) == 0 && (kind == 't') != !!S_ISDIR(st.st_mode))
        return fm_err(err, MOLT_EINVAL, "destination %s exists and is %s", e->dest,
                      kind == 't' ? "not a folder (a tree goes there)"
                                  : "a folder (a file goes there)");
    if (!(e->payload = strdup(payload)))
        return fm_err(err, MOLT_ENOMEM, "out of memory");
    *ret = e;
    return 0;
}

static entry *find_payload(plan *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->e[i].payload && strcmp(p->e[i].payload, name) == 0)
            return &p->e[i];
    return NULL;
}

/* Owner or group from meta-data: a name or a number; -1 when absent. */
static int meta_id(const char *md, const char *ptr, int group, long *ret,
                   struct molt_sdk_error *err)
{
    char *s = NULL;
    int64_t num;
    *ret = -1;
    if (molt_sdk_json_int(md, ptr, &num, NULL) == 0) {
        *ret = (long)num;
        return num >= 0 ? 0 : fm_err(err, MOLT_EINVAL, "meta-data %s: negative id", ptr);
    }
    int r = molt_sdk_json_string(md, ptr, &s, err);
    if (r == MOLT_ENOTFOUND)
        return 0;
    if (r < 0)
        return r;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end) {
        *ret = v;
    } else if (group) {
        struct group *g = getgrnam(s);
        if (g)
            *ret = (long)g->gr_gid;
    } else {
        struct passwd *pw = getpwnam(s);
        if (pw)
            *ret = (long)pw->pw_uid;
    }
    r = *ret >= 0 ? 0 : fm_err(err, MOLT_EINVAL, "meta-data %s: unknown %s '%s'", ptr,
                               group ? "group" : "user", s);
    free(s);
    return r;
}

/* The entries of a "file" payload's meta-data:
 *   {"entries": [{"path": "/abs", "file": "<payload name>" | "tree": "<payload tar>",
 *                 "mode": "0644" | 420, "owner": "root" | 0, "group": "root" | 0}, ...]} */
static int plan_from_meta(fm *m, plan *p, struct molt_sdk_error *err)
{
    const char *md = m->h->meta_data(m->h);
    size_t n;
    int r = molt_sdk_json_count(md, "/entries", &n, err);
    if (r < 0)
        return fm_err(err, r, "meta-data: no \"entries\" list (%s)", err->msg);
    if (n == 0)
        return fm_err(err, MOLT_EINVAL, "meta-data: \"entries\" is empty");
    for (size_t i = 0; i < n && r == 0; i++) {
        char ptr[64], *path = NULL, *name = NULL, *smode = NULL;
        char kind = 'f';
        entry *e;
        snprintf(ptr, sizeof ptr, "/entries/%zu/path", i);
        if ((r = molt_sdk_json_string(md, ptr, &path, err)) < 0)
            break;
        snprintf(ptr, sizeof ptr, "/entries/%zu/file", i);
        if (molt_sdk_json_string(md, ptr, &name, NULL) < 0) {
            kind = 't';
            snprintf(ptr, sizeof ptr, "/entries/%zu/tree", i);
            if (molt_sdk_json_string(md, ptr, &name, NULL) < 0) {
                free(path);
                r = fm_err(err, MOLT_EINVAL, "meta-data /entries/%zu: neither \"file\" nor "
                           "\"tree\" names a payload file", i);
                break;
            }
        }
        r = find_payload(p, name) ? fm_err(err, MOLT_EINVAL, "meta-data: payload file %s is "
                                           "named by two entries", name)
                                  : add_entry(m, p, kind, path, name, &e, err);
        free(path);
        free(name);
        if (r < 0)
            break;
        int64_t num;
        snprintf(ptr, sizeof ptr, "/entries/%zu/mode", i);
        if (molt_sdk_json_int(md, ptr, &num, NULL) == 0) {
            e->mode = num >= 0 && num <= 07777 ? (long)num : -2;
        } else if (molt_sdk_json_string(md, ptr, &smode, NULL) == 0) {
            e->mode = parse_mode(smode);
            free(smode);
            if (e->mode < 0)
                e->mode = -2;
        }
        if (e->mode == -2) {
            r = fm_err(err, MOLT_EINVAL, "meta-data %s: not an octal mode", ptr);
            break;
        }
        snprintf(ptr, sizeof ptr, "/entries/%zu/owner", i);
        if ((r = meta_id(md, ptr, 0, &e->uid, err)) < 0)
            break;
        snprintf(ptr, sizeof ptr, "/entries/%zu/group", i);
        r = meta_id(md, ptr, 1, &e->gid, err);
    }
    return r;
}

/* Move or copy a payload file staged in tmp_dir() into place (single-file and directory when
 * the destination came after the data). */
static int stage_from_raw(fm *m, plan *p, entry *e, struct molt_sdk_error *err)
{
    char *raw = NULL;
    struct stat st;
    int r = molt_sdk_path_join(m->h->tmp_dir(m->h), e->payload, &raw, err);
    if (r < 0)
        return r;
    if (stat(raw, &st) != 0) {
        r = fm_err(err, MOLT_ENOTFOUND, "the payload has no file %s", e->payload);
    } else if (e->kind == 't') {
        r = stage_tree(m, p, e, st.st_size, raw, err);
    } else {
        r = stage_file(m, p, e, st.st_size, raw, err);
    }
    free(raw);
    return r;
}

static int download(void *st)
{
    fm *m = st;
    const struct molt_host_api *h = m->h;
    const char *type = h->payload_type(h);
    struct molt_sdk_error err = {0};
    plan p = {.n = 0};
    char *dest_dir = NULL, *filename = NULL, *perms = NULL, *dest = NULL;
    const char *name;
    int64_t size;
    int r, single = strcmp(type, "single-file") == 0, dir = strcmp(type, "directory") == 0;
    m->bytes = 0;
    h->kv_delete(h, KEY_COMMITTED);
    if ((r = fm_load_roots(m, &err)) < 0)
        goto out;
    if (!single && !dir && (r = plan_from_meta(m, &p, &err)) < 0)
        goto out;
    while ((r = h->next_file(h, &name, &size)) == 1) {
        entry *e = NULL;
        if ((single || dir) && strcmp(name, "dest_dir") == 0) {
            r = read_ctl(m, name, size, &dest_dir, &err);
        } else if (single && strcmp(name, "filename") == 0) {
            r = read_ctl(m, name, size, &filename, &err);
        } else if (single && strcmp(name, "permissions") == 0) {
            r = read_ctl(m, name, size, &perms, &err);
        } else if (single || dir) {
            const char *want = single ? filename : "update.tar";
            if (want && strcmp(name, want) != 0) {
                molt_sdk_log_info(h, "payload file %s ignored (not %s)", name, want);
                continue;
            }
            if (!dest_dir || !want) {   /* the destination is not known yet */
                r = stage_raw(m, name, size, &err);
            } else {
                free(dest);
                dest = NULL;
                if (asprintf(&dest, "%s/%s", dest_dir, single ? filename : "") < 0)
                    dest = NULL;
                if (!dest) {
                    r = fm_err(&err, MOLT_ENOMEM, "out of memory");
                    goto out;
                }
                if ((r = add_entry(m, &p, single ? 'f' : 't', dest, name, &e, &err)) == 0) {
                    if (single && perms && (e->mode = parse_mode(perms)) < 0)
                        r = fm_err(&err, MOLT_EINVAL, "permissions '%s' is not an octal mode",
                                   perms);
                    else
                        r = e->kind == 'f' ? stage_file(m, &p, e, size, NULL, &err)
                                           : stage_tree(m, &p, e, size, NULL, &err);
                }
            }
        } else if ((e = find_payload(&p, name)) != NULL) {
            r = e->kind == 'f' ? stage_file(m, &p, e, size, NULL, &err)
                               : stage_tree(m, &p, e, size, NULL, &err);
        } else {
            molt_sdk_log_warning(h, "payload file %s is named by no entry: ignored", name);
        }
        if (r < 0)
            goto out;
    }
    if (r < 0) {
        r = fm_err(&err, r, "reading the payload failed");
        goto out;
    }
    if (single || dir) {
        if (!dest_dir || !*dest_dir || (single && (!filename || !*filename))) {
            r = fm_err(&err, MOLT_EINVAL, "dest_dir%s undefined: the payload needs the file%s",
                       single ? " or filename are" : " is",
                       single ? "s dest_dir and filename" : " dest_dir");
            goto out;
        }
        if (p.n == 0) {   /* the data came first: staged in tmp_dir() */
            entry *e = NULL;
            const char *payload = single ? filename : "update.tar";
            free(dest);
            if (asprintf(&dest, "%s/%s", dest_dir, single ? filename : "") < 0) {
                dest = NULL;
                r = fm_err(&err, MOLT_ENOMEM, "out of memory");
                goto out;
            }
            if ((r = add_entry(m, &p, single ? 'f' : 't', dest, payload, &e, &err)) < 0)
                goto out;
            if (single && perms && (e->mode = parse_mode(perms)) < 0) {
                r = fm_err(&err, MOLT_EINVAL, "permissions '%s' is not an octal mode", perms);
                goto out;
            }
            if ((r = stage_from_raw(m, &p, e, &err)) < 0)
                goto out;
        }
    }
    /* Permissions that came after the data (the mode was not set when it was staged). */
    if (single && perms && p.n == 1 && p.e[0].mode < 0 && (r = apply_mode(&p.e[0], perms, &err)) < 0)
        goto out;
    for (size_t i = 0; i < p.n; i++)
        if (p.e[i].ino == 0) {
            r = fm_err(&err, MOLT_ENOTFOUND, "the payload has no file %s (for %s)",
                       p.e[i].payload, p.e[i].dest);
            goto out;
        }
    r = plan_save(m, &p, &err);
    fm_kill_point(m, "staged");
out:
    if (r < 0 && p.n > 0)   /* Cleanup removes what was staged and the folders made */
        plan_save(m, &p, NULL);
    plan_free(&p);
    free(dest_dir);
    free(filename);
    free(perms);
    free(dest);
    return r < 0 ? molt_sdk_fail(h, &err) : 0;
}

/* ---- ArtifactInstall ------------------------------------------------------------------------- */

/* The siblings of a destination: staged content, backup, what is being deleted. */
typedef struct sibs {
    char *tmp, *old, *trash;
} sibs;

static void sibs_free(sibs *s)
{
    free(s->tmp);
    free(s->old);
    free(s->trash);
}

static int sibs_get(const entry *e, sibs *s, struct molt_sdk_error *err)
{
    s->tmp = fm_sibling(e->dest, "new");
    s->old = fm_sibling(e->dest, "old");
    s->trash = fm_sibling(e->dest, "trash");
    if (s->tmp && s->old && s->trash)
        return 0;
    sibs_free(s);
    return fm_err(err, MOLT_ENOMEM, "out of memory");
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Does path hold e's new content (the staged inode)? */
static int holds_new(const entry *e, const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && (unsigned long long)st.st_dev == e->dev &&
           (unsigned long long)st.st_ino == e->ino;
}

static int do_rename(const char *from, const char *to, struct molt_sdk_error *err)
{
    if (rename(from, to) != 0)
        return molt_sdk_err_errno(err, errno, "rename %s to %s", from, to);
    return fsync_parent(to, err);
}

/* Swap the folders a and b in one step; where the file system lacks RENAME_EXCHANGE, the
 * fallback moves b aside to aside and a to b (a window where b is missing), said in the log. */
static int swap_trees(fm *m, const char *a, const char *b, const char *aside,
                      struct molt_sdk_error *err)
{
    if (m->no_exchange)
        errno = EINVAL;
    else if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
        return fsync_parent(b, err);
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return molt_sdk_err_errno(err, errno, "exchange %s and %s", a, b);
    molt_sdk_log_warning(m->h, "the file system of %s has no renameat2(RENAME_EXCHANGE) (%s): "
                         "NOT ATOMIC: moving it aside and the new tree in with two renames; "
                         "%s is missing between them", b, strerror(errno), b);
    int r = do_rename(b, aside, err);
    fm_kill_point(m, "fallback-aside");
    return r < 0 ? r : do_rename(a, b, err);
}

static int install_entry(fm *m, const entry *e, struct molt_sdk_error *err)
{
    sibs sb;
    int r = sibs_get(e, &sb, err);
    if (r < 0)
        return r;
    const char *tmp = sb.tmp, *old = sb.old;
    if (!holds_new(e, tmp)) {
        r = fm_err(err, MOLT_ESTATE, "the staged %s is missing (%s)", e->dest, tmp);
        goto out;
    }
    if (exists(old)) {
        molt_sdk_log_warning(m->h, "removing %s, left by an earlier deployment", old);
        if ((r = fm_rm_rf(old, err)) < 0)
            goto out;
    }
    if (!exists(e->dest)) {
        r = do_rename(tmp, e->dest, err);
    } else if (e->kind == 'f') {
        /* The backup is a second name of the current file: no copy, no space. */
        if (link(e->dest, old) != 0) {
            if (errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK) {
                r = molt_sdk_err_errno(err, errno, "link %s to %s", e->dest, old);
                goto out;
            }
            struct stat st;
            char *dir = fm_dirname(e->dest);
            if (stat(e->dest, &st) != 0 || !dir ||
                (r = fm_check_space(dir, (uint64_t)st.st_size, "the backup copy", err)) < 0 ||
                (r = molt_sdk_copy_file(e->dest, old, st.st_mode & 07777, NULL, NULL, err)) < 0) {
                free(dir);
                r = r < 0 ? r : fm_err(err, MOLT_EIO, "back up %s", e->dest);
                goto out;
            }
            free(dir);
        } else if ((r = fsync_parent(old, err)) < 0) {
            goto out;
        }
        fm_kill_point(m, "linked");
        r = do_rename(tmp, e->dest, err);
    } else {
        /* The staged tree and the current one trade places; the old one then gets its name. */
        if ((r = swap_trees(m, tmp, e->dest, old, err)) < 0)
            goto out;
        fm_kill_point(m, "exchanged");
        if (exists(tmp))
            r = do_rename(tmp, old, err);
    }
    if (r == 0)
        molt_sdk_log_info(m->h, "installed %s", e->dest);
out:
    sibs_free(&sb);
    return r;
}

static int artifact_install(void *st)
{
    fm *m = st;
    struct molt_sdk_error err = {0};
    plan p;
    int r = plan_load(m, &p, &err);
    if (r == 0 && p.n == 0)
        r = fm_err(&err, MOLT_ESTATE, "nothing was staged (no destinations in the kv store)");
    for (size_t i = 0; r == 0 && i < p.n; i++) {
        r = install_entry(m, &p.e[i], &err);
        fm_kill_point(m, "installed-one");
    }
    plan_free(&p);
    return r < 0 ? molt_sdk_fail(m->h, &err) : 0;
}

/* ---- ArtifactRollback, ArtifactCommit, Cleanup ------------------------------------------- */

/* Bring back e's previous content; safe to repeat at any point (see README.md "Recovery"). */
static int rollback_entry(fm *m, const entry *e, struct molt_sdk_error *err)
{
    sibs sb;
    int r = sibs_get(e, &sb, err);
    if (r < 0)
        return r;
    const char *tmp = sb.tmp, *old = sb.old, *trash = sb.trash;
    if (holds_new(e, e->dest)) {
        /* After an exchange whose follow-up rename did not happen, the old tree is at tmp. */
        const char *prev = exists(old) ? old : (e->kind == 't' && exists(tmp)) ? tmp : NULL;
        if (prev && e->kind == 't') {
            if ((r = swap_trees(m, prev, e->dest, trash, err)) < 0)
                goto out;
            fm_kill_point(m, "rollback-exchanged");
            r = fm_rm_rf(prev, err);
            if (r == 0 && exists(trash))
                r = fm_rm_rf(trash, err);
        } else if (prev) {
            r = do_rename(prev, e->dest, err);
        } else {   /* the destination did not exist before */
            if ((r = do_rename(e->dest, trash, err)) == 0)
                r = fm_rm_rf(trash, err);
            if (r == 0)
                fm_unmake_dirs(e->dest, e->made);
        }
        if (r == 0)
            molt_sdk_log_info(m->h, "rolled back %s", e->dest);
        goto out;
    }
    /* The destination holds the previous content (or nothing, in the fallback's window). */
    if (!exists(e->dest) && exists(old) && (r = do_rename(old, e->dest, err)) < 0)
        goto out;
    if ((r = fm_rm_rf(tmp, err)) == 0 && (r = fm_rm_rf(old, err)) == 0)
        r = fm_rm_rf(trash, err);
    if (r == 0 && !exists(e->dest))
        fm_unmake_dirs(e->dest, e->made);
out:
    sibs_free(&sb);
    return r;
}

static int artifact_rollback(void *st)
{
    fm *m = st;
    struct molt_sdk_error err = {0};
    plan p;
    /* A power cut during ArtifactCommit leads here: the backups are still there (Cleanup
     * deletes them), so the rollback is complete and the commit mark goes. */
    int r = m->h->kv_delete(m->h, KEY_COMMITTED), first = 0;
    if (r < 0)
        r = fm_err(&err, r, "kv store: deleting the commit mark failed");
    else
        r = plan_load(m, &p, &err);
    for (size_t i = p.n; r == 0 && i-- > 0;) {
        int one = rollback_entry(m, &p.e[i], &err);
        if (one < 0 && first == 0)
            first = one;   /* roll back every other entry anyway */
    }
    if (r == 0)
        plan_free(&p);
    return r < 0 || first < 0 ? molt_sdk_fail(m->h, &err) : 0;
}

/* ArtifactCommit only records the commit (durably, in the kv store): the backups are deleted by
 * Cleanup, which follows. A power cut during ArtifactCommit takes molt down the rollback path,
 * which must still find every backup whole. */
static int artifact_commit(void *st)
{
    fm *m = st;
    int r = m->h->kv_set(m->h, KEY_COMMITTED, "1", 1);
    if (r < 0)
        m->h->error(m->h, "kv store: recording the commit failed");
    else
        fm_kill_point(m, "committed");
    return r;
}

static int cleanup(void *st)
{
    fm *m = st;
    struct molt_sdk_error err = {0};
    plan p;
    int r = plan_load(m, &p, &err), committed = is_committed(m);
    for (size_t i = 0; r == 0 && i < p.n; i++) {
        const entry *e = &p.e[i];
        sibs sb;
        if ((r = sibs_get(e, &sb, &err)) < 0)
            break;
        const char *tmp = sb.tmp, *old = sb.old, *trash = sb.trash;
        int is_new = holds_new(e, e->dest);
        /* The fallback's window (destination moved aside, not replaced): put it back. */
        if (r == 0 && !exists(e->dest) && exists(old))
            r = do_rename(old, e->dest, &err);
        /* A half-deleted trash goes first. Then, when the destination does not hold the new
         * content, the staged copy and any stale backup; when it does and the update was
         * committed, the backup (one rename to the trash first: whole or gone). The backup of
         * an update neither committed nor rolled back is kept. */
        if (r == 0)
            r = fm_rm_rf(trash, &err);
        const char *prev = r < 0 ? NULL : exists(old) ? old
                         : (e->kind == 't' && is_new && exists(tmp)) ? tmp : NULL;
        if (r == 0 && !is_new) {
            if ((r = fm_rm_rf(tmp, &err)) == 0)
                r = fm_rm_rf(old, &err);
        } else if (prev && committed) {
            if ((r = do_rename(prev, trash, &err)) == 0) {
                fm_kill_point(m, "cleanup-trashed");
                r = fm_rm_rf(trash, &err);
            }
        } else if (prev) {
            molt_sdk_log_warning(m->h, "the backup %s of %s is kept: the update was neither "
                                 "committed nor rolled back", prev, e->dest);
        }
        sibs_free(&sb);
    }
    /* The folders made for destinations that did not come to be, once every sibling is gone
     * (a folder made for the first entry may hold the second's staged copy), last entry
     * first. */
    for (size_t i = p.n; r == 0 && i-- > 0;)
        if (!holds_new(&p.e[i], p.e[i].dest) && !exists(p.e[i].dest))
            fm_unmake_dirs(p.e[i].dest, p.e[i].made);
    fm_kill_point(m, "cleanup");
    if (r == 0 && (r = m->h->kv_delete(m->h, KEY_PLAN)) == 0)
        r = m->h->kv_delete(m->h, KEY_COMMITTED);
    plan_free(&p);
    return r < 0 ? molt_sdk_fail(m->h, &err) : 0;
}

/* The answers, explicit (the host would give the same from the capability bits): no reboot, ever;
 * rollback always (the backup is kept until Cleanup after the commit). */
static int needs_artifact_reboot(void *st)
{
    (void)st;
    return MOLT_MODULE_REBOOT_NO;
}

static int supports_rollback(void *st)
{
    (void)st;
    return 1;
}

static const char *const types[] = {"single-file", "directory", "file", NULL};

static const struct molt_module_desc desc = {
    MOLT_MODULE_V1,
    .name = "file",
    .version = "1.0.0",
    .payload_types = types,
    .capabilities = MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK,
    .init = init,
    .fini = fini,
    .download = download,
    .artifact_install = artifact_install,
    .needs_artifact_reboot = needs_artifact_reboot,
    .supports_rollback = supports_rollback,
    .artifact_commit = artifact_commit,
    .artifact_rollback = artifact_rollback,
    .cleanup = cleanup,
};

const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
