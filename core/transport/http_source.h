/* SPDX-License-Identifier: Apache-2.0 */
/* An artifact source downloading over HTTP(S) with libcurl, pulled by the artifact reader so
 * bytes go from the network into the parser with no temporary file. A broken connection is
 * resumed with a Range request (206 and Content-Range checked); retries back off; TLS
 * verification is always on. */
#ifndef MOLT_TRANSPORT_HTTP_SOURCE_H
#define MOLT_TRANSPORT_HTTP_SOURCE_H

#include "artifact/source.h"
#include "util/err.h"

typedef struct molt_http_opts {
    const char *ca_file;          /* NULL = system store */
    const char *proxy;            /* proxy URL (server.proxy); NULL = libcurl's environment
                                   * variables (https_proxy, no_proxy ...) */
    int retry_count;              /* resume attempts after a broken connection (default 10) */
    int retry_initial_interval;   /* seconds before the first retry (default 1), doubles */
    int retry_max_interval;       /* cap of the backoff, seconds (default 300) */
    int connect_timeout;          /* seconds (default 30) */
    int low_speed_time;           /* seconds below 1 byte/s before the connection is dead (60) */
    int retry_initial_interval_ms; /* when > 0, the first wait in milliseconds instead of
                                    * retry_initial_interval (fast tests) */
} molt_http_opts;

/* Start downloading url (http:// or https://) on a thread of the source's own, which fills a
 * 1 MiB ring that read() hands out in place (docs/transport.md); read and free the source in
 * the process that made it (in a forked child read() fails with MOLT_EINVAL). Fails early
 * (before any payload) when the server cannot be reached, TLS verification fails or the
 * status is not 200. opts may be NULL, and
 * fields left at 0 take the defaults above. The URL is copied; ca_file and proxy are only used
 * during this call. curl's policy (TLS, proxy, timeouts) is transport/curl_policy.h's; no
 * client certificate is presented (an artifact store does not ask for one). *ret is freed
 * with molt_source_free; its name is the URL with the query and user information redacted. Errors: MOLT_EINVAL (not an http(s) URL), MOLT_ETLS, MOLT_ENET.
 * See docs/transport.md for the resume and retry rules. */
int molt_http_source_new(molt_source **ret, const char *url, const molt_http_opts *opts,
                         molt_err *err);

/* A malloc'd copy of url fit for messages and logs: user info and query replaced ("***@",
 * "?<redacted>"), fragment dropped, because presigned download URLs carry their credentials
 * there. Any other string is returned unchanged. NULL when out of memory. */
char *molt_http_redact_url(const char *url);

#endif
