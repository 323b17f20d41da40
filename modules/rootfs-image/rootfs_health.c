/* SPDX-License-Identifier: Apache-2.0 */
/* Health checks after the reboot into the new system, before the commit: shell commands and
 * systemd units that must all succeed within a deadline. Mender has no such step. */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define CHECK_MAX 4096

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run argv (in its own process group, stdout to /dev/null) until it exits or until time `end`
 * (then the group is killed). 0 when it exited 0; the exit status or -1 (killed) otherwise. */
static int run(char *const argv[], double end)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        /* dies with molt; what it starts carries molt's MOLT_OWNER token (docs/cli.md) */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
            _exit(127);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (w < 0 && errno != EINTR)
            return -1;
        if (now() >= end) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* One round over every check: 0 when all passed, else 1 with what failed in why. */
static int round_once(const rootfs_config *cfg, double end, char *why, size_t cap)
{
    const char *lists[2] = {cfg->health_commands, cfg->health_units};
    for (int kind = 0; kind < 2; kind++) {
        const char *p = lists[kind];
        while (p && *p) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            char item[CHECK_MAX];
            snprintf(item, sizeof item, "%.*s", (int)(len < CHECK_MAX ? len : CHECK_MAX - 1), p);
            p = nl ? nl + 1 : NULL;
            if (!*item)
                continue;
            int rc;
            if (kind == 0) {
                char *argv[] = {"/bin/sh", "-c", item, NULL};
                rc = run(argv, end);
            } else {
                char *argv[] = {(char *)cfg->systemctl, "is-active", "--quiet", item, NULL};
                rc = run(argv, end);
            }
            if (rc != 0) {
                if (rc < 0)
                    snprintf(why, cap, "%s \"%s\" did not finish in time", kind ? "unit check"
                             : "command", item);
                else if (kind == 0)
                    snprintf(why, cap, "command \"%s\" exited %d", item, rc);
                else
                    snprintf(why, cap, "unit %s is not active (%s is-active: exit %d)", item,
                             cfg->systemctl, rc);
                return 1;
            }
        }
    }
    return 0;
}

int rootfs_health_check(const struct molt_host_api *host, const rootfs_config *cfg,
                        struct molt_sdk_error *err)
{
    if (!cfg->health_commands && !cfg->health_units)
        return 0;
    double start = now(), end = start + cfg->health_deadline;
    char why[CHECK_MAX + 128] = "";
    for (int rounds = 1;; rounds++) {
        if (round_once(cfg, end, why, sizeof why) == 0) {
            molt_sdk_log_info(host, "health checks passed after %.1f s (round %d)",
                              now() - start, rounds);
            return 0;
        }
        if (now() + 1 >= end)
            return rootfs_err(err, MOLT_EMODULE, "health check failed within the %d s "
                              "deadline: %s", cfg->health_deadline, why);
        molt_sdk_log_debug(host, "health check round %d: %s; retrying", rounds, why);
        sleep(1);
    }
}
