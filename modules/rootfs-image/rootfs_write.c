/* SPDX-License-Identifier: Apache-2.0 */
/* The partition writer: one streaming pass from the payload into the inactive partition, with
 * the write-back of every KICK bytes started as soon as they are written (so the final fsync
 * finds little left to write), bounded dirty pages (per window of sync_interval bytes: waited
 * for one window later, then dropped from the page cache; the last two windows stay cached,
 * clean), an fsync at the end and an optional read-back check. The writes are the module's
 * payload sink (host->set_sink, ABI 1.1): the host calls it on the thread where it hashes the
 * payload, right after hashing each block, so decompression (on the caller's thread) overlaps
 * hashing and writing with no buffer and no copy of the module's. With an older host the
 * caller's thread writes each block itself. */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERIFY_BUF (1u << 20)

/* Start the write-back of what was written every KICK bytes (sync_file_range(WRITE): queues the
 * I/O, waits for nothing). 64 MiB zstd image: 2 MiB measured 9-11 ms faster than starting it
 * once per 64 MiB window, 1 MiB and 4 MiB within 2 ms of 2 MiB (docs/rootfs-image.md). */
#define KICK ((int64_t)2 << 20)

/* FNV-1a, 64 bits: a cheap check that what reads back is what was written (the payload itself
 * was verified by the host's SHA-256). */
static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

int rootfs_settle(int fd, const char *path, int64_t off, int64_t len, struct molt_sdk_error *err)
{
    if (len <= 0)
        return 0;
    if (sync_file_range(fd, off, len, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                          SYNC_FILE_RANGE_WAIT_AFTER) < 0)
        return molt_sdk_err_errno(err, errno, "partition %s: write-back failed", path);
    posix_fadvise(fd, off, len, POSIX_FADV_DONTNEED);
    return 0;
}

/* Read back size bytes and compare their hash with want. */
static int verify(int fd, const char *path, int64_t size, uint64_t want,
                  struct molt_sdk_error *err)
{
    posix_fadvise(fd, 0, size, POSIX_FADV_DONTNEED);   /* read the medium, not the cache */
    unsigned char *buf = malloc(VERIFY_BUF);
    if (!buf)
        return rootfs_err(err, MOLT_ENOMEM, "out of memory");
    uint64_t h = FNV_INIT;
    int64_t off = 0;
    int r = 0;
    while (off < size) {
        size_t want_n = size - off < VERIFY_BUF ? (size_t)(size - off) : VERIFY_BUF;
        ssize_t got = pread(fd, buf, want_n, off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            r = got < 0 ? molt_sdk_err_errno(err, errno, "partition %s: reading back at %lld",
                                             path, (long long)off)
                        : rootfs_err(err, MOLT_EIO, "partition %s: reading back at %lld: "
                                     "unexpected end", path, (long long)off);
            goto out;
        }
        h = fnv1a(h, buf, (size_t)got);
        off += got;
    }
    if (h != want)
        r = rootfs_err(err, MOLT_ECHECKSUM, "partition %s: the %lld bytes read back differ "
                       "from those written", path, (long long)size);
out:
    free(buf);
    return r;
}

/* The partition write in progress. Its fields are the sink's (on the host's hashing thread, or
 * on the caller's); the caller reads them once the host says the sink has returned. */
struct writer {
    int fd;
    const char *path;
    int64_t size, sync_interval, kill_after;
    int64_t done, kicked;             /* written, write-back started up to */
    int64_t started, settled;         /* the current window's start, waited for up to */
    bool verify;
    uint64_t hash;                    /* FNV-1a of what was written (verify) */
    struct molt_sdk_error err;        /* why the sink failed */
};

/* The payload sink: write one block, start/wait for write-back per window. */
static int write_block(void *ctx, const void *buf, size_t n)
{
    struct writer *w = ctx;
    const unsigned char *p = buf;
    if (w->done + (int64_t)n > w->size)
        return rootfs_err(&w->err, MOLT_EFORMAT, "the rootfs image is longer than its declared "
                          "%lld bytes", (long long)w->size);
    if (w->verify)
        w->hash = fnv1a(w->hash, p, n);
    if (w->kill_after >= 0 && w->done + (int64_t)n >= w->kill_after) {
        molt_sdk_write_all(w->fd, p, (size_t)(w->kill_after - w->done), w->path, NULL);
        raise(SIGKILL);
    }
    int r = molt_sdk_write_all(w->fd, p, n, w->path, &w->err);
    if (r < 0)
        return r;
    w->done += (int64_t)n;
    bool window = w->done - w->started >= w->sync_interval;
    if (window || w->done - w->kicked >= KICK) {
        sync_file_range(w->fd, w->kicked, w->done - w->kicked, SYNC_FILE_RANGE_WRITE);
        w->kicked = w->done;
    }
    if (window) {   /* wait for the window before this one */
        if ((r = rootfs_settle(w->fd, w->path, w->settled, w->started - w->settled, &w->err)) < 0)
            return r;
        w->settled = w->started;
        w->started = w->done;
    }
    return 0;
}

/* Read the payload and write it: through the host's sink (written on the host's hashing thread
 * while this one decompresses) when the host has set_sink, else here. Then fsync. */
static int stream(const struct molt_host_api *host, const rootfs_config *cfg, struct writer *w,
                  struct molt_sdk_error *err)
{
    bool sunk = MOLT_HOST_HAS(host, set_sink) && host->set_sink(host, write_block, w) == 0;
    int64_t got = 0, reported = 0;
    int r = 0;
    for (;;) {
        const void *block = NULL;
        int64_t n = host->read_block(host, &block);
        if (n == 0)
            break;
        if (n > 0 && !sunk)
            r = write_block(w, block, (size_t)n);
        if (n < 0 || r < 0) {
            if (w->err.code < 0) {   /* the write failed (not the reading) */
                *err = w->err;
                return w->err.code;
            }
            return rootfs_err(err, (int)n, "reading the rootfs image from the artifact failed "
                              "after %lld bytes", (long long)got);
        }
        got += n;
        if (got - reported >= cfg->sync_interval) {
            host->progress(host, (uint64_t)got, (uint64_t)w->size);
            reported = got;
        }
    }
    if (w->done != w->size)
        return rootfs_err(err, MOLT_EFORMAT, "the rootfs image ended after %lld of its %lld "
                          "bytes", (long long)w->done, (long long)w->size);
    /* No page cache drop after it: freeing the last windows' pages (3.5 ms per 64 MiB) would
     * be the last thing Download waits for. They are clean, reclaimable, and no more than the
     * two windows the write keeps cached at any time. */
    if (fsync(w->fd) < 0)
        return molt_sdk_err_errno(err, errno, "partition %s: fsync failed", w->path);
    return 0;
}

int rootfs_write_partition(const struct molt_host_api *host, const rootfs_config *cfg,
                           const char *path, int64_t size, struct molt_sdk_error *err)
{
    int64_t part_size = 0;
    int r = rootfs_partition_size(path, &part_size, err);
    if (r < 0)
        return r;
    if (size <= 0)
        return rootfs_err(err, MOLT_EFORMAT, "the rootfs image is empty (%lld bytes)",
                          (long long)size);
    if (size > part_size)
        return rootfs_err(err, MOLT_ESPACE, "the rootfs image (%lld bytes) is larger than "
                          "partition %s (%lld bytes): nothing written", (long long)size, path,
                          (long long)part_size);
    const char *knob = getenv(ROOTFS_KILL_KNOB);
    struct writer w = { .path = path, .size = size, .sync_interval = cfg->sync_interval,
                        .kill_after = knob && *knob ? strtoll(knob, NULL, 10) : -1,
                        .verify = cfg->verify_write, .hash = FNV_INIT };
    w.fd = open(path, O_WRONLY | O_CLOEXEC);
    if (w.fd < 0)
        return molt_sdk_err_errno(err, errno, "partition %s: cannot open it for writing", path);
    r = stream(host, cfg, &w, err);
    close(w.fd);
    if (r < 0)
        return r;
    host->progress(host, (uint64_t)size, (uint64_t)size);
    if (!cfg->verify_write)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return molt_sdk_err_errno(err, errno, "partition %s: cannot open it to read back", path);
    r = verify(fd, path, size, w.hash, err);
    close(fd);
    if (r == 0)
        molt_sdk_log_info(host, "partition %s: read back %lld bytes, identical to those "
                          "written", path, (long long)size);
    return r;
}
