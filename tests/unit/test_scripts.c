/* SPDX-License-Identifier: Apache-2.0 */
/* State scripts with real shell scripts: extraction, selection by name (the C++ client's regex),
 * lexical order, Enter/Leave stop at the first failure, Error runs all, retry-later (21) with its
 * interval and timeout, a timeout per script, the version file rule, stderr into the log. */
#include "fixture.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util/proc.h"
#include "state/scripts.h"
#include "util/fs.h"
#include "util/log.h"
#include "open_hook.h"

/* Scratch paths are short; gcc cannot know that and warns about every join. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define BUF 1024

typedef struct fixture {
    char dir[200];
    char rootfs[300];     /* Idle/Sync/Download scripts */
    char artifact[300];   /* Artifact* scripts */
    char runlog[300];     /* each script appends "<name> <argc> <cwd>" */
    char log[300];        /* deployment log */
    molt_scripts_opts opts;
} fixture;

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "scripts-test");
    snprintf(f->rootfs, sizeof f->rootfs, "%s/etc-scripts", f->dir);
    snprintf(f->artifact, sizeof f->artifact, "%s/var-scripts", f->dir);
    snprintf(f->runlog, sizeof f->runlog, "%s/runs", f->dir);
    assert_int_equal(mkdir(f->rootfs, 0755), 0);
    assert_int_equal(mkdir(f->artifact, 0755), 0);
    f->opts = (molt_scripts_opts){ .rootfs_dir = f->rootfs, .artifact_dir = f->artifact,
                                   .timeout = 10, .retry_interval = 1, .retry_timeout = 10 };
    setenv("RUNLOG", f->runlog, 1);
    molt_proc_set_kill_grace_ms(1000);
    fx_deployment_log_open(f->log, sizeof f->log, f->dir);
    return 0;
}

static int teardown(void **state)
{
    fx_deployment_log_close();
    unsetenv("RUNLOG");
    return fx_fixture_free(state);
}

/* A script that logs itself, then runs body. */
static void script(const char *dir, const char *name, const char *body, mode_t mode)
{
    char text[BUF];
    snprintf(text, sizeof text,
             "#!/bin/sh\necho \"$(basename \"$0\") $# $(pwd -P)\" >> \"$RUNLOG\"\n%s\n", body);
    fx_write_in(dir, name, text, mode);
}

/* The names the scripts logged, one per line, without the argc/cwd part. */
static void assert_runs(fixture *f, const char *expect)
{
    char got[BUF] = "";
    if (molt_path_exists(f->runlog)) {
        char *data = fx_read(f->runlog, NULL);
        for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
            char *sp = strchr(line, ' ');
            if (sp)
                *sp = '\0';
            strncat(got, line, sizeof got - strlen(got) - 2);
            strcat(got, "\n");
        }
        free(data);
    }
    if (strcmp(got, expect) != 0)
        fail_msg("scripts run:\n%s\nexpected:\n%s", got, expect);
}

static int run(fixture *f, const char *state, const char *action, molt_err *err)
{
    molt_err_clear(err);
    return molt_scripts_run(&f->opts, state, action, err);
}

static void test_selection_and_order(void **state)
{
    fixture *f = *state;
    script(f->artifact, "ArtifactInstall_Enter_10", "", 0755);
    script(f->artifact, "ArtifactInstall_Enter_02_b", "", 0755);
    script(f->artifact, "ArtifactInstall_Enter_02_a.sh", "", 0755);
    script(f->artifact, "ArtifactInstall_Enter_00_x_y-z.1", "", 0700);
    /* Not matching the regex (State)_(Action)_[0-9][0-9](_\S+)?, or not executable. */
    script(f->artifact, "ArtifactInstall_Enter_1", "", 0755);
    script(f->artifact, "ArtifactInstall_Enter_011", "", 0755);
    script(f->artifact, "ArtifactInstall_Enter_01_", "", 0755);
    script(f->artifact, "ArtifactInstall_Enter_01_a b", "", 0755);
    script(f->artifact, "ArtifactInstall_Enter_01-x", "", 0755);
    script(f->artifact, "artifactInstall_Enter_01", "", 0755);
    script(f->artifact, "ArtifactInstall_enter_01", "", 0755);
    script(f->artifact, "XArtifactInstall_Enter_01", "", 0755);
    script(f->artifact, "ArtifactInstall_Leave_01", "", 0755);
    script(f->artifact, "ArtifactInstall_Enter_03_noexec", "", 0644);
    char sub[BUF];
    snprintf(sub, sizeof sub, "%s/ArtifactInstall_Enter_04_dir", f->artifact);
    assert_int_equal(mkdir(sub, 0755), 0);
    /* Download scripts come from the rootfs folder only. */
    script(f->artifact, "Download_Enter_00", "", 0755);
    script(f->rootfs, "Download_Enter_05", "", 0755);
    script(f->rootfs, "ArtifactInstall_Enter_05", "", 0755);

    molt_err err;
    assert_int_equal(run(f, "ArtifactInstall", "Enter", &err), 0);
    assert_runs(f, "ArtifactInstall_Enter_00_x_y-z.1\nArtifactInstall_Enter_02_a.sh\n"
                   "ArtifactInstall_Enter_02_b\nArtifactInstall_Enter_10\n");
    unlink(f->runlog);
    assert_int_equal(run(f, "Download", "Enter", &err), 0);
    assert_runs(f, "Download_Enter_05\n");

    /* No arguments, and the caller's working folder (not a module tree). */
    char *data = fx_read(f->runlog, NULL), cwd[PATH_MAX], expect[PATH_MAX + 32];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char real[PATH_MAX];
    assert_non_null(realpath(cwd, real));
    snprintf(expect, sizeof expect, "Download_Enter_05 0 %s\n", real);
    assert_string_equal(data, expect);
    free(data);

    /* Nothing for an action without scripts; unknown states and actions are refused. */
    unlink(f->runlog);
    assert_int_equal(run(f, "ArtifactCommit", "Leave", &err), 0);
    assert_runs(f, "");
    assert_int_equal(run(f, "Cleanup", "Enter", &err), MOLT_EINVAL);
    assert_int_equal(run(f, "ArtifactInstall", "Exit", &err), MOLT_EINVAL);
}

static void test_enter_stops_at_first_failure(void **state)
{
    fixture *f = *state;
    script(f->artifact, "ArtifactCommit_Enter_01", "exit 0", 0755);
    script(f->artifact, "ArtifactCommit_Enter_02", "echo 'cannot commit: disk busy' >&2; exit 3",
           0755);
    script(f->artifact, "ArtifactCommit_Enter_03", "exit 0", 0755);
    molt_err err;
    assert_int_equal(run(f, "ArtifactCommit", "Enter", &err), MOLT_EMODULE);
    assert_non_null(strstr(err.msg, "ArtifactCommit_Enter_02"));
    assert_non_null(strstr(err.msg, "exited with code 3"));
    assert_runs(f, "ArtifactCommit_Enter_01\nArtifactCommit_Enter_02\n");
    /* Its stderr is in the deployment log. */
    char *log = fx_read(f->log, NULL);
    assert_non_null(strstr(log, "State script ArtifactCommit_Enter_02 (stderr): cannot commit: disk busy"));
    free(log);
}

static void test_error_runs_all(void **state)
{
    fixture *f = *state;
    script(f->artifact, "ArtifactInstall_Error_01", "exit 1", 0755);
    script(f->artifact, "ArtifactInstall_Error_02", "exit 0", 0755);
    script(f->artifact, "ArtifactInstall_Error_03", "exit 7", 0755);
    molt_err err;
    assert_int_equal(run(f, "ArtifactInstall", "Error", &err), MOLT_EMODULE);
    assert_runs(f, "ArtifactInstall_Error_01\nArtifactInstall_Error_02\nArtifactInstall_Error_03\n");
    assert_non_null(strstr(err.msg, "2 ArtifactInstall_Error scripts failed"));
    assert_non_null(strstr(err.msg, "ArtifactInstall_Error_01"));
}

static void test_retry_later_then_success(void **state)
{
    fixture *f = *state;
    /* Exit 21 twice, then 0. */
    char body[BUF];
    snprintf(body, sizeof body,
             "n=$(cat '%s/count' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '%s/count'\n"
             "[ $n -ge 3 ] && exit 0\nexit 21", f->dir, f->dir);
    script(f->rootfs, "Sync_Enter_00", body, 0755);
    script(f->rootfs, "Sync_Enter_01", "exit 0", 0755);
    f->opts.retry_timeout = 300;   /* the retries are the case here, not the timeout */
    molt_err err;
    int64_t t0 = fx_now_ms();
    assert_int_equal(run(f, "Sync", "Enter", &err), 0);
    int64_t took = fx_now_ms() - t0;
    assert_runs(f, "Sync_Enter_00\nSync_Enter_00\nSync_Enter_00\nSync_Enter_01\n");
    assert_true(took >= 1900);   /* two waits of retry_interval = 1 s */
}

static void test_retry_later_until_timeout(void **state)
{
    fixture *f = *state;
    f->opts.retry_interval = 1;
    f->opts.retry_timeout = 2;
    script(f->rootfs, "Idle_Enter_00", "exit 21", 0755);
    script(f->rootfs, "Idle_Enter_01", "exit 0", 0755);
    molt_err err;
    int64_t t0 = fx_now_ms();
    assert_int_equal(run(f, "Idle", "Enter", &err), MOLT_EMODULE);
    int64_t took = fx_now_ms() - t0;
    assert_non_null(strstr(err.msg, "retry later"));
    assert_non_null(strstr(err.msg, "Idle_Enter_00"));
    assert_true(took >= 900);
    /* Run at the start and after each interval within the 2 s window (fewer when the machine
     * is busy: at least the first), never more; the next script never. */
    char *data = fx_read(f->runlog, NULL);
    int n = 0;
    for (char *p = data; (p = strstr(p, "Idle_Enter_00")); p++)
        n++;
    assert_true(n >= 1 && n <= 3);
    assert_null(strstr(data, "Idle_Enter_01"));
    free(data);
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    f->opts.timeout = 1;
    script(f->artifact, "ArtifactReboot_Leave_00", "sleep 30", 0755);
    molt_err err;
    /* Not slept out (30 s, then success): killed at the timeout. */
    assert_int_equal(run(f, "ArtifactReboot", "Leave", &err), MOLT_EMODULE);
    assert_non_null(strstr(err.msg, "timed out"));
    assert_non_null(strstr(err.msg, "ArtifactReboot_Leave_00"));
}

static void test_version_file(void **state)
{
    fixture *f = *state;
    script(f->artifact, "ArtifactFailure_Enter_00", "exit 0", 0755);
    molt_err err;
    const char *good[] = { "3", "2", "3\n", " 2 \n" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        fx_write_in(f->artifact, "version", good[i], 0644);
        if (run(f, "ArtifactFailure", "Enter", &err) != 0)
            fail_msg("version '%s': %s", good[i], err.msg);
    }
    const char *bad[] = { "4", "", "3.0", "v3" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fx_write_in(f->artifact, "version", bad[i], 0644);
        if (run(f, "ArtifactFailure", "Enter", &err) >= 0)
            fail_msg("version '%s' accepted", bad[i]);
    }
    /* The rootfs folder's version file counts for rootfs states only. */
    script(f->rootfs, "Idle_Leave_00", "exit 0", 0755);
    assert_int_equal(run(f, "Idle", "Leave", &err), 0);
    fx_write_in(f->rootfs, "version", "1", 0644);
    assert_true(run(f, "Idle", "Leave", &err) < 0);
    assert_non_null(strstr(err.msg, "expected 2 or 3"));
}

static void test_missing_folder(void **state)
{
    fixture *f = *state;
    char gone[BUF];
    snprintf(gone, sizeof gone, "%s/no-such-folder", f->dir);
    f->opts.artifact_dir = gone;
    f->opts.rootfs_dir = NULL;
    molt_err err;
    assert_int_equal(run(f, "ArtifactInstall", "Enter", &err), 0);
    assert_int_equal(run(f, "Idle", "Enter", &err), 0);
}

static void test_stderr_cap(void **state)
{
    fixture *f = *state;
    /* 40 lines of 1000 bytes: only about 10 KiB of it is logged. */
    script(f->artifact, "ArtifactInstall_Leave_00",
           "i=0; while [ $i -lt 40 ]; do head -c 1000 /dev/zero | tr '\\0' x >&2; echo >&2; "
           "i=$((i+1)); done; echo on-stdout", 0755);
    molt_err err;
    assert_int_equal(run(f, "ArtifactInstall", "Leave", &err), 0);
    char *log = fx_read(f->log, NULL);
    assert_non_null(strstr(log, "the rest is not logged"));
    assert_null(strstr(log, "on-stdout"));   /* stdout is not in the deployment log */
    /* Count in the logged stderr lines only: the scratch path elsewhere may hold an 'x'. */
    size_t xs = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        char *text = strstr(line, "(stderr): ");
        for (char *p = text; p && *p; p++)
            xs += *p == 'x';
    }
    assert_true(xs >= 9 * 1024 && xs <= 10 * 1024);
    free(log);
}

static void test_extract(void **state)
{
    fixture *f = *state;
    script(f->artifact, "ArtifactInstall_Enter_99_stale", "exit 1", 0755);
    molt_artifact_info *info = molt_artifact_info_new();
    assert_non_null(info);
    info->name = strdup("release-2");
    info->n_scripts = 2;
    info->scripts = calloc(2, sizeof *info->scripts);
    const char *names[] = { "ArtifactInstall_Enter_01_a", "ArtifactCommit_Leave_00" };
    for (size_t i = 0; i < 2; i++) {
        info->scripts[i].name = strdup(names[i]);
        char body[BUF];
        snprintf(body, sizeof body, "#!/bin/sh\necho %s >> \"$RUNLOG\"\n", names[i]);
        info->scripts[i].data = (unsigned char *)strdup(body);
        info->scripts[i].size = strlen(body);
    }
    molt_err err = { 0 };
    assert_int_equal(molt_scripts_extract(&f->opts, info, &err), 0);

    char path[BUF];
    struct stat st;
    snprintf(path, sizeof path, "%s/ArtifactInstall_Enter_99_stale", f->artifact);
    assert_false(molt_path_exists(path));   /* wiped */
    snprintf(path, sizeof path, "%s/ArtifactInstall_Enter_01_a", f->artifact);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    snprintf(path, sizeof path, "%s/version", f->artifact);
    char *v = fx_read(path, NULL);
    assert_string_equal(v, "3");
    free(v);
    assert_int_equal(run(f, "ArtifactInstall", "Enter", &err), 0);
    assert_int_equal(run(f, "ArtifactCommit", "Leave", &err), 0);
    char *runs = fx_read(f->runlog, NULL);
    assert_string_equal(runs, "ArtifactInstall_Enter_01_a\nArtifactCommit_Leave_00\n");
    free(runs);

    /* Again with no scripts (also when the folder did not exist): only the version file. */
    molt_artifact_info *none = molt_artifact_info_new();
    none->name = strdup("release-3");
    molt_rm_rf(f->artifact, NULL);
    assert_int_equal(molt_scripts_extract(&f->opts, none, &err), 0);
    assert_int_equal(molt_scripts_extract(&f->opts, none, &err), 0);
    snprintf(path, sizeof path, "%s/ArtifactInstall_Enter_01_a", f->artifact);
    assert_false(molt_path_exists(path));
    snprintf(path, sizeof path, "%s/version", f->artifact);
    assert_true(molt_path_exists(path));
    molt_artifact_info_free(none);

    /* A name that is not one path component is refused. */
    free(info->scripts[0].name);
    info->scripts[0].name = strdup("../escape");
    assert_int_equal(molt_scripts_extract(&f->opts, info, &err), MOLT_EFORMAT);
    snprintf(path, sizeof path, "%s/escape", f->dir);
    assert_false(molt_path_exists(path));
    molt_artifact_info_free(info);
}

/* An artifact without scripts leaves a folder that already holds only version "3" as it is
 * (no fsyncs for the common install); anything else in it is replaced. molt_scripts_none says
 * whether a state's action has a script. */
static void test_extract_none_and_scripts_none(void **state)
{
    fixture *f = *state;
    molt_err err = { 0 };
    char path[BUF];
    struct stat before, after;
    molt_artifact_info *none = molt_artifact_info_new();
    assert_non_null(none);
    none->name = strdup("release-3");
    molt_rm_rf(f->artifact, NULL);
    assert_true(molt_scripts_none(&f->opts, "ArtifactCommit", "Leave"));   /* no folder */
    assert_int_equal(molt_scripts_extract(&f->opts, none, &err), 0);
    assert_int_equal(stat(f->artifact, &before), 0);
    assert_int_equal(molt_scripts_extract(&f->opts, none, &err), 0);
    assert_int_equal(stat(f->artifact, &after), 0);
    assert_true(before.st_ino == after.st_ino);   /* kept, not rebuilt */
    assert_true(molt_scripts_none(&f->opts, "ArtifactCommit", "Leave"));

    /* a stale script next to the version file: the folder is rebuilt without it */
    script(f->artifact, "ArtifactCommit_Leave_50_stale", "exit 1", 0755);
    assert_false(molt_scripts_none(&f->opts, "ArtifactCommit", "Leave"));
    assert_true(molt_scripts_none(&f->opts, "ArtifactCommit", "Enter"));
    assert_true(molt_scripts_none(&f->opts, "ArtifactInstall", "Leave"));
    assert_int_equal(molt_scripts_extract(&f->opts, none, &err), 0);
    snprintf(path, sizeof path, "%s/ArtifactCommit_Leave_50_stale", f->artifact);
    assert_false(molt_path_exists(path));
    assert_true(molt_scripts_none(&f->opts, "ArtifactCommit", "Leave"));

    /* an unsupported version is not "nothing to do" (molt_scripts_run reports it), and a
     * folder saying anything but 3 is rebuilt */
    snprintf(path, sizeof path, "%s/version", f->artifact);
    assert_int_equal(molt_write_file_atomic(path, "9", 1, 0600, NULL), 0);
    assert_false(molt_scripts_none(&f->opts, "ArtifactCommit", "Leave"));
    assert_int_equal(stat(f->artifact, &before), 0);
    assert_int_equal(molt_scripts_extract(&f->opts, none, &err), 0);
    assert_int_equal(stat(f->artifact, &after), 0);
    assert_true(before.st_ino != after.st_ino);   /* rebuilt */
    char *v = fx_read(path, NULL);
    assert_string_equal(v, "3");
    free(v);
    assert_false(molt_scripts_none(&f->opts, "NoSuchState", "Leave"));
    molt_artifact_info_free(none);
}

/* The listings of the artifact folder and the reads of its version file, counted. */
static const char *counted_dir;
static char counted_version[BUF];
static unsigned long n_listed, n_version;
DIR *opendir(const char *name)
{
    static DIR *(*real)(const char *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "opendir");
    if (counted_dir && strcmp(name, counted_dir) == 0)
        n_listed++;
    return real(name);
}
static void open_seen(const char *path, int flags)
{
    (void)flags;
    if (counted_dir && strcmp(path, counted_version) == 0)
        n_version++;
}

/* With a listing (the state machine's), the artifact folder is read once and reused by every
 * run and query, until molt_scripts_extract writes it; the rootfs folder is read every time. */
static void test_listing_reused(void **state)
{
    fixture *f = *state;
    molt_scripts_listing listing = {0};
    f->opts.artifact_listing = &listing;
    molt_err err = { 0 };
    molt_artifact_info *info = molt_artifact_info_new(), *none = molt_artifact_info_new();
    info->name = strdup("release-2");
    none->name = strdup("release-3");
    info->n_scripts = 1;
    info->scripts = calloc(1, sizeof *info->scripts);
    info->scripts[0].name = strdup("ArtifactInstall_Enter_01_a");
    const char *body = "#!/bin/sh\necho ArtifactInstall_Enter_01_a >> \"$RUNLOG\"\n";
    info->scripts[0].data = (unsigned char *)strdup(body);
    info->scripts[0].size = strlen(body);
    counted_dir = f->artifact;
    snprintf(counted_version, sizeof counted_version, "%s/version", f->artifact);
    assert_int_equal(molt_scripts_extract(&f->opts, info, &err), 0);
    n_listed = n_version = 0;
    assert_int_equal(run(f, "ArtifactInstall", "Enter", &err), 0);
    assert_int_equal(n_listed, 1);
    assert_int_equal(n_version, 1);
    assert_int_equal(run(f, "ArtifactInstall", "Leave", &err), 0);
    assert_true(molt_scripts_none(&f->opts, "ArtifactCommit", "Leave"));
    assert_false(molt_scripts_none(&f->opts, "ArtifactInstall", "Enter"));
    assert_int_equal(run(f, "ArtifactCommit", "Enter", &err), 0);
    assert_int_equal(n_listed, 1);
    assert_int_equal(n_version, 1);
    assert_runs(f, "ArtifactInstall_Enter_01_a\n");
    /* The rootfs folder is the system's: read at every run. */
    assert_int_equal(run(f, "Download", "Enter", &err), 0);
    script(f->rootfs, "Download_Enter_01", "true", 0755);
    assert_int_equal(run(f, "Download", "Enter", &err), 0);
    assert_runs(f, "ArtifactInstall_Enter_01_a\nDownload_Enter_01\n");
    /* An artifact without scripts: the folder is rebuilt, and read again at the next run. */
    assert_int_equal(molt_scripts_extract(&f->opts, none, &err), 0);
    assert_false(listing.read);
    n_listed = n_version = 0;
    assert_true(molt_scripts_none(&f->opts, "ArtifactInstall", "Enter"));
    assert_int_equal(run(f, "ArtifactInstall", "Enter", &err), 0);
    assert_int_equal(n_listed, 1);
    assert_int_equal(n_version, 1);
    /* Kept as it was by the next one: what it read there is the listing, nothing read again. */
    assert_int_equal(molt_scripts_extract(&f->opts, none, &err), 0);
    assert_true(listing.read);
    n_listed = n_version = 0;
    assert_true(molt_scripts_none(&f->opts, "ArtifactCommit", "Leave"));
    assert_int_equal(run(f, "ArtifactCommit", "Enter", &err), 0);
    assert_int_equal(n_listed + n_version, 0);
    /* A version that cannot be run is the listing's error, at every run. */
    molt_scripts_listing_clear(&listing);
    assert_int_equal(molt_write_file_atomic(counted_version, "9", 1, 0600, NULL), 0);
    assert_int_equal(run(f, "ArtifactCommit", "Enter", &err), MOLT_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "says '9'"));
    molt_err_clear(&err);
    assert_int_equal(run(f, "ArtifactCommit", "Enter", &err), MOLT_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "says '9'"));
    assert_false(molt_scripts_none(&f->opts, "ArtifactCommit", "Enter"));
    counted_dir = NULL;
    molt_scripts_listing_clear(&listing);
    f->opts.artifact_listing = NULL;
    molt_artifact_info_free(info);
    molt_artifact_info_free(none);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_selection_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enter_stops_at_first_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_runs_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_later_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_later_until_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stderr_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_none_and_scripts_none, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
