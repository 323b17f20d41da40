/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of core/util/proc.c's protection against a molt killed by SIGKILL: the owner token
 * (molt_proc_end_owned finds exactly the processes whose environment holds MOLT_OWNER=<token>,
 * however long the environment before it, ends them and waits), and the parent-death signal
 * (molt_proc_die_with_parent). */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "util/proc.h"

/* Start `sleep 60` with env (NULL-terminated); returns once it has executed (the close-on-exec
 * pipe closes), so /proc/<pid>/environ already shows env. */
static pid_t start_sleep(char *const env[])
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *const argv[] = {(char *)"sleep", (char *)"60", NULL};
        execve("/bin/sleep", argv, env);
        _exit(127);
    }
    close(p[1]);
    char c;
    while (read(p[0], &c, 1) < 0 && errno == EINTR)
        ;
    close(p[0]);
    return pid;
}

static bool alive(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

static void end(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* A variable of big bytes first, so the token lies beyond (or across) the first read of
 * /proc/<pid>/environ. */
static void end_owned_after(size_t big)
{
    char *filler = malloc(big + 3);
    assert_non_null(filler);
    memcpy(filler, "X=", 2);
    memset(filler + 2, 'a', big);
    filler[big + 2] = '\0';
    char *const mine[] = {filler, (char *)"MOLT_OWNER=tok-1", NULL};
    char *const longer[] = {(char *)"MOLT_OWNER=tok-1x", NULL};
    char *const other[] = {(char *)"MOLT_OWNER=tok-2", NULL};
    char *const in_value[] = {(char *)"Y=MOLT_OWNER=tok-1", NULL};
    pid_t a = start_sleep(mine);
    pid_t b = start_sleep(longer);
    pid_t c = start_sleep(other);
    pid_t d = start_sleep(in_value);
    /* a zombie with the token: already gone, skipped without an error */
    pid_t z = start_sleep(mine);
    kill(z, SIGKILL);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    assert_int_equal(waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT), 0);

    molt_err err = {0};
    assert_int_equal(molt_proc_end_owned("tok-1", &err), 1);
    int status = 0;
    assert_int_equal(waitpid(a, &status, 0), a);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(alive(b));
    assert_true(alive(c));
    assert_true(alive(d));
    /* nothing left with that token */
    assert_int_equal(molt_proc_end_owned("tok-1", &err), 0);
    end(b);
    end(c);
    end(d);
    waitpid(z, NULL, 0);
    free(filler);
}

static void test_end_owned(void **state)
{
    (void)state;
    end_owned_after(10);
    end_owned_after(40000);
    /* the token's entry across the 16 KiB read buffer, at each offset around its end */
    for (size_t big = 16360; big <= 16384; big += 3)
        end_owned_after(big);
}

/* A child that asked for the parent-death signal dies with its parent (here: an intermediate
 * process that exits); this test is the subreaper, so it can wait for the grandchild. */
static void test_die_with_parent(void **state)
{
    (void)state;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) {
        pid_t parent = getpid();
        int e[2];
        if (pipe2(e, O_CLOEXEC) != 0)
            _exit(4);
        pid_t g = fork();
        if (g == 0) {
            close(e[0]);
            if (molt_proc_die_with_parent(parent) != 0)
                _exit(3);
            char *const argv[] = {(char *)"sleep", (char *)"1000", NULL};
            execv("/bin/sleep", argv);
            _exit(127);
        }
        /* report the grandchild once it runs sleep: its end of the close-on-exec pipe closed */
        close(e[1]);
        char c;
        while (read(e[0], &c, 1) < 0 && errno == EINTR)
            ;
        if (write(p[1], &g, sizeof g) != (ssize_t)sizeof g)
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    pid_t g = 0;
    assert_int_equal(read(p[0], &g, sizeof g), (ssize_t)sizeof g);
    close(p[0]);
    assert_int_equal(waitpid(mid, NULL, 0), mid);
    /* The grandchild, reparented to us, must die of SIGKILL: waited for without a deadline
     * (it would sleep 1000 s; ctest's TIMEOUT reports that hang). */
    int fd = (int)syscall(SYS_pidfd_open, g, 0);
    if (fd >= 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n;
        while ((n = poll(&pfd, 1, -1)) < 0 && errno == EINTR)
            ;
        close(fd);
        if (n != 1) {
            kill(g, SIGKILL);
            waitpid(g, NULL, 0);
            fail_msg("the child did not die with its parent");
        }
    }
    int status = 0;
    assert_int_equal(waitpid(g, &status, 0), g);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_end_owned),
        cmocka_unit_test(test_die_with_parent),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
