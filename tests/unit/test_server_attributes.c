/* SPDX-License-Identifier: Apache-2.0 */
/* Identity and inventory attributes (docs/reference §3.1, §3.5): key=value parsing, the identity's
 * exact encoding, inventory scripts merged in name order, the PUT body. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "server/attributes.h"
#include "util/fs.h"

typedef struct fixture {
    char dir[64];
} fixture;

static int setup(void **state)
{
    fx_fixture_new(state, fixture, "attr-test");
    return 0;
}

static int teardown(void **state)
{
    return fx_fixture_free(state);
}

static void write_script(const char *dir, const char *name, const char *body, char *path,
                         size_t size)
{
    char text[1024];
    fx_path(path, size, "%s/%s", dir, name);
    fx_path(text, sizeof text, "#!/bin/sh\n%s", body);
    fx_write_text(path, text, 0755);
}

static void test_parse(void **state)
{
    (void)state;
    molt_err err = {0};
    json_t *a = json_object();
    const char text[] = "mac=aa\n\nserial=x=y\r\nmac=bb\nmac=aa\nempty=\n";
    assert_int_equal(molt_attr_parse(a, text, sizeof text - 1, "t", &err), 0);
    char *s = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    /* split at the first '=', CR dropped, repeated key -> list, duplicates once */
    assert_string_equal(s, "{\"empty\":[\"\"],\"mac\":[\"aa\",\"bb\"],\"serial\":[\"x=y\"]}");
    free(s);
    assert_int_equal(molt_attr_parse(a, "novalue\n", 8, "script-x", &err), MOLT_EFORMAT);
    assert_non_null(strstr(err.msg, "script-x: line 1"));
    assert_int_equal(molt_attr_parse(a, "=v\n", 3, "s", &err), MOLT_EFORMAT);
    json_decref(a);
}

static void test_identity_encoding(void **state)
{
    fixture *f = *state;
    char path[128], *id = NULL;
    molt_err err = {0};
    write_script(f->dir, "id", "echo serial=SN1\necho mac=52:54:00:12:34:56\n"
                               "echo mac=52:54:00:ab:cd:ef\necho a_b='x \"q\"'\n",
                 path, sizeof path);
    const char *scripts[] = {"/nonexistent/identity", path};
    assert_int_equal(molt_identity_json(scripts, 2, &id, &err), 0);
    /* sorted keys, one value a string, several an array, no spaces (docs/reference §3.1) */
    assert_string_equal(id, "{\"a_b\":\"x \\\"q\\\"\",\"mac\":[\"52:54:00:12:34:56\","
                            "\"52:54:00:ab:cd:ef\"],\"serial\":\"SN1\"}");
    free(id);
    const char *none[] = {"/nonexistent/a"};
    assert_int_equal(molt_identity_json(none, 1, &id, &err), MOLT_ENOTFOUND);
    write_script(f->dir, "fails", "echo mac=1\nexit 3\n", path, sizeof path);
    const char *failing[] = {path};
    assert_int_equal(molt_identity_json(failing, 1, &id, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, "exited with code 3"));
    write_script(f->dir, "silent", "true\n", path, sizeof path);
    const char *silent[] = {path};
    assert_int_equal(molt_identity_json(silent, 1, &id, &err), MOLT_EFORMAT);
}

static void test_inventory(void **state)
{
    fixture *f = *state;
    char d1[96], d2[96], path[160];
    molt_err err = {0};
    snprintf(d1, sizeof d1, "%s/mender", f->dir);
    snprintf(d2, sizeof d2, "%s/molt", f->dir);
    assert_int_equal(mkdir(d1, 0755), 0);
    assert_int_equal(mkdir(d2, 0755), 0);
    write_script(d1, "mender-inventory-b", "echo os=debian\necho ip=1\n", path, sizeof path);
    write_script(d1, "mender-inventory-a", "echo ip=0\n", path, sizeof path);
    write_script(d1, "other-script", "echo nope=1\n", path, sizeof path);
    write_script(d1, "mender-inventory-broken", "echo os=hidden\necho bad line\n", path, sizeof path);
    write_script(d2, "molt-inventory-x", "echo ip=2\necho hw=pi\n", path, sizeof path);
    write_script(d2, "molt-inventory-noexec", "echo hidden=1\n", path, sizeof path);
    chmod(path, 0644);
    /* strict modes: a world-writable inventory script is not run */
    write_script(d2, "molt-inventory-open", "echo hidden=2\n", path, sizeof path);
    chmod(path, 0777);
    const char *dirs[] = {d1, "/nonexistent/inv", d2};
    json_t *attrs = NULL;
    assert_int_equal(molt_inventory_collect(dirs, 3, &attrs, &err), 0);
    json_t *body = molt_inventory_body(attrs);
    char *s = json_dumps(body, JSON_COMPACT);
    /* sorted by name; ip merged in script order (a, b, then molt's); broken/other skipped */
    assert_string_equal(s, "[{\"name\":\"hw\",\"value\":\"pi\"},{\"name\":\"ip\",\"value\":"
                           "[\"0\",\"1\",\"2\"]},{\"name\":\"os\",\"value\":\"debian\"}]");
    free(s);
    json_decref(body);
    json_decref(attrs);
}

static void test_limits(void **state)
{
    (void)state;
    molt_err err = {0};
    json_t *a = json_object();
    char line[64];
    int r = 0;
    for (int i = 0; i <= MOLT_ATTR_VALUES_MAX && r == 0; i++) {
        int n = snprintf(line, sizeof line, "k=%d\n", i);
        r = molt_attr_parse(a, line, (size_t)n, "t", &err);
    }
    assert_int_equal(r, MOLT_ELIMIT);
    json_decref(a);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test_setup_teardown(test_identity_encoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inventory, setup, teardown),
        cmocka_unit_test(test_limits),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
