/* SPDX-License-Identifier: Apache-2.0 */
/* The exec module host against real shell modules (tests/modules/logging-module, Mender's
 * community modules): lookup, the work tree byte for byte, calls, query answers, timeouts with
 * the whole process group gone, and Download by streams and by files/ on artifacts written by
 * the real mender-artifact. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Paths here are short scratch paths; gcc cannot know that and warns about every join. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "artifact/reader.h"
#include "host/exec_host.h"
#include "host/worktree.h"
#include "util/proc.h"
#include "util/encoding.h"
#include "util/fs.h"
#include "util/log.h"

/* Scratch paths are short (/tmp/molt-exec-test-XXXXXX/...); buffers that join two of them are
 * BUF bytes, shell commands CMD bytes. */
#define P 200
#define BUF 1024
#define CMD 4096

typedef struct fixture {
    char dir[P];      /* realpath of the scratch folder */
    char mods[P];     /* module folder */
    char module[P];   /* mods/my-type: a copy of the logging module */
    char ctl[P];      /* its control folder */
    char tree[P];
    char log[P];      /* deployment log */
} fixture;

static void assert_file_eq(const char *dir, const char *name, const char *expect, size_t n)
{
    char path[BUF];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data = fx_read(path, &len);
    if (len != n || memcmp(data, expect, n) != 0)
        fail_msg("%s: expected %zu bytes '%.*s', got %zu bytes '%.*s'", name, n, (int)n, expect,
                 len, (int)len, data);
    free(data);
}
#define ASSERT_FILE(dir, name, lit) assert_file_eq(dir, name, lit, sizeof(lit) - 1)

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "exec-test");
    fx_path(f->mods, sizeof f->mods, "%s/mods", f->dir);
    fx_path(f->module, sizeof f->module, "%s/my-type", f->mods);
    fx_path(f->ctl, sizeof f->ctl, "%s/ctl", f->dir);
    fx_path(f->tree, sizeof f->tree, "%s/data/tree", f->dir);
    assert_int_equal(mkdir(f->mods, 0755), 0);
    assert_int_equal(mkdir(f->ctl, 0755), 0);
    fx_sh("cp '%s/tests/modules/logging-module' '%s' && chmod 755 '%s'", fx_src_dir(), f->module,
          f->module);
    setenv("LOGGING_MODULE_DIR", f->ctl, 1);
    molt_proc_set_kill_grace_ms(1000);
    fx_deployment_log_open(f->log, sizeof f->log, f->dir);
    return 0;
}

static int teardown(void **state)
{
    fx_deployment_log_close();
    unsetenv("LOGGING_MODULE_DIR");
    return fx_fixture_free(state);
}

/* An artifact header as the reader would produce it, for the tree and plain calls. */
static molt_artifact_info *sample_info(bool with_meta)
{
    molt_artifact_info *info = molt_artifact_info_new();
    assert_non_null(info);
    info->format_version = 3;
    info->name = strdup("release-2");
    info->group = strdup("beta");
    info->payload_type = strdup("my-type");
    json_error_t je;
    info->header_info = json_loads(
        "{\"payloads\":[{\"type\":\"my-type\"}],\"artifact_provides\":{\"artifact_name\":"
        "\"release-2\",\"artifact_group\":\"beta\"},\"artifact_depends\":{\"device_type\":"
        "[\"dev-a\",\"dev-b\"]}}", 0, &je);
    info->type_info = json_loads(
        "{\"type\":\"my-type\",\"artifact_provides\":{\"rootfs-image.my-type.version\":\"2\"}}",
        0, &je);
    if (with_meta)
        info->meta_data = json_loads("{\"Zeta\":1,\"alpha\":[true,null],\"b\":{}}", 0, &je);
    assert_non_null(info->header_info);
    assert_non_null(info->type_info);
    return info;
}

static void make_tree(fixture *f)
{
    molt_artifact_info *info = sample_info(false);
    molt_exec_tree_info cur = { "release-1", "", "dev-a" };
    molt_err err = { 0 };
    if (molt_worktree_create_exec(f->tree, info, &cur, &err) != 0)
        fail_msg("%s", err.msg);
    molt_artifact_info_free(info);
}

static molt_module *new_module(fixture *f, int timeout)
{
    molt_module *m = NULL;
    molt_err err = { 0 };
    if (molt_exec_module_new(&m, f->module, "my-type", f->tree, timeout, &err) != 0)
        fail_msg("%s", err.msg);
    return m;
}

/* ---- lookup ---- */

static void test_find(void **state)
{
    fixture *f = *state;
    char other[BUF], path[BUF];
    snprintf(other, sizeof other, "%s/other", f->dir);
    assert_int_equal(mkdir(other, 0755), 0);
    const char *dirs[] = { f->mods, "/nonexistent/molt-modules", other };
    char *found = NULL;
    molt_err err = { 0 };

    assert_int_equal(molt_exec_find(dirs, 3, "my-type", &found, &err), 0);
    assert_string_equal(found, f->module);
    free(found);
    found = NULL;

    /* Only in the last folder: found there. */
    snprintf(path, sizeof path, "%s/late-type", other);
    fx_write_text(path, "#!/bin/sh\nexit 0\n", 0755);
    assert_int_equal(molt_exec_find(dirs, 3, "late-type", &found, &err), 0);
    assert_string_equal(found, path);
    free(found);
    found = NULL;

    /* Missing everywhere. */
    assert_int_equal(molt_exec_find(dirs, 3, "no-such-type", &found, &err), MOLT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no-such-type"));
    assert_null(found);

    /* Names that are not one path component. */
    const char *bad[] = { "../mods/my-type", "a/b", ".", "..", "" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(molt_exec_find(dirs, 3, bad[i], &found, &err), MOLT_EINVAL);
        assert_null(found);
    }

    /* A symlink leaving the folder is refused, one staying inside is fine. */
    snprintf(path, sizeof path, "%s/escape", f->mods);
    assert_int_equal(symlink("/bin/true", path), 0);
    assert_int_equal(molt_exec_find(dirs, 3, "escape", &found, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "outside"));
    assert_null(found);
    snprintf(path, sizeof path, "%s/alias", f->mods);
    assert_int_equal(symlink("my-type", path), 0);
    assert_int_equal(molt_exec_find(dirs, 3, "alias", &found, &err), 0);
    assert_string_equal(found, f->module);
    free(found);
    found = NULL;
    snprintf(path, sizeof path, "%s/dotdot", f->mods);
    assert_int_equal(symlink("../other/late-type", path), 0);
    assert_int_equal(molt_exec_find(dirs, 3, "dotdot", &found, &err), MOLT_EINVAL);
    assert_null(found);

    /* Not executable, not a regular file: refused, not skipped in favour of a later folder. */
    snprintf(path, sizeof path, "%s/plain", f->mods);
    fx_write_text(path, "#!/bin/sh\n", 0644);
    assert_int_equal(molt_exec_find(dirs, 3, "plain", &found, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "not executable"));
    snprintf(path, sizeof path, "%s/folder", f->mods);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(molt_exec_find(dirs, 3, "folder", &found, &err), MOLT_EINVAL);
    assert_null(found);
}

/* ---- the tree ---- */

static void test_tree_bytes(void **state)
{
    fixture *f = *state;
    char stale[BUF], header[BUF], tmp[PATH_MAX + 16];
    assert_int_equal(molt_mkdir_p(f->tree, 0755, NULL), 0);
    snprintf(stale, sizeof stale, "%s/files", f->tree);
    assert_int_equal(mkdir(stale, 0755), 0);
    fx_write_in(stale, "old-payload", "old", 0644);

    molt_artifact_info *info = sample_info(true);
    molt_exec_tree_info cur = { "release-1", "", "dev-a" };
    molt_err err = { 0 };
    assert_int_equal(molt_worktree_create_exec(f->tree, info, &cur, &err), 0);
    molt_artifact_info_free(info);

    assert_false(molt_path_exists(stale));   /* the old tree is gone */
    ASSERT_FILE(f->tree, "version", "3\n");
    ASSERT_FILE(f->tree, "current_artifact_name", "release-1\n");
    ASSERT_FILE(f->tree, "current_artifact_group", "");
    ASSERT_FILE(f->tree, "current_device_type", "dev-a\n");
    snprintf(header, sizeof header, "%s/header", f->tree);
    ASSERT_FILE(header, "artifact_name", "release-2");
    ASSERT_FILE(header, "artifact_group", "beta");
    ASSERT_FILE(header, "payload_type", "my-type");
    ASSERT_FILE(header, "header-info",
                "{\n"
                "  \"artifact_depends\": {\n"
                "    \"device_type\": [\n"
                "      \"dev-a\",\n"
                "      \"dev-b\"\n"
                "    ]\n"
                "  },\n"
                "  \"artifact_provides\": {\n"
                "    \"artifact_group\": \"beta\",\n"
                "    \"artifact_name\": \"release-2\"\n"
                "  },\n"
                "  \"payloads\": [\n"
                "    {\n"
                "      \"type\": \"my-type\"\n"
                "    }\n"
                "  ]\n"
                "}");
    ASSERT_FILE(header, "type-info",
                "{\n"
                "  \"artifact_provides\": {\n"
                "    \"rootfs-image.my-type.version\": \"2\"\n"
                "  },\n"
                "  \"type\": \"my-type\"\n"
                "}");
    ASSERT_FILE(header, "meta-data",
                "{\n"
                "  \"Zeta\": 1,\n"
                "  \"alpha\": [\n"
                "    true,\n"
                "    null\n"
                "  ],\n"
                "  \"b\": {}\n"
                "}");
    snprintf(tmp, sizeof tmp, "%s/tmp", f->tree);
    struct stat st;
    assert_int_equal(stat(tmp, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* No meta-data, no group, unknown current name: "null", empty files. */
    info = sample_info(false);
    free(info->group);
    info->group = NULL;
    molt_exec_tree_info unknown = { "", "", "dev-a" };
    assert_int_equal(molt_worktree_create_exec(f->tree, info, &unknown, &err), 0);
    molt_artifact_info_free(info);
    ASSERT_FILE(header, "meta-data", "null");
    ASSERT_FILE(header, "artifact_group", "");
    ASSERT_FILE(f->tree, "current_artifact_name", "");
}

/* ---- calls ---- */

static void test_call_argv_cwd_and_log(void **state)
{
    fixture *f = *state;
    make_tree(f);
    molt_module *m = new_module(f, 30);
    assert_string_equal(m->name, "my-type");
    assert_string_equal(m->path, f->module);
    molt_err err = { 0 };
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_INSTALL, &err), 0);
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_COMMIT, &err), 0);
    char expect[BUF];
    snprintf(expect, sizeof expect, "ArtifactInstall 2 %s\nArtifactCommit 2 %s\n", f->tree,
             f->tree);
    assert_file_eq(f->ctl, "log", expect, strlen(expect));

    /* stdout and stderr of the module are in the deployment log. */
    size_t len;
    char *log = fx_read(f->log, &len);
    assert_non_null(strstr(log, "Update Module output (stdout): logging-module stdout ArtifactInstall"));
    assert_non_null(strstr(log, "Update Module output (stderr): logging-module ArtifactCommit"));
    free(log);

    /* A failing call: MOLT_EMODULE with the exit code. */
    fx_write_in(f->ctl, "fail_ArtifactCommit", "3", 0644);
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_COMMIT, &err), MOLT_EMODULE);
    assert_non_null(strstr(err.msg, "ArtifactCommit"));
    assert_non_null(strstr(err.msg, "exited with code 3"));

    /* Calls that are not plain calls are never sent. */
    assert_int_equal(m->ops->call(m, MOLT_CALL_DOWNLOAD, &err), MOLT_EINVAL);
    assert_int_equal(m->ops->call(m, MOLT_CALL_COUNT, &err), MOLT_EINVAL);
    assert_int_equal(m->ops->call(m, (molt_call)-1, &err), MOLT_EINVAL);
    m->ops->free(m);
}

static pid_t read_pid(const char *dir, const char *name)
{
    char path[BUF];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = fx_read(path, &len);
    pid_t pid = (pid_t)atoi(s);
    free(s);
    assert_true(pid > 1);
    return pid;
}

/* The module gets /dev/null on stdin and none of our descriptors, even one without O_CLOEXEC. */
static void test_child_descriptors(void **state)
{
    fixture *f = *state;
    make_tree(f);
    int leak = open("/dev/null", O_RDONLY);   /* deliberately without O_CLOEXEC */
    assert_true(leak >= 0);
    assert_int_equal(dup2(leak, 77), 77);
    fx_write_in(f->ctl, "hook_ArtifactInstall",
                "readlink /proc/$$/fd/0 > \"$CTL/stdin\"\n"
                "if [ -e /proc/$$/fd/77 ]; then echo leaked > \"$CTL/fd77\"; fi\n", 0644);
    molt_module *m = new_module(f, 30);
    molt_err err = { 0 };
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_INSTALL, &err), 0);
    close(77);
    close(leak);
    ASSERT_FILE(f->ctl, "stdin", "/dev/null\n");
    char path[BUF];
    snprintf(path, sizeof path, "%s/fd77", f->ctl);
    assert_false(molt_path_exists(path));
    m->ops->free(m);
}

/* A module that leaves a background process holding its stdout: the call still returns soon
 * after the module exits, and that process is left alone (only a timeout kills the group). */
static void test_background_child_does_not_block(void **state)
{
    fixture *f = *state;
    make_tree(f);
    fx_write_in(f->ctl, "hook_ArtifactCommit", "sleep 1000 &\necho $! > \"$CTL/bg.pid\"\n",
                0644);
    molt_module *m = new_module(f, 300);
    molt_err err = { 0 };
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_COMMIT, &err), 0);
    /* Returned while the process holding stdout still runs: not at its end, nor at the
     * timeout (which would be MOLT_ETIMEOUT). */
    pid_t bg = read_pid(f->ctl, "bg.pid");
    assert_int_equal(kill(bg, 0), 0);
    kill(bg, SIGKILL);
    m->ops->free(m);
}

static void test_cleanup_removes_tree(void **state)
{
    fixture *f = *state;
    make_tree(f);
    molt_module *m = new_module(f, 30);
    molt_err err = { 0 };
    assert_int_equal(m->ops->call(m, MOLT_CALL_CLEANUP, &err), 0);
    assert_false(molt_path_exists(f->tree));
    /* Again (a resume after a power cut): no tree, nothing to clean, the module is not run. */
    assert_int_equal(m->ops->call(m, MOLT_CALL_CLEANUP, &err), 0);
    /* Other calls need the tree. */
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_INSTALL, &err), MOLT_ENOTFOUND);
    molt_answer a;
    assert_int_equal(m->ops->query(m, MOLT_CALL_SUPPORTS_ROLLBACK, &a, &err), MOLT_ENOTFOUND);
    char expect[BUF];
    snprintf(expect, sizeof expect, "Cleanup 2 %s\n", f->tree);
    assert_file_eq(f->ctl, "log", expect, strlen(expect));
    m->ops->free(m);
}

typedef struct answer_case {
    molt_call call;
    const char *printed;
    int expect_rc;
    molt_answer expect;
} answer_case;

static void test_query_answers(void **state)
{
    fixture *f = *state;
    make_tree(f);
    molt_module *m = new_module(f, 30);
    const answer_case cases[] = {
        { MOLT_CALL_SUPPORTS_ROLLBACK, "Yes\n", 0, MOLT_ANSWER_YES },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "Yes", 0, MOLT_ANSWER_YES },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "No\n", 0, MOLT_ANSWER_NO },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "", 0, MOLT_ANSWER_NO },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "\n", 0, MOLT_ANSWER_NO },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "Yes\n\n", 0, MOLT_ANSWER_YES },
        { MOLT_CALL_NEEDS_ARTIFACT_REBOOT, "Automatic\n", 0, MOLT_ANSWER_AUTOMATIC },
        { MOLT_CALL_NEEDS_ARTIFACT_REBOOT, "Yes\n", 0, MOLT_ANSWER_YES },
        { MOLT_CALL_NEEDS_ARTIFACT_REBOOT, "No", 0, MOLT_ANSWER_NO },
        { MOLT_CALL_PROVIDE_PAYLOAD_FILE_SIZES, "Yes\n", 0, MOLT_ANSWER_YES },
        { MOLT_CALL_PROVIDE_PAYLOAD_FILE_SIZES, "", 0, MOLT_ANSWER_NO },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "Automatic\n", MOLT_EPROTOCOL, 0 },
        { MOLT_CALL_PROVIDE_PAYLOAD_FILE_SIZES, "Automatic", MOLT_EPROTOCOL, 0 },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "yes\n", MOLT_EPROTOCOL, 0 },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "Yes \n", MOLT_EPROTOCOL, 0 },
        { MOLT_CALL_SUPPORTS_ROLLBACK, " Yes\n", MOLT_EPROTOCOL, 0 },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "Yes\r\n", MOLT_EPROTOCOL, 0 },
        { MOLT_CALL_SUPPORTS_ROLLBACK, "Yes\nNo\n", MOLT_EPROTOCOL, 0 },
        { MOLT_CALL_NEEDS_ARTIFACT_REBOOT, "No\n\nYes", MOLT_EPROTOCOL, 0 },
    };
    char path[BUF];
    snprintf(path, sizeof path, "%s/answer", f->ctl);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const answer_case *c = &cases[i];
        char name[96];
        snprintf(name, sizeof name, "answer_%s", molt_call_name(c->call));
        fx_write_in(f->ctl, name, c->printed, 0644);
        molt_answer a = (molt_answer)99;
        molt_err err = { 0 };
        int rc = m->ops->query(m, c->call, &a, &err);
        if (rc != c->expect_rc)
            fail_msg("case %zu (%s '%s'): rc %d, expected %d: %s", i, molt_call_name(c->call),
                     c->printed, rc, c->expect_rc, err.msg);
        if (rc == 0 && a != c->expect)
            fail_msg("case %zu: answer %d, expected %d", i, (int)a, (int)c->expect);
        if (rc != 0)
            assert_int_equal((int)a, 99);   /* untouched on failure */
        if (strstr(c->printed, "\nNo") || strstr(c->printed, "\nYes"))
            assert_non_null(strstr(err.msg, "Too many lines"));
    }
    /* A failing query is an error, whatever it printed. */
    fx_write_in(f->ctl, "answer_SupportsRollback", "Yes\n", 0644);
    fx_write_in(f->ctl, "fail_SupportsRollback", "1", 0644);
    molt_answer a;
    molt_err err = { 0 };
    assert_int_equal(m->ops->query(m, MOLT_CALL_SUPPORTS_ROLLBACK, &a, &err), MOLT_EMODULE);
    assert_non_null(strstr(err.msg, "exited with code 1"));
    /* Not a query. */
    assert_int_equal(m->ops->query(m, MOLT_CALL_ARTIFACT_INSTALL, &a, &err), MOLT_EINVAL);
    m->ops->free(m);
}

/* ---- timeouts ---- */

/* Make the call (a query when answer is set) with a timeout of t = 1 s, or 2, 4... s when the
 * module had not written bg.pid by then: a busy machine may not run the shell that far within
 * 1 s, and the test is about what the timeout does to a group that has its background child.
 * Returns the call's code, the timeout used and the time it took. */
static int call_until_timeout(fixture *f, molt_call call, molt_answer *answer, molt_err *err,
                              int *ret_t, int64_t *ret_took)
{
    char pidfile[BUF];
    fx_path(pidfile, sizeof pidfile, "%s/bg.pid", f->ctl);
    for (int t = 1;; t *= 2) {
        molt_module *m = new_module(f, t);
        unlink(pidfile);
        molt_err_clear(err);
        int64_t t0 = fx_now_ms();
        int rc = answer ? m->ops->query(m, call, answer, err) : m->ops->call(m, call, err);
        *ret_took = fx_now_ms() - t0;
        m->ops->free(m);
        *ret_t = t;
        if (molt_path_exists(pidfile) || t >= 64)
            return rc;
        print_message("the module had not started its background child within %d s; again "
                      "with %d s\n", t, 2 * t);
    }
}

static void test_timeout_kills_group(void **state)
{
    fixture *f = *state;
    make_tree(f);
    /* The module starts a background child in its group, then sleeps. */
    fx_write_in(f->ctl, "hook_ArtifactInstall", "sleep 1000 &\necho $! > \"$CTL/bg.pid\"\n",
                0644);
    fx_write_in(f->ctl, "sleep_ArtifactInstall", "1000", 0644);
    molt_err err = { 0 };
    int t;
    int64_t took;
    assert_int_equal(call_until_timeout(f, MOLT_CALL_ARTIFACT_INSTALL, NULL, &err, &t, &took),
                     MOLT_ETIMEOUT);
    assert_true(took >= t * 1000 - 100);
    assert_non_null(strstr(err.msg, f->module));
    assert_non_null(strstr(err.msg, "ArtifactInstall"));
    /* The background child goes too: waited for without a deadline (it would sleep 1000 s;
     * ctest's TIMEOUT reports that hang). */
    fx_wait_gone(read_pid(f->ctl, "bg.pid"));
}

static void test_timeout_term_ignored_then_kill(void **state)
{
    fixture *f = *state;
    make_tree(f);
    /* Everything in the group ignores SIGTERM: only the SIGKILL after the grace ends it. */
    fx_write_in(f->ctl, "hook_NeedsArtifactReboot",
                "trap '' TERM\nsleep 1000 &\necho $! > \"$CTL/bg.pid\"\n", 0644);
    fx_write_in(f->ctl, "sleep_NeedsArtifactReboot", "1000", 0644);
    molt_err err = { 0 };
    molt_answer a = MOLT_ANSWER_NO;
    int t;
    int64_t took;
    assert_int_equal(call_until_timeout(f, MOLT_CALL_NEEDS_ARTIFACT_REBOOT, &a, &err, &t, &took),
                     MOLT_ETIMEOUT);
    assert_true(took >= t * 1000 + 1000 - 100);   /* the timeout, then the 1 s grace */
    fx_wait_gone(read_pid(f->ctl, "bg.pid"));
}

/* ---- download ---- */

static bool have_mender_artifact(void)
{
    return system("mender-artifact --version >/dev/null 2>&1") == 0;
}

/* Payload files a.bin (a_size random bytes) and b.txt, and the artifact art.mender. */
static void make_artifact_sized(fixture *f, const char *compression, long a_size)
{
    char cmd[CMD];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c %ld /dev/urandom > a.bin && printf 'hello\\n' > b.txt && "
             "mender-artifact write module-image -T my-type -n release-2 -t dev-a "
             "--compression %s -f a.bin -f b.txt -o art.mender >/dev/null",
             f->dir, a_size, compression);
    fx_sh("%s", cmd);
}

static void make_artifact(fixture *f, const char *compression)
{
    make_artifact_sized(f, compression, 300001);
}

typedef struct opened {
    molt_source *src;
    molt_artifact_reader *r;
} opened;

static opened open_artifact(fixture *f, const char *name)
{
    opened o = { 0 };
    char path[BUF];
    molt_err err = { 0 };
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    if (molt_source_file_new(&o.src, path, &err) != 0)
        fail_msg("%s", err.msg);
    molt_artifact_opts opts = { 0 };
    if (molt_artifact_reader_open(&o.r, o.src, &opts, &err) != 0)
        fail_msg("%s", err.msg);
    molt_exec_tree_info cur = { "release-1", "", "dev-a" };
    if (molt_worktree_create_exec(f->tree, molt_artifact_reader_info(o.r), &cur, &err) != 0)
        fail_msg("%s", err.msg);
    return o;
}

static void close_artifact(opened *o)
{
    molt_artifact_reader_free(o->r);
    molt_source_free(o->src);
}

static void assert_same_file(const char *a_dir, const char *a, const char *b_dir, const char *b)
{
    char pa[BUF], pb[BUF];
    size_t la, lb;
    snprintf(pa, sizeof pa, "%s/%s", a_dir, a);
    snprintf(pb, sizeof pb, "%s/%s", b_dir, b);
    char *da = fx_read(pa, &la), *db = fx_read(pb, &lb);
    unsigned char ha[32], hb[32];
    molt_sha256(da, la, ha);
    molt_sha256(db, lb, hb);
    if (la != lb || memcmp(ha, hb, 32) != 0)
        fail_msg("%s (%zu bytes) differs from %s (%zu bytes)", pa, la, pb, lb);
    free(da);
    free(db);
}

static void download_streams(fixture *f, bool sizes)
{
    if (!have_mender_artifact())
        skip();
    make_artifact(f, "gzip");
    fx_write_in(f->ctl, "stream", "", 0644);
    if (sizes)
        fx_write_in(f->ctl, "answer_ProvidePayloadFileSizes", "Yes\n", 0644);
    opened o = open_artifact(f, "art.mender");
    molt_module *m = new_module(f, 30);
    molt_err err = { 0 };
    if (m->ops->download(m, o.r, &err) != 0)
        fail_msg("%s", err.msg);
    char streamed[BUF];
    snprintf(streamed, sizeof streamed, "%s/streamed", f->ctl);
    assert_same_file(f->dir, "a.bin", streamed, "a.bin");
    assert_same_file(f->dir, "b.txt", streamed, "b.txt");
    if (sizes)
        ASSERT_FILE(f->ctl, "stream-next.log", "streams/a.bin 300001\nstreams/b.txt 6\n");
    else
        ASSERT_FILE(f->ctl, "stream-next.log", "streams/a.bin\nstreams/b.txt\n");
    char expect[BUF];
    snprintf(expect, sizeof expect, "ProvidePayloadFileSizes 2 %s\n%s 2 %s\n", f->tree,
             sizes ? "DownloadWithFileSizes" : "Download", f->tree);
    assert_file_eq(f->ctl, "log", expect, strlen(expect));
    /* Streamed: no files/ written by us. */
    char files[BUF];
    snprintf(files, sizeof files, "%s/files", f->tree);
    assert_false(molt_path_exists(files));
    m->ops->free(m);
    close_artifact(&o);
}

static void test_download_streams(void **state)
{
    download_streams(*state, false);
}

static void test_download_streams_with_sizes(void **state)
{
    download_streams(*state, true);
}

static void test_download_files_fallback(void **state)
{
    fixture *f = *state;
    if (!have_mender_artifact())
        skip();
    make_artifact(f, "none");
    opened o = open_artifact(f, "art.mender");
    molt_module *m = new_module(f, 30);
    molt_err err = { 0 };
    if (m->ops->download(m, o.r, &err) != 0)
        fail_msg("%s", err.msg);
    char files[BUF], path[BUF];
    snprintf(files, sizeof files, "%s/files", f->tree);
    assert_same_file(f->dir, "a.bin", files, "a.bin");
    assert_same_file(f->dir, "b.txt", files, "b.txt");
    snprintf(path, sizeof path, "%s/stream-next", f->tree);
    assert_false(molt_path_exists(path));
    snprintf(path, sizeof path, "%s/streams", f->tree);
    assert_false(molt_path_exists(path));
    /* The module then finds them in ArtifactInstall. */
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_INSTALL, &err), 0);
    snprintf(path, sizeof path, "%s/files", f->ctl);
    assert_same_file(f->dir, "a.bin", path, "a.bin");
    m->ops->free(m);
    close_artifact(&o);
}

/* A module that goes wrong in Download: every case fails, quickly, and names the problem. */
static void download_fails_sized(fixture *f, long a_size, const char *knob, const char *value,
                                 int expect_rc, const char *expect_msg)
{
    if (!have_mender_artifact())
        skip();
    make_artifact_sized(f, "gzip", a_size);
    fx_write_in(f->ctl, "stream", "", 0644);
    fx_write_in(f->ctl, knob, value, 0644);
    opened o = open_artifact(f, "art.mender");
    /* A short timeout only where the timeout is the case: elsewhere a busy machine must not
     * turn the expected failure into a timeout; a hang is MOLT_ETIMEOUT, not expect_rc. */
    molt_module *m = new_module(f, expect_rc == MOLT_ETIMEOUT ? 3 : 60);
    molt_err err = { 0 };
    int rc = m->ops->download(m, o.r, &err);
    if (rc != expect_rc || !strstr(err.msg, expect_msg))
        fail_msg("%s: rc %d (expected %d), message '%s' (expected '%s')", knob, rc, expect_rc,
                 err.msg, expect_msg);
    m->ops->free(m);
    close_artifact(&o);
}

static void download_fails(fixture *f, const char *knob, const char *value, int expect_rc,
                           const char *expect_msg)
{
    download_fails_sized(f, 300001, knob, value, expect_rc, expect_msg);
}

/* More than the FIFO holds: the module closing it shows up as a broken pipe while writing. */
/* Much output on stdout and stderr while streaming: drained as it comes, nothing blocks. */
static void test_download_with_chatty_module(void **state)
{
    fixture *f = *state;
    if (!have_mender_artifact())
        skip();
    make_artifact(f, "gzip");
    fx_write_in(f->ctl, "stream", "", 0644);
    fx_write_in(f->ctl, "hook_Download",
                "yes 'noise on stderr' | head -n 30000 >&2\nyes 'noise on stdout' | head -n 30000\n",
                0644);
    opened o = open_artifact(f, "art.mender");
    molt_module *m = new_module(f, 20);
    molt_err err = { 0 };
    molt_log_set_level(MOLT_LOG_ERROR);   /* keep the test's own stderr readable */
    int rc = m->ops->download(m, o.r, &err);
    molt_log_set_level(MOLT_LOG_INFO);
    if (rc != 0)
        fail_msg("%s", err.msg);
    char streamed[BUF];
    snprintf(streamed, sizeof streamed, "%s/streamed", f->ctl);
    assert_same_file(f->dir, "a.bin", streamed, "a.bin");
    size_t len;
    char *log = fx_read(f->log, &len);
    size_t n = 0;
    /* memmem, not strstr: ASan's strstr measures the rest of the 3 MB log at every call. */
    static const char needle[] = "(stderr): noise on stderr";
    for (char *p = log; (p = memmem(p, len - (size_t)(p - log), needle, sizeof needle - 1)); p++)
        n++;
    assert_int_equal(n, 30000);
    free(log);
    m->ops->free(m);
    close_artifact(&o);
}

static void test_download_module_stops_reading(void **state)
{
    download_fails_sized(*state, 3 << 20, "stream_stop", "1000", MOLT_EPROTOCOL,
                         "stopped reading streams/a.bin after");
}

/* Less than the FIFO holds. Whether molt's last write of the file lands before the module exits
 * is a race: either way the download fails with a protocol error naming the stream ("did not
 * finish (it exited after streams/a.bin" or "stopped reading streams/a.bin after N of M"). */
static void test_download_module_stops_reading_small(void **state)
{
    download_fails(*state, "stream_stop", "1000", MOLT_EPROTOCOL, "streams/a.bin");
}

static void test_download_module_stops_and_fails(void **state)
{
    fixture *f = *state;
    fx_write_in(f->ctl, "stream_stop_exit", "4", 0644);
    download_fails(f, "stream_stop", "1000", MOLT_EMODULE, "exited with code 4");
}

static void test_download_module_stalls(void **state)
{
    fixture *f = *state;
    fx_write_in(f->ctl, "stream_stop_sleep", "30", 0644);
    download_fails(f, "stream_stop", "1000", MOLT_ETIMEOUT, "timed out");
}

static void test_download_module_skips_end(void **state)
{
    download_fails(*state, "stream_skip_end", "", MOLT_EPROTOCOL,
                   "started downloading, but did not finish");
}

static void test_download_module_exit_1(void **state)
{
    download_fails(*state, "fail_Download", "1", MOLT_EMODULE, "exited with code 1");
}

static void test_download_sizes_query_fails(void **state)
{
    download_fails(*state, "answer_ProvidePayloadFileSizes", "Maybe\n", MOLT_EPROTOCOL,
                   "ProvidePayloadFileSizes");
}

/* A payload whose checksum does not match: the module must not be told it finished. */
static void test_download_checksum_mismatch(void **state)
{
    fixture *f = *state;
    if (!have_mender_artifact())
        skip();
    make_artifact(f, "none");
    /* Flip one byte inside a.bin's data in the uncompressed data tar. */
    char cmd[CMD];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && python3 - <<'EOF'\n"
             "d = bytearray(open('art.mender','rb').read())\n"
             "a = open('a.bin','rb').read()\n"
             "i = d.find(a[1000:1064])\n"
             "assert i > 0\n"
             "d[i] ^= 0xff\n"
             "open('bad.mender','wb').write(d)\n"
             "EOF", f->dir);
    fx_sh("%s", cmd);
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 1)
            fx_write_in(f->ctl, "stream", "", 0644);
        opened o = open_artifact(f, "bad.mender");
        molt_module *m = new_module(f, 10);
        molt_err err = { 0 };
        int rc = m->ops->download(m, o.r, &err);
        if (rc != MOLT_ECHECKSUM)
            fail_msg("mode %d: rc %d, expected MOLT_ECHECKSUM: %s", mode, rc, err.msg);
        m->ops->free(m);
        close_artifact(&o);
    }
}

/* Mender's own community modules, unchanged: Download by files/, ArtifactInstall into dest_dir.
 * Found through our module folder first (it does not hold them) and then Mender's. */
static molt_module *install_with_mender_module(fixture *f, const char *type, const char *artifact,
                                               opened *ret_o)
{
    const char *dirs[] = { f->mods, "/usr/share/mender/modules/v3" };
    char *path = NULL;
    molt_err err = { 0 };
    assert_int_equal(molt_exec_find(dirs, 2, type, &path, &err), 0);
    *ret_o = open_artifact(f, artifact);
    molt_module *m = NULL;
    assert_int_equal(molt_exec_module_new(&m, path, type, f->tree, 30, &err), 0);
    free(path);
    if (m->ops->download(m, ret_o->r, &err) != 0)
        fail_msg("%s", err.msg);
    if (m->ops->call(m, MOLT_CALL_ARTIFACT_INSTALL, &err) != 0)
        fail_msg("%s", err.msg);
    return m;
}

static void test_mender_single_file_module(void **state)
{
    fixture *f = *state;
    const char *mod = "/usr/share/mender/modules/v3/single-file";
    if (access(mod, X_OK) != 0 || !have_mender_artifact())
        skip();
    char cmd[CMD];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir dest && printf 'config v2\\n' > app.conf && "
             "printf '%s/dest' > dest_dir && printf 'app.conf' > filename && "
             "printf '0640' > permissions && "
             "mender-artifact write module-image -T single-file -n sf-2 -t dev-a "
             "-f app.conf -f dest_dir -f filename -f permissions -o sf.mender >/dev/null",
             f->dir, f->dir);
    fx_sh("%s", cmd);
    opened o;
    molt_module *m = install_with_mender_module(f, "single-file", "sf.mender", &o);
    molt_err err = { 0 };
    char dest[BUF];
    snprintf(dest, sizeof dest, "%s/dest", f->dir);
    assert_same_file(f->dir, "app.conf", dest, "app.conf");
    molt_answer a;
    assert_int_equal(m->ops->query(m, MOLT_CALL_SUPPORTS_ROLLBACK, &a, &err), 0);
    assert_int_equal(a, MOLT_ANSWER_YES);
    assert_int_equal(m->ops->query(m, MOLT_CALL_NEEDS_ARTIFACT_REBOOT, &a, &err), 0);
    assert_int_equal(a, MOLT_ANSWER_NO);
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_COMMIT, &err), 0);
    assert_int_equal(m->ops->call(m, MOLT_CALL_CLEANUP, &err), 0);
    assert_false(molt_path_exists(f->tree));
    m->ops->free(m);
    close_artifact(&o);
}

static void test_mender_directory_module(void **state)
{
    fixture *f = *state;
    const char *mod = "/usr/share/mender/modules/v3/directory";
    if (access(mod, X_OK) != 0 || !have_mender_artifact())
        skip();
    char cmd[CMD];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p dest/app src/sub && printf 'old\\n' > dest/app/old.txt && "
             "printf 'one\\n' > src/one.txt && printf 'two\\n' > src/sub/two.txt && "
             "tar -C src -cf update.tar . && printf '%s/dest/app' > dest_dir && "
             "mender-artifact write module-image -T directory -n dir-2 -t dev-a "
             "-f update.tar -f dest_dir -o dir.mender >/dev/null",
             f->dir, f->dir);
    fx_sh("%s", cmd);
    opened o;
    molt_module *m = install_with_mender_module(f, "directory", "dir.mender", &o);
    molt_err err = { 0 };
    char dest[BUF], srcd[BUF];
    snprintf(dest, sizeof dest, "%s/dest/app", f->dir);
    snprintf(srcd, sizeof srcd, "%s/src", f->dir);
    assert_same_file(srcd, "one.txt", dest, "one.txt");
    assert_same_file(srcd, "sub/two.txt", dest, "sub/two.txt");
    char old[BUF + 16];
    snprintf(old, sizeof old, "%s/old.txt", dest);
    assert_false(molt_path_exists(old));   /* the directory was replaced */
    /* Rolling back restores the previous content. */
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_ROLLBACK, &err), 0);
    assert_true(molt_path_exists(old));
    assert_int_equal(m->ops->call(m, MOLT_CALL_CLEANUP, &err), 0);
    m->ops->free(m);
    close_artifact(&o);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_argv_cwd_and_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_child_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_removes_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_term_ignored_then_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_streams_with_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_files_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_with_chatty_module, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_module_stops_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_module_stops_reading_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_module_stops_and_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_module_stalls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_module_skips_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_module_exit_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_sizes_query_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_download_checksum_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mender_single_file_module, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mender_directory_module, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
