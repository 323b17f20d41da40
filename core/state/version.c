/* SPDX-License-Identifier: Apache-2.0 */
/* Version comparison in three schemes (integer, semver 2.0.0, Debian), for the downgrade
 * policy. Strings are walked in place as (pointer, length) slices: nothing is allocated, no
 * number is converted, so a version of any length compares correctly and cannot overflow. */
#include "state/version.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A slice of a version string. */
typedef struct span {
    const char *p;
    size_t n;
} span;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

/* Two runs of digits as numbers: leading zeros skipped, then the longer is bigger, then the
 * first differing digit decides. */
static int cmp_digits(span a, span b)
{
    while (a.n > 1 && a.p[0] == '0') {
        a.p++;
        a.n--;
    }
    while (b.n > 1 && b.p[0] == '0') {
        b.p++;
        b.n--;
    }
    if (a.n != b.n)
        return a.n < b.n ? -1 : 1;
    return sign(memcmp(a.p, b.p, a.n));
}

static bool all_digits(span s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!is_digit(s.p[i]))
            return false;
    return true;
}

/* ---- integer ---------------------------------------------------------------------------- */

static int check_integer(const char *s, molt_err *err)
{
    span v = {s, strlen(s)};
    if (!all_digits(v))
        return molt_err_set(err, MOLT_EFORMAT,
                            "'%s' is not an integer version (only the digits 0-9 are allowed)",
                            s);
    return 0;
}

/* ---- semver 2.0.0 ----------------------------------------------------------------------- */

typedef struct semver {
    span num[3];   /* major, minor, patch */
    span pre;      /* the pre-release identifiers, dot-separated; n == 0 when none */
} semver;

/* A numeric identifier: digits, no leading zero unless it is "0". */
static bool semver_number(span s)
{
    return all_digits(s) && !(s.n > 1 && s.p[0] == '0');
}

/* Identifiers separated by dots, each non-empty [0-9A-Za-z-]; numeric ones without leading
 * zeros when strict_numbers (pre-release; build metadata allows them). */
static const char *semver_idents(span s, bool strict_numbers)
{
    if (s.n == 0)
        return "an empty identifier list";
    size_t start = 0;
    for (size_t i = 0; i <= s.n; i++) {
        if (i < s.n && s.p[i] != '.') {
            char c = s.p[i];
            if (!is_digit(c) && !is_alpha(c) && c != '-')
                return "a character other than [0-9A-Za-z-] in an identifier";
            continue;
        }
        span id = {s.p + start, i - start};
        if (id.n == 0)
            return "an empty identifier";
        if (strict_numbers && all_digits(id) && !semver_number(id))
            return "a numeric pre-release identifier with a leading zero";
        start = i + 1;
    }
    return NULL;
}

static int parse_semver(const char *s, semver *out, molt_err *err)
{
    const char *why = NULL;
    size_t len = strlen(s);
    size_t plus = strcspn(s, "+");
    size_t dash = strcspn(s, "-");   /* the first '-' starts the pre-release */
    size_t core_end = dash < plus ? dash : plus;
    span core = {s, core_end};
    memset(out, 0, sizeof *out);
    /* MAJOR.MINOR.PATCH */
    size_t start = 0, k = 0;
    for (size_t i = 0; i <= core.n && !why; i++) {
        if (i < core.n && core.p[i] != '.')
            continue;
        if (k == 3) {
            why = "more than three numbers before the pre-release";
            break;
        }
        out->num[k++] = (span){core.p + start, i - start};
        start = i + 1;
    }
    if (!why && k != 3)
        why = "expected MAJOR.MINOR.PATCH";
    for (size_t i = 0; i < 3 && !why; i++)
        if (!semver_number(out->num[i]))
            why = out->num[i].n > 1 && all_digits(out->num[i])
                      ? "a leading zero in MAJOR, MINOR or PATCH"
                      : "MAJOR, MINOR and PATCH must be numbers";
    if (!why && dash < plus) {
        out->pre = (span){s + dash + 1, plus - dash - 1};
        why = semver_idents(out->pre, true);
        if (why && out->pre.n == 0)
            why = "an empty pre-release after '-'";
    }
    if (!why && plus < len) {
        why = semver_idents((span){s + plus + 1, len - plus - 1}, false);
        if (why && plus + 1 == len)
            why = "empty build metadata after '+'";
    }
    if (why)
        return molt_err_set(err, MOLT_EFORMAT, "'%s' is not a semantic version (semver.org "
                            "2.0.0): %s", s, why);
    return 0;
}

/* The next dot-separated identifier of *rest (consumed). */
static span next_ident(span *rest)
{
    size_t i = 0;
    while (i < rest->n && rest->p[i] != '.')
        i++;
    span id = {rest->p, i};
    size_t skip = i < rest->n ? i + 1 : i;
    rest->p += skip;
    rest->n -= skip;
    return id;
}

static int cmp_semver(const semver *a, const semver *b)
{
    for (int i = 0; i < 3; i++) {
        int c = cmp_digits(a->num[i], b->num[i]);
        if (c)
            return c;
    }
    /* A pre-release has lower precedence than the release itself. */
    if (a->pre.n == 0 || b->pre.n == 0)
        return (a->pre.n == 0) - (b->pre.n == 0);
    span ra = a->pre, rb = b->pre;
    while (ra.n > 0 && rb.n > 0) {
        span x = next_ident(&ra), y = next_ident(&rb);
        bool nx = all_digits(x), ny = all_digits(y);
        int c;
        if (nx && ny)
            c = cmp_digits(x, y);
        else if (nx || ny)
            c = nx ? -1 : 1;   /* numeric identifiers sort before alphanumeric ones */
        else {
            size_t n = x.n < y.n ? x.n : y.n;
            c = sign(memcmp(x.p, y.p, n));
            if (!c && x.n != y.n)
                c = x.n < y.n ? -1 : 1;
        }
        if (c)
            return c;
    }
    /* All shared identifiers equal: the longer set wins. */
    return (ra.n > 0) - (rb.n > 0);
}

/* ---- Debian (deb-version(7), dpkg's lib/dpkg/version.c) --------------------------------- */

typedef struct debver {
    span epoch;      /* n == 0: 0 */
    span upstream;
    span revision;   /* n == 0: none ("" compares as "0") */
} debver;

static int parse_debian(const char *s, debver *out, molt_err *err)
{
    const char *why = NULL;
    size_t len = strlen(s);
    const char *colon = strchr(s, ':');
    const char *dash = strrchr(s, '-');
    /* Absent parts are empty spans at the end of s, never NULL: they take part in arithmetic. */
    out->epoch = (span){s + len, 0};
    out->revision = (span){s + len, 0};
    const char *up = s;
    if (colon) {
        out->epoch = (span){s, (size_t)(colon - s)};
        up = colon + 1;
        if (!all_digits(out->epoch))
            why = "the epoch before ':' must be a number";
    }
    const char *up_end = s + len;
    if (!why && dash && dash >= up) {
        out->revision = (span){dash + 1, (size_t)(s + len - dash - 1)};
        up_end = dash;
        if (out->revision.n == 0)
            why = "an empty revision after the last '-'";
    }
    out->upstream = (span){up, (size_t)(up_end - up)};
    if (!why && out->upstream.n == 0)
        why = "an empty upstream version";
    if (!why && !is_digit(out->upstream.p[0]))
        why = "the upstream version must start with a digit";
    for (size_t i = 0; !why && i < out->upstream.n; i++) {
        char c = out->upstream.p[i];
        if (!is_digit(c) && !is_alpha(c) && !strchr(".+~-:", c))
            why = "a character other than [A-Za-z0-9.+~-:] in the upstream version";
    }
    for (size_t i = 0; !why && i < out->revision.n; i++) {
        char c = out->revision.p[i];
        if (!is_digit(c) && !is_alpha(c) && !strchr(".+~", c))
            why = "a character other than [A-Za-z0-9.+~] in the revision";
    }
    if (why)
        return molt_err_set(err, MOLT_EFORMAT, "'%s' is not a Debian version "
                            "([epoch:]upstream[-revision], deb-version(7)): %s", s, why);
    return 0;
}

/* dpkg's order of a non-digit character: '~' before the end, the end before letters, letters
 * before everything else. */
static int deb_order(const span *s, size_t i)
{
    if (i >= s->n)
        return 0;
    char c = s->p[i];
    if (is_digit(c))
        return 0;
    if (is_alpha(c))
        return (unsigned char)c;
    if (c == '~')
        return -1;
    return (unsigned char)c + 256;
}

/* dpkg's verrevcmp: alternating non-digit and digit runs. */
static int deb_cmp_part(span a, span b)
{
    size_t i = 0, j = 0;
    while (i < a.n || j < b.n) {
        while ((i < a.n && !is_digit(a.p[i])) || (j < b.n && !is_digit(b.p[j]))) {
            int ac = deb_order(&a, i), bc = deb_order(&b, j);
            if (ac != bc)
                return ac < bc ? -1 : 1;
            i++;
            j++;
        }
        size_t si = i, sj = j;
        while (i < a.n && is_digit(a.p[i]))
            i++;
        while (j < b.n && is_digit(b.p[j]))
            j++;
        span da = {a.p + si, i - si}, db = {b.p + sj, j - sj};
        /* An empty run counts as 0. */
        int c = cmp_digits(da.n ? da : (span){"0", 1}, db.n ? db : (span){"0", 1});
        if (c)
            return c;
    }
    return 0;
}

static int cmp_debian(const debver *a, const debver *b)
{
    int c = cmp_digits(a->epoch.n ? a->epoch : (span){"0", 1},
                       b->epoch.n ? b->epoch : (span){"0", 1});
    if (!c)
        c = deb_cmp_part(a->upstream, b->upstream);
    if (!c)
        c = deb_cmp_part(a->revision, b->revision);
    return c;
}

/* ---- the entry points ------------------------------------------------------------------- */

int molt_version_check(molt_version_scheme scheme, const char *s, molt_err *err)
{
    semver sv;
    debver dv;
    if (!s)
        return molt_err_set(err, MOLT_EINVAL, "no version given");
    switch (scheme) {
    case MOLT_VERSION_INTEGER: return check_integer(s, err);
    case MOLT_VERSION_SEMVER: return parse_semver(s, &sv, err);
    case MOLT_VERSION_DEBIAN: return parse_debian(s, &dv, err);
    }
    return molt_err_set(err, MOLT_EINVAL, "unknown version scheme %d", (int)scheme);
}

int molt_version_compare(molt_version_scheme scheme, const char *a, const char *b, int *ret_cmp,
                         molt_err *err)
{
    int r;
    if ((r = molt_version_check(scheme, a, err)) < 0 ||
        (r = molt_version_check(scheme, b, err)) < 0)
        return r;
    int c = 0;
    if (scheme == MOLT_VERSION_INTEGER) {
        c = cmp_digits((span){a, strlen(a)}, (span){b, strlen(b)});
    } else if (scheme == MOLT_VERSION_SEMVER) {
        semver x, y;
        parse_semver(a, &x, NULL);
        parse_semver(b, &y, NULL);
        c = cmp_semver(&x, &y);
    } else {
        debver x, y;
        parse_debian(a, &x, NULL);
        parse_debian(b, &y, NULL);
        c = cmp_debian(&x, &y);
    }
    *ret_cmp = c;
    return 0;
}
