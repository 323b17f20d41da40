/* SPDX-License-Identifier: Apache-2.0 */
/* The module interface the state machine drives, whatever the module's kind: exec modules
 * (Update Module protocol v3, host/exec_host.c) and native modules (dlopen, a later issue)
 * implement the same operations. */
#ifndef MOLT_HOST_MODULE_H
#define MOLT_HOST_MODULE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "artifact/reader.h"
#include "util/err.h"

/* The module calls of the protocol (docs/reference §2.3), argv[1] of an exec module. */
typedef enum molt_call {
    MOLT_CALL_PROVIDE_PAYLOAD_FILE_SIZES,
    MOLT_CALL_DOWNLOAD,
    MOLT_CALL_DOWNLOAD_WITH_FILE_SIZES,
    MOLT_CALL_ARTIFACT_INSTALL,
    MOLT_CALL_NEEDS_ARTIFACT_REBOOT,
    MOLT_CALL_ARTIFACT_REBOOT,
    MOLT_CALL_ARTIFACT_VERIFY_REBOOT,
    MOLT_CALL_ARTIFACT_COMMIT,
    MOLT_CALL_SUPPORTS_ROLLBACK,
    MOLT_CALL_ARTIFACT_ROLLBACK,
    MOLT_CALL_ARTIFACT_ROLLBACK_REBOOT,
    MOLT_CALL_ARTIFACT_VERIFY_ROLLBACK_REBOOT,
    MOLT_CALL_ARTIFACT_FAILURE,
    MOLT_CALL_CLEANUP,
    MOLT_CALL_COUNT
} molt_call;

/* "ArtifactInstall" etc.; NULL for an out-of-range value. */
const char *molt_call_name(molt_call call);

/* Answers of the query calls. */
typedef enum molt_answer {
    MOLT_ANSWER_NO = 0,        /* "No" or empty */
    MOLT_ANSWER_YES,           /* "Yes" */
    MOLT_ANSWER_AUTOMATIC,     /* "Automatic" (NeedsArtifactReboot only) */
} molt_answer;

/* How a module runs: loaded in-process (a native module, dlopen) or as a program (an exec
 * module, Update Module protocol v3). A deployment records it when it starts. */
typedef enum molt_module_kind {
    MOLT_MODULE_NATIVE,
    MOLT_MODULE_EXEC,
} molt_module_kind;

typedef struct molt_module molt_module;

typedef struct molt_module_ops {
    /* Hand every payload file of r to the module (streams, or files/ if it does not stream). */
    int (*download)(molt_module *m, molt_artifact_reader *r, molt_err *err);
    /* A non-query call (ArtifactInstall, ArtifactCommit, ...). 0 or MOLT_EMODULE etc. */
    int (*call)(molt_module *m, molt_call call, molt_err *err);
    /* A query call (NeedsArtifactReboot, SupportsRollback); an answer outside the protocol is
     * MOLT_EPROTOCOL. */
    int (*query)(molt_module *m, molt_call call, molt_answer *ret, molt_err *err);
    void (*free)(molt_module *m);
    /* The module's deployment values as they are now (an object of key: hex value, borrowed
     * until the next call; NULL: none), which the state machine saves with its next record.
     * NULL for a kind of module that has none (exec). */
    const json_t *(*values)(molt_module *m);
} molt_module_ops;

/* What the deployment record offers a module host (the state machine fills it): the values it
 * holds for the module, and a way to make the record saved last durable, for a machine that
 * saved it lazily (state Download of a module with MOLT_CAP_LAZY_DOWNLOAD, state
 * ArtifactCommit of one with MOLT_CAP_LAZY_COMMIT). */
typedef struct molt_module_record {
    const json_t *values;   /* the record's values of the module (copied), or NULL: none */
    int (*sync)(void *ctx, molt_err *err);   /* NULL: every record is saved durably */
    void *ctx;
} molt_module_record;

struct molt_module {
    const molt_module_ops *ops;
    const char *name;   /* payload type it handles */
    const char *path;   /* where it was found */
    uint32_t caps;      /* the MOLT_CAP_* bits the host honours (native: molt_native_caps of
                         * the loaded descriptor); 0 for an exec module */
};

#endif
