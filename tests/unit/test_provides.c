/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for core/state/provides.c: depends matching and the provides update with clears
 * globs (docs/reference §2.10), and the glob matcher's edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "fixture.h"

#include "state/provides.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return j;
}

/* Assert that doc equals the JSON in text (key order ignored). */
static void assert_json(const json_t *doc, const char *text)
{
    json_t *want = J(text);
    if (!json_equal(doc, want)) {
        char *got = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        char *exp = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got %s, want %s", got, exp);
    }
    json_decref(want);
}

/* ---- glob ---- */

static void test_glob(void **state)
{
    (void)state;
    assert_true(molt_provides_glob_match("*", ""));
    assert_true(molt_provides_glob_match("*", "anything.at.all"));
    assert_true(molt_provides_glob_match("", ""));
    assert_false(molt_provides_glob_match("", "a"));
    assert_true(molt_provides_glob_match("rootfs-image.*", "rootfs-image.version"));
    assert_true(molt_provides_glob_match("rootfs-image.*", "rootfs-image."));
    assert_false(molt_provides_glob_match("rootfs-image.*", "rootfs-image"));
    assert_false(molt_provides_glob_match("rootfs-image.*", "xrootfs-image.version"));
    assert_true(molt_provides_glob_match("*.version", "rootfs-image.app.version"));
    assert_false(molt_provides_glob_match("*.version", "rootfs-image.app.versions"));
    assert_true(molt_provides_glob_match("a*b*c", "abc"));
    assert_true(molt_provides_glob_match("a*b*c", "aXXbYYbZc"));
    assert_false(molt_provides_glob_match("a*b*c", "aXXbYYbZ"));
    assert_true(molt_provides_glob_match("**", "x"));
    assert_true(molt_provides_glob_match("a**", "a"));
    /* Everything but '*' is literal: '.', '?', '[' and regex characters match themselves. */
    assert_false(molt_provides_glob_match("rootfs.image", "rootfsXimage"));
    assert_true(molt_provides_glob_match("a?b", "a?b"));
    assert_false(molt_provides_glob_match("a?b", "axb"));
    assert_true(molt_provides_glob_match("[x]", "[x]"));
    assert_false(molt_provides_glob_match("[x]", "x"));
    assert_true(molt_provides_glob_match("a+b$", "a+b$"));
    assert_false(molt_provides_glob_match("artifact_group", "artifact_groups"));
    assert_true(molt_provides_glob_match("artifact_group", "artifact_group"));
    /* Backtracking: the first '*' must not swallow what a later literal needs. */
    assert_true(molt_provides_glob_match("*ab", "aab"));
    assert_true(molt_provides_glob_match("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaab"));
    assert_false(molt_provides_glob_match("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa"));
}

/* ---- current provides ---- */

static void test_current_unknown(void **state)
{
    (void)state;
    json_t *store = J("{}"), *p = NULL;
    assert_int_equal(molt_provides_current(store, &p, NULL), 0);
    assert_json(p, "{\"artifact_name\":\"unknown\"}");
    json_decref(p);
    json_decref(store);

    store = J("{\"artifact_name\":\"r1\",\"artifact_group\":\"g\","
              "\"artifact_provides\":{\"rootfs-image.version\":\"r1\"}}");
    assert_int_equal(molt_provides_current(store, &p, NULL), 0);
    assert_json(p, "{\"artifact_name\":\"r1\",\"artifact_group\":\"g\","
                   "\"rootfs-image.version\":\"r1\"}");
    json_decref(p);
    json_decref(store);
}

/* ---- depends ---- */

typedef struct dep_case {
    const char *device_types, *names, *groups, *type_depends;
} dep_case;

static int check(const dep_case *c, const char *device_type, const char *provides,
                 molt_err *err)
{
    json_t *dt = J(c->device_types);
    json_t *n = c->names ? J(c->names) : NULL;
    json_t *g = c->groups ? J(c->groups) : NULL;
    json_t *t = c->type_depends ? J(c->type_depends) : NULL;
    json_t *p = J(provides);
    molt_depends d = {dt, n, g, t};
    molt_err_clear(err);
    int r = molt_depends_check(&d, device_type, p, err);
    json_decref(dt);
    json_decref(n);
    json_decref(g);
    json_decref(t);
    json_decref(p);
    return r;
}

static void test_depends_device_type(void **state)
{
    (void)state;
    molt_err err;
    dep_case c = {"[\"dev-a\",\"dev-b\"]", NULL, NULL, NULL};
    assert_int_equal(check(&c, "dev-a", "{\"artifact_name\":\"unknown\"}", &err), 0);
    assert_int_equal(check(&c, "dev-b", "{\"artifact_name\":\"unknown\"}", &err), 0);
    assert_int_equal(check(&c, "dev-c", "{\"artifact_name\":\"unknown\"}", &err), MOLT_EDEPENDS);
    assert_non_null(strstr(err.msg, "dev-c"));
    assert_non_null(strstr(err.msg, "dev-a"));
    /* Case matters, no prefix match. */
    assert_int_equal(check(&c, "DEV-A", "{}", &err), MOLT_EDEPENDS);
    assert_int_equal(check(&c, "dev-", "{}", &err), MOLT_EDEPENDS);
    dep_case empty = {"[]", NULL, NULL, NULL};
    assert_int_equal(check(&empty, "dev-a", "{}", &err), MOLT_EFORMAT);
}

static void test_depends_names_groups(void **state)
{
    (void)state;
    molt_err err;
    dep_case c = {"[\"d\"]", "[\"r1\",\"r2\"]", NULL, NULL};
    assert_int_equal(check(&c, "d", "{\"artifact_name\":\"r2\"}", &err), 0);
    assert_int_equal(check(&c, "d", "{\"artifact_name\":\"r3\"}", &err), MOLT_EDEPENDS);
    assert_non_null(strstr(err.msg, "r3"));
    /* A fresh device is "unknown", which an artifact may depend on. */
    assert_int_equal(check(&c, "d", "{\"artifact_name\":\"unknown\"}", &err), MOLT_EDEPENDS);
    dep_case u = {"[\"d\"]", "[\"unknown\"]", NULL, NULL};
    assert_int_equal(check(&u, "d", "{\"artifact_name\":\"unknown\"}", &err), 0);

    dep_case g = {"[\"d\"]", NULL, "[\"g1\"]", NULL};
    assert_int_equal(check(&g, "d", "{\"artifact_name\":\"x\",\"artifact_group\":\"g1\"}", &err),
                     0);
    assert_int_equal(check(&g, "d", "{\"artifact_name\":\"x\",\"artifact_group\":\"g2\"}", &err),
                     MOLT_EDEPENDS);
    /* No group at all while one is required. */
    assert_int_equal(check(&g, "d", "{\"artifact_name\":\"x\"}", &err), MOLT_EDEPENDS);
    assert_non_null(strstr(err.msg, "artifact_group"));
    /* An empty list can never be met. */
    dep_case none = {"[\"d\"]", "[]", NULL, NULL};
    assert_int_equal(check(&none, "d", "{\"artifact_name\":\"x\"}", &err), MOLT_EDEPENDS);
}

static void test_depends_type_info(void **state)
{
    (void)state;
    molt_err err;
    dep_case c = {"[\"d\"]", NULL, NULL, "{\"rootfs-image.checksum\":\"abc\",\"k\":\"v\"}"};
    assert_int_equal(check(&c, "d",
                           "{\"artifact_name\":\"x\",\"rootfs-image.checksum\":\"abc\","
                           "\"k\":\"v\",\"other\":\"o\"}", &err), 0);
    assert_int_equal(check(&c, "d", "{\"artifact_name\":\"x\",\"rootfs-image.checksum\":\"abc\"}",
                           &err), MOLT_EDEPENDS);
    assert_non_null(strstr(err.msg, "'k'") ? strstr(err.msg, "'k'") : strstr(err.msg, "k "));
    assert_int_equal(check(&c, "d",
                           "{\"artifact_name\":\"x\",\"rootfs-image.checksum\":\"abd\","
                           "\"k\":\"v\"}", &err), MOLT_EDEPENDS);
    assert_non_null(strstr(err.msg, "abd"));
    /* Type-info depends may name artifact_name too. */
    dep_case n = {"[\"d\"]", NULL, NULL, "{\"artifact_name\":\"r1\"}"};
    assert_int_equal(check(&n, "d", "{\"artifact_name\":\"r1\"}", &err), 0);
    assert_int_equal(check(&n, "d", "{\"artifact_name\":\"r1_INCONSISTENT\"}", &err),
                     MOLT_EDEPENDS);
    /* Only string values are accepted (like Mender's C++ client). */
    dep_case bad = {"[\"d\"]", NULL, NULL, "{\"k\":[\"v\"]}"};
    assert_int_equal(check(&bad, "d", "{\"k\":\"v\"}", &err), MOLT_EFORMAT);
    /* The device type is checked first. */
    assert_int_equal(check(&c, "other", "{}", &err), MOLT_EDEPENDS);
    assert_non_null(strstr(err.msg, "other"));
}

/* ---- provides commit ---- */

static void commit_case(const char *store_text, const char *name, const char *group,
                        const char *provides, const char *clears, const char *want)
{
    json_t *store = J(store_text);
    json_t *p = provides ? J(provides) : NULL;
    json_t *c = clears ? J(clears) : NULL;
    molt_provides_new art = {name, group, p, c};
    molt_err err;
    assert_int_equal(molt_provides_commit(store, &art, &err), 0);
    assert_json(store, want);
    json_decref(store);
    json_decref(p);
    json_decref(c);
}

static const char *old_store =
    "{\"artifact_name\":\"r1\",\"artifact_group\":\"g1\",\"artifact_provides\":"
    "{\"rootfs-image.version\":\"r1\",\"rootfs-image.checksum\":\"c1\","
    "\"rootfs-image.app.version\":\"1\",\"data.partition\":\"p1\"},\"other\":42}";

static void test_commit_no_provides_no_clears(void **state)
{
    (void)state;
    /* Neither provides nor clears: everything is wiped, name/group set. */
    commit_case(old_store, "r2", NULL, NULL, NULL,
                "{\"artifact_name\":\"r2\",\"artifact_provides\":{},\"other\":42}");
    commit_case(old_store, "r2", "g2", "{}", NULL,
                "{\"artifact_name\":\"r2\",\"artifact_group\":\"g2\",\"artifact_provides\":{},"
                "\"other\":42}");
}

static void test_commit_no_clears_replaces(void **state)
{
    (void)state;
    commit_case(old_store, "r2", "g1", "{\"rootfs-image.app.version\":\"2\"}", NULL,
                "{\"artifact_name\":\"r2\",\"artifact_group\":\"g1\",\"artifact_provides\":"
                "{\"rootfs-image.app.version\":\"2\"},\"other\":42}");
}

static void test_commit_clears_globs(void **state)
{
    (void)state;
    /* Only the app's keys are cleared; the rest stays. */
    commit_case(old_store, "r2", "g1", "{\"rootfs-image.app.version\":\"2\"}",
                "[\"rootfs-image.app.*\"]",
                "{\"artifact_name\":\"r2\",\"artifact_group\":\"g1\",\"artifact_provides\":"
                "{\"rootfs-image.version\":\"r1\",\"rootfs-image.checksum\":\"c1\","
                "\"rootfs-image.app.version\":\"2\",\"data.partition\":\"p1\"},\"other\":42}");
    /* A rootfs-image's default clears, with '*' in the middle and a literal key. */
    commit_case(old_store, "r2", NULL,
                "{\"rootfs-image.version\":\"r2\",\"rootfs-image.checksum\":\"c2\"}",
                "[\"artifact_group\",\"rootfs_image_checksum\",\"rootfs-image.*\"]",
                "{\"artifact_name\":\"r2\",\"artifact_provides\":{\"rootfs-image.version\":\"r2\","
                "\"rootfs-image.checksum\":\"c2\",\"data.partition\":\"p1\"},\"other\":42}");
    commit_case(old_store, "r2", "g1", NULL, "[\"*.version\"]",
                "{\"artifact_name\":\"r2\",\"artifact_group\":\"g1\",\"artifact_provides\":"
                "{\"rootfs-image.checksum\":\"c1\",\"data.partition\":\"p1\"},\"other\":42}");
    /* Empty clears list: nothing is cleared, new keys overwrite. */
    commit_case(old_store, "r2", "g1", "{\"data.partition\":\"p2\"}", "[]",
                "{\"artifact_name\":\"r2\",\"artifact_group\":\"g1\",\"artifact_provides\":"
                "{\"rootfs-image.version\":\"r1\",\"rootfs-image.checksum\":\"c1\","
                "\"rootfs-image.app.version\":\"1\",\"data.partition\":\"p2\"},\"other\":42}");
    /* A literal pattern is not a prefix. */
    commit_case(old_store, "r2", "g1", NULL, "[\"rootfs-image\",\"data.partitio\"]",
                "{\"artifact_name\":\"r2\",\"artifact_group\":\"g1\",\"artifact_provides\":"
                "{\"rootfs-image.version\":\"r1\",\"rootfs-image.checksum\":\"c1\","
                "\"rootfs-image.app.version\":\"1\",\"data.partition\":\"p1\"},\"other\":42}");
    /* "*" clears everything. */
    commit_case(old_store, "r2", "g1", "{\"k\":\"v\"}", "[\"*\"]",
                "{\"artifact_name\":\"r2\",\"artifact_group\":\"g1\",\"artifact_provides\":"
                "{\"k\":\"v\"},\"other\":42}");
}

static void test_commit_group_and_fresh(void **state)
{
    (void)state;
    /* The group is removed when the new artifact has none (also ""). */
    commit_case(old_store, "r2", "", "{}", "[]",
                "{\"artifact_name\":\"r2\",\"artifact_provides\":{\"rootfs-image.version\":\"r1\","
                "\"rootfs-image.checksum\":\"c1\",\"rootfs-image.app.version\":\"1\","
                "\"data.partition\":\"p1\"},\"other\":42}");
    /* A fresh store. */
    commit_case("{}", "r1", "g", "{\"rootfs-image.x.version\":\"r1\"}", "[\"rootfs-image.x.*\"]",
                "{\"artifact_name\":\"r1\",\"artifact_group\":\"g\",\"artifact_provides\":"
                "{\"rootfs-image.x.version\":\"r1\"}}");
    /* name/group inside type-info provides never shadow the real keys. */
    commit_case("{}", "r1", NULL, "{\"artifact_name\":\"evil\",\"k\":\"v\"}", NULL,
                "{\"artifact_name\":\"r1\",\"artifact_provides\":{\"k\":\"v\"}}");
}

static void inconsistent_case(const char *store_text, const char *name, const char *group,
                              const char *want)
{
    json_t *store = J(store_text);
    molt_err err;
    assert_int_equal(molt_provides_inconsistent(store, name, group, &err), 0);
    assert_json(store, want);
    json_decref(store);
}

static void test_inconsistent(void **state)
{
    (void)state;
    /* Only name (suffixed) and group change; the type-info provides stay. */
    inconsistent_case(old_store, "r2", "g2",
                      "{\"artifact_name\":\"r2_INCONSISTENT\",\"artifact_group\":\"g2\","
                      "\"artifact_provides\":{\"rootfs-image.version\":\"r1\","
                      "\"rootfs-image.checksum\":\"c1\",\"rootfs-image.app.version\":\"1\","
                      "\"data.partition\":\"p1\"},\"other\":42}");
    inconsistent_case(old_store, "r2", NULL,
                      "{\"artifact_name\":\"r2_INCONSISTENT\","
                      "\"artifact_provides\":{\"rootfs-image.version\":\"r1\","
                      "\"rootfs-image.checksum\":\"c1\",\"rootfs-image.app.version\":\"1\","
                      "\"data.partition\":\"p1\"},\"other\":42}");
    /* The suffix is added once; a fresh store gets no provides object. */
    inconsistent_case("{}", "r2_INCONSISTENT", "", "{\"artifact_name\":\"r2_INCONSISTENT\"}");
    json_t *store = J("{}");
    assert_int_equal(molt_provides_inconsistent(store, "", NULL, NULL), MOLT_EINVAL);
    json_decref(store);
}

static void test_commit_errors(void **state)
{
    (void)state;
    json_t *store = J(old_store);
    json_t *before = json_deep_copy(store);
    json_t *bad_p = J("{\"k\":1}");
    json_t *bad_c = J("{\"x\":\"y\"}");
    molt_err err;
    molt_provides_new a = {"r2", NULL, bad_p, NULL};
    assert_int_equal(molt_provides_commit(store, &a, &err), MOLT_EFORMAT);
    assert_true(json_equal(store, before));
    molt_provides_new b = {"r2", NULL, NULL, bad_c};
    assert_int_equal(molt_provides_commit(store, &b, &err), MOLT_EFORMAT);
    molt_provides_new c = {"", NULL, NULL, NULL};
    assert_int_equal(molt_provides_commit(store, &c, &err), MOLT_EINVAL);
    assert_true(json_equal(store, before));
    json_decref(store);
    json_decref(before);
    json_decref(bad_p);
    json_decref(bad_c);
}

/* ---- the downgrade policy ---- */

static int downgrade(const molt_downgrade_policy *p, const char *name, const char *art_json,
                     const char *dev_json, molt_err *e)
{
    json_t *art = J(art_json), *dev = J(dev_json);
    int r = molt_downgrade_check(p, name, art, dev, e);
    json_decref(art);
    json_decref(dev);
    return r;
}

static void test_downgrade(void **state)
{
    (void)state;
    molt_err e = {0};
    molt_downgrade_policy off = {false, "v", MOLT_VERSION_SEMVER};
    molt_downgrade_policy on = {true, "v", MOLT_VERSION_SEMVER};
    const char *dev2 = "{\"artifact_name\": \"r2\", \"v\": \"2.0.0\"}";
    /* off: anything goes, even without the key */
    assert_int_equal(downgrade(&off, "r1", "{\"v\": \"1.0.0\"}", dev2, &e), 0);
    assert_int_equal(downgrade(&off, "r1", "{}", dev2, &e), 0);
    /* newer and equal pass; older is refused naming everything */
    assert_int_equal(downgrade(&on, "r3", "{\"v\": \"2.0.1\"}", dev2, &e), 0);
    assert_int_equal(downgrade(&on, "r2b", "{\"v\": \"2.0.0+rebuild\"}", dev2, &e), 0);
    assert_int_equal(downgrade(&on, "r1", "{\"v\": \"2.0.0-rc.1\"}", dev2, &e), MOLT_EDEPENDS);
    assert_string_equal(e.msg, "downgrade refused: artifact 'r1' has v '2.0.0-rc.1', older than "
                               "the device's '2.0.0' (semver scheme); --allow-downgrade installs "
                               "it anyway");
    /* no key in the artifact: refused */
    assert_int_equal(downgrade(&on, "r9", "{\"w\": \"9.0.0\"}", dev2, &e), MOLT_EDEPENDS);
    assert_non_null(strstr(e.msg, "artifact 'r9' provides no 'v'"));
    assert_int_equal(downgrade(&on, "r9", "null", dev2, &e), MOLT_EDEPENDS);
    /* no version on the device yet: allowed, said with 1 */
    assert_int_equal(downgrade(&on, "r1", "{\"v\": \"1.0.0\"}", "{\"artifact_name\": \"x\"}",
                               &e), 1);
    /* versions the scheme cannot read: the artifact's, then the device's */
    assert_int_equal(downgrade(&on, "r5", "{\"v\": \"five\"}", dev2, &e), MOLT_EDEPENDS);
    assert_non_null(strstr(e.msg, "artifact 'r5' has v 'five', which the semver scheme cannot "
                                  "compare: 'five' is not a semantic version"));
    assert_int_equal(downgrade(&on, "r5", "{\"v\": \"5.0.0\"}", "{\"v\": \"old\"}", &e),
                     MOLT_EDEPENDS);
    assert_non_null(strstr(e.msg, "the device's v 'old' cannot be compared in the semver scheme"));
    /* the key may be artifact_name (the header-info name) */
    molt_downgrade_policy by_name = {true, "artifact_name", MOLT_VERSION_INTEGER};
    assert_int_equal(downgrade(&by_name, "10", "{}", "{\"artifact_name\": \"9\"}", &e), 0);
    assert_int_equal(downgrade(&by_name, "8", "{}", "{\"artifact_name\": \"9\"}", &e),
                     MOLT_EDEPENDS);
    assert_non_null(strstr(e.msg, "'8', older than the device's '9' (integer scheme)"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_current_unknown),
        cmocka_unit_test(test_depends_device_type),
        cmocka_unit_test(test_depends_names_groups),
        cmocka_unit_test(test_depends_type_info),
        cmocka_unit_test(test_commit_no_provides_no_clears),
        cmocka_unit_test(test_commit_no_clears_replaces),
        cmocka_unit_test(test_commit_clears_globs),
        cmocka_unit_test(test_commit_group_and_fresh),
        cmocka_unit_test(test_inconsistent),
        cmocka_unit_test(test_commit_errors),
        cmocka_unit_test(test_downgrade),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
