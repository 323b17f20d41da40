/* SPDX-License-Identifier: Apache-2.0 */
/* Filesystem helpers: durable atomic replace, recursive create and remove. */
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <dirent.h>

/* mkdir buf (a writable copy of the path), creating missing parents first; from the end, so
 * that the folders already there cost nothing but the one mkdir that finds its parent. */
static int mkdir_parents(char *buf, mode_t mode, molt_err *err)
{
    if (mkdir(buf, mode) == 0 || errno == EEXIST)
        return 0;
    char *slash = strrchr(buf, '/');
    if (errno != ENOENT || !slash || slash == buf)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot create folder %s", buf);
    *slash = '\0';
    int r = mkdir_parents(buf, mode, err);
    *slash = '/';
    if (r < 0)
        return r;
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot create folder %s", buf);
    return 0;
}

int molt_mkdir_p(const char *path, mode_t mode, molt_err *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return molt_err_set(err, MOLT_EINVAL, "mkdir: bad path '%s'", path);
    /* Most calls find the folder there (the data dir, a module's kv folder, at every
     * command): one stat, not a mkdir per component from the root. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    int r = mkdir_parents(buf, mode, err);
    if (r < 0)
        return r;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return molt_err_set(err, MOLT_EIO, "%s exists and is not a folder", path);
    return 0;
}

int molt_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len, molt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                              "cannot open %s", path);
    int r = molt_read_fd(fd, path, max, ret_data, ret_len, err);
    close(fd);
    return r;
}

int molt_read_fd(int fd, const char *path, size_t max, char **ret_data, size_t *ret_len,
                 molt_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot stat %s", path);
    if (!S_ISREG(st.st_mode))
        return molt_err_set(err, MOLT_EFORMAT, "%s is not a regular file", path);
    if ((uint64_t)st.st_size > max)
        return molt_err_set(err, MOLT_ELIMIT, "%s is %lld bytes, more than the %zu allowed",
                            path, (long long)st.st_size, max);
    /* The size, the '\0', and one byte more: the read that finds the end (0) then needs no
     * realloc (a doubling and a copy of the whole file, for every file read). */
    size_t cap = (size_t)st.st_size + 2, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory reading %s", path);
    for (;;) {
        if (len + 1 == cap) {
            if (cap > max) {
                free(buf);
                return molt_err_set(err, MOLT_ELIMIT, "%s grew beyond %zu bytes", path, max);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return molt_err_set(err, MOLT_ENOMEM, "out of memory reading %s", path);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            return molt_err_errno(err, MOLT_EIO, e, "cannot read %s", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *ret_data = buf;
    if (ret_len)
        *ret_len = len;
    return 0;
}

char *molt_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    size_t lb = strlen(b);
    char *out = malloc(la + lb + 2);
    if (!out)
        return NULL;
    memcpy(out, a, la);
    out[la] = '/';
    memcpy(out + la + 1, b, lb + 1);
    return out;
}

bool molt_path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void molt_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int molt_dir_names(const char *dir, const char *what, molt_dir_keep_fn keep, void *ctx,
                   size_t max, char ***ret_names, size_t *ret_n, molt_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return molt_err_errno(err, errno == ENOENT || errno == ENOTDIR ? MOLT_ENOTFOUND : MOLT_EIO,
                              errno, "cannot read %s %s", what, dir);
    char **names = NULL;
    size_t n = 0;
    int r = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            (keep && !keep(ctx, dirfd(d), e->d_name)))
            continue;
        if (n == max) {
            r = molt_err_set(err, MOLT_ELIMIT, "%s %s: more than %zu entries", what, dir, max);
            break;
        }
        char **more = realloc(names, (n + 1) * sizeof *names);
        if (more)
            names = more;
        if (!more || !(names[n] = strdup(e->d_name))) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory listing %s %s", what, dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (r < 0) {
        molt_names_free(names, n);
        return r;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    *ret_names = names;
    *ret_n = n;
    return 0;
}
