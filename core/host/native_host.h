/* SPDX-License-Identifier: Apache-2.0 */
/* The native module host: loads a shared object with dlopen, checks its descriptor against the
 * ABI of <molt/module.h> (refusing with an exact message), and wraps it in a molt_module so the
 * state machine drives it like an exec module. Payload bytes reach the module by reads straight
 * from the artifact reader; optionally each call runs in a forked child (isolation). */
#ifndef MOLT_HOST_NATIVE_HOST_H
#define MOLT_HOST_NATIVE_HOST_H

#include <stdbool.h>
#include <jansson.h>
#include <molt/module.h>
#include "config/config.h"
#include "host/module.h"
#include "util/err.h"

/* A loaded and checked module file. */
typedef struct molt_native molt_native;

/* dlopen(path, RTLD_NOW|RTLD_LOCAL), call its molt_module_entry and check the descriptor: the
 * ABI major, a minor not newer than the host's, struct_size for its minor, name, version,
 * payload types, the mandatory functions. Each refusal is MOLT_EUNSUPPORTED (or MOLT_EFORMAT for
 * a malformed descriptor, MOLT_EIO when dlopen fails) with a message starting
 * "module <path>: ". *ret is the caller's (molt_native_free). */
int molt_native_load(molt_native **ret, const char *path, molt_err *err);

/* The checked descriptor; valid until molt_native_free. */
const struct molt_module_desc *molt_native_desc(const molt_native *n);
const char *molt_native_path(const molt_native *n);

/* The capability bits of d the host honours: a bit of a later minor than d's is dropped
 * (MOLT_CAP_LAZY_DOWNLOAD or MOLT_CAP_LAZY_COMMIT of a module built before ABI 1.2 meant
 * nothing), and one of a later minor than the host's (molt_native_host_minor). */
uint32_t molt_native_caps(const struct molt_module_desc *d);

/* True if the module claims payload type. */
bool molt_native_claims(const molt_native *n, const char *type);

/* dlclose (unless molt_native_keep_mapped was called) and free; NULL is fine. */
void molt_native_free(molt_native *n);

/* For a process that exits once its one command is done (the molt CLI): from now on
 * molt_native_free leaves the module and its libraries mapped, and the process's exit unmaps
 * them. dlclose at the end of such a command only repeated what exit does (the unmapping, ~0.04
 * ms of a small update's commands): the module's fini has run by then (its molt_module free),
 * and its ELF destructors and atexit handlers run at exit instead (_dl_fini) as at dlclose. A
 * module loaded again in the same process gets the mapping it had, with its globals as the last
 * use left them (as with any dlopen of a module already loaded). A module that molt_native_load
 * refuses is unloaded at once all the same. The daemon does not call it: it unloads every module
 * after its job (docs/performance.md, "The idle daemon"). Not thread-safe: call it at start. */
void molt_native_keep_mapped(void);

/* From now on this process is a host of ABI 1.minor (at most MOLT_MODULE_ABI_MINOR), as a molt
 * of that minor is: the host functions of later minors are NULL in the table a module gets, its
 * abi_minor says minor, and the capability bits of later minors are not honoured
 * (molt_native_caps). For the conformance kit (molt-module-test --host-minor), which checks that
 * a module still works where an older molt loads it. Not thread-safe: call it at start. */
void molt_native_host_minor(unsigned minor);

/* What a module file declares, as molt_native_probe read it. */
typedef struct molt_native_decl {
    char *name, *version;
    uint32_t capabilities;
    char **types;           /* NULL-terminated, as the descriptor's payload_types */
} molt_native_decl;

/* Load and check path as molt_native_load does, but in a forked child that sends the
 * declaration back and exits: molt itself never maps the module or its libraries, and a module
 * whose loading crashes is refused ("module <path>: loading it crashed: killed by signal 11
 * (Segmentation fault)") instead of killing molt. 0 with *ret filled (molt_native_decl_free), or
 * molt_native_load's refusal (code and message), or MOLT_EIO when the child cannot start. */
int molt_native_probe(const char *path, molt_native_decl *ret, molt_err *err);
void molt_native_decl_free(molt_native_decl *d);

typedef struct molt_native_opts {
    const char *tree_dir;   /* the deployment's work tree (tmp/, files/), as created by
                               molt_worktree_create_native (or _exec) */
    const json_t *artifact; /* the deployment record's "artifact" object (name, group,
                               header_info, type_info, meta_data): the header the module reads;
                               NULL = read them from <tree_dir>/header/
                               (molt_worktree_create_exec) */
    const char *data_dir;   /* molt's data dir: <data_dir>/native/<name>/{work,kv} */
    bool isolated;          /* run every call in a forked child */
    int timeout;            /* isolated only, and then at least 1: seconds a call may take before
                               the child is killed (module_timeout) */
    const molt_config *cfg; /* config_get answers from `modules: <descriptor name>:` (copied);
                               NULL = no settings */
    const molt_module_record *record;   /* the module's deployment values (dep_get/dep_set) and
                                           the record's sync; NULL = none, always durable */
} molt_native_opts;

/* A module handle for a deployment: loads path (as molt_native_load) and checks that it claims
 * type. The module's init runs at the first call. *ret is freed with ret->ops->free. */
int molt_native_module_new(molt_module **ret, const char *path, const char *type,
                           const molt_native_opts *opts, molt_err *err);

#endif
