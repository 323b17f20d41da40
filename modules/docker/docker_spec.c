/* SPDX-License-Identifier: Apache-2.0 */
/* The docker module's container specs: the artifact's meta-data (Mender's community form with
 * image references and `docker run` arguments, or molt's form with one object per container)
 * turned into bodies of POST /containers/create. */
#include "docker.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DK_ARGS_MAX 256
#define DK_WORD_MAX 4096

/* Something is wrong with the meta-data: say what, fail with MOLT_EFORMAT. */
__attribute__((format(printf, 3, 4))) static int bad(dk_ctx *d, const char *where,
                                                     const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->host->error(d->host, "meta-data %s: %s", where, msg);
    return MOLT_EFORMAT;
}

/* The object at key in o, created when missing. */
static json_t *obj(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_object(v)) {
        v = json_object();
        json_object_set_new(o, key, v);
    }
    return v;
}

static json_t *arr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_array(v)) {
        v = json_array();
        json_object_set_new(o, key, v);
    }
    return v;
}

/* A duration in nanoseconds: a JSON number of seconds, or text "1.5", "500ms", "2s", "1m", "1h". */
static int duration_ns(const char *text, double seconds, int64_t *ret)
{
    if (text) {
        char *end = NULL;
        double v = strtod(text, &end);
        if (end == text || v < 0)
            return -1;
        if (strcmp(end, "ms") == 0)
            v /= 1000;
        else if (strcmp(end, "m") == 0)
            v *= 60;
        else if (strcmp(end, "h") == 0)
            v *= 3600;
        else if (*end && strcmp(end, "s") != 0)
            return -1;
        seconds = v;
    }
    if (seconds < 0 || seconds > 86400.0 * 365)
        return -1;
    *ret = (int64_t)llround(seconds * 1e9);
    return 0;
}

/* "[ip:]host:container[/proto]" or "container[/proto]" -> ExposedPorts and PortBindings. */
static int add_port(dk_ctx *d, json_t *body, const char *where, const char *spec)
{
    char buf[256], key[128];
    snprintf(buf, sizeof buf, "%s", spec);
    char *parts[3] = {NULL, NULL, NULL};
    int n = 0;
    for (char *save = NULL, *p = strtok_r(buf, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        if (n == 3)
            return bad(d, where, "port \"%s\" is not [ip:]host:container[/proto]", spec);
        parts[n++] = p;
    }
    if (n == 0)
        return bad(d, where, "port \"%s\" is empty", spec);
    const char *ctr = parts[n - 1];
    snprintf(key, sizeof key, "%s%s", ctr, strchr(ctr, '/') ? "" : "/tcp");
    json_object_set_new(obj(body, "ExposedPorts"), key, json_object());
    if (n >= 2) {
        json_t *binding = json_pack("{s:s,s:s}", "HostIp", n == 3 ? parts[0] : "", "HostPort",
                                    parts[n - 2]);
        json_t *list = arr(obj(obj(body, "HostConfig"), "PortBindings"), key);
        json_array_append_new(list, binding);
    }
    return 0;
}

static int set_restart(dk_ctx *d, json_t *body, const char *where, const char *policy)
{
    char name[64];
    long max = 0;
    snprintf(name, sizeof name, "%s", policy);
    char *colon = strchr(name, ':');
    if (colon) {
        *colon = '\0';
        max = strtol(colon + 1, NULL, 10);
    }
    if (strcmp(name, "no") != 0 && strcmp(name, "always") != 0 &&
        strcmp(name, "unless-stopped") != 0 && strcmp(name, "on-failure") != 0)
        return bad(d, where, "restart policy \"%s\" is not no, always, unless-stopped or on-failure[:N]", policy);
    json_object_set_new(obj(body, "HostConfig"), "RestartPolicy",
                        json_pack("{s:s,s:I}", "Name", strcmp(name, "no") == 0 ? "" : name,
                                  "MaximumRetryCount", (json_int_t)max));
    return 0;
}

static int set_health_duration(dk_ctx *d, json_t *body, const char *where, const char *field,
                               const char *text, double seconds)
{
    int64_t ns;
    if (duration_ns(text, seconds, &ns) < 0)
        return bad(d, where, "health check duration \"%s\" is not a number of seconds or like 500ms, 2s, 1m",
                   text ? text : "(number)");
    json_object_set_new(obj(body, "Healthcheck"), field, json_integer(ns));
    return 0;
}

/* Split a `docker run` argument string into words (quotes '...' and "...", backslash). */
static int split_words(const char *s, char **words, size_t cap, size_t *ret_n)
{
    size_t n = 0;
    while (*s) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        if (n == cap)
            return -1;
        char *w = malloc(DK_WORD_MAX), quote = 0;
        size_t len = 0;
        if (!w)
            return -1;
        for (; *s && (quote || !isspace((unsigned char)*s)); s++) {
            if (len + 2 >= DK_WORD_MAX) {
                free(w);
                return -1;
            }
            if (quote && *s == quote)
                quote = 0;
            else if (!quote && (*s == '\'' || *s == '"'))
                quote = *s;
            else if (*s == '\\' && quote != '\'' && s[1])
                w[len++] = *++s;
            else
                w[len++] = *s;
        }
        if (quote) {
            free(w);
            return -1;
        }
        w[len] = '\0';
        words[n++] = w;
    }
    *ret_n = n;
    return 0;
}

/* Apply `docker run` arguments (the subset docs/docker-module.md lists) to body; --name goes to
 * *name. */
static int apply_run_args(dk_ctx *d, json_t *body, const char *where, const char *args,
                          char **name)
{
    char *words[DK_ARGS_MAX];
    size_t n = 0;
    if (split_words(args, words, DK_ARGS_MAX, &n) < 0)
        return bad(d, where, "run_args \"%s\" cannot be split into words (unbalanced quotes or too long)", args);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        char *flag = words[i], *value = NULL, *eq = NULL;
        if (strncmp(flag, "--", 2) == 0 && (eq = strchr(flag, '='))) {
            *eq = '\0';
            value = eq + 1;
        }
        static const char *const with_value[] = {
            "-p", "--publish", "-e", "--env", "-v", "--volume", "--restart", "--name", "--network",
            "--net", "-l", "--label", "--health-cmd", "--health-interval", "--health-timeout",
            "--health-retries", "--health-start-period", "-w", "--workdir", "-u", "--user",
            "-h", "--hostname", "--entrypoint", NULL};
        bool takes = false;
        for (size_t k = 0; with_value[k]; k++)
            takes = takes || strcmp(flag, with_value[k]) == 0;
        if (takes && !value) {
            if (i + 1 >= n) {
                r = bad(d, where, "run_args: %s needs a value", flag);
                break;
            }
            value = words[++i];
        }
        json_t *hc = obj(body, "HostConfig");
        if (!takes) {
            if (strcmp(flag, "-d") == 0 || strcmp(flag, "--detach") == 0 || strcmp(flag, "-i") == 0 ||
                strcmp(flag, "--interactive") == 0)
                continue;   /* the engine API never attaches */
            else if (strcmp(flag, "-t") == 0 || strcmp(flag, "--tty") == 0 || strcmp(flag, "-dt") == 0 ||
                     strcmp(flag, "-it") == 0 || strcmp(flag, "-td") == 0)
                json_object_set_new(body, "Tty", json_true());
            else if (strcmp(flag, "--privileged") == 0)
                json_object_set_new(hc, "Privileged", json_true());
            else
                r = bad(d, where, "run_args: %s is not supported by the docker module (docs/docker-module.md lists what is)", flag);
        } else if (strcmp(flag, "-p") == 0 || strcmp(flag, "--publish") == 0) {
            r = add_port(d, body, where, value);
        } else if (strcmp(flag, "-e") == 0 || strcmp(flag, "--env") == 0) {
            json_array_append_new(arr(body, "Env"), json_string(value));
        } else if (strcmp(flag, "-v") == 0 || strcmp(flag, "--volume") == 0) {
            json_array_append_new(arr(hc, "Binds"), json_string(value));
        } else if (strcmp(flag, "--restart") == 0) {
            r = set_restart(d, body, where, value);
        } else if (strcmp(flag, "--name") == 0) {
            free(*name);
            *name = strdup(value);
        } else if (strcmp(flag, "--network") == 0 || strcmp(flag, "--net") == 0) {
            json_object_set_new(hc, "NetworkMode", json_string(value));
        } else if (strcmp(flag, "-l") == 0 || strcmp(flag, "--label") == 0) {
            char *e = strchr(value, '=');
            if (e)
                *e = '\0';
            json_object_set_new(obj(body, "Labels"), value, json_string(e ? e + 1 : ""));
        } else if (strcmp(flag, "--health-cmd") == 0) {
            json_object_set_new(obj(body, "Healthcheck"), "Test",
                                json_pack("[s,s]", "CMD-SHELL", value));
        } else if (strcmp(flag, "--health-interval") == 0) {
            r = set_health_duration(d, body, where, "Interval", value, 0);
        } else if (strcmp(flag, "--health-timeout") == 0) {
            r = set_health_duration(d, body, where, "Timeout", value, 0);
        } else if (strcmp(flag, "--health-start-period") == 0) {
            r = set_health_duration(d, body, where, "StartPeriod", value, 0);
        } else if (strcmp(flag, "--health-retries") == 0) {
            json_object_set_new(obj(body, "Healthcheck"), "Retries",
                                json_integer(strtol(value, NULL, 10)));
        } else if (strcmp(flag, "-w") == 0 || strcmp(flag, "--workdir") == 0) {
            json_object_set_new(body, "WorkingDir", json_string(value));
        } else if (strcmp(flag, "-u") == 0 || strcmp(flag, "--user") == 0) {
            json_object_set_new(body, "User", json_string(value));
        } else if (strcmp(flag, "-h") == 0 || strcmp(flag, "--hostname") == 0) {
            json_object_set_new(body, "Hostname", json_string(value));
        } else if (strcmp(flag, "--entrypoint") == 0) {
            json_object_set_new(body, "Entrypoint", json_pack("[s]", value));
        }
    }
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    return r;
}

/* A JSON array of strings (or one string, run by /bin/sh -c when shell) as a new array. */
static json_t *string_list(json_t *v, bool shell)
{
    if (json_is_string(v))
        return shell ? json_pack("[s,s,O]", "/bin/sh", "-c", v) : json_pack("[O]", v);
    if (!json_is_array(v))
        return NULL;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
        if (!json_is_string(item))
            return NULL;
    return json_deep_copy(v);
}

/* molt's container object -> body. */
static int apply_object(dk_ctx *d, json_t *body, const char *where, json_t *c, char **name)
{
    const char *key;
    json_t *v;
    int r = 0;
    json_object_foreach(c, key, v) {
        if (r < 0)
            break;
        json_t *hc = obj(body, "HostConfig");
        size_t i;
        json_t *item;
        if (strcmp(key, "name") == 0 || strcmp(key, "image") == 0) {
            if (!json_is_string(v))
                r = bad(d, where, "%s must be a string", key);
            else if (strcmp(key, "name") == 0) {
                free(*name);
                *name = strdup(json_string_value(v));
            }
        } else if (strcmp(key, "command") == 0 || strcmp(key, "entrypoint") == 0) {
            json_t *list = string_list(v, strcmp(key, "command") == 0);
            if (!list)
                r = bad(d, where, "%s must be a string or a list of strings", key);
            else
                json_object_set_new(body, strcmp(key, "command") == 0 ? "Cmd" : "Entrypoint", list);
        } else if (strcmp(key, "env") == 0 && json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2) {
                if (!json_is_string(v2)) {
                    r = bad(d, where, "env %s must be a string", k2);
                    break;
                }
                char *kv = NULL;
                if (asprintf(&kv, "%s=%s", k2, json_string_value(v2)) < 0)
                    return MOLT_ENOMEM;
                json_array_append_new(arr(body, "Env"), json_string(kv));
                free(kv);
            }
        } else if (strcmp(key, "env") == 0 || strcmp(key, "ports") == 0 ||
                   strcmp(key, "volumes") == 0) {
            json_t *list = string_list(v, false);
            if (!list) {
                r = bad(d, where, "%s must be a list of strings", key);
                continue;
            }
            json_array_foreach(list, i, item) {
                const char *s = json_string_value(item);
                if (strcmp(key, "env") == 0)
                    json_array_append_new(arr(body, "Env"), json_string(s));
                else if (strcmp(key, "volumes") == 0)
                    json_array_append_new(arr(hc, "Binds"), json_string(s));
                else if ((r = add_port(d, body, where, s)) < 0)
                    break;
            }
            json_decref(list);
        } else if (strcmp(key, "restart") == 0) {
            r = json_is_string(v) ? set_restart(d, body, where, json_string_value(v))
                                  : bad(d, where, "%s must be a string", key);
        } else if (strcmp(key, "network") == 0) {
            if (!json_is_string(v))
                r = bad(d, where, "%s must be a string", key);
            else
                json_object_set_new(hc, "NetworkMode", json_copy(v));
        } else if (strcmp(key, "labels") == 0 && json_is_object(v)) {
            json_object_update(obj(body, "Labels"), v);
        } else if (strcmp(key, "user") == 0 || strcmp(key, "workdir") == 0) {
            if (!json_is_string(v))
                r = bad(d, where, "%s must be a string", key);
            else
                json_object_set_new(body, key[0] == 'u' ? "User" : "WorkingDir", json_copy(v));
        } else if (strcmp(key, "run_args") == 0) {
            r = json_is_string(v) ? apply_run_args(d, body, where, json_string_value(v), name)
                                  : bad(d, where, "%s must be a string", key);
        } else if (strcmp(key, "healthcheck") == 0 && json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2) {
                if (r < 0)
                    break;
                static const char *const durations[][2] = {{"interval", "Interval"},
                                                           {"timeout", "Timeout"},
                                                           {"start_period", "StartPeriod"}};
                bool done = false;
                for (size_t k = 0; k < 3 && !done; k++)
                    if (strcmp(k2, durations[k][0]) == 0) {
                        done = true;
                        r = set_health_duration(d, body, where, durations[k][1],
                                                json_string_value(v2), json_number_value(v2));
                    }
                if (done)
                    continue;
                if (strcmp(k2, "test") == 0) {
                    json_t *t = json_is_string(v2) ? json_pack("[s,O]", "CMD-SHELL", v2)
                                                   : string_list(v2, false);
                    if (!t)
                        r = bad(d, where, "healthcheck %s must be a string or a list of strings", k2);
                    else
                        json_object_set_new(obj(body, "Healthcheck"), "Test", t);
                } else if (strcmp(k2, "retries") == 0 && json_is_integer(v2)) {
                    json_object_set_new(obj(body, "Healthcheck"), "Retries", json_copy(v2));
                } else {
                    r = bad(d, where, "healthcheck key \"%s\" is not test, interval, timeout, retries or start_period", k2);
                }
            }
        } else {
            r = bad(d, where, "key \"%s\" is not supported (docs/docker-module.md)", key);
        }
    }
    return r;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return false;
    return true;
}

void dk_app_free(dk_app *a)
{
    for (size_t i = 0; a && i < a->n; i++) {
        free(a->v[i].name);
        free(a->v[i].image);
        json_decref(a->v[i].body);
    }
    if (a) {
        free(a->v);
        free(a->app);
        memset(a, 0, sizeof *a);
    }
}

int dk_app_parse(dk_ctx *d, const char *meta_data, dk_app *ret)
{
    json_error_t je;
    json_t *m = json_loads(meta_data, JSON_DECODE_ANY, &je);
    dk_app a = {.wait = -1};
    int r = 0;
    if (!json_is_object(m)) {
        json_decref(m);
        return bad(d, "", "%s", "must be an object with \"containers\" (a list)");
    }
    json_t *app = json_object_get(m, "app"), *list = json_object_get(m, "containers");
    json_t *run_args = json_object_get(m, "run_args"), *wait = json_object_get(m, "health_timeout");
    if (app && (!json_is_string(app) || !valid_name(json_string_value(app))))
        r = bad(d, "app", "%s", "must be 1 to 64 characters of [A-Za-z0-9_.-] starting with a letter or digit");
    else if (!json_is_array(list) || json_array_size(list) == 0 ||
             json_array_size(list) > DK_CONTAINERS_MAX)
        r = bad(d, "containers", "must be a list of 1 to %d image references or container objects", DK_CONTAINERS_MAX);
    else if (run_args && !json_is_string(run_args))
        r = bad(d, "run_args", "%s", "must be a string");
    else if (wait && (!json_is_integer(wait) || json_integer_value(wait) < 1))
        r = bad(d, "health_timeout", "%s", "must be a number of seconds (> 0)");
    if (r < 0) {
        json_decref(m);
        return r;
    }
    if (wait)
        a.wait = json_integer_value(wait);
    a.app = strdup(app ? json_string_value(app) : "mender-docker");
    a.v = calloc(json_array_size(list), sizeof *a.v);
    if (!a.app || !a.v)
        r = MOLT_ENOMEM;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        if (r < 0)
            break;
        char where[64], *name = NULL;
        const char *image = NULL;
        snprintf(where, sizeof where, "containers/%zu", i);
        json_t *body = json_object();
        if (json_is_string(c)) {
            image = json_string_value(c);
            if (run_args)
                r = apply_run_args(d, body, where, json_string_value(run_args), &name);
        } else if (json_is_object(c)) {
            image = json_string_value(json_object_get(c, "image"));
            if (!image)
                r = bad(d, where, "%s", "has no \"image\"");
            else
                r = apply_object(d, body, where, c, &name);
        } else {
            r = bad(d, where, "%s", "must be an image reference or a container object");
        }
        if (r == 0 && !name && asprintf(&name, "%s-%zu", a.app, i) < 0)
            name = NULL;
        if (r == 0 && (!name || !valid_name(name)))
            r = bad(d, where, "container name \"%s\" must be 1 to 64 characters of [A-Za-z0-9_.-]",
                    name ? name : "");
        for (size_t k = 0; r == 0 && k < a.n; k++)
            if (strcmp(a.v[k].name, name) == 0)
                r = bad(d, where, "container name \"%s\" is used twice", name);
        if (r < 0) {
            free(name);
            json_decref(body);
            break;
        }
        json_object_set_new(body, "Image", json_string(image));
        json_t *labels = obj(body, "Labels");
        json_object_set_new(labels, DK_LABEL_APP, json_string(a.app));
        json_object_set_new(labels, DK_LABEL_NAME, json_string(name));
        json_object_set_new(labels, DK_LABEL_ARTIFACT,
                            json_string(d->host->artifact_name(d->host)));
        json_t *test = json_object_get(json_object_get(body, "Healthcheck"), "Test");
        a.v[a.n].health = json_is_array(test) && json_array_size(test) > 0 &&
                          strcmp(json_string_value(json_array_get(test, 0)), "NONE") != 0;
        a.v[a.n].name = name;
        a.v[a.n].image = strdup(image);
        a.v[a.n].body = body;
        a.n++;
    }
    json_decref(m);
    if (r < 0) {
        dk_app_free(&a);
        return r;
    }
    *ret = a;
    return 0;
}
