/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for core/trust/signature.c: keys made by `openssl` at test time, every signature
 * cross-checked with `openssl dgst -sha256` in both directions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include <sys/wait.h>
#include <openssl/bn.h>
#include <openssl/ec.h>

#include "trust/signature.h"
#include "util/encoding.h"
#include "util/fs.h"

static char tmpdir[64];

static const char message[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                              "  data/0000/payload.bin\n";

/* Run a shell command in tmpdir; returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && (", tmpdir);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    snprintf(cmd + n, sizeof cmd - (size_t)n, ") >/dev/null 2>&1");
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *path(const char *name)
{
    char *p = molt_path_join(tmpdir, name);
    assert_non_null(p);
    return p;
}

static void write_file(const char *name, const void *data, size_t len)
{
    char *p = path(name);
    assert_int_equal(molt_write_file_atomic(p, data, len, 0600, NULL), 0);
    free(p);
}

static char *read_file(const char *name, size_t *ret_len)
{
    char *p = path(name), *data = NULL;
    size_t len = 0;
    assert_int_equal(molt_read_file(p, 1 << 20, &data, &len, NULL), 0);
    free(p);
    if (ret_len)
        *ret_len = len;
    return data;
}

/* The keys (fx_cached: generated once per build of this program). */
static void build_keys(const char *dir)
{
    fx_sh("cd '%s' && ("
          "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key && "
          "openssl rsa -in rsa.key -traditional -out rsa1.key && "
          "openssl pkey -in rsa.key -pubout -out rsa.pub && "
          "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-other.key && "
          "openssl pkey -in rsa-other.key -pubout -out rsa-other.pub && "
          "openssl ecparam -name prime256v1 -genkey -noout -out ec.key && "
          "openssl pkcs8 -topk8 -nocrypt -in ec.key -out ec8.key && "
          "openssl ec -in ec.key -pubout -out ec.pub && "
          "openssl ecparam -name secp384r1 -genkey -noout -out ec384.key && "
          "openssl ec -in ec384.key -pubout -out ec384.pub && "
          "openssl genpkey -algorithm ED25519 -out ed.key && "
          "openssl pkey -in ed.key -pubout -out ed.pub && "
          "openssl pkey -in ec.key -aes256 -passout pass:secret -out ec-enc.key && "
          "printf '%%s' 'not a key' > garbage.pem) >/dev/null 2>&1", dir);
}

static int setup_keys(void **state)
{
    (void)state;
    fx_scratch(tmpdir, sizeof tmpdir, "signature-test");
    fx_cached("test_signature", tmpdir, build_keys);
    char *p = path("msg");
    int r = molt_write_file_atomic(p, message, strlen(message), 0600, NULL);
    free(p);
    return r;
}

static int teardown_keys(void **state)
{
    (void)state;
    fx_scratch_remove(tmpdir);
    return 0;
}

/* Sign with our code, decode, and let openssl verify the binary signature in sig.bin. */
static void sign_to_file(const char *key, unsigned char **ret_raw, size_t *ret_len)
{
    char *b64 = NULL;
    molt_err err = {0};
    char *keyp = path(key);
    int r = molt_signature_sign(keyp, message, strlen(message), &b64, &err);
    free(keyp);
    assert_int_equal(r, 0);
    assert_non_null(b64);
    assert_null(strchr(b64, '\n'));
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    assert_int_equal(molt_base64_decode(b64, strlen(b64), &raw, &raw_len, NULL), 0);
    /* The signature must verify with our own verifier too. */
    char *pub = strdup(key);
    strcpy(strstr(pub, "."), ".pub");
    if (strcmp(key, "rsa1.key") == 0)
        strcpy(pub, "rsa.pub");
    if (strcmp(key, "ec8.key") == 0)
        strcpy(pub, "ec.pub");
    char *pubp = path(pub);
    assert_int_equal(molt_signature_verify(pubp, message, strlen(message), b64, strlen(b64),
                                           &err), 0);
    free(pubp);
    free(pub);
    free(b64);
    *ret_raw = raw;
    *ret_len = raw_len;
}

static void test_rsa_sign_verified_by_openssl(void **state)
{
    (void)state;
    const char *keys[] = {"rsa.key", "rsa1.key"};
    for (size_t i = 0; i < 2; i++) {
        unsigned char *raw;
        size_t len;
        sign_to_file(keys[i], &raw, &len);
        assert_int_equal(len, 256); /* 2048-bit key */
        write_file("sig.bin", raw, len);
        free(raw);
        assert_int_equal(sh("openssl dgst -sha256 -verify rsa.pub -signature sig.bin msg"), 0);
        /* PKCS#1 v1.5, not PSS */
        assert_int_not_equal(sh("openssl dgst -sha256 -sigopt rsa_padding_mode:pss -verify rsa.pub "
                                "-signature sig.bin msg"), 0);
        assert_int_not_equal(sh("openssl dgst -sha256 -verify rsa-other.pub -signature sig.bin msg"),
                             0);
    }
}

static void test_ecdsa_sign_raw_verified_by_openssl(void **state)
{
    (void)state;
    const char *keys[] = {"ec.key", "ec8.key"};
    for (size_t i = 0; i < 2; i++) {
        unsigned char *raw;
        size_t len;
        sign_to_file(keys[i], &raw, &len);
        assert_int_equal(len, 64); /* raw r||s as mender-artifact writes it */
        /* Re-encode as DER ourselves so that openssl can check it. */
        ECDSA_SIG *sig = ECDSA_SIG_new();
        assert_non_null(sig);
        assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL),
                                        BN_bin2bn(raw + 32, 32, NULL)), 1);
        unsigned char *der = NULL;
        int der_len = i2d_ECDSA_SIG(sig, &der);
        assert_true(der_len > 0);
        write_file("sig.der", der, (size_t)der_len);
        OPENSSL_free(der);
        ECDSA_SIG_free(sig);
        free(raw);
        assert_int_equal(sh("openssl dgst -sha256 -verify ec.pub -signature sig.der msg"), 0);
    }
}

/* openssl signs, we verify: RSA, ECDSA as DER, and ECDSA converted to raw r||s. */
static void test_verify_openssl_signatures(void **state)
{
    (void)state;
    molt_err err = {0};
    assert_int_equal(sh("openssl dgst -sha256 -sign rsa.key -out rsa.sig msg && "
                        "openssl dgst -sha256 -sign ec.key -out ec.sig msg"), 0);
    size_t len;
    char *rsa_sig = read_file("rsa.sig", &len);
    char *b64 = NULL;
    assert_int_equal(molt_base64_encode(rsa_sig, len, &b64, NULL), 0);
    char *rsa_pub = path("rsa.pub"), *ec_pub = path("ec.pub"), *other = path("rsa-other.pub");
    assert_int_equal(molt_signature_verify(rsa_pub, message, strlen(message), b64, strlen(b64),
                                           &err), 0);
    assert_int_equal(molt_signature_verify(other, message, strlen(message), b64, strlen(b64),
                                           &err), MOLT_ESIGNATURE);
    /* An RSA signature checked with an EC key is simply wrong. */
    assert_int_equal(molt_signature_verify(ec_pub, message, strlen(message), b64, strlen(b64),
                                           &err), MOLT_ESIGNATURE);
    free(b64);
    free(rsa_sig);

    char *ec_der = read_file("ec.sig", &len);
    assert_true(len >= 70 && len <= 72);
    assert_int_equal(molt_base64_encode(ec_der, len, &b64, NULL), 0);
    assert_int_equal(molt_signature_verify(ec_pub, message, strlen(message), b64, strlen(b64),
                                           &err), 0);
    free(b64);
    /* DER -> raw r||s */
    const unsigned char *p = (const unsigned char *)ec_der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    assert_non_null(sig);
    unsigned char raw[64];
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    assert_int_equal(BN_bn2binpad(r, raw, 32), 32);
    assert_int_equal(BN_bn2binpad(s, raw + 32, 32), 32);
    ECDSA_SIG_free(sig);
    assert_int_equal(molt_base64_encode(raw, sizeof raw, &b64, NULL), 0);
    assert_int_equal(molt_signature_verify(ec_pub, message, strlen(message), b64, strlen(b64),
                                           &err), 0);
    /* A changed message no longer verifies. */
    char changed[sizeof message];
    memcpy(changed, message, sizeof message);
    changed[0] = '1';
    assert_int_equal(molt_signature_verify(ec_pub, changed, strlen(changed), b64, strlen(b64),
                                           &err), MOLT_ESIGNATURE);
    assert_non_null(strstr(err.msg, "does not verify"));
    free(b64);
    free(ec_der);
    free(rsa_pub);
    free(ec_pub);
    free(other);
}

static void test_malformed_signatures(void **state)
{
    (void)state;
    molt_err err = {0};
    char *ec_pub = path("ec.pub");
    const char *bad[] = {"", "!!!!", "AAAA", "abc", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(molt_signature_verify(ec_pub, message, strlen(message), bad[i],
                                               strlen(bad[i]), &err), MOLT_ESIGNATURE);
    /* 64 zero bytes: right length for raw r||s, but r = s = 0 never verifies */
    unsigned char zeros[64] = {0};
    char *b64 = NULL;
    assert_int_equal(molt_base64_encode(zeros, sizeof zeros, &b64, NULL), 0);
    assert_int_equal(molt_signature_verify(ec_pub, message, strlen(message), b64, strlen(b64),
                                           &err), MOLT_ESIGNATURE);
    free(b64);
    free(ec_pub);
}

static void test_key_errors(void **state)
{
    (void)state;
    molt_err err = {0};
    char *b64 = (char *)"x";
    char *p;

    p = path("missing.key");
    assert_int_equal(molt_signature_sign(p, "m", 1, &b64, &err), MOLT_ENOTFOUND);
    assert_int_equal(molt_signature_verify(p, "m", 1, "AAAA", 4, &err), MOLT_ENOTFOUND);
    free(p);

    p = path("garbage.pem");
    assert_int_equal(molt_signature_sign(p, "m", 1, &b64, &err), MOLT_EFORMAT);
    assert_int_equal(molt_signature_verify(p, "m", 1, "AAAA", 4, &err), MOLT_EFORMAT);
    free(p);

    /* An encrypted key is refused without prompting. */
    p = path("ec-enc.key");
    assert_int_equal(molt_signature_sign(p, "m", 1, &b64, &err), MOLT_EFORMAT);
    free(p);

    p = path("ec384.key");
    assert_int_equal(molt_signature_sign(p, "m", 1, &b64, &err), MOLT_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "P-256"));
    free(p);
    p = path("ec384.pub");
    assert_int_equal(molt_signature_verify(p, "m", 1, "AAAA", 4, &err), MOLT_EUNSUPPORTED);
    free(p);

    p = path("ed.key");
    assert_int_equal(molt_signature_sign(p, "m", 1, &b64, &err), MOLT_EUNSUPPORTED);
    free(p);
    p = path("ed.pub");
    assert_int_equal(molt_signature_verify(p, "m", 1, "AAAA", 4, &err), MOLT_EUNSUPPORTED);
    free(p);

    /* A private key is not a verification key. */
    p = path("rsa.key");
    assert_int_equal(molt_signature_verify(p, "m", 1, "AAAA", 4, &err), MOLT_EFORMAT);
    free(p);
    /* ret_b64 untouched on failure */
    assert_string_equal(b64, "x");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_sign_verified_by_openssl),
        cmocka_unit_test(test_ecdsa_sign_raw_verified_by_openssl),
        cmocka_unit_test(test_verify_openssl_signatures),
        cmocka_unit_test(test_malformed_signatures),
        cmocka_unit_test(test_key_errors),
    };
    return fx_run_group_tests(argc, argv, tests, setup_keys, teardown_keys);
}
