/* SPDX-License-Identifier: Apache-2.0 */
/* The docker module: payload type "docker". Image tarballs in the payload stream into the Docker
 * engine (POST /images/load), registry images are pulled; ArtifactInstall replaces the app's
 * containers (label io.molt.app) and waits until the new ones run and are healthy; rollback
 * brings the previous containers back; commit removes them and their unused images.
 * See README.md and docs/docker-module.md. */
#include "docker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#define DK_KV_OLD "old"   /* the app's containers before the update: id \t name \t running \t image */
#define DK_KV_COMMITTED "committed"   /* ArtifactCommit ran: Cleanup removes the old containers */
#define DK_KV_MAX 65536
#define DK_POLL_NS 250000000L

static int64_t config_int(const struct molt_host_api *h, const char *key, int64_t def)
{
    const char *v = h->config_get(h, key);
    char *end = NULL;
    long long n = v ? strtoll(v, &end, 10) : 0;
    return v && end != v && *end == '\0' && n > 0 ? (int64_t)n : def;
}

static int init(const struct molt_host_api *host, void **ret_state)
{
    dk_ctx *d = calloc(1, sizeof *d);
    if (!d)
        return MOLT_ENOMEM;
    d->host = host;
    /* molt.yaml modules: docker: socket; MOLT_DOCKER_SOCKET for tools (the conformance kit)
     * that cannot write module settings */
    const char *sock = host->config_get(host, "socket");
    if (!sock)
        sock = getenv("MOLT_DOCKER_SOCKET");
    if (!sock || !*sock)
        sock = "/var/run/docker.sock";
    if (strlen(sock) >= sizeof d->socket) {
        host->error(host, "setting socket: \"%s\" is too long", sock);
        free(d);
        return MOLT_ECONFIG;
    }
    snprintf(d->socket, sizeof d->socket, "%s", sock);
    d->wait_seconds = config_int(host, "health_timeout", 60);
    d->engine_wait = config_int(host, "engine_timeout", 60);
    d->stop_timeout = config_int(host, "stop_timeout", 10);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(d);
        return MOLT_ENOMEM;
    }
    *ret_state = d;
    return 0;
}

static void fini(void *st)
{
    free(st);
    curl_global_cleanup();
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_poll(void)
{
    struct timespec ts = {0, DK_POLL_NS};
    nanosleep(&ts, NULL);
}

/* GET /images/<ref>/json: 0 when present, MOLT_ENOTFOUND when not. */
static int image_present(dk_ctx *d, const char *ref)
{
    char path[1200], esc[1000];
    json_t *j = NULL;
    dk_escape(ref, esc, sizeof esc);
    snprintf(path, sizeof path, "/images/%s/json", esc);
    int r = dk_get_json(d, "GET /images/<ref>/json", path, &j);
    json_decref(j);
    return r;
}

/* Pull ref from its registry (POST /images/create): errors come in the JSON stream. */
static int pull(dk_ctx *d, const char *ref)
{
    char path[2200], esc[1000], tag[200] = "latest", name[1000];
    snprintf(name, sizeof name, "%s", ref);
    char *at = strchr(name, '@'), *slash = strrchr(name, '/'), *colon = strrchr(name, ':');
    if (!at && colon && (!slash || colon > slash)) {
        snprintf(tag, sizeof tag, "%s", colon + 1);
        *colon = '\0';
    }
    dk_escape(name, esc, sizeof esc);
    snprintf(path, sizeof path, "/images/create?fromImage=%s", esc);
    if (!at) {
        dk_escape(tag, name, sizeof name);
        snprintf(path + strlen(path), sizeof path - strlen(path), "&tag=%s", name);
    }
    dk_resp resp = {0};
    int r = dk_call_ok(d, "pull", "POST", path, NULL, 0, 200, 0, &resp);
    if (r < 0)
        return r;
    for (char *save = NULL, *line = strtok_r(resp.body, "\r\n", &save); line && r == 0;
         line = strtok_r(NULL, "\r\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *err = json_string_value(json_object_get(j, "error"));
        if (err) {
            d->host->error(d->host, "pull: %s", err);
            r = MOLT_EMODULE;
        }
        json_decref(j);
    }
    dk_resp_free(&resp);
    return r;
}

/* Every image the app needs is on the engine (pulling it when allowed). */
static int ensure_images(dk_ctx *d, const dk_app *a, bool may_pull)
{
    for (size_t i = 0; i < a->n; i++) {
        int r = image_present(d, a->v[i].image);
        if (r == MOLT_ENOTFOUND && may_pull) {
            molt_sdk_log_info(d->host, "image %s is not on the engine: pulling it", a->v[i].image);
            if ((r = pull(d, a->v[i].image)) < 0) {
                d->host->error(d->host, "image %s of container %s is missing: not in the payload, "
                               "not on the engine, and pulling it failed (see the log)",
                               a->v[i].image, a->v[i].name);
                return MOLT_ENOTFOUND;
            }
            r = image_present(d, a->v[i].image);
        }
        if (r == MOLT_ENOTFOUND) {
            d->host->error(d->host, "image %s of container %s is missing on the engine at %s",
                           a->v[i].image, a->v[i].name, d->socket);
            return r;
        }
        if (r < 0)
            return r;
    }
    return 0;
}

/* Copy the current payload file to an unnamed 0600 file in tmp_dir() until its read returned 0
 * (its checksum verified): the engine loads and tags the images of a tar before the request
 * body ends, so it must never see bytes that may still turn out to be an attacker's. */
static int stage_image(dk_ctx *d, int64_t size, int *ret_fd, int64_t *ret_len)
{
    const struct molt_host_api *h = d->host;
    struct molt_sdk_error err = {0};
    int fd = open(h->tmp_dir(h), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {   /* a file system without O_TMPFILE: a named file, unlinked at once */
        char *path = NULL, *tmp = NULL;
        if (molt_sdk_path_join(h->tmp_dir(h), "image.tar", &path, &err) < 0 ||
            molt_sdk_atomic_open(path, 0600, &fd, &tmp, &err) < 0) {
            free(path);
            return molt_sdk_fail(h, &err);
        }
        unlink(tmp);
        free(tmp);
        free(path);
    }
    int64_t got = molt_sdk_copy_payload(h, fd, size, &err);
    if (got >= 0 && lseek(fd, 0, SEEK_SET) != 0)
        got = molt_sdk_err_errno(&err, errno, "rewinding the staged image file");
    if (got < 0) {
        close(fd);
        return err.code ? molt_sdk_fail(h, &err) : (int)got;
    }
    *ret_fd = fd;
    *ret_len = got;
    return 0;
}

/* Download: the payload's image tarballs into the engine once verified, then the registry
 * images. */
static int download(void *st)
{
    dk_ctx *d = st;
    const struct molt_host_api *h = d->host;
    dk_app a = {0};
    const char *name;
    int64_t size;
    int r = dk_app_parse(d, h->meta_data(h), &a);
    if (r == 0)
        r = dk_ping(d);
    while (r == 0 && (r = h->next_file(h, &name, &size)) == 1) {
        char *loaded = NULL;
        int fd = -1;
        int64_t len = 0;
        if ((r = stage_image(d, size, &fd, &len)) < 0)
            break;
        r = dk_load_images(d, name, fd, len, &loaded);
        close(fd);
        if (r == 0) {
            for (char *save = NULL, *img = strtok_r(loaded, "\n", &save); img;
                 img = strtok_r(NULL, "\n", &save))
                molt_sdk_log_info(h, "payload file %s: loaded image %s", name, img);
            free(loaded);
        }
    }
    if (r == 0)
        r = ensure_images(d, &a, strcmp(h->config_get(h, "pull") ? h->config_get(h, "pull") : "true", "false") != 0);
    dk_app_free(&a);
    return r;
}

/* GET /containers/json?all=1 of the app's label: the parsed array. */
static int app_containers(dk_ctx *d, const char *app, json_t **ret)
{
    char filter[300], esc[900], path[1000];
    snprintf(filter, sizeof filter, "{\"label\":[\"%s=%s\"]}", DK_LABEL_APP, app);
    dk_escape(filter, esc, sizeof esc);
    snprintf(path, sizeof path, "/containers/json?all=1&filters=%s", esc);
    return dk_get_json(d, "list the app's containers", path, ret);
}

/* POST /containers/<id>/<verb>[?query] accepting 204 and 304 (already so). */
static int container_op(dk_ctx *d, const char *id, const char *verb, const char *query,
                        const char *what)
{
    char path[600], msg[300];
    snprintf(path, sizeof path, "/containers/%s/%s%s", id, verb, query ? query : "");
    snprintf(msg, sizeof msg, "%s container %.12s", what, id);
    return dk_call_ok(d, msg, "POST", path, NULL, d->stop_timeout + 30, 204, 304, NULL);
}

static int container_remove(dk_ctx *d, const char *id)
{
    char path[300], msg[100];
    snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
    snprintf(msg, sizeof msg, "remove container %.12s", id);
    int r = dk_call_ok(d, msg, "DELETE", path, NULL, d->stop_timeout + 30, 204, 404, NULL);
    return r;
}

static int container_rename(dk_ctx *d, const char *id, const char *name)
{
    char q[300], esc[200];
    dk_escape(name, esc, sizeof esc);
    snprintf(q, sizeof q, "?name=%s", esc);
    return container_op(d, id, "rename", q, "rename");
}

/* One line of the old list split in place. */
typedef struct old_entry {
    char *id, *name, *running, *image;
} old_entry;

static size_t parse_old(char *text, old_entry *v, size_t cap)
{
    size_t n = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && n < cap;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[4] = {line, NULL, NULL, NULL};
        for (int k = 1; k < 4; k++) {
            char *tab = f[k - 1] ? strchr(f[k - 1], '\t') : NULL;
            if (tab) {
                *tab = '\0';
                f[k] = tab + 1;
            }
        }
        if (!f[3])
            continue;
        v[n++] = (old_entry){f[0], f[1], f[2], f[3]};
    }
    return n;
}

/* The old list from the kv store: MOLT_ENOTFOUND when install never recorded it. */
static int old_load(dk_ctx *d, char **text, old_entry *v, size_t *n)
{
    char *buf = malloc(DK_KV_MAX + 1);
    size_t len = 0;
    if (!buf)
        return MOLT_ENOMEM;
    int r = d->host->kv_get(d->host, DK_KV_OLD, buf, DK_KV_MAX, &len);
    if (r < 0) {
        free(buf);
        return r;
    }
    buf[len] = '\0';
    *n = parse_old(buf, v, DK_CONTAINERS_MAX * 4);
    *text = buf;
    return 0;
}

/* Record the app's containers as they are now (once per deployment). */
static int record_old(dk_ctx *d, const char *app)
{
    char flag[1];
    size_t len;
    int r = d->host->kv_get(d->host, DK_KV_OLD, flag, 0, &len);
    if (r == 0 || r == MOLT_ELIMIT)
        return 0;   /* recorded already */
    json_t *list = NULL;
    if ((r = app_containers(d, app, &list)) < 0)
        return r;
    char *text = calloc(1, DK_KV_MAX);
    size_t used = 0, i;
    json_t *c;
    r = text ? 0 : MOLT_ENOMEM;
    json_array_foreach(list, i, c) {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
        const char *state = json_string_value(json_object_get(c, "State"));
        const char *image = json_string_value(json_object_get(c, "ImageID"));
        if (!id || !name || !state || !image || r < 0)
            continue;
        if (used + strlen(id) + strlen(name) + strlen(image) + 8 > DK_KV_MAX) {
            d->host->error(d->host, "app %s has too many containers to record", app);
            r = MOLT_ELIMIT;
            break;
        }
        used += (size_t)snprintf(text + used, DK_KV_MAX - used, "%s\t%s\t%d\t%s\n", id,
                                 name + (name[0] == '/'), strcmp(state, "running") == 0, image);
        molt_sdk_log_info(d->host, "previous container %s (%.12s, %s)", name + (name[0] == '/'),
                          id, state);
    }
    if (r == 0)
        r = d->host->kv_set(d->host, DK_KV_OLD, text, used);
    free(text);
    json_decref(list);
    return r;
}

/* Wait until each container of ids runs (and, with a health check, is healthy). */
static int wait_running(dk_ctx *d, char **ids, const char **names, size_t n, int64_t deadline_s,
                        bool need_health)
{
    const struct molt_host_api *h = d->host;
    double start = now_s(), *since = calloc(n ? n : 1, sizeof *since);
    size_t done = 0;
    bool *ok = calloc(n ? n : 1, sizeof *ok);
    int r = since && ok ? 0 : MOLT_ENOMEM;
    molt_sdk_log_info(h, "waiting up to %lld s for %zu container(s) to run%s",
                      (long long)deadline_s, n, need_health ? " and be healthy" : "");
    while (r == 0 && done < n) {
        for (size_t i = 0; i < n && r == 0; i++) {
            if (ok[i])
                continue;
            char path[300];
            json_t *j = NULL;
            snprintf(path, sizeof path, "/containers/%s/json", ids[i]);
            if ((r = dk_get_json(d, "inspect container", path, &j)) == MOLT_ENOTFOUND) {
                h->error(h, "container %s (%.12s) disappeared", names[i], ids[i]);
                break;
            }
            if (r < 0)
                break;
            json_t *state = json_object_get(j, "State");
            const char *status = json_string_value(json_object_get(state, "Status"));
            json_t *health = json_object_get(state, "Health");
            const char *hs = json_string_value(json_object_get(health, "Status"));
            long long code = json_integer_value(json_object_get(state, "ExitCode"));
            const char *error = json_string_value(json_object_get(state, "Error"));
            if (!status)
                status = "?";
            if (strcmp(status, "exited") == 0 || strcmp(status, "dead") == 0) {
                h->error(h, "container %s (%.12s) exited with code %lld%s%s", names[i], ids[i],
                         code, error && *error ? ": " : "", error ? error : "");
                r = MOLT_EMODULE;
            } else if (strcmp(status, "restarting") == 0) {
                h->error(h, "container %s (%.12s) exited with code %lld and is restarting",
                         names[i], ids[i], code);
                r = MOLT_EMODULE;
            } else if (strcmp(status, "running") == 0) {
                if (need_health && hs && strcmp(hs, "unhealthy") == 0) {
                    json_t *log = json_object_get(health, "Log");
                    json_t *last = json_array_get(log, json_array_size(log) - 1);
                    const char *out = json_string_value(json_object_get(last, "Output"));
                    h->error(h, "container %s (%.12s) is unhealthy: its health check failed "
                                "(exit %lld)%s%.300s", names[i], ids[i],
                             json_integer_value(json_object_get(last, "ExitCode")),
                             out && *out ? ": " : "", out ? out : "");
                    r = MOLT_EMODULE;
                } else if (!need_health || !hs || strcmp(hs, "healthy") == 0) {
                    /* without a health check: still running a second later */
                    if (since[i] == 0)
                        since[i] = now_s();
                    if (hs || now_s() - since[i] >= 1.0) {
                        ok[i] = true;
                        done++;
                        molt_sdk_log_info(h, "container %s (%.12s) is running%s", names[i],
                                          ids[i], hs ? " and healthy" : "");
                    }
                }
            }
            json_decref(j);
        }
        if (r == 0 && done < n) {
            if (now_s() - start > (double)deadline_s) {
                for (size_t i = 0; i < n; i++)
                    if (!ok[i]) {
                        h->error(h, "container %s (%.12s) is not running%s after %lld s",
                                 names[i], ids[i], need_health ? " and healthy" : "",
                                 (long long)deadline_s);
                        break;
                    }
                r = MOLT_ETIMEOUT;
                break;
            }
            pause_poll();
        }
    }
    free(since);
    free(ok);
    return r;
}

/* ArtifactInstall: record and stop the app's containers, create and start the new ones, then
 * the commit gate: they run (and are healthy) within the deadline, or the install fails and
 * molt rolls back. */
static int artifact_install(void *st)
{
    dk_ctx *d = st;
    const struct molt_host_api *h = d->host;
    dk_app a = {0};
    char *oldtext = NULL;
    old_entry old[DK_CONTAINERS_MAX * 4];
    size_t n_old = 0;
    char *ids[DK_CONTAINERS_MAX] = {NULL};
    const char *names[DK_CONTAINERS_MAX];
    int r = dk_app_parse(d, h->meta_data(h), &a);
    if (r == 0)
        r = dk_ping(d);
    if (r == 0)
        r = ensure_images(d, &a, false);
    if (r == 0)
        r = record_old(d, a.app);
    if (r == 0)
        r = old_load(d, &oldtext, old, &n_old);
    /* the previous containers: stopped, and renamed out of the way of the new names */
    for (size_t i = 0; r == 0 && i < n_old; i++) {
        char aside[300], stop[40];
        snprintf(stop, sizeof stop, "?t=%lld", (long long)d->stop_timeout);
        snprintf(aside, sizeof aside, "%s-molt-old-%.12s", old[i].name, old[i].id);
        if ((r = container_op(d, old[i].id, "stop", stop, "stop")) == 0 &&
            (r = container_rename(d, old[i].id, aside)) == 0)
            molt_sdk_log_info(h, "stopped previous container %s, now named %s", old[i].name, aside);
    }
    for (size_t i = 0; r == 0 && i < a.n; i++) {
        char path[300], esc[200], what[300];
        dk_resp resp = {0};
        char *body = json_dumps(a.v[i].body, JSON_COMPACT);
        dk_escape(a.v[i].name, esc, sizeof esc);
        snprintf(path, sizeof path, "/containers/create?name=%s", esc);
        snprintf(what, sizeof what, "create container %s (image %s)", a.v[i].name, a.v[i].image);
        r = body ? dk_call_ok(d, what, "POST", path, body, 60, 201, 0, &resp) : MOLT_ENOMEM;
        free(body);
        if (r < 0)
            break;
        json_t *j = json_loads(resp.body, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "Id"));
        ids[i] = id ? strdup(id) : NULL;
        names[i] = a.v[i].name;
        json_decref(j);
        dk_resp_free(&resp);
        if (!ids[i]) {
            h->error(h, "%s: no Id in the engine's answer", what);
            r = MOLT_EPROTOCOL;
            break;
        }
        if ((r = container_op(d, ids[i], "start", NULL, "start")) < 0)
            break;
        molt_sdk_log_info(h, "started container %s (%.12s, image %s)", a.v[i].name, ids[i],
                          a.v[i].image);
    }
    if (r == 0)
        r = wait_running(d, ids, names, a.n, a.wait > 0 ? a.wait : d->wait_seconds, true);
    for (size_t i = 0; i < a.n; i++)
        free(ids[i]);
    free(oldtext);
    dk_app_free(&a);
    return r;
}

/* Wait until the engine answers (it may be restarting), up to engine_timeout seconds. */
static int wait_engine(dk_ctx *d)
{
    double start = now_s();
    int r;
    while ((r = dk_ping(d)) < 0 && now_s() - start < (double)d->engine_wait) {
        if (now_s() - start < 0.3)
            molt_sdk_log_warning(d->host, "the Docker engine at %s does not answer: waiting up "
                                 "to %lld s for it", d->socket, (long long)d->engine_wait);
        sleep(1);
    }
    return r;
}

static bool is_old(const old_entry *old, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(old[i].id, id) == 0)
            return true;
    return false;
}

/* ArtifactRollback: remove the app's new containers, give the previous ones back their names and
 * start those that ran. Idempotent. */
static int artifact_rollback(void *st)
{
    dk_ctx *d = st;
    const struct molt_host_api *h = d->host;
    dk_app a = {0};
    char *oldtext = NULL;
    old_entry old[DK_CONTAINERS_MAX * 4];
    size_t n_old = 0, n_run = 0, i;
    char *ids[DK_CONTAINERS_MAX * 4];
    const char *names[DK_CONTAINERS_MAX * 4];
    json_t *list = NULL, *c;
    int r = h->kv_delete(h, DK_KV_COMMITTED);   /* a commit cut short: undone */
    if (r == 0)
        r = old_load(d, &oldtext, old, &n_old);
    if (r == MOLT_ENOTFOUND) {
        molt_sdk_log_info(h, "no previous containers recorded: install changed nothing");
        return 0;
    }
    if (r == 0)
        r = dk_app_parse(d, h->meta_data(h), &a);
    if (r == 0)
        r = wait_engine(d);
    if (r == 0)
        r = app_containers(d, a.app, &list);
    json_array_foreach(list, i, c) {
        const char *id = json_string_value(json_object_get(c, "Id"));
        if (r < 0 || !id || is_old(old, n_old, id))
            continue;
        if ((r = container_remove(d, id)) == 0)
            molt_sdk_log_info(h, "removed new container %.12s", id);
    }
    json_decref(list);
    for (i = 0; r == 0 && i < n_old; i++) {
        char path[300];
        json_t *j = NULL;
        snprintf(path, sizeof path, "/containers/%s/json", old[i].id);
        if ((r = dk_get_json(d, "inspect previous container", path, &j)) == MOLT_ENOTFOUND) {
            h->error(h, "previous container %s (%.12s) no longer exists: cannot restore it",
                     old[i].name, old[i].id);
            break;
        }
        const char *now = r == 0 ? json_string_value(json_object_get(j, "Name")) : NULL;
        if (r == 0 && now && strcmp(now + (now[0] == '/'), old[i].name) != 0)
            r = container_rename(d, old[i].id, old[i].name);
        json_decref(j);
        if (r == 0 && strcmp(old[i].running, "1") == 0) {
            if ((r = container_op(d, old[i].id, "start", NULL, "start previous")) == 0) {
                ids[n_run] = old[i].id;
                names[n_run++] = old[i].name;
            }
        }
    }
    if (r == 0)
        r = wait_running(d, ids, names, n_run, d->wait_seconds, false);
    if (r == 0)
        molt_sdk_log_info(h, "rollback complete: app %s runs its %zu previous container(s)", a.app,
                          n_run);
    /* The engine is down (it did not answer within engine_timeout, or stopped answering): the
     * rollback cannot run yet. MOLT_ETEMP keeps the deployment pending and the record of the
     * previous containers with it; molt retries once the engine may be back. */
    if (r < 0 && r != MOLT_ENOMEM && dk_ping(d) < 0) {
        h->error(h, "the Docker engine at %s does not answer: the rollback cannot run yet "
                    "(the previous containers stay recorded)", d->socket);
        r = MOLT_ETEMP;
    }
    free(oldtext);
    dk_app_free(&a);
    return r;
}

/* Remove image id when no container uses it: its tags first, then the image itself. */
static int remove_unused_image(dk_ctx *d, const char *id)
{
    char filter[200], esc[600], path[800];
    json_t *users = NULL, *img = NULL;
    snprintf(filter, sizeof filter, "{\"ancestor\":[\"%s\"]}", id);
    dk_escape(filter, esc, sizeof esc);
    snprintf(path, sizeof path, "/containers/json?all=1&filters=%s", esc);
    int r = dk_get_json(d, "list the containers of an image", path, &users);
    if (r == MOLT_ENOTFOUND)
        return 0;
    if (r < 0)
        return r;
    size_t in_use = json_array_size(users);
    json_decref(users);
    if (in_use > 0) {
        molt_sdk_log_info(d->host, "image %.19s is still used by %zu container(s): kept", id, in_use);
        return 0;
    }
    snprintf(path, sizeof path, "/images/%s/json", id);
    if ((r = dk_get_json(d, "inspect image", path, &img)) < 0)
        return r == MOLT_ENOTFOUND ? 0 : r;
    size_t i;
    json_t *tag;
    json_array_foreach(json_object_get(img, "RepoTags"), i, tag) {
        char e2[600];
        dk_escape(json_string_value(tag), e2, sizeof e2);
        snprintf(path, sizeof path, "/images/%s", e2);
        if ((r = dk_call_ok(d, "remove image", "DELETE", path, NULL, 60, 200, 404, NULL)) < 0)
            break;
        molt_sdk_log_info(d->host, "removed image %s", json_string_value(tag));
    }
    json_decref(img);
    snprintf(path, sizeof path, "/images/%s", id);
    if (r == 0)
        r = dk_call_ok(d, "remove image", "DELETE", path, NULL, 60, 200, 404, NULL);
    return r;
}

/* After a commit (in Cleanup): the previous containers and the images nothing else uses go.
 * Idempotent. */
static int drop_old(dk_ctx *d)
{
    char *oldtext = NULL;
    old_entry old[DK_CONTAINERS_MAX * 4];
    size_t n_old = 0;
    int r = old_load(d, &oldtext, old, &n_old);
    if (r == MOLT_ENOTFOUND)
        return 0;
    if (r == 0)
        r = dk_ping(d);
    for (size_t i = 0; r == 0 && i < n_old; i++)
        if ((r = container_remove(d, old[i].id)) == 0)
            molt_sdk_log_info(d->host, "removed previous container %s (%.12s)", old[i].name,
                              old[i].id);
    for (size_t i = 0; r == 0 && i < n_old; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen = seen || strcmp(old[k].image, old[i].image) == 0;
        if (!seen)
            r = remove_unused_image(d, old[i].image);
    }
    free(oldtext);
    if (r == 0)
        r = d->host->kv_delete(d->host, DK_KV_OLD);
    return r;
}

/* Cleanup: the deployment is over; forget the previous containers. */
/* ArtifactCommit: records the commit. The previous containers are removed by Cleanup, not here:
 * a power cut during ArtifactCommit sends molt down the rollback path (module.h), which needs
 * them. */
static int artifact_commit(void *st)
{
    dk_ctx *d = st;
    return d->host->kv_set(d->host, DK_KV_COMMITTED, "1", 1);
}

static int cleanup(void *st)
{
    dk_ctx *d = st;
    char flag[4];
    size_t len;
    int r = 0;
    if (d->host->kv_get(d->host, DK_KV_COMMITTED, flag, sizeof flag, &len) == 0 &&
        (r = drop_old(d)) == 0)
        r = d->host->kv_delete(d->host, DK_KV_COMMITTED);
    return r < 0 ? r : d->host->kv_delete(d->host, DK_KV_OLD);
}

static int needs_artifact_reboot(void *st)
{
    (void)st;
    return MOLT_MODULE_REBOOT_NO;
}

static const char *const types[] = {"docker", NULL};

static const struct molt_module_desc desc = {
    MOLT_MODULE_V1_MINOR(1),   /* fills no descriptor field of 1.2: loads in 1.1 hosts too */
    .name = "docker",
    .version = "1.0.0",
    .payload_types = types,
    .capabilities = MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK,
    .init = init,
    .fini = fini,
    .download = download,
    .artifact_install = artifact_install,
    .needs_artifact_reboot = needs_artifact_reboot,
    .artifact_commit = artifact_commit,
    .artifact_rollback = artifact_rollback,
    .cleanup = cleanup,
};

const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
