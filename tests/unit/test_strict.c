/* SPDX-License-Identifier: Apache-2.0 */
/* core/util/strict: sshd-like strict modes for the files that decide what molt runs as root. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/strict.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    fx_scratch(dir, sizeof dir, "strict-test");
    unsetenv(MOLT_STRICT_OWNER_ENV);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv(MOLT_STRICT_OWNER_ENV);
    fx_scratch_remove(dir);
    return 0;
}

static void make(const char *rel, mode_t mode, char *out, size_t cap)
{
    fx_path(out, cap, "%s/%s", dir, rel);
    fx_write_text(out, "x", mode);
}

static void test_file_modes(void **state)
{
    (void)state;
    char f[128], want[400];
    molt_err err = {0};
    make("ok", 0755, f, sizeof f);
    assert_int_equal(molt_strict_check(f, "update module", &err), 0);
    make("gw", 0664, f, sizeof f);
    assert_int_equal(molt_strict_check(f, "configuration", &err), MOLT_ECONFIG);
    snprintf(want, sizeof want, "configuration %s is group-writable (mode 0664, owner uid %u): "
             "refused, another user could change what molt runs as root", f, (unsigned)geteuid());
    assert_string_equal(err.msg, want);
    make("ww", 0777, f, sizeof f);
    assert_int_equal(molt_strict_check(f, "update module", &err), MOLT_ECONFIG);
    assert_non_null(strstr(err.msg, "is world-writable (mode 0777"));
}

/* A world-writable folder: refused unless sticky; a symlink into it: refused by the resolved
 * path; the missing file: MOLT_ENOTFOUND. */
static void test_folders_and_links(void **state)
{
    (void)state;
    char sub[96], f[128], link[128], want[400];
    molt_err err = {0};
    snprintf(sub, sizeof sub, "%s/open", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    make("open/s", 0755, f, sizeof f);
    assert_int_equal(chmod(sub, 0777), 0);
    assert_int_equal(molt_strict_check(f, "state script", &err), MOLT_ECONFIG);
    snprintf(want, sizeof want, "state script %s: its folder %s is world-writable and not sticky "
             "(mode 0777, owner uid %u)", f, sub, (unsigned)geteuid());
    assert_non_null(strstr(err.msg, want));
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink(f, link), 0);
    assert_int_equal(molt_strict_check(link, "state script", &err), MOLT_ECONFIG);
    assert_non_null(strstr(err.msg, "is world-writable and not sticky"));
    /* a symlinked folder on the way (the file itself no link) leads into it too; written with
     * "." or "..", the path is resolved as well */
    char dlink[128], via[160];
    snprintf(dlink, sizeof dlink, "%s/dlink", dir);
    assert_int_equal(symlink(sub, dlink), 0);
    snprintf(via, sizeof via, "%s/s", dlink);
    assert_int_equal(molt_strict_check(via, "state script", &err), MOLT_ECONFIG);
    assert_non_null(strstr(err.msg, "is world-writable and not sticky"));
    snprintf(via, sizeof via, "%s/./open/../open/s", dir);
    assert_int_equal(molt_strict_check(via, "state script", &err), MOLT_ECONFIG);
    assert_int_equal(chmod(sub, 01777), 0);
    assert_int_equal(molt_strict_check(f, "state script", &err), 0);
    assert_int_equal(molt_strict_check(link, "state script", &err), 0);
    snprintf(via, sizeof via, "%s/s", dlink);
    assert_int_equal(molt_strict_check(via, "state script", &err), 0);
    assert_int_equal(chmod(sub, 0775), 0);
    assert_int_equal(molt_strict_check(f, "state script", &err), MOLT_ECONFIG);
    assert_non_null(strstr(err.msg, "is group-writable and not sticky (mode 0775"));
    snprintf(f, sizeof f, "%s/none", dir);
    assert_int_equal(molt_strict_check(f, "configuration", &err), MOLT_ENOTFOUND);
}

/* Another user's file: refused; the test setting accepts that uid, never a writable file. */
static void test_owner_and_test_setting(void **state)
{
    (void)state;
    char f[128];
    molt_err err = {0};
    if (geteuid() != 0)
        skip();   /* chown to another user needs root */
    make("theirs", 0755, f, sizeof f);
    assert_int_equal(chown(f, 4242, 4242), 0);
    assert_int_equal(molt_strict_check(f, "update module", &err), MOLT_ECONFIG);
    assert_non_null(strstr(err.msg, "is owned by another user (mode 0755, owner uid 4242)"));
    setenv(MOLT_STRICT_OWNER_ENV, "4242", 1);
    assert_int_equal(molt_strict_check(f, "update module", &err), 0);
    assert_int_equal(chmod(f, 0775), 0);
    assert_int_equal(molt_strict_check(f, "update module", &err), MOLT_ECONFIG);
    assert_non_null(strstr(err.msg, "group-writable"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folders_and_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_and_test_setting, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
