/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent update state machine, standalone mode (docs/reference §2.8, §2.9, §2.10): drives
 * an update module through Download, ArtifactInstall, the reboot states, ArtifactCommit and every
 * failure path, recording each state in the store before its work begins.
 *
 * The store (<data_dir>/store, one JSON document, see state/store.h) holds:
 *   "artifact_name"      the installed artifact (absent on a fresh device: "unknown")
 *   "artifact_group"     its group (absent when none)
 *   "artifact_provides"  object: the type-info provides of the installed artifacts (docs/reference §2.10)
 *   "last_error"         the error of the last failed command or deployment (absent after success)
 *   "last_deployment"    {"id","artifact_name","result","rolled_back","finished"}: result
 *                        "success" (committed), "rolled-back" (`molt rollback` finished) or
 *                        "failure"; rolled_back: the device is on the software it had before
 *   "deployment"         only while a deployment is in progress:
 *     "id"               UUID-like id (also the deployment log's id)
 *     "started"          RFC 3339 UTC time
 *     "source"           the file or URL it was installed from
 *     "state"            the state whose work started last: Download, ArtifactInstall,
 *                        ArtifactReboot, ArtifactVerifyReboot, ArtifactCommit,
 *                        ArtifactCommit_Leave, ArtifactRollback, ArtifactRollbackReboot,
 *                        ArtifactVerifyRollbackReboot, ArtifactFailure, Cleanup
 *     "pending"          null while molt works; "commit" (installed, waiting for commit or
 *                        rollback), "reboot" or "rollback-reboot" (waiting for a reboot and
 *                        `molt resume`) when molt stopped on purpose; "rollback" (state
 *                        ArtifactRollback) when the rollback failed with MOLT_ETEMP and waits
 *                        to be retried by `molt resume`, `molt rollback` or the daemon
 *     "rollback_retries" how often the rollback could not run yet; "rollback_error" the last why
 *     "state_count"      how many states were entered (the loop guard, max_state_loops)
 *     "artifact"         {"name","group","payload_type","provides","clears","depends",
 *                        "type_info","header_info","meta_data"}: the header data needed to
 *                        finish the deployment after a restart
 *     "module"           {"type","path","tree"}
 *     "reboot"           NeedsArtifactReboot answer: "no"|"yes"|"automatic" (absent until asked)
 *     "rollback"         SupportsRollback answer: "yes"|"no" (absent until asked)
 *     "rollback_reboot"  NeedsArtifactReboot answer on the rollback path
 *     "failed"           the deployment failed (a failure outcome)
 *     "rolled_back"      the old software is back (or was never replaced): provides untouched
 *     "rollback_failed"  something on the rollback/failure path failed: name gets _INCONSISTENT
 *     "user_rollback"    the rollback was asked for by `molt rollback`
 *     "error"            the first error of the deployment
 * A crash at any instant leaves "state" naming the state that was running; resume_step() maps
 * it to the path of docs/reference §2.8. */
#include "state/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "artifact/reader.h"
#include "host/exec_host.h"
#include "host/module.h"
#include "util/proc.h"
#include "host/registry.h"
#include "state/deplog.h"
#include "state/provides.h"
#include "state/scripts.h"
#include "state/store.h"
#include "transport/http_source.h"
#include "util/fs.h"
#include "util/log.h"

/* The steps of the machine. Each one that does work is recorded (state_name) first. */
typedef enum step {
    S_DOWNLOAD,
    S_INSTALL,
    S_REBOOT,
    S_VERIFY_REBOOT,
    S_AFTER_INSTALL,          /* decide: await commit or commit now (not recorded) */
    S_COMMIT,
    S_COMMIT_LEAVE,
    S_ROLLBACK_QUERY,         /* SupportsRollback under the failing state (not recorded) */
    S_ROLLBACK,
    S_ROLLBACK_REBOOT,
    S_VERIFY_ROLLBACK_REBOOT,
    S_FAILURE,
    S_CLEANUP,
    S_END,                    /* the deployment is over (store updated by cleanup) */
    S_STOP,                   /* molt stops on purpose; outcome set */
    S_ABORT,                  /* the store cannot be written: stop where we are */
} step;

struct molt_machine {
    const molt_config *cfg;
    char *store_path;
    char *tree_dir;
    char *scripts_dir;
    char *logs_dir;
    char *progress_path;
    char *lock_path;
    char *running_path;        /* <data_dir>/running: the owner token while the lock is held */
    bool running_written;      /* this run wrote it (and removes it at a normal end) */
    json_t *store;             /* the whole document */
    json_t *dep;               /* borrowed from store: "deployment", or NULL */
    molt_module *mod;
    molt_scripts_opts sopts;
    molt_progress_fn progress;
    void *progress_ctx;
    molt_state_hook_fn hook;   /* the daemon's status reporter, or NULL */
    void *hook_ctx;
    char *next_id;             /* molt_machine_set_deployment_id, or NULL */
    int lock_fd;
    molt_err first;            /* the first error of this run */
    molt_err pending_err;      /* why the run stopped with the rollback pending */
    molt_outcome stop_outcome; /* for S_STOP */
    struct timespec last_progress;
    bool log_open;
    bool reboot_again;         /* redo the rollback reboot after a failed verify */
    bool allow_downgrade;      /* molt_machine_set_allow_downgrade */
    char *expect_name;         /* molt_machine_set_expected, or NULL */
    json_t *expect_types;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *dep_str(const molt_machine *m, const char *key)
{
    return json_string_value(json_object_get(m->dep, key));
}

static bool dep_bool(const molt_machine *m, const char *key)
{
    return json_is_true(json_object_get(m->dep, key));
}

static void dep_set_bool(molt_machine *m, const char *key, bool value)
{
    json_object_set_new(m->dep, key, json_boolean(value));
}

static void dep_set_str(molt_machine *m, const char *key, const char *value)
{
    json_object_set_new(m->dep, key, value ? json_string(value) : json_null());
}

static const json_t *art_get(const molt_machine *m, const char *key)
{
    return json_object_get(json_object_get(m->dep, "artifact"), key);
}

static void now_rfc3339(char *buf, size_t size)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A random version 4 UUID. */
static int make_uuid(char out[37], molt_err *err)
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return molt_err_errno(err, MOLT_EIO, errno, "cannot get random bytes for an id");
        }
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return 0;
}

/* The prefix "what: " for msg, or "" when msg already starts with it: one prefix per layer (the
 * hosts name the call, which is the state's name, in their messages). */
static const char *prefix_for(const char *what, const char *msg, char *buf, size_t size)
{
    size_t wl = strlen(what);
    if (strncmp(msg, what, wl) == 0 && strncmp(msg + wl, ": ", 2) == 0)
        return "";
    snprintf(buf, size, "%s: ", what);
    return buf;
}

/* Keep the first error of the run; later ones are logged only. */
static void note_error(molt_machine *m, const molt_err *e, const char *what)
{
    const char *msg = e && e->msg[0] ? e->msg : molt_strerror(e ? e->code : MOLT_EIO);
    char pbuf[96];
    const char *prefix = prefix_for(what, msg, pbuf, sizeof pbuf);
    molt_log_error("%s%s", prefix, msg);
    if (m->first.code == 0) {
        molt_err_set(&m->first, e && e->code ? e->code : MOLT_EMODULE, "%s%s", prefix, msg);
        if (m->dep && !dep_str(m, "error"))
            dep_set_str(m, "error", m->first.msg);
    }
}

/* ---- the store -------------------------------------------------------------------------- */

static int save_store(molt_machine *m, molt_err *err)
{
    return molt_store_save(m->store_path, m->store, err);
}

/* Record that state's work begins (pending cleared). Past max_state_loops the loop guard trips:
 * MOLT_ELIMIT. */
static int enter_state(molt_machine *m, const char *state, molt_err *err)
{
    json_int_t count = json_integer_value(json_object_get(m->dep, "state_count")) + 1;
    int max = m->cfg->max_state_loops > 0 ? m->cfg->max_state_loops : 28;
    if (count > max)
        return molt_err_set(err, MOLT_ELIMIT,
                            "state loop detected: entering %s would be state %lld of this "
                            "deployment (max_state_loops %d)", state, (long long)count, max);
    json_object_set_new(m->dep, "state_count", json_integer(count));
    dep_set_str(m, "state", state);
    json_object_set_new(m->dep, "pending", json_null());
    molt_log_info("entering state %s", state);
    return save_store(m, err);
}

/* ---- the module and scripts ------------------------------------------------------------- */

static int get_module(molt_machine *m, molt_err *err)
{
    if (m->mod)
        return 0;
    const json_t *mod = json_object_get(m->dep, "module");
    const char *path = json_string_value(json_object_get(mod, "path"));
    const char *type = json_string_value(json_object_get(mod, "type"));
    if (!path || !type)
        return molt_err_set(err, MOLT_ECORRUPT, "store: deployment has no module path/type");
    return molt_registry_module_new(m->cfg, &m->mod, path, type, m->tree_dir,
                                    json_object_get(m->dep, "artifact"), err);
}

static int module_call(molt_machine *m, molt_call call, molt_err *err)
{
    int r = get_module(m, err);
    if (r < 0)
        return r;
    molt_log_info("calling module %s %s", m->mod->name, molt_call_name(call));
    return m->mod->ops->call(m->mod, call, err);
}

static int module_query(molt_machine *m, molt_call call, molt_answer *ret, molt_err *err)
{
    int r = get_module(m, err);
    if (r < 0)
        return r;
    r = m->mod->ops->query(m->mod, call, ret, err);
    if (r == 0)
        molt_log_info("module %s %s: %s", m->mod->name, molt_call_name(call),
                      *ret == MOLT_ANSWER_YES ? "Yes" : *ret == MOLT_ANSWER_AUTOMATIC ? "Automatic"
                                                                                    : "No");
    return r;
}

static int scripts(molt_machine *m, const char *state, const char *action, molt_err *err)
{
    return molt_scripts_run(&m->sopts, state, action, err);
}

/* Run the <state>_Error scripts; their failures never change the path. */
static void error_scripts(molt_machine *m, const char *state)
{
    molt_err e = {0};
    if (scripts(m, state, "Error", &e) < 0)
        molt_log_warning("%s_Error scripts: %s (ignored)", state, e.msg);
}

static const char *answer_word(molt_answer a)
{
    return a == MOLT_ANSWER_YES ? "yes" : a == MOLT_ANSWER_AUTOMATIC ? "automatic" : "no";
}

/* The daemon's hook before state (molt_machine_set_state_hook); 0 without one. */
static int hook(molt_machine *m, const char *state, molt_err *err)
{
    return m->hook ? m->hook(m->hook_ctx, state, err) : 0;
}

/* The hook said MOLT_HOOK_STOP (the daemon is stopping): nothing more is recorded, the store
 * names the step a resume takes, as after a power cut at this point. */
static step hook_stop(molt_machine *m, const char *state)
{
    molt_err_set(&m->pending_err, MOLT_ECANCELED,
                 "stopped before %s: the deployment stays recorded", state);
    m->stop_outcome = MOLT_OUTCOME_FAILED;
    return S_STOP;
}

/* ---- the states ------------------------------------------------------------------------- */

/* A failure in ArtifactInstall, ArtifactReboot or ArtifactCommit (docs/reference §2.8): record it,
 * run the state's Error scripts, then consider a rollback. */
static step fail_stage(molt_machine *m, const char *state, const molt_err *e, molt_err *err)
{
    note_error(m, e, state);
    dep_set_bool(m, "failed", true);
    if (save_store(m, err) < 0)
        return S_ABORT;
    error_scripts(m, state);
    return S_ROLLBACK_QUERY;
}

/* A rollback-path failure: does not change the path, but the device is inconsistent. */
static void rollback_trouble(molt_machine *m, const molt_err *e, const char *what)
{
    note_error(m, e, what);
    dep_set_bool(m, "failed", true);
    dep_set_bool(m, "rollback_failed", true);
}

static step st_install(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    molt_answer reboot, rollback;
    int h = hook(m, "ArtifactInstall", &e);
    if (h > 0)
        return hook_stop(m, "ArtifactInstall");
    if (h < 0) {
        /* Nothing is installed yet: like a download failure, straight to Cleanup. */
        note_error(m, &e, "ArtifactInstall");
        dep_set_bool(m, "failed", true);
        dep_set_bool(m, "rolled_back", true);
        return save_store(m, err) < 0 ? S_ABORT : S_CLEANUP;
    }
    if (enter_state(m, "ArtifactInstall", err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactInstall", "Enter", &e) < 0 ||
        module_call(m, MOLT_CALL_ARTIFACT_INSTALL, &e) < 0 ||
        scripts(m, "ArtifactInstall", "Leave", &e) < 0 ||
        module_query(m, MOLT_CALL_NEEDS_ARTIFACT_REBOOT, &reboot, &e) < 0 ||
        module_query(m, MOLT_CALL_SUPPORTS_ROLLBACK, &rollback, &e) < 0)
        return fail_stage(m, "ArtifactInstall", &e, err);
    dep_set_str(m, "reboot", answer_word(reboot));
    dep_set_str(m, "rollback", answer_word(rollback));
    /* Not saved here: the next step saves them before any work (stop "commit", or entering
     * ArtifactCommit or ArtifactReboot), and resuming state ArtifactInstall takes the rollback
     * path with or without them: one write for the transition (docs/performance.md). */
    return reboot == MOLT_ANSWER_NO ? S_AFTER_INSTALL : S_REBOOT;
}

static step stop(molt_machine *m, const char *pending, molt_outcome outcome, molt_err *err)
{
    dep_set_str(m, "pending", pending);
    if (save_store(m, err) < 0)
        return S_ABORT;
    m->stop_outcome = outcome;
    return S_STOP;
}

static step st_reboot(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    int h = hook(m, "ArtifactReboot", &e);
    if (h > 0)
        return hook_stop(m, "ArtifactReboot");
    if (h < 0)
        return fail_stage(m, "ArtifactReboot", &e, err);
    if (enter_state(m, "ArtifactReboot", err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactReboot", "Enter", &e) < 0)
        return fail_stage(m, "ArtifactReboot", &e, err);
    const char *answer = dep_str(m, "reboot");
    if (answer && strcmp(answer, "yes") == 0) {
        /* "Yes": the module reboots what it updated itself (a peripheral, or the host: then
         * `molt resume` finds state ArtifactReboot and verifies). */
        if (module_call(m, MOLT_CALL_ARTIFACT_REBOOT, &e) < 0)
            return fail_stage(m, "ArtifactReboot", &e, err);
        return S_VERIFY_REBOOT;
    }
    /* "Automatic": the host must reboot; molt does not reboot a device on its own in
     * standalone mode, the user does, then runs `molt resume`. */
    molt_log_info("reboot required: reboot the device, then run `molt resume`");
    return stop(m, "reboot", MOLT_OUTCOME_REBOOT, err);
}

static step st_verify_reboot(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, "ArtifactVerifyReboot", err) < 0)
        return S_ABORT;
    if (module_call(m, MOLT_CALL_ARTIFACT_VERIFY_REBOOT, &e) < 0 ||
        scripts(m, "ArtifactReboot", "Leave", &e) < 0)
        return fail_stage(m, "ArtifactReboot", &e, err);
    return S_AFTER_INSTALL;
}

static step st_after_install(molt_machine *m, molt_err *err)
{
    const char *rollback = dep_str(m, "rollback");
    if (rollback && strcmp(rollback, "yes") == 0) {
        /* Recorded as ArtifactCommit with pending "commit": the commit has not started. */
        dep_set_str(m, "state", "ArtifactCommit");
        return stop(m, "commit", MOLT_OUTCOME_AWAIT_COMMIT, err);
    }
    molt_log_info("the module does not support rollback: committing now");
    return S_COMMIT;
}

static step st_commit(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    int h = hook(m, "ArtifactCommit", &e);
    if (h > 0)
        return hook_stop(m, "ArtifactCommit");
    if (h < 0)
        return fail_stage(m, "ArtifactCommit", &e, err);
    if (enter_state(m, "ArtifactCommit", err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactCommit", "Enter", &e) < 0 ||
        module_call(m, MOLT_CALL_ARTIFACT_COMMIT, &e) < 0)
        return fail_stage(m, "ArtifactCommit", &e, err);
    return S_COMMIT_LEAVE;
}

static step st_commit_leave(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    /* Without Leave scripts this state has no work: Cleanup's record is the point of no return
     * (one store write for the transition; docs/performance.md, "fsyncs per install"). */
    if (molt_scripts_none(&m->sopts, "ArtifactCommit", "Leave"))
        return S_CLEANUP;
    if (enter_state(m, "ArtifactCommit_Leave", err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactCommit", "Leave", &e) < 0) {
        /* After the commit there is no way back: the name gets _INCONSISTENT. */
        note_error(m, &e, "ArtifactCommit_Leave");
        dep_set_bool(m, "failed", true);
        if (save_store(m, err) < 0)
            return S_ABORT;
        error_scripts(m, "ArtifactCommit");
    }
    return S_CLEANUP;
}

static step st_rollback_query(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    molt_answer a;
    if (module_query(m, MOLT_CALL_SUPPORTS_ROLLBACK, &a, &e) < 0) {
        rollback_trouble(m, &e, "SupportsRollback");
        return S_FAILURE;
    }
    dep_set_str(m, "rollback", answer_word(a));
    if (a == MOLT_ANSWER_YES)
        return S_ROLLBACK;
    if (dep_bool(m, "user_rollback") && !dep_bool(m, "failed")) {
        /* Asked for by the user, but impossible: leave the deployment as it was. */
        json_object_del(m->dep, "user_rollback");
        molt_err_set(&m->first, MOLT_EUNSUPPORTED,
                     "the update module %s does not support rollback",
                     json_string_value(json_object_get(json_object_get(m->dep, "module"),
                                                       "type")));
        m->stop_outcome = MOLT_OUTCOME_FAILED;
        return S_STOP;
    }
    return S_FAILURE;
}

/* The rollback cannot run yet (MOLT_ETEMP: the engine or a lock is unavailable, a timeout):
 * the deployment stays recorded in ArtifactRollback with pending "rollback", nothing is
 * cleaned up (the module keeps its record of what to restore), and `molt resume`, `molt
 * rollback` or the daemon retries it. */
static step rollback_pending(molt_machine *m, const molt_err *e, molt_err *err)
{
    json_int_t tries = json_integer_value(json_object_get(m->dep, "rollback_retries")) + 1;
    json_object_set_new(m->dep, "rollback_retries", json_integer(tries));
    dep_set_str(m, "rollback_error", e->msg);
    molt_log_warning("ArtifactRollback cannot run yet (attempt %lld): %s", (long long)tries,
                     e->msg);
    molt_log_warning("the rollback stays pending: run `molt resume` once the cause has passed "
                     "(the daemon retries on its own)");
    step s = stop(m, "rollback", MOLT_OUTCOME_FAILED, err);
    if (s == S_STOP)
        molt_err_set(&m->pending_err, MOLT_ETEMP,
                     "rollback pending (attempt %lld): %s; the deployment stays recorded: run "
                     "`molt resume` once the cause has passed", (long long)tries, e->msg);
    return s;
}

static step st_rollback(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    molt_answer reboot = MOLT_ANSWER_NO;
    const char *pending = dep_str(m, "pending");
    if (pending && strcmp(pending, "rollback") == 0) {
        /* A retry of a pending rollback is not a loop: it does not count for the guard. */
        json_int_t count = json_integer_value(json_object_get(m->dep, "state_count"));
        json_object_set_new(m->dep, "state_count", json_integer(count > 0 ? count - 1 : 0));
        molt_log_info("retrying the pending rollback (it failed before with: %s)",
                      dep_str(m, "rollback_error") ? dep_str(m, "rollback_error") : "?");
    }
    if (enter_state(m, "ArtifactRollback", err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactRollback", "Enter", &e) < 0)
        rollback_trouble(m, &e, "ArtifactRollback_Enter");
    int rc = module_call(m, MOLT_CALL_ARTIFACT_ROLLBACK, &e);
    if (rc == MOLT_ETEMP)
        return rollback_pending(m, &e, err);
    bool ok = rc == 0;
    if (ok)
        dep_set_bool(m, "rolled_back", true);
    else
        rollback_trouble(m, &e, "ArtifactRollback");
    if (scripts(m, "ArtifactRollback", "Leave", &e) < 0)
        rollback_trouble(m, &e, "ArtifactRollback_Leave");
    if (!ok)
        return S_FAILURE;
    /* docs/reference §2.8: NeedsArtifactReboot is asked again to decide ArtifactRollbackReboot. */
    if (module_query(m, MOLT_CALL_NEEDS_ARTIFACT_REBOOT, &reboot, &e) < 0) {
        rollback_trouble(m, &e, "NeedsArtifactReboot");
        return S_FAILURE;
    }
    dep_set_str(m, "rollback_reboot", answer_word(reboot));
    return reboot == MOLT_ANSWER_NO ? S_FAILURE : S_ROLLBACK_REBOOT;
}

static step st_rollback_reboot(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, "ArtifactRollbackReboot", err) < 0)
        return S_ABORT;
    /* After a failed verify the reboot is redone, its Enter scripts are not. */
    if (!m->reboot_again && scripts(m, "ArtifactRollbackReboot", "Enter", &e) < 0) {
        rollback_trouble(m, &e, "ArtifactRollbackReboot_Enter");
        error_scripts(m, "ArtifactRollbackReboot");
    }
    m->reboot_again = false;
    const char *answer = dep_str(m, "rollback_reboot");
    if (answer && strcmp(answer, "yes") == 0) {
        /* Errors of the rollback reboot itself are ignored: the verify state decides. */
        if (module_call(m, MOLT_CALL_ARTIFACT_ROLLBACK_REBOOT, &e) < 0)
            molt_log_warning("ArtifactRollbackReboot: %s (ignored)", e.msg);
        return S_VERIFY_ROLLBACK_REBOOT;
    }
    molt_log_info("reboot required to finish the rollback: reboot, then run `molt resume`");
    return stop(m, "rollback-reboot", MOLT_OUTCOME_REBOOT, err);
}

static step st_verify_rollback_reboot(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, "ArtifactVerifyRollbackReboot", err) < 0)
        return S_ABORT;
    if (module_call(m, MOLT_CALL_ARTIFACT_VERIFY_ROLLBACK_REBOOT, &e) < 0) {
        /* Back to the rollback reboot; the loop guard bounds this. */
        molt_log_error("ArtifactVerifyRollbackReboot: %s: rebooting again", e.msg);
        m->reboot_again = true;
        return S_ROLLBACK_REBOOT;
    }
    if (scripts(m, "ArtifactRollbackReboot", "Leave", &e) < 0) {
        rollback_trouble(m, &e, "ArtifactRollbackReboot_Leave");
        error_scripts(m, "ArtifactRollbackReboot");
    }
    return S_FAILURE;
}

static step st_failure(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, "ArtifactFailure", err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactFailure", "Enter", &e) < 0)
        rollback_trouble(m, &e, "ArtifactFailure_Enter");
    if (module_call(m, MOLT_CALL_ARTIFACT_FAILURE, &e) < 0)
        rollback_trouble(m, &e, "ArtifactFailure");
    if (scripts(m, "ArtifactFailure", "Leave", &e) < 0)
        rollback_trouble(m, &e, "ArtifactFailure_Leave");
    return S_CLEANUP;
}

/* The provides of the deployment's artifact, for molt_provides_commit. */
static void art_provides(const molt_machine *m, molt_provides_new *out)
{
    out->name = json_string_value(art_get(m, "name"));
    out->group = json_string_value(art_get(m, "group"));
    out->provides = json_is_object(art_get(m, "provides")) ? art_get(m, "provides") : NULL;
    out->clears = json_is_array(art_get(m, "clears")) ? art_get(m, "clears") : NULL;
}

/* End the deployment in the store: provides (docs/reference §2.10), last_deployment, no "deployment".
 * keep_provides: the old software is back, nothing changes; inconsistent: only the name (with
 * _INCONSISTENT) and group are written; else the artifact's provides are committed. */
static int finish_deployment(molt_machine *m, bool failed, bool keep_provides, bool inconsistent,
                             molt_err *err)
{
    char now[32];
    molt_err e = {0};
    now_rfc3339(now, sizeof now);
    molt_provides_new art;
    art_provides(m, &art);
    if (keep_provides) {
        /* nothing */
    } else if (inconsistent) {
        if (molt_provides_inconsistent(m->store, art.name, art.group, &e) < 0)
            note_error(m, &e, "saving provides");
    } else if (molt_provides_commit(m->store, &art, &e) < 0) {
        note_error(m, &e, "saving provides");
    }
    const char *result = failed                           ? "failure"
                         : dep_bool(m, "user_rollback") ? "rolled-back"
                                                        : "success";
    json_t *last = json_pack("{s:s?, s:s?, s:s, s:b, s:s}", "id", dep_str(m, "id"),
                             "artifact_name", art.name, "result", result, "rolled_back",
                             keep_provides, "finished", now);
    if (last)
        json_object_set_new(m->store, "last_deployment", last);
    if (failed && m->first.code)
        json_object_set_new(m->store, "last_error", json_string(m->first.msg));
    else
        json_object_del(m->store, "last_error");
    json_object_del(m->store, "deployment");
    m->dep = NULL;
    return save_store(m, err);
}

static step st_cleanup(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, "Cleanup", err) < 0)
        return S_ABORT;
    /* Cleanup runs when the module was instantiated, i.e. its tree exists (docs/reference §2.8). */
    if (molt_path_exists(m->tree_dir) && module_call(m, MOLT_CALL_CLEANUP, &e) < 0) {
        note_error(m, &e, "Cleanup");
        dep_set_bool(m, "failed", true);
    }
    bool failed = dep_bool(m, "failed") || dep_bool(m, "rollback_failed");
    bool keep = dep_bool(m, "rolled_back") && !dep_bool(m, "rollback_failed");
    bool user_rollback = dep_bool(m, "user_rollback") && !failed;
    if (finish_deployment(m, failed, keep, failed, err) < 0)
        return S_ABORT;
    if (molt_rm_rf(m->tree_dir, &e) < 0)
        molt_log_warning("removing the module tree: %s", e.msg);
    molt_log_info("deployment finished: %s",
                  failed ? "failure" : user_rollback ? "rolled back" : "success");
    m->stop_outcome = failed ? MOLT_OUTCOME_FAILED : MOLT_OUTCOME_DONE;
    return S_END;
}

/* The loop guard tripped: the deployment ends inconsistent, without more module calls that
 * could loop again, except one best-effort Cleanup after the store says it is over. */
static void loop_guard(molt_machine *m, const molt_err *e)
{
    molt_err e2 = {0};
    note_error(m, e, "loop guard");
    dep_set_bool(m, "failed", true);
    /* The module handle needs the record, which finish_deployment removes. */
    int have_module = get_module(m, &e2);
    if (finish_deployment(m, true, false, true, &e2) < 0) {
        molt_log_error("saving the store: %s", e2.msg);
        return;
    }
    if (molt_path_exists(m->tree_dir) &&
        (have_module < 0 || m->mod->ops->call(m->mod, MOLT_CALL_CLEANUP, &e2) < 0))
        molt_log_warning("Cleanup: %s", e2.msg);
    molt_rm_rf(m->tree_dir, NULL);
}

/* Drive the machine from step s until it stops. */
static int run(molt_machine *m, step s, molt_outcome *outcome, molt_err *err)
{
    molt_err serr = {0};
    while (s != S_END && s != S_STOP && s != S_ABORT) {
        switch (s) {
        case S_DOWNLOAD: s = S_ABORT; break; /* handled by install */
        case S_INSTALL: s = st_install(m, &serr); break;
        case S_REBOOT: s = st_reboot(m, &serr); break;
        case S_VERIFY_REBOOT: s = st_verify_reboot(m, &serr); break;
        case S_AFTER_INSTALL: s = st_after_install(m, &serr); break;
        case S_COMMIT: s = st_commit(m, &serr); break;
        case S_COMMIT_LEAVE: s = st_commit_leave(m, &serr); break;
        case S_ROLLBACK_QUERY: s = st_rollback_query(m, &serr); break;
        case S_ROLLBACK: s = st_rollback(m, &serr); break;
        case S_ROLLBACK_REBOOT: s = st_rollback_reboot(m, &serr); break;
        case S_VERIFY_ROLLBACK_REBOOT: s = st_verify_rollback_reboot(m, &serr); break;
        case S_FAILURE: s = st_failure(m, &serr); break;
        case S_CLEANUP: s = st_cleanup(m, &serr); break;
        default: s = S_ABORT; break;
        }
    }
    if (s == S_ABORT) {
        if (serr.code == MOLT_ELIMIT && m->dep) {
            loop_guard(m, &serr);
        } else {
            note_error(m, &serr, "saving the state");
        }
        *outcome = MOLT_OUTCOME_FAILED;
    } else {
        *outcome = m->stop_outcome;
    }
    if (*outcome == MOLT_OUTCOME_FAILED && m->pending_err.code) {
        molt_err_set(err, m->pending_err.code, "%s", m->pending_err.msg);
        return m->pending_err.code;
    }
    if (*outcome == MOLT_OUTCOME_FAILED) {
        if (m->first.code == 0)
            molt_err_set(&m->first, MOLT_EMODULE, "the deployment failed");
        molt_err_set(err, m->first.code, "%s", m->first.msg);
        return m->first.code;
    }
    return 0;
}

/* ---- opening ---------------------------------------------------------------------------- */

int molt_machine_open(molt_machine **ret, const molt_config *cfg, molt_err *err)
{
    molt_machine *m = calloc(1, sizeof *m);
    if (!m)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int r = MOLT_ENOMEM;
    m->cfg = cfg;
    m->lock_fd = -1;
    m->store_path = molt_path_join(cfg->data_dir, "store");
    m->tree_dir = molt_path_join(cfg->data_dir, "modules/v3/payloads/0000/tree");
    m->scripts_dir = molt_path_join(cfg->data_dir, "scripts");
    m->logs_dir = molt_path_join(cfg->data_dir, MOLT_DEPLOG_DIR);
    m->progress_path = molt_path_join(cfg->data_dir, "progress.json");
    m->lock_path = molt_path_join(cfg->data_dir, "lock");
    m->running_path = molt_path_join(cfg->data_dir, "running");
    if (!m->store_path || !m->tree_dir || !m->scripts_dir || !m->logs_dir || !m->progress_path ||
        !m->lock_path || !m->running_path) {
        molt_err_set(err, r, "out of memory");
        goto fail;
    }
    m->sopts.rootfs_dir = cfg->scripts_dir;
    m->sopts.artifact_dir = m->scripts_dir;
    m->sopts.timeout = cfg->script_timeout;
    m->sopts.retry_interval = cfg->script_retry_interval;
    m->sopts.retry_timeout = cfg->script_retry_timeout;
    r = molt_store_load(m->store_path, &m->store, err);
    if (r < 0)
        goto fail;
    if (!json_is_object(m->store)) {
        r = molt_err_set(err, MOLT_ECORRUPT, "store %s: not a JSON object", m->store_path);
        goto fail;
    }
    m->dep = json_object_get(m->store, "deployment");
    if (m->dep && !json_is_object(m->dep)) {
        r = molt_err_set(err, MOLT_ECORRUPT, "store %s: \"deployment\" is not an object",
                         m->store_path);
        goto fail;
    }
    *ret = m;
    return 0;
fail:
    molt_machine_free(m);
    return r;
}

void molt_machine_free(molt_machine *m)
{
    if (!m)
        return;
    if (m->mod && m->mod->ops->free)
        m->mod->ops->free(m->mod);
    if (m->log_open)
        molt_log_open_deployment(NULL, NULL);
    if (m->lock_fd >= 0) {
        /* A normal end: what this run's modules left running on purpose stays (see take_lock). */
        if (m->running_written && unlink(m->running_path) != 0 && errno != ENOENT)
            molt_log_warning("cannot remove %s: %s", m->running_path, strerror(errno));
        close(m->lock_fd);
    }
    json_decref(m->store);
    free(m->store_path);
    free(m->tree_dir);
    free(m->scripts_dir);
    free(m->logs_dir);
    free(m->progress_path);
    free(m->lock_path);
    free(m->running_path);
    free(m->next_id);
    free(m->expect_name);
    json_decref(m->expect_types);
    free(m);
}

void molt_machine_set_state_hook(molt_machine *m, molt_state_hook_fn fn, void *ctx)
{
    m->hook = fn;
    m->hook_ctx = ctx;
}

int molt_machine_set_deployment_id(molt_machine *m, const char *id, molt_err *err)
{
    int r = molt_deplog_check_id(id, err);
    if (r < 0)
        return r;
    char *copy = strdup(id);
    if (!copy)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    free(m->next_id);
    m->next_id = copy;
    return 0;
}

int molt_machine_set_expected(molt_machine *m, const char *artifact_name,
                              const json_t *device_types, molt_err *err)
{
    char *copy = artifact_name ? strdup(artifact_name) : NULL;
    if (artifact_name && !copy)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    free(m->expect_name);
    m->expect_name = copy;
    json_decref(m->expect_types);
    m->expect_types = json_is_array(device_types) ? json_incref((json_t *)device_types) : NULL;
    return 0;
}

void molt_machine_set_allow_downgrade(molt_machine *m, bool allow)
{
    m->allow_downgrade = allow;
}

/* What the deployment announced (molt_machine_set_expected) against the artifact and the
 * device, before anything runs: the artifact's name must be the one announced, and the device
 * one of the announced device types. */
static int check_expected(const molt_machine *m, const molt_artifact_info *info,
                          const char *device_type, molt_err *err)
{
    if (m->expect_name && strcmp(m->expect_name, info->name) != 0)
        return molt_err_set(err, MOLT_EDEPENDS,
                            "the deployment announced artifact '%s', but the downloaded "
                            "artifact is '%s': refused", m->expect_name, info->name);
    if (!m->expect_types)
        return 0;
    size_t i;
    json_t *t;
    json_array_foreach(m->expect_types, i, t)
        if (json_is_string(t) && strcmp(json_string_value(t), device_type) == 0)
            return 0;
    char *list = json_dumps(m->expect_types, JSON_COMPACT);
    int r = molt_err_set(err, MOLT_EDEPENDS,
                         "the deployment is for device types %s, this device is '%s': refused",
                         list ? list : "?", device_type);
    free(list);
    return r;
}

void molt_machine_set_progress(molt_machine *m, molt_progress_fn fn, void *ctx)
{
    m->progress = fn;
    m->progress_ctx = ctx;
}

/* Nothing a dead molt started may run beside this one (docs/cli.md "When molt is killed").
 * While a molt holds the lock, <data_dir>/running holds a token that its children inherit in
 * their environment (MOLT_OWNER); a normal end removes the file. Finding it with the lock taken
 * means the molt that wrote it died while working (kill -9, a crash, the OOM killer): every
 * process still carrying its token is ended before any module or script runs. Then this run
 * writes its own token. */
static int end_leftovers(molt_machine *m, molt_err *err)
{
    char *text = NULL, token[37];
    size_t len = 0;
    molt_err e = {0};
    int r = molt_read_file(m->running_path, 256, &text, &len, &e);
    if (r == 0) {
        text[strcspn(text, "\n")] = '\0';
        if (*text && strspn(text, "0123456789abcdef-") == strlen(text)) {
            r = molt_proc_end_owned(text, err);
            if (r > 0)
                molt_log_warning("ended %d process(es) left running by the molt that died "
                                 "while it worked on this device", r);
        } else {
            molt_log_warning("%s: not a token (ignored)", m->running_path);
        }
        free(text);
        if (r < 0)
            return r;
    } else if (r != MOLT_ENOTFOUND) {
        molt_log_warning("%s: %s (ignored)", m->running_path, e.msg);
    }
    if ((r = make_uuid(token, err)) < 0)
        return r;
    char line[40];
    int n = snprintf(line, sizeof line, "%s\n", token);
    if ((r = molt_write_file_atomic(m->running_path, line, (size_t)n, 0600, err)) < 0)
        return r;
    m->running_written = true;
    return molt_proc_set_owner(token, err);
}

/* One molt at a time changes the device. */
static int take_lock(molt_machine *m, molt_err *err)
{
    int r = molt_mkdir_p(m->cfg->data_dir, 0700, err);
    if (r < 0)
        return r;
    m->lock_fd = open(m->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m->lock_fd < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot open %s", m->lock_path);
    if (flock(m->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(m->lock_fd);
        m->lock_fd = -1;
        errno = e;
        if (errno == EWOULDBLOCK)
            return molt_err_set(err, MOLT_ESTATE,
                                "another molt is working on this device (lock %s is held)",
                                m->lock_path);
        return molt_err_errno(err, MOLT_EIO, errno, "cannot lock %s", m->lock_path);
    }
    return end_leftovers(m, err);
}

/* Open the deployment's log; a log that cannot be opened is worth a warning, not a failure. */
static void open_log(molt_machine *m)
{
    molt_err e = {0};
    const char *id = dep_str(m, "id");
    if (!id)
        return;
    if (molt_deplog_open(m->logs_dir, id, m->cfg->keep_logs > 0 ? m->cfg->keep_logs : 5, NULL,
                         &e) < 0) {
        molt_log_warning("deployment log: %s", e.msg);
        return;
    }
    m->log_open = true;
}

/* ---- install ---------------------------------------------------------------------------- */

typedef struct progress_source {
    molt_source base;
    molt_source *inner;
    molt_machine *m;
} progress_source;

static void write_progress(molt_machine *m, int64_t bytes, int64_t total, bool force)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - m->last_progress.tv_sec) * 1000 +
              (now.tv_nsec - m->last_progress.tv_nsec) / 1000000;
    if (!force && ms < 250)
        return;
    m->last_progress = now;
    /* Not durable on purpose: progress is a hint for `molt status`, not state. */
    char buf[160];
    int n = snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"bytes\":%lld,\"total\":%lld}\n",
                     m->dep && dep_str(m, "id") ? dep_str(m, "id") : "", (long long)bytes,
                     (long long)total);
    int fd = open(m->progress_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (n > 0)
            molt_write_all(fd, buf, (size_t)n, NULL, "progress");
        close(fd);
    }
}

static ssize_t progress_read(molt_source *src, const void **ret_buf, molt_err *err)
{
    progress_source *ps = (progress_source *)src;
    ssize_t n = molt_source_read(ps->inner, ret_buf, err);
    src->offset = ps->inner->offset;
    src->total = ps->inner->total;
    if (n >= 0) {
        if (ps->m->progress)
            ps->m->progress(ps->m->progress_ctx, src->offset, src->total);
        write_progress(ps->m, src->offset, src->total, n == 0);
    }
    return n;
}

static void progress_free(molt_source *src)
{
    progress_source *ps = (progress_source *)src;
    molt_source_free(ps->inner);
    free(ps);
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static int open_source(molt_machine *m, const char *source, molt_source **ret, molt_err *err)
{
    molt_source *inner = NULL;
    int r;
    if (is_url(source)) {
        molt_http_opts o = {
            .ca_file = m->cfg->ca_file,
            .proxy = m->cfg->proxy,
            .retry_count = m->cfg->retry_download_count,
            .retry_initial_interval = 1,
            .retry_max_interval = m->cfg->retry_max_interval,
            .connect_timeout = m->cfg->connect_timeout,
            .low_speed_time = m->cfg->low_speed_time,
        };
        r = molt_http_source_new(&inner, source, &o, err);
    } else {
        r = molt_source_file_new(&inner, source, err);
    }
    if (r < 0)
        return r;
    progress_source *ps = calloc(1, sizeof *ps);
    if (!ps) {
        molt_source_free(inner);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    ps->base.read = progress_read;
    ps->base.free = progress_free;
    ps->base.name = inner->name;
    ps->base.offset = inner->offset;
    ps->base.total = inner->total;
    ps->inner = inner;
    ps->m = m;
    *ret = &ps->base;
    return 0;
}

/* The deployment record for a new deployment of info, installed by module_path. */
static int new_deployment(molt_machine *m, const char *source, const molt_artifact_info *info,
                          const char *module_path, molt_err *err)
{
    char id[MOLT_DEPLOG_ID_MAX + 1], now[32];
    int r = 0;
    if (m->next_id)
        snprintf(id, sizeof id, "%s", m->next_id);
    else
        r = make_uuid(id, err);
    if (r < 0)
        return r;
    now_rfc3339(now, sizeof now);
    json_t *depends = json_pack("{s:O, s:O?, s:O?, s:O}", "device_type",
                                info->depends_device_types, "artifact_name", info->depends_names,
                                "artifact_group", info->depends_groups, "type_info",
                                info->type_depends);
    json_t *art = json_pack("{s:s, s:s?, s:s, s:O, s:O?, s:o?, s:O?, s:O?, s:O?}", "name",
                            info->name, "group", info->group, "payload_type", info->payload_type,
                            "provides", info->type_provides, "clears", info->clears, "depends",
                            depends, "type_info", info->type_info, "header_info",
                            info->header_info, "meta_data", info->meta_data);
    json_t *dep = art ? json_pack("{s:s, s:s, s:s, s:s, s:n, s:i, s:o, s:{s:s, s:s, s:s}, "
                                  "s:b, s:b, s:b, s:b}",
                                  "id", id, "started", now, "source", source, "state", "Download",
                                  "pending", "state_count", 1, "artifact", art, "module", "type",
                                  info->payload_type, "path", module_path, "tree", m->tree_dir,
                                  "failed", 0, "rolled_back", 0, "rollback_failed", 0,
                                  "user_rollback", 0)
                      : NULL;
    if (!dep)
        return molt_err_set(err, MOLT_ENOMEM, "cannot build the deployment record");
    json_object_set_new(m->store, "deployment", dep);
    m->dep = dep;
    return 0;
}

/* A failure before the deployment record exists: nothing changed on the device. */
static int refuse(molt_machine *m, molt_outcome *outcome, const molt_err *e, molt_err *err)
{
    molt_err se = {0};
    /* The caller reports e (the CLI prints it once); the store keeps it for `molt status`. */
    molt_log_debug("refused: %s", e->msg);
    json_object_set_new(m->store, "last_error", json_string(e->msg));
    if (save_store(m, &se) < 0)
        molt_log_warning("cannot record the error in the store: %s", se.msg);
    *outcome = MOLT_OUTCOME_FAILED;
    molt_err_set(err, e->code ? e->code : MOLT_EIO, "%s", e->msg);
    return err ? err->code : (e->code ? e->code : MOLT_EIO);
}

static step download(molt_machine *m, molt_artifact_reader *reader)
{
    molt_err e = {0}, te = {0};
    const char *cur_name = json_string_value(json_object_get(m->store, "artifact_name"));
    const char *cur_group = json_string_value(json_object_get(m->store, "artifact_group"));
    char *device_type = NULL;
    molt_config_device_type(m->cfg, &device_type, &te);
    molt_exec_tree_info ti = {
        .current_artifact_name = cur_name ? cur_name : "",
        .current_artifact_group = cur_group ? cur_group : "",
        .current_device_type = device_type ? device_type : "",
    };
    const char *module_path = json_string_value(json_object_get(json_object_get(m->dep, "module"),
                                                                "path"));
    int r = molt_registry_tree_create(m->cfg, module_path, m->tree_dir,
                                      molt_artifact_reader_info(reader), &ti, &e);
    free(device_type);
    if (r < 0 ||
        (r = scripts(m, "Download", "Enter", &e)) < 0 ||
        (r = get_module(m, &e)) < 0)
        goto fail;
    molt_log_info("calling module %s Download", m->mod->name);
    if ((r = m->mod->ops->download(m->mod, reader, &e)) < 0 ||
        (r = molt_artifact_reader_finish(reader, &e)) < 0 ||
        (r = scripts(m, "Download", "Leave", &e)) < 0)
        goto fail;
    return S_INSTALL;
fail:
    /* docs/reference §2.8: Download_Error, no rollback, no ArtifactFailure, Cleanup. */
    note_error(m, &e, "Download");
    dep_set_bool(m, "failed", true);
    dep_set_bool(m, "rolled_back", true);
    if (save_store(m, &e) < 0)
        return S_ABORT;
    error_scripts(m, "Download");
    return S_CLEANUP;
}

int molt_machine_install(molt_machine *m, const char *source, molt_outcome *outcome,
                         molt_err *err)
{
    molt_err e = {0};
    molt_source *src = NULL;
    molt_artifact_reader *reader = NULL;
    json_t *provides = NULL;
    char *device_type = NULL, *module_path = NULL;
    int r;

    *outcome = MOLT_OUTCOME_FAILED;
    if ((r = take_lock(m, err)) < 0)
        return r;
    if (m->dep) {
        const char *pending = dep_str(m, "pending");
        return molt_err_set(err, MOLT_ESTATE,
                            "a deployment of %s is in progress (state %s%s%s): %s first",
                            json_string_value(art_get(m, "name")), dep_str(m, "state"),
                            pending ? ", waiting for " : "", pending ? pending : "",
                            pending && strcmp(pending, "commit") == 0 ? "commit or roll it back"
                                                                      : "run `molt resume`");
    }
    const molt_artifact_opts aopts = {
        .verify_keys = (const char *const *)m->cfg->verify_keys,
        .n_verify_keys = m->cfg->n_verify_keys,
    };
    if (m->cfg->n_verify_keys == 0)
        molt_log_warning("no artifact_verify_keys configured: signatures are not checked and "
                         "unsigned artifacts are accepted");
    if ((r = open_source(m, source, &src, &e)) < 0) {
        r = refuse(m, outcome, &e, err);
        goto out;
    }
    /* src->name, not source: a presigned URL carries credentials, which the source redacts. */
    molt_log_info("installing from %s", src->name);
    if ((r = molt_artifact_reader_open(&reader, src, &aopts, &e)) < 0) {
        r = refuse(m, outcome, &e, err);
        goto out;
    }
    const molt_artifact_info *info = molt_artifact_reader_info(reader);

    /* Depends before any module or script runs (docs/reference §2.10). */
    molt_depends dep = {
        .device_types = info->depends_device_types,
        .names = info->depends_names,
        .groups = info->depends_groups,
        .type_depends = info->type_depends,
    };
    if ((r = molt_config_device_type(m->cfg, &device_type, &e)) < 0 ||
        (r = check_expected(m, info, device_type, &e)) < 0 ||
        (r = molt_provides_current(m->store, &provides, &e)) < 0 ||
        (r = molt_depends_check(&dep, device_type, provides, &e)) < 0) {
        r = refuse(m, outcome, &e, err);
        goto out;
    }
    /* The downgrade policy, also before any module or script runs. */
    const molt_downgrade_policy policy = {
        .refuse = m->cfg->downgrade_refuse != 0,
        .key = m->cfg->downgrade_key,
        .scheme = m->cfg->downgrade_scheme,
    };
    r = molt_downgrade_check(&policy, info->name, info->type_provides, provides, &e);
    if (r == 1) {
        molt_log_info("downgrade policy: the device has no %s yet: nothing to compare",
                      policy.key);
    } else if (r < 0 && m->allow_downgrade) {
        molt_log_warning("%s (allowed by --allow-downgrade)", e.msg);
    } else if (r < 0) {
        r = refuse(m, outcome, &e, err);
        goto out;
    }

    if (!info->payload_type) {
        /* An empty payload (bootstrap artifact) has nothing to install: commit at once. */
        molt_log_info("artifact %s has an empty payload: committing immediately", info->name);
        molt_provides_new art = {info->name, info->group, info->type_provides, info->clears};
        if ((r = molt_artifact_reader_finish(reader, &e)) < 0 ||
            (r = molt_provides_commit(m->store, &art, &e)) < 0) {
            r = refuse(m, outcome, &e, err);
            goto out;
        }
        json_object_del(m->store, "last_error");
        if ((r = save_store(m, err)) < 0)
            goto out;
        *outcome = MOLT_OUTCOME_DONE;
        goto out;
    }
    if ((r = molt_registry_find(m->cfg, info->payload_type, &module_path, &e)) < 0 ||
        (r = molt_scripts_extract(m->scripts_dir, info, &e)) < 0) {
        r = refuse(m, outcome, &e, err);
        goto out;
    }

    /* From here on the deployment exists: every state is recorded before its work. */
    if ((r = new_deployment(m, src->name, info, module_path, err)) < 0)
        goto out;
    open_log(m);
    molt_log_info("deployment %s: installing %s (payload type %s) with %s", dep_str(m, "id"),
                  info->name, info->payload_type, module_path);
    molt_log_info("entering state Download");
    if ((r = save_store(m, err)) < 0) {
        json_object_del(m->store, "deployment");
        m->dep = NULL;
        goto out;
    }
    write_progress(m, src->offset, src->total, true);
    step s = download(m, reader);
    write_progress(m, src->offset, src->total, true);
    molt_artifact_reader_free(reader);
    reader = NULL;
    molt_source_free(src);
    src = NULL;
    r = run(m, s, outcome, err);
out:
    molt_artifact_reader_free(reader);
    molt_source_free(src);
    json_decref(provides);
    free(device_type);
    free(module_path);
    return r;
}

/* ---- commit, rollback, resume ----------------------------------------------------------- */

static const char *pending_of(const molt_machine *m)
{
    return m->dep ? dep_str(m, "pending") : NULL;
}

static bool pending_is(const molt_machine *m, const char *what)
{
    const char *p = pending_of(m);
    return p && strcmp(p, what) == 0;
}

/* Common start of commit/rollback/resume: the lock and a deployment in progress. */
static int start_existing(molt_machine *m, const char *what, molt_outcome *outcome,
                          molt_err *err)
{
    *outcome = MOLT_OUTCOME_FAILED;
    int r = take_lock(m, err);
    if (r < 0)
        return r;
    if (!m->dep) {
        *outcome = MOLT_OUTCOME_NOTHING;
        return molt_err_set(err, MOLT_ESTATE, "nothing to %s: no update in progress", what);
    }
    /* A deployment that failed before a restart keeps its first error. */
    if (dep_str(m, "error"))
        molt_err_set(&m->first, MOLT_EMODULE, "%s", dep_str(m, "error"));
    open_log(m);
    return 0;
}

/* Where an interrupted deployment continues (docs/reference §2.8 "spontaneous reboot"). */
static step resume_step(molt_machine *m)
{
    const char *state = dep_str(m, "state");
    const char *pending = dep_str(m, "pending");
    bool failed = dep_bool(m, "failed");
    if (!state)
        return S_CLEANUP;
    if (pending && strcmp(pending, "commit") == 0)
        return S_COMMIT;
    if (pending && strcmp(pending, "reboot") == 0)
        return S_VERIFY_REBOOT;
    if (pending && strcmp(pending, "rollback-reboot") == 0)
        return S_VERIFY_ROLLBACK_REBOOT;
    if (pending && strcmp(pending, "rollback") == 0)
        return S_ROLLBACK;
    if (strcmp(state, "Download") == 0) {
        molt_err e;
        molt_err_set(&e, MOLT_ECANCELED, "interrupted in state Download");
        note_error(m, &e, "Download");
        dep_set_bool(m, "failed", true);
        dep_set_bool(m, "rolled_back", true);
        return S_CLEANUP;
    }
    /* A cut during the reboot states is the reboot: verify it. A cut during the verify itself
     * (or ArtifactReboot_Leave) is like any other: the rollback path below. */
    if (strcmp(state, "ArtifactReboot") == 0)
        return failed ? S_ROLLBACK_QUERY : S_VERIFY_REBOOT;
    if (strcmp(state, "ArtifactCommit_Leave") == 0)
        return S_COMMIT_LEAVE;
    if (strcmp(state, "ArtifactRollback") == 0)
        return S_ROLLBACK;
    if (strcmp(state, "ArtifactRollbackReboot") == 0 ||
        strcmp(state, "ArtifactVerifyRollbackReboot") == 0)
        return S_VERIFY_ROLLBACK_REBOOT;
    if (strcmp(state, "ArtifactFailure") == 0)
        return S_FAILURE;
    if (strcmp(state, "Cleanup") == 0)
        return S_CLEANUP;
    /* ArtifactInstall, ArtifactCommit and anything unknown: the rollback path. */
    if (!failed) {
        molt_err e;
        molt_err_set(&e, MOLT_ECANCELED, "interrupted in state %s", state);
        note_error(m, &e, state);
        dep_set_bool(m, "failed", true);
    }
    return S_ROLLBACK_QUERY;
}

int molt_machine_resume(molt_machine *m, molt_outcome *outcome, molt_err *err)
{
    int r = start_existing(m, "resume", outcome, err);
    if (r < 0)
        return r;
    molt_log_info("resuming deployment %s in state %s%s%s", dep_str(m, "id"),
                  dep_str(m, "state"), pending_of(m) ? ", pending " : "",
                  pending_of(m) ? pending_of(m) : "");
    return run(m, resume_step(m), outcome, err);
}

/* A deployment that stopped without asking for anything was interrupted. */
static int refuse_interrupted(molt_machine *m, const char *what, molt_err *err)
{
    return molt_err_set(err, MOLT_ESTATE,
                        "cannot %s: the deployment of %s was interrupted in state %s; "
                        "run `molt resume` to finish it", what,
                        json_string_value(art_get(m, "name")), dep_str(m, "state"));
}

int molt_machine_commit(molt_machine *m, molt_outcome *outcome, molt_err *err)
{
    int r = start_existing(m, "commit", outcome, err);
    if (r < 0)
        return r;
    if (pending_is(m, "commit"))
        return run(m, S_COMMIT, outcome, err);
    if (pending_is(m, "reboot")) {
        /* Like Mender's `install; reboot; commit`: verify the reboot, then commit. */
        r = run(m, S_VERIFY_REBOOT, outcome, err);
        if (r == 0 && *outcome == MOLT_OUTCOME_AWAIT_COMMIT)
            r = run(m, S_COMMIT, outcome, err);
        return r;
    }
    return refuse_interrupted(m, "commit", err);
}

int molt_machine_rollback(molt_machine *m, molt_outcome *outcome, molt_err *err)
{
    int r = start_existing(m, "roll back", outcome, err);
    if (r < 0)
        return r;
    if (pending_is(m, "commit") || pending_is(m, "reboot")) {
        dep_set_bool(m, "user_rollback", true);
        return run(m, S_ROLLBACK_QUERY, outcome, err);
    }
    if (pending_is(m, "rollback-reboot"))
        return molt_err_set(err, MOLT_ESTATE,
                            "the rollback is waiting for a reboot: reboot, then run `molt resume`");
    if (pending_is(m, "rollback"))
        return run(m, S_ROLLBACK, outcome, err);
    return refuse_interrupted(m, "roll back", err);
}

/* ---- status ----------------------------------------------------------------------------- */

int molt_machine_provides(molt_machine *m, json_t **ret, molt_err *err)
{
    return molt_provides_current(m->store, ret, err);
}

/* Whether a molt process holds the lock right now. */
static bool someone_running(const molt_machine *m)
{
    if (m->lock_fd >= 0)
        return true;
    int fd = open(m->lock_path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd);
    return busy;
}

int molt_machine_status(molt_machine *m, json_t **ret, molt_err *err)
{
    json_t *st = json_object();
    if (!st)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    const char *name = json_string_value(json_object_get(m->store, "artifact_name"));
    json_object_set_new(st, "artifact_name", json_string(name ? name : MOLT_UNKNOWN_ARTIFACT));
    const char *group = json_string_value(json_object_get(m->store, "artifact_group"));
    json_object_set_new(st, "artifact_group", group ? json_string(group) : json_null());
    json_t *last_error = json_object_get(m->store, "last_error");
    char *log_path = NULL;
    molt_err e = {0};
    if (m->dep) {
        const char *pending = dep_str(m, "pending");
        const char *state = dep_str(m, "state");
        const char *shown = !pending ? state
                            : strcmp(pending, "commit") == 0 ? "awaiting-commit"
                            : strcmp(pending, "rollback") == 0 ? "rollback-pending"
                                                             : "awaiting-reboot";
        json_object_set_new(st, "state", json_string(shown ? shown : "unknown"));
        json_t *progress = json_pack("{s:I, s:I}", "bytes", (json_int_t)0, "total",
                                     (json_int_t)-1);
        char *text = NULL;
        size_t len;
        if (progress && molt_read_file(m->progress_path, 4096, &text, &len, NULL) == 0) {
            json_t *p = json_loads(text, 0, NULL);
            const char *pid = json_string_value(json_object_get(p, "id"));
            if (pid && dep_str(m, "id") && strcmp(pid, dep_str(m, "id")) == 0) {
                json_object_set(progress, "bytes", json_object_get(p, "bytes"));
                json_object_set(progress, "total", json_object_get(p, "total"));
            }
            json_decref(p);
            free(text);
        }
        json_t *d = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:O?, s:o?}", "id",
                              dep_str(m, "id"), "artifact_name",
                              json_string_value(art_get(m, "name")), "payload_type",
                              json_string_value(art_get(m, "payload_type")), "started",
                              dep_str(m, "started"), "source", dep_str(m, "source"), "state",
                              state, "pending", pending, "running", someone_running(m), "error",
                              json_object_get(m->dep, "error"), "progress", progress);
        if (d && pending && strcmp(pending, "rollback") == 0)
            json_object_set(d, "rollback_error", json_object_get(m->dep, "rollback_error"));
        json_object_set_new(st, "deployment", d ? d : json_null());
        if (!json_is_string(last_error))
            last_error = json_object_get(m->dep, "error");
        if (dep_str(m, "id"))
            molt_deplog_find(m->logs_dir, dep_str(m, "id"), &log_path, &e);
    } else {
        json_object_set_new(st, "state", json_string("idle"));
        json_object_set_new(st, "deployment", json_null());
        molt_deplog_latest(m->logs_dir, &log_path, NULL, &e);
    }
    json_object_set(st, "last_error", json_is_string(last_error) ? last_error : json_null());
    json_t *last = json_object_get(m->store, "last_deployment");
    json_object_set(st, "last_deployment", last ? last : json_null());
    json_t *log = NULL;
    if (log_path && molt_deplog_read(log_path, 10, &log, &e) < 0)
        log = NULL;
    json_object_set_new(st, "log", log ? log : json_array());
    free(log_path);
    *ret = st;
    return 0;
}
