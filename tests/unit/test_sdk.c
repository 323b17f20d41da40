/* SPDX-License-Identifier: Apache-2.0 */
/* libmolt-sdk helpers, called as a module calls them (the shared library, public headers only):
 * atomic replace, the root-confined path join (.., absolute, symlinks out of the root), file
 * copies with progress, JSON Pointer accessors. molt_sdk_copy_payload runs against the real host
 * in test_native_host (the copy module stages every payload with it). */
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <molt/sdk.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define BUF 1024

static char root[PATH_MAX];   /* scratch folder, realpath */

static int setup(void **state)
{
    (void)state;
    fx_scratch(root, sizeof root, "sdk-test");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_scratch_remove(root);
    return 0;
}

/* Entries of root (not . and ..): no temporary file may be left behind. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_version(void **state)
{
    assert_string_equal(molt_sdk_version(), "1.2");
    assert_int_equal(MOLT_SDK_VERSION_MAJOR, MOLT_MODULE_ABI_MAJOR);
}

static void test_write_atomic(void **state)
{
    char path[BUF];
    size_t len;
    struct molt_sdk_error err = {0};
    snprintf(path, sizeof path, "%s/f.txt", root);
    assert_int_equal(molt_sdk_write_file_atomic(path, "one", 3, 0600, &err), 0);
    assert_int_equal(molt_sdk_write_file_atomic(path, "second", 6, 0640, &err), 0);
    char *data = fx_read(path, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(data, "second", 6);
    free(data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(count_entries(root), 1);

    /* a folder that does not exist: the error names the path, nothing is created */
    snprintf(path, sizeof path, "%s/no/such/f.txt", root);
    assert_int_equal(molt_sdk_write_file_atomic(path, "x", 1, 0644, &err), MOLT_ENOTFOUND);
    assert_int_equal(err.code, MOLT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "cannot open the folder of "));
    assert_non_null(strstr(err.msg, "/no/such/f.txt: No such file or directory"));

    /* streamed, then aborted: the old content stays, no temporary remains */
    int fd;
    char *tmp;
    snprintf(path, sizeof path, "%s/f.txt", root);
    assert_int_equal(molt_sdk_atomic_open(path, 0644, &fd, &tmp, &err), 0);
    assert_int_equal(write(fd, "partial", 7), 7);
    molt_sdk_atomic_abort(fd, tmp);
    data = fx_read(path, &len);
    assert_string_equal(data, "second");
    free(data);
    assert_int_equal(count_entries(root), 1);
}

static void join_ok(const char *rel, const char *want_suffix)
{
    char *path = NULL, want[BUF];
    struct molt_sdk_error err = {0};
    if (molt_sdk_path_join(root, rel, &path, &err) != 0)
        fail_msg("join %s: %s", rel, err.msg);
    snprintf(want, sizeof want, "%s/%s", root, want_suffix);
    assert_string_equal(path, want);
    free(path);
}

/* Refused with the message: path "<rel>"<middle><root>. */
static void join_refused(const char *rel, const char *middle)
{
    char *path = NULL, want[2 * BUF];
    struct molt_sdk_error err = {0};
    assert_int_equal(molt_sdk_path_join(root, rel, &path, &err), MOLT_EINVAL);
    assert_null(path);
    snprintf(want, sizeof want, "path \"%s\"%s%s", rel, middle, root);
    assert_string_equal(err.msg, want);
}

static void test_path_join(void **state)
{
    fx_sh("mkdir -p '%s/a/b' && ln -s b '%s/a/in'", root, root);
    fx_sh("ln -s /etc '%s/out' && ln -s ../../ '%s/a/up'", root, root);
    fx_sh("ln -s nowhere '%s/dangling' && ln -s ../../a '%s/a/b/loop'", root, root);
    join_ok("x", "x");
    join_ok("a/b/new.txt", "a/b/new.txt");
    join_ok("./a//b/./c", "a/b/c");
    join_ok("a/in/file", "a/in/file");           /* a symlink that stays inside */
    join_ok("a/b/loop/b", "a/b/loop/b");
    join_ok("a/missing/x/y", "a/missing/x/y");   /* below a missing folder nothing can escape */
    join_refused("/etc/passwd", " is absolute: it must be relative to ");
    join_refused("../x", ": component \"..\" could leave ");
    join_refused("a/../../x", ": component \"..\" could leave ");
    join_refused("", " names no file below ");
    join_refused("./.", " names no file below ");
    char *path = NULL, want[2 * BUF];
    struct molt_sdk_error err = {0};
    assert_int_equal(molt_sdk_path_join(root, "out/passwd", &path, &err), MOLT_EINVAL);
    snprintf(want, sizeof want, "path \"out/passwd\": %s/out is a symlink to /etc, outside %s",
             root, root);
    assert_string_equal(err.msg, want);
    assert_int_equal(molt_sdk_path_join(root, "a/up/x", &path, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "/a/up is a symlink to "));
    assert_int_equal(molt_sdk_path_join(root, "dangling", &path, &err), MOLT_EINVAL);
    snprintf(want, sizeof want, "path \"dangling\": %s/dangling is a symlink pointing nowhere",
             root);
    assert_string_equal(err.msg, want);
    assert_null(path);
}

typedef struct progress_log {
    int calls;
    uint64_t last_done, total;
} progress_log;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    progress_log *p = ctx;
    assert_true(done > p->last_done);
    p->calls++;
    p->last_done = done;
    p->total = total;
}

static void test_copy_file(void **state)
{
    char src[BUF], dst[BUF];
    struct molt_sdk_error err = {0};
    snprintf(src, sizeof src, "%s/src.bin", root);
    snprintf(dst, sizeof dst, "%s/dst.bin", root);
    fx_sh("head -c 300000 /dev/urandom >'%s' && printf old >'%s'", src, dst);
    progress_log p = {0};
    assert_int_equal(molt_sdk_copy_file(src, dst, 0600, on_progress, &p, &err), 0);
    size_t la, lb;
    char *a = fx_read(src, &la), *b = fx_read(dst, &lb);
    assert_int_equal(la, 300000);
    assert_int_equal(lb, la);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    assert_true(p.calls >= 3);   /* 128 KiB blocks */
    assert_int_equal(p.last_done, 300000);
    assert_int_equal(p.total, 300000);
    assert_int_equal(count_entries(root), 2);
    snprintf(src, sizeof src, "%s/none", root);
    assert_int_equal(molt_sdk_copy_file(src, dst, 0600, NULL, NULL, &err), MOLT_EIO);
    char want[2 * BUF];
    snprintf(want, sizeof want, "cannot open %s: No such file or directory", src);
    assert_string_equal(err.msg, want);
}

static const char *doc = "{\"dest\": \"/data\", \"n\": 42, \"on\": true, \"a/b\": {\"x~y\": 7},"
                         " \"list\": [\"zero\", {\"k\": \"v\"}], \"f\": 1.5}";

static void test_json(void **state)
{
    char *s = NULL;
    int64_t n = 0;
    int b = 0;
    size_t count = 0;
    struct molt_sdk_error err = {0};
    assert_int_equal(molt_sdk_json_string(doc, "/dest", &s, &err), 0);
    assert_string_equal(s, "/data");
    free(s);
    assert_int_equal(molt_sdk_json_string(doc, "/list/1/k", &s, &err), 0);
    assert_string_equal(s, "v");
    free(s);
    assert_int_equal(molt_sdk_json_int(doc, "/n", &n, &err), 0);
    assert_int_equal(n, 42);
    assert_int_equal(molt_sdk_json_int(doc, "/a~1b/x~0y", &n, &err), 0);
    assert_int_equal(n, 7);
    assert_int_equal(molt_sdk_json_bool(doc, "/on", &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(molt_sdk_json_count(doc, "/list", &count, &err), 0);
    assert_int_equal(count, 2);
    assert_int_equal(molt_sdk_json_count(doc, "", &count, &err), 0);
    assert_int_equal(count, 6);
    assert_int_equal(molt_sdk_json_text(doc, "/list/1", &s, &err), 0);
    assert_string_equal(s, "{\"k\":\"v\"}");
    free(s);

    assert_int_equal(molt_sdk_json_string(doc, "/missing", &s, &err), MOLT_ENOTFOUND);
    assert_string_equal(err.msg, "JSON pointer \"/missing\": nothing at \"missing\"");
    assert_int_equal(molt_sdk_json_string(doc, "/list/2", &s, &err), MOLT_ENOTFOUND);
    assert_int_equal(molt_sdk_json_string(doc, "/list/01", &s, &err), MOLT_ENOTFOUND);
    assert_int_equal(molt_sdk_json_int(doc, "/f", &n, &err), MOLT_EFORMAT);
    assert_string_equal(err.msg, "JSON pointer \"/f\": not an integer");
    assert_int_equal(molt_sdk_json_string(doc, "/n", &s, &err), MOLT_EFORMAT);
    assert_int_equal(molt_sdk_json_string(doc, "dest", &s, &err), MOLT_EINVAL);
    assert_int_equal(molt_sdk_json_string(doc, "/a~2b", &s, &err), MOLT_EINVAL);
    assert_int_equal(molt_sdk_json_string("{\"a\": ", "/a", &s, &err), MOLT_EFORMAT);
    assert_int_equal(molt_sdk_json_string("{\"a\": 1, \"a\": 2}", "/a", &s, &err), MOLT_EFORMAT);
    /* the host gives "null" for an absent meta-data */
    assert_int_equal(molt_sdk_json_string("null", "/dest", &s, &err), MOLT_ENOTFOUND);
    assert_int_equal(molt_sdk_json_count("null", "", &count, &err), MOLT_ENOTFOUND);
    assert_int_equal(molt_sdk_json_string(doc, "/dest", &s, NULL), 0);   /* NULL err is fine */
    free(s);
}

/* molt_sdk_err_errno: the message plus ": <strerror>", the code from molt's one errno mapping
 * (EDQUOT and ENOSPC: MOLT_ESPACE, ENOMEM: MOLT_ENOMEM, others MOLT_EIO); NULL err still gives
 * the code. molt_sdk_write_all into /dev/full: MOLT_ESPACE, "cannot write <what>: ...". */
static void test_err_errno(void **state)
{
    (void)state;
    struct molt_sdk_error err = {0};
    char want[BUF];
    assert_int_equal(molt_sdk_err_errno(&err, EDQUOT, "writing %s", "f"), MOLT_ESPACE);
    assert_int_equal(err.code, MOLT_ESPACE);
    snprintf(want, sizeof want, "writing f: %s", strerror(EDQUOT));
    assert_string_equal(err.msg, want);
    assert_int_equal(molt_sdk_err_errno(&err, ENOSPC, "x"), MOLT_ESPACE);
    assert_int_equal(molt_sdk_err_errno(&err, ENOMEM, "x"), MOLT_ENOMEM);
    assert_int_equal(molt_sdk_err_errno(&err, EACCES, "open %s", "/a"), MOLT_EIO);
    assert_string_equal(err.msg, "open /a: Permission denied");
    assert_int_equal(molt_sdk_err_errno(NULL, EDQUOT, "x"), MOLT_ESPACE);

    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(molt_sdk_write_all(fd, "abc", 3, "the copy", &err), MOLT_ESPACE);
    close(fd);
    assert_string_equal(err.msg, "cannot write the copy: No space left on device");
}

/* The SDK's helpers are the core's: the atomic write gives exactly the mode asked under any
 * umask, and a core message longer than the SDK's 512 bytes arrives cut, terminated. */
static void test_shared_helpers(void **state)
{
    (void)state;
    struct molt_sdk_error err = {0};
    char path[BUF];
    struct stat st;
    snprintf(path, sizeof path, "%s/m.txt", root);
    mode_t old = umask(0277);
    int r = molt_sdk_write_file_atomic(path, "m", 1, 0664, &err);
    umask(old);
    assert_int_equal(r, 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0664);

    char longer[3 * MOLT_SDK_ERROR_MSG_MAX];
    int n = snprintf(longer, sizeof longer, "%s/", root);
    memset(longer + n, 'd', sizeof longer - (size_t)n - 8);
    for (size_t i = (size_t)n + 100; i < sizeof longer - 8; i += 100)
        longer[i] = '/';   /* names of 99 bytes: the missing folder, not a too long name */
    strcpy(longer + sizeof longer - 8, "/f.txt");
    memset(&err, 'x', sizeof err);
    assert_int_equal(molt_sdk_write_file_atomic(longer, "x", 1, 0644, &err), MOLT_ENOTFOUND);
    assert_int_equal(err.code, MOLT_ENOTFOUND);
    assert_int_equal(strlen(err.msg), MOLT_SDK_ERROR_MSG_MAX - 1);
    assert_int_equal(strncmp(err.msg, "cannot open the folder of ", 26), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_file, setup, teardown),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_err_errno),
        cmocka_unit_test_setup_teardown(test_shared_helpers, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
