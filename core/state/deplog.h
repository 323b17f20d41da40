/* SPDX-License-Identifier: Apache-2.0 */
/* Deployment logs (docs/reference §3.4): one JSON-lines file per deployment,
 * <logs_dir>/deployment.<NNNN>.<id>.log (NNNN increasing, the newest has the largest), the last
 * few kept; read back for `molt status` and for the upload to a Mender server. */
#ifndef MOLT_STATE_DEPLOG_H
#define MOLT_STATE_DEPLOG_H

#include <stddef.h>
#include <jansson.h>
#include "util/err.h"

/* The logs folder inside data_dir: <data_dir>/logs (docs/configuration.md). */
#define MOLT_DEPLOG_DIR "logs"
/* What the Mender C++ client allows for one log upload body (bytes). */
#define MOLT_DEPLOG_UPLOAD_MAX (1000000 - 256)
/* The longest deployment id accepted (it becomes part of a file name). */
#define MOLT_DEPLOG_ID_MAX 128

/* Is id usable in a log file name: 1..MOLT_DEPLOG_ID_MAX characters of [A-Za-z0-9._-], not
 * starting with '.'? Mender ids are UUIDs. 0 or MOLT_EINVAL with the reason. */
int molt_deplog_check_id(const char *id, molt_err *err);

/* The log file of deployment id in logs_dir: the existing one (a deployment resumed after a
 * reboot keeps appending to its log), else a new name numbered one above the newest log.
 * Creates logs_dir (0700) if missing; creates no file. *ret_path malloc'd, caller-owned. */
int molt_deplog_path(const char *logs_dir, const char *id, char **ret_path, molt_err *err);

/* Remove the oldest deployment logs in logs_dir so at most keep remain (keep >= 1). Files
 * that are not deployment logs are left alone. */
int molt_deplog_prune(const char *logs_dir, int keep, molt_err *err);

/* Start (or continue) logging deployment id: molt_deplog_path, then prune so that at most keep
 * logs remain counting this one, then molt_log_open_deployment (util/log.h) on it.
 * *ret_path (may be NULL) gets the path, malloc'd. Close with molt_log_open_deployment(NULL). */
int molt_deplog_open(const char *logs_dir, const char *id, int keep, char **ret_path,
                     molt_err *err);

/* The existing log of deployment id: MOLT_ENOTFOUND if none. *ret_path malloc'd. */
int molt_deplog_find(const char *logs_dir, const char *id, char **ret_path, molt_err *err);

/* The newest log in logs_dir (largest NNNN): *ret_path and *ret_id (may be NULL) malloc'd.
 * MOLT_ENOTFOUND when there is none (also when logs_dir does not exist). */
int molt_deplog_latest(const char *logs_dir, char **ret_path, char **ret_id, molt_err *err);

/* The entries of a log as a JSON array of {"timestamp","level","message"} objects, oldest
 * first; at most the last `last` entries (0 = all). A line that is not a JSON object becomes
 * {"timestamp":<the last good one>,"level":"error","message":"(CORRUPTED LOG DATA)"}. Only the
 * last 16 MiB of a bigger file are read. *ret is a new reference owned by the caller. */
int molt_deplog_read(const char *path, size_t last, json_t **ret, molt_err *err);

/* The body of the log upload PUT: {"messages":[...]} with the entries of the log, at most
 * max_bytes long (MOLT_DEPLOG_UPLOAD_MAX for a Mender server). When the entries do not fit,
 * the oldest are dropped and a first entry {"level":"warning","message":"(THE ORIGINAL LOGS
 * WERE TRUNCATED: N OLDEST ENTRIES DROPPED)"} says so; corrupt lines are replaced as in
 * molt_deplog_read. *ret_body is malloc'd, NUL-terminated, caller-owned. MOLT_ELIMIT when
 * max_bytes cannot hold even the warning entry. */
int molt_deplog_upload_body(const char *path, size_t max_bytes, char **ret_body, size_t *ret_len,
                            molt_err *err);

#endif
