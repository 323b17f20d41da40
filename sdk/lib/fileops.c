/* SPDX-License-Identifier: Apache-2.0 */
/* libmolt-sdk file operations: atomic durable replace, a root-confined path join, copies with
 * progress. */
#include "sdk_internal.h"
#include "util/durable.h"
#include "util/rmtree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define COPY_BUF_SIZE (128 * 1024)

/* The helpers are the core's (util/durable.c): molt and the modules write the same way. */
int molt_sdk_write_all(int fd, const void *buf, size_t len, const char *what,
                       struct molt_sdk_error *err)
{
    molt_err e;
    return molt_write_all(fd, buf, len, &e, what) == 0 ? 0 : molt_sdk_err_from(err, &e);
}

int molt_sdk_fsync_dir(const char *dir, struct molt_sdk_error *err)
{
    molt_err e;
    return molt_fsync_dir(dir, &e) == 0 ? 0 : molt_sdk_err_from(err, &e);
}

int molt_sdk_atomic_open(const char *path, unsigned int mode, int *ret_fd, char **ret_tmp,
                         struct molt_sdk_error *err)
{
    molt_err e;
    if (!ret_fd || !ret_tmp)
        return molt_sdk_err_set(err, MOLT_EINVAL, "atomic open: no place for the result");
    return molt_atomic_open(path, (mode_t)mode, ret_fd, ret_tmp, &e) == 0
               ? 0 : molt_sdk_err_from(err, &e);
}

int molt_sdk_atomic_commit(int fd, char *tmp, const char *path, struct molt_sdk_error *err)
{
    molt_err e;
    int r = molt_atomic_commit(fd, tmp, path, &e);
    free(tmp);
    return r == 0 ? 0 : molt_sdk_err_from(err, &e);
}

void molt_sdk_atomic_abort(int fd, char *tmp)
{
    molt_atomic_abort(fd, tmp);
    free(tmp);
}

int molt_sdk_write_file_atomic(const char *path, const void *data, size_t len, unsigned int mode,
                               struct molt_sdk_error *err)
{
    molt_err e;
    return molt_write_file_atomic(path, data, len, (mode_t)mode, &e) == 0
               ? 0 : molt_sdk_err_from(err, &e);
}

int molt_sdk_rm_rf(const char *path, struct molt_sdk_error *err)
{
    molt_err e;
    if (!path || !*path)
        return molt_sdk_err_set(err, MOLT_EINVAL, "remove: no path");
    return molt_rm_rf(path, &e) == 0 ? 0 : molt_sdk_err_from(err, &e);
}

/* q is root or below it (both canonical). */
static int within(const char *q, const char *root)
{
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0)
        return 1;
    return strncmp(q, root, n) == 0 && (q[n] == '\0' || q[n] == '/');
}

int molt_sdk_path_join(const char *root, const char *rel, char **ret_path,
                       struct molt_sdk_error *err)
{
    if (!root || !*root || !rel || !ret_path)
        return molt_sdk_err_set(err, MOLT_EINVAL, "path join: root and path are required");
    if (rel[0] == '/')
        return molt_sdk_err_set(err, MOLT_EINVAL, "path \"%s\" is absolute: it must be relative "
                                "to %s", rel, root);
    char *real_root = realpath(root, NULL);
    if (!real_root)
        return molt_sdk_err_errno(err, errno, "root folder %s", root);
    size_t cap = strlen(root) + strlen(rel) + 2;
    char *out = malloc(cap), *copy = strdup(rel), *save = NULL;
    int r = 0, parts = 0, exists = 1;
    if (!out || !copy) {
        r = molt_sdk_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    strcpy(out, root);
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/')
        out[--len] = '\0';
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            r = molt_sdk_err_set(err, MOLT_EINVAL, "path \"%s\": component \"..\" could leave %s",
                                 rel, root);
            goto out;
        }
        if (len > 1 || out[0] != '/')
            out[len++] = '/';
        strcpy(out + len, c);
        len += strlen(c);
        parts++;
        struct stat st;
        if (!exists)
            continue;
        if (lstat(out, &st) < 0) {
            exists = 0;   /* nothing below a missing component exists */
            continue;
        }
        if (!S_ISLNK(st.st_mode))
            continue;
        char *target = realpath(out, NULL);
        if (!target) {
            r = molt_sdk_err_set(err, MOLT_EINVAL, "path \"%s\": %s is a symlink pointing nowhere",
                                 rel, out);
            goto out;
        }
        int inside = within(target, real_root);
        if (!inside)
            r = molt_sdk_err_set(err, MOLT_EINVAL,
                                 "path \"%s\": %s is a symlink to %s, outside %s", rel, out, target,
                                 root);
        free(target);
        if (!inside)
            goto out;
    }
    if (parts == 0) {
        r = molt_sdk_err_set(err, MOLT_EINVAL, "path \"%s\" names no file below %s", rel, root);
        goto out;
    }
    *ret_path = out;
    out = NULL;
out:
    free(out);
    free(copy);
    free(real_root);
    return r;
}

/* The payload copy's sink: on the host's hashing thread with a 1.1 host, else on the caller's. */
struct payload_sink {
    int fd;
    struct molt_sdk_error err;
};

static int payload_sink(void *ctx, const void *buf, size_t len)
{
    struct payload_sink *s = ctx;
    return molt_sdk_write_all(s->fd, buf, len, "the payload copy", &s->err);
}

int64_t molt_sdk_copy_payload(const struct molt_host_api *host, int fd, int64_t size,
                              struct molt_sdk_error *err)
{
    struct payload_sink s = {.fd = fd};
    bool sunk = MOLT_HOST_HAS(host, set_sink) && host->set_sink(host, payload_sink, &s) == 0;
    int64_t done = 0;
    for (;;) {
        const void *buf;
        int64_t n = host->read_block(host, &buf);
        if (n > 0 && !sunk && payload_sink(&s, buf, (size_t)n) < 0)
            n = s.err.code;
        if (n < 0 && s.err.code < 0) {   /* the write failed */
            if (err)
                *err = s.err;
            return s.err.code;
        }
        if (n < 0)
            return molt_sdk_err_set(err, (int)n, "reading the payload after %lld bytes failed "
                                    "(code %d)", (long long)done, (int)n);
        if (n == 0)
            return done;
        done += n;
        host->progress(host, (uint64_t)done, size > 0 ? (uint64_t)size : 0);
    }
}

int molt_sdk_copy_file(const char *src, const char *dst, unsigned int mode,
                       molt_sdk_progress_fn progress, void *ctx, struct molt_sdk_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
    char *tmp = NULL, *buf = NULL;
    struct stat st;
    if (in < 0)
        return molt_sdk_err_errno(err, errno, "cannot open %s", src);
    if (fstat(in, &st) < 0) {
        r = molt_sdk_err_errno(err, errno, "stat %s", src);
        goto out;
    }
    if (!(buf = malloc(COPY_BUF_SIZE))) {
        r = molt_sdk_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    if ((r = molt_sdk_atomic_open(dst, mode, &out, &tmp, err)) < 0)
        goto out;
    uint64_t done = 0;
    for (;;) {
        ssize_t n = read(in, buf, COPY_BUF_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = molt_sdk_err_errno(err, errno, "reading %s", src);
            break;
        }
        if (n == 0)
            break;
        if ((r = molt_sdk_write_all(out, buf, (size_t)n, dst, err)) < 0)
            break;
        done += (uint64_t)n;
        if (progress)
            progress(ctx, done, (uint64_t)st.st_size);
    }
    if (r < 0) {
        molt_sdk_atomic_abort(out, tmp);
    } else {
        r = molt_sdk_atomic_commit(out, tmp, dst, err);
    }
out:
    free(buf);
    close(in);
    return r;
}
