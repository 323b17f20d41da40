/* SPDX-License-Identifier: Apache-2.0 */
/* Byte sources for the artifact reader: a file (or standard input) read through one reusable
 * buffer, and a memory range. */
#include "artifact/source.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large enough that read(2) and the tar reader's bookkeeping cost nothing next to hashing and
 * decompression (128 KiB reads as fast as 1 MiB, docs/performance.md); allocated once per
 * source. A regular file smaller than that gets a buffer of its size and one byte more, rounded
 * up to FILE_SOURCE_STEP: read as before (all of it, then the end), without the 128 KiB that
 * malloc maps and unmaps. */
#define FILE_SOURCE_BUFFER (128u << 10)
#define FILE_SOURCE_STEP (4u << 10)

typedef struct file_source {
    molt_source base;
    int fd;
    bool owns_fd;
    unsigned char *buf;
    size_t buf_size;
} file_source;

static ssize_t file_source_read(molt_source *src, const void **ret_buf, molt_err *err)
{
    file_source *fs = (file_source *)src;
    for (;;) {
        ssize_t n = read(fs->fd, fs->buf, fs->buf_size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return molt_err_errno(err, MOLT_EIO, errno, "reading %s at offset %lld",
                                  src->name, (long long)src->offset);
        src->offset += n;
        *ret_buf = fs->buf;
        return n;
    }
}

static void file_source_free(molt_source *src)
{
    file_source *fs = (file_source *)src;
    if (fs->owns_fd && fs->fd >= 0)
        close(fs->fd);
    free(fs->buf);
    free((char *)src->name);
    free(fs);
}

int molt_source_file_new(molt_source **ret, const char *path, molt_err *err)
{
    int rc = 0;
    file_source *fs = NULL;
    struct stat st;

    if (!ret || !path)
        return molt_err_set(err, MOLT_EINVAL, "molt_source_file_new: no path");
    fs = calloc(1, sizeof *fs);
    if (!fs)
        return molt_err_set(err, MOLT_ENOMEM, "opening %s: out of memory", path);
    fs->fd = -1;
    fs->base.read = file_source_read;
    fs->base.free = file_source_free;
    fs->base.total = -1;
    bool is_stdin = strcmp(path, "-") == 0;
    fs->base.name = strdup(is_stdin ? "standard input" : path);
    if (!fs->base.name) {
        rc = molt_err_set(err, MOLT_ENOMEM, "opening %s: out of memory", path);
        goto out;
    }
    if (is_stdin) {
        fs->fd = STDIN_FILENO;
    } else {
        fs->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fs->fd < 0) {
            rc = molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                                "opening %s", path);
            goto out;
        }
        fs->owns_fd = true;
    }
    if (fstat(fs->fd, &st) < 0) {
        rc = molt_err_errno(err, MOLT_EIO, errno, "stat %s", fs->base.name);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = molt_err_set(err, MOLT_EINVAL, "%s is a directory, not an artifact", fs->base.name);
        goto out;
    }
    fs->buf_size = FILE_SOURCE_BUFFER;
    if (S_ISREG(st.st_mode)) {
        fs->base.total = st.st_size;
        if (st.st_size < FILE_SOURCE_BUFFER - FILE_SOURCE_STEP)
            fs->buf_size = ((size_t)st.st_size + FILE_SOURCE_STEP) / FILE_SOURCE_STEP *
                           FILE_SOURCE_STEP;
        /* One sequential pass: let the kernel read ahead aggressively. */
        (void)posix_fadvise(fs->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    if (!(fs->buf = malloc(fs->buf_size))) {
        rc = molt_err_set(err, MOLT_ENOMEM, "opening %s: out of memory", path);
        goto out;
    }
    *ret = &fs->base;
    fs = NULL;
out:
    if (fs)
        file_source_free(&fs->base);
    return rc;
}

typedef struct mem_source {
    molt_source base;
    const unsigned char *data;
    size_t size;
} mem_source;

static ssize_t mem_source_read(molt_source *src, const void **ret_buf, molt_err *err)
{
    mem_source *ms = (mem_source *)src;
    size_t left = ms->size - (size_t)src->offset;
    /* ssize_t caps a single chunk; anything larger arrives in several. */
    size_t n = left > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : left;
    *ret_buf = ms->data + src->offset;
    src->offset += (int64_t)n;
    return (ssize_t)n;
}

static void mem_source_free(molt_source *src)
{
    free(src);
}

int molt_source_mem_new(molt_source **ret, const void *data, size_t size, molt_err *err)
{
    if (!ret || (!data && size > 0))
        return molt_err_set(err, MOLT_EINVAL, "molt_source_mem_new: no data");
    mem_source *ms = calloc(1, sizeof *ms);
    if (!ms)
        return molt_err_set(err, MOLT_ENOMEM, "memory source: out of memory");
    ms->base.read = mem_source_read;
    ms->base.free = mem_source_free;
    ms->base.name = "memory";
    ms->base.total = (int64_t)size;
    ms->data = data;
    ms->size = size;
    *ret = &ms->base;
    return 0;
}

void molt_source_free(molt_source *src)
{
    if (src && src->free)
        src->free(src);
}
