/* SPDX-License-Identifier: Apache-2.0 */
/* Signatures for Mender authentication requests (docs/reference §3.1), with OpenSSL's EVP API. */
#include "trust/auth_sign.h"

#include <stdlib.h>

#include "util/crypto_lib.h"
#include "util/encoding.h"

/* Signatures are at most 512 bytes for RSA-4096; DER ECDSA P-256 is ~72; Ed25519 64. */
#define SIG_MAX 1024

int molt_auth_sign(const molt_device_key *key, const void *data, size_t len, char **ret_b64,
                   molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    EVP_PKEY *pkey = molt_device_key_pkey(key);
    EVP_MD_CTX *ctx = crypto->EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[SIG_MAX];
    size_t sig_len = sizeof sig;
    int r = 0;
    if (!ctx)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    /* Ed25519 takes no digest (pure mode); RSA and ECDSA hash with SHA-256. */
    const EVP_MD *md =
        molt_device_key_type(key) == MOLT_KEY_ED25519 ? NULL : crypto->EVP_sha256();
    if (crypto->EVP_DigestSignInit(ctx, &pctx, md, NULL, pkey) != 1 ||
        (molt_device_key_type(key) == MOLT_KEY_RSA3072 &&
         crypto->EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) ||
        crypto->EVP_DigestSign(ctx, NULL, &sig_len, data, len) != 1 || sig_len > sizeof sig ||
        crypto->EVP_DigestSign(ctx, sig, &sig_len, data, len) != 1) {
        unsigned long e = crypto->ERR_get_error();
        char text[256];
        crypto->ERR_error_string_n(e, text, sizeof text);
        crypto->ERR_clear_error();
        r = molt_err_set(err, MOLT_ESIGNATURE, "signing the authentication request: %s",
                         e ? text : "signature too long");
        goto out;
    }
    r = molt_base64_encode(sig, sig_len, ret_b64, err);
out:
    crypto->EVP_MD_CTX_free(ctx);
    return r;
}
