/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: to stderr at the configured level, and into the current deployment log (JSON lines,
 * {"timestamp":"<RFC3339 ns Z>","level":"<level>","message":"..."}, Mender's format, with the
 * lower-case level names of Mender's Go client: error, warning, info) when one is open. Module output and state-script stderr go there too. */
#ifndef MOLT_UTIL_LOG_H
#define MOLT_UTIL_LOG_H

#include <stddef.h>
#include <stdbool.h>
#include <time.h>
#include "util/err.h"

typedef enum molt_log_level {
    MOLT_LOG_ERROR = 0,
    MOLT_LOG_WARNING,
    MOLT_LOG_INFO,
    MOLT_LOG_DEBUG,
} molt_log_level;

/* Parse "error|warning|info|debug"; MOLT_EINVAL otherwise. */
int molt_log_level_parse(const char *word, molt_log_level *ret);
/* The level printed to stderr (the deployment log takes everything from info up). */
void molt_log_set_level(molt_log_level level);

/* Open (append) the deployment log file; closes a previous one, made durable (fdatasync). NULL
 * closes. */
int molt_log_open_deployment(const char *path, molt_err *err);
/* Close the deployment log, made durable (fdatasync) or not. The machine asks for durable when
 * the deployment failed or was rolled back: that log is what the server is sent. A command that
 * leaves the deployment waiting (for a commit, a reboot), or that ends it with a success, does
 * not wait for the disk for it. */
void molt_log_close_deployment(bool durable);

/* "error", "warning", "info" or "debug": the word used on stderr and in deployment logs. */
const char *molt_log_level_name(molt_log_level level);

/* Size of a deployment log timestamp, "2026-11-25T19:00:00.123456789Z" plus its NUL. */
#define MOLT_LOG_TIMESTAMP_SIZE 31
/* The current UTC time in that format. MOLT_EIO (and the epoch) if the clock fails. */
int molt_log_timestamp(char out[MOLT_LOG_TIMESTAMP_SIZE]);

/* t as UTC "YYYY-MM-DDTHH:MM:SS" (MOLT_UTC_SECONDS_SIZE with its NUL); MOLT_EINVAL, out "", when
 * its year has not four digits. Not gmtime_r and strftime: glibc's read the time zone file
 * (/etc/localtime) at their first call, which UTC does not need. */
#define MOLT_UTC_SECONDS_SIZE 20
int molt_utc_seconds(time_t t, char out[MOLT_UTC_SECONDS_SIZE]);

/* Log msg (len bytes, need not be NUL-terminated or UTF-8: NUL and bytes that are not
 * valid UTF-8 become U+FFFD in the deployment log) without formatting; trailing newlines are dropped and a
 * message over 64 KiB is cut. On stderr: "molt: <level>: <msg>" if level passes the filter. In
 * the open deployment log, levels info and up: one line
 * {"timestamp":"...","level":"<level name>","message":"..."} appended with one write().
 * Thread-safe. molt_log formats, then does this. */
void molt_log_message(molt_log_level level, const char *msg, size_t len);

void molt_log(molt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define molt_log_error(...) molt_log(MOLT_LOG_ERROR, __VA_ARGS__)
#define molt_log_warning(...) molt_log(MOLT_LOG_WARNING, __VA_ARGS__)
#define molt_log_info(...) molt_log(MOLT_LOG_INFO, __VA_ARGS__)
#define molt_log_debug(...) molt_log(MOLT_LOG_DEBUG, __VA_ARGS__)

#endif
