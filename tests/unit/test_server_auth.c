/* SPDX-License-Identifier: Apache-2.0 */
/* The device key and the X-MEN-Signature (docs/reference §3.1): keys of the three types made 0600
 * and loaded back, loose modes refused, signatures verified with OpenSSL over the exact bytes
 * (RSA PKCS#1 v1.5 SHA-256, ECDSA DER, Ed25519 pure), a flipped byte refused. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "trust/auth_sign.h"
#include "trust/device_key.h"
#include "util/encoding.h"
#include "util/fs.h"

typedef struct fixture {
    char dir[64];
    char key[96];
} fixture;

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "auth-test");
    fx_path(f->key, sizeof f->key, "%s/sub/key.pem", f->dir);
    return 0;
}

static int teardown(void **state)
{
    return fx_fixture_free(state);
}

/* Verify sig_b64 over data with the PEM public key, as a server would. */
static int verify(const char *pub_pem, const char *data, size_t len, const char *sig_b64,
                  molt_key_type type)
{
    BIO *bio = BIO_new_mem_buf(pub_pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pub);
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    assert_int_equal(molt_base64_decode(sig_b64, strlen(sig_b64), &sig, &sig_len, NULL), 0);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = type == MOLT_KEY_ED25519 ? NULL : EVP_sha256();
    assert_int_equal(EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pub), 1);
    if (type == MOLT_KEY_RSA3072)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING), 1);
    int ok = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)data, len);
    if (type == MOLT_KEY_ECDSA_P256)
        assert_int_equal(sig[0], 0x30);   /* DER SEQUENCE, not raw r||s */
    if (type == MOLT_KEY_ED25519)
        assert_int_equal(sig_len, 64);
    if (type == MOLT_KEY_RSA3072)
        assert_int_equal(sig_len, 384);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pub);
    free(sig);
    return ok;
}

static void one_type(fixture *f, molt_key_type type)
{
    molt_device_key *k = NULL, *k2 = NULL;
    molt_err err = {0};
    char *pem = NULL, *pem2 = NULL, *sig = NULL;
    unlink(f->key);
    assert_int_equal(molt_device_key_load(&k, f->key, type, &err), 0);
    assert_int_equal(molt_device_key_type(k), type);
    struct stat st;
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(molt_device_key_public_pem(k, &pem, &err), 0);
    assert_true(strncmp(pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
    assert_true(pem[strlen(pem) - 1] == '\n');
    /* Loaded again: the same key, whatever type is asked for. */
    assert_int_equal(molt_device_key_load(&k2, f->key, MOLT_KEY_ED25519, &err), 0);
    assert_int_equal(molt_device_key_public_pem(k2, &pem2, &err), 0);
    assert_string_equal(pem, pem2);
    const char body[] = "{\"id_data\":\"{\\\"mac\\\":\\\"52:54:00:12:34:56\\\"}\",\"pubkey\":\"x\"}";
    assert_int_equal(molt_auth_sign(k2, body, sizeof body - 1, &sig, &err), 0);
    assert_int_equal(verify(pem, body, sizeof body - 1, sig, type), 1);
    char altered[sizeof body];
    memcpy(altered, body, sizeof body);
    altered[5] ^= 1;
    assert_int_not_equal(verify(pem, altered, sizeof body - 1, sig, type), 1);
    free(pem);
    free(pem2);
    free(sig);
    molt_device_key_free(k);
    molt_device_key_free(k2);
}

static void test_types(void **state)
{
    fixture *f = *state;
    one_type(f, MOLT_KEY_ED25519);
    one_type(f, MOLT_KEY_ECDSA_P256);
    one_type(f, MOLT_KEY_RSA3072);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    molt_device_key *k = NULL;
    molt_err err = {0};
    molt_key_type t;
    assert_int_equal(molt_key_type_parse("dsa", &t, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "ed25519, rsa3072 or ecdsa-p256"));
    /* no default here: it is molt.yaml's (server.device_key_type) */
    assert_int_equal(molt_key_type_parse(NULL, &t, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "none given"));
    assert_int_equal(molt_device_key_load(&k, f->key, MOLT_KEY_ED25519, &err), 0);
    molt_device_key_free(k);
    k = NULL;
    assert_int_equal(chmod(f->key, 0644), 0);
    assert_int_equal(molt_device_key_load(&k, f->key, MOLT_KEY_ED25519, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_int_equal(chmod(f->key, 0600), 0);
    assert_int_equal(molt_write_file_atomic(f->key, "not a key\n", 10, 0600, &err), 0);
    assert_int_equal(molt_device_key_load(&k, f->key, MOLT_KEY_ED25519, &err), MOLT_EFORMAT);
    /* No such token (or no pkcs11 engine at all): refused, never created, and the PIN is not
     * in the message. The token case itself: tests/integration/test_fleet_pkcs11.sh. libp11
     * leaks a little when a key is not found, so the call runs in a child that leaves with
     * _exit (no leak check there) and sends its result back. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        molt_err e = {0};
        molt_device_key *pk = NULL;
        e.code = molt_device_key_load(&pk, "pkcs11:token=no-such-token;object=o;pin-value=4711?"
                                           "pin-source=x&module-name=y", MOLT_KEY_ED25519, &e);
        if (pk)
            e.code = 1;
        ssize_t w = write(fds[1], &e, sizeof e);
        _exit(w == (ssize_t)sizeof e ? 0 : 1);
    }
    close(fds[1]);
    molt_err got = {0};
    assert_int_equal(read(fds[0], &got, sizeof got), (ssize_t)sizeof got);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(got.code == MOLT_ENOTFOUND || got.code == MOLT_EUNSUPPORTED);
    assert_null(strstr(got.msg, "4711"));
    assert_null(strstr(got.msg, "pin-"));
    if (got.code == MOLT_ENOTFOUND)
        assert_non_null(strstr(got.msg, "pkcs11:token=no-such-token;object=o&module-name=y"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
