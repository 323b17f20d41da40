/* SPDX-License-Identifier: Apache-2.0 */
/* Child processes for the exec module host and state scripts: fork/exec into a new process
 * group, output pumped into the log (or captured), a deadline enforced with TERM then KILL. */
#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define LINE_MAX_BYTES 4096
/* After the child exited, how long we keep reading output that a background grandchild may
 * hold open. */
#define DRAIN_AFTER_EXIT_MS 1000
/* Without a pidfd, how often the child's state is polled. */
#define EXIT_POLL_MS 20

static int kill_grace_ms = 10000;

/* ---- molt killed by a signal takes its children with it --------------------------------------
 * When molt dies of SIGTERM, SIGINT, SIGHUP or SIGQUIT (a `molt install` stopped by hand, a
 * shutdown) while a module or a script runs, the child's process group is killed first
 * (SIGKILL), as a power cut stops it: otherwise the module would go on changing the device while
 * the next molt recovers the same deployment. The handler is installed at the first watch, for
 * each of these signals whose action is still the default (the daemon's own handler for TERM and
 * INT lets the running call finish its step, docs/fleet.md). Children are started from one
 * thread; the handler only reads the table. */
#define WATCH_MAX 16
static volatile sig_atomic_t watched[WATCH_MAX];   /* pids (group leaders or not); 0 = free */

static void die_with_children(int sig)
{
    for (int i = 0; i < WATCH_MAX; i++) {
        pid_t pid = (pid_t)watched[i];
        if (pid > 0 && kill(-pid, SIGKILL) != 0)
            kill(pid, SIGKILL);   /* not a group leader (an isolated native module's child) */
    }
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

static void install_die_handlers(void)
{
    static bool installed;
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    if (installed)
        return;
    installed = true;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa = {.sa_handler = die_with_children};
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
            old.sa_handler == SIG_DFL)
            sigaction(sigs[i], &sa, NULL);
    }
}

void molt_proc_watch(pid_t pid)
{
    install_die_handlers();
    for (int i = 0; i < WATCH_MAX; i++) {
        if (watched[i] == 0) {
            watched[i] = pid;
            return;
        }
    }
}

void molt_proc_unwatch(pid_t pid)
{
    for (int i = 0; i < WATCH_MAX; i++)
        if (watched[i] == pid)
            watched[i] = 0;
}

void molt_proc_set_kill_grace_ms(int ms)
{
    kill_grace_ms = ms < 0 ? 0 : ms;
}

typedef struct out_stream {
    int fd;
    bool is_stderr;
    char line[LINE_MAX_BYTES];
    size_t line_len;
    size_t logged;        /* bytes logged so far (for stderr_log_max) */
    bool cut_noticed;
} out_stream;

struct molt_proc {
    pid_t pid;
    int pidfd;
    molt_proc_opts opts;
    int64_t deadline;     /* CLOCK_MONOTONIC ms; 0 = none */
    bool exited;          /* exited, not necessarily reaped */
    bool reaped;
    int status;
    out_stream out, errs;
    char *cap;
    size_t cap_len;
    bool cap_truncated;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *molt_proc_status_str(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "ended with wait status %#x", (unsigned)status);
    return buf;
}

/* ---- output ---- */

static void emit_line(molt_proc *p, out_stream *s, const char *text, size_t len)
{
    const molt_proc_opts *o = &p->opts;
    size_t max = s->is_stderr ? o->stderr_log_max : 0;
    if (max && s->logged >= max) {
        if (!s->cut_noticed) {
            molt_log(o->stderr_level, "%s(more than %zu bytes; the rest is not logged)",
                     o->stderr_prefix ? o->stderr_prefix : "", max);
            s->cut_noticed = true;
        }
        return;
    }
    if (max && len > max - s->logged)
        len = max - s->logged;
    s->logged += len;
    if (len > 0 && text[len - 1] == '\r')
        len--;
    const char *prefix = s->is_stderr ? o->stderr_prefix : o->stdout_prefix;
    molt_log(s->is_stderr ? o->stderr_level : o->stdout_level, "%s%.*s", prefix ? prefix : "",
             (int)len, text);
}

static void take_bytes(molt_proc *p, out_stream *s, const char *buf, size_t n)
{
    if (!s->is_stderr && p->opts.capture_stdout) {
        size_t room = p->opts.capture_max - p->cap_len;
        size_t keep = n < room ? n : room;
        memcpy(p->cap + p->cap_len, buf, keep);
        p->cap_len += keep;
        p->cap[p->cap_len] = '\0';
        if (keep < n)
            p->cap_truncated = true;
        return;
    }
    while (n > 0) {
        const char *nl = memchr(buf, '\n', n);
        size_t chunk = nl ? (size_t)(nl - buf) : n;
        size_t room = sizeof s->line - s->line_len;
        size_t take = chunk < room ? chunk : room;
        memcpy(s->line + s->line_len, buf, take);
        s->line_len += take;
        buf += take;
        n -= take;
        if (s->line_len == sizeof s->line || (nl && take == chunk)) {
            emit_line(p, s, s->line, s->line_len);
            s->line_len = 0;
            if (nl && take == chunk) {
                buf++;   /* the newline */
                n--;
            }
        }
    }
}

static void close_stream(molt_proc *p, out_stream *s)
{
    if (s->fd < 0)
        return;
    if (s->line_len > 0) {
        emit_line(p, s, s->line, s->line_len);
        s->line_len = 0;
    }
    close(s->fd);
    s->fd = -1;
}

/* Read what is available (bounded, so one chatty stream cannot starve the caller). */
static void read_stream(molt_proc *p, out_stream *s)
{
    char buf[16384];
    for (int i = 0; i < 16 && s->fd >= 0; i++) {
        ssize_t n = read(s->fd, buf, sizeof buf);
        if (n > 0) {
            take_bytes(p, s, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        close_stream(p, s);   /* EOF or a read error */
    }
}

/* ---- exit ---- */

static void check_exit(molt_proc *p)
{
    if (p->exited || p->reaped)
        return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
        if (si.si_pid == p->pid)
            p->exited = true;
    } else if (errno == ECHILD) {
        /* Someone else reaped it (SIGCHLD ignored?): treat as gone. */
        p->exited = true;
        p->reaped = true;
        p->status = 0;
    }
}

/* Poll the output pipes (and the pidfd) for up to ms; used while no caller fd is involved. */
static void poll_output(molt_proc *p, int ms)
{
    struct pollfd fds[3];
    out_stream *streams[2];
    nfds_t n = 0, ns = 0;
    if (p->out.fd >= 0) {
        streams[ns++] = &p->out;
        fds[n++] = (struct pollfd){ .fd = p->out.fd, .events = POLLIN };
    }
    if (p->errs.fd >= 0) {
        streams[ns++] = &p->errs;
        fds[n++] = (struct pollfd){ .fd = p->errs.fd, .events = POLLIN };
    }
    if (!p->exited && p->pidfd >= 0)
        fds[n++] = (struct pollfd){ .fd = p->pidfd, .events = POLLIN };
    if (!p->exited && p->pidfd < 0 && (ms < 0 || ms > EXIT_POLL_MS))
        ms = EXIT_POLL_MS;
    if (n == 0) {
        if (ms > 0)
            poll(NULL, 0, ms);
    } else if (poll(fds, n, ms) > 0) {
        for (nfds_t i = 0; i < ns; i++)
            if (fds[i].revents)
                read_stream(p, streams[i]);
    }
    check_exit(p);
}

static void reap(molt_proc *p)
{
    if (p->reaped)
        return;
    molt_proc_unwatch(p->pid);   /* before the pid can be reused */
    int status;
    while (waitpid(p->pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = 0;
            break;
        }
    }
    p->status = status;
    p->exited = true;
    p->reaped = true;
}

/* Read output that is still coming after the child exited, for a bounded time. */
static void drain_after_exit(molt_proc *p)
{
    int64_t until = now_ms() + DRAIN_AFTER_EXIT_MS;
    while (p->out.fd >= 0 || p->errs.fd >= 0) {
        int64_t left = until - now_ms();
        if (left <= 0)
            break;
        poll_output(p, (int)left);
    }
    close_stream(p, &p->out);
    close_stream(p, &p->errs);
}

void molt_proc_terminate(molt_proc *p)
{
    if (!p || p->reaped)
        return;
    check_exit(p);
    if (!p->exited) {
        if (kill(-p->pid, SIGTERM) != 0)
            kill(p->pid, SIGTERM);   /* it left its group */
        int64_t until = now_ms() + kill_grace_ms;
        while (!p->exited) {
            int64_t left = until - now_ms();
            if (left <= 0)
                break;
            poll_output(p, (int)left);
        }
    }
    /* The leader is not reaped yet, so its pid (the group id) cannot have been reused:
     * whatever is left in the group is ours. */
    kill(-p->pid, SIGKILL);
    if (!p->exited)
        kill(p->pid, SIGKILL);
    reap(p);
    drain_after_exit(p);
}

static int timed_out(molt_proc *p, molt_err *err)
{
    molt_proc_terminate(p);
    int t = p->opts.timeout_ms;
    return molt_err_set(err, MOLT_ETIMEOUT, "%s timed out after %d %s and was terminated",
                        p->opts.what ? p->opts.what : "process", t % 1000 ? t : t / 1000,
                        t % 1000 ? "ms" : "s");
}

int molt_proc_pump(molt_proc *p, int fd, short events, int max_ms, short *ret_revents,
                   molt_err *err)
{
    check_exit(p);
    int64_t now = now_ms();
    if (p->deadline && !p->exited && now >= p->deadline)
        return timed_out(p, err);
    int wait = max_ms;
    if (p->exited)
        wait = 0;
    if (p->deadline && !p->exited) {
        int64_t left = p->deadline - now;
        if (wait < 0 || left < wait)
            wait = (int)(left > INT_MAX ? INT_MAX : left);
    }
    if (!p->exited && p->pidfd < 0 && (wait < 0 || wait > EXIT_POLL_MS))
        wait = EXIT_POLL_MS;

    struct pollfd fds[4];
    nfds_t n = 0;
    int fi = -1, oi = -1, ei = -1;
    if (fd >= 0) {
        fi = (int)n;
        fds[n++] = (struct pollfd){ .fd = fd, .events = events };
    }
    if (p->out.fd >= 0) {
        oi = (int)n;
        fds[n++] = (struct pollfd){ .fd = p->out.fd, .events = POLLIN };
    }
    if (p->errs.fd >= 0) {
        ei = (int)n;
        fds[n++] = (struct pollfd){ .fd = p->errs.fd, .events = POLLIN };
    }
    if (!p->exited && p->pidfd >= 0)
        fds[n++] = (struct pollfd){ .fd = p->pidfd, .events = POLLIN };
    int r = poll(fds, n, wait);
    if (r < 0) {
        if (errno == EINTR)
            return 0;
        return molt_err_errno(err, MOLT_EIO, errno, "poll while running %s",
                              p->opts.what ? p->opts.what : "process");
    }
    if (oi >= 0 && fds[oi].revents)
        read_stream(p, &p->out);
    if (ei >= 0 && fds[ei].revents)
        read_stream(p, &p->errs);
    check_exit(p);
    if (fi >= 0 && fds[fi].revents) {
        if (ret_revents)
            *ret_revents = fds[fi].revents;
        return 1;
    }
    if (p->deadline && !p->exited && now_ms() >= p->deadline)
        return timed_out(p, err);
    return 0;
}

bool molt_proc_exited(molt_proc *p)
{
    check_exit(p);
    return p->exited;
}

int molt_proc_wait(molt_proc *p, int *ret_status, molt_err *err)
{
    while (!p->reaped && !molt_proc_exited(p)) {
        int r = molt_proc_pump(p, -1, 0, -1, NULL, err);
        if (r < 0)
            return r;
    }
    drain_after_exit(p);
    reap(p);
    if (ret_status)
        *ret_status = p->status;
    return 0;
}

const char *molt_proc_output(const molt_proc *p, size_t *ret_len, bool *ret_truncated)
{
    if (ret_len)
        *ret_len = p->cap_len;
    if (ret_truncated)
        *ret_truncated = p->cap_truncated;
    return p->cap ? p->cap : "";
}

void molt_proc_free(molt_proc *p)
{
    if (!p)
        return;
    if (!p->reaped)
        molt_proc_terminate(p);
    close_stream(p, &p->out);
    close_stream(p, &p->errs);
    if (p->pidfd >= 0)
        close(p->pidfd);
    free(p->cap);
    free(p);
}

/* ---- spawn ---- */

/* Move a descriptor above 2 (a parent started with 0-2 closed would otherwise hand the child
 * pipes on its standard descriptors); -1 on failure. */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn)) child_exec(const char *const *argv, const char *cwd,
                                                 int devnull, int out_w, int err_w,
                                                 int report_fd, int max_fd, pid_t parent)
{
    int e;
    setpgid(0, 0);
    if (molt_proc_die_with_parent(parent) != 0)
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    /* The parent made sure none of these is below 3, so no dup2 overwrites another. */
    dup2(devnull, 0);
    dup2(out_w, 1);
    dup2(err_w, 2);
    if (cwd && chdir(cwd) != 0) {
        e = errno;
        goto fail;
    }
    /* Every other descriptor closes on exec (report_fd too, which tells the parent that exec
     * succeeded). */
    if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) != 0) {
        for (int fd = 3; fd <= max_fd; fd++)
            if (fd != report_fd)
                close(fd);
    }
    execv(argv[0], (char *const *)argv);
    e = errno;
fail:
    while (write(report_fd, &e, sizeof e) < 0 && errno == EINTR)
        ;
    _exit(127);
}

int molt_proc_spawn(molt_proc **ret, const char *const *argv, const molt_proc_opts *opts,
                    molt_err *err)
{
    int out[2] = { -1, -1 }, errp[2] = { -1, -1 }, rep[2] = { -1, -1 }, devnull = -1;
    const char *what = opts->what ? opts->what : argv[0];
    int r = 0;
    molt_proc *p = calloc(1, sizeof *p);
    if (!p)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory starting %s", what);
    p->opts = *opts;
    p->pidfd = -1;
    p->reaped = true;   /* nothing to kill or reap until fork succeeded */
    p->out = (out_stream){ .fd = -1 };
    p->errs = (out_stream){ .fd = -1, .is_stderr = true };
    if (opts->capture_stdout) {
        p->cap = malloc(opts->capture_max + 1);
        if (!p->cap) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory starting %s", what);
            goto out;
        }
        p->cap[0] = '\0';
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot create pipes for %s", what);
        goto out;
    }
    devnull = above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    for (int i = 0; i < 2; i++) {
        out[i] = above_stdio(out[i]);
        errp[i] = above_stdio(errp[i]);
        rep[i] = above_stdio(rep[i]);
    }
    if (devnull < 0 || out[0] < 0 || out[1] < 0 || errp[0] < 0 || errp[1] < 0 || rep[0] < 0 ||
        rep[1] < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot open /dev/null for %s", what);
        goto out;
    }
    long open_max = sysconf(_SC_OPEN_MAX);
    int max_fd = open_max < 0 || open_max > 65536 ? 65536 : (int)open_max;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot fork to start %s", what);
        goto out;
    }
    if (pid == 0)
        child_exec(argv, opts->cwd, devnull, out[1], errp[1], rep[1], max_fd, parent);

    setpgid(pid, pid);   /* also here, so kill(-pid) works even before the child ran */
    molt_proc_watch(pid);
    p->pid = pid;
    p->reaped = false;
    close(out[1]);
    close(errp[1]);
    close(rep[1]);
    out[1] = errp[1] = rep[1] = -1;
    p->out.fd = out[0];
    p->errs.fd = errp[0];
    out[0] = errp[0] = -1;

    int child_errno = 0;
    ssize_t n;
    do {
        n = read(rep[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof child_errno) {
        reap(p);
        r = molt_err_errno(err, child_errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, child_errno,
                           "cannot execute %s (%s%s)", argv[0], opts->cwd ? "in " : "",
                           opts->cwd ? opts->cwd : "current folder");
        goto out;
    }
    fcntl(p->out.fd, F_SETFL, fcntl(p->out.fd, F_GETFL) | O_NONBLOCK);
    fcntl(p->errs.fd, F_SETFL, fcntl(p->errs.fd, F_GETFL) | O_NONBLOCK);
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd >= 0)
        fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
    if (opts->timeout_ms > 0)
        p->deadline = now_ms() + opts->timeout_ms;

out:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
        if (rep[i] >= 0)
            close(rep[i]);
    }
    if (devnull >= 0)
        close(devnull);
    if (r != 0) {
        molt_proc_free(p);
        return r;
    }
    *ret = p;
    return 0;
}

/* ---- nothing molt started outlives it ------------------------------------------------------
 * SIGKILL cannot be caught, so molt killed by it (or by the OOM killer, or crashing) cannot take
 * its children along as die_with_children does. Two things make up for it:
 *  - every child molt forks asks the kernel for SIGKILL when molt dies (PR_SET_PDEATHSIG), so
 *    the module, script or dpkg that was running stops at once;
 *  - what those children started in turn (a module's `sleep`, dpkg's maintainer script) does
 *    not get that signal, but inherits molt's environment, which names the molt run that
 *    started it (MOLT_PROC_OWNER_ENV). The next molt that takes the device's lock finds the
 *    token of a run that ended without releasing it, and ends every process carrying that
 *    token before it calls any module (molt_proc_end_owned). */

int molt_proc_die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        return -1;
    /* The parent may have died before the prctl: then nobody will send the signal. */
    return getppid() == parent ? 0 : -1;
}

int molt_proc_set_owner(const char *token, molt_err *err)
{
    if (setenv(MOLT_PROC_OWNER_ENV, token, 1) != 0)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot set %s", MOLT_PROC_OWNER_ENV);
    return 0;
}

/* Fields of /proc/<pid>/stat after the command name: the state letter and the start time
 * (field 22, clock ticks after boot). 0, or -1 when the process is gone. */
static int proc_stat(pid_t pid, char *ret_state, unsigned long long *ret_start, char *comm,
                     size_t comm_size)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return -1;
    if (comm)
        snprintf(comm, comm_size, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    /* After ") ": field 3 (state) ... field 22 (starttime) is the 20th token. */
    char *p = close_paren + 1, *save = NULL;
    char *tok = strtok_r(p, " ", &save);
    if (!tok)
        return -1;
    *ret_state = tok[0];
    for (int i = 4; i <= 22 && tok; i++)
        tok = strtok_r(NULL, " ", &save);
    if (!tok)
        return -1;
    *ret_start = strtoull(tok, NULL, 10);
    return 0;
}

/* Whether /proc/<pid>/environ holds exactly want ("NAME=value"). Unreadable: false. */
static bool environ_has(pid_t pid, const char *want)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    /* Entries are NUL-terminated; keep the tail of each read so an entry cut by the buffer is
     * still seen whole. An environment is read up to 4 MiB. */
    size_t wlen = strlen(want) + 1;   /* with its NUL */
    char buf[16384];
    size_t have = 0, total = 0;
    bool found = false, at_start = true;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        total += (size_t)n;
        size_t i = 0;
        while (i < have) {
            char *nul = memchr(buf + i, '\0', have - i);
            if (!nul)
                break;
            size_t len = (size_t)(nul - (buf + i)) + 1;
            if (at_start && len == wlen && memcmp(buf + i, want, wlen) == 0)
                found = true;
            at_start = true;
            i += len;
        }
        if (found)
            break;
        /* the unfinished entry: keep it when it could still be want, else skip it */
        size_t rest = have - i;
        if (rest >= wlen) {
            at_start = false;
            rest = 0;
        }
        memmove(buf, buf + i, rest);
        have = rest;
        if (total > (4u << 20))
            break;
    }
    close(fd);
    return found;
}

#define END_MAX 256
#define END_WAIT_MS 30000

int molt_proc_end_owned(const char *token, molt_err *err)
{
    char want[256];
    if (snprintf(want, sizeof want, "%s=%s", MOLT_PROC_OWNER_ENV, token) >= (int)sizeof want)
        return molt_err_set(err, MOLT_EINVAL, "process owner token too long");
    pid_t self = getpid();
    int ended = 0;
    /* Rounds: a process may fork between the scan and its end; its child carries the token. */
    for (int round = 0; round < 20; round++) {
        int fds[END_MAX];
        pid_t pids[END_MAX];
        char comms[END_MAX][32];
        int n = 0;
        DIR *dir = opendir("/proc");
        if (!dir)
            return molt_err_errno(err, MOLT_EIO, errno, "cannot list /proc");
        struct dirent *de;
        while ((de = readdir(dir)) && n < END_MAX) {
            char *end;
            long v = strtol(de->d_name, &end, 10);
            if (*end || v <= 0 || (pid_t)v == self)
                continue;
            pid_t pid = (pid_t)v;
            char state;
            unsigned long long start, again;
            if (proc_stat(pid, &state, &start, comms[n], sizeof comms[n]) != 0 || state == 'Z' ||
                state == 'X' || !environ_has(pid, want))
                continue;
            /* A pidfd names this process, never one that reuses its pid: check that it still
             * is the process we read (same start time), then signal through it. */
            int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
            if (pfd < 0 && errno == ESRCH)
                continue;
            if (proc_stat(pid, &state, &again, NULL, 0) != 0 || again != start) {
                if (pfd >= 0)
                    close(pfd);
                continue;
            }
            molt_log_warning("ending process %d (%s), left running by a molt that died",
                             (int)pid, comms[n]);
            int rc = pfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0)
                              : kill(pid, SIGKILL);
            if (rc != 0 && errno != ESRCH) {
                int e = errno;
                if (pfd >= 0)
                    close(pfd);
                closedir(dir);
                for (int i = 0; i < n; i++)
                    if (fds[i] >= 0)
                        close(fds[i]);
                return molt_err_errno(err, MOLT_EIO, e,
                                      "cannot end process %d (%s) left running by a molt that "
                                      "died", (int)pid, comms[n]);
            }
            pids[n] = pid;
            fds[n++] = pfd;
        }
        closedir(dir);
        if (n == 0)
            break;
        ended += n;
        /* Wait until each is gone (a pidfd turns readable when its process has exited; without
         * one, poll /proc). A process that does not end is an error: molt must not work on the
         * device beside it. */
        int64_t until = now_ms() + END_WAIT_MS;
        int r = 0;
        for (int i = 0; i < n; i++) {
            for (;;) {
                char st;
                unsigned long long t;
                if (fds[i] >= 0) {
                    struct pollfd p = {.fd = fds[i], .events = POLLIN};
                    int64_t left = until - now_ms();
                    if (poll(&p, 1, left > 0 ? (int)left : 0) > 0)
                        break;
                } else if (proc_stat(pids[i], &st, &t, NULL, 0) != 0 || st == 'Z' ||
                           st == 'X') {
                    break;
                } else {
                    poll(NULL, 0, EXIT_POLL_MS);
                }
                if (now_ms() >= until) {
                    r = molt_err_set(err, MOLT_ESTATE,
                                     "process %d (%s), left running by a molt that died, did "
                                     "not end within %d s of SIGKILL: not touching the device "
                                     "beside it", (int)pids[i], comms[i], END_WAIT_MS / 1000);
                    break;
                }
            }
            if (r < 0)
                break;
        }
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        if (r < 0)
            return r;
    }
    return ended;
}
