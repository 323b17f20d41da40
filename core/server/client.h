/* SPDX-License-Identifier: Apache-2.0 */
/* The Mender device API (docs/reference §3): authentication, deployments next, status, logs and
 * inventory, over HTTPS with libcurl. One client talks to one server; the token it gets is
 * only ever sent to the server that issued it. Not thread-safe. */
#ifndef MOLT_SERVER_CLIENT_H
#define MOLT_SERVER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "trust/device_key.h"
#include "util/err.h"

typedef struct molt_server_opts {
    const char *url;              /* server URL, e.g. https://mender.example.com */
    const char *tenant_token;     /* NULL or "" = none (then omitted from the body, as C++) */
    const char *identity_json;    /* id_data: molt_identity_json's string */
    const molt_device_key *key;   /* borrowed; must outlive the client */
    const char *ca_file;          /* NULL = the system's store */
    const char *client_cert;      /* mTLS certificate and key (PEM), NULL = none */
    const char *client_key;
    const char *proxy;            /* NULL = libcurl's environment variables */
    int connect_timeout;          /* seconds (0 = 30) */
    int low_speed_time;           /* seconds below 1 byte/s before the request is dead (0 = 60) */
    int request_timeout;          /* whole request, seconds (0 = 300) */
} molt_server_opts;

typedef struct molt_server molt_server;

/* What deployments/next offered. */
typedef struct molt_server_deployment {
    char *id;                     /* the deployment id */
    char *uri;                    /* the presigned artifact URL (fetched without the token) */
    char *artifact_name;          /* as the server names it (may be NULL) */
    json_t *device_types;         /* "device_types_compatible": array of strings, or NULL */
} molt_server_deployment;

/* A client for opts (strings are copied). *ret freed with molt_server_free. */
int molt_server_new(molt_server **ret, const molt_server_opts *opts, molt_err *err);
void molt_server_free(molt_server *s);

/* POST auth_requests (docs/reference §3.1) unless a token is held. 0 once authenticated; MOLT_ESTATE while the
 * server answers 401 (device pending or rejected: retry later); MOLT_ENET / MOLT_ETLS for the
 * transport; MOLT_EPROTOCOL for another status. */
int molt_server_authenticate(molt_server *s, molt_err *err);
bool molt_server_authenticated(const molt_server *s);
/* How many times a token was obtained (the inventory cache is reset on a new one, as C++). */
unsigned molt_server_auth_count(const molt_server *s);

/* Forget the token (the next call authenticates again). */
void molt_server_drop_token(molt_server *s);

/* The token held (NULL when none), borrowed until the next call; and a token obtained earlier
 * from this client's server (by another process of the daemon: state/daemon.c), copied and
 * bound to the client's URL as if it had been obtained here. */
const char *molt_server_token(const molt_server *s);
int molt_server_set_token(molt_server *s, const char *token, molt_err *err);

/* deployments/next (docs/reference §3.2): v2 POST with provides (an object of strings: device_type,
 * artifact_name, ...), then v1 GET on 404. 0 with *ret_dep NULL on 204 (nothing to do), or a
 * new deployment (molt_server_deployment_free). */
int molt_server_next(molt_server *s, const json_t *provides, molt_server_deployment **ret_dep,
                     molt_err *err);
void molt_server_deployment_free(molt_server_deployment *d);

/* PUT the deployment's status (docs/reference §3.3). MOLT_ECANCELED on 409 (aborted on the server). */
int molt_server_status(molt_server *s, const char *id, const char *status, molt_err *err);

/* PUT the deployment log body (docs/reference §3.4: molt_deplog_upload_body). MOLT_ELIMIT on 413. */
int molt_server_log(molt_server *s, const char *id, const char *body, size_t len,
                    molt_err *err);

/* PUT the inventory attributes (docs/reference §3.5: molt_inventory_body's array). */
int molt_server_inventory(molt_server *s, const json_t *attributes, molt_err *err);

/* Seconds the server asked to wait (Retry-After of the last answer), or -1 if it did not. */
int molt_server_retry_after(const molt_server *s);

/* The HTTP status of the last answer (0 when there was none). */
long molt_server_last_status(const molt_server *s);

#endif
