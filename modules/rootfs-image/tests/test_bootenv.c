/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the bootloader environment backends: the GRUB block (shape checks, other
 * variables kept, removal, overflow refused with the file unchanged, values it cannot hold) and
 * U-Boot through libubootenv on an environment file (one and two copies). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "bootenv.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/rootfs-bootenv.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/env", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static size_t read_bytes(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

/* A GRUB block holding text (then '#' up to 1024 bytes). */
static void grub_block(const char *path, const char *text)
{
    char block[1024];
    size_t n = strlen(text);
    assert_true(n <= sizeof block);
    memcpy(block, text, n);
    memset(block + n, '#', sizeof block - n);
    write_bytes(path, block, sizeof block);
}

#define HDR "# GRUB Environment Block\n"

static void test_grub_set_get(void **state)
{
    fixture *f = *state;
    struct molt_sdk_error err = {0};
    grub_block(f->path, HDR "other=kept\nupgrade_available=0\nlast=x\n");
    const char *names[] = {"mender_boot_part", "upgrade_available", "last"};
    const char *values[] = {"3", "1", NULL};
    assert_int_equal(bootenv_grub.set(f->path, 3, names, values, &err), 0);
    char buf[2048];
    assert_int_equal(read_bytes(f->path, buf, sizeof buf), 1024);
    const char *want = HDR "other=kept\nmender_boot_part=3\nupgrade_available=1\n";
    assert_memory_equal(buf, want, strlen(want));
    for (size_t i = strlen(want); i < 1024; i++)
        assert_int_equal(buf[i], '#');

    const char *get_names[] = {"mender_boot_part", "other", "last", "mender_boot"};
    char *got[4] = {0};
    assert_int_equal(bootenv_grub.get(f->path, 4, get_names, got, &err), 0);
    assert_string_equal(got[0], "3");
    assert_string_equal(got[1], "kept");
    assert_null(got[2]);
    assert_null(got[3]);   /* a prefix of a name is not the name */
    free(got[0]);
    free(got[1]);
}

static void test_grub_refusals(void **state)
{
    fixture *f = *state;
    struct molt_sdk_error err = {0};
    char before[1024], after[2048];
    char *got = NULL;
    const char *name[] = {"k"};

    /* too big to fit: refused, the block unchanged */
    grub_block(f->path, HDR "a=1\n");
    read_bytes(f->path, before, sizeof before);
    char big[1100];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *bigv[] = {big};
    assert_int_equal(bootenv_grub.set(f->path, 1, name, bigv, &err), MOLT_ESPACE);
    assert_non_null(strstr(err.msg, "do not fit in 1024 bytes"));
    assert_int_equal(read_bytes(f->path, after, sizeof after), 1024);
    assert_memory_equal(before, after, 1024);

    /* values GRUB would have to escape */
    const char *nl[] = {"a\nb"};
    assert_int_equal(bootenv_grub.set(f->path, 1, name, nl, &err), MOLT_EINVAL);
    const char *eqname[] = {"a=b"};
    const char *one[] = {"1"};
    assert_int_equal(bootenv_grub.set(f->path, 1, eqname, one, &err), MOLT_EINVAL);

    /* not a GRUB block: wrong size, wrong header */
    write_bytes(f->path, HDR, strlen(HDR));
    assert_int_equal(bootenv_grub.get(f->path, 1, name, &got, &err), MOLT_EFORMAT);
    assert_non_null(strstr(err.msg, "expected 1024 bytes, got 25"));
    grub_block(f->path, "# Not GRUB\n");
    assert_int_equal(bootenv_grub.get(f->path, 1, name, &got, &err), MOLT_EFORMAT);
    assert_non_null(strstr(err.msg, "does not start with"));
    char path[160];
    snprintf(path, sizeof path, "%s/missing", f->dir);
    assert_int_equal(bootenv_grub.get(path, 1, name, &got, &err), MOLT_EIO);
    assert_null(got);
}

/* fw_env.config naming n copies of a 16 KiB environment; every copy starts with a valid CRC
 * (written by libubootenv itself from an empty environment's defaults). */
static void uboot_setup(fixture *f, int copies, char *config, size_t cap)
{
    snprintf(config, cap, "%s/fw_env.config", f->dir);
    FILE *fp = fopen(config, "w");
    assert_non_null(fp);
    for (int i = 0; i < copies; i++) {
        char env[160];
        snprintf(env, sizeof env, "%s/uboot%d.env", f->dir, i);
        char *zero = calloc(1, 16384);
        assert_non_null(zero);
        write_bytes(env, zero, 16384);
        free(zero);
        fprintf(fp, "%s 0x0 0x4000\n", env);
    }
    fclose(fp);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "printf 'bootlimit=1\\n' > '%s/def' && fw_setenv -c '%s' -f '%s/def' "
             "bootcount 0 2>/dev/null", f->dir, config, f->dir);
    assert_int_equal(system(cmd), 0);
}

static void uboot_round_trip(fixture *f, int copies)
{
    char config[128];
    struct molt_sdk_error err = {0};
    uboot_setup(f, copies, config, sizeof config);
    const char *names[] = {"mender_boot_part", "mender_boot_part_hex", "upgrade_available",
                           "bootcount"};
    const char *values[] = {"3", "3", "1", "0"};
    assert_int_equal(bootenv_uboot.set(config, 4, names, values, &err), 0);
    char *got[4] = {0};
    assert_int_equal(bootenv_uboot.get(config, 4, names, got, &err), 0);
    for (int i = 0; i < 4; i++) {
        assert_non_null(got[i]);
        assert_string_equal(got[i], values[i]);
        free(got[i]);
    }
    /* and fw_printenv, with the same configuration, agrees */
    char cmd[512], out[256];
    snprintf(cmd, sizeof cmd, "fw_printenv -c '%s' -n mender_boot_part 2>/dev/null", config);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof out, p));
    pclose(p);
    assert_string_equal(out, "3\n");
    /* removal */
    const char *unset[] = {NULL};
    assert_int_equal(bootenv_uboot.set(config, 1, names + 2, unset, &err), 0);
    char *gone = NULL;
    assert_int_equal(bootenv_uboot.get(config, 1, names + 2, &gone, &err), 0);
    assert_null(gone);
}

static void test_uboot_single(void **state)
{
    uboot_round_trip(*state, 1);
}

static void test_uboot_redundant(void **state)
{
    uboot_round_trip(*state, 2);
}

static void test_uboot_bad_config(void **state)
{
    fixture *f = *state;
    struct molt_sdk_error err = {0};
    const char *name[] = {"x"};
    char *got = NULL;
    char config[160];
    snprintf(config, sizeof config, "%s/none.config", f->dir);
    assert_int_equal(bootenv_uboot.get(config, 1, name, &got, &err), MOLT_ECONFIG);
    assert_non_null(strstr(err.msg, config));
    assert_null(got);
}

/* Both copies without a valid CRC (blank, or torn): libubootenv's answer is passed on. */
static void test_uboot_no_valid_copy(void **state)
{
    fixture *f = *state;
    struct molt_sdk_error err = {0};
    char config[160], env[160];
    snprintf(config, sizeof config, "%s/fw_env.config", f->dir);
    snprintf(env, sizeof env, "%s/blank.env", f->dir);
    char *zero = calloc(1, 16384);
    assert_non_null(zero);
    write_bytes(env, zero, 16384);
    free(zero);
    FILE *fp = fopen(config, "w");
    assert_non_null(fp);
    fprintf(fp, "%s 0x0 0x4000\n", env);
    fclose(fp);
    const char *name[] = {"mender_boot_part"};
    char *got = NULL;
    assert_int_equal(bootenv_uboot.get(config, 1, name, &got, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, "no copy has a valid CRC (No data available)"));
    assert_null(got);
    /* and nothing is written on a failed set */
    const char *val[] = {"3"};
    assert_int_equal(bootenv_uboot.set(config, 1, name, val, &err), MOLT_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grub_set_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grub_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uboot_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uboot_redundant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uboot_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uboot_no_valid_copy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
