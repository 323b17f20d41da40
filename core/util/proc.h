/* SPDX-License-Identifier: Apache-2.0 */
/* Child processes for the exec module host, state scripts and inventory scripts (private to
 * core; in util/ because host, state and server all start them): spawn in a
 * process group of its own with stdin on /dev/null and no inherited descriptors, log or capture
 * its output line by line, bound its run time (TERM to the group, a grace period, then KILL). */
#ifndef MOLT_UTIL_PROC_H
#define MOLT_UTIL_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "util/err.h"
#include "util/log.h"

typedef struct molt_proc molt_proc;

typedef struct molt_proc_opts {
    const char *what;            /* for messages: "update module /x/file (ArtifactInstall)" */
    const char *cwd;             /* working folder of the child; NULL = inherit */
    int timeout_ms;              /* whole run time; <= 0 = unbounded */
    /* stdout: captured into memory (up to capture_max bytes; more sets the truncated flag and
     * is dropped) or, when capture_stdout is false, logged line by line at stdout_level with
     * stdout_prefix. */
    bool capture_stdout;
    size_t capture_max;
    molt_log_level stdout_level;
    const char *stdout_prefix;
    /* stderr: always logged line by line at stderr_level with stderr_prefix; after
     * stderr_log_max bytes (0 = no limit) the rest is read and dropped, with one notice. */
    molt_log_level stderr_level;
    const char *stderr_prefix;
    size_t stderr_log_max;
} molt_proc_opts;

/* Start argv[0] (an absolute path; no PATH search) with argv. The child gets stdin from
 * /dev/null, stdout/stderr on pipes read by the pump, default signal dispositions, an empty
 * signal mask, no descriptor above 2, and its own process group. An exec failure is reported
 * here (MOLT_EIO/MOLT_ENOTFOUND naming the program), not as an exit code. opts and its strings
 * must outlive the proc. */
int molt_proc_spawn(molt_proc **ret, const char *const *argv, const molt_proc_opts *opts,
                    molt_err *err);

/* Wait up to max_ms (< 0 = until something happens) for: fd becoming ready for events (fd may
 * be -1), the child exiting, or the deadline. Output arriving meanwhile is logged/captured.
 * Returns 1 with *ret_revents when fd is ready, 0 when the time elapsed or the child has exited
 * (see molt_proc_exited), MOLT_ETIMEOUT when the deadline passed (the group was then terminated
 * and reaped), or another negative code. */
int molt_proc_pump(molt_proc *p, int fd, short events, int max_ms, short *ret_revents,
                   molt_err *err);

/* Whether the child has exited (it is not reaped yet, so its pid stays reserved). */
bool molt_proc_exited(molt_proc *p);

/* Wait for the child to exit (bounded by the deadline), drain its output, reap it. Returns 0
 * with *ret_status a waitpid() status, or MOLT_ETIMEOUT after terminating the group. */
int molt_proc_wait(molt_proc *p, int *ret_status, molt_err *err);

/* molt killed by SIGTERM, SIGINT, SIGHUP or SIGQUIT (with those left at their default action
 * when the first child started) first kills the watched children: SIGKILL to the process group
 * of each (or to the pid when it leads none), then dies of the signal. molt_proc_spawn watches
 * its children until they are reaped; other forked children (an isolated native module call)
 * are watched from fork to waitpid with these. At most 16 at once (more are not watched). */
void molt_proc_watch(pid_t pid);
void molt_proc_unwatch(pid_t pid);

/* Terminate now: SIGTERM to the group, up to the grace period for the child to exit, then
 * SIGKILL to the group; reap. Safe to call more than once. */
void molt_proc_terminate(molt_proc *p);

/* The captured stdout (NUL-terminated), its length, and whether more was produced than kept. */
const char *molt_proc_output(const molt_proc *p, size_t *ret_len, bool *ret_truncated);

/* "exited with code 3" / "was killed by signal 9" for a waitpid() status, into buf. */
const char *molt_proc_status_str(int status, char *buf, size_t size);

/* Terminates a child still running, closes everything. Accepts NULL. */
void molt_proc_free(molt_proc *p);

/* ---- nothing molt started outlives it (docs/cli.md "When molt is killed") ----
 * The environment variable naming the molt run that started a process; inherited by every
 * descendant that keeps its environment. */
#define MOLT_PROC_OWNER_ENV "MOLT_OWNER"

/* In a child right after fork(): SIGKILL it when parent (the pid of the process that forked,
 * read before the fork) dies. The kernel sends it when the *thread* that forked exits, and an
 * exec of a set-user-ID/set-group-ID binary (or one with file capabilities) clears it: molt
 * forks only from its main thread, and what a setuid program starts is found by the owner
 * token (below). -1 when the parent died already (the child must exit). Async-signal-safe. */
int molt_proc_die_with_parent(pid_t parent);

/* Name this process's run in the environment its children inherit: MOLT_OWNER=token. Call
 * from the main thread while no other thread runs. */
int molt_proc_set_owner(const char *token, molt_err *err);

/* End every process (but this one) whose environment holds MOLT_OWNER=token: each is checked
 * by pid and start time through a pidfd (a recycled pid is never signalled), sent SIGKILL, and
 * waited for until it is gone; rounds repeat until none is found (a fork meanwhile). Returns
 * how many were ended, or MOLT_ESTATE when one did not end within 30 s (named in err). Needs to
 * read /proc/<pid>/environ: molt runs as root, or as the user its children run as. */
int molt_proc_end_owned(const char *token, molt_err *err);

/* Grace period between SIGTERM and SIGKILL (default 10000 ms, as Mender's C++ client). For
 * tests; not thread-safe against running procs. */
void molt_proc_set_kill_grace_ms(int ms);

#endif
