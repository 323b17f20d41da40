/* SPDX-License-Identifier: Apache-2.0 */
/* curl's policy for every request molt makes, written once: the artifact download
 * (transport/http_source.c) and the server API (server/client.c) both set it on their handles.
 * What the configuration decides: the CA file, a client certificate and key, a proxy, the
 * timeouts. What nothing can turn off: peer and host name verification, TLS 1.2 or newer,
 * http and https only, no signals. docs/transport.md ("TLS", "Proxies and timeouts"). */
#ifndef MOLT_TRANSPORT_CURL_POLICY_H
#define MOLT_TRANSPORT_CURL_POLICY_H

#include <stdbool.h>
#include "transport/curl_lib.h"
#include "util/err.h"

/* The defaults of http.connect_timeout and http.low_speed_time, in seconds. */
#define MOLT_CURL_CONNECT_TIMEOUT 30
#define MOLT_CURL_LOW_SPEED_TIME 60

typedef struct molt_curl_policy {
    const char *ca_file;       /* PEM CA certificates replacing the system store; NULL = system */
    const char *client_cert;   /* PEM client certificate (mutual TLS); NULL = none */
    const char *client_key;    /* its key; NULL = none (or in client_cert) */
    const char *proxy;         /* proxy URL for http and https; NULL = libcurl's environment
                                  variables (https_proxy, http_proxy, no_proxy ...) */
    int connect_timeout;       /* seconds; <= 0 = MOLT_CURL_CONNECT_TIMEOUT */
    int low_speed_time;        /* seconds below 1 byte/s before the transfer counts as dead;
                                  <= 0 = MOLT_CURL_LOW_SPEED_TIME */
    int request_timeout;       /* the whole transfer, seconds; <= 0 = unbounded (a download
                                  of any size is bounded by low_speed_time instead) */
} molt_curl_policy;

/* Set the policy on easy handle h (after curl_easy_init or curl_easy_reset), before the
 * caller's own options (URL, callbacks, headers): CURLOPT_NOSIGNAL, CURLOPT_PROTOCOLS_STR
 * "http,https", CURLOPT_SSL_VERIFYPEER 1, CURLOPT_SSL_VERIFYHOST 2, CURLOPT_SSLVERSION TLS 1.2,
 * CURLOPT_CAINFO, CURLOPT_SSLCERT, CURLOPT_SSLKEY and CURLOPT_PROXY when given,
 * CURLOPT_CONNECTTIMEOUT, CURLOPT_LOW_SPEED_LIMIT 1 with CURLOPT_LOW_SPEED_TIME,
 * CURLOPT_TIMEOUT when request_timeout > 0, CURLOPT_TCP_KEEPALIVE, CURLOPT_USERAGENT
 * "molt/<version>". libcurl copies the strings. Returns 0, or MOLT_ENET with
 * "<what>: setting up libcurl: <option>: <curl's reason>" (a libcurl built without one). */
int molt_curl_policy_apply(const molt_curl_lib *c, CURL *h, const molt_curl_policy *p,
                           const char *what, molt_err *err);

/* Whether rc means the peer's certificate (or the CA file, or the client certificate) was
 * refused: MOLT_ETLS for both callers, never retried. */
bool molt_curl_tls_refused(CURLcode rc);

#endif
