/* SPDX-License-Identifier: Apache-2.0 */
/* libcrypto loaded on demand (crypto_lib.h): dlopen once, resolve the table. */
#include "util/crypto_lib.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/dl_lib.h"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static molt_crypto_lib lib;
static molt_err load_err;   /* code 0 once loaded */
static const char *load_soname = MOLT_CRYPTO_SONAME;

#define MOLT_CRYPTO_ROW(name) { #name, offsetof(molt_crypto_lib, name) },
static const molt_dl_fn functions[] = { MOLT_CRYPTO_FUNCTIONS(MOLT_CRYPTO_ROW) };
#undef MOLT_CRYPTO_ROW

static void load(void)
{
    static const molt_dl_text text = {
        .need = "molt needs libcrypto",
        .install = "OpenSSL 3's libcrypto (Debian: libssl3)",
        .version = "OpenSSL 3 is needed",
    };
    molt_crypto_lib t;
    void *dl = NULL;
    if (molt_dl_lib_load(load_soname, functions, sizeof functions / sizeof functions[0], &t,
                         &text, &dl, &load_err) == 0)
        lib = t;
}

int molt_crypto_get(const molt_crypto_lib **ret, molt_err *err)
{
    pthread_once(&load_once, load);
    if (load_err.code) {
        if (err)
            *err = load_err;
        return load_err.code;
    }
    *ret = &lib;
    return 0;
}

const molt_crypto_lib *molt_crypto(void)
{
    const molt_crypto_lib *c = NULL;
    molt_err e = {0};
    if (molt_crypto_get(&c, &e) < 0) {
        fprintf(stderr, "molt: %s\n", e.msg);
        exit(127);
    }
    return c;
}

void molt_crypto_set_soname(const char *soname)
{
    load_soname = soname ? soname : MOLT_CRYPTO_SONAME;
}
