/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the in-tree SHA-256 (core/util/sha256.c), which hashes untrusted bytes (small
 * payload files, the header and version of unsigned artifacts) and must agree with libcrypto's
 * on every input and every way of feeding it. The input's first byte gives a number of cuts
 * (0-7), the next two bytes per cut their lengths (big-endian, modulo what is left); the rest
 * is the message, hashed in one update and in the pieces the cuts make (empty pieces included),
 * each compared with libcrypto's digest, or the target aborts. Runs under libFuzzer (MOLT_FUZZ)
 * and over the committed corpus as a test. */
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t cuts = data[0] % 8, head = 1 + 2 * cuts;
    if (size < head)
        return 0;
    const uint8_t *msg = data + head;
    size_t len = size - head;
    unsigned char want[32], got[32];
    SHA256(msg, len, want);

    molt_sha256_ctx c;
    molt_sha256_init(&c);
    molt_sha256_update(&c, msg, len);
    molt_sha256_final(&c, got);
    if (memcmp(got, want, 32) != 0)
        abort();

    molt_sha256_init(&c);
    size_t pos = 0;
    for (size_t i = 0; i < cuts; i++) {
        size_t n = (size_t)data[1 + 2 * i] << 8 | data[2 + 2 * i];
        n %= len - pos + 1;
        molt_sha256_update(&c, msg + pos, n);
        pos += n;
    }
    molt_sha256_update(&c, msg + pos, len - pos);
    molt_sha256_final(&c, got);
    if (memcmp(got, want, 32) != 0)
        abort();
    return 0;
}
