/* SPDX-License-Identifier: Apache-2.0 */
/* The exec module host: Update Module protocol v3, byte-compatible with Mender's client
 * (docs/reference §2.1-§2.7): module lookup, calls in the work tree (host/worktree.h makes it),
 * stream-next/streams FIFOs with the fallback to files/, query answers, a timeout per call
 * (TERM to the process group, then KILL), stdout/stderr into the deployment log. */
#ifndef MOLT_HOST_EXEC_HOST_H
#define MOLT_HOST_EXEC_HOST_H

#include "artifact/artifact.h"
#include "host/module.h"
#include "util/err.h"

/* Find the executable for payload type in dirs (in order). A type containing '/' or resolving
 * outside its folder is refused. *ret_path malloc'd. MOLT_ENOTFOUND if none. */
int molt_exec_find(const char *const *dirs, size_t n_dirs, const char *type, char **ret_path,
                   molt_err *err);

/* A module handle over an existing work tree (also after a restart, to continue a deployment).
 * timeout in seconds for each call. */
int molt_exec_module_new(molt_module **ret, const char *module_path, const char *type,
                         const char *tree_dir, int timeout, molt_err *err);

#endif
