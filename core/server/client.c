/* SPDX-License-Identifier: Apache-2.0 */
/* The Mender device API client: one libcurl handle (connections reused), JSON bodies with an
 * explicit Content-Length, the JWT bound to the server that issued it, re-authentication once
 * on a 401 (docs/reference §3). */
#include "server/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "transport/curl_lib.h"
#include "transport/curl_policy.h"
#include "trust/auth_sign.h"
#include "util/log.h"

/* Most bytes of a server answer kept (a JWT, a deployment, an error). */
#define RESPONSE_MAX (1024 * 1024)
#define TOKEN_MAX (64 * 1024)
/* The default bound of one API request, seconds (molt_server_opts.request_timeout). */
#define REQUEST_TIMEOUT 300

struct molt_server {
    const molt_curl_lib *c;    /* libcurl, loaded on first use (transport/curl_lib.h) */
    CURL *easy;
    char *url;                 /* without a trailing slash */
    char *tenant_token;
    char *identity_json;
    char *ca_file, *client_cert, *client_key, *proxy;
    const molt_device_key *key;
    molt_curl_policy policy;   /* points at the copies above */
    char *token;               /* JWT, NULL when not authenticated */
    char *token_server;        /* the server that issued it */
    unsigned auth_count;       /* tokens obtained so far */
    /* the last answer */
    long status;
    char *body;
    size_t body_len;
    bool body_over;
    int retry_after;
    char errbuf[CURL_ERROR_SIZE];
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int molt_server_new(molt_server **ret, const molt_server_opts *o, molt_err *err)
{
    if (!o->url || (strncmp(o->url, "https://", 8) != 0 && strncmp(o->url, "http://", 7) != 0))
        return molt_err_set(err, MOLT_ECONFIG, "server.url \"%s\": expected an https:// "
                            "(or http://) URL", o->url ? o->url : "");
    if (!o->identity_json || !o->key)
        return molt_err_set(err, MOLT_EINVAL, "server client: identity and key are required");
    const molt_curl_lib *c;
    int r = molt_curl_get(&c, err);
    if (r < 0)
        return r;
    molt_server *s = calloc(1, sizeof *s);
    if (!s)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    s->c = c;
    s->url = strdup(o->url);
    s->tenant_token = dup_or_null(o->tenant_token);
    s->identity_json = strdup(o->identity_json);
    s->ca_file = dup_or_null(o->ca_file);
    s->client_cert = dup_or_null(o->client_cert);
    s->client_key = dup_or_null(o->client_key);
    s->proxy = dup_or_null(o->proxy);
    s->key = o->key;
    s->policy = (molt_curl_policy){
        .ca_file = s->ca_file,
        .client_cert = s->client_cert,
        .client_key = s->client_key,
        .proxy = s->proxy,
        .connect_timeout = o->connect_timeout,
        .low_speed_time = o->low_speed_time,
        .request_timeout = o->request_timeout > 0 ? o->request_timeout : REQUEST_TIMEOUT,
    };
    s->easy = s->c->easy_init();
    s->retry_after = -1;
    if (!s->url || !s->identity_json || !s->easy || (o->tenant_token && *o->tenant_token &&
                                                     !s->tenant_token)) {
        molt_server_free(s);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    size_t n = strlen(s->url);
    while (n > 0 && s->url[n - 1] == '/')
        s->url[--n] = '\0';
    *ret = s;
    return 0;
}

void molt_server_free(molt_server *s)
{
    if (!s)
        return;
    if (s->easy)
        s->c->easy_cleanup(s->easy);
    free(s->url);
    free(s->tenant_token);
    free(s->identity_json);
    free(s->ca_file);
    free(s->client_cert);
    free(s->client_key);
    free(s->proxy);
    free(s->token);
    free(s->token_server);
    free(s->body);
    free(s);
}

bool molt_server_authenticated(const molt_server *s)
{
    return s->token != NULL;
}

unsigned molt_server_auth_count(const molt_server *s)
{
    return s->auth_count;
}

void molt_server_drop_token(molt_server *s)
{
    free(s->token);
    free(s->token_server);
    s->token = NULL;
    s->token_server = NULL;
}

const char *molt_server_token(const molt_server *s)
{
    return s->token;
}

int molt_server_set_token(molt_server *s, const char *token, molt_err *err)
{
    molt_server_drop_token(s);
    s->token = strdup(token);
    s->token_server = strdup(s->url);
    if (!s->token || !s->token_server) {
        molt_server_drop_token(s);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    return 0;
}

int molt_server_retry_after(const molt_server *s)
{
    return s->retry_after;
}

long molt_server_last_status(const molt_server *s)
{
    return s->status;
}

/* ---- one request ------------------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    molt_server *s = ctx;
    size_t len = size * n;
    if (s->body_len + len > RESPONSE_MAX) {
        s->body_over = true;
        return 0;
    }
    char *grown = realloc(s->body, s->body_len + len + 1);
    if (!grown)
        return 0;
    s->body = grown;
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
    s->body[s->body_len] = '\0';
    return len;
}

/* Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    molt_server *s = ctx;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && len < 200 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char value[200];
        memcpy(value, data + sizeof name - 1, len - (sizeof name - 1));
        value[len - (sizeof name - 1)] = '\0';
        char *v = value + strspn(value, " \t");
        v[strcspn(v, "\r\n")] = '\0';
        char *end;
        long secs = strtol(v, &end, 10);
        if (end != v && *end == '\0') {
            s->retry_after = secs < 0 ? 0 : secs > 86400 ? 86400 : (int)secs;
        } else {
            time_t when = s->c->getdate(v, NULL);
            if (when > 0) {
                long d = (long)(when - time(NULL));
                s->retry_after = d < 0 ? 0 : d > 86400 ? 86400 : (int)d;
            }
        }
    }
    return len;
}

/* The "error" of a server's JSON error answer, or the start of the body. */
static const char *server_says(molt_server *s, char *buf, size_t size)
{
    json_t *j = s->body ? json_loadb(s->body, s->body_len, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(j, "error"));
    snprintf(buf, size, "%.200s", e ? e : s->body ? s->body : "");
    json_decref(j);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return buf;
}

/* Send one request to url. auth: the Bearer token. sig: an X-MEN-Signature. 0 with s->status
 * set when an answer came (any status); MOLT_ENET / MOLT_ETLS otherwise. */
static int perform(molt_server *s, const char *method, const char *url, const char *body,
                   size_t len, const char *auth, const char *sig, molt_err *err)
{
    CURL *e = s->easy;
    struct curl_slist *h = NULL;
    char line[TOKEN_MAX + 64];
    int r = 0;
    free(s->body);
    s->body = NULL;
    s->body_len = 0;
    s->body_over = false;
    s->status = 0;
    s->retry_after = -1;
    s->errbuf[0] = '\0';
    s->c->easy_reset(e);
    h = s->c->slist_append(h, "Accept: application/json");
    if (body)
        h = s->c->slist_append(h, "Content-Type: application/json");
    if (auth) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", auth);
        h = s->c->slist_append(h, line);
    }
    if (sig) {
        snprintf(line, sizeof line, "X-MEN-Signature: %s", sig);
        h = s->c->slist_append(h, line);
    }
    h = s->c->slist_append(h, "Expect:");
    r = molt_curl_policy_apply(s->c, e, &s->policy, url, err);
    if (r < 0)
        goto out;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    do { if (rc == CURLE_OK) rc = s->c->easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_HTTPHEADER, h);
    SET(CURLOPT_CUSTOMREQUEST, method);
    SET(CURLOPT_ERRORBUFFER, s->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, s);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, s);
    if (body) {
        SET(CURLOPT_POSTFIELDS, body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    }
#undef SET
    if (rc == CURLE_OK)
        rc = s->c->easy_perform(e);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && s->body_over)) {
        bool tls = molt_curl_tls_refused(rc) || rc == CURLE_SSL_CONNECT_ERROR;
        r = molt_err_set(err, tls ? MOLT_ETLS : MOLT_ENET, "%s %s: %s", method, url,
                         s->errbuf[0] ? s->errbuf : s->c->easy_strerror(rc));
        goto out;
    }
    s->c->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &s->status);
    molt_log_debug("%s %s: %ld", method, url, s->status);
out:
    s->c->slist_free_all(h);
    return r;
}

/* ---- authentication --------------------------------------------------------------------- */

int molt_server_authenticate(molt_server *s, molt_err *err)
{
    char *pem = NULL, *body = NULL, *sig = NULL, *url = NULL, said[256];
    json_t *req = NULL;
    int r;
    if (s->token)
        return 0;
    if ((r = molt_device_key_public_pem(s->key, &pem, err)) < 0)
        goto out;
    /* Keys in alphabetical order, no spaces: the bytes the C++ client sends (docs/reference §3.1). */
    req = json_pack("{s:s, s:s}", "id_data", s->identity_json, "pubkey", pem);
    if (req && s->tenant_token)
        json_object_set_new(req, "tenant_token", json_string(s->tenant_token));
    body = req ? json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (asprintf(&url, "%s/api/devices/v1/authentication/auth_requests", s->url) < 0)
        url = NULL;
    if (!body || !url) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    if ((r = molt_auth_sign(s->key, body, strlen(body), &sig, err)) < 0 ||
        (r = perform(s, "POST", url, body, strlen(body), NULL, sig, err)) < 0)
        goto out;
    if (s->status == 401) {
        r = molt_err_set(err, MOLT_ESTATE, "authentication: the server has not accepted this "
                         "device (yet): %s", server_says(s, said, sizeof said));
        goto out;
    }
    if (s->status != 200) {
        r = molt_err_set(err, s->status >= 500 || s->status == 429 ? MOLT_ENET
                                                                   : MOLT_EPROTOCOL,
                         "authentication: HTTP %ld: %s", s->status,
                         server_says(s, said, sizeof said));
        goto out;
    }
    /* The JWT is opaque (docs/reference §3.1), but it goes into a header: printable ASCII only. */
    size_t n = s->body_len;
    while (n > 0 && (s->body[n - 1] == '\n' || s->body[n - 1] == '\r' || s->body[n - 1] == ' '))
        n--;
    bool ok = n > 0 && n < TOKEN_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = s->body[i] > 0x20 && s->body[i] < 0x7f;
    if (!ok) {
        r = molt_err_set(err, MOLT_EPROTOCOL, "authentication: the token in the answer is "
                         "empty, too long or not printable text (%zu bytes)", s->body_len);
        goto out;
    }
    molt_server_drop_token(s);
    s->token = strndup(s->body, n);
    s->token_server = strdup(s->url);
    if (!s->token || !s->token_server) {
        molt_server_drop_token(s);
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    s->auth_count++;
    molt_log_info("authenticated to %s", s->url);
out:
    json_decref(req);
    free(pem);
    free(body);
    free(sig);
    free(url);
    return r;
}

/* A device API call with the token: authenticate if needed; on a 401 drop the token,
 * authenticate once more and replay (docs/reference §3.1). 0 with s->status set on any answer. */
static int call(molt_server *s, const char *method, const char *path, const char *body,
                size_t len, molt_err *err)
{
    char *url = NULL;
    int r;
    if (asprintf(&url, "%s%s", s->url, path) < 0)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    for (int attempt = 0; attempt < 2; attempt++) {
        /* The token goes only to the server that issued it. */
        if (s->token && strcmp(s->token_server, s->url) != 0)
            molt_server_drop_token(s);
        if ((r = molt_server_authenticate(s, err)) < 0)
            break;
        if ((r = perform(s, method, url, body, len, s->token, NULL, err)) < 0)
            break;
        if (s->status != 401)
            break;
        molt_log_info("%s %s: 401, authenticating again", method, path);
        molt_server_drop_token(s);
    }
    if (r == 0 && s->status == 401)
        r = molt_err_set(err, MOLT_ESTATE, "%s %s: still 401 after authenticating again",
                         method, path);
    free(url);
    return r;
}

/* An error for an unexpected status of what. */
static int status_error(molt_server *s, const char *what, molt_err *err)
{
    char said[256];
    int code = s->status == 409 ? MOLT_ECANCELED
               : s->status == 413 ? MOLT_ELIMIT
               : s->status >= 500 || s->status == 429 ? MOLT_ENET
                                                      : MOLT_EPROTOCOL;
    return molt_err_set(err, code, "%s: HTTP %ld%s%s%s", what, s->status,
                        s->status == 409 ? " (the deployment was aborted on the server)" : "",
                        s->body_len ? ": " : "", server_says(s, said, sizeof said));
}

/* ---- deployments ------------------------------------------------------------------------ */

void molt_server_deployment_free(molt_server_deployment *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->uri);
    free(d->artifact_name);
    json_decref(d->device_types);
    free(d);
}

static int parse_deployment(molt_server *s, molt_server_deployment **ret, molt_err *err)
{
    json_error_t je;
    json_t *j = json_loadb(s->body ? s->body : "", s->body_len, 0, &je);
    const char *id = json_string_value(json_object_get(j, "id"));
    json_t *art = json_object_get(j, "artifact");
    const char *uri = json_string_value(json_object_get(json_object_get(art, "source"), "uri"));
    const char *name = json_string_value(json_object_get(art, "artifact_name"));
    int r = 0;
    if (!j || !id || !*id || !uri || !*uri) {
        r = molt_err_set(err, MOLT_EPROTOCOL, "deployments/next: the answer %s",
                         !j ? "is not JSON" : !id || !*id ? "has no \"id\""
                                            : "has no \"artifact\".\"source\".\"uri\"");
        goto out;
    }
    molt_server_deployment *d = calloc(1, sizeof *d);
    if (!d || !(d->id = strdup(id)) || !(d->uri = strdup(uri)) ||
        (name && !(d->artifact_name = strdup(name)))) {
        molt_server_deployment_free(d);
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    json_t *types = json_object_get(art, "device_types_compatible");
    if (json_is_array(types))
        d->device_types = json_incref(types);
    *ret = d;
out:
    json_decref(j);
    return r;
}

int molt_server_next(molt_server *s, const json_t *provides, molt_server_deployment **ret_dep,
                     molt_err *err)
{
    json_t *req = json_pack("{s:O}", "device_provides", (json_t *)provides);
    char *body = req ? json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *path = NULL, *name = NULL, *type = NULL;
    int r;
    json_decref(req);
    if (!body)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    r = call(s, "POST", "/api/devices/v2/deployments/device/deployments/next", body,
             strlen(body), err);
    free(body);
    if (r < 0)
        return r;
    if (s->status == 404) {
        /* The open-source server has no v2 route (docs/reference §3.2). */
        const char *an = json_string_value(json_object_get(provides, "artifact_name"));
        const char *dt = json_string_value(json_object_get(provides, "device_type"));
        name = s->c->easy_escape(s->easy, an ? an : "", 0);
        type = s->c->easy_escape(s->easy, dt ? dt : "", 0);
        if (!name || !type ||
            asprintf(&path, "/api/devices/v1/deployments/device/deployments/next?"
                            "artifact_name=%s&device_type=%s", name, type) < 0) {
            path = NULL;
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
            goto out;
        }
        if ((r = call(s, "GET", path, NULL, 0, err)) < 0)
            goto out;
    }
    if (s->status == 204) {
        *ret_dep = NULL;
    } else if (s->status == 200) {
        r = parse_deployment(s, ret_dep, err);
    } else {
        r = status_error(s, "deployments/next", err);
    }
out:
    s->c->free(name);
    s->c->free(type);
    free(path);
    return r;
}

/* PUT body to path; ok is the expected status. */
static int put(molt_server *s, const char *what, const char *path, const char *body, size_t len,
               long ok, molt_err *err)
{
    int r = call(s, "PUT", path, body, len, err);
    if (r < 0)
        return r;
    if (s->status != ok && !(ok == 204 && s->status == 200))
        return status_error(s, what, err);
    return 0;
}

int molt_server_status(molt_server *s, const char *id, const char *status, molt_err *err)
{
    char path[512], body[128], what[96];
    char *eid = s->c->easy_escape(s->easy, id, 0);
    if (!eid)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "/api/devices/v1/deployments/device/deployments/%.256s/status",
             eid);
    s->c->free(eid);
    int n = snprintf(body, sizeof body, "{\"status\":\"%s\"}", status);
    snprintf(what, sizeof what, "status %s", status);
    return put(s, what, path, body, (size_t)n, 204, err);
}

int molt_server_log(molt_server *s, const char *id, const char *body, size_t len,
                    molt_err *err)
{
    char path[512];
    char *eid = s->c->easy_escape(s->easy, id, 0);
    if (!eid)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "/api/devices/v1/deployments/device/deployments/%.256s/log",
             eid);
    s->c->free(eid);
    return put(s, "deployment log", path, body, len, 204, err);
}

int molt_server_inventory(molt_server *s, const json_t *attributes, molt_err *err)
{
    char *body = json_dumps(attributes, JSON_COMPACT);
    if (!body)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int r = put(s, "inventory", "/api/devices/v1/inventory/device/attributes", body,
                strlen(body), 200, err);
    free(body);
    return r;
}
