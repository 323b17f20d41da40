/* SPDX-License-Identifier: Apache-2.0 */
/* Hex and base64 encodings, and UTF-8 sequences. */
#ifndef MOLT_UTIL_ENCODING_H
#define MOLT_UTIL_ENCODING_H

#include <stddef.h>
#include "util/err.h"

/* Lower-case hex of len bytes into out (2*len+1 bytes, NUL-terminated). */
void molt_hex_encode(const unsigned char *in, size_t len, char *out);
/* Decode exactly 2*out_len hex digits (either case); MOLT_EFORMAT otherwise. */
int molt_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_len);

/* Standard padded base64 without newlines; *ret is malloc'd, NUL-terminated, caller-owned. */
int molt_base64_encode(const void *in, size_t len, char **ret, molt_err *err);
/* Strict standard base64 (padding required, no whitespace); *ret malloc'd, caller-owned. */
int molt_base64_decode(const char *in, size_t len, unsigned char **ret, size_t *ret_len,
                       molt_err *err);

/* SHA-256 of a buffer: up to MOLT_SHA256_SMALL_MAX bytes by the in-tree code (util/sha256.h,
 * no libcrypto loaded), larger by libcrypto's. */
void molt_sha256(const void *data, size_t len, unsigned char out[32]);

/* The length of the valid UTF-8 sequence at s (1 to 4 bytes, avail at least 1), or 0 when the
 * bytes there are not one: overlong forms, surrogates and values above U+10FFFF are not valid
 * (jansson's rules). */
size_t molt_utf8_sequence(const unsigned char *s, size_t avail);

#endif
