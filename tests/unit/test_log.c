/* SPDX-License-Identifier: Apache-2.0 */
/* Logging (stderr lines, JSON-lines deployment log, threads, a killed writer) and deployment
 * logs (naming, pruning, reading back, the capped upload body of docs/reference §3.4). */
#include "fixture.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "state/deplog.h"
#include "util/fs.h"
#include "util/log.h"

typedef struct fixture {
    char dir[64];
    char path[128];   /* a log file in dir */
    char logs[128];   /* a logs folder in dir */
} fixture;

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "log-test");
    fx_path(f->path, sizeof f->path, "%s/test.log", f->dir);
    fx_path(f->logs, sizeof f->logs, "%s/logs", f->dir);
    return 0;
}

static int teardown(void **state)
{
    fx_deployment_log_close();
    molt_log_set_level(MOLT_LOG_INFO);
    return fx_fixture_free(state);
}


/* "2026-11-25T19:00:00.123456789Z" */
static void assert_timestamp(const char *ts)
{
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 30);
    const char *pattern = "dddd-dd-ddTdd:dd:dd.dddddddddZ";
    for (size_t i = 0; i < 30; i++) {
        if (pattern[i] == 'd')
            assert_true(ts[i] >= '0' && ts[i] <= '9');
        else
            assert_int_equal(ts[i], pattern[i]);
    }
}

/* Parse every line of a JSON-lines file strictly; each must be a {timestamp, level, message}
 * object. Returns the entries as an array. */
static json_t *parse_lines(const char *path)
{
    size_t len;
    char *text = fx_read(path, &len);
    json_t *all = json_array();
    char *p = text;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (!nl)
            fail_msg("%s: last line has no newline (torn)", path);
        json_error_t jerr;
        json_t *line = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
        if (!line)
            fail_msg("%s: line is not JSON (%s): %.*s", path, jerr.text, (int)(nl - p), p);
        assert_true(json_is_object(line));
        assert_int_equal(json_object_size(line), 3);
        assert_timestamp(json_string_value(json_object_get(line, "timestamp")));
        assert_non_null(json_string_value(json_object_get(line, "level")));
        assert_non_null(json_string_value(json_object_get(line, "message")));
        json_array_append_new(all, line);
        p = nl + 1;
    }
    free(text);
    return all;
}

static const char *entry_field(json_t *entries, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(entries, i), key));
}

static void test_levels(void **state)
{
    (void)state;
    const char *words[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        molt_log_level level = MOLT_LOG_DEBUG;
        assert_int_equal(molt_log_level_parse(words[i], &level), 0);
        assert_int_equal(level, i);
        assert_string_equal(molt_log_level_name(level), words[i]);
    }
    molt_log_level level = MOLT_LOG_ERROR;
    assert_int_equal(molt_log_level_parse("INFO", &level), MOLT_EINVAL);
    assert_int_equal(molt_log_level_parse("warn", &level), MOLT_EINVAL);
    assert_int_equal(molt_log_level_parse("", &level), MOLT_EINVAL);
    assert_int_equal(molt_log_level_parse(NULL, &level), MOLT_EINVAL);
    assert_int_equal(level, MOLT_LOG_ERROR);
}

static void test_stderr_filter(void **state)
{
    fixture *f = *state;
    fflush(stderr);
    int saved = dup(2);
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    close(fd);

    molt_log_set_level(MOLT_LOG_WARNING);
    molt_log_error("disk %s is %d%% full", "/data", 99);
    molt_log_warning("retrying\n");
    molt_log_info("not shown");
    molt_log_debug("not shown either");
    molt_log_set_level(MOLT_LOG_DEBUG);
    molt_log_debug("now %s", "shown");
    molt_log_message(MOLT_LOG_INFO, "raw bytes\nsecond line\n\n", strlen("raw bytes\nsecond line\n\n"));

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    size_t len;
    char *text = fx_read(f->path, &len);
    assert_string_equal(text, "molt: error: disk /data is 99% full\n"
                              "molt: warning: retrying\n"
                              "molt: debug: now shown\n"
                              "molt: info: raw bytes\nsecond line\n");
    free(text);
}

static void test_deployment_log_lines(void **state)
{
    fixture *f = *state;
    molt_log_set_level(MOLT_LOG_ERROR);   /* keep the test output quiet */
    molt_err err = {0};
    assert_int_equal(molt_log_open_deployment(f->path, &err), 0);
    molt_log_info("Installing artifact \"%s\"", "release-2");
    molt_log_warning("tab\there, back\\slash, bell\a, del\x7f");
    molt_log_debug("debug stays out of the deployment log");
    molt_log_error("module said:\nline 1\nline 2");
    /* Not UTF-8: a lone continuation byte, a truncated sequence, an overlong '/', a
     * surrogate; then valid 2-, 3- and 4-byte sequences. */
    const char bin[] = "a\x80" "b\xc3" "c\xc0\xaf" "d\xed\xa0\x80" "e\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    molt_log_message(MOLT_LOG_INFO, bin, sizeof bin - 1);
    char nul[] = {'x', '\0', 'y'};
    molt_log_message(MOLT_LOG_INFO, nul, 3);
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    molt_log_info("after closing: not in the file");

    json_t *entries = parse_lines(f->path);
    assert_int_equal(json_array_size(entries), 5);
    assert_string_equal(entry_field(entries, 0, "level"), "info");
    assert_string_equal(entry_field(entries, 0, "message"), "Installing artifact \"release-2\"");
    assert_string_equal(entry_field(entries, 1, "level"), "warning");
    assert_string_equal(entry_field(entries, 1, "message"), "tab\there, back\\slash, bell\a, del\x7f");
    assert_string_equal(entry_field(entries, 2, "level"), "error");
    assert_string_equal(entry_field(entries, 2, "message"), "module said:\nline 1\nline 2");
    assert_string_equal(entry_field(entries, 3, "message"),
                        "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd"
                        "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "e\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_string_equal(entry_field(entries, 4, "message"), "x\xef\xbf\xbdy");
    json_decref(entries);

    /* Reopening appends. */
    assert_int_equal(molt_log_open_deployment(f->path, &err), 0);
    molt_log_info("resumed");
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    entries = parse_lines(f->path);
    assert_int_equal(json_array_size(entries), 6);
    assert_string_equal(entry_field(entries, 5, "message"), "resumed");
    json_decref(entries);

    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/folder/x.log", f->dir);
    assert_int_equal(molt_log_open_deployment(bad, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, bad));
}

static void test_long_message_cut(void **state)
{
    fixture *f = *state;
    molt_log_set_level(MOLT_LOG_ERROR);
    assert_int_equal(molt_log_open_deployment(f->path, NULL), 0);
    size_t big = 200 * 1024;
    char *msg = malloc(big + 1);
    memset(msg, 'q', big);
    msg[big] = '\0';
    molt_log_info("%s", msg);
    molt_log_message(MOLT_LOG_INFO, msg, big);
    free(msg);
    assert_int_equal(molt_log_open_deployment(NULL, NULL), 0);
    json_t *entries = parse_lines(f->path);
    assert_int_equal(json_array_size(entries), 2);
    for (size_t i = 0; i < 2; i++) {
        const char *m = entry_field(entries, i, "message");
        assert_int_equal(strlen(m), 64 * 1024 + 3);
        assert_string_equal(m + 64 * 1024, "...");
    }
    json_decref(entries);
}

#define THREADS 4
#define PER_THREAD 500

static void *log_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++)
        molt_log_info("thread %d message %d %s", t, i, "padding padding padding padding");
    return NULL;
}

static void test_threads(void **state)
{
    fixture *f = *state;
    molt_log_set_level(MOLT_LOG_ERROR);
    assert_int_equal(molt_log_open_deployment(f->path, NULL), 0);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, log_thread, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(molt_log_open_deployment(NULL, NULL), 0);
    json_t *entries = parse_lines(f->path);
    assert_int_equal(json_array_size(entries), THREADS * PER_THREAD);
    /* Each thread's messages are all there, in its order. */
    int next[THREADS] = {0};
    for (size_t i = 0; i < json_array_size(entries); i++) {
        int t, n;
        assert_int_equal(sscanf(entry_field(entries, i, "message"), "thread %d message %d", &t, &n), 2);
        assert_int_equal(n, next[t]);
        next[t]++;
    }
    json_decref(entries);
}

/* A process killed while logging can cut its last line short (the kernel stops a write() at a
 * fatal signal), but never an earlier line, and the next writer starts on a fresh line. */
typedef struct logger_arg {
    const char *path;
    int round;
} logger_arg;

/* Logs lines until killed, reporting (fx_report) once line round % 5 is written: the parent
 * kills after that, so every round has whole lines, and the kill lands in a later line,
 * wherever the scheduler left the child. */
static int logger(void *arg, int report_fd)
{
    const logger_arg *a = arg;
    molt_log_set_level(MOLT_LOG_ERROR);
    if (molt_log_open_deployment(a->path, NULL) != 0)
        return 3;
    /* Lines of 200..5000 bytes: some cross a page boundary, where a write stops. */
    char pad[5000];
    memset(pad, 'z', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (long i = 0;; i++) {
        molt_log_info("round %d line %ld %s", a->round, i, pad + (i * 797 % 4800));
        if (i == a->round % 5)
            fx_report(report_fd);
    }
}

static void test_killed_logger(void **state)
{
    fixture *f = *state;
    enum { ROUNDS = 30 };
    for (int round = 0; round < ROUNDS; round++) {
        logger_arg a = {f->path, round};
        fx_child c;
        fx_child_start(&c, logger, &a);
        assert_int_equal(fx_child_wait_reports(&c, 1), 1);
        int status = fx_child_end(&c, SIGKILL);
        assert_true(WIFSIGNALED(status));
    }
    /* Line by line: whole entries of round r numbered 0, 1, 2...; at most one torn line per
     * round, and only as that round's last. */
    size_t len;
    char *text = fx_read(f->path, &len);
    int round = 0;
    long next = 0;
    int torn = 0, whole = 0;
    size_t n_lines = 0;
    char *is_torn = malloc(len + 1);   /* per line; there are fewer lines than bytes */
    assert_non_null(is_torn);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t line_len = nl ? (size_t)(nl - p) : strlen(p);
        json_t *entry = json_loadb(p, line_len, 0, NULL);
        int r;
        long i;
        const char *msg = json_string_value(json_object_get(entry, "message"));
        if (msg && sscanf(msg, "round %d line %ld", &r, &i) == 2) {
            if (r != round) {
                assert_true(r > round);   /* a round killed before it wrote is empty */
                round = r;
                next = 0;
            }
            assert_int_equal(i, next);
            next++;
            whole++;
            is_torn[n_lines++] = 0;
        } else {
            /* Torn: a prefix of an entry of this round; the next line is round + 1, line 0. */
            assert_memory_equal(p, "{\"timestamp\":", line_len < 13 ? line_len : 13);
            torn++;
            round++;
            next = 0;
            is_torn[n_lines++] = 1;
        }
        json_decref(entry);
        p = nl ? nl + 1 : p + line_len;
    }
    free(text);
    print_message("%d whole lines, %d torn\n", whole, torn);
    assert_true(whole > ROUNDS);
    assert_true(torn <= ROUNDS);
    /* Read back, a torn line is one corrupt entry, not a lost neighbour. */
    size_t last = n_lines < 200 ? n_lines : 200;
    json_t *tail = NULL;
    assert_int_equal(molt_deplog_read(f->path, last, &tail, NULL), 0);
    assert_int_equal(json_array_size(tail), last);
    for (size_t k = 0; k < last; k++) {
        int corrupt = !strcmp(entry_field(tail, k, "message"), "(CORRUPTED LOG DATA)");
        assert_int_equal(corrupt, is_torn[n_lines - last + k]);
    }
    json_decref(tail);
    free(is_torn);
}

/* --- deployment logs ------------------------------------------------------------------- */

static void test_check_id(void **state)
{
    (void)state;
    assert_int_equal(molt_deplog_check_id("3f7c9f2e-1b1a-4e0c-9d55-0a8d4b9e3c11", NULL), 0);
    assert_int_equal(molt_deplog_check_id("standalone_1.2", NULL), 0);
    const char *bad[] = {"", ".hidden", "a/b", "..", "a b", "x\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(molt_deplog_check_id(bad[i], NULL), MOLT_EINVAL);
    assert_int_equal(molt_deplog_check_id(NULL, NULL), MOLT_EINVAL);
    char longid[MOLT_DEPLOG_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(molt_deplog_check_id(longid, NULL), MOLT_EINVAL);
    longid[MOLT_DEPLOG_ID_MAX] = '\0';
    assert_int_equal(molt_deplog_check_id(longid, NULL), 0);
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
}

static void assert_path_in(const char *path, const char *dir, const char *name)
{
    char want[512];
    snprintf(want, sizeof want, "%s/%s", dir, name);
    assert_string_equal(path, want);
}

static void test_deplog_naming(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    char *path = NULL, *id = NULL;
    assert_int_equal(molt_deplog_latest(f->logs, &path, &id, &err), MOLT_ENOTFOUND);
    assert_int_equal(molt_deplog_find(f->logs, "a", &path, &err), MOLT_ENOTFOUND);

    assert_int_equal(molt_deplog_path(f->logs, "a", &path, &err), 0);
    assert_path_in(path, f->logs, "deployment.0001.a.log");
    touch(path);
    free(path);
    /* The same deployment keeps its log. */
    assert_int_equal(molt_deplog_path(f->logs, "a", &path, &err), 0);
    assert_path_in(path, f->logs, "deployment.0001.a.log");
    free(path);
    assert_int_equal(molt_deplog_path(f->logs, "b", &path, &err), 0);
    assert_path_in(path, f->logs, "deployment.0002.b.log");
    touch(path);
    free(path);
    /* Numbers continue above the largest, past four digits too. */
    char big[256];
    snprintf(big, sizeof big, "%s/deployment.9999.c.log", f->logs);
    touch(big);
    assert_int_equal(molt_deplog_path(f->logs, "d", &path, &err), 0);
    assert_path_in(path, f->logs, "deployment.10000.d.log");
    touch(path);
    free(path);

    assert_int_equal(molt_deplog_latest(f->logs, &path, &id, &err), 0);
    assert_path_in(path, f->logs, "deployment.10000.d.log");
    assert_string_equal(id, "d");
    free(path);
    free(id);
    assert_int_equal(molt_deplog_find(f->logs, "b", &path, &err), 0);
    assert_path_in(path, f->logs, "deployment.0002.b.log");
    free(path);

    assert_int_equal(molt_deplog_path(f->logs, "../escape", &path, &err), MOLT_EINVAL);
}

static void test_deplog_open_and_prune(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    molt_log_set_level(MOLT_LOG_ERROR);
    char other[256];
    assert_int_equal(molt_mkdir_p(f->logs, 0700, &err), 0);
    snprintf(other, sizeof other, "%s/deployment.notes.txt", f->logs);
    touch(other);
    const char *ids[] = {"d1", "d2", "d3", "d4", "d5"};
    struct stat st;
    ino_t first = 0;
    for (int i = 0; i < 5; i++) {
        char *path = NULL;
        assert_int_equal(molt_deplog_open(f->logs, ids[i], 3, &path, &err), 0);
        molt_log_info("hello from %s", ids[i]);
        assert_int_equal(stat(path, &st), 0);
        /* The fourth log is the first one's file, emptied and renamed (take_oldest). */
        if (i == 0)
            first = st.st_ino;
        else if (i == 3)
            assert_true(st.st_ino == first);
        free(path);
    }
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    const char *gone[] = {"deployment.0001.d1.log", "deployment.0002.d2.log"};
    const char *kept[] = {"deployment.0003.d3.log", "deployment.0004.d4.log",
                          "deployment.0005.d5.log"};
    char p[256];
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", f->logs, gone[i]);
        assert_false(molt_path_exists(p));
    }
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", f->logs, kept[i]);
        json_t *entries = parse_lines(p);
        assert_int_equal(json_array_size(entries), 1);
        char want[32];
        snprintf(want, sizeof want, "hello from %s", ids[i + 2]);
        assert_string_equal(entry_field(entries, 0, "message"), want);
        json_decref(entries);
    }
    assert_true(molt_path_exists(other));

    /* Continuing d4 after a "reboot" appends to its own log and prunes nothing it needs. */
    assert_int_equal(molt_deplog_open(f->logs, "d4", 3, NULL, &err), 0);
    molt_log_info("resumed");
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    snprintf(p, sizeof p, "%s/%s", f->logs, kept[1]);
    json_t *entries = parse_lines(p);
    assert_int_equal(json_array_size(entries), 2);
    json_decref(entries);

    assert_int_equal(molt_deplog_prune(f->logs, 1, &err), 0);
    snprintf(p, sizeof p, "%s/%s", f->logs, kept[2]);
    assert_true(molt_path_exists(p));
    snprintf(p, sizeof p, "%s/%s", f->logs, kept[1]);
    assert_false(molt_path_exists(p));
    assert_int_equal(molt_deplog_prune(f->logs, 0, &err), MOLT_EINVAL);
}

/* The oldest log is made the new one only when it is a regular file with no other name: a hard
 * link kept elsewhere keeps its content and a symlink's target is left alone (both as with the
 * unlink of the pruning, which removes the name); the new log is then a file of its own. */
static void test_deplog_oldest_not_taken(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    molt_log_set_level(MOLT_LOG_ERROR);
    char p[256], kept[256], target[256], *path = NULL;
    struct stat st, kst;
    assert_int_equal(molt_mkdir_p(f->logs, 0700, &err), 0);

    /* A hard link to the oldest log elsewhere. */
    snprintf(p, sizeof p, "%s/deployment.0001.a.log", f->logs);
    const char *line = "{\"message\":\"a's line\"}\n", *text = "not a log\n";
    assert_int_equal(molt_write_file_atomic(p, line, strlen(line), 0600, NULL), 0);
    snprintf(kept, sizeof kept, "%s/kept-a.log", f->dir);
    assert_int_equal(link(p, kept), 0);
    assert_int_equal(molt_deplog_open(f->logs, "b", 1, &path, &err), 0);
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    assert_path_in(path, f->logs, "deployment.0002.b.log");
    assert_false(molt_path_exists(p));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(stat(kept, &kst), 0);
    assert_true(st.st_ino != kst.st_ino);
    assert_int_equal(kst.st_nlink, 1);
    assert_int_equal(kst.st_size, (off_t)strlen(line));
    free(path);

    /* The oldest log a symlink: removed, its target untouched. */
    snprintf(target, sizeof target, "%s/target.txt", f->dir);
    assert_int_equal(molt_write_file_atomic(target, text, strlen(text), 0600, NULL), 0);
    assert_int_equal(unlink(kept), 0);
    snprintf(p, sizeof p, "%s/deployment.0002.b.log", f->logs);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink(target, p), 0);
    assert_int_equal(molt_deplog_open(f->logs, "c", 1, &path, &err), 0);
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    assert_path_in(path, f->logs, "deployment.0003.c.log");
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(stat(target, &kst), 0);
    assert_int_equal(kst.st_size, (off_t)strlen(text));
    free(path);
}

/* The listing grows with the folder (it starts small, docs/performance.md): a folder of more
 * logs than its first allocation is listed in order, numbered on and pruned to keep; one of more
 * than 4096 logs is still refused. A missing folder is made by the open. */
static void test_deplog_many(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    molt_log_set_level(MOLT_LOG_ERROR);
    char p[256];
    char *path = NULL, *id = NULL;
    /* A missing folder is made, with its parents, by the first open. */
    snprintf(p, sizeof p, "%s/a/b", f->logs);
    assert_int_equal(molt_deplog_open(p, "first", 5, &path, &err), 0);
    assert_path_in(path, p, "deployment.0001.first.log");
    assert_true(molt_path_exists(path));
    free(path);
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    /* 100 logs written in an order readdir does not keep: 0100, 0099, ..., 0001. */
    for (int i = 100; i >= 1; i--) {
        snprintf(p, sizeof p, "%s/deployment.%04d.old%d.log", f->logs, i, i);
        touch(p);
    }
    assert_int_equal(molt_deplog_latest(f->logs, &path, &id, &err), 0);
    assert_path_in(path, f->logs, "deployment.0100.old100.log");
    assert_string_equal(id, "old100");
    free(path);
    free(id);
    assert_int_equal(molt_deplog_find(f->logs, "old17", &path, &err), 0);
    assert_path_in(path, f->logs, "deployment.0017.old17.log");
    free(path);
    assert_int_equal(molt_deplog_open(f->logs, "new", 30, &path, &err), 0);
    assert_path_in(path, f->logs, "deployment.0101.new.log");
    free(path);
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    /* The 71 oldest went, the 29 newest and the new one stay. */
    for (int i = 1; i <= 100; i++) {
        snprintf(p, sizeof p, "%s/deployment.%04d.old%d.log", f->logs, i, i);
        if (molt_path_exists(p) != (i > 71))
            fail_msg("%s: %s", p, i > 71 ? "pruned, should be kept" : "kept, should be pruned");
    }

    /* The limit: 4096 logs (the 30 kept and 4066 more) are listed, one more is refused. */
    for (int i = 102; i <= 4167; i++) {
        snprintf(p, sizeof p, "%s/deployment.%04d.x%d.log", f->logs, i, i);
        touch(p);
    }
    assert_int_equal(molt_deplog_latest(f->logs, &path, &id, &err), 0);
    assert_path_in(path, f->logs, "deployment.4167.x4167.log");
    free(path);
    free(id);
    snprintf(p, sizeof p, "%s/deployment.4168.x4168.log", f->logs);
    touch(p);
    assert_int_equal(molt_deplog_latest(f->logs, &path, &id, &err), MOLT_ELIMIT);
    assert_non_null(strstr(err.msg, "more than 4096 deployment logs"));
    assert_int_equal(molt_deplog_open(f->logs, "next", 5, &path, &err), MOLT_ELIMIT);
}

static void write_text(const char *path, const char *text)
{
    assert_int_equal(molt_write_file_atomic(path, text, strlen(text), 0600, NULL), 0);
}

static void test_deplog_read(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    write_text(f->path,
               "{\"timestamp\":\"2026-01-01T00:00:01.000000000Z\",\"level\":\"info\",\"message\":\"one\"}\n"
               "\n"
               "{\"timestamp\":\"2026-01-01T00:00:02.000000000Z\",\"level\":\"info\",\"messa\n"
               "[1,2]\n"
               "{\"timestamp\": \"2026-01-01T00:00:03.000000000Z\", \"level\": \"WARNING\", \"message\": \"three\"}\n"
               "{\"timestamp\":\"2026-01-01T00:00:04.000000000Z\",\"level\":\"info\",\"message\":\"torn");
    json_t *all = NULL;
    assert_int_equal(molt_deplog_read(f->path, 0, &all, &err), 0);
    assert_int_equal(json_array_size(all), 5);
    assert_string_equal(entry_field(all, 0, "message"), "one");
    for (size_t i = 1; i <= 2; i++) {
        assert_string_equal(entry_field(all, i, "level"), "error");
        assert_string_equal(entry_field(all, i, "message"), "(CORRUPTED LOG DATA)");
        assert_string_equal(entry_field(all, i, "timestamp"), "2026-01-01T00:00:01.000000000Z");
    }
    assert_string_equal(entry_field(all, 3, "level"), "WARNING");
    assert_string_equal(entry_field(all, 3, "message"), "three");
    assert_string_equal(entry_field(all, 4, "message"), "(CORRUPTED LOG DATA)");
    assert_string_equal(entry_field(all, 4, "timestamp"), "2026-01-01T00:00:03.000000000Z");

    json_t *last2 = NULL;
    assert_int_equal(molt_deplog_read(f->path, 2, &last2, &err), 0);
    assert_int_equal(json_array_size(last2), 2);
    assert_true(json_equal(json_array_get(last2, 0), json_array_get(all, 3)));
    assert_true(json_equal(json_array_get(last2, 1), json_array_get(all, 4)));
    json_decref(last2);
    json_decref(all);

    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.log", f->dir);
    assert_int_equal(molt_deplog_read(missing, 0, &all, &err), MOLT_ENOTFOUND);
}

static void test_upload_small(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    molt_log_set_level(MOLT_LOG_ERROR);
    assert_int_equal(molt_log_open_deployment(f->path, &err), 0);
    molt_log_info("first");
    molt_log_error("second \"quoted\"");
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);

    char *body = NULL;
    size_t len = 0;
    assert_int_equal(molt_deplog_upload_body(f->path, MOLT_DEPLOG_UPLOAD_MAX, &body, &len, &err), 0);
    assert_int_equal(strlen(body), len);
    json_error_t jerr;
    json_t *doc = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(doc);
    assert_int_equal(json_object_size(doc), 1);
    json_t *lines = parse_lines(f->path);
    assert_true(json_equal(json_object_get(doc, "messages"), lines));
    json_decref(lines);
    json_decref(doc);
    free(body);

    /* An empty log is an empty list. */
    write_text(f->path, "");
    assert_int_equal(molt_deplog_upload_body(f->path, MOLT_DEPLOG_UPLOAD_MAX, &body, &len, &err), 0);
    assert_string_equal(body, "{\"messages\":[]}");
    free(body);
}

/* A log of entries whose messages start with their number (0, 1, ...) followed by min_pad
 * to min_pad + 99 bytes of padding; `count` entries or until `bytes` are written. Returns the
 * number of entries. */
static size_t write_numbered_log(const char *path, size_t min_pad, size_t count, long bytes)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    char *pad = malloc(min_pad + 101);
    assert_non_null(pad);
    memset(pad, 'p', min_pad + 100);
    pad[min_pad + 100] = '\0';
    size_t i = 0;
    for (long size = 0; i < count && (bytes == 0 || size < bytes); i++)
        size += fprintf(fp, "{\"timestamp\":\"2026-01-01T00:00:00.%09zuZ\",\"level\":\"info\","
                        "\"message\":\"%zu %s\"}\n", i % 1000000000, i, pad + (i % 100));
    fclose(fp);
    free(pad);
    return i;
}

static void test_upload_truncated(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    /* 3000 entries of 500..600 bytes: about 1.6 MB, more than the cap. */
    const size_t total = 3000;
    assert_int_equal(write_numbered_log(f->path, 500, total, 0), total);

    char *body = NULL;
    size_t len = 0;
    assert_int_equal(molt_deplog_upload_body(f->path, MOLT_DEPLOG_UPLOAD_MAX, &body, &len, &err), 0);
    assert_true(len <= MOLT_DEPLOG_UPLOAD_MAX);
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(doc);
    json_t *msgs = json_object_get(doc, "messages");
    size_t n = json_array_size(msgs);
    size_t kept = n - 1, dropped = total - kept;
    assert_true(kept > 1000 && kept < total);
    assert_string_equal(entry_field(msgs, 0, "level"), "warning");
    char want[128];
    snprintf(want, sizeof want, "(THE ORIGINAL LOGS WERE TRUNCATED: %zu OLDEST ENTRIES DROPPED)",
             dropped);
    assert_string_equal(entry_field(msgs, 0, "message"), want);
    assert_timestamp(entry_field(msgs, 0, "timestamp"));
    /* The newest entries, in order, ending with the last one. */
    for (size_t i = 1; i < n; i++) {
        size_t num;
        assert_int_equal(sscanf(entry_field(msgs, i, "message"), "%zu", &num), 1);
        assert_int_equal(num, dropped + i - 1);
    }
    /* As many as fit: one more (the newest dropped, plus a comma) would not. */
    json_t *lines = parse_lines(f->path);
    char *next = json_dumps(json_array_get(lines, dropped - 1), JSON_COMPACT);
    assert_true(len + strlen(next) + 1 > MOLT_DEPLOG_UPLOAD_MAX);
    free(next);
    json_decref(lines);
    json_decref(doc);
    free(body);

    /* A cap below even the notice. */
    assert_int_equal(molt_deplog_upload_body(f->path, 100, &body, &len, &err), MOLT_ELIMIT);
}

static void test_big_file_tail(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    /* 6 MiB of log: only the last 4 MiB are read, from a line boundary on. */
    size_t i = write_numbered_log(f->path, 1000, SIZE_MAX, 6L * 1024 * 1024);
    json_t *last = NULL;
    assert_int_equal(molt_deplog_read(f->path, 3, &last, &err), 0);
    assert_int_equal(json_array_size(last), 3);
    size_t num;
    assert_int_equal(sscanf(entry_field(last, 2, "message"), "%zu", &num), 1);
    assert_int_equal(num, i - 1);
    json_decref(last);
    json_t *all = NULL;
    assert_int_equal(molt_deplog_read(f->path, 0, &all, &err), 0);
    /* No corrupt entry from starting mid-line. */
    for (size_t k = 0; k < json_array_size(all); k++)
        assert_string_equal(entry_field(all, k, "level"), "info");
    json_decref(all);

    char *body = NULL;
    size_t len;
    assert_int_equal(molt_deplog_upload_body(f->path, MOLT_DEPLOG_UPLOAD_MAX, &body, &len, &err), 0);
    json_t *doc = json_loadb(body, len, 0, NULL);
    assert_non_null(doc);
    const char *notice = entry_field(json_object_get(doc, "messages"), 0, "message");
    assert_non_null(strstr(notice, "BYTES AND"));
    json_decref(doc);
    free(body);
}

/* UTC text without gmtime_r and strftime (which read the time zone file): the epoch, leap days,
 * the last second a four-digit year holds, a year past it refused; every day of 1900 to 2100
 * against gmtime_r. */
static void test_utc_seconds(void **state)
{
    (void)state;
    char out[MOLT_UTC_SECONDS_SIZE], want[64];
    for (long long t = -2208988800LL; t < 4107542400LL; t += 86400 - 7) {
        struct tm tm;
        time_t tt = (time_t)t;
        assert_non_null(gmtime_r(&tt, &tm));
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        assert_int_equal(molt_utc_seconds(tt, out), 0);
        assert_string_equal(out, want);
    }
    assert_int_equal(molt_utc_seconds(951782400, out), 0);
    assert_string_equal(out, "2000-02-29T00:00:00");
    assert_int_equal(molt_utc_seconds(0, out), 0);
    assert_string_equal(out, "1970-01-01T00:00:00");
    assert_int_equal(molt_utc_seconds(1764702245, out), 0);
    assert_string_equal(out, "2025-12-02T19:04:05");
    assert_int_equal(molt_utc_seconds((time_t)253402300799LL, out), 0);
    assert_string_equal(out, "9999-12-31T23:59:59");
    assert_int_equal(molt_utc_seconds((time_t)253402300800LL, out), MOLT_EINVAL);
    assert_string_equal(out, "");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_utc_seconds),
        cmocka_unit_test_setup_teardown(test_stderr_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deployment_log_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_message_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_logger, setup, teardown),
        cmocka_unit_test(test_check_id),
        cmocka_unit_test_setup_teardown(test_deplog_naming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deplog_open_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deplog_oldest_not_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deplog_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deplog_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_file_tail, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
