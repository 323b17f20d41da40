/* SPDX-License-Identifier: Apache-2.0 */
/* A library loaded on demand (dlopen) into a table of its functions: what transport/curl_lib.c
 * (libcurl), util/crypto_lib.c (libcrypto) and util/compress_lib.c (liblzma, libzstd) share. */
#ifndef MOLT_UTIL_DL_LIB_H
#define MOLT_UTIL_DL_LIB_H

#include <stddef.h>
#include "util/err.h"

/* One function of the table: its name in the library, and where its address goes. */
typedef struct molt_dl_fn {
    const char *name;
    size_t offset;   /* offsetof(table type, field) */
} molt_dl_fn;

/* What the error messages say: "<need>, which cannot be loaded (<soname>): <dlerror>; install
 * <install>" and "<need>: <soname> has no function <name> (<version>)". */
typedef struct molt_dl_text {
    const char *need;      /* e.g. "HTTP needs libcurl" */
    const char *install;   /* e.g. "libcurl (Debian: libcurl4)" */
    const char *version;   /* e.g. "libcurl 7.83 or newer is needed" */
} molt_dl_text;

/* dlopen soname (RTLD_NOW | RTLD_LOCAL) and write the address of each of the n functions fns
 * names into table (a struct of function pointers) at its offset. On success *ret_handle is
 * the library's handle (never closed by the callers: the table lives until exit). Errors:
 * MOLT_EUNSUPPORTED when the library cannot be loaded or lacks a function (then it is closed
 * and table is left as it was, possibly partly written). */
int molt_dl_lib_load(const char *soname, const molt_dl_fn *fns, size_t n, void *table,
                     const molt_dl_text *text, void **ret_handle, molt_err *err);

#endif
