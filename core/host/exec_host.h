/* SPDX-License-Identifier: Apache-2.0 */
/* The exec module host: Update Module protocol v3, byte-compatible with Mender's client
 * (docs/reference §2.1-§2.7): module lookup, the work tree, stream-next/streams FIFOs with the
 * fallback to files/, query answers, a timeout per call (TERM to the process group, then KILL),
 * stdout/stderr into the deployment log. */
#ifndef MOLT_HOST_EXEC_HOST_H
#define MOLT_HOST_EXEC_HOST_H

#include "artifact/artifact.h"
#include "host/module.h"
#include "util/err.h"

/* Find the executable for payload type in dirs (in order). A type containing '/' or resolving
 * outside its folder is refused. *ret_path malloc'd. MOLT_ENOTFOUND if none. */
int molt_exec_find(const char *const *dirs, size_t n_dirs, const char *type, char **ret_path,
                   molt_err *err);

typedef struct molt_exec_tree_info {
    const char *current_artifact_name;   /* "" if unknown */
    const char *current_artifact_group;  /* "" if none */
    const char *current_device_type;
} molt_exec_tree_info;

/* Create the work tree at tree_dir afresh (version, current_artifact_*, header/..., tmp/), fsync'd.
 * Called once per deployment, before the first module call. */
int molt_exec_tree_create(const char *tree_dir, const molt_artifact_info *info,
                          const molt_exec_tree_info *cur, molt_err *err);

/* A module handle over an existing work tree (also after a restart, to continue a deployment).
 * timeout in seconds for each call. */
int molt_exec_module_new(molt_module **ret, const char *module_path, const char *type,
                         const char *tree_dir, int timeout, molt_err *err);

#endif
