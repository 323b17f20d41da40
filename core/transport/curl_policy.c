/* SPDX-License-Identifier: Apache-2.0 */
/* curl's policy for every request molt makes (curl_policy.h). */
#include "transport/curl_policy.h"

int molt_curl_policy_apply(const molt_curl_lib *c, CURL *h, const molt_curl_policy *p,
                           const char *what, molt_err *err)
{
    CURLcode rc = CURLE_OK;
    const char *failed = NULL;
#define SET(opt, val) \
    do { \
        if (rc == CURLE_OK && (rc = c->easy_setopt(h, opt, val)) != CURLE_OK) \
            failed = #opt; \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (p->ca_file)
        SET(CURLOPT_CAINFO, p->ca_file);
    if (p->client_cert)
        SET(CURLOPT_SSLCERT, p->client_cert);
    if (p->client_key)
        SET(CURLOPT_SSLKEY, p->client_key);
    if (p->proxy)
        SET(CURLOPT_PROXY, p->proxy);
    SET(CURLOPT_CONNECTTIMEOUT,
        (long)(p->connect_timeout > 0 ? p->connect_timeout : MOLT_CURL_CONNECT_TIMEOUT));
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME,
        (long)(p->low_speed_time > 0 ? p->low_speed_time : MOLT_CURL_LOW_SPEED_TIME));
    if (p->request_timeout > 0)
        SET(CURLOPT_TIMEOUT, (long)p->request_timeout);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, "molt/" MOLT_VERSION);
#undef SET
    if (rc != CURLE_OK)
        return molt_err_set(err, MOLT_ENET, "%s: setting up libcurl: %s: %s", what, failed,
                            c->easy_strerror(rc));
    return 0;
}

bool molt_curl_tls_refused(CURLcode rc)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
        return true;
    default:
        return false;
    }
}
