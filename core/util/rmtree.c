/* SPDX-License-Identifier: Apache-2.0 */
/* Recursive removal relative to folder descriptors (see rmtree.h): an explicit stack of levels on
 * the heap, one open folder at a time, so a tree of any depth within MOLT_RMTREE_DEPTH_MAX goes,
 * however long its paths are. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util/rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

typedef struct level {
    char *name;          /* this folder's name in its parent */
    dev_t dev;
    ino_t ino;
    char **subs;         /* its subfolders, found by the one scan of it */
    size_t n_subs, next;
} level;

typedef struct walk {
    level *v;
    size_t n, cap;
    const char *top;     /* the name given */
    molt_rmtree_err *err;
} walk;

/* The path of the current level (plus name, if any) relative to the top, for messages; when it
 * does not fit, its start is dropped ("..." and the last levels). */
static void fail_at(walk *w, const char *op, int e, const char *name)
{
    if (!w->err)
        return;
    w->err->errno_value = e;
    w->err->op = op;
    char *p = w->err->path;
    size_t cap = sizeof w->err->path, at = cap - 1;
    p[at] = '\0';
    for (size_t i = w->n + 1; i-- > 0;) {   /* from the end backwards */
        const char *part = i < w->n ? w->v[i].name : name;
        if (!part)
            continue;
        size_t len = strlen(part) + (at < cap - 1 ? 1 : 0);
        if (len + 4 > at) {
            memcpy(p + at - 4, ".../", 4);
            at -= 4;
            break;
        }
        at -= len;
        memcpy(p + at, part, strlen(part));
        if (len > strlen(part))
            p[at + len - 1] = '/';
    }
    memmove(p, p + at, cap - at);
}

static void level_free(level *l)
{
    free(l->name);
    for (size_t i = 0; i < l->n_subs; i++)
        free(l->subs[i]);
    free(l->subs);
}

/* Push the folder name (open as fd) and scan it once: files and symlinks are unlinked, the
 * subfolders' names kept for later. Takes fd. */
static int enter(walk *w, int fd, const char *name)
{
    struct stat st;
    if (w->n == MOLT_RMTREE_DEPTH_MAX) {
        close(fd);
        fail_at(w, "descend into", ELOOP, name);
        return -1;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        level *more = realloc(w->v, cap * sizeof *more);
        if (!more) {
            close(fd);
            fail_at(w, "descend into", ENOMEM, name);
            return -1;
        }
        w->v = more;
        w->cap = cap;
    }
    level *l = &w->v[w->n];
    memset(l, 0, sizeof *l);
    if (fstat(fd, &st) != 0 || !(l->name = strdup(name))) {
        int e = errno;
        close(fd);
        fail_at(w, "stat", e, name);
        return -1;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    w->n++;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        fail_at(w, "read", e, NULL);
        return -1;
    }
    struct dirent *e;
    int r = 0;
    errno = 0;
    while (r == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        unsigned char type = e->d_type;
        if (type == DT_UNKNOWN) {
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno == ENOENT)
                    continue;
                fail_at(w, "stat", errno, e->d_name);
                r = -1;
                break;
            }
            type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        if (type != DT_DIR) {
            if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT) {
                fail_at(w, "remove", errno, e->d_name);
                r = -1;
            }
            continue;
        }
        char **more = l->n_subs % 16 ? l->subs : realloc(l->subs, (l->n_subs + 16) * sizeof *more);
        if (!more || !(more[l->n_subs] = strdup(e->d_name))) {
            if (more)
                l->subs = more;
            fail_at(w, "read", ENOMEM, e->d_name);
            r = -1;
            break;
        }
        l->subs = more;
        l->n_subs++;
        errno = 0;
    }
    if (r == 0 && errno != 0) {
        fail_at(w, "read", errno, NULL);
        r = -1;
    }
    closedir(d);
    return r;
}

/* Open name below the folder fd as a folder, not following a symlink: a descriptor, or -1 with
 * errno (ENOTDIR for anything else). */
static int open_dir(int fd, const char *name)
{
    return openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int molt_rmtree_at(int dirfd, const char *name, molt_rmtree_err *ret_err)
{
    walk w = {.top = name, .err = ret_err};
    struct stat st;
    int r = 0, cur = -1;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        fail_at(&w, "stat", errno, name);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
            return 0;
        fail_at(&w, "remove", errno, name);
        return -1;
    }
    int fd = open_dir(dirfd, name);
    if (fd < 0) {
        fail_at(&w, "open", errno, name);
        return -1;
    }
    /* cur: a descriptor of the current level, kept to reach its subfolders and its parent. */
    if ((cur = dup(fd)) < 0 || enter(&w, fd, name) < 0) {
        if (cur < 0) {
            close(fd);
            fail_at(&w, "open", errno, name);
        }
        r = -1;
        goto out;
    }
    while (w.n > 0) {
        level *l = &w.v[w.n - 1];
        if (l->next < l->n_subs) {
            const char *sub = l->subs[l->next++];
            int child = open_dir(cur, sub);
            if (child < 0) {
                if (errno == ENOENT)
                    continue;
                fail_at(&w, "open", errno, sub);
                r = -1;
                break;
            }
            int keep = dup(child);
            if (keep < 0) {
                close(child);
                fail_at(&w, "open", errno, sub);
                r = -1;
                break;
            }
            if (enter(&w, child, sub) < 0) {
                close(keep);
                r = -1;
                break;
            }
            close(cur);
            cur = keep;
            continue;
        }
        /* This level is empty: back up to its parent (checked to be the folder we came from)
         * and remove it there. */
        int parent = dirfd;
        if (w.n > 1) {
            parent = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            const level *up = &w.v[w.n - 2];
            if (parent < 0 || fstat(parent, &st) != 0 || st.st_dev != up->dev ||
                st.st_ino != up->ino) {
                int e = parent < 0 ? errno : ESTALE;
                if (parent >= 0)
                    close(parent);
                fail_at(&w, "open the parent of", e, NULL);
                r = -1;
                break;
            }
        }
        char *gone = l->name;
        l->name = NULL;
        level_free(l);
        w.n--;
        int rm = unlinkat(parent, gone, AT_REMOVEDIR), e = errno;
        if (rm != 0 && e != ENOENT) {
            fail_at(&w, "remove", e, gone);
            free(gone);
            if (parent != dirfd)
                close(parent);
            r = -1;
            break;
        }
        free(gone);
        close(cur);
        cur = parent != dirfd ? parent : -1;
    }
out:
    for (size_t i = 0; i < w.n; i++)
        level_free(&w.v[i]);
    free(w.v);
    if (cur >= 0)
        close(cur);
    return r;
}

int molt_rmtree(const char *path, molt_rmtree_err *ret_err)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    /* Most removals are of what is not there (a module tree never made, a leftover that was
     * not left): one lstat instead of opening the parent to look. (Not with a trailing slash,
     * which would follow a symlink.) */
    struct stat st;
    if (path[len] == '\0' && lstat(path, &st) != 0 && errno == ENOENT)
        return 0;
    char *copy = strndup(path, len);
    char *slash = copy ? strrchr(copy, '/') : NULL;
    int fd = AT_FDCWD, r = -1, e = ENOMEM;
    if (copy && slash && slash[1] == '\0')
        e = EINVAL;   /* "/": a folder's contents are not removed this way */
    else if (copy && slash)
        *slash = '\0';
    if (copy && slash && e == ENOMEM &&
        (fd = open(slash == copy ? "/" : copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        e = errno;
    if (copy && (!slash || fd >= 0))
        r = molt_rmtree_at(fd, slash ? slash + 1 : copy, ret_err);
    else if (copy && slash && e == ENOENT)
        r = 0;   /* no parent, no entry */
    else if (ret_err) {
        ret_err->errno_value = e;
        ret_err->op = "remove";
        snprintf(ret_err->path, sizeof ret_err->path, "%s", path);
    }
    if (fd >= 0)
        close(fd);
    free(copy);
    return r;
}

int molt_rm_rf(const char *path, molt_err *err)
{
    molt_rmtree_err e;
    if (molt_rmtree(path, &e) == 0)
        return 0;
    return molt_err_errno(err, MOLT_EIO, e.errno_value,
                          "cannot remove %s (%s %s)", path, e.op, e.path);
}
