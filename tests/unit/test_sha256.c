/* SPDX-License-Identifier: Apache-2.0 */
/* The in-tree SHA-256 (core/util/sha256.h) against FIPS 180-4's examples and against libcrypto
 * (linked into this program): every length from 0 to 320 bytes, each split into two updates at
 * every offset and fed a byte at a time; random lengths up to 4 MiB in random chunks (empty
 * updates among them); and molt_sha256, which picks the in-tree code or libcrypto's by length,
 * on both sides of MOLT_SHA256_SMALL_MAX. The random inputs come from a fixed seed. */
#include "fixture.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "util/encoding.h"
#include "util/sha256.h"

static unsigned char *random_bytes(size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(fx_rng() >> 56);
    return p;
}

static void in_tree(const void *p, size_t len, unsigned char out[32])
{
    molt_sha256_ctx c;
    molt_sha256_init(&c);
    molt_sha256_update(&c, p, len);
    molt_sha256_final(&c, out);
}

static void assert_hex(const unsigned char sum[32], const char *want)
{
    char hex[65];
    molt_hex_encode(sum, 32, hex);
    assert_string_equal(hex, want);
}

/* FIPS 180-4's examples (NIST's "Example Algorithms", SHA-256: one block, two blocks, long
 * message), the 896-bit message of the SHA-2 test vectors, and the empty message. */
static void test_nist_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        const char *sum;
    } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
        { "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
          "lmnopqrsmnopqrstnopqrstu",
          "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
    };
    unsigned char sum[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        in_tree(v[i].msg, strlen(v[i].msg), sum);
        assert_hex(sum, v[i].sum);
    }
    /* One million 'a', in updates of 1000. */
    char a[1000];
    memset(a, 'a', sizeof a);
    molt_sha256_ctx c;
    molt_sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        molt_sha256_update(&c, a, sizeof a);
    molt_sha256_final(&c, sum);
    assert_hex(sum, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* An empty update, with no buffer, changes nothing. */
    molt_sha256_init(&c);
    molt_sha256_update(&c, NULL, 0);
    molt_sha256_update(&c, "abc", 3);
    molt_sha256_update(&c, NULL, 0);
    molt_sha256_final(&c, sum);
    assert_hex(sum, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Every length across the padding's edge cases (55, 56, 63, 64 bytes mod 64...). */
static void test_every_length(void **state)
{
    (void)state;
    enum { MAX = 320 };
    unsigned char *data = random_bytes(MAX);
    for (size_t len = 0; len <= MAX; len++) {
        unsigned char want[32], got[32];
        SHA256(data, len, want);
        in_tree(data, len, got);
        assert_memory_equal(got, want, 32);
        for (size_t cut = 0; cut <= len; cut++) {
            molt_sha256_ctx c;
            molt_sha256_init(&c);
            molt_sha256_update(&c, data, cut);
            molt_sha256_update(&c, data + cut, len - cut);
            molt_sha256_final(&c, got);
            assert_memory_equal(got, want, 32);
        }
        molt_sha256_ctx c;
        molt_sha256_init(&c);
        for (size_t i = 0; i < len; i++)
            molt_sha256_update(&c, data + i, 1);
        molt_sha256_final(&c, got);
        assert_memory_equal(got, want, 32);
    }
    free(data);
}

/* Random lengths up to 4 MiB, each hashed whole and in random chunks of 0 to ~70 KiB. */
static void test_random_lengths_and_chunks(void **state)
{
    (void)state;
    enum { MAX = 4 << 20 };
    unsigned char *data = random_bytes(MAX);
    size_t lens[24] = { MAX, MAX - 1, 65536, 65537, 1 << 20 };
    for (size_t i = 5; i < sizeof lens / sizeof lens[0]; i++)
        lens[i] = (size_t)(fx_rng() % MAX);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        unsigned char want[32], got[32];
        SHA256(data, len, want);
        in_tree(data, len, got);
        assert_memory_equal(got, want, 32);
        molt_sha256_ctx c;
        molt_sha256_init(&c);
        for (size_t pos = 0; pos < len;) {
            /* Mostly short or odd chunks, now and then a long one or an empty one. */
            size_t n = (size_t)(fx_rng() % 8 == 0 ? fx_rng() % 70000 : fx_rng() % 200);
            if (n > len - pos)
                n = len - pos;
            molt_sha256_update(&c, data + pos, n);
            pos += n;
        }
        molt_sha256_final(&c, got);
        assert_memory_equal(got, want, 32);
    }
    free(data);
}

/* molt_sha256 agrees with libcrypto on both sides of the line between its two implementations. */
static void test_one_shot_both_sides(void **state)
{
    (void)state;
    size_t max = MOLT_SHA256_SMALL_MAX;
    unsigned char *data = random_bytes(3 * max);
    size_t lens[] = { 0, 1, 1000, max - 1, max, max + 1, max + 64, 3 * max };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        unsigned char want[32], got[32];
        SHA256(data, lens[i], want);
        molt_sha256(data, lens[i], got);
        assert_memory_equal(got, want, 32);
    }
    free(data);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist_vectors),
        cmocka_unit_test(test_every_length),
        cmocka_unit_test(test_random_lengths_and_chunks),
        cmocka_unit_test(test_one_shot_both_sides),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
