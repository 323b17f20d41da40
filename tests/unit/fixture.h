/* SPDX-License-Identifier: Apache-2.0 */
/* The unit tests' shared fixture library (tests/unit/fixture.c, linked into every unit program):
 * scratch folders, files written and read back, shell commands, the source and build trees, a
 * forked child that reports by handshake, and the runner that lets ctest run one test at a time.
 * Every helper fails the running cmocka test with a message naming what went wrong. */
#ifndef MOLT_TESTS_UNIT_FIXTURE_H
#define MOLT_TESTS_UNIT_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <sys/types.h>

/* ---- the runner ------------------------------------------------------------------------- */

/* cmocka_run_group_tests() with a command line (docs/testing.md):
 *   prog             runs every test of tests[];
 *   prog NAME        runs only the test NAME (its setup/teardown and the group's as well);
 *   prog --list      prints the tests' names, one a line;
 *   prog --check A B... exits 0 when A B... are exactly the names of tests[] (tests/CMakeLists.txt
 *                    finds the names by reading the source, and checks itself with this).
 * A name that is not in tests[] exits 2 with a message. */
int fx_run(int argc, char **argv, const struct CMUnitTest *tests, size_t n,
           CMFixtureFunction group_setup, CMFixtureFunction group_teardown);
#define fx_run_group_tests(argc, argv, tests, group_setup, group_teardown) \
    fx_run(argc, argv, tests, sizeof(tests) / sizeof((tests)[0]), group_setup, group_teardown)

/* ---- trees and folders ------------------------------------------------------------------ */

/* The source tree ($MOLT_SRC_DIR, else found from this file's path) and the build tree
 * ($MOLT_BUILD_DIR, which ctest sets; the test fails without it). */
const char *fx_src_dir(void);
const char *fx_build_dir(void);

/* Make a fresh folder /tmp/molt-<name>-XXXXXX and write its real path (symlinks resolved) into
 * out[size]. Remove it, with everything in it, by fx_scratch_remove. */
void fx_scratch(char *out, size_t size, const char *name);
void fx_scratch_remove(const char *dir);

/* Fill dir with what build(dir) makes there, which must not depend on dir's name: built once
 * per build of the test program, then copied from <build>/tests/unit-cache/<key>-<program's
 * mtime>/. ctest runs each test in a process of its own, each running the group's setup: a
 * setup that generates keys or artifacts is paid once, not once per test. Without
 * MOLT_BUILD_DIR, build(dir) runs every time. */
void fx_cached(const char *key, const char *dir, void (*build)(const char *dir));

/* A fixture struct whose first member is char dir[N]: allocated zeroed, its scratch folder made
 * (fx_scratch) into dir, and stored in *state. fx_fixture_free(state) removes the folder and
 * frees the struct: a teardown's last call. */
#define fx_fixture_new(state, type, name)                                                     \
    ((type *)fx_fixture_alloc((state), sizeof(type), sizeof(((type *)0)->dir), (name)) +       \
     0 * sizeof(char[offsetof(type, dir) == 0 ? 1 : -1]))
void *fx_fixture_alloc(void **state, size_t size, size_t dir_size, const char *name);
int fx_fixture_free(void **state);

/* Open dir/deployment.log as the deployment log (molt_log_open_deployment), its path written
 * into out[size]; fx_deployment_log_close() closes it. */
void fx_deployment_log_open(char *out, size_t size, const char *dir);
void fx_deployment_log_close(void);

/* calloc that fails the test instead of returning NULL: the fixtures' structs. */
void *fx_alloc(size_t size);

/* snprintf into out[size]; a result that does not fit fails the test. */
void fx_path(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- files ------------------------------------------------------------------------------ */

/* Write data to path (atomically: a module may be running the old file), with exactly mode
 * whatever the umask. fx_write_text writes a string; fx_write_in writes dir/name. */
void fx_write(const char *path, const void *data, size_t len, mode_t mode);
void fx_write_text(const char *path, const char *text, mode_t mode);
void fx_write_in(const char *dir, const char *name, const char *text, mode_t mode);

/* The whole file (at most 64 MiB), NUL-terminated; the caller frees it. ret_len may be NULL. */
char *fx_read(const char *path, size_t *ret_len);

/* ---- commands --------------------------------------------------------------------------- */

/* Run a shell command made of fmt; one that does not exit 0 fails the test, naming it. */
void fx_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic milliseconds, for figures a test prints (never for what it asserts). */
int64_t fx_now_ms(void);

/* A pseudo-random sequence (xorshift64*) from a fixed seed, the same in every run. */
uint64_t fx_rng(void);

/* ---- libraries loaded on demand ---------------------------------------------------------- */

/* True if a mapping of this process (/proc/self/maps) names needle ("/libcrypto"). */
bool fx_mapped(const char *needle);

/* Run fn in a forked child (a fresh load-once state for the libraries molt loads on demand),
 * its stderr to stderr_path (NULL: kept); the child exits 0 when fn returns. Returns the
 * child's exit status, or 128 + the signal that ended it. */
int fx_in_child(void (*fn)(void), const char *stderr_path);

/* ---- a child that reports by handshake -------------------------------------------------- */

/* A forked child running fn(arg, report_fd) and exiting with its return value. The child calls
 * fx_report(report_fd) at each point the parent may wait for (a save done, a line written);
 * the parent waits for n reports with fx_child_wait_reports, then acts (kills it, checks the
 * disk) at exactly that point, however busy the machine is. */
typedef struct fx_child {
    pid_t pid;
    int fd;   /* the parent's end of the report pipe */
} fx_child;

void fx_child_start(fx_child *c, int (*fn)(void *arg, int report_fd), void *arg);
void fx_report(int report_fd);
/* Block until n more reports came; returns how many came (fewer: the child ended first). */
int fx_child_wait_reports(fx_child *c, int n);
/* Send sig (0: none), reap the child and return its wait status. */
int fx_child_end(fx_child *c, int sig);

/* Block until process pid (not our child) is gone or a zombie, with no deadline: a process
 * that never goes is a hang, which ctest's per-test TIMEOUT reports. */
void fx_wait_gone(pid_t pid);
bool fx_pid_gone(pid_t pid);

#endif
