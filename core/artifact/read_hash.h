/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 on a worker thread for the artifact reader, so hashing a payload file overlaps its
 * decompression and whatever the consumer does with the bytes (DESIGN: performance). The worker
 * can also hand each buffer, after hashing it, to a sink of the consumer's (a module writing the
 * payload to disk): decompression on the reader's thread, hashing and writing on the worker. */
#ifndef MOLT_ARTIFACT_READ_HASH_H
#define MOLT_ARTIFACT_READ_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

typedef struct molt_read_hasher molt_read_hasher;

/* A hasher with its worker thread (or hashing inline if no thread can be started). */
int molt_read_hasher_new(molt_read_hasher **ret, molt_err *err);
/* Stop the worker and release everything; accepts NULL. */
void molt_read_hasher_free(molt_read_hasher *h);

/* Begin a new digest, after any queued work. */
int molt_read_hasher_start(molt_read_hasher *h, molt_err *err);

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
