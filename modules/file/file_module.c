/* SPDX-License-Identifier: Apache-2.0 */
/* The file module: payload types single-file, directory (the files of Mender's community modules)
 * and file (entries listed in meta-data), streamed into temporary siblings of their destinations,
 * activated by renameat2(RENAME_EXCHANGE) (the sibling then holds the previous version: the
 * backup) or rename, rolled back from that backup, which Cleanup deletes after a commit.
 * See docs/file-module.md for the contract, the on-disk names and the recovery rules. */
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
#define KEY_PLAN "plan"             /* kv store, or deployment values (plan.in_dep) */
#define KEY_COMMITTED "committed"   /* deployment value: ArtifactCommit ran (artifact_commit); in
                                       the kv store, written by the module before 2026-12 */
#define COMMIT_MARK "committed"     /* in tmp_dir(): the same, by the module of 2026-12 before the
                                       deployment values (still honoured with a kv plan) */
#define RAW_DIR "payload"           /* in tmp_dir(): payload files staged before their dest */

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
    int dirty;                 /* changed since the kv store last got it (plan_save) */
    int in_dep;                /* kept in the deployment values, not the kv store: one file staged
                                  unnamed, named only in ArtifactInstall (stage_file) */
} plan;

/* ---- the plan: in the kv store, or in the deployment values ------------------------------ */

static void plan_free(plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->e[i].dest);
        free(p->e[i].made);
        free(p->e[i].payload);
    }
    p->n = 0;
}

static int plan_save(fm *m, plan *p, struct molt_sdk_error *err)
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
    /* The deployment values are saved with the host's next record: no write of their own. */
    int r = p->in_dep ? m->h->dep_set(m->h, KEY_PLAN, buf, used)
                      : m->h->kv_set(m->h, KEY_PLAN, buf, used);
    free(buf);
    if (r == 0)
        p->dirty = 0;
    return r < 0 ? fm_err(err, r, "%s: saving the destinations failed",
                          p->in_dep ? "deployment values" : "kv store")
                 : 0;
}

static int plan_load(fm *m, plan *p, struct molt_sdk_error *err)
{
    char *buf = malloc(PLAN_MAX + 1);
    size_t len = 0;
    /* This deployment's plan in its values, else the kv store's (a tree, no O_TMPFILE, or a
     * deployment an older module began). */
    int r = buf && m->dep ? m->h->dep_get(m->h, KEY_PLAN, buf, PLAN_MAX, &len) : MOLT_ENOTFOUND;
    p->in_dep = r != MOLT_ENOTFOUND;
    if (!buf)
        r = MOLT_ENOMEM;
    else if (r == MOLT_ENOTFOUND)
        r = m->h->kv_get(m->h, KEY_PLAN, buf, PLAN_MAX, &len);
    p->n = 0;
    p->dirty = 0;
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

/* tmp_dir()/name (malloc'd), or NULL when out of memory. */
static char *in_tmp(fm *m, const char *name)
{
    char *out = NULL;
    return asprintf(&out, "%s/%s", m->h->tmp_dir(m->h), name) < 0 ? NULL : out;
}

/* Did ArtifactCommit run for this deployment (and no rollback since)? Its deployment value;
 * with a kv plan also the marks of an older file module: in tmp_dir(), or the kv key. */
static int is_committed(fm *m, const plan *p)
{
    char v[4];
    size_t len;
    if (m->dep && m->h->dep_get(m->h, KEY_COMMITTED, v, sizeof v, &len) == 0)
        return 1;
    if (p->in_dep)
        return 0;
    char *mark = in_tmp(m, COMMIT_MARK);
    struct stat st;
    int yes = mark && lstat(mark, &st) == 0;
    free(mark);
    return yes || m->h->kv_get(m->h, KEY_COMMITTED, v, sizeof v, &len) == 0;
}

/* Record e's staged content (device and inode): changes the plan when they differ. */
static void set_staged(plan *p, entry *e, const struct stat *st)
{
    if (e->dev != (unsigned long long)st->st_dev || e->ino != (unsigned long long)st->st_ino)
        p->dirty = 1;
    e->dev = (unsigned long long)st->st_dev;
    e->ino = (unsigned long long)st->st_ino;
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
    /* An unnamed staged file is given its name with linkat: through /proc/self/fd, or as root
     * with AT_EMPTY_PATH (CAP_DAC_READ_SEARCH). */
    m->tmpfile = !m->no_exchange && (access("/proc/self/fd", X_OK) == 0 || geteuid() == 0);
    m->dep = MOLT_HOST_HAS(host, dep_get) && MOLT_HOST_HAS(host, dep_set) &&
             MOLT_HOST_HAS(host, dep_delete);
    m->keeps = m->dep && MOLT_HOST_HAS(host, keeps_state) && host->keeps_state(host) == 1;
    m->staged_fd = -1;
    /* The umask, for the default mode of a tree's top folder (read once, set back at once). */
    m->umask = umask(022);
    umask(m->umask);
    *ret_state = m;
    return 0;
}

static void fini(void *st)
{
    fm *m = st;
    if (m->staged_fd >= 0)
        close(m->staged_fd);   /* an unnamed staged file that ArtifactInstall never got: gone */
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

/* Give the unnamed file fd (O_TMPFILE) the name path. */
static int link_unnamed(int fd, const char *path, struct molt_sdk_error *err)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 ||
        (errno == ENOENT && linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0))
        return 0;
    return molt_sdk_err_errno(err, errno, "link the staged file as %s", path);
}

/* Stage entry e's file: from the payload stream (raw == NULL) or the staged copy raw, into the
 * temporary sibling of its destination, with mode and owner, fsync'd. The plan names the
 * sibling, with its inode, in the kv store before the sibling's name exists: the file is written
 * unnamed (O_TMPFILE) and linked once the plan is saved (one kv write; a cut before the link
 * leaves nothing behind). Without O_TMPFILE the plan is saved before the named sibling is
 * created, and again at the end of Download with its inode.
 * The plan's only file, streamed into a folder that exists, with a host that keeps the
 * deployment values and this process's state (fm.keeps): the unnamed file stays unnamed, open
 * (fm.staged_fd), and the plan goes into the deployment values, saved with the host's record of
 * ArtifactInstall; ArtifactInstall links it. Download then names nothing: a cut during it leaves
 * nothing for Cleanup (MOLT_CAP_LAZY_DOWNLOAD), and an ArtifactInstall in a later process
 * (molt stopped in between) finds it gone and fails into the rollback path, which finds nothing
 * changed. */
static int stage_file(fm *m, plan *p, entry *e, int64_t size, const char *raw,
                      struct molt_sdk_error *err)
{
    char *tmp = fm_sibling(e->dest, "new"), *dir = fm_dirname(e->dest);
    int fd = -1, src = -1, r, moved = 0, unnamed = 0;
    struct stat st;
    if (!tmp || !dir) {
        r = fm_err(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    if ((r = fm_rm_rf(tmp, err)) < 0 || (r = fm_check_space(dir, (uint64_t)size, e->dest, err)) < 0)
        goto out;
    /* A staged copy on the destination's file system is moved, not copied. */
    struct stat raw_st, dir_st;
    if (raw && stat(raw, &raw_st) == 0 && stat(dir, &dir_st) == 0 &&
        raw_st.st_dev == dir_st.st_dev) {
        set_staged(p, e, &raw_st);
        if ((r = plan_save(m, p, err)) < 0)   /* Cleanup knows the sibling before it exists */
            goto out;
        moved = rename(raw, tmp) == 0;
        if (!moved && errno != EXDEV) {   /* EXDEV: two mounts of one file system (bind): copy */
            r = molt_sdk_err_errno(err, errno, "rename %s to %s", raw, tmp);
            goto out;
        }
    }
    if (moved) {
        fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    } else {
        fd = m->tmpfile ? open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600) : -1;
        unnamed = fd >= 0;
        if (fd < 0 && m->tmpfile && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
            r = molt_sdk_err_errno(err, errno, "create a file in %s", dir);
            goto out;
        }
        if (!unnamed && p->dirty && (r = plan_save(m, p, err)) < 0)   /* as above */
            goto out;
        if (!unnamed)
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0 || fstat(fd, &st) != 0) {
        r = molt_sdk_err_errno(err, errno, "create %s", tmp);
        goto out;
    }
    /* A named sibling's inode goes into the kv store with the plan saved at the end of Download:
     * nothing reads it before ArtifactInstall (Cleanup removes the sibling by name). */
    set_staged(p, e, &st);
    if (raw && !moved && (src = open(raw, O_RDONLY | O_CLOEXEC)) < 0) {
        r = molt_sdk_err_errno(err, errno, "open %s", raw);
        goto out;
    }
    if (!moved && (r = copy_in(m, raw ? src : -1, fd, size, e->dest, err)) < 0)
        goto out;
    if ((e->uid >= 0 || e->gid >= 0) && fchown(fd, (uid_t)e->uid, (gid_t)e->gid) != 0) {
        r = molt_sdk_err_errno(err, errno, "chown %s to %ld:%ld", tmp, e->uid, e->gid);
        goto out;
    }
    if (fchmod(fd, (mode_t)(e->mode >= 0 ? e->mode : 0644)) != 0 || fsync(fd) != 0) {
        r = molt_sdk_err_errno(err, errno, "chmod/fsync %s", tmp);
        goto out;
    }
    /* (A destination of up to 2 KiB: its plan line and the commit mark stay well inside the
     * deployment values' MOLT_DEP_VALUES_MAX.) */
    if (unnamed && m->keeps && !raw && !e->made && p->n == 1 && !p->in_dep &&
        strlen(e->dest) <= 2048) {
        p->in_dep = 1;
        if ((r = plan_save(m, p, err)) < 0)
            goto out;
        fm_kill_point(m, "planned-dep");
        m->staged_fd = fd;   /* linked by ArtifactInstall */
        fd = -1;
        molt_sdk_log_info(m->h, "staged %s (%lld bytes), unnamed until ArtifactInstall",
                          e->dest, (long long)size);
        goto out;
    }
    if (unnamed) {
        if ((r = plan_save(m, p, err)) < 0)
            goto out;
        fm_kill_point(m, "planned-unnamed");
        if ((r = link_unnamed(fd, tmp, err)) < 0)
            goto out;
    }
    /* The sibling's name needs no folder fsync here: ArtifactInstall fsyncs the folder (after
     * the exchange, or the rename) before anything depends on the name, and a sibling lost by
     * a power cut before that is an install that did not happen (docs/performance.md). */
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
    const fm_tar *tar = NULL;
    int status = 0, r, fix = -1;
    uint64_t avail = 0;
    struct stat st;
    if (!tmp || !dir) {
        r = fm_err(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    /* The tar support, loaded on the first tree: without it, nothing is made. */
    if ((r = fm_tar_load(&tar, err)) < 0)
        goto out;
    /* The tar's size bounds what it holds: refuse early when even that is too much. */
    if ((r = fm_rm_rf(tmp, err)) < 0 || (r = fm_free_bytes(dir, &avail, err)) < 0 ||
        (r = fm_check_space(dir, (uint64_t)size, e->dest, err)) < 0 ||
        (p->dirty && (r = plan_save(m, p, err)) < 0))   /* the sibling known before it exists */
        goto out;
    /* 0700 until the payload verified: no other user reaches what an attacker may have sent. */
    if (mkdir(tmp, 0700) != 0 || stat(tmp, &st) != 0) {
        r = molt_sdk_err_errno(err, errno, "create %s", tmp);
        goto out;
    }
    /* The inode goes into the kv store with the plan saved at the end of Download: nothing
     * reads it before ArtifactInstall (Cleanup removes the sibling by name). */
    set_staged(p, e, &st);
    if ((r = fixup_file(m, &fix, err)) < 0)
        goto out;
    r = tar->extract(m, raw, e->dest, tmp, avail, fix, &status, err);
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
    /* Everything below the top folder was synced by fm_apply_fixups (syncfs); the top folder's
     * own mode and owner, set after it, need its fsync. Its name needs none here, as a staged
     * file's (stage_file). */
    if (e->uid >= 0 || e->gid >= 0 || e->mode >= 0)
        r = molt_sdk_fsync_dir(tmp, err);
    if (r == 0)
        molt_sdk_log_info(m->h, "staged the tree %s as %s", e->dest, tmp);
out:
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

/* Where payload file name is staged when it comes before its destination: tmp_dir()/payload/
 * (a folder of its own: no payload name meets the commit mark). */
static int raw_path(fm *m, const char *name, char **ret, struct molt_sdk_error *err)
{
    char *dir = in_tmp(m, RAW_DIR);
    int r = dir ? molt_sdk_path_join(dir, name, ret, err) : fm_err(err, MOLT_ENOMEM, "out of memory");
    free(dir);
    return r;
}

/* Stage the current payload file into tmp_dir()/payload/<name>, for a destination not yet
 * known. */
static int stage_raw(fm *m, const char *name, int64_t size, struct molt_sdk_error *err)
{
    char *path = NULL, *dir = in_tmp(m, RAW_DIR);
    int fd = -1, r = dir ? 0 : fm_err(err, MOLT_ENOMEM, "out of memory");
    if (r == 0 && mkdir(dir, 0700) != 0 && errno != EEXIST)
        r = molt_sdk_err_errno(err, errno, "create %s", dir);
    free(dir);
    if (r == 0)
        r = raw_path(m, name, &path, err);
    if (r == 0)
        r = fm_check_space(m->h->tmp_dir(m->h), (uint64_t)size, name, err);
    /* Not fsync'd: it is read by this process only, and fsync'd where it ends up (stage_file
     * after moving it, the copy, or the tree extracted from it); a cut during Download leads to
     * Cleanup, and the host removes tmp_dir(). */
    if (r == 0 && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                             0600)) < 0)
        r = molt_sdk_err_errno(err, errno, "create %s", path);
    if (r == 0) {
        r = copy_in(m, -1, fd, size, name, err);
        if (close(fd) != 0 && r == 0)
            r = molt_sdk_err_errno(err, errno, "close %s", path);
        if (r < 0)
            unlink(path);
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
    p->dirty = 1;
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
    int r = raw_path(m, e->payload, &raw, NULL);
    if (r < 0 || stat(raw, &st) != 0) {
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
    /* The inodes of named siblings (a tree, a file without O_TMPFILE): before ArtifactInstall. */
    if (p.dirty)
        r = plan_save(m, &p, &err);
    fm_kill_point(m, "staged");
out:
    if (r < 0 && m->staged_fd >= 0) {   /* the unnamed staged file goes with its last fd */
        close(m->staged_fd);
        m->staged_fd = -1;
    }
    if (r < 0 && p.dirty && p.n > 0)   /* Cleanup removes what was staged and the folders made */
        plan_save(m, &p, NULL);
    else if (r < 0 && p.n == 0)   /* nor may it act on the plan of an earlier deployment */
        h->kv_delete(h, KEY_PLAN);
    plan_free(&p);
    free(dest_dir);
    free(filename);
    free(perms);
    free(dest);
    return r < 0 ? molt_sdk_fail(h, &err) : 0;
}

/* ---- ArtifactInstall ------------------------------------------------------------------------- */

/* The siblings of a destination: staged content (after the exchange: the previous version, the
 * backup), the backup of the fallback, what is being deleted. */
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

/* The previous version of e while the destination holds the new one: the fallback's backup
 * (.molt-old), else the sibling the exchange left it in (.molt-new); NULL when the destination
 * did not exist before. */
static const char *backup_of(const sibs *s)
{
    return exists(s->old) ? s->old : exists(s->tmp) ? s->tmp : NULL;
}

static int do_rename(const char *from, const char *to, struct molt_sdk_error *err)
{
    if (rename(from, to) != 0)
        return molt_sdk_err_errno(err, errno, "rename %s to %s", from, to);
    return fsync_parent(to, err);
}

/* Exchange a and b in one step (renameat2 RENAME_EXCHANGE), then fsync their folder: 0; 1 when
 * the file system lacks the exchange (EINVAL, ENOSYS, EOPNOTSUPP; or the test knob), with errno
 * set; negative on any other failure. */
static int exchange(fm *m, const char *a, const char *b, struct molt_sdk_error *err)
{
    if (m->no_exchange) {
        errno = EINVAL;
        return 1;
    }
    if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
        return fsync_parent(b, err);
    if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
        return 1;
    return molt_sdk_err_errno(err, errno, "exchange %s and %s", a, b);
}

/* Swap the folders a and b in one step; where the file system lacks RENAME_EXCHANGE, the
 * fallback moves b aside to aside and a to b (a window where b is missing), said in the log. */
static int swap_trees(fm *m, const char *a, const char *b, const char *aside,
                      struct molt_sdk_error *err)
{
    int r = exchange(m, a, b, err);
    if (r <= 0)
        return r;
    molt_sdk_log_warning(m->h, "the file system of %s has no renameat2(RENAME_EXCHANGE) (%s): "
                         "NOT ATOMIC: moving it aside and the new tree in with two renames; "
                         "%s is missing between them", b, strerror(errno), b);
    r = do_rename(b, aside, err);
    fm_kill_point(m, "fallback-aside");
    return r < 0 ? r : do_rename(a, b, err);
}

/* A file without RENAME_EXCHANGE: the backup is a second name of the current file (no copy, no
 * space; a copy where hard links are refused), made durable, then the rename over it. */
static int replace_file(fm *m, const entry *e, const sibs *sb, struct molt_sdk_error *err)
{
    int r = 0;
    if (link(e->dest, sb->old) != 0) {
        if (errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK)
            return molt_sdk_err_errno(err, errno, "link %s to %s", e->dest, sb->old);
        struct stat st;
        char *dir = fm_dirname(e->dest);
        if (stat(e->dest, &st) != 0 || !dir ||
            (r = fm_check_space(dir, (uint64_t)st.st_size, "the backup copy", err)) < 0 ||
            (r = molt_sdk_copy_file(e->dest, sb->old, st.st_mode & 07777, NULL, NULL, err)) < 0) {
            free(dir);
            return r < 0 ? r : fm_err(err, MOLT_EIO, "back up %s", e->dest);
        }
        free(dir);
    } else if ((r = fsync_parent(sb->old, err)) < 0) {
        return r;
    }
    fm_kill_point(m, "linked");
    return do_rename(sb->tmp, e->dest, err);
}

/* The file Download staged unnamed (fm.staged_fd) as e's sibling tmp. Not fsync'd here: the
 * exchange's (or rename's) folder fsync makes the name durable with the rest, and a cut before
 * that takes the rollback path, which removes the sibling by the plan. */
static int link_staged(fm *m, const entry *e, const char *tmp, struct molt_sdk_error *err)
{
    struct stat st;
    if (fstat(m->staged_fd, &st) != 0 || (unsigned long long)st.st_dev != e->dev ||
        (unsigned long long)st.st_ino != e->ino)
        return 0;   /* not e's */
    int r = fm_rm_rf(tmp, err);
    if (r == 0)
        r = link_unnamed(m->staged_fd, tmp, err);
    close(m->staged_fd);
    m->staged_fd = -1;
    if (r == 0)
        fm_kill_point(m, "linked-staged");
    return r;
}

static int install_entry(fm *m, const plan *p, const entry *e, struct molt_sdk_error *err)
{
    sibs sb;
    int r = sibs_get(e, &sb, err);
    if (r < 0)
        return r;
    if (m->staged_fd >= 0 && (r = link_staged(m, e, sb.tmp, err)) < 0)
        goto out;
    if (!holds_new(e, sb.tmp) && p->in_dep) {
        r = fm_err(err, MOLT_ESTATE, "the staged %s is gone: it was kept unnamed by the molt "
                   "process that ran Download, which stopped before ArtifactInstall; install "
                   "the artifact again", e->dest);
        goto out;
    }
    if (!holds_new(e, sb.tmp)) {
        r = fm_err(err, MOLT_ESTATE, "the staged %s is missing (%s)", e->dest, sb.tmp);
        goto out;
    }
    if (exists(sb.old)) {
        molt_sdk_log_warning(m->h, "removing %s, left by an earlier deployment", sb.old);
        if ((r = fm_rm_rf(sb.old, err)) < 0)
            goto out;
    }
    if (!exists(e->dest)) {
        r = do_rename(sb.tmp, e->dest, err);
    } else if (e->kind == 't') {
        /* The staged tree and the current one trade places: the old one is the backup. */
        if ((r = swap_trees(m, sb.tmp, e->dest, sb.old, err)) == 0)
            fm_kill_point(m, "exchanged");
    } else if ((r = exchange(m, sb.tmp, e->dest, err)) == 0) {
        /* One step installs the new file and keeps the old one (now at .molt-new) as the
         * backup, one folder fsync makes both durable. */
        fm_kill_point(m, "exchanged");
    } else if (r > 0) {
        r = replace_file(m, e, &sb, err);
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
    fm_kill_point(m, "install-begin");
    if (r == 0 && p.n == 0)
        r = fm_err(&err, MOLT_ESTATE, "nothing was staged (no destinations in the kv store)");
    for (size_t i = 0; r == 0 && i < p.n; i++) {
        r = install_entry(m, &p, &p.e[i], &err);
        fm_kill_point(m, "installed-one");
    }
    plan_free(&p);
    return r < 0 ? molt_sdk_fail(m->h, &err) : 0;
}

/* ---- ArtifactRollback, ArtifactCommit, Cleanup ------------------------------------------- */

/* Bring back e's previous content; safe to repeat at any point (docs/file-module.md,
 * "Recovery"). */
static int rollback_entry(fm *m, const entry *e, struct molt_sdk_error *err)
{
    sibs sb;
    int r = sibs_get(e, &sb, err);
    if (r < 0)
        return r;
    const char *tmp = sb.tmp, *old = sb.old, *trash = sb.trash;
    if (holds_new(e, e->dest)) {
        const char *prev = backup_of(&sb);
        if (prev && e->kind == 't') {
            if ((r = swap_trees(m, prev, e->dest, trash, err)) < 0)
                goto out;
            fm_kill_point(m, "rollback-exchanged");
            r = fm_rm_rf(prev, err);
            if (r == 0 && exists(trash))
                r = fm_rm_rf(trash, err);
        } else if (prev) {
            r = do_rename(prev, e->dest, err);   /* the new file goes with its last name */
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

/* The commit mark goes before anything is restored: an entry whose restore fails keeps its
 * backup through the Cleanup that follows. The deployment value is saved with the host's next
 * record (a rollback never follows a saved one: it is saved with state Cleanup). The marks of
 * an older module (with a kv plan): made durable only when there was one (a rollback after a
 * cut during ArtifactCommit). */
static int uncommit(fm *m, const plan *p, struct molt_sdk_error *err)
{
    int d = m->dep ? m->h->dep_delete(m->h, KEY_COMMITTED) : 0;
    if (d < 0)
        return fm_err(err, d, "deployment values: deleting the commit mark failed");
    if (p->in_dep)
        return 0;
    char *mark = in_tmp(m, COMMIT_MARK);
    int r = mark ? 0 : fm_err(err, MOLT_ENOMEM, "out of memory");
    if (r == 0 && unlink(mark) == 0)
        r = molt_sdk_fsync_dir(m->h->tmp_dir(m->h), err);
    else if (r == 0 && errno != ENOENT)
        r = molt_sdk_err_errno(err, errno, "remove %s", mark);
    free(mark);
    int k = r < 0 ? 0 : m->h->kv_delete(m->h, KEY_COMMITTED);
    return k < 0 ? fm_err(err, k, "kv store: deleting the commit mark failed") : r;
}

static int artifact_rollback(void *st)
{
    fm *m = st;
    struct molt_sdk_error err = {0};
    plan p = {.n = 0};
    /* A power cut during ArtifactCommit leads here: the backups are still there (Cleanup
     * deletes them), so the rollback is complete. */
    int r = plan_load(m, &p, &err), first = 0;
    if (r == 0 && (r = uncommit(m, &p, &err)) < 0)
        plan_free(&p);
    for (size_t i = p.n; r == 0 && i-- > 0;) {
        int one = rollback_entry(m, &p.e[i], &err);
        if (one < 0 && first == 0)
            first = one;   /* roll back every other entry anyway */
    }
    if (r == 0)
        plan_free(&p);
    return r < 0 || first < 0 ? molt_sdk_fail(m->h, &err) : 0;
}

/* ArtifactCommit changes nothing a rollback needs: it leaves a mark for Cleanup, which deletes
 * the backups: a deployment value, saved with the host's record of state Cleanup, which follows
 * right after this returns; a cut before that record takes molt down the rollback path, which
 * does not see the value and finds every backup whole, or, when the cut also lost the host's
 * lazy record of state ArtifactCommit (MOLT_CAP_LAZY_COMMIT), leaves the update awaiting its
 * commit with the device as the install left it: nothing else changes here. With a host before
 * the deployment values, an empty file in tmp_dir(), not fsync'd: a mark lost by a power cut
 * only keeps the backups (Cleanup says so; the next install to the destination removes
 * them). */
static int artifact_commit(void *st)
{
    fm *m = st;
    struct molt_sdk_error err = {0};
    if (m->dep) {
        int d = m->h->dep_set(m->h, KEY_COMMITTED, "1", 1);
        if (d < 0) {
            fm_err(&err, d, "deployment values: recording the commit failed");
            return molt_sdk_fail(m->h, &err);
        }
        fm_kill_point(m, "committed");
        return 0;
    }
    char *mark = in_tmp(m, COMMIT_MARK);
    int fd = mark ? open(mark, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600) : -1, r = 0;
    if (fd < 0)
        r = mark ? molt_sdk_err_errno(&err, errno, "create the commit mark %s", mark)
                 : fm_err(&err, MOLT_ENOMEM, "out of memory");
    else
        close(fd);
    free(mark);
    if (r < 0)
        return molt_sdk_fail(m->h, &err);
    fm_kill_point(m, "committed");
    return 0;
}

/* Delete the backup of a committed e: a file is one unlink, not fsync'd (state Cleanup is
 * recorded; a cut before the unlink reaches the disk runs Cleanup again, which unlinks again);
 * a tree is renamed to .molt-trash first and that made durable, so that a backup is whole or
 * gone, never half deleted under its own name. */
static int drop_backup(fm *m, const entry *e, const sibs *sb, const char *prev,
                       struct molt_sdk_error *err)
{
    int r;
    if (e->kind != 't') {
        if ((r = fm_rm_rf(sb->old, err)) == 0)
            r = fm_rm_rf(sb->tmp, err);
        return r;
    }
    if ((r = do_rename(prev, sb->trash, err)) < 0)
        return r;
    fm_kill_point(m, "cleanup-trashed");
    return fm_rm_rf(sb->trash, err);
}

static int cleanup(void *st)
{
    fm *m = st;
    struct molt_sdk_error err = {0};
    plan p;
    int r = plan_load(m, &p, &err), committed = r == 0 && is_committed(m, &p);
    fm_kill_point(m, "cleanup-begin");
    for (size_t i = 0; r == 0 && i < p.n; i++) {
        const entry *e = &p.e[i];
        sibs sb;
        if ((r = sibs_get(e, &sb, &err)) < 0)
            break;
        int is_new = holds_new(e, e->dest);
        /* The fallback's window (destination moved aside, not replaced): put it back. */
        if (!exists(e->dest) && exists(sb.old))
            r = do_rename(sb.old, e->dest, &err);
        /* A half-deleted trash goes first. Then, when the destination does not hold the new
         * content, the staged copy and any stale backup; when it does and the update was
         * committed, the backup. The backup of an update neither committed nor rolled back (a
         * failed rollback, the loop guard, a commit mark lost by a power cut) is kept. */
        if (r == 0)
            r = fm_rm_rf(sb.trash, &err);
        const char *prev = r == 0 && is_new ? backup_of(&sb) : NULL;
        if (r == 0 && !is_new) {
            if ((r = fm_rm_rf(sb.tmp, &err)) == 0)
                r = fm_rm_rf(sb.old, &err);
        } else if (prev && committed) {
            r = drop_backup(m, e, &sb, prev, &err);
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
    /* After a commit a kv plan stays in the kv store as the record of the installed update
     * (deleting it would cost a durable write): the next deployment's Download replaces it
     * before it names anything, and until then it names no sibling that exists
     * (docs/file-module.md). After a failure or a rollback it goes (a kv plan an earlier
     * deployment left, too, beside a plan in the deployment values). The deployment values and
     * an older module's mark in tmp_dir() go with the deployment; an older module's kv mark is
     * deleted (free when absent). */
    if (r == 0 && !committed && (r = m->h->kv_delete(m->h, KEY_PLAN)) < 0)
        r = fm_err(&err, r, "kv store: deleting the destinations failed");
    if (r == 0 && (r = m->h->kv_delete(m->h, KEY_COMMITTED)) < 0)
        r = fm_err(&err, r, "kv store: deleting the commit mark failed");
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
    /* Download names nothing for a single file kept unnamed (stage_file); where it does (a tree,
     * data first, the fallback), its first kv_set or tmp_dir() makes the host's record durable
     * before anything is named. artifact_commit only sets a deployment value, whatever the
     * plan (a host that honours the bits has dep_set; without it, the mark in tmp_dir() makes
     * the host's record durable first). */
    .capabilities = MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK | MOLT_CAP_LAZY_DOWNLOAD |
                    MOLT_CAP_LAZY_COMMIT,
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
