/* SPDX-License-Identifier: Apache-2.0 */
/* libcrypto loaded on demand: molt does not link libcrypto, so a process that hashes, verifies
 * and signs nothing (`molt commit`, `status`, `rollback`, `version`) never maps it: linked, it
 * costs every process ~0.5 ms of CPU and ~125 page faults at start (its relocations and
 * constructors; docs/performance.md). The first user dlopens libcrypto.so.3 once and gets a
 * table of the functions molt calls, as transport/curl_lib.h does for libcurl. */
#ifndef MOLT_UTIL_CRYPTO_LIB_H
#define MOLT_UTIL_CRYPTO_LIB_H

/* SHA256_Init & co. (deprecated in OpenSSL 3) hash at the same speed as EVP without loading
 * the default provider, and the device key may live in an ENGINE (deprecated too). */
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include "util/err.h"

/* The soname loaded, found by the dynamic loader's rules (no environment variable picks it). */
#define MOLT_CRYPTO_SONAME "libcrypto.so.3"

/* Every libcrypto function molt calls (X(name)); a new call adds its name here. */
#define MOLT_CRYPTO_FUNCTIONS(X)                                                               \
    X(BIO_ctrl) X(BIO_free) X(BIO_new) X(BIO_new_mem_buf) X(BIO_s_mem)                         \
    X(BN_bin2bn) X(BN_bn2binpad) X(BN_free) X(CRYPTO_free)                                     \
    X(ECDSA_SIG_free) X(ECDSA_SIG_get0) X(ECDSA_SIG_new) X(ECDSA_SIG_set0)                     \
    X(ENGINE_by_id) X(ENGINE_ctrl_cmd_string) X(ENGINE_finish) X(ENGINE_free) X(ENGINE_init)   \
    X(ENGINE_load_private_key)                                                                 \
    X(ERR_clear_error) X(ERR_error_string_n) X(ERR_get_error) X(ERR_peek_last_error)           \
    X(EVP_DecodeBlock) X(EVP_EncodeBlock)                                                      \
    X(EVP_DigestInit_ex) X(EVP_DigestUpdate) X(EVP_DigestFinal_ex)                             \
    X(EVP_DigestSign) X(EVP_DigestSignInit) X(EVP_DigestVerify) X(EVP_DigestVerifyInit)        \
    X(EVP_MD_CTX_free) X(EVP_MD_CTX_new) X(EVP_PKEY_CTX_set_rsa_padding) X(EVP_PKEY_Q_keygen)  \
    X(EVP_PKEY_free) X(EVP_PKEY_get0_type_name) X(EVP_PKEY_get_base_id)                        \
    X(EVP_PKEY_get_utf8_string_param) X(EVP_PKEY_is_a) X(EVP_sha256) X(OPENSSL_cleanse)        \
    X(PEM_read_bio_PUBKEY) X(PEM_read_bio_PrivateKey) X(PEM_write_bio_PUBKEY)                  \
    X(PEM_write_bio_PrivateKey) X(SHA256_Final) X(SHA256_Init) X(SHA256_Update)                \
    X(d2i_ECDSA_SIG) X(i2d_ECDSA_SIG)

/* The functions, resolved from the loaded library: each field has the name and the exact type
 * of the function its header declares (c->EVP_sha256() calls EVP_sha256). */
typedef struct molt_crypto_lib {
#define MOLT_CRYPTO_FIELD(name) __typeof__(name) *name;
    MOLT_CRYPTO_FUNCTIONS(MOLT_CRYPTO_FIELD)
#undef MOLT_CRYPTO_FIELD
} molt_crypto_lib;

/* The loaded libcrypto. The first call loads it (dlopen RTLD_NOW|RTLD_LOCAL, once per process,
 * thread-safe); later calls return the same table, or the same error: MOLT_EUNSUPPORTED when
 * the library cannot be loaded or lacks a function (the message names the library and says what
 * dlopen/dlsym said). The table lives until exit. */
int molt_crypto_get(const molt_crypto_lib **ret, molt_err *err);

/* The table, for the callers that have no error to return (molt_sha256): when libcrypto cannot
 * be loaded, prints molt_crypto_get's message and exits with 127, as the dynamic loader does
 * when a program's library is missing (which is what a linked libcrypto did, at start). */
const molt_crypto_lib *molt_crypto(void);

/* For tests (the missing-library error): load soname instead of MOLT_CRYPTO_SONAME (NULL: that
 * again). Only the first load of the process reads it; call it before, from one thread. */
void molt_crypto_set_soname(const char *soname);

#endif
