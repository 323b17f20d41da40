/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 after FIPS 180-4 (sha256.h): sections 4.1.2 (functions), 4.2.2 (constants), 5.1.1
 * (padding), 5.3.3 (initial value) and 6.2.2 (the compression). */
#include "util/sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, unsigned n)
{
    return x >> n | x << (32 - n);
}

static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

#define S0(x) (ror(x, 2) ^ ror(x, 13) ^ ror(x, 22))
#define S1(x) (ror(x, 6) ^ ror(x, 11) ^ ror(x, 25))
#define s0(x) (ror(x, 7) ^ ror(x, 18) ^ (x) >> 3)
#define s1(x) (ror(x, 17) ^ ror(x, 19) ^ (x) >> 10)
/* One round (6.2.2 step 3; Ch and Maj in equivalent forms with fewer operations), wt being the
 * round's schedule word. The caller rotates the names of the eight working variables from round
 * to round instead of moving their values: after a round, the new a is the old h and the new e
 * the old d. */
#define ROUND(a, b, c, d, e, f, g, h, t, wt)                                                   \
    do {                                                                                       \
        uint32_t t1 = h + S1(e) + (g ^ (e & (f ^ g))) + K[t] + (wt);                          \
        d += t1;                                                                               \
        h = t1 + S0(a) + ((a & b) | (c & (a | b)));                                           \
    } while (0)
/* Eight rounds from round t, with the schedule word of round i given by W(i). */
#define ROUNDS8(t, W)                                                                          \
    do {                                                                                       \
        ROUND(a, b, c, d, e, f, g, h, (t) + 0, W((t) + 0));                                   \
        ROUND(h, a, b, c, d, e, f, g, (t) + 1, W((t) + 1));                                   \
        ROUND(g, h, a, b, c, d, e, f, (t) + 2, W((t) + 2));                                   \
        ROUND(f, g, h, a, b, c, d, e, (t) + 3, W((t) + 3));                                   \
        ROUND(e, f, g, h, a, b, c, d, (t) + 4, W((t) + 4));                                   \
        ROUND(d, e, f, g, h, a, b, c, (t) + 5, W((t) + 5));                                   \
        ROUND(c, d, e, f, g, h, a, b, (t) + 6, W((t) + 6));                                   \
        ROUND(b, c, d, e, f, g, h, a, (t) + 7, W((t) + 7));                                   \
    } while (0)
/* The message schedule (6.2.2 step 1) kept as 16 words: rounds 0-15 read the block's words,
 * and each later round replaces the word of 16 rounds before with its own. */
#define W_BLOCK(t) w[t]
#define W_NEXT(t)                                                                              \
    (w[(t) & 15] += s1(w[((t) - 2) & 15]) + w[((t) - 7) & 15] + s0(w[((t) - 15) & 15]))

/* Compress n consecutive 64-byte blocks at p into state. */
static void blocks(uint32_t state[8], const unsigned char *p, size_t n)
{
    for (; n; n--, p += 64) {
        uint32_t w[16];
        for (int t = 0; t < 16; t++)
            w[t] = load_be32(p + 4 * t);
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        ROUNDS8(0, W_BLOCK);
        ROUNDS8(8, W_BLOCK);
        for (int t = 16; t < 64; t += 8)
            ROUNDS8(t, W_NEXT);
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

void molt_sha256_init(molt_sha256_ctx *c)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(c->h, iv, sizeof iv);
    c->bytes = 0;
    c->have = 0;
}

void molt_sha256_update(molt_sha256_ctx *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len == 0)
        return;
    c->bytes += len;
    if (c->have) {
        size_t take = 64 - c->have < len ? 64 - c->have : len;
        memcpy(c->block + c->have, p, take);
        c->have += take;
        p += take;
        len -= take;
        if (c->have < 64)
            return;
        blocks(c->h, c->block, 1);
        c->have = 0;
    }
    blocks(c->h, p, len / 64);
    p += len / 64 * 64;
    len %= 64;
    if (len)
        memcpy(c->block, p, len);
    c->have = len;
}

void molt_sha256_final(molt_sha256_ctx *c, unsigned char out[32])
{
    uint64_t bits = c->bytes * 8;
    /* 0x80, zeros up to 56 mod 64, the length in bits as 64-bit big-endian. */
    c->block[c->have++] = 0x80;
    if (c->have > 56) {
        memset(c->block + c->have, 0, 64 - c->have);
        blocks(c->h, c->block, 1);
        c->have = 0;
    }
    memset(c->block + c->have, 0, 56 - c->have);
    store_be32(c->block + 56, (uint32_t)(bits >> 32));
    store_be32(c->block + 60, (uint32_t)bits);
    blocks(c->h, c->block, 1);
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, c->h[i]);
}
