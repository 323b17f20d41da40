/* SPDX-License-Identifier: Apache-2.0 */
/* Artifact signatures (docs/reference §1.4) on OpenSSL 3 EVP: RSA PKCS#1 v1.5 / ECDSA P-256 over
 * SHA-256, ECDSA written as raw r||s like mender-artifact, raw or DER accepted on verify. */
#include "trust/signature.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>

#include "util/crypto_lib.h"
#include "util/encoding.h"
#include "util/fs.h"

#define KEY_FILE_MAX (1024 * 1024)
#define P256_FIELD_BYTES 32
#define ECDSA_RAW_LEN (2 * P256_FIELD_BYTES)
#define SIG_B64_MAX 8192

enum key_kind { KEY_RSA, KEY_EC_P256 };

/* Never prompt on a terminal for a passphrase: encrypted keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

/* The last OpenSSL error as text (for messages), and the queue emptied. */
static const char *ossl_reason(char *buf, size_t len)
{
    const molt_crypto_lib *crypto = molt_crypto();
    unsigned long e = crypto->ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, len, "no OpenSSL detail");
    else
        crypto->ERR_error_string_n(e, buf, len);
    crypto->ERR_clear_error();
    return buf;
}

/* Which supported algorithm the key is for; MOLT_EUNSUPPORTED for anything else. */
static int key_kind_of(EVP_PKEY *pkey, const char *path, enum key_kind *ret_kind, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    if (crypto->EVP_PKEY_is_a(pkey, "RSA")) {
        *ret_kind = KEY_RSA;
        return 0;
    }
    if (crypto->EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        if (!crypto->EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof group, &glen)) {
            crypto->ERR_clear_error();
            return molt_err_set(err, MOLT_EUNSUPPORTED,
                                "%s: EC key without a named curve (only P-256 is supported)", path);
        }
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0 &&
            strcmp(group, "secp256r1") != 0)
            return molt_err_set(err, MOLT_EUNSUPPORTED,
                                "%s: EC curve %s is not supported (expected P-256)", path, group);
        *ret_kind = KEY_EC_P256;
        return 0;
    }
    const char *type = crypto->EVP_PKEY_get0_type_name(pkey);
    return molt_err_set(err, MOLT_EUNSUPPORTED,
                        "%s: key type %s is not supported (expected RSA or EC P-256)", path,
                        type ? type : "?");
}

/* Load a PEM key file: private (PKCS#1, SEC1, PKCS#8) when private is true, else PKIX public. */
static int load_key(const char *path, int private, EVP_PKEY **ret_pkey, enum key_kind *ret_kind,
                    molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    char *pem = NULL;
    size_t pem_len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    char why[256];
    int r = molt_read_file(path, KEY_FILE_MAX, &pem, &pem_len, err);
    if (r < 0) {
        molt_err_prefix(err, "reading %s key: ", private ? "signing" : "verification");
        return r;
    }
    bio = crypto->BIO_new_mem_buf(pem, (int)pem_len);
    if (!bio) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory loading key %s", path);
        goto out;
    }
    pkey = private ? crypto->PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                   : crypto->PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    if (!pkey) {
        r = molt_err_set(err, MOLT_EFORMAT, "%s is not a PEM %s key (%s)", path,
                         private ? "private (PKCS#1, SEC1 or PKCS#8, unencrypted)"
                                 : "public (PKIX \"PUBLIC KEY\")",
                         ossl_reason(why, sizeof why));
        goto out;
    }
    enum key_kind kind;
    r = key_kind_of(pkey, path, &kind, err);
    if (r < 0)
        goto out;
    *ret_pkey = pkey;
    *ret_kind = kind;
    pkey = NULL;
out:
    crypto->EVP_PKEY_free(pkey);
    crypto->BIO_free(bio);
    free(pem);
    return r;
}

/* DER ECDSA-Sig-Value -> raw r||s, each big-endian and left-zero-padded to 32 bytes. */
static int ecdsa_der_to_raw(const unsigned char *der, size_t der_len,
                            unsigned char raw[ECDSA_RAW_LEN])
{
    const molt_crypto_lib *crypto = molt_crypto();
    const unsigned char *p = der;
    ECDSA_SIG *sig = crypto->d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!sig)
        return MOLT_EFORMAT;
    const BIGNUM *r = NULL, *s = NULL;
    crypto->ECDSA_SIG_get0(sig, &r, &s);
    int ok = crypto->BN_bn2binpad(r, raw, P256_FIELD_BYTES) == P256_FIELD_BYTES &&
             crypto->BN_bn2binpad(s, raw + P256_FIELD_BYTES, P256_FIELD_BYTES) == P256_FIELD_BYTES;
    crypto->ECDSA_SIG_free(sig);
    return ok ? 0 : MOLT_EFORMAT;
}

/* Raw r||s (64 bytes) -> malloc'd DER. */
static int ecdsa_raw_to_der(const unsigned char *raw, unsigned char **ret_der, size_t *ret_len)
{
    const molt_crypto_lib *crypto = molt_crypto();
    ECDSA_SIG *sig = crypto->ECDSA_SIG_new();
    BIGNUM *r = crypto->BN_bin2bn(raw, P256_FIELD_BYTES, NULL);
    BIGNUM *s = crypto->BN_bin2bn(raw + P256_FIELD_BYTES, P256_FIELD_BYTES, NULL);
    int rc = MOLT_ENOMEM;
    if (!sig || !r || !s || !crypto->ECDSA_SIG_set0(sig, r, s)) {
        crypto->BN_free(r);
        crypto->BN_free(s);
        goto out;
    }
    /* sig owns r and s now */
    unsigned char *der = NULL;
    int n = crypto->i2d_ECDSA_SIG(sig, &der);
    if (n <= 0)
        goto out;
    *ret_der = der;
    *ret_len = (size_t)n;
    rc = 0;
out:
    crypto->ECDSA_SIG_free(sig);
    return rc;
}

/* A SHA-256 signing or verifying context for the key (PKCS#1 v1.5 padding for RSA). */
static int digest_ctx(EVP_PKEY *pkey, enum key_kind kind, int sign, const char *path,
                      EVP_MD_CTX **ret_md, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    char why[256];
    EVP_MD_CTX *md = crypto->EVP_MD_CTX_new();
    if (!md)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory using key %s", path);
    EVP_PKEY_CTX *pctx = NULL;
    int ok = sign ? crypto->EVP_DigestSignInit(md, &pctx, crypto->EVP_sha256(), NULL, pkey)
                  : crypto->EVP_DigestVerifyInit(md, &pctx, crypto->EVP_sha256(), NULL, pkey);
    if (ok != 1 ||
        (kind == KEY_RSA && crypto->EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)) {
        crypto->EVP_MD_CTX_free(md);
        return molt_err_set(err, MOLT_EUNSUPPORTED, "cannot set up %s with %s (%s)",
                            sign ? "signing" : "verification", path,
                            ossl_reason(why, sizeof why));
    }
    *ret_md = md;
    return 0;
}

int molt_signature_sign(const char *key_path, const void *msg, size_t len, char **ret_b64,
                        molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    enum key_kind kind;
    char why[256];
    if (!key_path || (!msg && len) || !ret_b64)
        return molt_err_set(err, MOLT_EINVAL, "signature: invalid arguments");
    int r = load_key(key_path, 1, &pkey, &kind, err);
    if (r < 0)
        return r;
    if ((r = digest_ctx(pkey, kind, 1, key_path, &md, err)) < 0)
        goto out;
    size_t sig_len = 0;
    if (crypto->EVP_DigestSign(md, NULL, &sig_len, msg, len) != 1) {
        r = molt_err_set(err, MOLT_EIO, "signing with %s failed (%s)", key_path,
                         ossl_reason(why, sizeof why));
        goto out;
    }
    sig = malloc(sig_len);
    if (!sig) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory signing with %s", key_path);
        goto out;
    }
    if (crypto->EVP_DigestSign(md, sig, &sig_len, msg, len) != 1) {
        r = molt_err_set(err, MOLT_EIO, "signing with %s failed (%s)", key_path,
                         ossl_reason(why, sizeof why));
        goto out;
    }
    if (kind == KEY_EC_P256) {
        unsigned char raw[ECDSA_RAW_LEN];
        if (ecdsa_der_to_raw(sig, sig_len, raw) < 0) {
            r = molt_err_set(err, MOLT_EIO, "signing with %s: OpenSSL returned a bad ECDSA "
                             "signature", key_path);
            goto out;
        }
        r = molt_base64_encode(raw, sizeof raw, ret_b64, err);
    } else {
        r = molt_base64_encode(sig, sig_len, ret_b64, err);
    }
out:
    free(sig);
    crypto->EVP_MD_CTX_free(md);
    crypto->EVP_PKEY_free(pkey);
    return r;
}

int molt_signature_verify(const char *pubkey_path, const void *msg, size_t len,
                          const char *b64, size_t b64_len, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL, *der = NULL;
    size_t sig_len = 0;
    enum key_kind kind;
    if (!pubkey_path || (!msg && len) || (!b64 && b64_len))
        return molt_err_set(err, MOLT_EINVAL, "signature: invalid arguments");
    int r = load_key(pubkey_path, 0, &pkey, &kind, err);
    if (r < 0)
        return r;
    if (b64_len > SIG_B64_MAX) {
        r = molt_err_set(err, MOLT_ESIGNATURE, "signature is %zu bytes of base64, more than the "
                         "%d allowed", b64_len, SIG_B64_MAX);
        goto out;
    }
    molt_err b64_err = {0};
    r = molt_base64_decode(b64, b64_len, &sig, &sig_len, &b64_err);
    if (r < 0) {
        r = molt_err_set(err, MOLT_ESIGNATURE, "signature is not valid base64 (%s)", b64_err.msg);
        goto out;
    }
    const unsigned char *check = sig;
    size_t check_len = sig_len;
    if (kind == KEY_EC_P256) {
        if (sig_len == ECDSA_RAW_LEN) {
            if (ecdsa_raw_to_der(sig, &der, &check_len) < 0) {
                r = molt_err_set(err, MOLT_ENOMEM, "out of memory converting ECDSA signature");
                goto out;
            }
            check = der;
        } else if (sig_len < 70 || sig_len > 72) {
            r = molt_err_set(err, MOLT_ESIGNATURE, "ECDSA P-256 signature is %zu bytes; expected "
                             "64 (raw r||s) or 70-72 (DER)", sig_len);
            goto out;
        }
    }
    if ((r = digest_ctx(pkey, kind, 0, pubkey_path, &md, err)) < 0)
        goto out;
    if (crypto->EVP_DigestVerify(md, check, check_len, msg, len) != 1) {
        crypto->ERR_clear_error();
        r = molt_err_set(err, MOLT_ESIGNATURE, "signature does not verify with key %s (%s)",
                         pubkey_path, kind == KEY_RSA ? "RSA PKCS#1 v1.5 SHA-256"
                                                      : "ECDSA P-256 SHA-256");
        goto out;
    }
    r = 0;
out:
    crypto->CRYPTO_free(der, OPENSSL_FILE, OPENSSL_LINE);
    free(sig);
    crypto->EVP_MD_CTX_free(md);
    crypto->EVP_PKEY_free(pkey);
    return r;
}
