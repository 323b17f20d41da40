/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent update state machine, standalone mode (docs/reference §2.8, §2.9, §2.10): drives
 * an update module through Download, ArtifactInstall, the reboot states, ArtifactCommit and every
 * failure path, recording each state in the store before its work begins.
 *
 * The store (<data_dir>/store) is the typed record of state/store.h (molt_record): the
 * installed software, the last deployment and the deployment in progress; its keys are
 * documented in docs/configuration.md ("The store").
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

#include <molt/module.h>

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

/* <data_dir>/running: a token and a newline, or as many blanks (end_leftovers). */
#define RUNNING_LEN 37   /* a token (36) and a newline */
#define RUNNING_BLANK "                                    \n"
_Static_assert(sizeof RUNNING_BLANK - 1 == RUNNING_LEN, "RUNNING_BLANK is a token's length");

struct molt_machine {
    const molt_config *cfg;
    char *store_path;
    molt_store_writer *store_w;   /* made at the first save, under the lock; freed before it */
    molt_store_info load_info;    /* what the load found, given to store_w (its first save
                                   * compares the slot headers instead of reading the file) */
    char *tree_dir;
    char *scripts_dir;
    char *logs_dir;
    char *progress_path;
    char *lock_path;
    char *running_path;        /* <data_dir>/running: the owner token while the lock is held */
    int running_fd;            /* open on it once this run wrote its token (blanked at the end) */
    molt_record *rec;          /* the whole store */
    molt_deployment *dep;      /* rec->dep: the deployment in progress, or NULL */
    molt_module *mod;
    molt_scripts_opts sopts;
    molt_scripts_listing scripts_listing;   /* sopts.artifact_listing */
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
    int64_t progress_written; /* the bytes in progress.json for this deployment, or -1 */
    bool log_open;
    bool record_lazy;          /* the last save was lazy: record_sync makes it durable */
    molt_module_record mrec;   /* what the record offers the module (get_module) */
    bool reboot_again;         /* redo the rollback reboot after a failed verify */
    bool allow_downgrade;      /* molt_machine_set_allow_downgrade */
    char *expect_name;         /* molt_machine_set_expected, or NULL */
    json_t *expect_types;
};

/* ---- small helpers ---------------------------------------------------------------------- */

/* Replace the string in *slot by a copy of value (NULL: none). Out of memory keeps the old one
 * and logs: a missing message must not stop a deployment. */
static void set_str(char **slot, const char *value)
{
    char *copy = value ? strdup(value) : NULL;
    if (value && !copy) {
        molt_log_error("out of memory recording \"%.80s\"", value);
        return;
    }
    free(*slot);
    *slot = copy;
}

static const char *state_name(const molt_machine *m)
{
    return molt_dep_state_name(m->dep->state);
}

static molt_rec_answer rec_answer(molt_answer a)
{
    return a == MOLT_ANSWER_YES ? MOLT_REC_YES : a == MOLT_ANSWER_AUTOMATIC ? MOLT_REC_AUTOMATIC
                                                                            : MOLT_REC_NO;
}

static void now_rfc3339(char *buf, size_t size)
{
    char s[MOLT_UTC_SECONDS_SIZE];
    molt_utc_seconds(time(NULL), s);
    snprintf(buf, size, "%sZ", s);
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
        if (m->dep && !m->dep->error)
            set_str(&m->dep->error, m->first.msg);
    }
}

/* ---- the store -------------------------------------------------------------------------- */

/* Save the record; flags as molt_store_save's. Before a reboot the legacy file is written too
 * (MOLT_STORE_HANDOVER): the system booted next may be an A/B rollback to a release whose molt
 * reads only that file. */
static int save_store_flags(molt_machine *m, unsigned flags, molt_err *err)
{
    molt_deployment *d = m->dep;
    if (d && (d->pending == MOLT_PENDING_REBOOT || d->pending == MOLT_PENDING_ROLLBACK_REBOOT ||
              d->state == MOLT_DS_ARTIFACT_REBOOT || d->state == MOLT_DS_ARTIFACT_ROLLBACK_REBOOT))
        flags |= MOLT_STORE_HANDOVER;
    /* The module's deployment values as its calls left them (dep_set): saved with this record. */
    if (d && m->mod && m->mod->ops->values) {
        const json_t *v = m->mod->ops->values(m->mod);
        json_t *copy = json_object_size(v) > 0 ? json_deep_copy(v) : NULL;
        if (json_object_size(v) > 0 && !copy)
            return molt_err_set(err, MOLT_ENOMEM, "out of memory saving the module's values");
        json_decref(d->module_values);
        d->module_values = copy;
    }
    int r = 0;
    if (m->lock_fd < 0) {   /* not expected: every save follows take_lock */
        r = molt_record_save(m->store_path, m->rec, flags, err);
    } else {
        if (!m->store_w && (r = molt_store_writer_new(m->store_path, &m->store_w, err)) == 0)
            molt_store_writer_known(m->store_w, &m->load_info);
        if (r == 0)
            r = molt_record_write(m->store_w, m->rec, flags, err);
    }
    if (r == 0)
        m->record_lazy = (flags & MOLT_STORE_LAZY) != 0;
    return r;
}

/* The module host's sync (molt_module_record): a record saved lazily made durable before the
 * module names something that Cleanup must find (Download) or makes something durable that a
 * lost record would leave behind (ArtifactCommit). The store's writer sees the slot's header
 * rewritten in place and reads the file again at its next save (util/slots.h). */
static int record_sync(void *ctx, molt_err *err)
{
    molt_machine *m = ctx;
    if (!m->record_lazy)
        return 0;
    molt_log_debug("the module makes things durable in %s: recording the state durably",
                   m->dep ? state_name(m) : "?");
    int r = molt_store_sync(m->store_path, err);
    if (r == 0)
        m->record_lazy = false;
    return r;
}

static int save_store(molt_machine *m, molt_err *err)
{
    return save_store_flags(m, 0, err);
}

/* State's work begins (pending cleared, the log line), not yet recorded: the caller's next save
 * records it. Past max_state_loops the loop guard trips: MOLT_ELIMIT. */
static int set_state(molt_machine *m, molt_dep_state state, molt_err *err)
{
    int count = m->dep->state_count + 1;
    int max = m->cfg->max_state_loops > 0 ? m->cfg->max_state_loops : 28;
    if (count > max)
        return molt_err_set(err, MOLT_ELIMIT,
                            "state loop detected: entering %s would be state %d of this "
                            "deployment (max_state_loops %d)", molt_dep_state_name(state), count,
                            max);
    m->dep->state_count = count;
    m->dep->state = state;
    m->dep->pending = MOLT_PENDING_NONE;
    molt_log_info("entering state %s", molt_dep_state_name(state));
    return 0;
}

/* Record that state's work begins (set_state, then the save); flags as molt_store_save's. */
static int enter_state_flags(molt_machine *m, molt_dep_state state, unsigned flags,
                             molt_err *err)
{
    int r = set_state(m, state, err);
    return r < 0 ? r : save_store_flags(m, flags, err);
}

static int enter_state(molt_machine *m, molt_dep_state state, molt_err *err)
{
    return enter_state_flags(m, state, 0, err);
}

/* ---- the module and scripts ------------------------------------------------------------- */

static int get_module(molt_machine *m, molt_err *err)
{
    if (m->mod)
        return 0;
    json_t *art = molt_dep_artifact_json(&m->dep->artifact);
    if (!art)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    m->mrec = (molt_module_record){
        .values = m->dep->module_values, .sync = record_sync, .ctx = m};
    int r = molt_registry_module_new(m->cfg, &m->mod, m->dep->module_kind, m->dep->module_path,
                                     m->dep->module_type, m->tree_dir, art, &m->mrec, err);
    json_decref(art);
    return r;
}

static bool module_native(const molt_machine *m)
{
    return m->dep && m->dep->module_kind == MOLT_MODULE_NATIVE;
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
    m->dep->failed = true;
    if (save_store(m, err) < 0)
        return S_ABORT;
    error_scripts(m, state);
    return S_ROLLBACK_QUERY;
}

/* A rollback-path failure: does not change the path, but the device is inconsistent. */
static void rollback_trouble(molt_machine *m, const molt_err *e, const char *what)
{
    note_error(m, e, what);
    m->dep->failed = true;
    m->dep->rollback_failed = true;
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
        m->dep->failed = true;
        m->dep->rolled_back = true;
        return save_store(m, err) < 0 ? S_ABORT : S_CLEANUP;
    }
    if (enter_state(m, MOLT_DS_ARTIFACT_INSTALL, err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactInstall", "Enter", &e) < 0 ||
        module_call(m, MOLT_CALL_ARTIFACT_INSTALL, &e) < 0 ||
        scripts(m, "ArtifactInstall", "Leave", &e) < 0 ||
        module_query(m, MOLT_CALL_NEEDS_ARTIFACT_REBOOT, &reboot, &e) < 0 ||
        module_query(m, MOLT_CALL_SUPPORTS_ROLLBACK, &rollback, &e) < 0)
        return fail_stage(m, "ArtifactInstall", &e, err);
    m->dep->reboot = rec_answer(reboot);
    m->dep->rollback = rec_answer(rollback);
    /* Not saved here: the next step saves them before any work (stop "commit", or entering
     * ArtifactCommit or ArtifactReboot), and resuming state ArtifactInstall takes the rollback
     * path with or without them: one write for the transition (docs/performance.md). */
    return reboot == MOLT_ANSWER_NO ? S_AFTER_INSTALL : S_REBOOT;
}

static step stop(molt_machine *m, molt_pending pending, molt_outcome outcome, molt_err *err)
{
    m->dep->pending = pending;
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
    /* "Automatic" without Enter scripts: nothing runs in this state before the reboot molt
     * leaves to its user, so the record of state ArtifactReboot is the stop's own below (one
     * write with the legacy handover, not two; docs/performance.md, "fsyncs per install"). A
     * cut before it resumes state ArtifactInstall (the rollback path), as a cut before the
     * state's record did; resuming it verifies the reboot, as resuming either record did. */
    bool one_record = m->dep->reboot != MOLT_REC_YES &&
                      molt_scripts_none(&m->sopts, "ArtifactReboot", "Enter");
    if ((one_record ? set_state(m, MOLT_DS_ARTIFACT_REBOOT, err)
                    : enter_state(m, MOLT_DS_ARTIFACT_REBOOT, err)) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactReboot", "Enter", &e) < 0)
        return fail_stage(m, "ArtifactReboot", &e, err);
    if (m->dep->reboot == MOLT_REC_YES) {
        /* "Yes": the module reboots what it updated itself (a peripheral, or the host: then
         * `molt resume` finds state ArtifactReboot and verifies). */
        if (module_call(m, MOLT_CALL_ARTIFACT_REBOOT, &e) < 0)
            return fail_stage(m, "ArtifactReboot", &e, err);
        return S_VERIFY_REBOOT;
    }
    /* "Automatic": the host must reboot; molt does not reboot a device on its own in
     * standalone mode, the user does, then runs `molt resume`. */
    molt_log_info("reboot required: reboot the device, then run `molt resume`");
    return stop(m, MOLT_PENDING_REBOOT, MOLT_OUTCOME_REBOOT, err);
}

static step st_verify_reboot(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, MOLT_DS_ARTIFACT_VERIFY_REBOOT, err) < 0)
        return S_ABORT;
    if (module_call(m, MOLT_CALL_ARTIFACT_VERIFY_REBOOT, &e) < 0 ||
        scripts(m, "ArtifactReboot", "Leave", &e) < 0)
        return fail_stage(m, "ArtifactReboot", &e, err);
    return S_AFTER_INSTALL;
}

static step st_after_install(molt_machine *m, molt_err *err)
{
    if (m->dep->rollback == MOLT_REC_YES) {
        /* Recorded as ArtifactCommit with pending "commit": the commit has not started. */
        m->dep->state = MOLT_DS_ARTIFACT_COMMIT;
        return stop(m, MOLT_PENDING_COMMIT, MOLT_OUTCOME_AWAIT_COMMIT, err);
    }
    molt_log_info("the module does not support rollback: committing now");
    return S_COMMIT;
}

/* A module whose artifact_commit changes nothing outside its deployment values
 * (MOLT_CAP_LAZY_COMMIT), without ArtifactCommit Enter scripts (their effects need the record):
 * the record of state ArtifactCommit may be lazy. A cut that loses it leaves the record before
 * it: `pending: commit` (the update awaits its commit, as before `molt commit` ran, the values
 * the call set lost with the record), or, where the commit follows in the same command, state
 * ArtifactInstall or ArtifactVerifyReboot, whose resume takes the rollback path as state
 * ArtifactCommit's does. The host makes it durable if the module makes something durable after
 * all (record_sync). The module is loaded here, before the record, to read its descriptor's
 * bits; when that fails the record is durable and the call below fails as before. */
static bool commit_lazy(molt_machine *m)
{
    molt_err e = {0};
    return module_native(m) && get_module(m, &e) == 0 && (m->mod->caps & MOLT_CAP_LAZY_COMMIT) &&
           molt_scripts_none(&m->sopts, "ArtifactCommit", "Enter");
}

static step st_commit(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    int h = hook(m, "ArtifactCommit", &e);
    if (h > 0)
        return hook_stop(m, "ArtifactCommit");
    if (h < 0)
        return fail_stage(m, "ArtifactCommit", &e, err);
    if (enter_state_flags(m, MOLT_DS_ARTIFACT_COMMIT, commit_lazy(m) ? MOLT_STORE_LAZY : 0,
                          err) < 0)
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
    if (enter_state(m, MOLT_DS_ARTIFACT_COMMIT_LEAVE, err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactCommit", "Leave", &e) < 0) {
        /* After the commit there is no way back: the name gets _INCONSISTENT. */
        note_error(m, &e, "ArtifactCommit_Leave");
        m->dep->failed = true;
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
    m->dep->rollback = rec_answer(a);
    if (a == MOLT_ANSWER_YES)
        return S_ROLLBACK;
    if (m->dep->user_rollback && !m->dep->failed) {
        /* Asked for by the user, but impossible: leave the deployment as it was. */
        m->dep->user_rollback = false;
        molt_err_set(&m->first, MOLT_EUNSUPPORTED,
                     "the update module %s does not support rollback", m->dep->module_type);
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
    long long tries = ++m->dep->rollback_retries;
    set_str(&m->dep->rollback_error, e->msg);
    molt_log_warning("ArtifactRollback cannot run yet (attempt %lld): %s", tries, e->msg);
    molt_log_warning("the rollback stays pending: run `molt resume` once the cause has passed "
                     "(the daemon retries on its own)");
    step s = stop(m, MOLT_PENDING_ROLLBACK, MOLT_OUTCOME_FAILED, err);
    if (s == S_STOP)
        molt_err_set(&m->pending_err, MOLT_ETEMP,
                     "rollback pending (attempt %lld): %s; the deployment stays recorded: run "
                     "`molt resume` once the cause has passed", tries, e->msg);
    return s;
}

static step st_rollback(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    molt_answer reboot = MOLT_ANSWER_NO;
    if (m->dep->pending == MOLT_PENDING_ROLLBACK) {
        /* A retry of a pending rollback is not a loop: it does not count for the guard. */
        if (m->dep->state_count > 0)
            m->dep->state_count--;
        molt_log_info("retrying the pending rollback (it failed before with: %s)",
                      m->dep->rollback_error ? m->dep->rollback_error : "?");
    }
    if (enter_state(m, MOLT_DS_ARTIFACT_ROLLBACK, err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactRollback", "Enter", &e) < 0)
        rollback_trouble(m, &e, "ArtifactRollback_Enter");
    int rc = module_call(m, MOLT_CALL_ARTIFACT_ROLLBACK, &e);
    if (rc == MOLT_ETEMP)
        return rollback_pending(m, &e, err);
    bool ok = rc == 0;
    if (ok)
        m->dep->rolled_back = true;
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
    m->dep->rollback_reboot = rec_answer(reboot);
    return reboot == MOLT_ANSWER_NO ? S_FAILURE : S_ROLLBACK_REBOOT;
}

static step st_rollback_reboot(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, MOLT_DS_ARTIFACT_ROLLBACK_REBOOT, err) < 0)
        return S_ABORT;
    /* After a failed verify the reboot is redone, its Enter scripts are not. */
    if (!m->reboot_again && scripts(m, "ArtifactRollbackReboot", "Enter", &e) < 0) {
        rollback_trouble(m, &e, "ArtifactRollbackReboot_Enter");
        error_scripts(m, "ArtifactRollbackReboot");
    }
    m->reboot_again = false;
    if (m->dep->rollback_reboot == MOLT_REC_YES) {
        /* Errors of the rollback reboot itself are ignored: the verify state decides. */
        if (module_call(m, MOLT_CALL_ARTIFACT_ROLLBACK_REBOOT, &e) < 0)
            molt_log_warning("ArtifactRollbackReboot: %s (ignored)", e.msg);
        return S_VERIFY_ROLLBACK_REBOOT;
    }
    molt_log_info("reboot required to finish the rollback: reboot, then run `molt resume`");
    return stop(m, MOLT_PENDING_ROLLBACK_REBOOT, MOLT_OUTCOME_REBOOT, err);
}

static step st_verify_rollback_reboot(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, MOLT_DS_ARTIFACT_VERIFY_ROLLBACK_REBOOT, err) < 0)
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
    if (enter_state(m, MOLT_DS_ARTIFACT_FAILURE, err) < 0)
        return S_ABORT;
    if (scripts(m, "ArtifactFailure", "Enter", &e) < 0)
        rollback_trouble(m, &e, "ArtifactFailure_Enter");
    if (module_call(m, MOLT_CALL_ARTIFACT_FAILURE, &e) < 0)
        rollback_trouble(m, &e, "ArtifactFailure");
    if (scripts(m, "ArtifactFailure", "Leave", &e) < 0)
        rollback_trouble(m, &e, "ArtifactFailure_Leave");
    return S_CLEANUP;
}

molt_cleanup_decision molt_cleanup_decide(bool failed, bool rolled_back, bool rollback_failed,
                                          bool user_rollback)
{
    /* A failed rollback makes the whole deployment a failure, and the old software is not
     * back, whatever the rollback got to. */
    bool fail = failed || rollback_failed;
    bool keep = rolled_back && !rollback_failed;
    molt_cleanup_decision d = {
        .failed = fail,
        .result = fail ? MOLT_RESULT_FAILURE
                  : user_rollback ? MOLT_RESULT_ROLLED_BACK
                                  : MOLT_RESULT_SUCCESS,
        .rolled_back = keep,
        .provides = keep ? MOLT_PROVIDES_KEEP
                    : fail ? MOLT_PROVIDES_INCONSISTENT
                           : MOLT_PROVIDES_COMMIT,
    };
    return d;
}

/* End the deployment in the store as decided (molt_cleanup_decide): provides (docs/reference §2.10),
 * last_deployment, last_error, no deployment. */
/* End the deployment in the record. lazy: the state Cleanup is durably recorded and Cleanup has
 * run, so the save needs no fdatasync: if a power cut loses it, the next start finds state
 * Cleanup and does Cleanup's work again (the module's Cleanup while the tree exists, then this
 * save), which ends the same. */
static int finish_deployment(molt_machine *m, const molt_cleanup_decision *d, bool lazy,
                             molt_err *err)
{
    char now[32];
    molt_err e = {0};
    now_rfc3339(now, sizeof now);
    const molt_dep_artifact *a = &m->dep->artifact;
    molt_provides_new art = {a->name, a->group, a->provides, a->clears};
    if (d->provides == MOLT_PROVIDES_INCONSISTENT) {
        if (molt_provides_inconsistent(m->rec->device, art.name, art.group, &e) < 0)
            note_error(m, &e, "saving provides");
    } else if (d->provides == MOLT_PROVIDES_COMMIT &&
               molt_provides_commit(m->rec->device, &art, &e) < 0) {
        note_error(m, &e, "saving provides");
    }
    molt_last_deployment *last = calloc(1, sizeof *last);
    if (last) {
        last->id = strdup(m->dep->id);
        last->artifact_name = strdup(a->name);
        last->finished = strdup(now);
        last->result = d->result;
        last->rolled_back = d->rolled_back;
    }
    if (!last || !last->id || !last->artifact_name || !last->finished) {
        molt_last_deployment_free(last);
        /* Ending the deployment without its summary is worse than not ending it yet. */
        return molt_err_set(err, MOLT_ENOMEM, "out of memory ending the deployment");
    }
    molt_last_deployment_free(m->rec->last);
    m->rec->last = last;
    set_str(&m->rec->last_error, d->failed && m->first.code ? m->first.msg : NULL);
    molt_deployment_free(m->dep);
    m->rec->dep = NULL;
    m->dep = NULL;
    return save_store_flags(m, lazy ? MOLT_STORE_LAZY : 0, err);
}

static step st_cleanup(molt_machine *m, molt_err *err)
{
    molt_err e = {0};
    if (enter_state(m, MOLT_DS_CLEANUP, err) < 0)
        return S_ABORT;
    /* Cleanup runs when the module was instantiated, i.e. its tree exists (docs/reference §2.8);
     * a native module's tree is made without fsyncs, so its Cleanup runs whatever the tree (its
     * contract: idempotent, and called also when download never ran). */
    if ((module_native(m) || molt_path_exists(m->tree_dir)) &&
        module_call(m, MOLT_CALL_CLEANUP, &e) < 0) {
        note_error(m, &e, "Cleanup");
        m->dep->failed = true;
    }
    molt_cleanup_decision d = molt_cleanup_decide(m->dep->failed, m->dep->rolled_back,
                                                  m->dep->rollback_failed, m->dep->user_rollback);
    if (finish_deployment(m, &d, true, err) < 0)
        return S_ABORT;
    if (molt_rm_rf(m->tree_dir, &e) < 0)
        molt_log_warning("removing the module tree: %s", e.msg);
    molt_log_info("deployment finished: %s",
                  d.result == MOLT_RESULT_FAILURE       ? "failure"
                  : d.result == MOLT_RESULT_ROLLED_BACK ? "rolled back"
                                                        : "success");
    m->stop_outcome = d.failed ? MOLT_OUTCOME_FAILED : MOLT_OUTCOME_DONE;
    return S_END;
}

/* The loop guard tripped: the deployment ends inconsistent, without more module calls that
 * could loop again, except one best-effort Cleanup after the store says it is over. */
static void loop_guard(molt_machine *m, const molt_err *e)
{
    molt_err e2 = {0};
    note_error(m, e, "loop guard");
    m->dep->failed = true;
    int have_module = get_module(m, &e2);
    bool native = module_native(m);
    const molt_cleanup_decision d = {
        .failed = true,
        .result = MOLT_RESULT_FAILURE,
        .rolled_back = false,
        .provides = MOLT_PROVIDES_INCONSISTENT,
    };
    if (finish_deployment(m, &d, false, &e2) < 0) {
        molt_log_error("saving the store: %s", e2.msg);
        return;
    }
    if ((native || molt_path_exists(m->tree_dir)) &&
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

/* A deployment recorded by molt up to 9f1b70b has no module kind: it is inferred from today's
 * native_module_dir, once, and recorded by the next save. */
static molt_module_kind legacy_kind_of(void *ctx, const char *module_path)
{
    const molt_config *cfg = ctx;
    return molt_registry_is_native(cfg, module_path) ? MOLT_MODULE_NATIVE : MOLT_MODULE_EXEC;
}

int molt_machine_open(molt_machine **ret, const molt_config *cfg, molt_err *err)
{
    molt_machine *m = calloc(1, sizeof *m);
    if (!m)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int r = MOLT_ENOMEM;
    m->cfg = cfg;
    m->lock_fd = -1;
    m->running_fd = -1;
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
    m->sopts.artifact_listing = &m->scripts_listing;
    m->sopts.timeout = cfg->script_timeout;
    m->sopts.retry_interval = cfg->script_retry_interval;
    m->sopts.retry_timeout = cfg->script_retry_timeout;
    molt_store_info *info = &m->load_info;
    r = molt_record_load(m->store_path, legacy_kind_of, (void *)cfg, &m->rec, info, err);
    if (r < 0)
        goto fail;
    if (info->damaged >= 0)
        molt_log_warning("store %s.slots: slot %d fails its check (%s): the record before it is "
                         "read (a save cut by a power loss, or one in progress)",
                         m->store_path, info->damaged, info->why);
    m->dep = m->rec->dep;
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
    if (m->log_open) {
        /* Durable when the deployment failed (in this run, or it ended with a failure or a
         * rollback): that log is what the server is sent. A success's log is left to the page
         * cache, as the success's own record is (a lazy save, st_cleanup). */
        const molt_last_deployment *last = m->dep ? NULL : m->rec->last;
        molt_log_close_deployment(m->dep ? m->dep->failed
                                         : !last || last->result != MOLT_RESULT_SUCCESS);
    }
    molt_store_writer_free(m->store_w);   /* before the lock is let go */
    if (m->lock_fd >= 0) {
        /* A normal end: what this run's modules left running on purpose stays (see take_lock). */
        if (m->running_fd >= 0) {
            if (pwrite(m->running_fd, RUNNING_BLANK, RUNNING_LEN, 0) != RUNNING_LEN)
                molt_log_warning("cannot clear %s: %s", m->running_path, strerror(errno));
            close(m->running_fd);
        }
        close(m->lock_fd);
    }
    molt_record_free(m->rec);
    molt_scripts_listing_clear(&m->scripts_listing);
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
 * their environment (MOLT_OWNER); a normal end blanks it. Finding a token with the lock taken
 * means the molt that wrote it died while working (kill -9, a crash, the OOM killer): every
 * process still carrying it is ended before any module or script runs. Then this run writes
 * its own token in place, without fsync: a crash of molt leaves the file in the page cache,
 * and after a power cut no process carries any token, so whatever the file then holds (the old
 * token, the new one, blanks, zeros) ends nothing that runs (docs/performance.md). The file is
 * kept and overwritten at the same length, never created, renamed, removed or truncated again:
 * each of those costs a command more than the write (ext4 allocates and frees an inode, or
 * starts writing back at close a file truncated to zero: auto_da_alloc). */
static int end_leftovers(molt_machine *m, molt_err *err)
{
    char text[257], token[37];
    int fd = open(m->running_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot open %s", m->running_path);
    struct stat st;
    ssize_t n = fstat(fd, &st) != 0 ? -1 : !S_ISREG(st.st_mode) ? -2 : read(fd, text, 256);
    if (n < 0) {
        int e = errno;
        close(fd);
        if (n == -2)
            return molt_err_set(err, MOLT_EIO, "%s is not a regular file", m->running_path);
        return molt_err_errno(err, MOLT_EIO, e, "cannot read %s", m->running_path);
    }
    text[n] = '\0';
    text[strcspn(text, "\n")] = '\0';
    int r = 0;
    if (!text[strspn(text, " ")]) {
        /* blank or empty: a normal end, or written just before a power cut: nothing to end */
    } else if (strspn(text, "0123456789abcdef-") == strlen(text)) {
        r = molt_proc_end_owned(text, err);
        if (r > 0)
            molt_log_warning("ended %d process(es) left running by the molt that died "
                             "while it worked on this device", r);
    } else {
        molt_log_warning("%s: not a token (ignored)", m->running_path);
    }
    char line[RUNNING_LEN + 1];
    if (r >= 0)
        r = make_uuid(token, err);
    if (r >= 0) {
        snprintf(line, sizeof line, "%s\n", token);
        if (pwrite(fd, line, RUNNING_LEN, 0) != RUNNING_LEN ||
            (st.st_size > RUNNING_LEN && ftruncate(fd, RUNNING_LEN) != 0))
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot write %s", m->running_path);
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    m->running_fd = fd;
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
    const char *id = m->dep ? m->dep->id : NULL;
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

/* <data_dir>/progress.json, for `molt status` run beside a download: every 250 ms from the
 * start of Download, and once at its end (force). Before the deployment exists (the artifact's
 * header) it would name no deployment status can show, and a download shorter than 250 ms
 * (a small artifact) writes it once. */
#define PROGRESS_LEN 128   /* the length of every record of progress.json */

static void write_progress(molt_machine *m, int64_t bytes, int64_t total, bool force)
{
    if (!m->dep || (force && bytes == m->progress_written))
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - m->last_progress.tv_sec) * 1000 +
              (now.tv_nsec - m->last_progress.tv_nsec) / 1000000;
    if (!force && ms < 250)
        return;
    m->last_progress = now;
    m->progress_written = bytes;
    /* Not durable on purpose: progress is a hint for `molt status`, not state. Every record has
     * the same length (JSON, then blanks), written in place: no O_TRUNC, after which ext4
     * starts writing the file back at close (auto_da_alloc), which costs more than the write. */
    char buf[PROGRESS_LEN + 1];
    int n = snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"bytes\":%lld,\"total\":%lld}",
                     m->dep->id, (long long)bytes, (long long)total);
    if (n < 0 || n >= PROGRESS_LEN)
        return;
    memset(buf + n, ' ', (size_t)(PROGRESS_LEN - 1 - n));
    buf[PROGRESS_LEN - 1] = '\n';
    int fd = open(m->progress_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    struct stat st;
    if (pwrite(fd, buf, PROGRESS_LEN, 0) == PROGRESS_LEN && fstat(fd, &st) == 0 &&
        st.st_size > PROGRESS_LEN && ftruncate(fd, PROGRESS_LEN) != 0)
        molt_log_debug("progress: cannot truncate %s", m->progress_path);
    close(fd);
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

static json_t *incref_or_null(json_t *v)
{
    return v ? json_incref(v) : NULL;
}

/* The deployment record for a new deployment of info, installed by the module at module_path
 * of kind kind, in state Download. */
static int new_deployment(molt_machine *m, const char *source, const molt_artifact_info *info,
                          const char *module_path, molt_module_kind kind, molt_err *err)
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
    molt_deployment *d = calloc(1, sizeof *d);
    if (!d)
        return molt_err_set(err, MOLT_ENOMEM, "cannot build the deployment record");
    d->id = strdup(id);
    d->started = strdup(now);
    d->source = strdup(source);
    d->state = MOLT_DS_DOWNLOAD;
    d->pending = MOLT_PENDING_NONE;
    d->state_count = 1;
    d->module_kind = kind;
    d->module_type = strdup(info->payload_type);
    d->module_path = strdup(module_path);
    d->module_tree = strdup(m->tree_dir);
    molt_dep_artifact *a = &d->artifact;
    a->name = strdup(info->name);
    a->group = info->group ? strdup(info->group) : NULL;
    a->payload_type = strdup(info->payload_type);
    a->provides = incref_or_null(info->type_provides);
    a->clears = incref_or_null(info->clears);
    a->depends = json_pack("{s:O, s:O?, s:O?, s:O}", "device_type", info->depends_device_types,
                           "artifact_name", info->depends_names, "artifact_group",
                           info->depends_groups, "type_info", info->type_depends);
    a->type_info = incref_or_null(info->type_info);
    a->header_info = incref_or_null(info->header_info);
    a->meta_data = incref_or_null(info->meta_data);
    if (!d->id || !d->started || !d->source || !d->module_type || !d->module_path ||
        !d->module_tree || !a->name || (info->group && !a->group) || !a->payload_type ||
        !a->provides || !a->depends) {
        molt_deployment_free(d);
        return molt_err_set(err, MOLT_ENOMEM, "cannot build the deployment record");
    }
    m->rec->dep = d;
    m->dep = d;
    return 0;
}

/* A failure before the deployment record exists: nothing changed on the device. */
static int refuse(molt_machine *m, molt_outcome *outcome, const molt_err *e, molt_err *err)
{
    molt_err se = {0};
    /* The caller reports e (the CLI prints it once); the store keeps it for `molt status`. */
    molt_log_debug("refused: %s", e->msg);
    set_str(&m->rec->last_error, e->msg);
    if (save_store(m, &se) < 0)
        molt_log_warning("cannot record the error in the store: %s", se.msg);
    *outcome = MOLT_OUTCOME_FAILED;
    molt_err_set(err, e->code ? e->code : MOLT_EIO, "%s", e->msg);
    return err ? err->code : (e->code ? e->code : MOLT_EIO);
}

static step download(molt_machine *m, molt_artifact_reader *reader)
{
    molt_err e = {0}, te = {0};
    const char *cur_name = molt_record_artifact_name(m->rec);
    const char *cur_group = molt_record_artifact_group(m->rec);
    char *device_type = NULL;
    /* The exec tree's current_device_type; a native module's tree has no such file. */
    if (!module_native(m))
        molt_config_device_type(m->cfg, &device_type, &te);
    molt_exec_tree_info ti = {
        .current_artifact_name = cur_name ? cur_name : "",
        .current_artifact_group = cur_group ? cur_group : "",
        .current_device_type = device_type ? device_type : "",
    };
    int r = molt_registry_tree_create(m->dep->module_kind, m->tree_dir,
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
    m->dep->failed = true;
    m->dep->rolled_back = true;
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
    molt_module_kind kind = MOLT_MODULE_EXEC;
    uint32_t caps = 0;
    int r;

    *outcome = MOLT_OUTCOME_FAILED;
    if ((r = take_lock(m, err)) < 0)
        return r;
    if (m->dep) {
        const char *pending = molt_pending_name(m->dep->pending);
        return molt_err_set(err, MOLT_ESTATE,
                            "a deployment of %s is in progress (state %s%s%s): %s first",
                            m->dep->artifact.name, state_name(m),
                            pending ? ", waiting for " : "", pending ? pending : "",
                            m->dep->pending == MOLT_PENDING_COMMIT ? "commit or roll it back"
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
        (r = molt_provides_current(m->rec->device, &provides, &e)) < 0 ||
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
            (r = molt_provides_commit(m->rec->device, &art, &e)) < 0) {
            r = refuse(m, outcome, &e, err);
            goto out;
        }
        set_str(&m->rec->last_error, NULL);
        if ((r = save_store(m, err)) < 0)
            goto out;
        *outcome = MOLT_OUTCOME_DONE;
        goto out;
    }
    if ((r = molt_registry_find(m->cfg, info->payload_type, &module_path, &kind, &caps, &e)) < 0 ||
        (r = molt_scripts_extract(&m->sopts, info, &e)) < 0) {
        r = refuse(m, outcome, &e, err);
        goto out;
    }

    /* From here on the deployment exists: every state is recorded before its work. */
    if ((r = new_deployment(m, src->name, info, module_path, kind, err)) < 0)
        goto out;
    open_log(m);
    molt_log_info("deployment %s: installing %s (payload type %s) with %s", m->dep->id,
                  info->name, info->payload_type, module_path);
    molt_log_info("entering state Download");
    /* A module whose Download names nothing (MOLT_CAP_LAZY_DOWNLOAD), without Download scripts:
     * a cut that loses the record leaves the device as before the install (the deployment
     * never existed). The host makes it durable if the module names something after all
     * (record_sync). */
    bool lazy = kind == MOLT_MODULE_NATIVE && (caps & MOLT_CAP_LAZY_DOWNLOAD) &&
                molt_scripts_none(&m->sopts, "Download", "Enter") &&
                molt_scripts_none(&m->sopts, "Download", "Leave");
    if ((r = save_store_flags(m, lazy ? MOLT_STORE_LAZY : 0, err)) < 0) {
        molt_deployment_free(m->dep);
        m->rec->dep = NULL;
        m->dep = NULL;
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &m->last_progress);
    m->progress_written = -1;
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

static bool pending_is(const molt_machine *m, molt_pending what)
{
    return m->dep && m->dep->pending == what;
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
    if (m->dep->error)
        molt_err_set(&m->first, MOLT_EMODULE, "%s", m->dep->error);
    open_log(m);
    return 0;
}

/* An interrupted deployment fails with why: the first error, recorded. */
static void interrupted(molt_machine *m)
{
    molt_err e;
    molt_err_set(&e, MOLT_ECANCELED, "interrupted in state %s", state_name(m));
    note_error(m, &e, state_name(m));
    m->dep->failed = true;
}

/* Where an interrupted deployment continues (docs/reference §2.8 "spontaneous reboot"). */
static step resume_step(molt_machine *m)
{
    molt_deployment *d = m->dep;
    switch (d->pending) {
    case MOLT_PENDING_COMMIT: return S_COMMIT;
    case MOLT_PENDING_REBOOT: return S_VERIFY_REBOOT;
    case MOLT_PENDING_ROLLBACK_REBOOT: return S_VERIFY_ROLLBACK_REBOOT;
    case MOLT_PENDING_ROLLBACK: return S_ROLLBACK;
    case MOLT_PENDING_NONE:
    case MOLT_PENDING_COUNT: break;
    }
    switch (d->state) {
    case MOLT_DS_DOWNLOAD:
        interrupted(m);
        d->rolled_back = true;
        return S_CLEANUP;
    /* A cut during the reboot states is the reboot: verify it. A cut during the verify itself
     * (or ArtifactReboot_Leave) is like any other: the rollback path below. */
    case MOLT_DS_ARTIFACT_REBOOT:
        return d->failed ? S_ROLLBACK_QUERY : S_VERIFY_REBOOT;
    case MOLT_DS_ARTIFACT_COMMIT_LEAVE: return S_COMMIT_LEAVE;
    case MOLT_DS_ARTIFACT_ROLLBACK: return S_ROLLBACK;
    case MOLT_DS_ARTIFACT_ROLLBACK_REBOOT:
    case MOLT_DS_ARTIFACT_VERIFY_ROLLBACK_REBOOT: return S_VERIFY_ROLLBACK_REBOOT;
    case MOLT_DS_ARTIFACT_FAILURE: return S_FAILURE;
    case MOLT_DS_CLEANUP: return S_CLEANUP;
    case MOLT_DS_ARTIFACT_INSTALL:
    case MOLT_DS_ARTIFACT_VERIFY_REBOOT:
    case MOLT_DS_ARTIFACT_COMMIT:
    case MOLT_DS_COUNT:
        break;
    }
    /* ArtifactInstall, ArtifactVerifyReboot, ArtifactCommit: the rollback path. */
    if (!d->failed)
        interrupted(m);
    return S_ROLLBACK_QUERY;
}

int molt_machine_resume(molt_machine *m, molt_outcome *outcome, molt_err *err)
{
    int r = start_existing(m, "resume", outcome, err);
    if (r < 0)
        return r;
    const char *pending = molt_pending_name(m->dep->pending);
    molt_log_info("resuming deployment %s in state %s%s%s", m->dep->id, state_name(m),
                  pending ? ", pending " : "", pending ? pending : "");
    return run(m, resume_step(m), outcome, err);
}

/* A deployment that stopped without asking for anything was interrupted. */
static int refuse_interrupted(molt_machine *m, const char *what, molt_err *err)
{
    return molt_err_set(err, MOLT_ESTATE,
                        "cannot %s: the deployment of %s was interrupted in state %s; "
                        "run `molt resume` to finish it", what, m->dep->artifact.name,
                        state_name(m));
}

int molt_machine_commit(molt_machine *m, molt_outcome *outcome, molt_err *err)
{
    int r = start_existing(m, "commit", outcome, err);
    if (r < 0)
        return r;
    if (pending_is(m, MOLT_PENDING_COMMIT))
        return run(m, S_COMMIT, outcome, err);
    if (pending_is(m, MOLT_PENDING_REBOOT)) {
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
    if (pending_is(m, MOLT_PENDING_COMMIT) || pending_is(m, MOLT_PENDING_REBOOT)) {
        m->dep->user_rollback = true;
        return run(m, S_ROLLBACK_QUERY, outcome, err);
    }
    if (pending_is(m, MOLT_PENDING_ROLLBACK_REBOOT))
        return molt_err_set(err, MOLT_ESTATE,
                            "the rollback is waiting for a reboot: reboot, then run `molt resume`");
    if (pending_is(m, MOLT_PENDING_ROLLBACK))
        return run(m, S_ROLLBACK, outcome, err);
    return refuse_interrupted(m, "roll back", err);
}

/* ---- status ----------------------------------------------------------------------------- */

int molt_machine_provides(molt_machine *m, json_t **ret, molt_err *err)
{
    return molt_provides_current(m->rec->device, ret, err);
}

const molt_deployment *molt_machine_deployment(const molt_machine *m)
{
    return m->dep;
}

const molt_last_deployment *molt_machine_last(const molt_machine *m)
{
    return m->rec->last;
}

const char *molt_machine_artifact_name(const molt_machine *m)
{
    const char *name = molt_record_artifact_name(m->rec);
    return name ? name : MOLT_UNKNOWN_ARTIFACT;
}

const char *molt_machine_final(const molt_machine *m, const char *id)
{
    if (m->dep)
        return NULL;
    const molt_last_deployment *last = m->rec->last;
    if (!last || !id || strcmp(last->id, id) != 0)
        return "failure";
    return molt_result_server_status(last->result);
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

/* The download's progress: {"bytes","total"} from <data_dir>/progress.json when it is about
 * deployment id, else {0, -1}. */
static json_t *progress_json(const molt_machine *m, const char *id)
{
    json_t *progress = json_pack("{s:I, s:I}", "bytes", (json_int_t)0, "total", (json_int_t)-1);
    char *text = NULL;
    size_t len;
    if (progress && molt_read_file(m->progress_path, 4096, &text, &len, NULL) == 0) {
        json_t *p = json_loads(text, 0, NULL);
        const char *pid = json_string_value(json_object_get(p, "id"));
        if (pid && strcmp(pid, id) == 0) {
            json_object_set(progress, "bytes", json_object_get(p, "bytes"));
            json_object_set(progress, "total", json_object_get(p, "total"));
        }
        json_decref(p);
        free(text);
    }
    return progress;
}

static json_t *nullable(const char *s)
{
    return s ? json_string(s) : json_null();
}

int molt_machine_status(molt_machine *m, json_t **ret, molt_err *err)
{
    json_t *st = json_object();
    if (!st)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    json_object_set_new(st, "artifact_name", json_string(molt_machine_artifact_name(m)));
    json_object_set_new(st, "artifact_group", nullable(molt_record_artifact_group(m->rec)));
    const char *last_error = m->rec->last_error;
    char *log_path = NULL;
    molt_err e = {0};
    const molt_deployment *dep = m->dep;
    if (dep) {
        const char *shown = dep->pending == MOLT_PENDING_NONE       ? state_name(m)
                            : dep->pending == MOLT_PENDING_COMMIT   ? "awaiting-commit"
                            : dep->pending == MOLT_PENDING_ROLLBACK ? "rollback-pending"
                                                                    : "awaiting-reboot";
        json_object_set_new(st, "state", json_string(shown));
        json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:b, s:o, s:o?}",
                              "id", dep->id, "artifact_name", dep->artifact.name,
                              "payload_type", dep->artifact.payload_type, "started", dep->started,
                              "source", dep->source, "state", state_name(m),
                              "pending", nullable(molt_pending_name(dep->pending)),
                              "running", someone_running(m), "error", nullable(dep->error),
                              "progress", progress_json(m, dep->id));
        if (d && dep->pending == MOLT_PENDING_ROLLBACK && dep->rollback_error)
            json_object_set_new(d, "rollback_error", json_string(dep->rollback_error));
        json_object_set_new(st, "deployment", d ? d : json_null());
        if (!last_error)
            last_error = dep->error;
        molt_deplog_find(m->logs_dir, dep->id, &log_path, &e);
    } else {
        json_object_set_new(st, "state", json_string("idle"));
        json_object_set_new(st, "deployment", json_null());
        molt_deplog_latest(m->logs_dir, &log_path, NULL, &e);
    }
    json_object_set_new(st, "last_error", nullable(last_error));
    const molt_last_deployment *last = m->rec->last;
    json_t *lj = last ? json_pack("{s:s, s:s, s:s, s:b, s:s}", "id", last->id, "artifact_name",
                                  last->artifact_name, "result", molt_result_name(last->result),
                                  "rolled_back", last->rolled_back, "finished", last->finished)
                      : NULL;
    json_object_set_new(st, "last_deployment", lj ? lj : json_null());
    json_t *log = NULL;
    if (log_path && molt_deplog_read(log_path, 10, &log, &e) < 0)
        log = NULL;
    json_object_set_new(st, "log", log ? log : json_array());
    free(log_path);
    *ret = st;
    return 0;
}
