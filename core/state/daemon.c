/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon loop of `molt daemon` (reference §3, §3.6): one thread, poll() on a signal pipe
 * and the control socket between timed jobs (update poll, inventory, pending reports).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "host/proc.h"
#include "server/attributes.h"
#include "server/client.h"
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
#define CONTROL_MAX 64

typedef struct daemon_ctx {
    const molt_config *cfg;
    molt_device_key *key;
    char *identity;
    molt_server *srv;
    int ctl_fd;
    char *record_path;
    char *logs_dir;
    time_t next_update, next_inventory;
    int failures;                 /* consecutive failed server calls: the backoff */
    bool inventory_sent_once;
    bool have_inv_hash;
    unsigned char inv_hash[32];
    unsigned inv_auth;            /* the token generation the hash was sent with */
    const char *dep_id;           /* the deployment the hook reports for */
    const molt_server_deployment *announced;   /* the deployment deploy() installs, or NULL */
    long watchdog_ms;             /* 0 = no systemd watchdog */
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

/* Seconds to wait after the n-th consecutive failure (reference §3.6: from 60 s doubling up to
 * retry_poll_interval; an interval under 60 s is used as it is). */
static int backoff(const daemon_ctx *d, int n)
{
    int cap = d->cfg->retry_poll_interval;
    if (cap < 60)
        return cap;
    long s = 60;
    for (int i = 1; i < n && s < cap; i++)
        s *= 2;
    return s > cap ? cap : (int)s;
}

static void handle_control(daemon_ctx *d);

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
        if (n > 0 && (p[1].revents & POLLIN)) {
            handle_control(d);
            /* a command moved a job to now: let the loop run it */
            if (d->next_update <= time(NULL) || d->next_inventory <= time(NULL))
                return true;
        }
    }
    return false;
}

/* ---- the control socket ------------------------------------------------------------------- */

static int control_listen(daemon_ctx *d, molt_err *err)
{
    const char *path = d->cfg->control_socket;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return molt_err_set(err, MOLT_ECONFIG, "server.control_socket %s: longer than %zu "
                            "characters", path, sizeof addr.sun_path - 1);
    memcpy(addr.sun_path, path, strlen(path));
    char *dir = strdup(path);
    if (!dir)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    int r = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        r = molt_mkdir_p(dir, 0755, err);
    }
    free(dir);
    if (r < 0)
        return r;
    if (unlink(path) != 0 && errno != ENOENT)
        return molt_err_errno(err, MOLT_EIO, errno, "removing the old control socket %s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "control socket");
    /* Created 0600 from the start: no instant where others could connect. */
    mode_t old = umask(0177);
    int b = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (b != 0 || listen(fd, 8) != 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "control socket %s", path);
        close(fd);
        return r;
    }
    d->ctl_fd = fd;
    return 0;
}

static void handle_control(daemon_ctx *d)
{
    int c = accept4(d->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    char buf[CONTROL_MAX + 1];
    const char *answer = "error unknown command\n";
    struct timeval tv = {.tv_sec = 2};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* The line first (so a refused client is not cut off while it writes), then who sent it.
     * One line; read until its newline (or EOF), bounded by the buffer and SO_RCVTIMEO. */
    size_t got = 0;
    while (got < CONTROL_MAX && !memchr(buf, '\n', got)) {
        ssize_t n = read(c, buf + got, CONTROL_MAX - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    bool have_cred = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0;
    if (!have_cred || cred.uid != 0) {
        molt_log_warning("control socket: refused \"%.32s\" from uid %ld (root only)", buf,
                         have_cred ? (long)cred.uid : -1L);
        answer = "error only root may control molt\n";
    } else {
        if (strcmp(buf, "check-update") == 0) {
            d->next_update = 0;
            answer = "ok\n";
        } else if (strcmp(buf, "send-inventory") == 0) {
            d->next_inventory = 0;
            d->have_inv_hash = false;   /* asked for: send even if unchanged */
            answer = "ok\n";
        }
        molt_log_info("control socket: %s: %s", buf, answer);
    }
    if (send(c, answer, strlen(answer), MSG_NOSIGNAL) < 0)
        molt_log_debug("control socket: the client left before the answer");
    close(c);
}

int molt_daemon_control(const molt_config *cfg, const char *command, molt_err *err)
{
    const char *path = cfg->control_socket;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return molt_err_set(err, MOLT_ECONFIG, "server.control_socket %s: too long", path);
    memcpy(addr.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "control socket");
    int r = 0;
    char buf[CONTROL_MAX + 1];
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        r = molt_err_errno(err, e == ENOENT || e == ECONNREFUSED ? MOLT_ENOTFOUND
                                : e == EACCES || e == EPERM      ? MOLT_EINVAL
                                                                 : MOLT_EIO,
                           e, "cannot reach the molt daemon at %s%s", path,
                           e == EACCES ? " (only root may control molt)" : "");
        goto out;
    }
    int len = snprintf(buf, sizeof buf, "%s\n", command);
    if (len < 0 || (size_t)len >= sizeof buf) {
        r = molt_err_set(err, MOLT_EINVAL, "control command too long: %s", command);
        goto out;
    }
    /* One send, without SIGPIPE: a daemon that answers and closes early must not kill us. */
    if (send(fd, buf, (size_t)len, MSG_NOSIGNAL) != len) {
        r = molt_err_errno(err, MOLT_EIO, errno, "sending %s to the molt daemon", command);
        goto out;
    }
    shutdown(fd, SHUT_WR);
    ssize_t n = read(fd, buf, CONTROL_MAX);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (strcmp(buf, "ok") != 0)
        r = molt_err_set(err, MOLT_EINVAL, "the molt daemon refused %s: %s", command,
                         n > 0 ? (strncmp(buf, "error ", 6) == 0 ? buf + 6 : buf)
                               : "no answer");
out:
    close(fd);
    return r;
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

/* The state hook: the statuses around the states (reference §3.3). */
static int hook(void *ctx, const char *state, molt_err *err)
{
    daemon_ctx *d = ctx;
    if (g_stop) {
        /* Stop between steps: the store names the next step, resumed at the next start. */
        molt_log_info("stopping before %s: the deployment stays recorded", state);
        _exit(0);
    }
    if (d->watchdog_ms > 0)
        notify("WATCHDOG=1");
    int r;
    if (strcmp(state, "ArtifactCommit") == 0) {
        /* Credentials may have changed with the update (§3.1); this status is the last abort
         * check and must arrive before the commit. */
        molt_server_drop_token(d->srv);
        r = report_hard(d, d->dep_id, "installing", err);
        if (g_stop) {
            molt_log_info("stopping before ArtifactCommit: the deployment stays recorded");
            _exit(0);
        }
        return r;
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

/* Run a shell command for an automatic reboot, then wait to be stopped by it. */
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
    while (wait_for(d, 3600))
        ;
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
    if (o == MOLT_OUTCOME_AWAIT_COMMIT) {
        /* The daemon commits on its own once the server confirmed (the hook). */
        if (open_machine(d, &m, &e) == 0)
            molt_machine_commit(m, &o, &e);
        molt_machine_free(m);
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
        d->next_inventory = 0;   /* new provides: tell the server (§3.6) */
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
    d->failures++;
    int wait = molt_server_retry_after(d->srv);
    if (wait < 0)
        wait = backoff(d, d->failures);
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
        failed_call(d, &e, &d->next_update, "checking for an update");
        return;
    }
    int r = molt_server_next(d->srv, prov, &dep, &e);
    json_decref(prov);
    if (r < 0) {
        failed_call(d, &e, &d->next_update, "checking for an update");
        return;
    }
    d->failures = 0;
    d->next_update = time(NULL) + d->cfg->update_poll_interval;
    if (!dep) {
        molt_log_debug("no update");
        if (!d->inventory_sent_once)
            d->next_inventory = 0;
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
    d->next_inventory = time(NULL) + d->cfg->inventory_poll_interval;
    /* Unchanged since the last accepted PUT with the same token: skip (a new token, e.g. after
     * the server forgot the device, resets this, as the C++ client does). */
    if (d->have_inv_hash && d->inv_auth == molt_server_auth_count(d->srv) &&
        memcmp(h, d->inv_hash, sizeof h) == 0) {
        molt_log_debug("inventory unchanged: not sent");
        goto out;
    }
    if (molt_server_inventory(d->srv, body, &e) < 0)
        goto fail;
    d->failures = 0;
    memcpy(d->inv_hash, h, sizeof h);
    d->have_inv_hash = true;
    d->inv_auth = molt_server_auth_count(d->srv);
    d->inventory_sent_once = true;
    molt_log_info("inventory sent (%zu attributes)", json_array_size(body));
    goto out;
fail:
    failed_call(d, &e, &d->next_inventory, "sending the inventory");
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

static int setup(daemon_ctx *d, molt_err *err)
{
    const molt_config *cfg = d->cfg;
    molt_key_type type;
    int r;
    if ((r = molt_daemon_check_config(cfg, err)) < 0)
        return r;
    d->record_path = molt_path_join(cfg->data_dir, "server-deployment.json");
    d->logs_dir = molt_path_join(cfg->data_dir, MOLT_DEPLOG_DIR);
    if (!d->record_path || !d->logs_dir)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    if ((r = molt_mkdir_p(cfg->data_dir, 0700, err)) < 0 ||
        (r = molt_key_type_parse(cfg->device_key_type, &type, err)) < 0 ||
        (r = molt_device_key_load_pkcs11(&d->key, cfg->device_key, type, cfg->pkcs11_module,
                                         err)) < 0 ||
        (r = molt_identity_json((const char *const *)cfg->identity_scripts,
                                cfg->n_identity_scripts, &d->identity, err)) < 0)
        return r;
    molt_log_info("device identity: %s", d->identity);
    if (cfg->proxy) {
        /* The presigned downloads go through libcurl in the state machine: the environment
         * reaches them too. */
        setenv("https_proxy", cfg->proxy, 1);
        setenv("http_proxy", cfg->proxy, 1);
    }
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
    if ((r = molt_server_new(&d->srv, &o, err)) < 0 || (r = control_listen(d, err)) < 0)
        return r;
    const char *wd = getenv("WATCHDOG_USEC");
    if (wd && atol(wd) > 0)
        d->watchdog_ms = atol(wd) / 1000;
    return 0;
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
    if ((r = setup(&d, err)) < 0)
        goto out;
    molt_log_info("molt daemon %s: server %s", MOLT_VERSION, cfg->server_url);
    notify("READY=1");
    /* An unfinished deployment first (a restart or a reboot in the middle of one). */
    conclude(&d);
    while (!g_stop) {
        time_t now = time(NULL);
        if (access(d.record_path, F_OK) == 0) {
            /* A final status that did not arrive yet: before anything new. */
            conclude(&d);
            if (access(d.record_path, F_OK) == 0) {
                /* Not concluded (a rollback pending until its cause passes, a status that did
                 * not arrive): try again after the backoff, not at once. */
                d.failures++;
                int wait = backoff(&d, d.failures);
                molt_log_info("the deployment is not concluded yet: trying again in %d s", wait);
                if (!wait_for(&d, wait))
                    break;
                continue;
            }
        } else if (d.next_inventory <= now) {
            send_inventory(&d);
        } else if (d.next_update <= now) {
            poll_update(&d);
        }
        if (g_stop)
            break;
        now = time(NULL);
        time_t next = d.next_update < d.next_inventory ? d.next_update : d.next_inventory;
        if (next > now && !wait_for(&d, (long)(next - now)))
            break;
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
    molt_server_free(d.srv);
    molt_device_key_free(d.key);
    free(d.identity);
    free(d.record_path);
    free(d.logs_dir);
    return r;
}
