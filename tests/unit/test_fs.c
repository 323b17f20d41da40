/* SPDX-License-Identifier: Apache-2.0 */
/* core/util/fs: molt_dir_names, the folder listing the module registry, the state scripts and
 * the inventory scripts share (sorted, filtered, bounded, with errors naming the folder). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util/fs.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/molt-fs-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    const char *files[] = {"b", "a", ".hidden", "c-sub", "a2"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = molt_path_join(dir, files[i]);
        assert_int_equal(molt_write_file_atomic(p, "x", 1, 0644, NULL), 0);
        free(p);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return molt_rm_rf(dir, NULL);
}

static bool not_hidden(void *ctx, int dir_fd, const char *name)
{
    (void)dir_fd;
    ++*(int *)ctx;
    return name[0] != '.';
}

/* Every name but . and .., sorted; the filter sees each entry and drops what it refuses. */
static void test_sorted_and_filtered(void **state)
{
    (void)state;
    char **names = NULL;
    size_t n = 0;
    molt_err err = {0};
    assert_int_equal(molt_dir_names(dir, "test folder", NULL, NULL, 100, &names, &n, &err), 0);
    assert_int_equal(n, 5);
    const char *all[] = {".hidden", "a", "a2", "b", "c-sub"};
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], all[i]);
    molt_names_free(names, n);

    int seen = 0;
    assert_int_equal(molt_dir_names(dir, "test folder", not_hidden, &seen, 100, &names, &n, &err),
                     0);
    assert_int_equal(seen, 5);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[3], "c-sub");
    molt_names_free(names, n);
}

/* A missing folder, a file, more names than allowed: each its code and the folder named. */
static void test_errors(void **state)
{
    (void)state;
    char **names = NULL;
    size_t n = 0;
    molt_err err = {0};
    char missing[128], file[128], want[256];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    snprintf(file, sizeof file, "%s/a", dir);
    assert_int_equal(molt_dir_names(missing, "test folder", NULL, NULL, 100, &names, &n, &err),
                     MOLT_ENOTFOUND);
    snprintf(want, sizeof want, "cannot read test folder %s", missing);
    assert_non_null(strstr(err.msg, want));
    assert_int_equal(molt_dir_names(file, "test folder", NULL, NULL, 100, &names, &n, &err),
                     MOLT_ENOTFOUND);
    assert_int_equal(molt_dir_names(dir, "test folder", NULL, NULL, 3, &names, &n, &err),
                     MOLT_ELIMIT);
    snprintf(want, sizeof want, "test folder %s: more than 3 entries", dir);
    assert_string_equal(err.msg, want);
    /* an empty folder: no names, nothing to free */
    char empty[128];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    assert_int_equal(molt_mkdir_p(empty, 0755, NULL), 0);
    names = (char **)&n;
    assert_int_equal(molt_dir_names(empty, "test folder", NULL, NULL, 3, &names, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sorted_and_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
