/* The partition writer: one streaming pass from the payload into the inactive partition, with
 * bounded dirty pages (write-back started per window, waited for one window later, then dropped
 * from the page cache), an fsync at the end and an optional read-back check. The host's reads
 * (decompression) stay on the caller's thread; the writes, syncs and fsync run on a writer thread
 * fed through a small ring of preallocated buffers, so decompression and the write overlap. */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERIFY_BUF (1u << 20)
/* The ring between the reading (caller's) thread and the writer thread: the only memory the
 * overlap costs. Measured on 2 cores (zstd, 512 MiB): 2 x 1 MiB and 2 x 512 KiB fastest, 4 x
 * 256 KiB and smaller slots no faster than writing on the caller's thread (hand-off wake-ups). */
#define RING_N 2
#define RING_BUF (512u << 10)
#define WRITER_STACK (256u << 10)
/* Test-only: SIGKILL molt after this many bytes of the partition were written (a power cut
 * inside the write). Never set on a device. */
#define KILL_KNOB "MOLT_ROOTFS_TEST_KILL_AFTER"

/* FNV-1a, 64 bits: a cheap check that what reads back is what was written (the payload itself
 * was verified by the host's SHA-256). */
static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static int write_all_fd(int fd, const char *path, const void *buf, size_t n,
                        struct molt_sdk_error *err)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return rootfs_err(err, errno == ENOSPC ? MOLT_ESPACE : MOLT_EIO,
                              "partition %s: write failed: %s", path, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Wait for the write-back of [off, off+len) and drop it from the page cache. */
static int settle(int fd, const char *path, int64_t off, int64_t len, struct molt_sdk_error *err)
{
    if (len <= 0)
        return 0;
    if (sync_file_range(fd, off, len, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                          SYNC_FILE_RANGE_WAIT_AFTER) < 0)
        return rootfs_err(err, MOLT_EIO, "partition %s: write-back failed: %s", path,
                          strerror(errno));
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
            r = rootfs_err(err, MOLT_EIO, "partition %s: reading back at %lld: %s", path,
                           (long long)off, got < 0 ? strerror(errno) : "unexpected end");
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

/* The ring and the writer thread's state. Slots [head, head+count) are full and owned by the
 * writer; the others belong to the reader. Everything below `lock` is guarded by it. */
struct ring {
    int fd;
    const char *path;
    int64_t sync_interval, kill_after;
    unsigned char *buf[RING_N];
    pthread_mutex_t lock;
    pthread_cond_t filled, drained;   /* a slot was handed over / given back */
    size_t len[RING_N];
    unsigned head, count;
    bool eof;                /* the reader handed over the last slot: fsync once written */
    bool abort;              /* the reader failed: stop, write nothing more, no fsync */
    bool failed;             /* the writer failed: werr says why */
    struct molt_sdk_error werr;
};

/* The writer thread's work on one slot: write it, start/wait for write-back per window. */
static int write_slot(struct ring *g, const unsigned char *p, size_t n, int64_t *done,
                      int64_t *started, int64_t *settled, struct molt_sdk_error *err)
{
    if (g->kill_after >= 0 && *done + (int64_t)n >= g->kill_after) {
        write_all_fd(g->fd, g->path, p, (size_t)(g->kill_after - *done), NULL);
        raise(SIGKILL);
    }
    int r = write_all_fd(g->fd, g->path, p, n, err);
    if (r < 0)
        return r;
    *done += (int64_t)n;
    if (*done - *started >= g->sync_interval) {
        /* start write-back of this window, wait for the one before */
        sync_file_range(g->fd, *started, *done - *started, SYNC_FILE_RANGE_WRITE);
        if ((r = settle(g->fd, g->path, *settled, *started - *settled, err)) < 0)
            return r;
        *settled = *started;
        *started = *done;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    struct ring *g = arg;
    struct molt_sdk_error err = { 0 };
    int64_t done = 0, started = 0, settled = 0;   /* write-back started up to, waited up to */
    int r = 0;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (g->count == 0 && !g->eof && !g->abort)
            pthread_cond_wait(&g->filled, &g->lock);
        if (g->abort || g->count == 0)
            break;
        unsigned i = g->head;
        size_t n = g->len[i];
        pthread_mutex_unlock(&g->lock);
        r = write_slot(g, g->buf[i], n, &done, &started, &settled, &err);
        pthread_mutex_lock(&g->lock);
        if (r < 0)
            break;
        g->head = (g->head + 1) % RING_N;
        g->count--;
        pthread_cond_signal(&g->drained);
    }
    bool finish = r == 0 && g->eof && !g->abort;
    pthread_mutex_unlock(&g->lock);
    if (finish) {
        if (fsync(g->fd) < 0)
            r = rootfs_err(&err, MOLT_EIO, "partition %s: fsync failed: %s", g->path,
                           strerror(errno));
        else
            posix_fadvise(g->fd, 0, done, POSIX_FADV_DONTNEED);
    }
    if (r < 0) {
        pthread_mutex_lock(&g->lock);
        g->failed = true;
        g->werr = err;
        pthread_cond_signal(&g->drained);
        pthread_mutex_unlock(&g->lock);
    }
    return NULL;
}

/* The reader's side: hand over slot `fill` (len bytes) and wait for a free one. Returns the
 * writer's error when it failed (the reader then stops reading). */
static int hand_over(struct ring *g, unsigned fill, size_t len)
{
    int r = 0;
    pthread_mutex_lock(&g->lock);
    g->len[fill] = len;
    g->count++;
    pthread_cond_signal(&g->filled);
    while (g->count == RING_N && !g->failed)
        pthread_cond_wait(&g->drained, &g->lock);
    if (g->failed)
        r = g->werr.code < 0 ? g->werr.code : MOLT_EIO;
    pthread_mutex_unlock(&g->lock);
    return r;
}

/* Stop the writer (abort: drop what is queued, no fsync; else: write it all, fsync) and wait for
 * it. A write error of the writer (the cause when both failed) replaces r and err. */
static int ring_finish(struct ring *g, pthread_t th, bool abort, int r, struct molt_sdk_error *err)
{
    pthread_mutex_lock(&g->lock);
    if (abort)
        g->abort = true;
    else
        g->eof = true;
    pthread_cond_signal(&g->filled);
    pthread_mutex_unlock(&g->lock);
    pthread_join(th, NULL);
    if (g->failed) {
        if (err)
            *err = g->werr;
        r = g->werr.code < 0 ? g->werr.code : MOLT_EIO;
    }
    return r;
}

/* Read the payload (size bytes) into the ring for the writer thread; *ret_hash = FNV-1a of it
 * when cfg->verify_write. The writer fsyncs once all of it is written. */
static int stream(const struct molt_host_api *host, const rootfs_config *cfg, struct ring *g,
                  int64_t size, uint64_t *ret_hash, struct molt_sdk_error *err)
{
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WRITER_STACK);
    /* Signals stay with the caller's thread: the writer starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&th, &attr, writer_main, g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (e != 0)
        return rootfs_err(err, MOLT_ENOMEM, "partition %s: cannot start the writer thread: %s",
                          g->path, strerror(e));
    int64_t done = 0, reported = 0;
    uint64_t h = FNV_INIT;
    unsigned fill = 0;
    size_t used = 0;
    int r = 0;
    for (;;) {
        const void *block = NULL;
        int64_t n = host->read_block(host, &block);
        if (n < 0) {
            r = rootfs_err(err, (int)n, "reading the rootfs image from the artifact failed "
                           "after %lld bytes", (long long)done);
            goto out;
        }
        if (n == 0)
            break;
        if (done + n > size) {
            r = rootfs_err(err, MOLT_EFORMAT, "the rootfs image is longer than its declared "
                           "%lld bytes", (long long)size);
            goto out;
        }
        if (cfg->verify_write)
            h = fnv1a(h, block, (size_t)n);
        for (const unsigned char *p = block; n > 0;) {
            size_t take = RING_BUF - used < (size_t)n ? RING_BUF - used : (size_t)n;
            memcpy(g->buf[fill] + used, p, take);
            used += take;
            p += take;
            n -= (int64_t)take;
            done += (int64_t)take;
            if (used == RING_BUF) {
                if ((r = hand_over(g, fill, used)) < 0)
                    goto out;
                fill = (fill + 1) % RING_N;
                used = 0;
            }
        }
        if (done - reported >= cfg->sync_interval) {
            host->progress(host, (uint64_t)done, (uint64_t)size);
            reported = done;
        }
    }
    if (done != size) {
        r = rootfs_err(err, MOLT_EFORMAT, "the rootfs image ended after %lld of its %lld bytes",
                       (long long)done, (long long)size);
        goto out;
    }
    if (used > 0)
        r = hand_over(g, fill, used);
out:
    r = ring_finish(g, th, r < 0, r, err);
    if (r == 0)
        *ret_hash = h;
    return r;
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
    const char *knob = getenv(KILL_KNOB);
    struct ring g = { .fd = -1, .path = path, .sync_interval = cfg->sync_interval,
                      .kill_after = knob && *knob ? strtoll(knob, NULL, 10) : -1 };
    bool sync_init = false;
    uint64_t h = 0;
    for (int i = 0; i < RING_N; i++)
        if (!(g.buf[i] = malloc(RING_BUF))) {
            r = rootfs_err(err, MOLT_ENOMEM, "out of memory");
            goto out;
        }
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.filled, NULL);
    pthread_cond_init(&g.drained, NULL);
    sync_init = true;

    g.fd = open(path, O_WRONLY | O_CLOEXEC);
    if (g.fd < 0) {
        r = rootfs_err(err, MOLT_EIO, "partition %s: cannot open it for writing: %s", path,
                       strerror(errno));
        goto out;
    }
    if ((r = stream(host, cfg, &g, size, &h, err)) < 0)
        goto out;
    host->progress(host, (uint64_t)size, (uint64_t)size);
    if (cfg->verify_write) {
        close(g.fd);
        g.fd = open(path, O_RDONLY | O_CLOEXEC);
        if (g.fd < 0) {
            r = rootfs_err(err, MOLT_EIO, "partition %s: cannot open it to read back: %s", path,
                           strerror(errno));
            goto out;
        }
        r = verify(g.fd, path, size, h, err);
        if (r == 0)
            molt_sdk_log_info(host, "partition %s: read back %lld bytes, identical to those "
                              "written", path, (long long)size);
    }
out:
    if (g.fd >= 0)
        close(g.fd);
    if (sync_init) {
        pthread_cond_destroy(&g.drained);
        pthread_cond_destroy(&g.filled);
        pthread_mutex_destroy(&g.lock);
    }
    for (int i = 0; i < RING_N; i++)
        free(g.buf[i]);
    return r;
}
