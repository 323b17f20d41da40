/* The libcurl functions by their own names, forwarding to the library loaded on demand
 * (curl_lib.h): code calling curl_easy_init() & co. directly (core/server) links without
 * libcurl, and libcurl is only mapped when one of them is first called. When the library
 * cannot be loaded the error is logged once and each function fails as libcurl's own would
 * (NULL handle, CURLE_FAILED_INIT, CURLM_INTERNAL_ERROR). New callers should use
 * molt_curl_get(), which returns that error. A function used without a forwarder here is an
 * undefined reference at link time, never a silent direct dependency. */
#define CURL_DISABLE_TYPECHECK   /* the definitions below would be taken for the checking macros */
#include "transport/curl_lib.h"

#include <stdarg.h>
#include <stdbool.h>
#include <pthread.h>

#include "util/log.h"

static const molt_curl_lib *shim(void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static bool logged;
    const molt_curl_lib *c = NULL;
    molt_err e = {0};
    if (molt_curl_get(&c, &e) == 0)
        return c;
    pthread_mutex_lock(&lock);
    if (!logged)
        molt_log(MOLT_LOG_ERROR, "%s", e.msg);
    logged = true;
    pthread_mutex_unlock(&lock);
    return NULL;
}

CURLcode curl_global_init(long flags)
{
    const molt_curl_lib *c = shim();
    return c ? c->global_init(flags) : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
    const molt_curl_lib *c = shim();
    if (c)
        c->global_cleanup();
}

curl_version_info_data *curl_version_info(CURLversion age)
{
    const molt_curl_lib *c = shim();
    return c ? c->version_info(age) : NULL;
}

CURL *curl_easy_init(void)
{
    const molt_curl_lib *c = shim();
    return c ? c->easy_init() : NULL;
}

CURL *curl_easy_duphandle(CURL *h)
{
    const molt_curl_lib *c = shim();
    return c ? c->easy_duphandle(h) : NULL;
}

void curl_easy_cleanup(CURL *h)
{
    const molt_curl_lib *c = shim();
    if (c)
        c->easy_cleanup(h);
}

void curl_easy_reset(CURL *h)
{
    const molt_curl_lib *c = shim();
    if (c)
        c->easy_reset(h);
}

/* The argument's type follows from the option's number (CURLOPTTYPE_* ranges of curl.h), as in
 * libcurl's own curl_easy_setopt. */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    const molt_curl_lib *c = shim();
    CURLcode rc = CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    if (!c)
        ;
    else if (opt < CURLOPTTYPE_OBJECTPOINT)
        rc = c->easy_setopt(h, opt, va_arg(ap, long));
    else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
        rc = c->easy_setopt(h, opt, va_arg(ap, void *));
    else if (opt < CURLOPTTYPE_OFF_T)
        rc = c->easy_setopt(h, opt, va_arg(ap, void (*)(void)));
    else if (opt < CURLOPTTYPE_BLOB)
        rc = c->easy_setopt(h, opt, va_arg(ap, curl_off_t));
    else
        rc = c->easy_setopt(h, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

/* Every CURLINFO_* takes one pointer. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    const molt_curl_lib *c = shim();
    va_list ap;
    va_start(ap, info);
    void *p = va_arg(ap, void *);
    va_end(ap);
    return c ? c->easy_getinfo(h, info, p) : CURLE_FAILED_INIT;
}

CURLcode curl_easy_perform(CURL *h)
{
    const molt_curl_lib *c = shim();
    return c ? c->easy_perform(h) : CURLE_FAILED_INIT;
}

CURLcode curl_easy_pause(CURL *h, int bitmask)
{
    const molt_curl_lib *c = shim();
    return c ? c->easy_pause(h, bitmask) : CURLE_FAILED_INIT;
}

const char *curl_easy_strerror(CURLcode rc)
{
    const molt_curl_lib *c = shim();
    return c ? c->easy_strerror(rc) : "libcurl cannot be loaded";
}

char *curl_easy_escape(CURL *h, const char *s, int len)
{
    const molt_curl_lib *c = shim();
    return c ? c->easy_escape(h, s, len) : NULL;
}

char *curl_easy_unescape(CURL *h, const char *s, int len, int *outlen)
{
    const molt_curl_lib *c = shim();
    return c ? c->easy_unescape(h, s, len, outlen) : NULL;
}

CURLHcode curl_easy_header(CURL *h, const char *name, size_t index, unsigned int origin,
                           int request, struct curl_header **hout)
{
    const molt_curl_lib *c = shim();
    return c ? c->easy_header(h, name, index, origin, request, hout) : CURLHE_NOT_BUILT_IN;
}

void curl_free(void *p)
{
    const molt_curl_lib *c = shim();
    if (c)
        c->free(p);
}

time_t curl_getdate(const char *s, const time_t *unused)
{
    const molt_curl_lib *c = shim();
    return c ? c->getdate(s, unused) : -1;
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
    const molt_curl_lib *c = shim();
    return c ? c->slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
    const molt_curl_lib *c = shim();
    if (c)
        c->slist_free_all(l);
}

CURLM *curl_multi_init(void)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_init() : NULL;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_add_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_remove_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_perform(CURLM *m, int *running)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_perform(m, running) : CURLM_INTERNAL_ERROR;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *queued)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_info_read(m, queued) : NULL;
}

CURLMcode curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned int n_extra,
                          int timeout_ms, int *ret_numfds)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_poll(m, extra, n_extra, timeout_ms, ret_numfds) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_wait(CURLM *m, struct curl_waitfd extra[], unsigned int n_extra,
                          int timeout_ms, int *ret_numfds)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_wait(m, extra, n_extra, timeout_ms, ret_numfds) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_wakeup(CURLM *m)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_wakeup(m) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_cleanup(m) : CURLM_INTERNAL_ERROR;
}

const char *curl_multi_strerror(CURLMcode rc)
{
    const molt_curl_lib *c = shim();
    return c ? c->multi_strerror(rc) : "libcurl cannot be loaded";
}
