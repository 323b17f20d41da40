/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon loop of `molt daemon` (docs/reference §3, §3.6): one thread, poll() on a signal pipe
 * and the control socket (state/control.c) between timed jobs (update poll, inventory, pending
 * reports).
 *
 * Each job runs in a short-lived child (a "burst": its requests, the device key's signature,
 * the download and install of a deployment), so the long-lived parent never maps libcurl,
 * libssl or OpenSSL's providers: between polls it holds only the timers, the backoff, the
 * inventory's hash and the server's token, which the child sends back over a pipe before it
 * exits (docs/performance.md, "The idle daemon"). The child dies with the parent
 * (PR_SET_PDEATHSIG); a SIGTERM to the parent is passed on to it, and the parent waits for it.
 *
 * A server deployment is recorded in <data_dir>/server-deployment.json ({"id", "final"})
 * before anything is reported, and removed once its final status was accepted; the state
 * machine's store holds the deployment itself. After a restart the record says which server
 * deployment the store's deployment (or its last result) belongs to, so a final status always
 * reaches the server, however the process died. */
#include "state/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "util/proc.h"
#include "server/attributes.h"
#include "server/client.h"
#include "state/control.h"
#include "state/deplog.h"
#include "state/machine.h"
#include "trust/device_key.h"
#include "util/encoding.h"
#include "util/fs.h"
#include "util/log.h"

/* Attempts of the statuses that must arrive (pre-commit and final) before the daemon gives up
 * for now; the final one is retried again at the next poll (it stays recorded). */
#define REPORT_ATTEMPTS 10
#define RECORD_MAX 4096
/* Longest server token a child may hand back (the client keeps at most as much). */
#define TOKEN_MAX (64 * 1024)
#define RESULT_MAGIC 0x6d6f6c74u   /* "molt" */

/* What the parent keeps between jobs; a child gets it by fork() and sends it back changed. */
typedef struct daemon_state {
    time_t next_update, next_inventory;
    int failures;                 /* consecutive failed server calls: the backoff */
    bool inventory_sent_once;
    bool have_inv_hash;
    unsigned char inv_hash[32];
    unsigned tokens;              /* tokens obtained so far, by every child */
    unsigned inv_auth;            /* `tokens` when the inventory's hash was sent */
} daemon_state;

/* A child's answer: written once, before it exits, followed by token_len bytes of token. */
typedef struct child_result {
    uint32_t magic;
    uint32_t token_len;           /* 0: no token (not authenticated, or dropped) */
    daemon_state st;
    bool halt;                    /* a reboot was started: wait to be stopped */
    molt_err err;                 /* why the child could not start its job (key, libcurl) */
} child_result;

/* The jobs a child runs. */
typedef enum daemon_job { JOB_SETUP, JOB_CONCLUDE, JOB_INVENTORY, JOB_UPDATE } daemon_job;
static const char *const job_names[] = {"setup", "conclude", "inventory", "update"};

typedef struct daemon_ctx {
    const molt_config *cfg;
    char *identity;
    int ctl_fd;                   /* the parent's; -1 in a child */
    char *record_path;
    char *logs_dir;
    long watchdog_ms;             /* 0 = no systemd watchdog (and in a child: the parent pings) */
    daemon_state st;
    char *token;                  /* the server's token, carried from child to child */
    bool want_update, want_inventory;   /* control commands not applied yet */
    bool halt;                    /* a reboot was started */
    /* in a child only */
    molt_device_key *key;
    molt_server *srv;
    bool hook_stopped;            /* the hook stopped the machine (a signal) */
    const char *dep_id;           /* the deployment the hook reports for */
    const molt_server_deployment *announced;   /* the deployment deploy() installs, or NULL */
} daemon_ctx;

static volatile sig_atomic_t g_stop;
static int g_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    g_stop = 1;
    if (g_pipe[1] >= 0 && write(g_pipe[1], "x", 1) < 0) {
        /* the flag is enough */
    }
    errno = saved;
}

/* ---- systemd notification (sd_notify's datagram protocol, no libsystemd needed) ---------- */

static void notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(((struct
                                                                   sockaddr_un *)0)->sun_path))
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, path, strlen(path));
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, len) < 0)
        molt_log_debug("sd_notify %s: %s", state, strerror(errno));
    close(fd);
}

/* ---- waiting ------------------------------------------------------------------------------ */

int molt_daemon_backoff(int retry_poll_interval, int n)
{
    int cap = retry_poll_interval;
    if (cap < 60)
        return cap;
    long s = 60;
    for (int i = 1; i < n && s < cap; i++)
        s *= 2;
    return s > cap ? cap : (int)s;
}

static int backoff(const daemon_ctx *d, int n)
{
    return molt_daemon_backoff(d->cfg->retry_poll_interval, n);
}

/* A command from the control socket, kept until no child runs (a child's answer would
 * overwrite the timers it moves). */
static void handle_control(daemon_ctx *d)
{
    switch (molt_control_serve(d->ctl_fd)) {
    case MOLT_CONTROL_CHECK_UPDATE: d->want_update = true; break;
    case MOLT_CONTROL_SEND_INVENTORY: d->want_inventory = true; break;
    default: break;
    }
}

static void apply_control(daemon_ctx *d)
{
    if (d->want_update)
        d->st.next_update = 0;
    if (d->want_inventory) {
        d->st.next_inventory = 0;
        d->st.have_inv_hash = false;   /* asked for: send even if unchanged */
    }
    d->want_update = d->want_inventory = false;
}

static void drain_signal_pipe(void)
{
    char b[16];
    while (read(g_pipe[0], b, sizeof b) > 0)
        ;
}

/* Wait up to secs (or a control command, or a signal). false when the daemon must stop. */
static bool wait_for(daemon_ctx *d, long secs)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!g_stop) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ms = secs * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
                                      (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left_ms <= 0)
            return true;
        if (d->watchdog_ms > 0 && left_ms > d->watchdog_ms / 2)
            left_ms = d->watchdog_ms / 2;
        struct pollfd p[2] = {{.fd = g_pipe[0], .events = POLLIN},
                              {.fd = d->ctl_fd, .events = POLLIN}};
        int n = poll(p, d->ctl_fd >= 0 ? 2 : 1, (int)left_ms);
        if (d->watchdog_ms > 0)
            notify("WATCHDOG=1");
        if (n > 0 && (p[0].revents & POLLIN))
            drain_signal_pipe();
        if (n > 0 && d->ctl_fd >= 0 && (p[1].revents & POLLIN)) {
            handle_control(d);
            apply_control(d);
            /* a command moved a job to now: let the loop run it */
            if (d->st.next_update <= time(NULL) || d->st.next_inventory <= time(NULL))
                return true;
        }
    }
    return false;
}

int molt_daemon_control(const molt_config *cfg, const char *command, molt_err *err)
{
    return molt_control_request(cfg->control_socket, command, err);
}

/* ---- the record of the server deployment -------------------------------------------------- */

static json_t *record_load(const daemon_ctx *d)
{
    char *text = NULL;
    size_t len;
    if (molt_read_file(d->record_path, RECORD_MAX, &text, &len, NULL) < 0)
        return NULL;
    json_t *j = json_loadb(text, len, 0, NULL);
    free(text);
    if (!json_string_value(json_object_get(j, "id"))) {
        /* Torn or edited by hand: it cannot be reported, and it must not block the polls. */
        molt_log_warning("%s: no deployment id in it: removed", d->record_path);
        unlink(d->record_path);
        json_decref(j);
        return NULL;
    }
    return j;
}

static int record_save(const daemon_ctx *d, const char *id, const char *final, molt_err *err)
{
    json_t *j = json_pack("{s:s, s:s?}", "id", id, "final", final);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int r = molt_write_file_atomic(d->record_path, text, strlen(text), 0600, err);
    free(text);
    return r;
}

/* ---- reports ------------------------------------------------------------------------------ */

/* A status that must arrive: retried with backoff. 0, MOLT_ECANCELED (409), or the last error
 * when the attempts ran out or the daemon is stopping. */
static int report_hard(daemon_ctx *d, const char *id, const char *status, molt_err *err)
{
    int r = 0;
    for (int i = 1; i <= REPORT_ATTEMPTS; i++) {
        r = molt_server_status(d->srv, id, status, err);
        if (r == 0 || r == MOLT_ECANCELED || r == MOLT_EPROTOCOL)
            return r;
        int wait = molt_server_retry_after(d->srv);
        if (wait < 0)
            wait = backoff(d, i);
        molt_log_warning("status %s of deployment %s: %s; retrying in %d s (%d/%d)", status,
                         id, err->msg, wait, i, REPORT_ATTEMPTS);
        if (i == REPORT_ATTEMPTS || !wait_for(d, wait))
            break;
    }
    return r;
}

/* Stop between steps: the store names the next step, resumed at the next start. */
static int hook_stop(daemon_ctx *d, const char *state)
{
    molt_log_info("stopping before %s: the deployment stays recorded", state);
    d->hook_stopped = true;
    return MOLT_HOOK_STOP;
}

/* The state hook: the statuses around the states (docs/reference §3.3). */
static int hook(void *ctx, const char *state, molt_err *err)
{
    daemon_ctx *d = ctx;
    if (g_stop)
        return hook_stop(d, state);
    int r;
    if (strcmp(state, "ArtifactCommit") == 0) {
        /* Credentials may have changed with the update (docs/reference §3.1); this status is the last abort
         * check and must arrive before the commit. */
        molt_server_drop_token(d->srv);
        r = report_hard(d, d->dep_id, "installing", err);
        return g_stop ? hook_stop(d, state) : r;
    }
    const char *status = strcmp(state, "ArtifactReboot") == 0 ? "rebooting" : "installing";
    r = molt_server_status(d->srv, d->dep_id, status, err);
    if (r == MOLT_ECANCELED)
        return r;
    if (r < 0)
        molt_log_warning("status %s: %s (ignored)", status, err->msg);
    return 0;
}

static void upload_log(daemon_ctx *d, const char *id)
{
    char *path = NULL, *body = NULL;
    size_t len = 0;
    molt_err e = {0};
    if (molt_deplog_find(d->logs_dir, id, &path, &e) < 0 ||
        molt_deplog_upload_body(path, MOLT_DEPLOG_UPLOAD_MAX, &body, &len, &e) < 0) {
        molt_log_warning("deployment log of %s: %s", id, e.msg);
        goto out;
    }
    /* 413 (MOLT_ELIMIT) and other refusals are final; network trouble is retried a little. */
    int r = 0;
    for (int i = 1; i <= 3; i++) {
        r = molt_server_log(d->srv, id, body, len, &e);
        if (r == 0 || r == MOLT_ELIMIT || r == MOLT_EPROTOCOL || r == MOLT_ECANCELED)
            break;
        if (i == 3 || !wait_for(d, backoff(d, i)))
            break;
    }
    if (r < 0)
        molt_log_warning("uploading the deployment log: %s", e.msg);
out:
    free(path);
    free(body);
}

/* Report the final status of the recorded deployment, then its log on failure. true when the
 * server has it (or will never take it: 409, 404). */
static bool report_final(daemon_ctx *d, const char *id, const char *final)
{
    molt_err e = {0};
    molt_log_info("deployment %s: reporting %s", id, final);
    int r = report_hard(d, id, final, &e);
    if (r < 0 && r != MOLT_ECANCELED && r != MOLT_EPROTOCOL) {
        molt_log_error("deployment %s: the %s status did not arrive (%s); retrying later", id,
                       final, e.msg);
        return false;
    }
    if (r < 0)
        molt_log_warning("deployment %s: %s", id, e.msg);
    if (r == 0 && strcmp(final, "failure") == 0)
        upload_log(d, id);
    return true;
}

/* ---- deployments -------------------------------------------------------------------------- */

static int open_machine(daemon_ctx *d, molt_machine **ret, molt_err *err)
{
    int r = molt_machine_open(ret, d->cfg, err);
    if (r == 0)
        molt_machine_set_state_hook(*ret, hook, d);
    return r;
}

/* Run a shell command for an automatic reboot; the parent then waits to be stopped by it. */
static void reboot_device(daemon_ctx *d)
{
    const char *cmd = d->cfg->reboot_command;
    if (!cmd) {
        molt_log_error("a reboot is required but server.reboot_command is null: reboot the "
                       "device to continue the deployment");
    } else {
        const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        molt_proc_opts o = {.what = "reboot command", .stdout_level = MOLT_LOG_INFO,
                            .stdout_prefix = "reboot", .stderr_level = MOLT_LOG_WARNING,
                            .stderr_prefix = "reboot", .timeout_ms = 300000};
        molt_proc *p = NULL;
        molt_err e = {0};
        int status = 0;
        molt_log_info("rebooting the device: %s", cmd);
        if (molt_proc_spawn(&p, argv, &o, &e) < 0 || molt_proc_wait(p, &status, &e) < 0)
            molt_log_error("reboot command: %s", e.msg);
        molt_proc_free(p);
    }
    /* The device goes down now; the deployment resumes at the next start. */
    d->halt = true;
}

/* Install (uri) or resume (uri NULL) the recorded deployment id, commit it when it waits for
 * that. false when the daemon must stop (a reboot, a signal). */
static bool drive(daemon_ctx *d, const char *id, const char *uri)
{
    molt_machine *m = NULL;
    molt_outcome o = MOLT_OUTCOME_FAILED;
    molt_err e = {0};
    d->dep_id = id;
    /* The artifact must be the one the deployment announced (name, device types): checked
     * after its header is read, before Download. */
    if (open_machine(d, &m, &e) < 0 ||
        (uri && molt_machine_set_deployment_id(m, id, &e) < 0) ||
        (uri && d->announced &&
         molt_machine_set_expected(m, d->announced->artifact_name, d->announced->device_types,
                                   &e) < 0)) {
        molt_log_error("deployment %s: %s", id, e.msg);
        molt_machine_free(m);
        return true;
    }
    if (uri) {
        /* The deployment's log from the start: a download refused before the machine records
         * the deployment (an expired URL) is then in the log the server gets. */
        molt_err le = {0};
        if (molt_deplog_open(d->logs_dir, id, d->cfg->keep_logs > 0 ? d->cfg->keep_logs : 5,
                             NULL, &le) < 0)
            molt_log_warning("deployment log: %s", le.msg);
        molt_machine_install(m, uri, &o, &e);
    } else {
        molt_machine_resume(m, &o, &e);
    }
    molt_machine_free(m);
    m = NULL;
    if (o == MOLT_OUTCOME_AWAIT_COMMIT && !d->hook_stopped) {
        /* The daemon commits on its own once the server confirmed (the hook). */
        if (open_machine(d, &m, &e) == 0)
            molt_machine_commit(m, &o, &e);
        molt_machine_free(m);
    }
    if (d->hook_stopped) {
        molt_log_open_deployment(NULL, NULL);
        return false;
    }
    if (o == MOLT_OUTCOME_REBOOT) {
        reboot_device(d);
        return false;
    }
    if (o == MOLT_OUTCOME_FAILED && e.msg[0])
        molt_log_error("deployment %s: %s", id, e.msg);
    molt_log_open_deployment(NULL, NULL);
    return !g_stop;
}

/* The final status of the recorded deployment after the machine is done with it: from the
 * store's last deployment when it is this one; a deployment that never started failed. */
static const char *final_of(daemon_ctx *d, const char *id)
{
    molt_machine *m = NULL;
    molt_err e = {0};
    const char *final = "failure";
    if (molt_machine_open(&m, d->cfg, &e) == 0)
        final = molt_machine_final(m, id);
    molt_machine_free(m);
    return final;
}

/* Finish whatever the record names: resume the deployment, then report. */
static void conclude(daemon_ctx *d)
{
    json_t *rec = record_load(d);
    if (!rec)
        return;
    const char *id = json_string_value(json_object_get(rec, "id"));
    const char *final = json_string_value(json_object_get(rec, "final"));
    molt_err e = {0};
    if (!final) {
        if (!drive(d, id, NULL))
            goto out;
        final = final_of(d, id);
        if (!final)
            goto out;
        if (record_save(d, id, final, &e) < 0)
            molt_log_error("%s", e.msg);
    }
    if (report_final(d, id, final)) {
        if (unlink(d->record_path) != 0 && errno != ENOENT)
            molt_log_error("removing %s: %s", d->record_path, strerror(errno));
        d->st.next_inventory = 0;   /* new provides: tell the server (docs/reference §3.6) */
    }
out:
    json_decref(rec);
}

static void deploy(daemon_ctx *d, const molt_server_deployment *dep)
{
    molt_err e = {0};
    /* The query of a presigned URL is a credential: not in the logs. */
    molt_log_info("deployment %s: artifact %s from %.*s%s", dep->id,
                  dep->artifact_name ? dep->artifact_name : "(unnamed)",
                  (int)strcspn(dep->uri, "?"), dep->uri, strchr(dep->uri, '?') ? "?..." : "");
    if (record_save(d, dep->id, NULL, &e) < 0) {
        molt_log_error("deployment %s: %s", dep->id, e.msg);
        return;
    }
    int r = molt_server_status(d->srv, dep->id, "downloading", &e);
    if (r == MOLT_ECANCELED) {
        molt_log_info("deployment %s: aborted on the server before the download", dep->id);
        record_save(d, dep->id, "failure", &e);
    } else {
        if (r < 0)
            molt_log_warning("status downloading: %s (ignored)", e.msg);
        d->announced = dep;
        bool go_on = drive(d, dep->id, dep->uri);
        d->announced = NULL;
        if (!go_on)
            return;
        const char *final = final_of(d, dep->id);
        if (!final || record_save(d, dep->id, final, &e) < 0)
            return;
    }
    conclude(d);
}

/* ---- polling ------------------------------------------------------------------------------ */

static void failed_call(daemon_ctx *d, const molt_err *e, time_t *next, const char *what)
{
    d->st.failures++;
    int wait = d->srv ? molt_server_retry_after(d->srv) : -1;
    if (wait < 0)
        wait = backoff(d, d->st.failures);
    if (e->code == MOLT_ESTATE)
        molt_log_info("%s: %s; trying again in %d s", what, e->msg, wait);
    else
        molt_log_error("%s: %s; trying again in %d s", what, e->msg, wait);
    *next = time(NULL) + wait;
}

static json_t *device_provides(daemon_ctx *d, molt_err *err)
{
    molt_machine *m = NULL;
    json_t *prov = NULL;
    char *dt = NULL;
    if (molt_machine_open(&m, d->cfg, err) < 0 || molt_machine_provides(m, &prov, err) < 0 ||
        molt_config_device_type(d->cfg, &dt, err) < 0) {
        json_decref(prov);
        prov = NULL;
    } else {
        json_object_set_new(prov, "device_type", json_string(dt));
    }
    free(dt);
    molt_machine_free(m);
    return prov;
}

static void poll_update(daemon_ctx *d)
{
    molt_err e = {0};
    molt_server_deployment *dep = NULL;
    json_t *prov = device_provides(d, &e);
    if (!prov) {
        failed_call(d, &e, &d->st.next_update, "checking for an update");
        return;
    }
    int r = molt_server_next(d->srv, prov, &dep, &e);
    json_decref(prov);
    if (r < 0) {
        failed_call(d, &e, &d->st.next_update, "checking for an update");
        return;
    }
    d->st.failures = 0;
    d->st.next_update = time(NULL) + d->cfg->update_poll_interval;
    if (!dep) {
        molt_log_debug("no update");
        if (!d->st.inventory_sent_once)
            d->st.next_inventory = 0;
        return;
    }
    deploy(d, dep);
    molt_server_deployment_free(dep);
}

static void send_inventory(daemon_ctx *d)
{
    molt_err e = {0};
    json_t *attrs = NULL, *body = NULL, *prov = device_provides(d, &e);
    char *text = NULL;
    if (!prov ||
        molt_inventory_collect((const char *const *)d->cfg->inventory_dirs,
                               d->cfg->n_inventory_dirs, &attrs, &e) < 0)
        goto fail;
    const char *key;
    json_t *v;
    json_object_foreach(prov, key, v)
        if (json_is_string(v) && molt_attr_add(attrs, key, json_string_value(v), &e) < 0)
            goto fail;
    if (molt_attr_add(attrs, "mender_client_version", "molt " MOLT_VERSION, &e) < 0)
        goto fail;
    body = molt_inventory_body(attrs);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        molt_err_set(&e, MOLT_ENOMEM, "out of memory");
        goto fail;
    }
    unsigned char h[32];
    molt_sha256(text, strlen(text), h);
    d->st.next_inventory = time(NULL) + d->cfg->inventory_poll_interval;
    /* Unchanged since the last accepted PUT with the same token: skip (a new token, e.g. after
     * the server forgot the device, resets this, as the C++ client does). */
    if (d->st.have_inv_hash && d->st.inv_auth == d->st.tokens + molt_server_auth_count(d->srv) &&
        memcmp(h, d->st.inv_hash, sizeof h) == 0) {
        molt_log_debug("inventory unchanged: not sent");
        goto out;
    }
    if (molt_server_inventory(d->srv, body, &e) < 0)
        goto fail;
    d->st.failures = 0;
    memcpy(d->st.inv_hash, h, sizeof h);
    d->st.have_inv_hash = true;
    d->st.inv_auth = d->st.tokens + molt_server_auth_count(d->srv);
    d->st.inventory_sent_once = true;
    molt_log_info("inventory sent (%zu attributes)", json_array_size(body));
    goto out;
fail:
    failed_call(d, &e, &d->st.next_inventory, "sending the inventory");
out:
    free(text);
    json_decref(body);
    json_decref(attrs);
    json_decref(prov);
}

/* ---- the loop ----------------------------------------------------------------------------- */

int molt_daemon_check_config(const molt_config *cfg, molt_err *err)
{
    if (!cfg->server_url)
        return molt_err_set(err, MOLT_ECONFIG, "%s: server.url is not set: the daemon has no "
                            "server to talk to", cfg->path ? cfg->path : MOLT_DEFAULT_CONFIG);
    if (strncmp(cfg->server_url, "https://", 8) != 0 && strncmp(cfg->server_url, "http://", 7) != 0)
        return molt_err_set(err, MOLT_ECONFIG, "server.url \"%s\": expected an https:// (or "
                            "http://) URL", cfg->server_url);
    return 0;
}

/* What the parent needs before its loop: paths, the identity (scripts, no OpenSSL), the control
 * socket. The key and the server client are a child's (child_open). */
static int setup(daemon_ctx *d, molt_err *err)
{
    const molt_config *cfg = d->cfg;
    int r;
    if ((r = molt_daemon_check_config(cfg, err)) < 0)
        return r;
    d->record_path = molt_path_join(cfg->data_dir, "server-deployment.json");
    d->logs_dir = molt_path_join(cfg->data_dir, MOLT_DEPLOG_DIR);
    if (!d->record_path || !d->logs_dir)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    if ((r = molt_mkdir_p(cfg->data_dir, 0700, err)) < 0 ||
        (r = molt_identity_json((const char *const *)cfg->identity_scripts,
                                cfg->n_identity_scripts, &d->identity, err)) < 0)
        return r;
    molt_log_info("device identity: %s", d->identity);
    if ((r = molt_control_listen(cfg->control_socket, &d->ctl_fd, err)) < 0)
        return r;
    const char *wd = getenv("WATCHDOG_USEC");
    if (wd && atol(wd) > 0)
        d->watchdog_ms = atol(wd) / 1000;
    return 0;
}

/* ---- the children ------------------------------------------------------------------------- */

/* In a child: the device key (created at the first start) and the server client, with the
 * token an earlier child obtained. */
static int child_open(daemon_ctx *d, molt_err *err)
{
    const molt_config *cfg = d->cfg;
    molt_key_type type;
    int r;
    if ((r = molt_key_type_parse(cfg->device_key_type, &type, err)) < 0 ||
        (r = molt_device_key_load_pkcs11(&d->key, cfg->device_key, type, cfg->pkcs11_module,
                                         err)) < 0)
        return r;
    molt_server_opts o = {
        .url = cfg->server_url,
        .tenant_token = cfg->tenant_token,
        .identity_json = d->identity,
        .key = d->key,
        .ca_file = cfg->ca_file,
        .client_cert = cfg->client_cert,
        .client_key = cfg->client_key,
        .proxy = cfg->proxy,
        .connect_timeout = cfg->connect_timeout,
        .low_speed_time = cfg->low_speed_time,
    };
    if ((r = molt_server_new(&d->srv, &o, err)) < 0)
        return r;
    return d->token ? molt_server_set_token(d->srv, d->token, err) : 0;
}

/* The child's side of run_child: its own signal pipe (a signal to it must not wake the parent's
 * loop), no control socket, no watchdog pings (the parent pings while it waits); the job; the
 * answer; _exit (the parent's atexit handlers and stdio buffers are not the child's). */
static void child_main(daemon_ctx *d, daemon_job job, int fd)
{
    int old[2] = {g_pipe[0], g_pipe[1]}, fresh[2];
    g_pipe[1] = -1;   /* the handler must not write to a closed descriptor meanwhile */
    close(old[0]);
    close(old[1]);
    if (pipe2(fresh, O_CLOEXEC | O_NONBLOCK) == 0) {
        g_pipe[0] = fresh[0];
        g_pipe[1] = fresh[1];
    }
    close(d->ctl_fd);
    d->ctl_fd = -1;
    d->watchdog_ms = 0;

    child_result res = {.magic = RESULT_MAGIC};
    molt_err e = {0};
    if (child_open(d, &e) < 0) {
        res.err = e;
        if (job == JOB_INVENTORY)
            failed_call(d, &e, &d->st.next_inventory, "sending the inventory");
        else if (job == JOB_UPDATE)
            failed_call(d, &e, &d->st.next_update, "checking for an update");
        else if (job == JOB_CONCLUDE)
            molt_log_error("%s", e.msg);
    } else {
        switch (job) {
        case JOB_SETUP: break;
        case JOB_CONCLUDE: conclude(d); break;
        case JOB_INVENTORY: send_inventory(d); break;
        case JOB_UPDATE: poll_update(d); break;
        }
    }
    res.st = d->st;
    res.halt = d->halt;
    const char *token = d->srv ? molt_server_token(d->srv) : d->token;
    if (d->srv)
        res.st.tokens += molt_server_auth_count(d->srv);
    size_t tlen = token ? strlen(token) : 0;
    if (tlen > TOKEN_MAX)
        tlen = 0;   /* cannot happen (the client refuses longer ones): authenticate again */
    res.token_len = (uint32_t)tlen;
    if (molt_write_all(fd, &res, sizeof res, NULL, "result") == 0 && tlen)
        molt_write_all(fd, token, tlen, NULL, "result");
    close(fd);
    molt_server_free(d->srv);
    molt_device_key_free(d->key);
    _exit(0);
}

/* Run job in a child and wait for it: meanwhile ping the watchdog, take control commands (kept
 * for after the job), and pass a SIGTERM or SIGINT on to it. Then take its state. 0, or the
 * child's err (JOB_SETUP: the key or the server client failed), or MOLT_EIO when it could not
 * start or ended without an answer (counted as a failed call). */
static int run_child(daemon_ctx *d, daemon_job job, molt_err *err)
{
    int res_pipe[2], r = 0;
    if (pipe2(res_pipe, O_CLOEXEC) != 0)
        return molt_err_errno(err, MOLT_EIO, errno, "pipe");
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "fork");
        close(res_pipe[0]);
        close(res_pipe[1]);
        return r;
    }
    if (pid == 0) {
        if (molt_proc_die_with_parent(parent) != 0)
            _exit(1);
        close(res_pipe[0]);
        child_main(d, job, res_pipe[1]);
    }
    molt_proc_watch(pid);   /* killed with it should the parent die of SIGHUP or SIGQUIT */
    close(res_pipe[1]);
    size_t cap = sizeof(child_result) + TOKEN_MAX, got = 0;
    char *buf = malloc(cap);
    bool passed_on = false;
    for (;;) {
        if (g_stop && !passed_on) {
            molt_log_info("stopping: waiting for the running job (pid %d) to stop", (int)pid);
            kill(pid, SIGTERM);
            passed_on = true;
        }
        struct pollfd p[3] = {{.fd = res_pipe[0], .events = POLLIN},
                              {.fd = g_pipe[0], .events = POLLIN},
                              {.fd = d->ctl_fd, .events = POLLIN}};
        int n = poll(p, d->ctl_fd >= 0 ? 3 : 2, d->watchdog_ms > 0 ? (int)(d->watchdog_ms / 2) : -1);
        if (d->watchdog_ms > 0)
            notify("WATCHDOG=1");
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (p[1].revents & POLLIN)
            drain_signal_pipe();
        if (d->ctl_fd >= 0 && (p[2].revents & POLLIN))
            handle_control(d);
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = buf && got < cap ? read(res_pipe[0], buf + got, cap - got) : 0;
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            got += (size_t)k;
        }
    }
    close(res_pipe[0]);
    int status = 0;
    struct rusage ru = {0};
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    molt_proc_unwatch(pid);
    /* bench/daemon_rss.sh reads this line (the children's peak). */
    molt_log_debug("job %s: pid %d, peak RSS %ld KiB, CPU %ld ms", job_names[job], (int)pid,
                   ru.ru_maxrss, (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                                     (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000);
    child_result res;
    if (buf && got >= sizeof res)
        memcpy(&res, buf, sizeof res);
    if (!buf || got < sizeof res || res.magic != RESULT_MAGIC ||
        got != sizeof res + res.token_len) {
        if (WIFSIGNALED(status))
            r = molt_err_set(err, MOLT_EIO, "the daemon's job (pid %d) was killed by signal %d "
                             "(%s)", (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            r = molt_err_set(err, MOLT_EIO, "the daemon's job (pid %d) ended without an answer "
                             "(exit status %d)", (int)pid,
                             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        molt_log_error("%s", err->msg);
        d->st.failures++;
        goto out;
    }
    d->st = res.st;
    d->halt = res.halt;
    free(d->token);
    d->token = res.token_len ? strndup(buf + sizeof res, res.token_len) : NULL;
    if (res.err.code)
        r = molt_err_set(err, res.err.code, "%s", res.err.msg);
out:
    free(buf);
    apply_control(d);
    return r;
}

int molt_daemon_run(const molt_config *cfg, molt_err *err)
{
    daemon_ctx d = {.cfg = cfg, .ctl_fd = -1};
    struct sigaction sa = {.sa_handler = on_signal}, old_term, old_int;
    sigemptyset(&sa.sa_mask);
    int r;
    g_stop = 0;
    if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return molt_err_errno(err, MOLT_EIO, errno, "pipe");
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    signal(SIGPIPE, SIG_IGN);
    /* The key (created at the first start) and the server client, checked once in a child:
     * their failures stop the daemon before its loop, as they always did. */
    if ((r = setup(&d, err)) < 0 || (r = run_child(&d, JOB_SETUP, err)) < 0)
        goto out;
    molt_log_info("molt daemon %s: server %s", MOLT_VERSION, cfg->server_url);
    notify("READY=1");
    /* An unfinished deployment first (a restart or a reboot in the middle of one). */
    molt_err e = {0};
    if (access(d.record_path, F_OK) == 0)
        run_child(&d, JOB_CONCLUDE, &e);
    while (!g_stop && !d.halt) {
        time_t now = time(NULL);
        if (access(d.record_path, F_OK) == 0) {
            /* A final status that did not arrive yet: before anything new. */
            run_child(&d, JOB_CONCLUDE, &e);
            if (!g_stop && !d.halt && access(d.record_path, F_OK) == 0) {
                /* Not concluded (a rollback pending until its cause passes, a status that did
                 * not arrive): try again after the backoff, not at once. */
                d.st.failures++;
                int wait = backoff(&d, d.st.failures);
                molt_log_info("the deployment is not concluded yet: trying again in %d s", wait);
                if (!wait_for(&d, wait))
                    break;
                continue;
            }
        } else if (d.st.next_inventory <= now) {
            if (run_child(&d, JOB_INVENTORY, &e) < 0)
                d.st.next_inventory = time(NULL) + backoff(&d, d.st.failures);
        } else if (d.st.next_update <= now) {
            if (run_child(&d, JOB_UPDATE, &e) < 0)
                d.st.next_update = time(NULL) + backoff(&d, d.st.failures);
        }
        if (g_stop || d.halt)
            break;
        now = time(NULL);
        time_t next = d.st.next_update < d.st.next_inventory ? d.st.next_update
                                                             : d.st.next_inventory;
        if (next > now && !wait_for(&d, (long)(next - now)))
            break;
    }
    if (d.halt && !g_stop) {
        /* A reboot was started: the device goes down now; the deployment resumes at the next
         * start. */
        while (wait_for(&d, 3600))
            ;
    }
    molt_log_info("molt daemon: stopping");
    notify("STOPPING=1");
out:
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    if (d.ctl_fd >= 0) {
        close(d.ctl_fd);
        unlink(cfg->control_socket);
    }
    close(g_pipe[0]);
    close(g_pipe[1]);
    g_pipe[0] = g_pipe[1] = -1;
    free(d.token);
    free(d.identity);
    free(d.record_path);
    free(d.logs_dir);
    return r;
}
