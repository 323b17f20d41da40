/* SPDX-License-Identifier: Apache-2.0 */
/* The unit tests' shared fixture library: see fixture.h. */
#include "fixture.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "util/fs.h"
#include "util/log.h"

/* ---- the runner ------------------------------------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int fx_run(int argc, char **argv, const struct CMUnitTest *tests, size_t n,
           CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    const char *prog = base_name(argv[0]);
    if (argc < 2)
        return _cmocka_run_group_tests(prog, tests, n, group_setup, group_teardown);
    if (strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (strcmp(argv[1], "--check") == 0) {
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            int found = 0;
            for (int a = 2; a < argc; a++)
                found += strcmp(argv[a], tests[i].name) == 0;
            if (found != 1) {
                fprintf(stderr, "%s: test %s is named %d times by the build (expected once): "
                        "the list in tests/CMakeLists.txt and the program differ\n", prog,
                        tests[i].name, found);
                bad = 1;
            }
        }
        if ((size_t)(argc - 2) != n) {
            fprintf(stderr, "%s: the build names %d tests, the program has %zu\n", prog,
                    argc - 2, n);
            bad = 1;
        }
        return bad;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s [TEST | --list | --check TEST...]\n", prog);
        return 2;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(tests[i].name, argv[1]) == 0)
            return _cmocka_run_group_tests(prog, &tests[i], 1, group_setup, group_teardown);
    fprintf(stderr, "%s: no test named %s (--list shows them)\n", prog, argv[1]);
    return 2;
}

/* ---- trees and folders ------------------------------------------------------------------ */

const char *fx_src_dir(void)
{
    static char buf[PATH_MAX];
    const char *env = getenv("MOLT_SRC_DIR");
    if (env && *env)
        return env;
    snprintf(buf, sizeof buf, "%s", __FILE__);
    char *p = strstr(buf, "/tests/unit/");
    if (!p)
        fail_msg("MOLT_SRC_DIR is not set and %s is not under tests/unit/", __FILE__);
    *p = '\0';
    return buf;
}

const char *fx_build_dir(void)
{
    const char *env = getenv("MOLT_BUILD_DIR");
    if (!env || !*env)
        fail_msg("MOLT_BUILD_DIR is not set (ctest sets it; run the test through ctest)");
    return env;
}

void fx_scratch(char *out, size_t size, const char *name)
{
    char tmpl[PATH_MAX], real[PATH_MAX];
    fx_path(tmpl, sizeof tmpl, "/tmp/molt-%s-XXXXXX", name);
    if (!mkdtemp(tmpl))
        fail_msg("mkdtemp %s: %s", tmpl, strerror(errno));
    if (!realpath(tmpl, real))
        fail_msg("realpath %s: %s", tmpl, strerror(errno));
    fx_path(out, size, "%s", real);
}

void fx_scratch_remove(const char *dir)
{
    molt_err err = {0};
    if (molt_rm_rf(dir, &err) != 0)
        fail_msg("removing the scratch folder: %s", err.msg);
}

void fx_cached(const char *key, const char *dir, void (*build)(const char *dir))
{
    const char *b = getenv("MOLT_BUILD_DIR");
    struct stat st;
    if (!b || !*b || stat("/proc/self/exe", &st) != 0) {
        build(dir);
        return;
    }
    char cache[PATH_MAX], tmp[PATH_MAX + 32];
    fx_path(cache, sizeof cache, "%s/tests/unit-cache/%s-%lld.%09ld", b, key,
            (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (access(cache, F_OK) == 0) {
        fx_sh("cp -a '%s/.' '%s'", cache, dir);
        return;
    }
    build(dir);
    /* Publish by rename, so a concurrent test sees the whole copy or none; the first wins.
     * Copies for older builds of the program go. */
    fx_path(tmp, sizeof tmp, "%s.tmp%d", cache, (int)getpid());
    const char *mine = strrchr(cache, '/') + 1;
    fx_sh("mkdir -p '%s/tests/unit-cache' && find '%s/tests/unit-cache' -maxdepth 1 "
          "-name '%s-*' ! -name '%s*' -exec rm -rf {} + && cp -a '%s' '%s'",
          b, b, key, mine, dir, tmp);
    if (rename(tmp, cache) != 0)
        fx_sh("rm -rf '%s'", tmp);
}

void *fx_fixture_alloc(void **state, size_t size, size_t dir_size, const char *name)
{
    char *f = fx_alloc(size);
    fx_scratch(f, dir_size, name);
    *state = f;
    return f;
}

int fx_fixture_free(void **state)
{
    char *f = *state;
    fx_scratch_remove(f);
    free(f);
    *state = NULL;
    return 0;
}

void fx_deployment_log_open(char *out, size_t size, const char *dir)
{
    molt_err err = {0};
    fx_path(out, size, "%s/deployment.log", dir);
    if (molt_log_open_deployment(out, &err) != 0)
        fail_msg("%s", err.msg);
}

void fx_deployment_log_close(void)
{
    molt_log_open_deployment(NULL, NULL);
}

void *fx_alloc(size_t size)
{
    void *p = calloc(1, size);
    if (!p)
        fail_msg("out of memory (%zu bytes)", size);
    return p;
}

void fx_path(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        fail_msg("path too long for its buffer of %zu bytes: %s...", size, out);
}

/* ---- files ------------------------------------------------------------------------------ */

void fx_write(const char *path, const void *data, size_t len, mode_t mode)
{
    molt_err err = {0};
    if (molt_write_file_atomic(path, data, len, mode, &err) != 0)
        fail_msg("%s", err.msg);
    if (chmod(path, mode) != 0)
        fail_msg("chmod %s: %s", path, strerror(errno));
}

void fx_write_text(const char *path, const char *text, mode_t mode)
{
    fx_write(path, text, strlen(text), mode);
}

void fx_write_in(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[PATH_MAX];
    fx_path(path, sizeof path, "%s/%s", dir, name);
    fx_write_text(path, text, mode);
}

char *fx_read(const char *path, size_t *ret_len)
{
    char *data = NULL;
    size_t len = 0;
    molt_err err = {0};
    if (molt_read_file(path, 64 << 20, &data, &len, &err) != 0)
        fail_msg("reading %s: %s", path, err.msg);
    if (ret_len)
        *ret_len = len;
    return data;
}

/* ---- commands --------------------------------------------------------------------------- */

void fx_sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        fail_msg("command too long: %.200s...", cmd);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (status %d): %s", rc, cmd);
}

int64_t fx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- libraries loaded on demand ---------------------------------------------------------- */

bool fx_mapped(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    bool found = false;
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            found = true;
    fclose(f);
    return found;
}

int fx_in_child(void (*fn)(void), const char *stderr_path)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (stderr_path && !freopen(stderr_path, "w", stderr))
            _exit(99);
        fn();
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) || WIFSIGNALED(st));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- a child that reports by handshake -------------------------------------------------- */

void fx_child_start(fx_child *c, int (*fn)(void *arg, int report_fd), void *arg)
{
    int p[2];
    if (pipe(p) != 0)
        fail_msg("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        _exit(fn(arg, p[1]));
    }
    close(p[1]);
    c->pid = pid;
    c->fd = p[0];
}

void fx_report(int report_fd)
{
    if (write(report_fd, "r", 1) != 1)
        _exit(120);   /* the parent is gone: nothing to report to */
}

int fx_child_wait_reports(fx_child *c, int n)
{
    int got = 0;
    char buf[64];
    while (got < n) {
        size_t want = (size_t)(n - got) < sizeof buf ? (size_t)(n - got) : sizeof buf;
        ssize_t r = read(c->fd, buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (int)r;
    }
    return got;
}

int fx_child_end(fx_child *c, int sig)
{
    if (sig)
        kill(c->pid, sig);
    close(c->fd);
    c->fd = -1;
    int status = 0;
    pid_t r;
    while ((r = waitpid(c->pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (r != c->pid)
        fail_msg("waitpid %d: %s", (int)c->pid, strerror(errno));
    return status;
}

bool fx_pid_gone(pid_t pid)
{
    /* Gone, or a zombie waiting for a reaper that is not us. */
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

void fx_wait_gone(pid_t pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
            ;
        close(fd);
        return;
    }
    /* No pidfd (an old kernel), or the process is already gone. */
    while (!fx_pid_gone(pid)) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

uint64_t fx_rng(void)
{
    static uint64_t state = 0x9e3779b97f4a7c15u;
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1du;
}
