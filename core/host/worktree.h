/* SPDX-License-Identifier: Apache-2.0 */
/* A deployment's module work tree (Update Module v3 layout, docs/reference §2.1): made afresh once per
 * deployment, before the first module call, by whichever host runs the module. An exec module
 * gets the full layout (version, current_*, header/, tmp/), its new names made durable, then the
 * tree's own name in its parent; a native module only tree/ and tmp/, made when it asks for them
 * (it reads the header from the deployment record). */
#ifndef MOLT_HOST_WORKTREE_H
#define MOLT_HOST_WORKTREE_H

#include <jansson.h>
#include "artifact/artifact.h"
#include "util/err.h"

/* The exec layout's current_* files: what the device runs now. */
typedef struct molt_exec_tree_info {
    const char *current_artifact_name;   /* "" if unknown */
    const char *current_artifact_group;  /* "" if none */
    const char *current_device_type;
} molt_exec_tree_info;

/* The exec module's tree at tree_dir, made afresh: version ("3"), current_artifact_name,
 * current_artifact_group, current_device_type, header/ (artifact_name, artifact_group,
 * payload_type, header-info, type-info, meta-data) and tmp/. Every file is fsync'd, then
 * header/, tmp/, the tree and its parent. Errors name the tree ("creating module work tree
 * <tree_dir>: ..."); MOLT_EINVAL for a missing argument. */
int molt_worktree_create_exec(const char *tree_dir, const molt_artifact_info *info,
                              const molt_exec_tree_info *cur, molt_err *err);

/* A native module's tree: whatever an earlier deployment left at <tree_dir> removed, nothing
 * made. The native host makes <tree_dir> and tmp/ when the module first asks for tmp_dir() or
 * files_dir() (host/native_host.c), without fsyncs, except that tmp/'s name and the tree's are
 * made durable when the module first asks for tmp_dir() in Download or ArtifactInstall, for a
 * module that keeps rollback data there. The state machine calls a native module's Cleanup
 * after a power cut whatever the tree, so the tree's name need not be durable to find Cleanup.
 * No header files: a native module reads the header from the deployment record
 * (molt_native_opts.artifact), which the store already keeps durably; docs/performance.md
 * ("fsyncs per install") has the argument. */
int molt_worktree_create_native(const char *tree_dir, molt_err *err);

/* The text of a header JSON document as header/<name> holds it and a native module's
 * header_info()/type_info()/meta_data() return it: as the C++ client writes it (nlohmann
 * dump(2) of the parsed document: two-space indent, keys in byte order, no trailing newline);
 * a missing document is "null" (the C++ and Go clients both write that, docs/reference §2.2).
 * malloc'd; NULL when out of memory. */
char *molt_worktree_header_json(const json_t *j);

#endif
