/* SPDX-License-Identifier: Apache-2.0 */
/* Hex, base64 (OpenSSL's) and one-shot SHA-256 (the in-tree one for small inputs, OpenSSL's for
 * large ones). */
/* SHA256_Init & co. (deprecated in OpenSSL 3, util/crypto_lib.h): same speed as EVP_Digest
 * without loading the default provider, which maps ~1.7 MiB more of libcrypto
 * (docs/performance.md). */
#include "util/encoding.h"

#include <stdlib.h>
#include <string.h>

#include "util/crypto_lib.h"
#include "util/sha256.h"

void molt_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int molt_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_len)
{
    if (hex_len != 2 * out_len)
        return MOLT_EFORMAT;
    for (size_t i = 0; i < out_len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return MOLT_EFORMAT;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int molt_base64_encode(const void *in, size_t len, char **ret, molt_err *err)
{
    if (len > (size_t)1 << 30)
        return molt_err_set(err, MOLT_ELIMIT, "base64: input of %zu bytes is too large", len);
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return molt_err_set(err, MOLT_ENOMEM, "base64: out of memory");
    molt_crypto()->EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    *ret = out;
    return 0;
}

int molt_base64_decode(const char *in, size_t len, unsigned char **ret, size_t *ret_len,
                       molt_err *err)
{
    if (len == 0 || len % 4 != 0 || len > (size_t)1 << 30)
        return molt_err_set(err, MOLT_EFORMAT,
                            "base64: length %zu is not a positive multiple of 4", len);
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= len - 2);
        if (!ok)
            return molt_err_set(err, MOLT_EFORMAT, "base64: invalid character at offset %zu", i);
    }
    if (in[len - 2] == '=' && in[len - 1] != '=')
        return molt_err_set(err, MOLT_EFORMAT, "base64: bad padding");
    unsigned char *out = malloc(len / 4 * 3 + 1);
    if (!out)
        return molt_err_set(err, MOLT_ENOMEM, "base64: out of memory");
    int n = molt_crypto()->EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0) {
        free(out);
        return molt_err_set(err, MOLT_EFORMAT, "base64: cannot decode");
    }
    /* EVP_DecodeBlock counts padding as zero bytes. */
    size_t pad = (in[len - 1] == '=') + (in[len - 2] == '=');
    *ret = out;
    *ret_len = (size_t)n - pad;
    return 0;
}

void molt_sha256(const void *data, size_t len, unsigned char out[32])
{
    if (len <= MOLT_SHA256_SMALL_MAX) {
        molt_sha256_ctx c;
        molt_sha256_init(&c);
        molt_sha256_update(&c, data, len);
        molt_sha256_final(&c, out);
        return;
    }
    const molt_crypto_lib *crypto = molt_crypto();
    SHA256_CTX c;
    crypto->SHA256_Init(&c);
    crypto->SHA256_Update(&c, data, len);
    crypto->SHA256_Final(out, &c);
}

size_t molt_utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}
