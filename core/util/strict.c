/* SPDX-License-Identifier: Apache-2.0 */
/* Strict modes (see strict.h): sshd's StrictModes/secure_filename for molt's own files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util/strict.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define FIX "another user could change what molt runs as root"

static bool trusted_owner(uid_t uid)
{
    if (uid == 0 || uid == geteuid())
        return true;
    const char *test = getenv(MOLT_STRICT_OWNER_ENV);
    char *end;
    if (!test || !*test)
        return false;
    unsigned long v = strtoul(test, &end, 10);
    return !*end && (uid_t)v == uid;
}

static int refuse(molt_err *err, const char *what, const char *path, const char *folder,
                  const struct stat *st, const char *why)
{
    if (folder)
        return molt_err_set(err, MOLT_ECONFIG, "%s %s: its folder %s is %s (mode %04o, owner "
                            "uid %u): refused, " FIX, what, path, folder, why,
                            (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid);
    return molt_err_set(err, MOLT_ECONFIG, "%s %s is %s (mode %04o, owner uid %u): refused, " FIX,
                        what, path, why, (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid);
}

static int check_folder(const char *folder, const char *what, const char *path, bool *saw_link,
                        molt_err *err)
{
    struct stat st;
    if (lstat(folder, &st) != 0)
        return molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                              "%s %s: cannot examine its folder %s", what, path, folder);
    if (S_ISLNK(st.st_mode)) {
        *saw_link = true;
        return 0;   /* a symlink's own mode means nothing; its folder decides who replaces it */
    }
    if (!trusted_owner(st.st_uid))
        return refuse(err, what, path, folder, &st, "owned by another user");
    if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
        return refuse(err, what, path, folder, &st,
                      (st.st_mode & 002) ? "world-writable and not sticky"
                                         : "group-writable and not sticky");
    return 0;
}

/* Every folder of the absolute path dir, from / down; *saw_link set when one is a symlink. */
static int check_folders(const char *dir, const char *what, const char *path, bool *saw_link,
                         molt_err *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(dir);
    if (len >= sizeof buf)
        return molt_err_set(err, MOLT_EINVAL, "%s %s: path too long", what, path);
    int r = check_folder("/", what, path, saw_link, err);
    memcpy(buf, dir, len + 1);
    for (size_t i = 2; r == 0 && i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        r = check_folder(buf, what, path, saw_link, err);
        buf[i] = saved;
    }
    return r;
}

/* Whether the absolute path p is written as realpath would give it, were no name in it a
 * symlink: no empty, "." or ".." name, no slash at the end. */
static bool plain_path(const char *p)
{
    size_t n = strlen(p);
    if (n > 1 && p[n - 1] == '/')
        return false;
    for (const char *c = p; (c = strchr(c, '/')) != NULL; c++) {
        if (c[1] == '/' || (c[1] == '.' && (c[2] == '/' || c[2] == '\0')) ||
            (c[1] == '.' && c[2] == '.' && (c[3] == '/' || c[3] == '\0')))
            return false;
    }
    return true;
}

/* The folder part of the absolute path p (malloc'd). */
static char *folder_of(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash == p ? strdup("/") : strndup(p, (size_t)(slash - p));
}

int molt_strict_check(const char *path, const char *what, molt_err *err)
{
    char *abs = NULL, *real = NULL, *dir = NULL, *real_dir = NULL;
    struct stat st;
    int r = 0;
    if (path[0] == '/') {
        abs = strdup(path);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) && asprintf(&abs, "%s/%s", cwd, path) < 0)
            abs = NULL;
    }
    if (!abs)
        return molt_err_set(err, MOLT_ENOMEM, "%s %s: out of memory", what, path);
    /* lstat first: a path with no symlink in it (the file, then its folders below) is its own
     * resolved path, and realpath's readlink of every name is not needed. */
    int sr = lstat(abs, &st);
    bool link = sr == 0 && S_ISLNK(st.st_mode), saw_link = link;
    if (link)
        sr = stat(abs, &st);
    if (sr != 0) {
        r = molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                           "%s %s: cannot examine it", what, path);
        goto out;
    }
    if (!trusted_owner(st.st_uid)) {
        r = refuse(err, what, path, NULL, &st, "owned by another user");
        goto out;
    }
    if (st.st_mode & 022) {
        r = refuse(err, what, path, NULL, &st,
                   (st.st_mode & 002) ? "world-writable" : "group-writable");
        goto out;
    }
    /* The folders as written (who can replace the name), then as resolved (who can change what
     * it leads to), when they differ. */
    if (!(dir = folder_of(abs))) {
        r = molt_err_set(err, MOLT_ENOMEM, "%s %s: out of memory", what, path);
        goto out;
    }
    if ((r = check_folders(dir, what, path, &saw_link, err)) < 0)
        goto out;
    if (!saw_link && plain_path(abs))
        goto out;   /* resolved, it is abs itself */
    if (!(real = realpath(abs, NULL))) {
        r = molt_err_errno(err, MOLT_EIO, errno, "%s %s: cannot resolve it", what, path);
        goto out;
    }
    if (!(real_dir = folder_of(real))) {
        r = molt_err_set(err, MOLT_ENOMEM, "%s %s: out of memory", what, path);
        goto out;
    }
    if (strcmp(real_dir, dir) != 0)
        r = check_folders(real_dir, what, path, &saw_link, err);
out:
    free(abs);
    free(real);
    free(dir);
    free(real_dir);
    return r;
}
