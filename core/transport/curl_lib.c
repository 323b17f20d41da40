/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl loaded on demand (curl_lib.h): dlopen once, resolve the table, curl_global_init. */
#include "transport/curl_lib.h"

#include <pthread.h>
#include <stddef.h>

#include "util/dl_lib.h"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static molt_curl_lib lib;
static molt_err load_err;   /* code 0 once loaded */
static const char *load_soname = MOLT_CURL_SONAME;

/* One row per function: its name in libcurl and where the pointer goes in the table. */
#define FN(field, name) { name, offsetof(molt_curl_lib, field) }
static const molt_dl_fn functions[] = {
    FN(global_init, "curl_global_init"),
    FN(global_cleanup, "curl_global_cleanup"),
    FN(version_info, "curl_version_info"),
    FN(easy_init, "curl_easy_init"),
    FN(easy_duphandle, "curl_easy_duphandle"),
    FN(easy_cleanup, "curl_easy_cleanup"),
    FN(easy_reset, "curl_easy_reset"),
    FN(easy_setopt, "curl_easy_setopt"),
    FN(easy_getinfo, "curl_easy_getinfo"),
    FN(easy_perform, "curl_easy_perform"),
    FN(easy_pause, "curl_easy_pause"),
    FN(easy_strerror, "curl_easy_strerror"),
    FN(easy_escape, "curl_easy_escape"),
    FN(easy_unescape, "curl_easy_unescape"),
    FN(easy_header, "curl_easy_header"),
    FN(free, "curl_free"),
    FN(getdate, "curl_getdate"),
    FN(slist_append, "curl_slist_append"),
    FN(slist_free_all, "curl_slist_free_all"),
    FN(multi_init, "curl_multi_init"),
    FN(multi_add_handle, "curl_multi_add_handle"),
    FN(multi_remove_handle, "curl_multi_remove_handle"),
    FN(multi_perform, "curl_multi_perform"),
    FN(multi_info_read, "curl_multi_info_read"),
    FN(multi_poll, "curl_multi_poll"),
    FN(multi_wait, "curl_multi_wait"),
    FN(multi_wakeup, "curl_multi_wakeup"),
    FN(multi_cleanup, "curl_multi_cleanup"),
    FN(multi_strerror, "curl_multi_strerror"),
};
#undef FN

static void load(void)
{
    const char *soname = load_soname;
    static const molt_dl_text text = {
        .need = "HTTP needs libcurl",
        .install = "libcurl (Debian: libcurl4)",
        .version = "libcurl 7.83 or newer is needed",
    };
    molt_curl_lib t;
    void *dl = NULL;
    if (molt_dl_lib_load(soname, functions, sizeof functions / sizeof functions[0], &t, &text,
                         &dl, &load_err) < 0)
        return;
    CURLcode rc = t.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        molt_err_set(&load_err, MOLT_ENET, "curl_global_init (%s): %s", soname,
                     t.easy_strerror(rc));
        return;   /* the library stays loaded: curl may have started threads or handlers */
    }
    lib = t;
}

int molt_curl_get(const molt_curl_lib **ret, molt_err *err)
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

void molt_curl_set_soname(const char *soname)
{
    load_soname = soname ? soname : MOLT_CURL_SONAME;
}
