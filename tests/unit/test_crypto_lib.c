/* SPDX-License-Identifier: Apache-2.0 */
/* libcrypto loaded on demand (core/util/crypto_lib.h): a process that has hashed nothing has no
 * libcrypto mapped; the first use maps it and the table works (SHA-256 of a known text through
 * molt_sha256, base64); molt_sha256 of up to MOLT_SHA256_SMALL_MAX bytes (the in-tree SHA-256)
 * maps none, of one byte more maps it; a missing library is one clear MOLT_EUNSUPPORTED naming
 * it, and molt_crypto(), for callers without an error to return, prints it and exits with 127
 * (the library named by molt_crypto_set_soname, a test hook). Each case runs in a forked child so
 * the load-once state starts empty. This program does not link libcrypto (tests/CMakeLists.txt
 * links it only into the tests that include OpenSSL's headers). */
#include "fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/crypto_lib.h"
#include "util/encoding.h"
#include "util/sha256.h"

/* True if a mapping of the process names libcrypto. */
static bool libcrypto_mapped(void)
{
    return fx_mapped("/libcrypto");
}

static void child_loads(void)
{
    if (libcrypto_mapped())
        _exit(10);   /* mapped at start: this program or molt-core links it */
    const molt_crypto_lib *c = NULL;
    molt_err e = {0};
    if (molt_crypto_get(&c, &e) != 0 || !c || !libcrypto_mapped())
        _exit(11);
    const molt_crypto_lib *again = NULL;
    if (molt_crypto_get(&again, &e) != 0 || again != c || molt_crypto() != c)
        _exit(12);
    unsigned char sum[32];
    char hex[65];
    molt_sha256("abc", 3, sum);
    molt_hex_encode(sum, sizeof sum, hex);
    if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0)
        _exit(13);
    char *b64 = NULL;
    if (molt_base64_encode("molt", 4, &b64, &e) != 0 || strcmp(b64, "bW9sdA==") != 0)
        _exit(14);
    free(b64);
}

static void test_loaded_on_first_use(void **state)
{
    (void)state;
    assert_int_equal(fx_in_child(child_loads, NULL), 0);
}

/* libcrypto's SHA-256 of data, through molt's table (loads libcrypto). */
static void libcrypto_sha256(const void *data, size_t len, unsigned char out[32])
{
    const molt_crypto_lib *c = molt_crypto();
    SHA256_CTX ctx;
    c->SHA256_Init(&ctx);
    c->SHA256_Update(&ctx, data, len);
    c->SHA256_Final(out, &ctx);
}

static void child_small_hash(void)
{
    unsigned char *zeros = calloc(1, MOLT_SHA256_SMALL_MAX + 1);
    unsigned char small[32], large[32], want[32];
    if (!zeros)
        _exit(30);
    molt_sha256(zeros, MOLT_SHA256_SMALL_MAX, small);
    if (libcrypto_mapped())
        _exit(31);
    molt_sha256(zeros, MOLT_SHA256_SMALL_MAX + 1, large);
    if (!libcrypto_mapped())
        _exit(32);
    /* Both agree with libcrypto's own (now loaded). */
    libcrypto_sha256(zeros, MOLT_SHA256_SMALL_MAX, want);
    if (memcmp(small, want, 32) != 0)
        _exit(33);
    libcrypto_sha256(zeros, MOLT_SHA256_SMALL_MAX + 1, want);
    if (memcmp(large, want, 32) != 0)
        _exit(34);
    free(zeros);
}

static void test_small_hash_loads_nothing(void **state)
{
    (void)state;
    assert_int_equal(fx_in_child(child_small_hash, NULL), 0);
}

static void child_missing(void)
{
    molt_crypto_set_soname("libmolt-no-such-crypto.so.9");
    const molt_crypto_lib *c = NULL;
    molt_err e = {0};
    if (molt_crypto_get(&c, &e) != MOLT_EUNSUPPORTED || c)
        _exit(20);
    if (!strstr(e.msg, "libcrypto") || !strstr(e.msg, "libmolt-no-such-crypto.so.9"))
        _exit(21);
    molt_err e2 = {0};
    if (molt_crypto_get(&c, &e2) != MOLT_EUNSUPPORTED || strcmp(e.msg, e2.msg) != 0)
        _exit(22);
    /* No error to return: exits. (Small inputs need no libcrypto.) */
    static unsigned char large[MOLT_SHA256_SMALL_MAX + 1];
    unsigned char sum[32];
    molt_sha256(large, sizeof large, sum);
    _exit(23);
}

static void test_missing_library(void **state)
{
    (void)state;
    char dir[64], path[128];
    fx_scratch(dir, sizeof dir, "crypto-lib");
    snprintf(path, sizeof path, "%s/stderr", dir);
    assert_int_equal(fx_in_child(child_missing, path), 127);
    char *text = fx_read(path, NULL);
    assert_non_null(strstr(text, "molt: molt needs libcrypto, which cannot be loaded "
                                 "(libmolt-no-such-crypto.so.9)"));
    free(text);
    fx_scratch_remove(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded_on_first_use),
        cmocka_unit_test(test_small_hash_loads_nothing),
        cmocka_unit_test(test_missing_library),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
