/* SPDX-License-Identifier: Apache-2.0 */
/* The native module ABI: what a shared object in molt's native module dir exports, and the table
 * of host functions molt hands it. C99, self-contained; a module includes only molt's public
 * headers (this folder) and links only libmolt-sdk, never the core. */
#ifndef MOLT_MODULE_H
#define MOLT_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------------------------
 * A module is built against one ABI version and says so in its descriptor. The host loads it when
 * the majors are equal and the module's minor is not newer than the host's. A minor adds fields at
 * the end of a struct (or gives a reserved slot a meaning); it never moves or changes one. The
 * major changes only when something is removed or changed: every module is then rebuilt. The
 * SONAME of libmolt-sdk is libmolt-sdk.so.<major>. These two numbers are the only place the
 * version is written: the build reads them from here (sdk/lib/CMakeLists.txt).
 *
 * What a descriptor's abi_minor means: the newest minor whose DESCRIPTOR fields the module fills
 * (a host never reads a descriptor field of a minor newer than the module's). It is not a list
 * of the host functions the module calls: a host function added by a later minor (set_sink in
 * 1.1) is looked up at run time with MOLT_HOST_HAS(host, field), which is false on an older
 * host. So a module that fills only 1.0 fields and uses set_sink when the host has it declares
 * minor 0 (MOLT_MODULE_V1_MINOR(0)) and runs on 1.0 hosts too (reading without the sink there);
 * with MOLT_MODULE_V1 (this header's minor) a 1.0 host refuses it as too new. */
#define MOLT_MODULE_ABI_MAJOR 1
#define MOLT_MODULE_ABI_MINOR 2

/* The one symbol a module exports, of type molt_module_entry_fn:
 *     MOLT_MODULE_EXPORT const struct molt_module_desc *molt_module_entry(void);
 * It is called once after dlopen and must return a pointer to a descriptor that lives as long as
 * the module is loaded (a static const object), or NULL to refuse loading. It must not do
 * anything else: no I/O, no threads, no host calls. */
#define MOLT_MODULE_ENTRY_SYMBOL "molt_module_entry"

#if defined(__GNUC__) || defined(__clang__)
#define MOLT_MODULE_EXPORT __attribute__((visibility("default")))
#else
#define MOLT_MODULE_EXPORT
#endif

struct molt_host_api;
struct molt_module_desc;
typedef const struct molt_module_desc *(*molt_module_entry_fn)(void);
/* The module defines this function (declared here so the compiler checks its type). */
MOLT_MODULE_EXPORT const struct molt_module_desc *molt_module_entry(void);

/* ---- capabilities (molt_module_desc.capabilities) ------------------------------------------ */
/* The module reads the payload while it arrives (next_file/read/read_block during download).
 * Without it the host first writes every payload file to files_dir() and download() finds them
 * there (next_file then returns 0 at once): a copy on disk, for modules that need random access. */
#define MOLT_CAP_STREAMING (1u << 0)
/* The module can roll back: artifact_rollback is mandatory; a NULL supports_rollback answers Yes. */
#define MOLT_CAP_ROLLBACK (1u << 1)
/* The update needs a reboot: a NULL needs_artifact_reboot answers Yes (the module's
 * artifact_reboot reboots); without the bit a NULL needs_artifact_reboot answers No. */
#define MOLT_CAP_REBOOT (1u << 2)
/* ABI 1.2 (read from a module of minor 2 or later): after a power cut during download there is
 * nothing for cleanup to find, because download names nothing (it stages into unnamed files,
 * O_TMPFILE, and keeps what install needs in the deployment's values, dep_set). The host then
 * records state Download without waiting for the disk: a cut that loses that record leaves the
 * device as it was before the install (the deployment never existed, cleanup is not called).
 * A module that sometimes names things in download still may set it: before kv_set or
 * kv_delete changes anything in download, and before the first tmp_dir() or files_dir() of
 * download, the host makes the record durable (from then on a cut leads to cleanup as without
 * the bit). What the module must not do with the bit: create, rename or remove a file or folder
 * outside tmp_dir() in download before one of those calls. */
#define MOLT_CAP_LAZY_DOWNLOAD (1u << 3)
/* ABI 1.2 (read from a module of minor 2 or later): artifact_commit makes nothing durable and
 * changes nothing outside the deployment's values (it records the commit with dep_set, and
 * does nothing else the device or a later call could see). The host then records state
 * ArtifactCommit without waiting for the disk: a power cut during artifact_commit or right
 * after it may lose that record, and the update is then awaiting its commit again, as before
 * `molt commit` ran (the values artifact_commit set are lost with the record), instead of
 * rolling back; a cut that keeps the record rolls back as without the bit. `molt commit` has
 * not said success in either case. A module that sometimes does more may still set it: before
 * kv_set or kv_delete changes anything in artifact_commit, and before its first tmp_dir() or
 * files_dir(), the host makes the record durable (from then on a cut rolls back as without the
 * bit). What the module must not do with the bit: change a file, a folder or anything else
 * outside the deployment values in artifact_commit before one of those calls.
 * molt-module-test checks it (lazy-commit-lost). */
#define MOLT_CAP_LAZY_COMMIT (1u << 4)
/* Bits the host of this ABI knows; a module setting others is still loaded (they are ignored). */
#define MOLT_CAP_KNOWN                                                                        \
    (MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK | MOLT_CAP_REBOOT | MOLT_CAP_LAZY_DOWNLOAD |      \
     MOLT_CAP_LAZY_COMMIT)

/* ---- return values ---------------------------------------------------------------------------
 * Every function below returns 0 on success or a negative MOLT_E* code of <molt/error.h> (the
 * values are the ABI; the header is not needed to return -18, MOLT_EMODULE, the usual failure).
 * Before failing, a function may describe the failure with host->error(); otherwise the host
 * writes "module <name>: <State> failed: <description of the code>". */

/* The answer of needs_artifact_reboot (the Update Module protocol's NeedsArtifactReboot). */
enum molt_module_reboot {
    MOLT_MODULE_REBOOT_NO = 0,        /* "No": nothing to reboot */
    MOLT_MODULE_REBOOT_YES = 1,       /* "Yes": the host calls artifact_reboot, which reboots */
    MOLT_MODULE_REBOOT_AUTOMATIC = 2  /* "Automatic": the device reboots, the module does nothing */
};

/* Log levels of molt_host_api.log. */
enum molt_module_log_level {
    MOLT_MODULE_LOG_ERROR = 0,
    MOLT_MODULE_LOG_WARNING = 1,
    MOLT_MODULE_LOG_INFO = 2,
    MOLT_MODULE_LOG_DEBUG = 3
};

/* ---- the descriptor ----------------------------------------------------------------------------
 * A static const object in the module. Every state function receives the state that init
 * returned. The host calls them in the order of the Update Module protocol v3 (Download,
 * ArtifactInstall, NeedsArtifactReboot, ...), exactly as it runs an executable module, and records
 * each state before calling it: molt may stop (crash, power cut, reboot) between any two calls and
 * continue in a later process with a fresh init. So a module keeps nothing it needs in memory from
 * one call to the next: it keeps it in work_dir(), tmp_dir(), the key-value store or the
 * deployment's values (dep_set, ABI 1.2).
 *
 * The functions run in molt's process and thread, one at a time; a crash in a module kills molt
 * (the next start recovers, see docs/native-modules.md) unless the module is listed in the config's
 * native_isolated_modules, where every call runs in a forked child.
 *
 * Mandatory: init, download, artifact_install; artifact_rollback when MOLT_CAP_ROLLBACK is set.
 * Every other function may be NULL: a NULL state function succeeds doing nothing (as an executable
 * module that exits 0 for a state it does not handle), a NULL query answers from the capability
 * bits. */
struct molt_module_desc {
    uint32_t struct_size;   /* sizeof(struct molt_module_desc) as the module was built */
    uint16_t abi_major;     /* MOLT_MODULE_ABI_MAJOR as the module was built */
    uint16_t abi_minor;     /* MOLT_MODULE_ABI_MINOR as the module was built */
    const char *name;       /* short name for logs and `molt modules` ("file-copy") */
    const char *version;    /* the module's own version ("1.2.0") */
    /* The payload types (header-info payloads[].type) the module installs; NULL-terminated, at
     * least one. No other native module may claim one of them (the second is refused). A type is
     * 1 to 128 characters of [A-Za-z0-9._+-]. */
    const char *const *payload_types;
    uint32_t capabilities;  /* MOLT_CAP_* */

    /* Called once per molt process before the first state function (in an isolated module: once
     * per call, in the child). host stays valid until fini. Sets *ret_state (may be NULL) and
     * returns 0, or fails and the state call that needed the module fails. */
    int (*init)(const struct molt_host_api *host, void **ret_state);
    /* Releases state. Called once after init succeeded, when molt is done with the module (it may
     * never be called if molt crashes). May be NULL. */
    void (*fini)(void *state);

    /* Download: read the payload. Call host->next_file until it returns 0, reading each file with
     * host->read or host->read_block while it is current. Every byte is hashed by the host; a
     * checksum mismatch shows as a negative read result at the end of the file, and the module then
     * returns that code. Stage the update (write to an inactive partition, a temporary file) but
     * change nothing the device runs on: activation is artifact_install's. Files the module does not
     * read are still read and verified by the host after download returns.
     * The bytes of a payload file are UNTRUSTED until read/read_block returned 0 for it (an
     * attacker controls an unverified stream and its pace): until then nothing made from them may
     * be usable by anyone: no file another user can reach, no setuid/setgid bit or final owner,
     * nothing handed to another program that acts on it (a package manager, a container engine).
     * Stage in a place only molt can reach (a 0700 folder, a 0600 file, an inactive partition)
     * and apply modes, owners and hand-overs after the read returned 0 (docs/modules.md). */
    int (*download)(void *state);
    /* ArtifactInstall: activate what download staged. On failure the host asks supports_rollback
     * and calls artifact_rollback if it is supported, then artifact_failure, then cleanup. */
    int (*artifact_install)(void *state);
    /* NeedsArtifactReboot: returns an enum molt_module_reboot value (>= 0) or a negative code.
     * A query: no side effects, the same answer every time it is asked during one deployment. */
    int (*needs_artifact_reboot)(void *state);
    /* ArtifactReboot: reboot the device (or the updated peripheral) when the answer was Yes. If the
     * device reboots, molt continues after `molt resume` with artifact_verify_reboot; a function
     * that returns 0 without rebooting is followed by artifact_verify_reboot at once. */
    int (*artifact_reboot)(void *state);
    /* ArtifactVerifyReboot: check that the device runs the new software after the reboot; a failure
     * rolls back. */
    int (*artifact_verify_reboot)(void *state);
    /* ArtifactCommit: make the update permanent. The contract: molt records ArtifactCommit
     * before calling it and ArtifactCommit_Leave after it returned 0, and a power cut or crash
     * between the two (during the call, or right after it) sends molt down the rollback path:
     * artifact_rollback must then still bring back the previous software. So artifact_commit
     * drops nothing a rollback needs: it records the commit (dep_set, which is saved with the
     * record after the call: a cut before it finds the value unset; or kv_set) and backups are
     * dropped in cleanup, which runs only after ArtifactCommit_Leave was recorded (or after a rollback).
     * molt-module-test checks this with a kill right after artifact_commit returned. With
     * MOLT_CAP_LAZY_COMMIT a power cut there may instead leave the update awaiting its commit. */
    int (*artifact_commit)(void *state);
    /* SupportsRollback: returns 1 (Yes), 0 (No) or a negative code. A query, as above. */
    int (*supports_rollback)(void *state);
    /* ArtifactRollback: bring back the software that ran before the deployment. Idempotent: molt
     * calls it again after a crash or power cut during it, and after a failed rollback reboot, so
     * a second call must succeed and leave the same result. Returns MOLT_ETEMP (-21) when it
     * cannot run yet for a cause that can pass (an engine or a lock unavailable, a timeout):
     * the deployment then stays pending, cleanup is not called, and molt calls it again later
     * (`molt resume`, the daemon); keep what the retry needs. */
    int (*artifact_rollback)(void *state);
    /* ArtifactRollbackReboot: reboot into the restored software (when a reboot was needed). */
    int (*artifact_rollback_reboot)(void *state);
    /* ArtifactVerifyRollbackReboot: check the restored software runs; a failure repeats the
     * rollback reboot (up to the host's loop guard). */
    int (*artifact_verify_rollback_reboot)(void *state);
    /* ArtifactFailure: called on every failure path after install began (after the rollback, or
     * instead of it): undo side effects that rollback does not cover. Its failure is logged. */
    int (*artifact_failure)(void *state);
    /* Cleanup: the deployment is over (success or failure); remove what download and install left
     * in tmp_dir() or elsewhere. Idempotent: it may run again after a crash during it, and it runs
     * after a failed download, when artifact_install never ran, and after a power cut at any point
     * of the deployment, even one before download ran. */
    int (*cleanup)(void *state);

    /* Zero in ABI 1.0 (a static const object leaves them so). A later minor may give one a
     * meaning; the host reads a slot only from a module whose minor defines it. */
    void *reserved[8];
};

/* The first three fields of a descriptor (struct_size, abi_major, abi_minor), as nginx's
 * NGX_MODULE_V1: every module starts its descriptor with it, and names the rest:
 *     static const struct molt_module_desc desc = {
 *         MOLT_MODULE_V1,
 *         .name = "my-module", .version = "1.0.0", .payload_types = types, ...
 *     };
 * abi_minor is this header's minor. MOLT_MODULE_V1_MINOR(m) declares an older minor m: the
 * descriptor then uses no field added after m, and hosts of minor m load the module too (see
 * "versions" above: the host functions of later minors are found with MOLT_HOST_HAS). */
#define MOLT_MODULE_V1_MINOR(minor) \
    (uint32_t)sizeof(struct molt_module_desc), MOLT_MODULE_ABI_MAJOR, (minor)
#define MOLT_MODULE_V1 MOLT_MODULE_V1_MINOR(MOLT_MODULE_ABI_MINOR)

/* ---- the host functions ------------------------------------------------------------------------
 * Passed to init; valid until fini. Every function takes the table itself as first argument.
 * Strings returned by the host stay valid until fini and are owned by the host. A function added
 * by a later minor is available when host->abi_minor (or host->struct_size) says so; SDK helpers
 * check with MOLT_HOST_HAS(host, field). */
struct molt_host_api {
    uint32_t struct_size;   /* sizeof(struct molt_host_api) in the host */
    uint16_t abi_major;     /* the host's MOLT_MODULE_ABI_MAJOR */
    uint16_t abi_minor;     /* the host's MOLT_MODULE_ABI_MINOR */

    /* A line for molt's log and the deployment log (levels: enum molt_module_log_level; a
     * trailing newline is dropped, a message is cut at 64 KiB). */
    void (*log)(const struct molt_host_api *host, int level, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
    /* The message of the failure the current call is about to return (kept by the host, replacing
     * an earlier one of the same call; cut at 1 KiB). */
    void (*error)(const struct molt_host_api *host, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
    /* Progress of the current state's work, in any unit (bytes written, say); total 0 if unknown. */
    void (*progress)(const struct molt_host_api *host, uint64_t done, uint64_t total);

    /* Download only (other states get MOLT_ESTATE). Move to the next payload file: returns 1 and
     * sets *ret_name (valid until the next next_file call) and *ret_size (bytes), 0 when there are
     * no more files, or a negative code. */
    int (*next_file)(const struct molt_host_api *host, const char **ret_name, int64_t *ret_size);
    /* Copy up to len bytes of the current file into buf: returns the count (> 0), 0 at the end of the
     * file once its checksum matched, or a negative code (MOLT_ECHECKSUM on a mismatch). */
    int64_t (*read)(const struct molt_host_api *host, void *buf, size_t len);
    /* The same without a copy: *ret_buf points into the host's buffer, valid until the next read,
     * read_block or next_file call. */
    int64_t (*read_block)(const struct molt_host_api *host, const void **ret_buf);

    /* The artifact of the current deployment, as JSON text of its header (never NULL: "{}" or
     * "null" when absent): header-info, the payload's type-info and meta-data. */
    const char *(*header_info)(const struct molt_host_api *host);
    const char *(*type_info)(const struct molt_host_api *host);
    const char *(*meta_data)(const struct molt_host_api *host);
    /* Its name, group ("" if none) and the payload type being installed. */
    const char *(*artifact_name)(const struct molt_host_api *host);
    const char *(*artifact_group)(const struct molt_host_api *host);
    const char *(*payload_type)(const struct molt_host_api *host);

    /* A folder of the module's own that persists across deployments and reboots
     * (<data_dir>/native/<module name>/work), created before init. */
    const char *(*work_dir)(const struct molt_host_api *host);
    /* A folder for this deployment only, removed by the host after cleanup (the exec protocol's
     * tmp/ of the module work tree). */
    const char *(*tmp_dir)(const struct molt_host_api *host);
    /* Where payload files are when the module lacks MOLT_CAP_STREAMING (the work tree's files/). */
    const char *(*files_dir)(const struct molt_host_api *host);

    /* A small persistent key-value store of the module (its own, not shared:
     * <data_dir>/native/<module name>/kv/<key>, one file a key). Keys: 1 to 64
     * characters of [A-Za-z0-9._-]; values: 0 to 65536 bytes. kv_set and kv_delete are atomic
     * and durable when they return 0 (written, fsync'd, renamed, folder fsync'd): after a power cut
     * a key has its old or its new value. kv_get copies the value into buf (cap bytes) and sets
     * *ret_len to its length: 0, MOLT_ENOTFOUND when the key is not set, MOLT_ELIMIT when cap is too
     * small (*ret_len is then the length needed, nothing else is written). kv_delete of a missing
     * key is 0. */
    int (*kv_get)(const struct molt_host_api *host, const char *key, void *buf, size_t cap,
                  size_t *ret_len);
    int (*kv_set)(const struct molt_host_api *host, const char *key, const void *value,
                  size_t len);
    int (*kv_delete)(const struct molt_host_api *host, const char *key);

    /* A configuration value of this module, or NULL when not set: molt.yaml's
     * `modules: <descriptor name>: <key>: <value>`. A scalar is returned as written; a list gives
     * "key" (its items joined with '\n') and "key.0", "key.1", ... (each item); see
     * docs/configuration.md. Modules must handle NULL (their defaults). */
    const char *(*config_get)(const struct molt_host_api *host, const char *key);

    /* ABI 1.1 (check with MOLT_HOST_HAS(host, set_sink)). Download only, right after next_file
     * returned 1 and before the first read/read_block of that file: from now to the end of the
     * file the host also hands every byte of it, in order, to sink(ctx, buf, len), on the thread
     * where it hashes the payload when it has one (else during read/read_block), so that what
     * the sink does (a write to disk) overlaps the decompression of the next bytes on the
     * caller's thread. The module still drives the reading with read/read_block, which return
     * the same bytes (and the same 0 once the file's checksum matched). sink returns 0 or a
     * negative code; after a failure it is not called again and read/read_block return that
     * code. Once read/read_block returned 0 or a negative code, next_file was called, or
     * download returned, the sink has returned for the last time (the host reads what the
     * module left unread without it). The sink must not call host functions. Returns 0, or
     * MOLT_ESTATE when not at the start of a file. */
    int (*set_sink)(const struct molt_host_api *host,
                    int (*sink)(void *ctx, const void *buf, size_t len), void *ctx);

    /* ABI 1.2 (check with MOLT_HOST_HAS(host, dep_set)): a small key-value set of the current
     * deployment, kept in molt's deployment record (the store) instead of files: no write of
     * its own, no fsync. Keys and the get/delete results as kv_get/kv_delete; the values of one
     * module take at most MOLT_DEP_VALUES_MAX bytes in all (keys and values; dep_set returns
     * MOLT_ELIMIT past it and changes nothing). The contract: a value set (or deleted) during a
     * call is visible to every later call of the deployment, in this process and after a
     * restart, once it was saved: it is saved with the host's next record of the deployment,
     * which is durable before the next state function is called. A power cut (or a stop) before
     * that loses it, and molt then resumes the state of that call (its recovery path: Download
     * leads to cleanup, ArtifactInstall and ArtifactCommit to the rollback), which is what the
     * module must expect: a value set in artifact_commit is seen by cleanup, never by the
     * rollback of a commit cut short. The values are dropped when the deployment ends (after
     * cleanup); a deployment starts with none. In native_isolated_modules each call runs in a
     * child: its changes go back to molt with the call's result (the same behaviour). */
    int (*dep_get)(const struct molt_host_api *host, const char *key, void *buf, size_t cap,
                   size_t *ret_len);
    int (*dep_set)(const struct molt_host_api *host, const char *key, const void *value,
                   size_t len);
    int (*dep_delete)(const struct molt_host_api *host, const char *key);
    /* ABI 1.2: 1 when the module's state (what init returned) lives on from one call of the
     * deployment to the next unless molt stops in between (in-process), 0 when every call runs
     * with a fresh init (native_isolated_modules: each call in a forked child). A module may
     * keep an open file (an unnamed staged file) from download to artifact_install only when 1,
     * and must still expect it missing after a restart. */
    int (*keeps_state)(const struct molt_host_api *host);

    void *reserved[3];   /* NULL in ABI 1.2 */
};

/* The most the deployment values of one module take (dep_set): keys and values, in bytes. */
#define MOLT_DEP_VALUES_MAX 4096

/* True when the host table has the function field (it was added by a minor the host knows). */
#define MOLT_HOST_HAS(host, field)                                                             \
    ((host)->struct_size >= offsetof(struct molt_host_api, field) + sizeof((host)->field) &&  \
     (host)->field != NULL)

#ifdef __cplusplus
}
#endif
#endif
