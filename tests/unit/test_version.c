/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for core/state/version.c: the three version schemes of the downgrade policy, as
 * tables of (a, b, expected order) pairs, each also checked reversed and against itself, and
 * tables of strings each scheme must refuse. The Debian table's orders were checked with
 * `dpkg --compare-versions` when it was written (see test_debian_matches_dpkg for the live
 * check when dpkg is installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"

#include "state/version.h"

typedef struct pair {
    const char *a, *b;
    int want;   /* -1: a older, 0: equal, 1: a newer */
} pair;

static int cmp_or_fail(molt_version_scheme s, const char *a, const char *b)
{
    molt_err e = {0};
    int c = 42;
    if (molt_version_compare(s, a, b, &c, &e) != 0)
        fail_msg("%s: compare '%s' '%s': %s", molt_config_scheme_name(s), a, b, e.msg);
    return (c > 0) - (c < 0);
}

static void check_pairs(molt_version_scheme s, const pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = cmp_or_fail(s, p[i].a, p[i].b);
        if (got != p[i].want)
            fail_msg("%s: '%s' vs '%s': got %d, want %d", molt_config_scheme_name(s), p[i].a,
                     p[i].b, got, p[i].want);
        got = cmp_or_fail(s, p[i].b, p[i].a);
        if (got != -p[i].want)
            fail_msg("%s: reversed '%s' vs '%s': got %d, want %d", molt_config_scheme_name(s),
                     p[i].b, p[i].a, got, -p[i].want);
        assert_int_equal(cmp_or_fail(s, p[i].a, p[i].a), 0);
        assert_int_equal(cmp_or_fail(s, p[i].b, p[i].b), 0);
    }
}

/* Each string is refused with MOLT_EFORMAT, the message quoting it and naming the scheme's
 * format; comparing it with a valid version is refused too, and *ret_cmp is left alone. */
static void check_bad(molt_version_scheme s, const char *const *bad, size_t n, const char *good,
                      const char *format_word)
{
    for (size_t i = 0; i < n; i++) {
        molt_err e = {0};
        int c = 42;
        if (molt_version_check(s, bad[i], &e) != MOLT_EFORMAT)
            fail_msg("%s: '%s' accepted", molt_config_scheme_name(s), bad[i]);
        char quoted[300];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        if (!strstr(e.msg, quoted) || !strstr(e.msg, format_word))
            fail_msg("%s: message for '%s' does not quote it or name the format: %s",
                     molt_config_scheme_name(s), bad[i], e.msg);
        assert_int_equal(molt_version_compare(s, bad[i], good, &c, &e), MOLT_EFORMAT);
        assert_int_equal(molt_version_compare(s, good, bad[i], &c, &e), MOLT_EFORMAT);
        assert_int_equal(c, 42);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_integer(void **state)
{
    (void)state;
    static const pair p[] = {
        {"0", "1", -1},
        {"9", "10", -1},
        {"10", "10", 0},
        {"010", "10", 0},
        {"0", "000", 0},
        {"99", "100", -1},
        {"123456789012345678901234567890", "123456789012345678901234567891", -1},
        {"99999999999999999999999999999", "100000000000000000000000000000", -1},
        {"18446744073709551616", "18446744073709551615", 1},
    };
    check_pairs(MOLT_VERSION_INTEGER, p, N(p));
    static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1e3", "one",
                                      "１"};
    check_bad(MOLT_VERSION_INTEGER, bad, N(bad), "1", "integer");
}

static void test_semver(void **state)
{
    (void)state;
    static const pair p[] = {
        /* semver.org §11's example chain, each next pair */
        {"1.0.0-alpha", "1.0.0-alpha.1", -1},
        {"1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
        {"1.0.0-alpha.beta", "1.0.0-beta", -1},
        {"1.0.0-beta", "1.0.0-beta.2", -1},
        {"1.0.0-beta.2", "1.0.0-beta.11", -1},
        {"1.0.0-beta.11", "1.0.0-rc.1", -1},
        {"1.0.0-rc.1", "1.0.0", -1},
        /* and across the chain */
        {"1.0.0-alpha", "1.0.0", -1},
        {"1.0.0-alpha.1", "1.0.0-rc.1", -1},
        /* numbers compare numerically, not as text */
        {"1.9.0", "1.10.0", -1},
        {"1.10.0", "1.9.99", 1},
        {"0.0.9", "0.0.10", -1},
        {"2.0.0", "10.0.0", -1},
        {"1.2.3", "1.2.3", 0},
        {"99999999999999999999.0.0", "100000000000000000000.0.0", -1},
        /* build metadata is ignored */
        {"1.0.0+build.1", "1.0.0+build.2", 0},
        {"1.0.0+20130313144700", "1.0.0", 0},
        {"1.0.0-beta+exp.sha.5114f85", "1.0.0-beta", 0},
        {"1.0.0-alpha+001", "1.0.0-alpha", 0},
        {"1.0.0+0.build.1-rc.10000aaa-kk-0.1", "1.0.0", 0},
        /* pre-release details */
        {"1.0.0-1", "1.0.0-a", -1},          /* numeric before alphanumeric */
        {"1.0.0-2", "1.0.0-10", -1},         /* numeric identifiers numerically */
        {"1.0.0-a10", "1.0.0-a9", -1},       /* alphanumeric ones in ASCII order */
        {"1.0.0-Z", "1.0.0-a", -1},          /* uppercase sorts before lowercase in ASCII */
        {"1.0.0-alpha-1", "1.0.0-alpha.1", 1},    /* "alpha-1" is one identifier, > "alpha" */
        {"1.0.0-alpha", "1.0.0-alpha-1", -1},
        {"1.0.0-0", "1.0.0-0.0", -1},
        {"1.0.0-rc.1", "1.0.0-rc.1.0", -1},
        {"1.0.0-x.7.z.92", "1.0.0-x.7.z.92", 0},
        {"1.0.0-0A", "1.0.0-1", 1},          /* "0A" is alphanumeric (leading zero allowed) */
        {"0.0.0-0", "0.0.0", -1},
        {"1.2.3-beta", "1.2.2", 1},          /* a newer pre-release beats an older release */
    };
    check_pairs(MOLT_VERSION_SEMVER, p, N(p));
    static const char *const bad[] = {
        "", "1", "1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.02.3", "1.2.03", "1.2.3-",
        "1.2.3+", "1.2.3-01", "1.2.3-alpha..1", "1.2.3-alpha.", "1.2.3+build..1",
        "1.2.3-al_pha", "1.2.3+b@d", "1..3", ".1.2.3", "1.2.3 ", " 1.2.3", "a.b.c", "-1.2.3",
        "1.2.-3", "1.2.3-+", "1.2.3++",
    };
    check_bad(MOLT_VERSION_SEMVER, bad, N(bad), "1.0.0", "semantic version");
    /* leading zeros are fine in build metadata */
    molt_err e = {0};
    assert_int_equal(molt_version_check(MOLT_VERSION_SEMVER, "1.0.0+001", &e), 0);
    assert_int_equal(molt_version_check(MOLT_VERSION_SEMVER, "1.0.0-rc-1+build-007", &e), 0);
}

static const pair debian_pairs[] = {
    {"1.0", "1.1", -1},
    {"1.2", "1.10", -1},
    {"1.0", "1.0-0", 0},                 /* no revision compares as "0" */
    {"1.0-1", "1.0", 1},
    {"1.0-1", "1.0-2", -1},
    {"1.0-9", "1.0-10", -1},
    {"1.0~rc1", "1.0", -1},              /* '~' sorts before the end */
    {"1.0~rc1", "1.0~rc2", -1},
    {"1.0~~", "1.0~", -1},
    {"1.0~~a", "1.0~", -1},
    {"1.0~", "1.0", -1},
    {"1.0", "1.0a", -1},                 /* the end before letters */
    {"1.0a", "1.0+", -1},                /* letters before other characters */
    {"1.0+", "1.0.", -1},                /* '+' (43) before '.' (46) */
    {"1.0a", "1.0b", -1},
    {"1.0Z", "1.0a", -1},                /* ASCII: uppercase first */
    {"1:1.0", "2.0", 1},                 /* the epoch first */
    {"0:1.0", "1.0", 0},                 /* epoch 0 is no epoch */
    {"1:0", "0:99", 1},
    {"10:1", "9:1", 1},
    {"00001:1.0", "1:1.0", 0},
    {"1.0-1ubuntu1", "1.0-1", 1},
    {"1.0-1+b1", "1.0-1", 1},
    {"1.0-1~bpo1", "1.0-1", -1},
    {"2.30-1", "2.30.1-1", -1},
    {"1.001", "1.1", 0},                 /* leading zeros of a digit run do not count */
    {"1.0.0", "1.0", 1},
    {"1-2-3", "1-2", 1},                 /* upstream "1-2" revision "3" vs upstream "1" rev "2" */
    {"1:2:3", "1:2", 1},                 /* ':' inside upstream with an epoch */
    {"7.6p2-4", "7.6-0", 1},
    {"1.18.36", "1.18.36.1", -1},
    {"1.2.3~beta.11", "1.2.3~beta.2", 1},
    {"4.2.0+dfsg-1", "4.2.0-1", 1},
    {"99999999999999999999999", "99999999999999999999998", 1},
    {"1a", "1", 1},
    {"1.0-a", "1.0-0", 1},
};

static void test_debian(void **state)
{
    (void)state;
    check_pairs(MOLT_VERSION_DEBIAN, debian_pairs, N(debian_pairs));
    static const char *const bad[] = {
        "", "a1.0", ":1.0", "x:1.0", "1.0-", "-1", "1.0 beta", "1.0_1", "1.0-1_2", "1.0-1:2",
        "1.0-1-", "1:", "1:-1", "~1", "1.0/2", "1.0-a-",
    };
    check_bad(MOLT_VERSION_DEBIAN, bad, N(bad), "1.0", "Debian version");
}

/* The table against dpkg itself, when it is installed (it is on the project's machines: the
 * deb module's tests need it). */
static void test_debian_matches_dpkg(void **state)
{
    (void)state;
    if (system("command -v dpkg >/dev/null 2>&1") != 0) {
        printf("note: dpkg not found: the live cross-check is skipped\n");
        return;
    }
    for (size_t i = 0; i < N(debian_pairs); i++) {
        const pair *p = &debian_pairs[i];
        char cmd[400];
        const char *op = p->want < 0 ? "lt" : p->want > 0 ? "gt" : "eq";
        snprintf(cmd, sizeof cmd, "dpkg --compare-versions '%s' %s '%s' 2>/dev/null", p->a, op,
                 p->b);
        if (system(cmd) != 0)
            fail_msg("dpkg disagrees: '%s' %s '%s' is false for dpkg", p->a, op, p->b);
    }
}

static void test_scheme_names(void **state)
{
    (void)state;
    assert_string_equal(molt_config_scheme_name(MOLT_VERSION_INTEGER), "integer");
    assert_string_equal(molt_config_scheme_name(MOLT_VERSION_SEMVER), "semver");
    assert_string_equal(molt_config_scheme_name(MOLT_VERSION_DEBIAN), "debian");
    molt_err e = {0};
    int c = 42;
    assert_int_equal(molt_version_compare(MOLT_VERSION_SEMVER, NULL, "1.0.0", &c, &e), MOLT_EINVAL);
    assert_int_equal(c, 42);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integer),
        cmocka_unit_test(test_semver),
        cmocka_unit_test(test_debian),
        cmocka_unit_test(test_debian_matches_dpkg),
        cmocka_unit_test(test_scheme_names),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
