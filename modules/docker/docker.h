/* SPDX-License-Identifier: Apache-2.0 */
/* The docker module's internal interface: a Docker Engine API client over the engine's unix
 * socket (libcurl), and the container specs read from the artifact's meta-data. */
#ifndef MOLT_DOCKER_H
#define MOLT_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <molt/sdk.h>

#define DK_RESPONSE_MAX (4u << 20)    /* bytes of one API response we keep */
#define DK_CONTAINERS_MAX 64          /* containers in one app */
#define DK_LABEL_APP "io.molt.app"    /* which app a container belongs to */
#define DK_LABEL_NAME "io.molt.name"  /* its name as the spec gave it */
#define DK_LABEL_ARTIFACT "io.molt.artifact"

typedef struct dk_ctx {
    const struct molt_host_api *host;
    char socket[512];       /* config "socket" (default /var/run/docker.sock) */
    int64_t wait_seconds;   /* config "health_timeout": the commit gate's deadline (default 60) */
    int64_t engine_wait;    /* config "engine_timeout": how long rollback waits for the engine */
    int64_t stop_timeout;   /* config "stop_timeout": seconds for a container to stop (10) */
} dk_ctx;

/* A response: HTTP status and body (NUL-terminated, at most DK_RESPONSE_MAX). */
typedef struct dk_resp {
    long status;
    char *body;
    size_t len;
} dk_resp;

void dk_resp_free(dk_resp *r);

/* One API call: method, path (with query, already escaped), an optional JSON body. Returns 0 and
 * fills *resp (any HTTP status), or a negative code when the engine could not be reached (the
 * message, set with host->error, names the socket). timeout in seconds (0: none). */
int dk_call(dk_ctx *d, const char *method, const char *path, const char *json_body,
            long timeout, dk_resp *resp);
/* The same, failing with MOLT_EMODULE and "<what>: engine answered <status>: <message>" unless
 * the status is one of ok1/ok2 (0 to ignore). */
int dk_call_ok(dk_ctx *d, const char *what, const char *method, const char *path,
               const char *json_body, long timeout, long ok1, long ok2, dk_resp *resp);
/* The engine answers GET /_ping. */
int dk_ping(dk_ctx *d);
/* Send size bytes of the file fd (the payload file file, staged and verified: the engine loads
 * and tags images before a streamed body ends, so it never sees unverified bytes) to POST
 * /images/load; the names of the images it loaded go to *ret_loaded (malloc'd, one a line). */
int dk_load_images(dk_ctx *d, const char *file, int fd, int64_t size, char **ret_loaded);
/* The parsed JSON of GET path, or a negative code (404 -> MOLT_ENOTFOUND, no message). */
int dk_get_json(dk_ctx *d, const char *what, const char *path, json_t **ret);
/* URL-escape s into buf. */
void dk_escape(const char *s, char *buf, size_t cap);

/* A container to run: its name, image reference and the body of POST /containers/create. */
typedef struct dk_spec {
    char *name, *image;
    json_t *body;
    bool health;   /* a health check is defined (by the spec; the image's is seen at run time) */
} dk_spec;

typedef struct dk_app {
    char *app;           /* the app: meta-data "app", default "mender-docker" */
    dk_spec *v;
    size_t n;
    int64_t wait;        /* meta-data "health_timeout" overriding the configured deadline, or -1 */
} dk_app;

/* The app and its containers from the artifact's meta-data (Mender's {"containers": ["ref"],
 * "run_args": "..."} or molt's {"app": ..., "containers": [{...}]}). MOLT_EFORMAT naming the key
 * on anything malformed or unsupported. */
int dk_app_parse(dk_ctx *d, const char *meta_data, dk_app *ret);
void dk_app_free(dk_app *a);

#endif
