/* Logging: to stderr at the configured level, and into the current deployment log (JSON lines,
 * {"timestamp":"<RFC3339 ns Z>","level":"<LEVEL>","message":"..."}, Mender's format) when one
 * is open. Module output and state-script stderr go there too. */
#ifndef MOLT_UTIL_LOG_H
#define MOLT_UTIL_LOG_H

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

/* Open (append) the deployment log file; closes a previous one. NULL closes. */
int molt_log_open_deployment(const char *path, molt_err *err);

void molt_log(molt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define molt_log_error(...) molt_log(MOLT_LOG_ERROR, __VA_ARGS__)
#define molt_log_warning(...) molt_log(MOLT_LOG_WARNING, __VA_ARGS__)
#define molt_log_info(...) molt_log(MOLT_LOG_INFO, __VA_ARGS__)
#define molt_log_debug(...) molt_log(MOLT_LOG_DEBUG, __VA_ARGS__)

#endif
