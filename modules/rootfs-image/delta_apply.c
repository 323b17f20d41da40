/* SPDX-License-Identifier: Apache-2.0 */
/* Download of a rootfs-delta payload (docs/delta.md): rebuild the new image from the running
 * partition and the delta, straight into the inactive partition.
 *
 *  1. The base check, before a byte is written: the SHA-256 of the first base_size bytes of the
 *     active partition, the very bytes the decoder reads, must be the artifact's
 *     artifact_depends rootfs-image.checksum.
 *  2. The active partition is mapped read-only and handed to zstd as the prefix (page cache, not
 *     anonymous memory); the inactive partition's first target_size bytes are mapped shared and
 *     are the decoder's output buffer (ZSTD_d_stableOutBuffer: no window buffer of its own), so
 *     the memory of the process does not grow with the image. A second thread follows the
 *     decoder: it hashes the output as it is produced and starts and waits for its write-back
 *     per sync_interval, as in the full path; fsync at the end.
 *  3. The SHA-256 of the rebuilt image must be the artifact_provides rootfs-image.checksum;
 *     only then does download() record "downloaded", which ArtifactInstall needs to arm the
 *     bootloader. */
#include "delta.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <openssl/evp.h>
/* ZSTD_d_stableOutBuffer and ZSTD_WINDOWLOG_MAX_64 are in the experimental section (libzstd
 * >= 1.4.4 accepts the parameter through the stable ZSTD_DCtx_setParameter). */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#define HASH_STEP (4u << 20)   /* hash the base this much at a time (progress, madvise) */

/* Map the first size bytes of path (prot PROT_READ, or with PROT_WRITE shared). */
static int map_part(const char *path, int64_t size, bool writable, int *ret_fd, void **ret_map,
                    struct molt_sdk_error *err)
{
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return molt_sdk_err_errno(err, errno, "partition %s: cannot open it%s", path,
                                  writable ? " for writing" : "");
    void *m = mmap(NULL, (size_t)size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd,
                   0);
    if (m == MAP_FAILED) {
        int e = errno;
        close(fd);
        return rootfs_err(err, MOLT_EIO, "partition %s: cannot map %lld bytes: %s", path,
                          (long long)size, strerror(e));
    }
    *ret_fd = fd;
    *ret_map = m;
    return 0;
}

static void hex(const unsigned char *md, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* SHA-256 of the mapped bytes, read ahead sequentially. */
static int sha256_map(const unsigned char *p, int64_t size, char out[65],
                      struct molt_sdk_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return rootfs_err(err, MOLT_ENOMEM, "SHA-256: cannot set up a digest");
    }
    madvise((void *)p, (size_t)size, MADV_SEQUENTIAL);
    for (int64_t off = 0; off < size; off += HASH_STEP) {
        size_t n = size - off < HASH_STEP ? (size_t)(size - off) : HASH_STEP;
        EVP_DigestUpdate(ctx, p + off, n);
    }
    EVP_DigestFinal_ex(ctx, md, NULL);
    EVP_MD_CTX_free(ctx);
    madvise((void *)p, (size_t)size, MADV_NORMAL);
    hex(md, out);
    return 0;
}

/* The result's follower, on a thread of its own behind the decoder: it hashes the output the
 * decoder has produced, and per sync_interval starts its write-back and waits for the window
 * before (the full path's bounded dirty pages), so the decoding thread neither hashes nor waits
 * for the medium. The decoder publishes how far it got (produced); the follower stays behind it
 * and never touches a byte the decoder has not finished. The decoder waits only when the
 * follower is more than FOLLOW_LAG windows behind (dirty pages bounded). */
#define FOLLOW_LAG 3
#define FOLLOW_STEP (4 << 20)   /* hash this much at a time, to wake the decoder early */

struct follow {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int64_t produced;            /* decoder: bytes of output final */
    bool done;                   /* decoder: no more output (end or error) */
    int64_t hashed, settled;     /* follower: hashed up to, written back up to */
    bool failed;                 /* follower: a write-back failed (err) */
    EVP_MD_CTX *md;
    int fd;
    const char *path;
    const unsigned char *out;
    int64_t sync_interval;
    struct molt_sdk_error err;
};

static void *follow_run(void *arg)
{
    struct follow *f = arg;
    int64_t hashed = 0, started = 0, settled = 0;
    pthread_mutex_lock(&f->lock);
    for (;;) {
        while (f->produced == hashed && !f->done)
            pthread_cond_wait(&f->cond, &f->lock);
        int64_t upto = f->produced;
        if (upto == hashed)
            break;   /* done and all hashed */
        pthread_mutex_unlock(&f->lock);
        if (upto - hashed > FOLLOW_STEP)
            upto = hashed + FOLLOW_STEP;
        EVP_DigestUpdate(f->md, f->out + hashed, (size_t)(upto - hashed));
        hashed = upto;
        bool failed = false;
        if (hashed - started >= f->sync_interval) {
            sync_file_range(f->fd, started, hashed - started, SYNC_FILE_RANGE_WRITE);
            failed = rootfs_settle(f->fd, f->path, settled, started - settled, &f->err) < 0;
            settled = started;
            started = hashed;
        }
        pthread_mutex_lock(&f->lock);
        f->hashed = hashed;
        f->settled = settled;
        pthread_cond_broadcast(&f->cond);
        if (failed) {
            f->failed = true;
            break;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* Publish the decoder's progress; wait while the follower is too far behind. false: it failed. */
static bool follow_post(struct follow *f, int64_t produced)
{
    pthread_mutex_lock(&f->lock);
    f->produced = produced;
    pthread_cond_broadcast(&f->cond);
    while (!f->failed && produced - f->settled > FOLLOW_LAG * f->sync_interval)
        pthread_cond_wait(&f->cond, &f->lock);
    bool ok = !f->failed;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

/* The decoding pass: the host's payload (the zstd frame) in, the mapped partition out. */
struct decode {
    const struct molt_host_api *host;
    const rootfs_config *cfg;
    const char *path;
    int fd;
    unsigned char *out;
    int64_t size, kill_after;
    const unsigned char *base;
    int64_t base_size;
};

static int decode_loop(struct decode *d, ZSTD_DCtx *dc, struct follow *f,
                       struct molt_sdk_error *err)
{
    const struct molt_host_api *h = d->host;
    ZSTD_outBuffer out = {d->out, (size_t)d->size, 0};
    int64_t got = 0, reported = 0;
    size_t zr = 1;
    for (;;) {
        const void *block = NULL;
        int64_t n = h->read_block(h, &block);
        if (n < 0)
            return rootfs_err(err, (int)n, "reading the delta from the artifact failed after "
                              "%lld bytes", (long long)got);
        if (n == 0)
            break;
        got += n;
        ZSTD_inBuffer in = {block, (size_t)n, 0};
        while (in.pos < in.size) {
            if (zr == 0)
                return rootfs_err(err, MOLT_EFORMAT, "the delta has bytes after its zstd "
                                  "frame");
            zr = ZSTD_decompressStream(dc, &out, &in);
            if (ZSTD_isError(zr))
                return rootfs_err(err, MOLT_EFORMAT, "the delta does not decode against "
                                  "partition %s after %zu bytes of output: %s", d->path,
                                  out.pos, ZSTD_getErrorName(zr));
            if (d->kill_after >= 0 && (int64_t)out.pos >= d->kill_after) {
                msync(d->out, out.pos, MS_SYNC);
                raise(SIGKILL);
            }
            if (!follow_post(f, (int64_t)out.pos)) {
                *err = f->err;
                return err->code;
            }
            if ((int64_t)out.pos - reported >= d->cfg->sync_interval) {
                reported = (int64_t)out.pos;
                h->progress(h, (uint64_t)reported, (uint64_t)d->size);
            }
        }
    }
    if (zr != 0 || (int64_t)out.pos != d->size)
        return rootfs_err(err, MOLT_EFORMAT, "the delta ended after %zu of the image's %lld "
                          "bytes", out.pos, (long long)d->size);
    return 0;
}

static int decode(struct decode *d, char out_sha[65], struct molt_sdk_error *err)
{
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    struct follow f = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
                       .md = EVP_MD_CTX_new(), .fd = d->fd, .path = d->path, .out = d->out,
                       .sync_interval = d->cfg->sync_interval};
    pthread_t follower;
    bool running = false;
    int r = 0;
    if (!dc || !f.md || EVP_DigestInit_ex(f.md, EVP_sha256(), NULL) != 1) {
        r = rootfs_err(err, MOLT_ENOMEM, "out of memory for the zstd decoder");
        goto out;
    }
    /* windowLogMax 31: the frame's window covers base + target (the tool chooses it); the
     * decoder allocates no window since the output buffer is stable (the partition map). */
    if (ZSTD_isError(ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, ZSTD_WINDOWLOG_MAX_64)) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(dc, ZSTD_d_stableOutBuffer, 1)) ||
        ZSTD_isError(ZSTD_DCtx_refPrefix(dc, d->base, (size_t)d->base_size))) {
        r = rootfs_err(err, MOLT_EIO, "zstd: cannot set up the decoder");
        goto out;
    }
    int e = pthread_create(&follower, NULL, follow_run, &f);
    if (e != 0) {
        r = rootfs_err(err, MOLT_ENOMEM, "cannot start the result's hashing thread: %s",
                       strerror(e));
        goto out;
    }
    running = true;
    r = decode_loop(d, dc, &f, err);
out:
    if (running) {
        pthread_mutex_lock(&f.lock);
        f.done = true;
        pthread_cond_broadcast(&f.cond);
        pthread_mutex_unlock(&f.lock);
        pthread_join(follower, NULL);
        if (r == 0 && f.failed) {
            *err = f.err;
            r = err->code;
        }
    }
    if (r == 0) {
        unsigned char sum[32];
        EVP_DigestFinal_ex(f.md, sum, NULL);
        hex(sum, out_sha);
    }
    ZSTD_freeDCtx(dc);
    EVP_MD_CTX_free(f.md);
    return r;
}

int rootfs_delta_write(const struct molt_host_api *host, const rootfs_config *cfg,
                       const char *base_path, const char *path, int64_t size,
                       struct molt_sdk_error *err)
{
    rootfs_delta_info di;
    int64_t base_part = 0, part = 0;
    int r = rootfs_delta_parse(host->type_info(host), host->meta_data(host), &di, err);
    if (r < 0 || (r = rootfs_partition_size(base_path, &base_part, err)) < 0 ||
        (r = rootfs_partition_size(path, &part, err)) < 0)
        return r;
    if (size <= 0)
        return rootfs_err(err, MOLT_EFORMAT, "the delta is empty");
    if (di.base_size > base_part)
        return rootfs_err(err, MOLT_EMODULE, "the delta's base image (%lld bytes) is larger "
                          "than the running partition %s (%lld bytes): it is not the base; "
                          "nothing written", (long long)di.base_size, base_path,
                          (long long)base_part);
    if (di.target_size > part)
        return rootfs_err(err, MOLT_ESPACE, "the new image (%lld bytes) is larger than "
                          "partition %s (%lld bytes): nothing written",
                          (long long)di.target_size, path, (long long)part);
    int bfd = -1, fd = -1;
    void *bmap = NULL, *map = NULL;
    char sha[65];
    if ((r = map_part(base_path, di.base_size, false, &bfd, &bmap, err)) < 0)
        goto out;
    if ((r = sha256_map(bmap, di.base_size, sha, err)) < 0)
        goto out;
    if (strcmp(sha, di.base_sha) != 0) {
        r = rootfs_err(err, MOLT_EMODULE, "the running partition %s is not the delta's base: the "
                       "sha256 of its first %lld bytes is %s, the delta needs %s; partition %s "
                       "not written", base_path, (long long)di.base_size, sha, di.base_sha,
                       path);
        goto out;
    }
    molt_sdk_log_info(host, "partition %s is the delta's base (sha256 %s, %lld bytes); "
                      "rebuilding %lld bytes into %s", base_path, sha, (long long)di.base_size,
                      (long long)di.target_size, path);
    if ((r = map_part(path, di.target_size, true, &fd, &map, err)) < 0)
        goto out;
    const char *knob = getenv(ROOTFS_KILL_KNOB);
    struct decode d = {.host = host, .cfg = cfg, .path = path, .fd = fd, .out = map,
                       .size = di.target_size, .base = bmap, .base_size = di.base_size,
                       .kill_after = knob && *knob ? strtoll(knob, NULL, 10) : -1};
    if ((r = decode(&d, sha, err)) < 0)
        goto out;
    if (strcmp(sha, di.target_sha) != 0) {
        r = rootfs_err(err, MOLT_ECHECKSUM, "the image rebuilt in partition %s has sha256 %s, "
                       "the artifact provides %s: not installed (the bootloader is not "
                       "pointed at it)", path, sha, di.target_sha);
        goto out;
    }
    if (msync(map, (size_t)di.target_size, MS_SYNC) < 0 || fsync(fd) < 0) {
        r = molt_sdk_err_errno(err, errno, "partition %s: writing back failed", path);
        goto out;
    }
    host->progress(host, (uint64_t)di.target_size, (uint64_t)di.target_size);
    if (cfg->verify_write) {   /* read the medium back, not the mapping */
        munmap(map, (size_t)di.target_size);
        map = NULL;
        posix_fadvise(fd, 0, di.target_size, POSIX_FADV_DONTNEED);
        close(fd);
        fd = -1;
        if ((r = map_part(path, di.target_size, false, &fd, &map, err)) < 0 ||
            (r = sha256_map(map, di.target_size, sha, err)) < 0)
            goto out;
        if (strcmp(sha, di.target_sha) != 0) {
            r = rootfs_err(err, MOLT_ECHECKSUM, "partition %s: the image read back has sha256 "
                           "%s, written was %s", path, sha, di.target_sha);
            goto out;
        }
    }
    molt_sdk_log_info(host, "partition %s holds the new image (sha256 %s, %lld bytes)", path,
                      sha, (long long)di.target_size);
out:
    if (map)
        munmap(map, (size_t)di.target_size);
    if (bmap)
        munmap(bmap, (size_t)di.base_size);
    if (fd >= 0) {
        posix_fadvise(fd, 0, di.target_size, POSIX_FADV_DONTNEED);
        close(fd);
    }
    if (bfd >= 0)
        close(bfd);
    return r;
}
