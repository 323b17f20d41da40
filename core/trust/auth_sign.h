/* SPDX-License-Identifier: Apache-2.0 */
/* The X-MEN-Signature of an authentication request (docs/reference §3.1): a signature over the exact
 * body bytes, base64 (standard, padded). RSA: PKCS#1 v1.5 with SHA-256; ECDSA P-256: SHA-256
 * and an ASN.1 DER SEQUENCE{r,s}; Ed25519: pure Ed25519 over the raw body. */
#ifndef MOLT_TRUST_AUTH_SIGN_H
#define MOLT_TRUST_AUTH_SIGN_H

#include <stddef.h>
#include "trust/device_key.h"
#include "util/err.h"

/* Sign data (len bytes) with key; *ret_b64 is the base64 signature, NUL-terminated, malloc'd
 * and owned by the caller. MOLT_ESIGNATURE when OpenSSL refuses. */
int molt_auth_sign(const molt_device_key *key, const void *data, size_t len, char **ret_b64,
                   molt_err *err);

#endif
