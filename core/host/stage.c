/* SPDX-License-Identifier: Apache-2.0 */
/* Payload files staged on disk for file-taking modules (see stage.h). */
#include "host/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "util/fs.h"

int molt_stage_file(const char *dir, const char *name, int64_t size, molt_stage_block_fn next,
                    void *ctx, molt_err *err)
{
    struct statvfs vfs;
    if (size < 0)
        return molt_err_set(err, MOLT_EFORMAT, "payload file %s declares no size", name);
    if (statvfs(dir, &vfs) != 0)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot read the free space of %s", dir);
    uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if ((uint64_t)size > avail)
        return molt_err_set(err, MOLT_ESPACE, "payload file %s declares %" PRId64 " bytes, but "
                            "%s has %" PRIu64 " bytes free: refused before writing", name, size,
                            dir, avail);
    char *path = molt_path_join(dir, name);
    if (!path)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory staging %s", name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644), r = 0;
    if (fd < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot create %s", path);
        free(path);
        return r;
    }
    int64_t done = 0;
    for (;;) {
        const void *buf;
        ssize_t got = next(ctx, &buf, err);
        if (got <= 0) {
            r = (int)got;
            break;
        }
        if (got > size - done) {
            r = molt_err_set(err, MOLT_EFORMAT, "payload file %s: more than the %" PRId64
                             " bytes it declares arrived: refused", name, size);
            break;
        }
        if ((r = molt_write_all(fd, buf, (size_t)got, err, path)) < 0)
            break;
        done += got;
    }
    if (r == 0)
        r = molt_fsync_close(fd, path, err);
    else
        close(fd);
    if (r < 0)
        unlink(path);
    free(path);
    return r;
}

int molt_stage_private(const char *dir, bool private_, molt_err *err)
{
    if (chmod(dir, private_ ? 0700 : 0755) != 0)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot chmod %s", dir);
    return 0;
}

static ssize_t reader_block(void *ctx, const void **ret_buf, molt_err *err)
{
    return molt_artifact_reader_read_block(ctx, ret_buf, err);
}

int molt_stage_reader_file(molt_artifact_reader *r, const char *dir, const char *name,
                           int64_t size, molt_err *err)
{
    return molt_stage_file(dir, name, size, reader_block, r, err);
}
