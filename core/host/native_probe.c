/* SPDX-License-Identifier: Apache-2.0 */
/* Reading what a native module file declares without loading it into molt: a forked child loads
 * and checks it (molt_native_load) and sends the declaration back as JSON through a pipe. The
 * module's libraries (the docker module's libcurl and its ~30 dependencies) are mapped only in
 * the child, so the registry scan adds nothing to molt's peak memory, and a module whose loading
 * crashes (a constructor that faults or exits) is refused instead of taking molt down. */
#include "host/native_host.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <jansson.h>

#include "util/fs.h"

/* A declaration is a few hundred bytes; more is a broken child. */
#define PROBE_MAX (256u * 1024)

/* In the child: load, check, write the answer, exit. */
static void probe_child(const char *path, int fd)
{
    molt_native *n = NULL;
    molt_err e = {0};
    json_t *o;
    if (molt_native_load(&n, path, &e) < 0) {
        o = json_pack("{s:i, s:s}", "code", e.code, "error", e.msg);
    } else {
        const struct molt_module_desc *d = molt_native_desc(n);
        json_t *types = json_array();
        for (size_t i = 0; d->payload_types[i]; i++)
            json_array_append_new(types, json_string(d->payload_types[i]));
        o = json_pack("{s:s, s:s, s:I, s:o}", "name", d->name, "version", d->version,
                      "capabilities", (json_int_t)molt_native_caps(d), "types", types);
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc = text && molt_write_all(fd, text, strlen(text), NULL, "probe") == 0 ? 0 : 1;
    _exit(rc);
}

static char *dup_string(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

/* The parent's side: the child's JSON into *ret, or its refusal into err. */
static int parse_answer(const char *path, const char *text, size_t len, molt_native_decl *ret,
                        molt_err *err)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    int r = 0;
    if (!json_is_object(o)) {
        r = molt_err_set(err, MOLT_EPROTOCOL, "module %s: loading it in a child process gave "
                         "no answer", path);
    } else if (json_object_get(o, "error")) {
        json_int_t code = json_integer_value(json_object_get(o, "code"));
        r = molt_err_set(err, code < 0 ? (int)code : MOLT_EUNSUPPORTED, "%s",
                         json_string_value(json_object_get(o, "error")));
    } else {
        json_t *types = json_object_get(o, "types");
        size_t n = json_array_size(types);
        ret->name = dup_string(o, "name");
        ret->version = dup_string(o, "version");
        ret->capabilities = (uint32_t)json_integer_value(json_object_get(o, "capabilities"));
        ret->types = calloc(n + 1, sizeof *ret->types);
        bool ok = ret->name && ret->version && ret->types && n > 0;
        for (size_t i = 0; ok && i < n; i++) {
            const char *t = json_string_value(json_array_get(types, i));
            ok = t && (ret->types[i] = strdup(t)) != NULL;
        }
        if (!ok) {
            molt_native_decl_free(ret);
            r = molt_err_set(err, MOLT_ENOMEM, "module %s: reading its declaration failed", path);
        }
    }
    json_decref(o);
    return r;
}

int molt_native_probe(const char *path, molt_native_decl *ret, molt_err *err)
{
    int p[2];
    memset(ret, 0, sizeof *ret);
    if (pipe2(p, O_CLOEXEC) < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "module %s: pipe", path);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return molt_err_errno(err, MOLT_EIO, errno, "module %s: fork", path);
    }
    if (pid == 0) {
        close(p[0]);
        probe_child(path, p[1]);
    }
    close(p[1]);
    char *buf = malloc(PROBE_MAX);
    size_t len = 0;
    while (buf && len < PROBE_MAX) {
        ssize_t n = read(p[0], buf + len, PROBE_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int r;
    if (!buf)
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
    else if (WIFSIGNALED(status))
        r = molt_err_set(err, MOLT_EUNSUPPORTED, "module %s: loading it crashed: killed by "
                         "signal %d (%s)", path, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || len == PROBE_MAX)
        r = molt_err_set(err, MOLT_EUNSUPPORTED, "module %s: loading it in a child process "
                         "failed (exit status %d): does its constructor exit?", path,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else
        r = parse_answer(path, buf, len, ret, err);
    free(buf);
    return r;
}

void molt_native_decl_free(molt_native_decl *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->version);
    for (size_t i = 0; d->types && d->types[i]; i++)
        free(d->types[i]);
    free(d->types);
    memset(d, 0, sizeof *d);
}
