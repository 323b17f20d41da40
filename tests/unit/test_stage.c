/* SPDX-License-Identifier: Apache-2.0 */
/* core/host/stage: the payload files staged for file-taking modules (exec files/, native
 * files_dir()) are bounded by what the artifact declared: the free space is checked against the
 * declared size before writing, and more bytes than declared stop the write. The over-long case
 * cannot come through the artifact reader (it ends a file at its tar header's size), so a fake
 * block source plays the stream here. */
#include "fixture.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "host/stage.h"
#include "util/fs.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    fx_scratch(dir, sizeof dir, "stage-test");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_scratch_remove(dir);
    return 0;
}

/* n blocks of 10 bytes, then the end, or fail_code instead of the end when it is set. */
typedef struct src {
    int n, given, fail_code;
    char block[10];
} src;

static ssize_t blocks(void *ctx, const void **ret_buf, molt_err *err)
{
    src *s = ctx;
    if (s->given == s->n)
        return s->fail_code ? molt_err_set(err, s->fail_code, "data/0000/x: checksum mismatch")
                            : 0;
    s->given++;
    memset(s->block, 'a' + s->given, sizeof s->block);
    *ret_buf = s->block;
    return (ssize_t)sizeof s->block;
}

static off_t size_of(const char *name)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_declared_size_written(void **state)
{
    (void)state;
    src s = {.n = 3};
    molt_err err = {0};
    assert_int_equal(molt_stage_file(dir, "ok.bin", 30, blocks, &s, &err), 0);
    assert_int_equal(size_of("ok.bin"), 30);
}

/* 77 GiB declared (more than this file system has free): refused before the first read, with
 * the size and the free space in the message, and no file created. */
static void test_declared_huge_refused_before_writing(void **state)
{
    (void)state;
    src s = {.n = 3};
    molt_err err = {0};
    struct statvfs vfs;
    assert_int_equal(statvfs(dir, &vfs), 0);
    int64_t huge = (int64_t)77 << 30;
    if ((uint64_t)vfs.f_bavail * vfs.f_frsize >= (uint64_t)huge)
        huge = (int64_t)((uint64_t)vfs.f_bavail * vfs.f_frsize + 1);
    assert_int_equal(molt_stage_file(dir, "big.bin", huge, blocks, &s, &err), MOLT_ESPACE);
    char want[200];
    snprintf(want, sizeof want, "payload file big.bin declares %" PRId64 " bytes, but %s has ",
             huge, dir);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, " bytes free: refused before writing"));
    assert_int_equal(s.given, 0);
    assert_int_equal(size_of("big.bin"), -1);
}

/* 25 bytes declared, 30 arrive: refused at the block that goes past, the file removed. */
static void test_overlong_stream_refused(void **state)
{
    (void)state;
    src s = {.n = 3};
    molt_err err = {0};
    assert_int_equal(molt_stage_file(dir, "long.bin", 25, blocks, &s, &err), MOLT_EFORMAT);
    assert_string_equal(err.msg, "payload file long.bin: more than the 25 bytes it declares "
                                 "arrived: refused");
    assert_int_equal(s.given, 3);
    assert_int_equal(size_of("long.bin"), -1);
}

/* The stream's own error (a checksum mismatch at the end): its code and message, file removed. */
static void test_read_error_removes_the_file(void **state)
{
    (void)state;
    src s = {.n = 2, .fail_code = MOLT_ECHECKSUM};
    molt_err err = {0};
    assert_int_equal(molt_stage_file(dir, "bad.bin", 30, blocks, &s, &err), MOLT_ECHECKSUM);
    assert_string_equal(err.msg, "data/0000/x: checksum mismatch");
    assert_int_equal(size_of("bad.bin"), -1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_declared_size_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declared_huge_refused_before_writing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overlong_stream_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_error_removes_the_file, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
