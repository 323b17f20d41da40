/* SPDX-License-Identifier: Apache-2.0 */
/* The device's own key pair for authenticating to a Mender server (docs/reference §3.1): made on
 * first start (Ed25519 by default, RSA-3072 or ECDSA P-256 on request) and kept as PEM with
 * mode 0600. */
#ifndef MOLT_TRUST_DEVICE_KEY_H
#define MOLT_TRUST_DEVICE_KEY_H

#include <stddef.h>
#include "util/err.h"

typedef enum molt_key_type {
    MOLT_KEY_ED25519 = 0,
    MOLT_KEY_RSA3072,
    MOLT_KEY_ECDSA_P256,
} molt_key_type;

typedef struct molt_device_key molt_device_key;

/* "ed25519", "rsa3072" (also "rsa") or "ecdsa-p256" (also "ecdsa"). MOLT_EINVAL naming the
 * accepted words otherwise (NULL too: the default is molt.yaml's server.device_key_type). */
int molt_key_type_parse(const char *word, molt_key_type *ret, molt_err *err);

/* Load the private key at path (PEM, any of the three types); when the file does not exist,
 * make a new key of type and store it there atomically with mode 0600 (its folder is created
 * 0700). A key file readable by group or others is refused (MOLT_EINVAL): a device key must
 * stay secret. A "pkcs11:" URI (RFC 7512, e.g. "pkcs11:token=t;object=k;type=private" with
 * "?pin-value=..." or ";pin-value=...") names a key in a token instead, used through OpenSSL's
 * "pkcs11" engine (libp11) with the PKCS#11 library pkcs11_module (NULL = the engine's default,
 * p11-kit's proxy): MOLT_EUNSUPPORTED without the engine, MOLT_ENOTFOUND without the key; such a
 * key is never created. *ret is freed with molt_device_key_free. */
int molt_device_key_load_pkcs11(molt_device_key **ret, const char *path, molt_key_type type,
                                const char *pkcs11_module, molt_err *err);
/* molt_device_key_load_pkcs11 with the default PKCS#11 library. */
int molt_device_key_load(molt_device_key **ret, const char *path, molt_key_type type,
                         molt_err *err);
void molt_device_key_free(molt_device_key *key);

/* The key's type as loaded. */
molt_key_type molt_device_key_type(const molt_device_key *key);

/* The public key as PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----\n...
 * -----END PUBLIC KEY-----\n"), NUL-terminated, malloc'd, owned by the caller. */
int molt_device_key_public_pem(const molt_device_key *key, char **ret_pem, molt_err *err);

/* The OpenSSL EVP_PKEY inside (borrowed; for trust/auth_sign.c). */
void *molt_device_key_pkey(const molt_device_key *key);

#endif
