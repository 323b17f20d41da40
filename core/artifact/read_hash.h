/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 on a worker thread for the artifact reader, so hashing a payload file overlaps its
 * decompression and whatever the consumer does with the bytes (DESIGN: performance). The worker
 * can also hand each buffer, after hashing it, to a sink of the consumer's (a module writing the
 * payload to disk): decompression on the reader's thread, hashing and writing on the worker.
 * Small files (MOLT_SHA256_SMALL_MAX, util/sha256.h) have nothing to overlap: they are hashed
 * inline by the in-tree SHA-256, and a reader that meets only small files starts no thread and
 * never loads libcrypto. */
#ifndef MOLT_ARTIFACT_READ_HASH_H
#define MOLT_ARTIFACT_READ_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

typedef struct molt_read_hasher molt_read_hasher;

/* A hasher. Its worker thread is started by the first large digest (start), in the process
 * that made the hasher only (a forked child hashes inline); without one, everything is hashed
 * inline. */
int molt_read_hasher_new(molt_read_hasher **ret, molt_err *err);
/* Stop the worker and release everything; accepts NULL. */
void molt_read_hasher_free(molt_read_hasher *h);

/* Begin a new digest, after any queued work. size is the number of bytes it will cover, as
 * declared (a tar header's; negative: unknown): up to MOLT_SHA256_SMALL_MAX they are hashed
 * inline, by submit, with the in-tree SHA-256; larger (or unknown), by libcrypto on the worker.
 * Only the speed depends on it: the digest is that of the bytes submitted, whatever their
 * number. */
int molt_read_hasher_start(molt_read_hasher *h, int64_t size, molt_err *err);

/* Queue len bytes at p and return their sequence number (1, 2, ...). The bytes must stay valid
 * and unchanged until molt_read_hasher_wait for that number (or a later one, or final)
 * returned. Blocks while the queue is full. */
uint64_t molt_read_hasher_submit(molt_read_hasher *h, const void *p, size_t len);

/* Wait until every buffer up to sequence number seq has been hashed. */
void molt_read_hasher_wait(molt_read_hasher *h, uint64_t seq);
/* Wait until every queued buffer has been hashed (and sunk). */
void molt_read_hasher_drain(molt_read_hasher *h);

/* A sink for the buffers of the current digest: after hashing a buffer the worker (or, without
 * one, submit) calls sink(ctx, p, len), in order. A negative return is kept (sink_code) and the
 * sink is not called again until the next start. Set it before the first submit after start;
 * start clears it. */
typedef int (*molt_read_sink_fn)(void *ctx, const void *p, size_t len);
void molt_read_hasher_set_sink(molt_read_hasher *h, molt_read_sink_fn sink, void *ctx);
/* 0, or the negative code the sink returned (it may still be running on queued buffers:
 * molt_read_hasher_wait for them). */
int molt_read_hasher_sink_code(molt_read_hasher *h);

/* Wait for the queue to drain and write the digest of everything since start. */
int molt_read_hasher_final(molt_read_hasher *h, unsigned char out[32], molt_err *err);

#endif
