/* SHA-256 on a worker thread for the artifact reader, so hashing a payload file overlaps its
 * decompression and whatever the consumer does with the bytes (DESIGN: performance). */
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

/* Wait for the queue to drain and write the digest of everything since start. */
int molt_read_hasher_final(molt_read_hasher *h, unsigned char out[32], molt_err *err);

#endif
