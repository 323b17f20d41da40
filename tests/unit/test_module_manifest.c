/* SPDX-License-Identifier: Apache-2.0 */
/* The installed-module manifest reader (host/module_manifest.c) that `molt modules` uses: the
 * file beside the module, its capabilities, errors with file:line, a missing manifest. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/module_manifest.h"
#include "util/fs.h"

static char g_dir[64];

static int setup(void **state)
{
    (void)state;
    fx_scratch(g_dir, sizeof g_dir, "manifest-test");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_scratch_remove(g_dir);
    return 0;
}

static void put(const char *name, const char *text)
{
    fx_write_in(g_dir, name, text, 0644);
}

static char *at(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return path;
}

static void test_native_beside(void **state)
{
    (void)state;
    put("file.yaml", "name: file\nversion: 1.2.0\ndescription: Files and trees\n"
                     "capabilities:\n  streaming: true\n  rollback: true\n  reboot: false\n"
                     "payload_types: [single-file]\n");
    molt_module_manifest *m = NULL;
    molt_err err = {0};
    assert_int_equal(molt_module_manifest_load(at("file.so"), &m, &err), 0);
    assert_string_equal(m->version, "1.2.0");
    assert_string_equal(m->description, "Files and trees");
    assert_int_equal(m->streaming, 1);
    assert_int_equal(m->rollback, 1);
    assert_int_equal(m->reboot, 0);
    molt_module_manifest_free(m);
}

static void test_exec_beside_partial(void **state)
{
    (void)state;
    put("my-type.yaml", "version: \"2\"\ncapabilities: {rollback: false}\n");
    molt_module_manifest *m = NULL;
    assert_int_equal(molt_module_manifest_load(at("my-type"), &m, NULL), 0);
    assert_string_equal(m->version, "2");
    assert_null(m->description);
    assert_int_equal(m->streaming, -1);
    assert_int_equal(m->rollback, 0);
    assert_int_equal(m->reboot, -1);
    molt_module_manifest_free(m);
}

static void test_missing(void **state)
{
    (void)state;
    molt_module_manifest *m = (molt_module_manifest *)0x1;
    molt_err err = {0};
    assert_int_equal(molt_module_manifest_load(at("none.so"), &m, &err), MOLT_ENOTFOUND);
    assert_ptr_equal(m, (molt_module_manifest *)0x1);
}

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    molt_module_manifest *m = NULL;
    molt_err err = {0};
    char want[512];
    put("bad.yaml", "version: 1\ncapabilities:\n  streaming: yes\n");
    assert_int_equal(molt_module_manifest_load(at("bad.so"), &m, &err), MOLT_EFORMAT);
    snprintf(want, sizeof want, "%s:3: capabilities.streaming: expected true or false", at("bad.yaml"));
    assert_string_equal(err.msg, want);
    put("list.yaml", "- a\n- b\n");
    assert_int_equal(molt_module_manifest_read(at("list.yaml"), &m, &err), MOLT_EFORMAT);
    snprintf(want, sizeof want, "%s:1: expected a mapping", at("list.yaml"));
    assert_string_equal(err.msg, want);
    put("ver.yaml", "name: x\nversion: [1]\n");
    assert_int_equal(molt_module_manifest_read(at("ver.yaml"), &m, &err), MOLT_EFORMAT);
    snprintf(want, sizeof want, "%s:2: version: expected a string", at("ver.yaml"));
    assert_string_equal(err.msg, want);
    put("syntax.yaml", "a: b: c\n");
    assert_int_equal(molt_module_manifest_read(at("syntax.yaml"), &m, &err), MOLT_EFORMAT);
    assert_non_null(strstr(err.msg, "syntax.yaml:1: "));
    assert_null(m);
}

static void test_size_limit(void **state)
{
    (void)state;
    size_t n = 64 * 1024 + 10;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '#', n);
    big[n] = '\0';
    put("big.yaml", big);
    free(big);
    molt_module_manifest *m = NULL;
    molt_err err = {0};
    assert_int_equal(molt_module_manifest_read(at("big.yaml"), &m, &err), MOLT_ELIMIT);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_beside),
        cmocka_unit_test(test_exec_beside_partial),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_size_limit),
    };
    return fx_run_group_tests(argc, argv, tests, setup, teardown);
}
