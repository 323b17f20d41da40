/* SPDX-License-Identifier: Apache-2.0 */
/* Identity and inventory scripts: run them, parse `key=value` lines, encode as Mender does. */
#include "server/attributes.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/proc.h"
#include "util/fs.h"
#include "util/strict.h"
#include "util/log.h"

#define SCRIPT_TIMEOUT_MS (60 * 1000)

int molt_attr_add(json_t *attrs, const char *key, const char *value, molt_err *err)
{
    json_t *list = json_object_get(attrs, key);
    if (!list) {
        if (json_object_size(attrs) >= MOLT_ATTR_KEYS_MAX)
            return molt_err_set(err, MOLT_ELIMIT, "more than %d attribute keys",
                                MOLT_ATTR_KEYS_MAX);
        list = json_array();
        if (!list || json_object_set_new(attrs, key, list) != 0)
            return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (strcmp(json_string_value(v), value) == 0)
            return 0;
    if (json_array_size(list) >= MOLT_ATTR_VALUES_MAX)
        return molt_err_set(err, MOLT_ELIMIT, "attribute %s: more than %d values", key,
                            MOLT_ATTR_VALUES_MAX);
    json_t *s = json_string(value);
    if (!s || json_array_append_new(list, s) != 0)
        return molt_err_set(err, MOLT_EFORMAT, "attribute %s: the value is not UTF-8 text",
                            key);
    return 0;
}

int molt_attr_parse(json_t *attrs, const char *text, size_t len, const char *source,
                    molt_err *err)
{
    size_t line_no = 0, pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        line_no++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        const char *eq = memchr(line, '=', n);
        if (!eq || eq == line)
            return molt_err_set(err, MOLT_EFORMAT, "%s: line %zu: expected key=value, got "
                                "\"%.*s\"", source, line_no, (int)(n > 80 ? 80 : n), line);
        char *key = strndup(line, (size_t)(eq - line));
        char *value = strndup(eq + 1, n - (size_t)(eq - line) - 1);
        int r = key && value ? molt_attr_add(attrs, key, value, err)
                             : molt_err_set(err, MOLT_ENOMEM, "out of memory");
        free(key);
        free(value);
        if (r < 0)
            return molt_err_prefix(err, "%s: line %zu: ", source, line_no);
    }
    return 0;
}

int molt_attr_run(json_t *attrs, const char *script, int timeout_ms, molt_err *err)
{
    const char *argv[] = {script, NULL};
    molt_proc_opts o = {
        .what = script,
        .timeout_ms = timeout_ms,
        .capture_stdout = true,
        .capture_max = MOLT_ATTR_OUTPUT_MAX,
        .stderr_level = MOLT_LOG_WARNING,
        .stderr_prefix = script,
        .stderr_log_max = 4096,
    };
    molt_proc *p = NULL;
    int status = 0;
    /* It runs as root: never when another user could have written it (strict modes). */
    int r = molt_strict_check(script, "script", err);
    if (r == 0)
        r = molt_proc_spawn(&p, argv, &o, err);
    if (r < 0)
        return r;
    if ((r = molt_proc_wait(p, &status, err)) < 0)
        goto out;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char how[64];
        r = molt_err_set(err, MOLT_EIO, "%s %s", script,
                         molt_proc_status_str(status, how, sizeof how));
        goto out;
    }
    size_t len;
    bool truncated;
    const char *out = molt_proc_output(p, &len, &truncated);
    if (truncated) {
        r = molt_err_set(err, MOLT_ELIMIT, "%s: more than %d bytes of output", script,
                         MOLT_ATTR_OUTPUT_MAX);
        goto out;
    }
    /* All or nothing: a script with a bad line adds none of its lines. */
    json_t *mine = json_object();
    if (!mine) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    r = molt_attr_parse(mine, out, len, script, err);
    const char *key;
    json_t *list, *v;
    size_t i;
    json_object_foreach(mine, key, list) {
        json_array_foreach(list, i, v) {
            if (r == 0)
                r = molt_attr_add(attrs, key, json_string_value(v), err);
        }
    }
    json_decref(mine);
out:
    molt_proc_free(p);
    return r;
}

int molt_identity_json(const char *const *scripts, size_t n, char **ret_json, molt_err *err)
{
    const char *script = NULL;
    for (size_t i = 0; i < n && !script; i++)
        if (access(scripts[i], F_OK) == 0)
            script = scripts[i];
    if (!script)
        return molt_err_set(err, MOLT_ENOTFOUND, "no identity script: none of %zu configured "
                            "(server.identity_scripts) exists%s%s", n, n ? ", first " : "",
                            n ? scripts[0] : "");
    json_t *attrs = json_object(), *id = json_object();
    int r = 0;
    if (!attrs || !id) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    if ((r = molt_attr_run(attrs, script, SCRIPT_TIMEOUT_MS, err)) < 0)
        goto out;
    if (json_object_size(attrs) == 0) {
        r = molt_err_set(err, MOLT_EFORMAT, "identity script %s printed no key=value line",
                         script);
        goto out;
    }
    const char *key;
    json_t *list;
    json_object_foreach(attrs, key, list)
        json_object_set(id, key, json_array_size(list) == 1 ? json_array_get(list, 0) : list);
    char *text = json_dumps(id, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    *ret_json = text;
out:
    json_decref(attrs);
    json_decref(id);
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool inventory_name(void *ctx, int dir_fd, const char *name)
{
    (void)ctx;
    (void)dir_fd;
    return strncmp(name, "mender-inventory-", 17) == 0 || strncmp(name, "molt-inventory-", 15) == 0;
}

int molt_inventory_collect(const char *const *dirs, size_t n, json_t **ret, molt_err *err)
{
    json_t *attrs = json_object();
    if (!attrs)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char **names = NULL;
        size_t ns = 0;
        int r = molt_dir_names(dirs[i], "inventory folder", inventory_name, NULL,
                               MOLT_ATTR_KEYS_MAX, &names, &ns, err);
        if (r == MOLT_ENOTFOUND) {   /* a missing folder has no scripts */
            molt_err_clear(err);
            continue;
        }
        if (r < 0) {
            json_decref(attrs);
            return r;
        }
        for (size_t j = 0; j < ns; j++) {
            struct stat st;
            molt_err e = {0};
            char *script = molt_path_join(dirs[i], names[j]);
            if (script && stat(script, &st) == 0 && S_ISREG(st.st_mode) &&
                access(script, X_OK) == 0 &&
                molt_attr_run(attrs, script, SCRIPT_TIMEOUT_MS, &e) < 0)
                molt_log_warning("inventory: %s (skipped)", e.msg);
            free(script);
        }
        molt_names_free(names, ns);
    }
    *ret = attrs;
    return 0;
}

json_t *molt_inventory_body(const json_t *attrs)
{
    size_t n = json_object_size(attrs), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    json_t *body = json_array();
    if (!keys || !body) {
        free(keys);
        json_decref(body);
        return NULL;
    }
    const char *key;
    json_t *list;
    json_object_foreach((json_t *)attrs, key, list)
        keys[i++] = key;
    qsort(keys, n, sizeof *keys, cmp_names);
    for (i = 0; i < n; i++) {
        list = json_object_get(attrs, keys[i]);
        json_t *value = json_array_size(list) == 1 ? json_array_get(list, 0) : list;
        json_array_append_new(body, json_pack("{s:s, s:O}", "name", keys[i], "value", value));
    }
    free(keys);
    return body;
}
