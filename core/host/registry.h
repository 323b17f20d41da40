/* SPDX-License-Identifier: Apache-2.0 */
/* The module registry: one lookup over native modules (the config's native_module_dir, loaded
 * and checked) and exec modules (module_dirs, in order). Native modules come first; a payload
 * type claimed by two native modules is refused for the second (by file name order). Used by the
 * state machine to find and create a deployment's module, and by `molt modules`. */
#ifndef MOLT_HOST_REGISTRY_H
#define MOLT_HOST_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "host/exec_host.h"
#include "host/module.h"
#include "host/worktree.h"
#include "util/err.h"

/* One row: a payload type and the module handling it, or a refused native module file (type and
 * name NULL, refused set to the exact refusal message). */
typedef struct molt_registry_item {
    molt_module_kind kind;
    char *type;
    char *path;
    char *name;          /* native: the descriptor's name; exec: NULL */
    char *version;       /* native: the descriptor's version; exec: NULL */
    uint32_t capabilities;   /* native: MOLT_CAP_* */
    bool isolated;       /* native: listed in native_isolated_modules */
    char *refused;       /* native: why the file was not loaded; NULL when loaded */
} molt_registry_item;

typedef struct molt_registry {
    molt_registry_item *items;   /* native (sorted by file name), then exec (folder order) */
    size_t n_items;
} molt_registry;

/* Scan the native module dir (every regular *.so, in file name order: each is loaded, checked and
 * unloaded, unless the config has a data_dir whose registry cache holds the declarations of the
 * unchanged file: see host/registry_cache.h) and the exec module dirs. A missing folder is empty. A refused module is an item with
 * `refused` set, not an error; errors are MOLT_ENOMEM / MOLT_EIO reading a folder. *ret is the
 * caller's (molt_registry_free). */
int molt_registry_load(molt_registry **ret, const molt_config *cfg, molt_err *err);

/* The item handling type (never a refused one); NULL if none. */
const molt_registry_item *molt_registry_lookup(const molt_registry *reg, const char *type);

void molt_registry_free(molt_registry *reg);

/* Find the module for a payload type: a native module claiming it, else the exec module of that
 * name (molt_exec_find rules). Refused native modules are logged as warnings. *ret_path
 * malloc'd, *ret_kind its kind (a deployment records both), *ret_caps (may be NULL) the
 * MOLT_CAP_* bits a native module declares that the host honours (molt_native_caps; 0 for an
 * exec module). MOLT_ENOTFOUND (message naming the folders) if none. */
int molt_registry_find(const molt_config *cfg, const char *type, char **ret_path,
                       molt_module_kind *ret_kind, uint32_t *ret_caps, molt_err *err);

/* True if path names a native module: a *.so file in the config's native_module_dir. Only for a
 * deployment recorded before the kind was (store version 1): the kind comes from the record. */
bool molt_registry_is_native(const molt_config *cfg, const char *path);

/* A module handle for a deployment's module of kind kind (as recorded from molt_registry_find)
 * at path. tree_dir is the deployment's work tree; artifact the deployment record's artifact
 * (molt_dep_artifact_json), where a native module reads the header from (NULL: from
 * tree_dir/header/); record what the deployment record offers a native module (NULL: no
 * values, every record durable). */
int molt_registry_module_new(const molt_config *cfg, molt_module **ret, molt_module_kind kind,
                             const char *path, const char *type, const char *tree_dir,
                             const json_t *artifact, const molt_module_record *record,
                             molt_err *err);

/* The deployment's work tree for a module of kind kind: the Update Module v3 tree
 * (molt_worktree_create_exec) for an exec module, only tree/ and tree/tmp/ for a native module
 * (molt_worktree_create_native: it reads the header from the deployment record). */
int molt_registry_tree_create(molt_module_kind kind, const char *tree_dir,
                              const molt_artifact_info *info, const molt_exec_tree_info *cur,
                              molt_err *err);

#endif
