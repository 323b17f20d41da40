/* SPDX-License-Identifier: Apache-2.0 */
/* A one-thread SHA-256 pipeline: the reader queues filled buffers, the worker hashes them in
 * order, and the reader waits only before it reuses a buffer or needs the digest. Small files
 * skip it: hashed inline by the in-tree SHA-256, with no thread and no libcrypto. */
#include "artifact/read_hash.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
/* SHA256_Init & co. (util/crypto_lib.h) are deprecated in OpenSSL 3 but hash at the same speed
 * as EVP without loading the default provider, which maps ~1.7 MiB more of libcrypto
 * (docs/performance.md). */
#include "util/crypto_lib.h"
#include "util/sha256.h"

#define QUEUE 8

struct molt_read_hasher {
    union {
        SHA256_CTX large;     /* libcrypto's */
        molt_sha256_ctx small;
    } md;
    bool small;               /* this digest: inline, in-tree (molt_read_hasher_start) */
    pthread_t thread;
    bool threaded;            /* the worker runs */
    bool thread_tried;        /* it was started (or could not be) */
    pid_t pid;                /* the process the hasher was made in, the only one with a worker */
    pthread_mutex_t lock;
    pthread_cond_t work;      /* signalled when work is queued or on quit */
    pthread_cond_t done_cv;   /* signalled when an item has been hashed */
    struct {
        const void *p;
        size_t len;
    } queue[QUEUE];
    uint64_t submitted, done;
    bool quit;
    bool failed;              /* SHA256_Update failed */
    molt_read_sink_fn sink;   /* NULL: none, or it failed */
    void *sink_ctx;
    int sink_code;            /* what the sink returned when it failed */
};

/* Hash one buffer and hand it to the sink. Runs on the worker, or inline without one; the sink
 * fields are only touched under the lock (or with no worker running). */
static bool consume(molt_read_hasher *h, const void *p, size_t len, molt_read_sink_fn sink,
                    void *ctx, int *sink_rc)
{
    bool ok = true;
    if (h->small)
        molt_sha256_update(&h->md.small, p, len);
    else
        ok = molt_crypto()->SHA256_Update(&h->md.large, p, len) == 1;
    *sink_rc = ok && sink ? sink(ctx, p, len) : 0;
    return ok;
}

static void sink_failed(molt_read_hasher *h, int rc)
{
    if (rc < 0 && h->sink) {
        h->sink = NULL;
        h->sink_code = rc;
    }
}

static void *worker(void *arg)
{
    molt_read_hasher *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->done == h->submitted && !h->quit)
            pthread_cond_wait(&h->work, &h->lock);
        if (h->done == h->submitted && h->quit)
            break;
        const void *p = h->queue[h->done % QUEUE].p;
        size_t len = h->queue[h->done % QUEUE].len;
        molt_read_sink_fn sink = h->sink;
        void *ctx = h->sink_ctx;
        int sink_rc;
        pthread_mutex_unlock(&h->lock);
        /* The context is only touched by the reader while the queue is empty. */
        bool ok = consume(h, p, len, sink, ctx, &sink_rc);
        pthread_mutex_lock(&h->lock);
        if (!ok)
            h->failed = true;
        sink_failed(h, sink_rc);
        h->done++;
        pthread_cond_broadcast(&h->done_cv);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int molt_read_hasher_new(molt_read_hasher **ret, molt_err *err)
{
    molt_read_hasher *h = calloc(1, sizeof *h);
    if (!h)
        return molt_err_set(err, MOLT_ENOMEM, "sha256 worker: out of memory");
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->work, NULL);
    pthread_cond_init(&h->done_cv, NULL);
    h->pid = getpid();
    *ret = h;
    return 0;
}

/* The worker, started by the first large file (in the process that made the hasher only: a
 * forked child carries on inline, check_process). Without it, everything is hashed inline. */
static void start_worker(molt_read_hasher *h)
{
    if (h->thread_tried || getpid() != h->pid)
        return;
    h->thread_tried = true;
    /* Signals stay with the caller's thread (a sink's write or sync_file_range is never
     * interrupted by a handler): the worker starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    h->threaded = pthread_create(&h->thread, NULL, worker, h) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void consume_inline(molt_read_hasher *h, const void *p, size_t len)
{
    int sink_rc;
    if (!consume(h, p, len, h->sink, h->sink_ctx, &sink_rc))
        h->failed = true;
    sink_failed(h, sink_rc);
}

/* After fork() the child has no worker: hash what is queued and carry on inline there. (Should
 * the fork have caught the worker inside an update, the digest is wrong and the file fails its
 * checksum: never a false success.) */
static void check_process(molt_read_hasher *h)
{
    if (!h->threaded || getpid() == h->pid)
        return;
    h->threaded = false;
    for (; h->done < h->submitted; h->done++)
        consume_inline(h, h->queue[h->done % QUEUE].p, h->queue[h->done % QUEUE].len);
}

void molt_read_hasher_free(molt_read_hasher *h)
{
    if (!h)
        return;
    check_process(h);
    if (h->threaded) {
        pthread_mutex_lock(&h->lock);
        h->quit = true;
        pthread_cond_signal(&h->work);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->thread, NULL);
    }
    pthread_cond_destroy(&h->work);
    pthread_cond_destroy(&h->done_cv);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void molt_read_hasher_wait(molt_read_hasher *h, uint64_t seq)
{
    check_process(h);
    if (!h->threaded || h->small)   /* a small digest's buffers are hashed as submitted */
        return;
    pthread_mutex_lock(&h->lock);
    while (h->done < seq)
        pthread_cond_wait(&h->done_cv, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

void molt_read_hasher_drain(molt_read_hasher *h)
{
    molt_read_hasher_wait(h, h->submitted);
}

int molt_read_hasher_start(molt_read_hasher *h, int64_t size, molt_err *err)
{
    molt_read_hasher_drain(h);
    h->failed = false;
    molt_read_hasher_set_sink(h, NULL, NULL);
    /* The line between small and large is the one between the in-tree SHA-256 and libcrypto's
     * (util/sha256.h), and it serves the thread as well: a small file is at most one slot, hashed
     * in ~160 us, with nothing much to overlap, while the thread costs ~0.3 ms of an install (its
     * creation and the hand-offs; docs/performance.md). */
    h->small = size >= 0 && (uint64_t)size <= MOLT_SHA256_SMALL_MAX;
    if (h->small) {
        molt_sha256_init(&h->md.small);
        return 0;
    }
    start_worker(h);
    if (molt_crypto()->SHA256_Init(&h->md.large) != 1)
        return molt_err_set(err, MOLT_ENOMEM, "sha256: cannot start a digest");
    return 0;
}

uint64_t molt_read_hasher_submit(molt_read_hasher *h, const void *p, size_t len)
{
    check_process(h);
    if (!h->threaded || h->small) {
        /* The worker, if any, is idle (the queue was drained at start) and touches neither the
         * digest nor the sink; the counters, which it reads, change under the lock. */
        consume_inline(h, p, len);
        if (h->threaded)
            pthread_mutex_lock(&h->lock);
        uint64_t seq = h->done = ++h->submitted;
        if (h->threaded)
            pthread_mutex_unlock(&h->lock);
        return seq;
    }
    pthread_mutex_lock(&h->lock);
    while (h->submitted - h->done >= QUEUE)
        pthread_cond_wait(&h->done_cv, &h->lock);
    h->queue[h->submitted % QUEUE].p = p;
    h->queue[h->submitted % QUEUE].len = len;
    uint64_t seq = ++h->submitted;
    pthread_cond_signal(&h->work);
    pthread_mutex_unlock(&h->lock);
    return seq;
}

void molt_read_hasher_set_sink(molt_read_hasher *h, molt_read_sink_fn sink, void *ctx)
{
    pthread_mutex_lock(&h->lock);
    h->sink = sink;
    h->sink_ctx = ctx;
    h->sink_code = 0;
    pthread_mutex_unlock(&h->lock);
}

int molt_read_hasher_sink_code(molt_read_hasher *h)
{
    pthread_mutex_lock(&h->lock);
    int rc = h->sink_code;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int molt_read_hasher_final(molt_read_hasher *h, unsigned char out[32], molt_err *err)
{
    molt_read_hasher_drain(h);
    if (h->failed)
        return molt_err_set(err, MOLT_ENOMEM, "sha256: digest failed");
    if (h->small)
        molt_sha256_final(&h->md.small, out);
    else if (molt_crypto()->SHA256_Final(out, &h->md.large) != 1)
        return molt_err_set(err, MOLT_ENOMEM, "sha256: digest failed");
    return 0;
}
