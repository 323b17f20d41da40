/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: "molt: <level>: message" on stderr, filtered by level, and JSON lines in the open
 * deployment log (docs/reference §3.4). One mutex serialises both, since the exec host logs module
 * output from a thread. */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util/encoding.h"

/* A message longer than this is cut (with "...") so one runaway line cannot fill the log. */
#define LOG_MESSAGE_MAX (64 * 1024)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static molt_log_level stderr_level = MOLT_LOG_INFO;
static int deployment_fd = -1;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

int molt_log_level_parse(const char *word, molt_log_level *ret)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (word && strcmp(word, level_names[i]) == 0) {
            *ret = (molt_log_level)i;
            return 0;
        }
    }
    return MOLT_EINVAL;
}

const char *molt_log_level_name(molt_log_level level)
{
    if ((unsigned)level >= sizeof level_names / sizeof level_names[0])
        return "debug";
    return level_names[level];
}

void molt_log_set_level(molt_log_level level)
{
    pthread_mutex_lock(&log_lock);
    stderr_level = level;
    pthread_mutex_unlock(&log_lock);
}

/* Append the whole line, in one write() unless the kernel takes less. O_APPEND puts each write
 * at the end; a process killed inside it may leave a partial line (handled on open). */
static void write_line(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;   /* nowhere to report a failing log; never fail the caller for it */
        buf += n;
        len -= (size_t)n;
    }
}

/* Make fd the deployment log (-1: none) and close the one before it, made durable first when
 * asked: the log is what a person reads after a power cut. */
static void swap_deployment_fd(int fd, bool durable)
{
    pthread_mutex_lock(&log_lock);
    int old = deployment_fd;
    deployment_fd = fd;
    pthread_mutex_unlock(&log_lock);
    if (old >= 0) {
        if (durable)
            fdatasync(old);
        close(old);
    }
}

void molt_log_close_deployment(bool durable)
{
    swap_deployment_fd(-1, durable);
}

int molt_log_open_deployment(const char *path, molt_err *err)
{
    int fd = -1;
    if (path) {
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            return molt_err_errno(err, MOLT_EIO, errno, "cannot open deployment log %s", path);
        /* A process killed inside write() can leave a partial last line (the kernel stops
         * copying at a fatal signal). End it, so the next line starts on a line of its own and
         * only the torn one reads as corrupt. */
        struct stat st;
        char last;
        if (fstat(fd, &st) == 0 && st.st_size > 0 &&
            pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n')
            write_line(fd, "\n", 1);
    }
    swap_deployment_fd(fd, true);
    return 0;
}

int molt_utc_seconds(time_t t, char out[MOLT_UTC_SECONDS_SIZE])
{
    /* The civil date of a day count (proleptic Gregorian, Howard Hinnant's days_from_civil
     * inverted): not gmtime_r, whose first call reads the time zone file too. */
    long long secs = (long long)t, days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    days += 719468;   /* from 1970-01-01 to 0000-03-01 */
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long doe = days - era * 146097;                                 /* [0, 146096] */
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    long long mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);
    out[0] = '\0';
    if (year < 0 || year > 9999)
        return MOLT_EINVAL;
    char text[120];   /* every field is in range: 19 characters */
    snprintf(text, sizeof text, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", year, month, day,
             rem / 3600, rem / 60 % 60, rem % 60);
    memcpy(out, text, MOLT_UTC_SECONDS_SIZE - 1);
    out[MOLT_UTC_SECONDS_SIZE - 1] = '\0';
    return 0;
}

int molt_log_timestamp(char out[MOLT_LOG_TIMESTAMP_SIZE])
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || molt_utc_seconds(ts.tv_sec, out) < 0) {
        snprintf(out, MOLT_LOG_TIMESTAMP_SIZE, "1970-01-01T00:00:00.000000000Z");
        return MOLT_EIO;
    }
    size_t n = MOLT_UTC_SECONDS_SIZE - 1;
    snprintf(out + n, MOLT_LOG_TIMESTAMP_SIZE - n, ".%09ldZ", (long)ts.tv_nsec);
    return 0;
}

/* Append s (len bytes, any bytes) as a JSON string: escapes as RFC 8259 requires, and bytes
 * that are not valid UTF-8 become U+FFFD, so a module printing binary cannot break the log. */
static size_t json_string(char *out, const unsigned char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            if (c == '"' || c == '\\') {
                out[o++] = '\\';
                out[o++] = (char)c;
            } else if (c == '\n') {
                out[o++] = '\\';
                out[o++] = 'n';
            } else if (c == '\t') {
                out[o++] = '\\';
                out[o++] = 't';
            } else if (c == 0) {
                /* Valid JSON, but most readers (jansson by default) refuse it. */
                memcpy(out + o, "\xef\xbf\xbd", 3);
                o += 3;
            } else if (c < 0x20 || c == 0x7f) {
                memcpy(out + o, "\\u00", 4);
                out[o + 4] = hex[c >> 4];
                out[o + 5] = hex[c & 15];
                o += 6;
            } else {
                out[o++] = (char)c;
            }
            continue;
        }
        size_t n = molt_utf8_sequence(s + i, len - i);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);   /* U+FFFD */
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
    }
    out[o++] = '"';
    return o;
}

static void log_deployment_line(int fd, const char *level, const char *msg, size_t len)
{
    char ts[MOLT_LOG_TIMESTAMP_SIZE];
    molt_log_timestamp(ts);
    /* Worst case 6 output bytes per input byte (\u00XX), plus the fixed parts. */
    char *line = malloc(len * 6 + 128);
    if (!line)
        return;
    int n = snprintf(line, 128, "{\"timestamp\":\"%s\",\"level\":\"%s\",\"message\":", ts, level);
    size_t o = (size_t)n;
    o += json_string(line + o, (const unsigned char *)msg, len);
    line[o++] = '}';
    line[o++] = '\n';
    write_line(fd, line, o);
    free(line);
}

void molt_log_message(molt_log_level level, const char *msg, size_t len)
{
    /* A trailing newline (module output, strerror texts) is not part of the message. */
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        len--;
    const char *name = molt_log_level_name(level);
    const char *cut = "";
    if (len > LOG_MESSAGE_MAX) {
        len = LOG_MESSAGE_MAX;
        cut = "...";
    }

    pthread_mutex_lock(&log_lock);
    if (level <= stderr_level) {
        /* One locked, flushed line so lines from two threads do not interleave. */
        flockfile(stderr);
        fprintf(stderr, "molt: %s: %.*s%s\n", name, (int)len, msg, cut);
        fflush(stderr);
        funlockfile(stderr);
    }
    if (deployment_fd >= 0 && level <= MOLT_LOG_INFO) {
        if (*cut) {
            char *copy = malloc(len + 3);
            if (copy) {
                memcpy(copy, msg, len);
                memcpy(copy + len, cut, 3);
                log_deployment_line(deployment_fd, name, copy, len + 3);
                free(copy);
            }
        } else {
            log_deployment_line(deployment_fd, name, msg, len);
        }
    }
    pthread_mutex_unlock(&log_lock);
}

void molt_log(molt_log_level level, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        molt_log_message(level, small, (size_t)n);
        return;
    }
    /* Longer messages: format again into a buffer of the size needed, capped (the rest cut). */
    size_t cap = (size_t)n < LOG_MESSAGE_MAX ? (size_t)n + 1 : LOG_MESSAGE_MAX + 2;
    char *big = malloc(cap);
    if (!big) {
        molt_log_message(level, small, sizeof small - 1);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, cap, fmt, ap);
    va_end(ap);
    molt_log_message(level, big, (size_t)n < cap ? (size_t)n : cap - 1);
    free(big);
}
