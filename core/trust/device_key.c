/* SPDX-License-Identifier: Apache-2.0 */
/* The device key: load it, or make it on first start and keep it private (mode 0600); or use a
 * key in a PKCS#11 token through OpenSSL's "pkcs11" engine (libp11). */
/* Debian 12 has no PKCS#11 provider for OpenSSL 3, only libp11's engine: the ENGINE API is
 * deprecated in OpenSSL 3 but present; util/crypto_lib.h turns its deprecation attributes off. */
#include "trust/device_key.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/crypto_lib.h"
#include "util/fs.h"
#include "util/log.h"

/* A PEM private key is a few KiB at most (RSA-4096 is ~3.3 KiB). */
#define KEY_FILE_MAX (64 * 1024)

struct molt_device_key {
    EVP_PKEY *pkey;
    molt_key_type type;
    ENGINE *engine;            /* the pkcs11 engine of a token key (a functional reference) */
};

static int ssl_fail(molt_err *err, int code, const char *what)
{
    const molt_crypto_lib *crypto = molt_crypto();
    unsigned long e = crypto->ERR_get_error();
    char text[256] = "unknown OpenSSL error";
    if (e)
        crypto->ERR_error_string_n(e, text, sizeof text);
    crypto->ERR_clear_error();
    return molt_err_set(err, code, "%s: %s", what, text);
}

int molt_key_type_parse(const char *word, molt_key_type *ret, molt_err *err)
{
    if (!word)
        return molt_err_set(err, MOLT_EINVAL, "device key type: none given (expected ed25519, "
                            "rsa3072 or ecdsa-p256)");
    if (strcmp(word, "ed25519") == 0)
        *ret = MOLT_KEY_ED25519;
    else if (strcmp(word, "rsa3072") == 0 || strcmp(word, "rsa") == 0)
        *ret = MOLT_KEY_RSA3072;
    else if (strcmp(word, "ecdsa-p256") == 0 || strcmp(word, "ecdsa") == 0)
        *ret = MOLT_KEY_ECDSA_P256;
    else
        return molt_err_set(err, MOLT_EINVAL, "device key type \"%s\": expected ed25519, "
                            "rsa3072 or ecdsa-p256", word);
    return 0;
}

static const char *type_name(molt_key_type t)
{
    return t == MOLT_KEY_RSA3072 ? "RSA-3072" : t == MOLT_KEY_ECDSA_P256 ? "ECDSA P-256"
                                                                         : "Ed25519";
}

static int generate(molt_key_type type, EVP_PKEY **ret, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    EVP_PKEY *pkey = NULL;
    if (type == MOLT_KEY_RSA3072)
        pkey = crypto->EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    else if (type == MOLT_KEY_ECDSA_P256)
        pkey = crypto->EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else
        pkey = crypto->EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey)
        return ssl_fail(err, MOLT_EIO, "generating the device key");
    *ret = pkey;
    return 0;
}

/* The contents of a memory BIO as a malloc'd, NUL-terminated string. */
static int bio_string(BIO *bio, char **ret, size_t *ret_len, molt_err *err)
{
    char *data;
    long n = molt_crypto()->BIO_ctrl(bio, BIO_CTRL_INFO, 0, (char *)&data);
    char *copy = malloc((size_t)n + 1);
    if (!copy)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *ret = copy;
    if (ret_len)
        *ret_len = (size_t)n;
    return 0;
}

/* PEM (PKCS#8) of pkey, or of its public half, into a malloc'd string. */
static int pem_of(EVP_PKEY *pkey, bool public_only, char **ret, size_t *ret_len, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    BIO *bio = crypto->BIO_new(crypto->BIO_s_mem());
    int r;
    if (!bio)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int ok = public_only ? crypto->PEM_write_bio_PUBKEY(bio, pkey)
                         : crypto->PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    if (ok != 1)
        r = ssl_fail(err, MOLT_EIO, public_only ? "encoding the device's public key"
                                                : "encoding the device key");
    else
        r = bio_string(bio, ret, ret_len, err);
    crypto->BIO_free(bio);
    return r;
}

static int type_of(EVP_PKEY *pkey, const char *path, molt_key_type *ret, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    switch (crypto->EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_ED25519:
        *ret = MOLT_KEY_ED25519;
        return 0;
    case EVP_PKEY_RSA:
        *ret = MOLT_KEY_RSA3072;
        return 0;
    case EVP_PKEY_EC: {
        char group[64] = "";
        size_t glen = 0;
        crypto->EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof group, &glen);
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)
            return molt_err_set(err, MOLT_EUNSUPPORTED,
                                "device key %s: EC curve %s, only P-256 is supported", path,
                                group[0] ? group : "(unknown)");
        *ret = MOLT_KEY_ECDSA_P256;
        return 0;
    }
    default:
        return molt_err_set(err, MOLT_EUNSUPPORTED,
                            "device key %s: key type %d; expected Ed25519, RSA or ECDSA P-256",
                            path, crypto->EVP_PKEY_get_base_id(pkey));
    }
}

static int load_file(const char *path, EVP_PKEY **ret, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    struct stat st;
    if (stat(path, &st) != 0)
        return molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                              "device key %s", path);
    if (st.st_mode & 077)
        return molt_err_set(err, MOLT_EINVAL,
                            "device key %s: mode %03o lets others read it; expected 0600 "
                            "(chmod 600 %s)", path, (unsigned)(st.st_mode & 0777), path);
    char *text = NULL;
    size_t len = 0;
    int r = molt_read_file(path, KEY_FILE_MAX, &text, &len, err);
    if (r < 0)
        return r;
    BIO *bio = crypto->BIO_new_mem_buf(text, (int)len);
    EVP_PKEY *pkey = bio ? crypto->PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    crypto->BIO_free(bio);
    crypto->OPENSSL_cleanse(text, len);
    free(text);
    if (!pkey) {
        char what[512];
        snprintf(what, sizeof what, "device key %s: not a PEM private key", path);
        return ssl_fail(err, MOLT_EFORMAT, what);
    }
    *ret = pkey;
    return 0;
}

static int create_file(const char *path, molt_key_type type, EVP_PKEY **ret, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    EVP_PKEY *pkey = NULL;
    char *pem = NULL, *dir = strdup(path);
    size_t len = 0;
    int r;
    if (!dir)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if ((r = molt_mkdir_p(dir, 0700, err)) < 0)
            goto out;
    }
    molt_log_info("generating a new %s device key in %s", type_name(type), path);
    if ((r = generate(type, &pkey, err)) < 0 || (r = pem_of(pkey, false, &pem, &len, err)) < 0 ||
        (r = molt_write_file_atomic(path, pem, len, 0600, err)) < 0)   /* 0600 whatever the umask */
        goto out;
    *ret = pkey;
    pkey = NULL;
out:
    if (pem) {
        crypto->OPENSSL_cleanse(pem, len);
        free(pem);
    }
    crypto->EVP_PKEY_free(pkey);
    free(dir);
    return r;
}

/* uri without its pin-value / pin-source attributes (a PIN never reaches a message). */
static void redact_uri(const char *uri, char *out, size_t size)
{
    size_t o = 0;
    char sep = 0;
    const char *p = uri;
    for (;;) {
        size_t n = strcspn(p, ";?&");
        if (strncmp(p, "pin-", 4) != 0) {
            if (sep && o + 1 < size)
                out[o++] = sep;
            size_t take = n < size - 1 - o ? n : size - 1 - o;
            memcpy(out + o, p, take);
            o += take;
        }
        if (!p[n])
            break;
        sep = p[n];
        p += n + 1;
    }
    out[o] = '\0';
}

/* A private key in a PKCS#11 token, by its RFC 7512 URI, through the "pkcs11" engine;
 * module: the PKCS#11 library (NULL = the engine's default, p11-kit's proxy). */
static int load_pkcs11(const char *uri, const char *module, EVP_PKEY **ret, ENGINE **ret_engine,
                       molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    ENGINE *e = crypto->ENGINE_by_id("pkcs11");
    int r = 0;
    if (!e)
        return ssl_fail(err, MOLT_EUNSUPPORTED, "device key in a PKCS#11 token: OpenSSL has no "
                        "\"pkcs11\" engine (Debian: libengine-pkcs11-openssl)");
    if (module && crypto->ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) != 1) {
        r = ssl_fail(err, MOLT_ECONFIG, "server.pkcs11_module: the pkcs11 engine refused it");
        crypto->ENGINE_free(e);
        return r;
    }
    if (crypto->ENGINE_init(e) != 1) {
        r = ssl_fail(err, MOLT_EIO, "starting OpenSSL's pkcs11 engine");
        crypto->ENGINE_free(e);
        return r;
    }
    crypto->ENGINE_free(e);   /* the functional reference of ENGINE_init keeps it */
    EVP_PKEY *pkey = crypto->ENGINE_load_private_key(e, uri, NULL, NULL);
    if (!pkey) {
        char what[512];
        char shown[384];
        redact_uri(uri, shown, sizeof shown);
        snprintf(what, sizeof what, "device key %s: not found in a PKCS#11 token", shown);
        r = ssl_fail(err, MOLT_ENOTFOUND, what);
        crypto->ENGINE_finish(e);
        return r;
    }
    *ret = pkey;
    *ret_engine = e;
    return 0;
}

int molt_device_key_load(molt_device_key **ret, const char *path, molt_key_type type,
                         molt_err *err)
{
    return molt_device_key_load_pkcs11(ret, path, type, NULL, err);
}

int molt_device_key_load_pkcs11(molt_device_key **ret, const char *path, molt_key_type type,
                                const char *pkcs11_module, molt_err *err)
{
    const molt_crypto_lib *crypto = molt_crypto();
    EVP_PKEY *pkey = NULL;
    ENGINE *engine = NULL;
    molt_key_type loaded;
    int r;
    if (strncmp(path, "pkcs11:", 7) == 0) {
        r = load_pkcs11(path, pkcs11_module, &pkey, &engine, err);
    } else {
        r = load_file(path, &pkey, err);
        if (r == MOLT_ENOTFOUND)
            r = create_file(path, type, &pkey, err);
    }
    if (r < 0)
        return r;
    molt_device_key *k = calloc(1, sizeof *k);
    if (!k) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto fail;
    }
    if ((r = type_of(pkey, engine ? "(PKCS#11)" : path, &loaded, err)) < 0)
        goto fail;
    k->pkey = pkey;
    k->type = loaded;
    k->engine = engine;
    *ret = k;
    return 0;
fail:
    free(k);
    crypto->EVP_PKEY_free(pkey);
    if (engine)
        crypto->ENGINE_finish(engine);
    return r;
}

void molt_device_key_free(molt_device_key *key)
{
    const molt_crypto_lib *crypto = molt_crypto();
    if (!key)
        return;
    crypto->EVP_PKEY_free(key->pkey);
    if (key->engine)
        crypto->ENGINE_finish(key->engine);
    free(key);
}

molt_key_type molt_device_key_type(const molt_device_key *key)
{
    return key->type;
}

void *molt_device_key_pkey(const molt_device_key *key)
{
    return key->pkey;
}

int molt_device_key_public_pem(const molt_device_key *key, char **ret_pem, molt_err *err)
{
    return pem_of(key->pkey, true, ret_pem, NULL, err);
}
