/* SPDX-License-Identifier: Apache-2.0 */
/* Recursive removal with *at() calls relative to folder descriptors, never by full path: the one
 * implementation behind molt_rm_rf (core) and molt_sdk_rm_rf (libmolt-sdk, compiled in there
 * too). Depth costs heap, not descriptors or stack, and no path is ever longer than a name. */
#ifndef MOLT_UTIL_RMTREE_H
#define MOLT_UTIL_RMTREE_H

#include <limits.h>
#include "util/err.h"

/* Levels below the removed folder at most (the heap it takes: the names of one level's
 * subfolders along the current branch); deeper is refused, nothing past it is touched. */
#define MOLT_RMTREE_DEPTH_MAX 65536

/* Why a removal failed: errno (ELOOP past MOLT_RMTREE_DEPTH_MAX, ENOMEM), the operation, and
 * the entry as a path relative to the folder removed (shortened in the middle if too long). */
typedef struct molt_rmtree_err {
    int errno_value;
    const char *op;           /* "stat", "open", "read", "remove", "descend into" (static) */
    char path[PATH_MAX];
} molt_rmtree_err;

/* rm -rf of name in the folder dirfd (AT_FDCWD: the working folder): a file or symlink is
 * unlinked, a folder emptied depth first and removed. Symlinks are never followed, a folder
 * swapped while it is being removed is noticed (device and inode of ".."), a missing name is
 * not an error. 0, or -1 with *ret_err filled (may be NULL). */
int molt_rmtree_at(int dirfd, const char *name, molt_rmtree_err *ret_err);

/* The same for a path: its parent folder is opened, then molt_rmtree_at(parent, last name). */
int molt_rmtree(const char *path, molt_rmtree_err *ret_err);

/* molt_rmtree with the failure as a molt_err: "cannot remove <path> (<op> <entry>): <strerror>",
 * MOLT_EIO (MOLT_ENOMEM when out of memory). A missing path is not an error. */
int molt_rm_rf(const char *path, molt_err *err);

#endif
