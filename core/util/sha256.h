/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 (FIPS 180-4) in portable C, for small inputs: hashing a few KiB with it costs
 * microseconds, while loading libcrypto for them costs ~0.8 ms per process
 * (docs/performance.md). Large inputs go to libcrypto, whose SHA-256 uses the CPU's SHA
 * extensions: MOLT_SHA256_SMALL_MAX draws the line. */
#ifndef MOLT_UTIL_SHA256_H
#define MOLT_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* The largest input hashed in-tree rather than by libcrypto (molt_sha256; the artifact reader's
 * payload files, by the size their tar header declares, also hashed inline below it, with no
 * worker thread). At this size the in-tree code costs 125-200 us more than libcrypto with SHA-NI
 * (~400 MB/s, 250 under load, against ~1.84 GB/s: bench/sha256_small.sh), a seventh to a
 * quarter of libcrypto's load (~0.9 ms), and less than the write + fsync of the file it checks;
 * past it, with libcrypto loaded anyway (a signature, another large file), the in-tree code only
 * loses, and there is decompression worth overlapping with the thread (docs/performance.md,
 * "Where the rest of a small update's time goes"). */
#define MOLT_SHA256_SMALL_MAX ((size_t)64 << 10)

/* A digest in progress; plain data, no resources: copy it, drop it. */
typedef struct molt_sha256_ctx {
    uint32_t h[8];
    uint64_t bytes;            /* message length so far */
    unsigned char block[64];   /* a partial block */
    size_t have;               /* bytes in block */
} molt_sha256_ctx;

void molt_sha256_init(molt_sha256_ctx *c);
/* Add len bytes at p (p may be NULL when len is 0). */
void molt_sha256_update(molt_sha256_ctx *c, const void *p, size_t len);
/* Write the digest of everything added since init; c must be initialised again to be reused. */
void molt_sha256_final(molt_sha256_ctx *c, unsigned char out[32]);

#endif
