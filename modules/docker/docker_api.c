/* SPDX-License-Identifier: Apache-2.0 */
/* The docker module's Docker Engine API client: HTTP over the engine's unix socket with libcurl,
 * and the streamed image load (payload bytes -> POST /images/load, no temporary copy). */
#include "docker.h"

#include <errno.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

void dk_resp_free(dk_resp *r)
{
    if (r) {
        free(r->body);
        r->body = NULL;
        r->len = 0;
    }
}

void dk_escape(const char *s, char *buf, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-_.~", c)) {
            buf[n++] = (char)c;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        }
    }
    buf[n] = '\0';
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    dk_resp *r = ctx;
    size_t n = size * nmemb;
    if (r->len + n > DK_RESPONSE_MAX)
        return n;   /* keep the first DK_RESPONSE_MAX bytes, drain the rest */
    char *grown = realloc(r->body, r->len + n + 1);
    if (!grown)
        return 0;
    r->body = grown;
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* A staged payload file as curl's request body. */
typedef struct upload {
    const struct molt_host_api *host;
    int fd;
    int64_t done, size;
    int error;           /* the host's read error */
} upload;

static size_t on_read(char *buf, size_t size, size_t nitems, void *ctx)
{
    upload *u = ctx;
    size_t cap = size * nitems;
    ssize_t n;
    do
        n = read(u->fd, buf, cap);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        u->error = MOLT_EIO;
        return CURL_READFUNC_ABORT;
    }
    u->done += n;
    u->host->progress(u->host, (uint64_t)u->done, u->size > 0 ? (uint64_t)u->size : 0);
    return (size_t)n;
}

/* One request; the body comes from json_body or from up (a streamed upload). */
static int request(dk_ctx *d, const char *method, const char *path, const char *json_body,
                   upload *up, long timeout, dk_resp *resp)
{
    const struct molt_host_api *h = d->host;
    CURL *c = curl_easy_init();
    struct curl_slist *headers = NULL;
    char url[4096], errbuf[CURL_ERROR_SIZE] = "";
    dk_resp r = {0};
    if (!c)
        return MOLT_ENOMEM;
    snprintf(url, sizeof url, "http://docker%s", path);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->socket);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
    if (up) {
        headers = curl_slist_append(headers, "Content-Type: application/x-tar");
        headers = curl_slist_append(headers, "Expect:");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, up);
        if (up->size >= 0)
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->size);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (json_body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (up && up->error) {
        dk_resp_free(&r);
        h->error(h, "reading the staged payload file for POST %s failed", path);
        return up->error;
    }
    if (cc != CURLE_OK) {
        dk_resp_free(&r);
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
            cc == CURLE_GOT_NOTHING)
            h->error(h, "Docker engine unreachable at unix socket %s: %s %s: %s (is dockerd "
                        "running? setting: modules: docker: socket)",
                     d->socket, method, path, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        else
            h->error(h, "Docker engine at %s: %s %s: %s", d->socket, method, path,
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return cc == CURLE_OPERATION_TIMEDOUT ? MOLT_ETIMEOUT : MOLT_ENET;
    }
    if (!r.body && !(r.body = calloc(1, 1)))
        return MOLT_ENOMEM;
    r.status = status;
    *resp = r;
    return 0;
}

int dk_call(dk_ctx *d, const char *method, const char *path, const char *json_body,
            long timeout, dk_resp *resp)
{
    return request(d, method, path, json_body, NULL, timeout, resp);
}

/* The engine's error message of a response body ({"message": "..."}), or the body. */
static const char *message_of(const dk_resp *r, char *buf, size_t cap)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
    snprintf(buf, cap, "%s", m ? m : r->body);
    json_decref(j);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

int dk_call_ok(dk_ctx *d, const char *what, const char *method, const char *path,
               const char *json_body, long timeout, long ok1, long ok2, dk_resp *resp)
{
    dk_resp r = {0};
    char msg[600];
    int rc = dk_call(d, method, path, json_body, timeout, &r);
    if (rc < 0)
        return rc;
    if (r.status != ok1 && r.status != ok2 && !(r.status >= 200 && r.status < 300 && !ok1)) {
        d->host->error(d->host, "%s: the engine answered %ld: %s", what, r.status,
                       message_of(&r, msg, sizeof msg));
        rc = r.status == 404 ? MOLT_ENOTFOUND : MOLT_EMODULE;
        dk_resp_free(&r);
        return rc;
    }
    if (resp)
        *resp = r;
    else
        dk_resp_free(&r);
    return 0;
}

int dk_ping(dk_ctx *d)
{
    return dk_call_ok(d, "GET /_ping", "GET", "/_ping", NULL, 10, 200, 0, NULL);
}

int dk_get_json(dk_ctx *d, const char *what, const char *path, json_t **ret)
{
    dk_resp r = {0};
    char msg[600];
    int rc = dk_call(d, "GET", path, NULL, 30, &r);
    if (rc < 0)
        return rc;
    if (r.status == 404) {
        dk_resp_free(&r);
        return MOLT_ENOTFOUND;
    }
    if (r.status != 200) {
        d->host->error(d->host, "%s: the engine answered %ld: %s", what, r.status,
                       message_of(&r, msg, sizeof msg));
        dk_resp_free(&r);
        return MOLT_EMODULE;
    }
    json_error_t je;
    json_t *j = json_loads(r.body, 0, &je);
    dk_resp_free(&r);
    if (!j) {
        d->host->error(d->host, "%s: the engine's answer is not JSON: %s", what, je.text);
        return MOLT_EPROTOCOL;
    }
    *ret = j;
    return 0;
}

int dk_load_images(dk_ctx *d, const char *file, int fd, int64_t size, char **ret_loaded)
{
    const struct molt_host_api *h = d->host;
    upload up = {.host = h, .fd = fd, .size = size};
    dk_resp r = {0};
    char msg[600];
    int rc = request(d, "POST", "/images/load?quiet=1", NULL, &up, 0, &r);
    if (rc < 0)
        return rc;
    if (r.status != 200) {
        h->error(h, "payload file %s: POST /images/load: the engine answered %ld: %s", file,
                 r.status, message_of(&r, msg, sizeof msg));
        dk_resp_free(&r);
        return MOLT_EMODULE;
    }
    /* the answer is a stream of JSON objects: {"stream": "Loaded image: x\n"} or an error */
    char *loaded = calloc(1, r.len + 1);
    size_t used = 0;
    rc = loaded ? 0 : MOLT_ENOMEM;
    for (char *save = NULL, *line = rc == 0 ? strtok_r(r.body, "\r\n", &save) : NULL;
         line && rc == 0; line = strtok_r(NULL, "\r\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *err = j ? json_string_value(json_object_get(j, "error")) : NULL;
        const char *stream = j ? json_string_value(json_object_get(j, "stream")) : NULL;
        if (err) {
            h->error(h, "payload file %s: the engine could not load it: %s", file, err);
            rc = MOLT_EMODULE;
        } else if (stream) {
            const char *p = strstr(stream, "Loaded image: ");
            const char *q = strstr(stream, "Loaded image ID: ");
            const char *name = p ? p + 14 : q ? q + 17 : NULL;
            if (name) {
                size_t len = strcspn(name, "\n");
                memcpy(loaded + used, name, len);
                used += len;
                loaded[used++] = '\n';
            }
        }
        json_decref(j);
    }
    dk_resp_free(&r);
    if (rc == 0 && used == 0) {
        h->error(h, "payload file %s: the engine loaded no image from it (not `docker save` "
                    "output?)", file);
        rc = MOLT_EFORMAT;
    }
    if (rc < 0) {
        free(loaded);
        return rc;
    }
    loaded[used] = '\0';
    *ret_loaded = loaded;
    return 0;
}
