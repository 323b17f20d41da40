/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl loaded on demand: molt does not link libcurl, so a process that never talks HTTP (an
 * install from a file, `molt version`) never maps it and its ~20 dependencies. The first user
 * dlopens libcurl.so.4 once and gets a table of the functions molt uses. */
#ifndef MOLT_TRANSPORT_CURL_LIB_H
#define MOLT_TRANSPORT_CURL_LIB_H

#include <time.h>
#include <curl/curl.h>
#include "util/err.h"

/* The soname loaded, found by the dynamic loader's rules. No environment variable changes it:
 * what a root daemon maps is not for its environment to pick. */
#define MOLT_CURL_SONAME "libcurl.so.4"

/* The libcurl functions molt calls, resolved from the loaded library. Same signatures as in
 * <curl/curl.h>; easy_setopt takes the one argument of the option's type (long, pointer,
 * function pointer or curl_off_t), easy_getinfo one pointer. */
typedef struct molt_curl_lib {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    curl_version_info_data *(*version_info)(CURLversion age);
    CURL *(*easy_init)(void);
    CURL *(*easy_duphandle)(CURL *h);
    void (*easy_cleanup)(CURL *h);
    void (*easy_reset)(CURL *h);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *h);
    CURLcode (*easy_pause)(CURL *h, int bitmask);
    const char *(*easy_strerror)(CURLcode rc);
    char *(*easy_escape)(CURL *h, const char *s, int len);
    char *(*easy_unescape)(CURL *h, const char *s, int len, int *outlen);
    CURLHcode (*easy_header)(CURL *h, const char *name, size_t index, unsigned int origin,
                             int request, struct curl_header **hout);
    void (*free)(void *p);
    time_t (*getdate)(const char *s, const time_t *unused);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_perform)(CURLM *m, int *running);
    CURLMsg *(*multi_info_read)(CURLM *m, int *queued);
    CURLMcode (*multi_poll)(CURLM *m, struct curl_waitfd extra[], unsigned int n_extra,
                            int timeout_ms, int *ret_numfds);
    CURLMcode (*multi_wait)(CURLM *m, struct curl_waitfd extra[], unsigned int n_extra,
                            int timeout_ms, int *ret_numfds);
    CURLMcode (*multi_wakeup)(CURLM *m);
    CURLMcode (*multi_cleanup)(CURLM *m);
    const char *(*multi_strerror)(CURLMcode rc);
} molt_curl_lib;

/* The loaded libcurl, initialized with curl_global_init(CURL_GLOBAL_DEFAULT). The first call
 * loads it (dlopen RTLD_NOW|RTLD_LOCAL, once per process, thread-safe); later calls return the
 * same table, or the same error. Errors: MOLT_EUNSUPPORTED when the library cannot be loaded or
 * lacks a function (the message names the library and says what dlopen/dlsym said, e.g. to
 * install libcurl4), MOLT_ENET when curl_global_init fails. The table lives until exit. */
int molt_curl_get(const molt_curl_lib **ret, molt_err *err);

/* For tests (the missing-library error): load soname instead of MOLT_CURL_SONAME (NULL: that
 * again). Only the first molt_curl_get of the process reads it; call it before, from one
 * thread. The programs never call it. */
void molt_curl_set_soname(const char *soname);

#endif
