/* SPDX-License-Identifier: Apache-2.0 */
/* The file module's paths: allowed roots, destination normalization and confinement, sibling
 * names of staged content and backups, recursive removal, free space. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "file_module.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define ROOTS_MAX 64
#define COMPONENTS_MAX 256

void fm_kill_point(const fm *m, const char *point)
{
    if (m->kill_at && strcmp(m->kill_at, point) == 0) {
        molt_sdk_log_info(m->h, "test knob: killed at %s", point);
        raise(SIGKILL);
    }
}

void fm_count_bytes(fm *m, int64_t n)
{
    m->bytes += n;
    if (m->kill_bytes > 0 && m->bytes >= m->kill_bytes) {
        molt_sdk_log_info(m->h, "test knob: killed after %lld payload bytes", (long long)m->bytes);
        raise(SIGKILL);
    }
}

/* Is path (resolved) equal to or below root (resolved)? */
static int inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0)
        return path[0] == '/';
    return strncmp(root, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int fm_load_roots(fm *m, struct molt_sdk_error *err)
{
    const char *src = "modules: file: allowed_roots", *delim = ":";
    const char *list = m->h->config_get ? m->h->config_get(m->h, "allowed_roots") : NULL;
    if (list) {
        /* a YAML list arrives joined by newlines (and as allowed_roots.N): split on those only */
        if (m->h->config_get(m->h, "allowed_roots.0"))
            delim = "\n";
    } else {
        list = getenv("MOLT_FILE_ALLOWED_ROOTS");
        src = "MOLT_FILE_ALLOWED_ROOTS";
    }
    if (!list || !*list)
        return fm_err(err, MOLT_EINVAL,
                      "no allowed roots (%s is empty or unset): set `modules: file: "
                      "allowed_roots: [<folder>, ...]` in molt.yaml, or MOLT_FILE_ALLOWED_ROOTS "
                      "(folders separated by ':'); the file module writes nowhere without them",
                      src);
    char *copy = strdup(list);
    if (!copy)
        return fm_err(err, MOLT_ENOMEM, "out of memory");
    int r = 0;
    for (char *save = NULL, *tok = strtok_r(copy, delim, &save); tok;
         tok = strtok_r(NULL, delim, &save)) {
        if (tok[0] != '/') {
            r = fm_err(err, MOLT_EINVAL, "%s: allowed root '%s' is not an absolute path", src, tok);
            break;
        }
        char *rp = realpath(tok, NULL);
        if (!rp) {
            molt_sdk_log_warning(m->h, "%s: allowed root %s: %s (ignored)", src, tok,
                                 strerror(errno));
            continue;
        }
        if (m->n_roots == ROOTS_MAX) {
            free(rp);
            r = fm_err(err, MOLT_ELIMIT, "%s: more than %d allowed roots", src, ROOTS_MAX);
            break;
        }
        char **grown = realloc(m->roots, (m->n_roots + 1) * sizeof *grown);
        if (!grown) {
            free(rp);
            r = fm_err(err, MOLT_ENOMEM, "out of memory");
            break;
        }
        m->roots = grown;
        m->roots[m->n_roots++] = rp;
    }
    free(copy);
    if (r == 0 && m->n_roots == 0)
        r = fm_err(err, MOLT_EINVAL, "%s ('%s'): none of the allowed roots exists", src, list);
    return r;
}

static int root_of(const fm *m, const char *resolved)
{
    for (size_t i = 0; i < m->n_roots; i++)
        if (inside(m->roots[i], resolved))
            return 1;
    return 0;
}

int fm_resolve_dest(fm *m, const char *raw, char **ret, char **ret_made,
                    struct molt_sdk_error *err)
{
    char *made = NULL;
    const char *comp[COMPONENTS_MAX];
    size_t n = 0, len = strlen(raw);
    char *work = NULL, *parent = NULL, *rp = NULL, *out = NULL;
    int r = 0;
    if (raw[0] != '/')
        return fm_err(err, MOLT_EINVAL, "destination '%s' is not an absolute path", raw);
    if (len >= PATH_MAX || strpbrk(raw, "\n\t"))
        return fm_err(err, MOLT_EINVAL, "destination '%.200s' is too long or holds a newline or "
                      "tab", raw);
    if (!(work = strdup(raw)) || !(parent = malloc(len + 2)))
        goto nomem;
    for (char *save = NULL, *c = strtok_r(work, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            r = fm_err(err, MOLT_EINVAL, "destination '%s' has a '..' component: refused", raw);
            goto out;
        }
        if (n == COMPONENTS_MAX) {
            r = fm_err(err, MOLT_EINVAL, "destination '%s' is too deep", raw);
            goto out;
        }
        comp[n++] = c;
    }
    if (n == 0) {
        r = fm_err(err, MOLT_EINVAL, "destination '%s' is the root folder: refused", raw);
        goto out;
    }
    /* Walk down the parent: the existing part must resolve inside a root, the rest is created. */
    strcpy(parent, "/");
    for (size_t i = 0; i + 1 < n; i++) {
        struct stat st;
        if (strcmp(parent, "/") != 0)
            strcat(parent, "/");
        strcat(parent, comp[i]);
        if (stat(parent, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                r = fm_err(err, MOLT_EINVAL, "destination '%s': %s is not a folder", raw, parent);
                goto out;
            }
            continue;
        }
        free(rp);
        char *up = fm_dirname(parent);
        rp = up ? realpath(up, NULL) : NULL;
        free(up);
        if (!rp || !root_of(m, rp)) {
            r = fm_err(err, MOLT_EINVAL,
                       "destination '%s' is outside the allowed roots (%s resolves to %s)", raw,
                       parent, rp ? rp : "nothing");
            goto out;
        }
        if (mkdir(parent, 0755) != 0 && errno != EEXIST) {
            r = molt_sdk_err_errno(err, errno, "create folder %s", parent);
            goto out;
        }
        if (!made && !(made = strdup(parent)))
            goto nomem;
    }
    free(rp);
    rp = realpath(parent, NULL);
    if (!rp || !root_of(m, rp)) {
        r = fm_err(err, MOLT_EINVAL,
                   "destination '%s' is outside the allowed roots (%s resolves to %s)", raw,
                   parent, rp ? rp : "nothing");
        goto out;
    }
    if (asprintf(&out, "%s%s%s", strcmp(rp, "/") == 0 ? "" : rp, "/", comp[n - 1]) < 0) {
        out = NULL;
        goto nomem;
    }
    *ret = out;
    if (made) {
        char *up = fm_dirname(made);
        if (up)
            molt_sdk_fsync_dir(up, NULL);
        free(up);
    }
    *ret_made = made;
    made = NULL;
    goto out;
nomem:
    r = fm_err(err, MOLT_ENOMEM, "out of memory");
out:
    if (made) {   /* refused: take back the folders made */
        char *probe = malloc(strlen(parent) + 3);
        if (probe) {
            sprintf(probe, "%s/x", parent);
            fm_unmake_dirs(probe, made);
        }
        free(probe);
    }
    free(made);
    free(work);
    free(parent);
    free(rp);
    return r;
}

void fm_unmake_dirs(const char *dest, const char *made)
{
    if (!made || !*made)
        return;
    size_t n = strlen(made);
    char *dir = fm_dirname(dest);
    while (dir && strncmp(dir, made, n) == 0 && (dir[n] == '\0' || dir[n] == '/')) {
        if (rmdir(dir) != 0)
            break;
        char *up = fm_dirname(dir);
        free(dir);
        dir = up;
    }
    if (dir && strcmp(dir, "/") != 0)
        molt_sdk_fsync_dir(dir, NULL);
    free(dir);
}

char *fm_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

char *fm_sibling(const char *dest, const char *tag)
{
    const char *slash = strrchr(dest, '/');
    char *out = NULL;
    if (!slash)
        return NULL;
    if (asprintf(&out, "%.*s/.%s.molt-%s", (int)(slash - dest), dest, slash + 1, tag) < 0)
        return NULL;
    return out;
}

int fm_free_bytes(const char *path, uint64_t *ret, struct molt_sdk_error *err)
{
    struct statvfs vfs;
    if (statvfs(path, &vfs) != 0)
        return molt_sdk_err_errno(err, errno, "statvfs %s", path);
    *ret = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    return 0;
}

int fm_check_space(const char *dir, uint64_t need, const char *what, struct molt_sdk_error *err)
{
    uint64_t avail = 0;
    int r = fm_free_bytes(dir, &avail, err);
    if (r == 0 && need > avail)
        r = fm_err(err, MOLT_ESPACE,
                   "not enough space in %s for %s: %llu bytes needed (the new content; the "
                   "previous version stays in place as the backup), %llu bytes available",
                   dir, what, (unsigned long long)need, (unsigned long long)avail);
    return r;
}
