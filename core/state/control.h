/* SPDX-License-Identifier: Apache-2.0 */
/* The control socket of `molt daemon` (docs/fleet.md): a root-only Unix stream socket where
 * `molt check-update` and `molt send-inventory` ask the running daemon to poll or send its
 * inventory now. One line per connection, one answer line ("ok" or "error <reason>"). */
#ifndef MOLT_STATE_CONTROL_H
#define MOLT_STATE_CONTROL_H

#include <stddef.h>
#include <sys/types.h>
#include "util/err.h"

/* Longest command line (without its newline) a client may send. */
#define MOLT_CONTROL_MAX 64

typedef enum molt_control_cmd {
    MOLT_CONTROL_UNKNOWN = 0,
    MOLT_CONTROL_CHECK_UPDATE,     /* "check-update": poll for a deployment now */
    MOLT_CONTROL_SEND_INVENTORY,   /* "send-inventory": send the inventory now, even unchanged */
} molt_control_cmd;

/* What the daemon read from one client: the command (its first line, without "\r\n"), parsed.
 * Pure: the line is at most len bytes, need not be NUL-terminated and may lack its newline (a
 * client that closed early). Anything but an exact known command is MOLT_CONTROL_UNKNOWN. */
molt_control_cmd molt_control_parse(const char *line, size_t len);

/* The answer line for cmd from a client of uid (only root, uid 0, may control molt; uid -1 when
 * the peer's credentials are unknown). Static string ending in "\n". */
const char *molt_control_answer(molt_control_cmd cmd, long uid);

/* Listen on path (made 0600 from the start, its folder created 0755, an old socket replaced).
 * *ret_fd is non-blocking and close-on-exec. MOLT_ECONFIG when path is too long for a socket. */
int molt_control_listen(const char *path, int *ret_fd, molt_err *err);

/* Accept one client on listening fd, read its line (bounded by MOLT_CONTROL_MAX and 2 s),
 * answer it, log it. Returns the command when root sent a known one, else
 * MOLT_CONTROL_UNKNOWN (also when nobody was waiting). */
molt_control_cmd molt_control_serve(int fd);

/* The client side: send command to the daemon listening on path and wait for its answer.
 * MOLT_ENOTFOUND when no daemon listens; MOLT_EINVAL when the daemon refused (not root,
 * unknown command), with its reason. */
int molt_control_request(const char *path, const char *command, molt_err *err);

#endif
