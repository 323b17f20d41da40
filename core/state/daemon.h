/* SPDX-License-Identifier: Apache-2.0 */
/* `molt daemon`: the Mender-compatible client loop (docs/reference §3): authenticate, poll for
 * deployments and install them through the state machine, report their status, send the
 * inventory; resume an unfinished deployment after a restart; answer `molt check-update` and
 * `molt send-inventory` on a root-only control socket. docs/fleet.md describes it. */
#ifndef MOLT_STATE_DAEMON_H
#define MOLT_STATE_DAEMON_H

#include "config/config.h"
#include "util/err.h"

/* Run until SIGTERM or SIGINT (then 0). Each job (poll, inventory, a deployment) runs in a
 * short-lived child process, so the long-lived process never loads libcurl or the device key
 * (docs/performance.md). A deployment in progress at SIGTERM (passed on to the child) either
 * finishes its current step or stays recorded in the store (it is resumed at the next start).
 * Errors that stop the daemon before its loop: MOLT_ECONFIG (no server.url), key, identity or
 * control socket failures. */
int molt_daemon_run(const molt_config *cfg, molt_err *err);

/* Whether cfg lets the daemon start: server.url set, an http(s) URL. 0, or MOLT_ECONFIG with the
 * reason (`molt daemon --check`: the systemd unit's ExecCondition and the package's postinst). */
int molt_daemon_check_config(const molt_config *cfg, molt_err *err);

/* Send command ("check-update" or "send-inventory") to the running daemon through
 * cfg->control_socket and wait for its answer. MOLT_ENOTFOUND when no daemon listens;
 * MOLT_EINVAL when the daemon refused (not root, unknown command). */
int molt_daemon_control(const molt_config *cfg, const char *command, molt_err *err);

/* Seconds to wait after the n-th consecutive failed server call (docs/reference §3.6): from 60 s
 * doubling up to retry_poll_interval; an interval under 60 s is used as it is. Pure. */
int molt_daemon_backoff(int retry_poll_interval, int n);

#endif
