/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent update state machine (docs/reference §2.8, standalone mode): install, commit,
 * rollback and resume of one deployment through an update module, with every state recorded in
 * the store before its work begins so that a power cut at any instant resumes into a defined
 * path. The store is the typed record of state/store.h (molt_record). */
#ifndef MOLT_STATE_MACHINE_H
#define MOLT_STATE_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "config/config.h"
#include "state/store.h"
#include "util/err.h"

/* How a command ended, for the caller to turn into words and an exit code. */
typedef enum molt_outcome {
    MOLT_OUTCOME_DONE = 0,        /* finished: installed and committed, committed, rolled back */
    MOLT_OUTCOME_AWAIT_COMMIT,    /* installed; waiting for `commit` or `rollback` */
    MOLT_OUTCOME_REBOOT,          /* a reboot is required, then `resume` */
    MOLT_OUTCOME_FAILED,          /* the deployment (or the command) failed; err says why */
    MOLT_OUTCOME_NOTHING,         /* commit/rollback/resume with no deployment in progress */
} molt_outcome;

/* Progress of the artifact download: bytes read so far and the total (-1 when unknown). */
typedef void (*molt_progress_fn)(void *ctx, int64_t bytes, int64_t total);

typedef struct molt_machine molt_machine;

/* Load the store of cfg (cfg is borrowed and must outlive the machine). A corrupt store is
 * MOLT_ECORRUPT with the reason; nothing is changed then. *ret owned by the caller. */
int molt_machine_open(molt_machine **ret, const molt_config *cfg, molt_err *err);
void molt_machine_free(molt_machine *m);

/* Called with the download progress during install (and resume, which never downloads). */
void molt_machine_set_progress(molt_machine *m, molt_progress_fn fn, void *ctx);

/* A hook the daemon sets to report to a server (docs/reference §3.3): called with "ArtifactInstall"
 * after the download, before ArtifactInstall; "ArtifactReboot" before the reboot; and
 * "ArtifactCommit" before the commit. A negative return (err filled; MOLT_ECANCELED for a
 * deployment aborted on the server) fails the deployment as docs/reference §2.8 says: before
 * ArtifactInstall straight to Cleanup, later through the rollback path. MOLT_HOOK_STOP stops
 * before the state without recording anything more (the daemon is stopping): the command
 * returns MOLT_ECANCELED with outcome FAILED, and the store names the step a resume takes, as
 * after a power cut at that point. */
#define MOLT_HOOK_STOP 1
typedef int (*molt_state_hook_fn)(void *ctx, const char *state, molt_err *err);
void molt_machine_set_state_hook(molt_machine *m, molt_state_hook_fn fn, void *ctx);

/* The id of the deployment the next install starts (a server's deployment id), instead of a
 * random UUID. id is copied; MOLT_EINVAL when it is unusable (molt_deplog_check_id). */
int molt_machine_set_deployment_id(molt_machine *m, const char *id, molt_err *err);

/* What a server's deployment announced (docs/reference §3.2): the artifact name and the device types
 * ("device_types_compatible", an array; NULL when not announced). Both are copied. The next
 * install refuses, before any module or script runs, an artifact with another name or a device
 * whose type is not listed (MOLT_EDEPENDS, expected vs got). */
int molt_machine_set_expected(molt_machine *m, const char *artifact_name,
                              const json_t *device_types, molt_err *err);

/* `molt install --allow-downgrade`: an artifact the downgrade policy (cfg downgrade:) refuses is
 * installed with a warning instead. Nothing else overrides the policy. */
void molt_machine_set_allow_downgrade(molt_machine *m, bool allow);

/* Install the artifact at source (a file path, "-" for stdin, or an http(s) URL). Refuses
 * (MOLT_ESTATE, outcome FAILED) when a deployment is already in progress. Returns 0 with outcome
 * DONE, AWAIT_COMMIT or REBOOT; a negative code with outcome FAILED and err filled otherwise.
 * outcome is always written. */
int molt_machine_install(molt_machine *m, const char *source, molt_outcome *outcome,
                         molt_err *err);

/* Commit the deployment awaiting commit (after a pending reboot, the reboot is verified first).
 * NOTHING (and MOLT_ESTATE) when no deployment is in progress; an interrupted deployment is
 * refused with a hint to run resume. */
int molt_machine_commit(molt_machine *m, molt_outcome *outcome, molt_err *err);

/* Roll back the deployment awaiting commit or a reboot; DONE when the rollback succeeded,
 * REBOOT when the module asks for a reboot to finish it. */
int molt_machine_rollback(molt_machine *m, molt_outcome *outcome, molt_err *err);

/* Continue the deployment in progress after a reboot or a power cut, on the path docs/reference
 * §2.8 defines for the state it was in. A deployment awaiting commit is committed. */
int molt_machine_resume(molt_machine *m, molt_outcome *outcome, molt_err *err);

/* The status document of `molt status --json`:
 * {"state": "idle"|"awaiting-commit"|"awaiting-reboot"|<state name>, "artifact_name",
 *  "deployment": {"id","artifact_name","payload_type","started","state","progress":{"bytes",
 *  "total"}} (or null), "last_error" (or null), "last_deployment": {"id", "artifact_name",
 *  "result": "success"|"failure"|"rolled-back", "rolled_back", "finished"} (or null),
 *  "log": [the last entries]}.
 * *ret is a new reference owned by the caller. */
int molt_machine_status(molt_machine *m, json_t **ret, molt_err *err);

/* The device's provides (artifact_name, artifact_group, type-info provides) as an object;
 * new reference owned by the caller. */
int molt_machine_provides(molt_machine *m, json_t **ret, molt_err *err);

/* The typed record, borrowed from m (valid until the next call that changes it): the deployment
 * in progress (NULL when none), the last deployment that ended (NULL when none), the installed
 * artifact's name (MOLT_UNKNOWN_ARTIFACT on a fresh device). */
const molt_deployment *molt_machine_deployment(const molt_machine *m);
const molt_last_deployment *molt_machine_last(const molt_machine *m);
const char *molt_machine_artifact_name(const molt_machine *m);

/* The final status for a server of deployment id: NULL while a deployment is in progress
 * (waiting for a reboot), molt_result_server_status of the last deployment when it is id, and
 * "failure" otherwise (it never started: refused before its record existed). Static string. */
const char *molt_machine_final(const molt_machine *m, const char *id);

/* What Cleanup does to the store when a deployment ends (docs/reference §2.10). */
typedef enum molt_provides_action {
    MOLT_PROVIDES_COMMIT,        /* the artifact's provides replace the device's */
    MOLT_PROVIDES_KEEP,          /* the old software is back: provides untouched */
    MOLT_PROVIDES_INCONSISTENT,  /* only the name, with _INCONSISTENT, and the group */
} molt_provides_action;

typedef struct molt_cleanup_decision {
    bool failed;                   /* outcome FAILED; the first error becomes last_error */
    molt_result result;            /* last_deployment.result */
    bool rolled_back;              /* last_deployment.rolled_back */
    molt_provides_action provides;
} molt_cleanup_decision;

/* The decision from the deployment record's four flags (molt_deployment: failed, rolled_back,
 * rollback_failed, user_rollback). Pure. */
molt_cleanup_decision molt_cleanup_decide(bool failed, bool rolled_back, bool rollback_failed,
                                          bool user_rollback);

#endif
