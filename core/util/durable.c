/* SPDX-License-Identifier: Apache-2.0 */
/* Durable writes (util/durable.h): full writes, folder fsyncs, atomic replacement. Compiled into
 * the core and into libmolt-sdk, so molt and the modules replace files the same way. */
#include "util/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

/* Temporary names keep at most this much of the target's name (a name is at most NAME_MAX). */
#define TMP_NAME_KEEP 200

int molt_write_all(int fd, const void *buf, size_t len, molt_err *err, const char *what)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return molt_err_errno(err, MOLT_EIO, errno, "cannot write %s", what);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int molt_fsync_close(int fd, const char *what, molt_err *err)
{
    int r = fsync(fd) == 0 ? 0 : molt_err_errno(err, MOLT_EIO, errno, "cannot fsync %s", what);
    if (close(fd) != 0 && r == 0)
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot close %s", what);
    return r;
}

/* Open the folder that holds path's last name (O_DIRECTORY); *ret_name points at that name in
 * path. The descriptor, or a negative code naming path (MOLT_ENOTFOUND: no such folder). */
static int open_folder_of(const char *path, const char **ret_name, molt_err *err)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return molt_err_set(err, MOLT_EINVAL, "path too long: %s", path);
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                              "cannot open the folder of %s", path);
    *ret_name = slash ? slash + 1 : path;
    return fd;
}

/* fsync and close dir_fd; a failure says "cannot fsync <which><path>". */
static int fsync_folder(int dir_fd, const char *which, const char *path, molt_err *err)
{
    int r = fsync(dir_fd) == 0 ? 0 : molt_err_errno(err, MOLT_EIO, errno, "cannot fsync %s%s",
                                                    which, path);
    close(dir_fd);
    return r;
}

int molt_fsync_dir(const char *dir, molt_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot open folder %s", dir);
    return fsync_folder(fd, "folder ", dir, err);
}

int molt_fsync_parent(const char *path, molt_err *err)
{
    const char *name;
    int fd = open_folder_of(path, &name, err);
    return fd < 0 ? fd : fsync_folder(fd, "the folder of ", path, err);
}

/* A fresh suffix for a temporary name: O_EXCL makes the name unique, this makes a clash rare
 * (another process, another thread, a leftover of an earlier run). */
static unsigned tmp_suffix(void)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    return (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec ^ n * 0x9e3779b9u;
}

int molt_atomic_open(const char *path, mode_t mode, int *ret_fd, char **ret_tmp, molt_err *err)
{
    const char *name;
    if (!path || !*path)
        return molt_err_set(err, MOLT_EINVAL, "atomic write: no path");
    int dir_fd = open_folder_of(path, &name, err);
    if (dir_fd < 0)
        return dir_fd;
    if (!*name) {
        close(dir_fd);
        return molt_err_set(err, MOLT_EINVAL, "%s names a folder, not a file", path);
    }
    char tmp_name[NAME_MAX + 1];
    int fd = -1, r = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(tmp_name, sizeof tmp_name, ".%.*s.tmp-%08x", TMP_NAME_KEEP, name, tmp_suffix());
        fd = openat(dir_fd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot create a temporary file for %s",
                               path);
            break;
        }
    }
    if (fd < 0 && r == 0)
        r = molt_err_set(err, MOLT_EIO, "cannot find a free temporary name for %s", path);
    if (r == 0 && fchmod(fd, mode & 07777) != 0)
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot set mode %04o on a temporary file for %s",
                           (unsigned)(mode & 07777), path);
    char *tmp = NULL;
    if (r == 0 && asprintf(&tmp, "%.*s%s", (int)(name - path), path, tmp_name) < 0) {
        tmp = NULL;
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    if (r < 0 && fd >= 0) {
        close(fd);
        unlinkat(dir_fd, tmp_name, 0);
    }
    close(dir_fd);
    if (r < 0)
        return r;
    *ret_fd = fd;
    *ret_tmp = tmp;
    return 0;
}

/* Rename tmp over path; durable: fsync the file first and the folder after. */
static int commit(int fd, const char *tmp, const char *path, bool durable, molt_err *err)
{
    int r;
    if (durable)
        r = molt_fsync_close(fd, tmp, err);
    else if ((r = close(fd)) != 0)
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot close %s", tmp);
    const char *name, *tmp_name = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
    int dir_fd = open_folder_of(path, &name, r == 0 ? err : NULL);
    if (dir_fd < 0) {
        unlink(tmp);   /* the folder cannot be opened: the only way left to try */
        return r < 0 ? r : dir_fd;
    }
    if (r == 0 && renameat(dir_fd, tmp_name, dir_fd, name) != 0)
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot rename %s to %s", tmp, path);
    if (r < 0) {
        unlinkat(dir_fd, tmp_name, 0);
        close(dir_fd);
        return r;
    }
    if (!durable) {
        close(dir_fd);
        return 0;
    }
    return fsync_folder(dir_fd, "the folder of ", path, err);
}

int molt_atomic_commit(int fd, const char *tmp, const char *path, molt_err *err)
{
    return commit(fd, tmp, path, true, err);
}

void molt_atomic_abort(int fd, const char *tmp)
{
    if (fd >= 0)
        close(fd);
    if (!tmp)
        return;
    const char *name;
    int dir_fd = open_folder_of(tmp, &name, NULL);
    if (dir_fd >= 0) {
        unlinkat(dir_fd, name, 0);
        close(dir_fd);
    }
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode, bool durable,
                      molt_err *err)
{
    int fd;
    char *tmp;
    int r = molt_atomic_open(path, mode, &fd, &tmp, err);
    if (r < 0)
        return r;
    if ((r = molt_write_all(fd, data, len, err, tmp)) < 0)
        molt_atomic_abort(fd, tmp);
    else
        r = commit(fd, tmp, path, durable, err);
    free(tmp);
    return r;
}

int molt_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           molt_err *err)
{
    return write_file(path, data, len, mode, true, err);
}

int molt_write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
                            molt_err *err)
{
    return write_file(path, data, len, mode, false, err);
}
