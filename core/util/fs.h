/* SPDX-License-Identifier: Apache-2.0 */
/* Filesystem helpers with the durability rules the state machine relies on (the durable writes
 * themselves are util/durable.h). */
#ifndef MOLT_UTIL_FS_H
#define MOLT_UTIL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "util/durable.h"
#include "util/err.h"
#include "util/rmtree.h"

/* mkdir -p with the given mode for created folders. */
int molt_mkdir_p(const char *path, mode_t mode, molt_err *err);

/* Read a whole file into a malloc'd, NUL-terminated buffer owned by the caller. Files larger
 * than max bytes are refused with MOLT_ELIMIT; a missing file gives MOLT_ENOTFOUND. */
int molt_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len, molt_err *err);

/* molt_read_file of an open file, from its current offset (path names it in messages); fd stays
 * open. */
int molt_read_fd(int fd, const char *path, size_t max, char **ret_data, size_t *ret_len,
                 molt_err *err);

/* malloc'd "a/b" (one slash between), or NULL when out of memory. */
char *molt_path_join(const char *a, const char *b);

bool molt_path_exists(const char *path);

/* The names in folder dir that keep(ctx, dir_fd, name) accepts (keep NULL: every name), "."
 * and ".." never, sorted by strcmp. *ret_names (NULL when none) is freed with molt_names_free.
 * Errors name the folder as "<what> <dir>": MOLT_ENOTFOUND when it does not exist (or is not a
 * folder), MOLT_EIO when it cannot be read, MOLT_ELIMIT when more than max names are kept,
 * MOLT_ENOMEM. */
typedef bool (*molt_dir_keep_fn)(void *ctx, int dir_fd, const char *name);
int molt_dir_names(const char *dir, const char *what, molt_dir_keep_fn keep, void *ctx,
                   size_t max, char ***ret_names, size_t *ret_n, molt_err *err);
void molt_names_free(char **names, size_t n);

#endif
