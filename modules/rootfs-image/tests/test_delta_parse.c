/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of rootfs_delta_parse (delta_info.c): what a rootfs-delta artifact's type-info and
 * meta-data must say, and the refusals naming what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "delta.h"

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define TI(dep, prov) \
    "{\"type\":\"rootfs-delta\",\"artifact_depends\":{\"rootfs-image.checksum\":" dep "}," \
    "\"artifact_provides\":{\"rootfs-image.checksum\":" prov ",\"rootfs-image.version\":\"v2\"}}"
#define MD(fmt, b, t) \
    "{\"rootfs-delta\":{\"format\":" fmt ",\"base_size\":" b ",\"target_size\":" t "}}"

static void good(void **state)
{
    rootfs_delta_info d;
    struct molt_sdk_error err = {0};
    assert_int_equal(0, rootfs_delta_parse(TI("\"" SHA_A "\"", "\"" SHA_B "\""),
                                           MD("\"zstd-patch-from\"", "1048576", "2097152"),
                                           &d, &err));
    assert_string_equal(SHA_A, d.base_sha);
    assert_string_equal(SHA_B, d.target_sha);
    assert_int_equal(1048576, d.base_size);
    assert_int_equal(2097152, d.target_size);
}

/* Refused with code and a message containing want; *ret untouched. */
static void refused(const char *ti, const char *md, const char *want)
{
    rootfs_delta_info d;
    memset(&d, 0x5a, sizeof d);
    struct molt_sdk_error err = {0};
    assert_int_equal(MOLT_EFORMAT, rootfs_delta_parse(ti, md, &d, &err));
    assert_int_equal(MOLT_EFORMAT, err.code);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
    assert_int_equal(0x5a, ((unsigned char *)&d)[0]);
}

static void bad(void **state)
{
    const char *ok_ti = TI("\"" SHA_A "\"", "\"" SHA_B "\"");
    const char *ok_md = MD("\"zstd-patch-from\"", "10", "10");
    refused("{}", ok_md, "artifact_depends/rootfs-image.checksum");
    refused("not json", ok_md, "artifact_depends/rootfs-image.checksum");
    refused(TI("\"" SHA_A "\"", "\"abc\""), ok_md, "artifact_provides/rootfs-image.checksum");
    refused(TI("\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"",
               "\"" SHA_B "\""), ok_md, "artifact_depends");
    refused(TI("12", "\"" SHA_B "\""), ok_md, "artifact_depends");
    refused(ok_ti, "null", "format is missing");
    refused(ok_ti, MD("\"vcdiff\"", "10", "10"), "format is \"vcdiff\"");
    refused(ok_ti, MD("7", "10", "10"), "format is missing");
    refused(ok_ti, MD("\"zstd-patch-from\"", "0", "10"), "base_size");
    refused(ok_ti, MD("\"zstd-patch-from\"", "10", "-1"), "target_size");
    refused(ok_ti, MD("\"zstd-patch-from\"", "10.5", "10"), "base_size");
    refused(ok_ti, MD("\"zstd-patch-from\"", "\"10\"", "10"), "base_size");
    refused(ok_ti, "{\"rootfs-delta\":{\"format\":\"zstd-patch-from\"}}", "base_size");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(good), cmocka_unit_test(bad)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
