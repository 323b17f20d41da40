/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the daemon's pure parts and its control socket: molt_daemon_backoff
 * (core/state/daemon.c) over its whole range, the control line protocol (molt_control_parse,
 * molt_control_answer), and one real socket round trip per command through
 * molt_control_listen / molt_control_serve / molt_control_request (core/state/control.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "state/control.h"
#include "state/daemon.h"
#include "util/fs.h"

/* ---- backoff ---------------------------------------------------------------------------- */

static void test_backoff_doubles_to_the_cap(void **state)
{
    (void)state;
    /* 60 s after the first failure, doubling, capped at retry_poll_interval. */
    static const struct {
        int cap, n, want;
    } rows[] = {
        {300, 1, 60}, {300, 2, 120}, {300, 3, 240}, {300, 4, 300}, {300, 5, 300},
        {300, 100, 300}, {3600, 1, 60}, {3600, 6, 1920}, {3600, 7, 3600}, {3600, 1000, 3600},
        {60, 1, 60}, {60, 9, 60}, {61, 2, 61}, {119, 2, 119}, {120, 2, 120}, {121, 3, 121},
        /* n <= 0 (never passed by the daemon) is the first step, not an error */
        {300, 0, 60}, {300, -5, 60},
        /* the doubling stops at the cap: no overflow for a huge n or a huge cap */
        {2147483647, 40, 2147483647}, {2147483647, 1, 60},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int got = molt_daemon_backoff(rows[i].cap, rows[i].n);
        if (got != rows[i].want)
            fail_msg("backoff(cap %d, n %d) = %d, want %d", rows[i].cap, rows[i].n, got,
                     rows[i].want);
    }
}

static void test_backoff_short_interval_used_as_is(void **state)
{
    (void)state;
    /* An interval under 60 s (the tests' 1 s) is the wait, from the first failure on. */
    for (int cap = 0; cap < 60; cap++)
        for (int n = 1; n < 20; n++)
            assert_int_equal(molt_daemon_backoff(cap, n), cap);
}

static void test_backoff_monotonic(void **state)
{
    (void)state;
    for (int cap = 60; cap < 5000; cap += 37) {
        int prev = 0;
        for (int n = 1; n < 40; n++) {
            int w = molt_daemon_backoff(cap, n);
            assert_true(w >= prev);
            assert_true(w >= 60 && w <= cap);
            prev = w;
        }
        assert_int_equal(prev, cap);
    }
}

/* ---- the control line protocol ---------------------------------------------------------- */

static molt_control_cmd parse(const char *s)
{
    return molt_control_parse(s, strlen(s));
}

static void test_parse_known_commands(void **state)
{
    (void)state;
    assert_int_equal(parse("check-update\n"), MOLT_CONTROL_CHECK_UPDATE);
    assert_int_equal(parse("check-update\r\n"), MOLT_CONTROL_CHECK_UPDATE);
    assert_int_equal(parse("check-update"), MOLT_CONTROL_CHECK_UPDATE);   /* closed early */
    assert_int_equal(parse("send-inventory\n"), MOLT_CONTROL_SEND_INVENTORY);
    /* only the first line counts */
    assert_int_equal(parse("send-inventory\ncheck-update\n"), MOLT_CONTROL_SEND_INVENTORY);
}

static void test_parse_refuses_the_rest(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "\n", "check", "check-update ", " check-update", "CHECK-UPDATE", "check-updates",
        "check-update\t", "send-inventory now", "send_inventory", "reboot", "\r\ncheck-update",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(bad[i]) != MOLT_CONTROL_UNKNOWN)
            fail_msg("\"%s\" accepted", bad[i]);
    /* a NUL inside the line is not the end of it */
    assert_int_equal(molt_control_parse("check-update\0x\n", 15), MOLT_CONTROL_UNKNOWN);
    /* len bounds the read: no terminator needed, nothing past len looked at */
    assert_int_equal(molt_control_parse("check-updateXYZ", 12), MOLT_CONTROL_CHECK_UPDATE);
    assert_int_equal(molt_control_parse("check-update", 11), MOLT_CONTROL_UNKNOWN);
    assert_int_equal(molt_control_parse(NULL, 0), MOLT_CONTROL_UNKNOWN);
}

static void test_answers(void **state)
{
    (void)state;
    assert_string_equal(molt_control_answer(MOLT_CONTROL_CHECK_UPDATE, 0), "ok\n");
    assert_string_equal(molt_control_answer(MOLT_CONTROL_SEND_INVENTORY, 0), "ok\n");
    assert_string_equal(molt_control_answer(MOLT_CONTROL_UNKNOWN, 0), "error unknown command\n");
    /* not root (or unknown peer): refused whatever the command */
    assert_string_equal(molt_control_answer(MOLT_CONTROL_CHECK_UPDATE, 1000),
                        "error only root may control molt\n");
    assert_string_equal(molt_control_answer(MOLT_CONTROL_UNKNOWN, -1),
                        "error only root may control molt\n");
}

/* ---- one socket round trip --------------------------------------------------------------- */

typedef struct served {
    int fd;
    molt_control_cmd cmd;
} served;

static void *serve_one(void *arg)
{
    served *s = arg;
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, 10000) == 1)
        s->cmd = molt_control_serve(s->fd);
    return NULL;
}

static void roundtrip(const char *path, int fd, const char *command, int want_r,
                      molt_control_cmd want_cmd, const char *want_msg)
{
    served s = {.fd = fd, .cmd = MOLT_CONTROL_UNKNOWN};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve_one, &s), 0);
    molt_err e = {0};
    int r = molt_control_request(path, command, &e);
    pthread_join(t, NULL);
    if (r != want_r)
        fail_msg("%s: %d (%s), want %d", command, r, e.msg, want_r);
    assert_int_equal(s.cmd, want_cmd);
    if (want_msg && !strstr(e.msg, want_msg))
        fail_msg("%s: \"%s\" does not say \"%s\"", command, e.msg, want_msg);
}

static void test_socket_roundtrip(void **state)
{
    (void)state;
    char dir[] = "/tmp/molt-test-daemon-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/run/molt.sock", dir);   /* the folder is created */
    molt_err e = {0};
    int fd = -1;
    assert_int_equal(molt_control_request(path, "check-update", &e), MOLT_ENOTFOUND);
    assert_int_equal(molt_control_listen(path, &fd, &e), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    if (getuid() == 0) {
        roundtrip(path, fd, "check-update", 0, MOLT_CONTROL_CHECK_UPDATE, NULL);
        roundtrip(path, fd, "send-inventory", 0, MOLT_CONTROL_SEND_INVENTORY, NULL);
        roundtrip(path, fd, "reboot", MOLT_EINVAL, MOLT_CONTROL_UNKNOWN, "unknown command");
    } else {
        roundtrip(path, fd, "check-update", MOLT_EINVAL, MOLT_CONTROL_UNKNOWN, "only root");
    }
    /* A second daemon replaces the socket of one that died. */
    int fd2 = -1;
    assert_int_equal(molt_control_listen(path, &fd2, &e), 0);
    close(fd2);
    close(fd);
    /* Too long for sockaddr_un: a configuration error naming the key. */
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(molt_control_listen(longp, &fd, &e), MOLT_ECONFIG);
    assert_non_null(strstr(e.msg, "server.control_socket"));
    molt_rm_rf(dir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_the_cap),
        cmocka_unit_test(test_backoff_short_interval_used_as_is),
        cmocka_unit_test(test_backoff_monotonic),
        cmocka_unit_test(test_parse_known_commands),
        cmocka_unit_test(test_parse_refuses_the_rest),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_socket_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
