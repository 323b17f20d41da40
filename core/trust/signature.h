/* SPDX-License-Identifier: Apache-2.0 */
/* Artifact signatures (docs/reference §1.4): SHA-256 digest, RSA PKCS#1 v1.5 or ECDSA P-256.
 * ECDSA signatures are written as raw r||s (64 bytes) like mender-artifact; raw and DER are
 * both accepted when verifying. Signatures travel base64-encoded (standard, padded). */
#ifndef MOLT_TRUST_SIGNATURE_H
#define MOLT_TRUST_SIGNATURE_H

#include <stddef.h>
#include "util/err.h"

/* Sign msg with the PEM private key at key_path (RSA PKCS#1/PKCS#8 or EC P-256 SEC1/PKCS#8).
 * *ret_b64 is a malloc'd NUL-terminated base64 string owned by the caller. */
int molt_signature_sign(const char *key_path, const void *msg, size_t len, char **ret_b64,
                        molt_err *err);

/* Verify a base64 signature over msg with the PEM public key at pubkey_path.
 * 0 when it verifies; MOLT_ESIGNATURE when it does not (or is malformed); MOLT_ENOTFOUND /
 * MOLT_EFORMAT / MOLT_EUNSUPPORTED for a missing, unreadable or unsupported key. */
int molt_signature_verify(const char *pubkey_path, const void *msg, size_t len,
                          const char *b64, size_t b64_len, molt_err *err);

#endif
