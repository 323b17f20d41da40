/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the bootloader environment backends: the GRUB block (shape checks, other
 * variables kept, removal, overflow refused with the file unchanged, values it cannot hold,
 * rewritten in place, two copies with sequence numbers: the newer valid copy wins, a torn or
 * missing write of either copy leaves a whole one) and U-Boot through libubootenv on an
 * environment file (one and two copies). */
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
    assert_int_equal(bootenv_grub.set(f->path, NULL, 3, names, values, &err), 0);
    char buf[2048];
    assert_int_equal(read_bytes(f->path, buf, sizeof buf), 1024);
    const char *want = HDR "other=kept\nmender_boot_part=3\nupgrade_available=1\n";
    assert_memory_equal(buf, want, strlen(want));
    for (size_t i = strlen(want); i < 1024; i++)
        assert_int_equal(buf[i], '#');

    const char *get_names[] = {"mender_boot_part", "other", "last", "mender_boot"};
    char *got[4] = {0};
    assert_int_equal(bootenv_grub.get(f->path, NULL, 4, get_names, got, &err), 0);
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
    assert_int_equal(bootenv_grub.set(f->path, NULL, 1, name, bigv, &err), MOLT_ESPACE);
    assert_non_null(strstr(err.msg, "do not fit in 1024 bytes"));
    assert_int_equal(read_bytes(f->path, after, sizeof after), 1024);
    assert_memory_equal(before, after, 1024);

    /* values GRUB would have to escape */
    const char *nl[] = {"a\nb"};
    assert_int_equal(bootenv_grub.set(f->path, NULL, 1, name, nl, &err), MOLT_EINVAL);
    const char *eqname[] = {"a=b"};
    const char *one[] = {"1"};
    assert_int_equal(bootenv_grub.set(f->path, NULL, 1, eqname, one, &err), MOLT_EINVAL);

    /* not a GRUB block: wrong size, wrong header */
    write_bytes(f->path, HDR, strlen(HDR));
    assert_int_equal(bootenv_grub.get(f->path, NULL, 1, name, &got, &err), MOLT_EFORMAT);
    assert_non_null(strstr(err.msg, "expected 1024 bytes, got 25"));
    grub_block(f->path, "# Not GRUB\n");
    assert_int_equal(bootenv_grub.get(f->path, NULL, 1, name, &got, &err), MOLT_EFORMAT);
    assert_non_null(strstr(err.msg, "does not start with"));
    char path[160];
    snprintf(path, sizeof path, "%s/missing", f->dir);
    assert_int_equal(bootenv_grub.get(path, NULL, 1, name, &got, &err), MOLT_EIO);
    assert_null(got);
}

/* The block is rewritten in place: same inode, same size. A replacement by rename (a new inode
 * whose directory entry sits in the ext4 journal, which GRUB does not replay) leaves GRUB reading
 * the old block after a power cut. */
static void test_grub_in_place(void **state)
{
    fixture *f = *state;
    struct molt_sdk_error err = {0};
    grub_block(f->path, HDR "mender_boot_part=2\n");
    struct stat before, after;
    assert_int_equal(stat(f->path, &before), 0);
    const char *names[] = {"mender_boot_part"};
    const char *values[] = {"3"};
    assert_int_equal(bootenv_grub.set(f->path, NULL, 1, names, values, &err), 0);
    assert_int_equal(stat(f->path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(after.st_size, 1024);
    char buf[1024];
    read_bytes(f->path, buf, sizeof buf);
    assert_memory_equal(buf, HDR "mender_boot_part=3\n", strlen(HDR "mender_boot_part=3\n"));
    /* a file that is not 1024 bytes cannot be rewritten in place: refused, untouched */
    write_bytes(f->path, HDR, strlen(HDR));
    assert_int_equal(bootenv_grub.set(f->path, NULL, 1, names, values, &err), MOLT_EFORMAT);
    assert_int_equal(stat(f->path, &after), 0);
    assert_int_equal(after.st_size, (off_t)strlen(HDR));
}

/* Two copies: the valid copy with the higher molt_env_seq is the environment (copy 1 on a tie),
 * a set writes seq+1 into the other copy first, then into the current one. */
static void test_grub_two_copies(void **state)
{
    fixture *f = *state;
    struct molt_sdk_error err = {0};
    char p2[160], buf1[1024], buf2[1024];
    snprintf(p2, sizeof p2, "%s/env2", f->dir);
    const char *names[] = {"mender_boot_part", "upgrade_available"};
    char *got[2] = {0};

    /* copy 2 newer: it wins */
    grub_block(f->path, HDR "molt_env_seq=4\nmender_boot_part=2\n");
    grub_block(p2, HDR "molt_env_seq=5\nmender_boot_part=3\n");
    assert_int_equal(bootenv_grub.get(f->path, p2, 1, names, got, &err), 0);
    assert_string_equal(got[0], "3");
    free(got[0]);
    /* a tie: copy 1 (GRUB's save_env writes copy 1 first, with the same number) */
    grub_block(p2, HDR "molt_env_seq=4\nmender_boot_part=3\n");
    assert_int_equal(bootenv_grub.get(f->path, p2, 1, names, got, &err), 0);
    assert_string_equal(got[0], "2");
    free(got[0]);

    /* set: both copies get seq 5 and the same block; the other variables kept */
    const char *values[] = {"3", "1"};
    assert_int_equal(bootenv_grub.set(f->path, p2, 2, names, values, &err), 0);
    read_bytes(f->path, buf1, sizeof buf1);
    read_bytes(p2, buf2, sizeof buf2);
    assert_memory_equal(buf1, buf2, 1024);
    const char *want = HDR "molt_env_seq=5\nmender_boot_part=3\nupgrade_available=1\n";
    assert_memory_equal(buf1, want, strlen(want));

    /* a torn copy 1 (header lost): copy 2 is the environment; the next set heals copy 1 */
    memset(buf1, 'x', 10);
    write_bytes(f->path, buf1, sizeof buf1);
    assert_int_equal(bootenv_grub.get(f->path, p2, 2, names, got, &err), 0);
    assert_string_equal(got[0], "3");
    assert_string_equal(got[1], "1");
    free(got[0]);
    free(got[1]);
    const char *values2[] = {"3", "0"};
    assert_int_equal(bootenv_grub.set(f->path, p2, 2, names, values2, &err), 0);
    read_bytes(f->path, buf1, sizeof buf1);
    read_bytes(p2, buf2, sizeof buf2);
    assert_memory_equal(buf1, buf2, 1024);
    want = HDR "molt_env_seq=6\nmender_boot_part=3\nupgrade_available=0\n";
    assert_memory_equal(buf1, want, strlen(want));

    /* a copy without a sequence number is not valid; neither valid: an error naming both */
    grub_block(f->path, HDR "mender_boot_part=2\n");
    assert_int_equal(bootenv_grub.get(f->path, p2, 1, names, got, &err), 0);
    assert_string_equal(got[0], "3");
    free(got[0]);
    grub_block(p2, HDR "molt_env_seq=x\n");
    got[0] = NULL;
    assert_int_equal(bootenv_grub.get(f->path, p2, 1, names, got, &err), MOLT_EFORMAT);
    assert_non_null(strstr(err.msg, "no valid copy"));
    assert_non_null(strstr(err.msg, p2));
    assert_null(got[0]);

    /* molt_env_seq is the backend's own */
    grub_block(f->path, HDR "molt_env_seq=1\n");
    const char *seqname[] = {"molt_env_seq"};
    const char *one[] = {"9"};
    assert_int_equal(bootenv_grub.set(f->path, p2, 1, seqname, one, &err), MOLT_EINVAL);
}

/* The write order: a set that stops after its first write (a power cut; simulated by a second
 * write that fails: copy 1 is a symbolic link, which is read but never written through) leaves
 * the NEW block in the copy written first, with the higher number, and the current copy
 * untouched: the environment is the new one. When the first write is the one that fails,
 * nothing changed. */
static void test_grub_cut_between_copies(void **state)
{
    fixture *f = *state;
    struct molt_sdk_error err = {0};
    char p1[160], p2[160];
    snprintf(p1, sizeof p1, "%s/env1", f->dir);
    snprintf(p2, sizeof p2, "%s/env2", f->dir);
    const char *names[] = {"mender_boot_part"};
    const char *values[] = {"3"};
    char *got = NULL;

    /* copy 1 current (tie): copy 2 is written first, then copy 1 fails */
    grub_block(f->path, HDR "molt_env_seq=7\nmender_boot_part=2\n");
    grub_block(p2, HDR "molt_env_seq=7\nmender_boot_part=2\n");
    assert_int_equal(symlink(f->path, p1), 0);
    assert_int_equal(bootenv_grub.set(p1, p2, 1, names, values, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, p1));
    assert_int_equal(bootenv_grub.get(p1, p2, 1, names, &got, &err), 0);
    assert_string_equal(got, "3");   /* copy 2: seq 8, the new block */
    free(got);
    char buf[1024];
    read_bytes(f->path, buf, sizeof buf);
    assert_memory_equal(buf, HDR "molt_env_seq=7\nmender_boot_part=2\n",
                        strlen(HDR "molt_env_seq=7\nmender_boot_part=2\n"));

    /* now copy 2 is current: copy 1 is written first; that write fails and nothing changed */
    const char *values2[] = {"2"};
    char before[1024], after[1024];
    read_bytes(p2, before, sizeof before);
    assert_int_equal(bootenv_grub.set(p1, p2, 1, names, values2, &err), MOLT_EIO);
    read_bytes(p2, after, sizeof after);
    assert_memory_equal(before, after, 1024);
    got = NULL;
    assert_int_equal(bootenv_grub.get(p1, p2, 1, names, &got, &err), 0);
    assert_string_equal(got, "3");
    free(got);
}

/* With two copies the text stays in the first 512 bytes: a write torn at the sector boundary
 * then gives the old or the new block (the second sector is '#' in both). */
static void test_grub_two_copies_first_sector(void **state)
{
    fixture *f = *state;
    struct molt_sdk_error err = {0};
    char p2[160], before[1024], after[1024];
    snprintf(p2, sizeof p2, "%s/env2", f->dir);
    grub_block(f->path, HDR "molt_env_seq=1\n");
    grub_block(p2, HDR "molt_env_seq=1\n");
    read_bytes(f->path, before, sizeof before);
    char big[500];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *name[] = {"k"};
    const char *bigv[] = {big};
    assert_int_equal(bootenv_grub.set(f->path, p2, 1, name, bigv, &err), MOLT_ESPACE);
    assert_non_null(strstr(err.msg, "first 512 bytes"));
    read_bytes(f->path, after, sizeof after);
    assert_memory_equal(before, after, 1024);
    read_bytes(p2, after, sizeof after);
    assert_memory_equal(before, after, 1024);
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
    assert_int_equal(bootenv_uboot.set(config, NULL, 4, names, values, &err), 0);
    char *got[4] = {0};
    assert_int_equal(bootenv_uboot.get(config, NULL, 4, names, got, &err), 0);
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
    assert_int_equal(bootenv_uboot.set(config, NULL, 1, names + 2, unset, &err), 0);
    char *gone = NULL;
    assert_int_equal(bootenv_uboot.get(config, NULL, 1, names + 2, &gone, &err), 0);
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
    assert_int_equal(bootenv_uboot.get(config, NULL, 1, name, &got, &err), MOLT_ECONFIG);
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
    assert_int_equal(bootenv_uboot.get(config, NULL, 1, name, &got, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, "no copy has a valid CRC (No data available)"));
    assert_null(got);
    /* and nothing is written on a failed set */
    const char *val[] = {"3"};
    assert_int_equal(bootenv_uboot.set(config, NULL, 1, name, val, &err), MOLT_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grub_set_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grub_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grub_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grub_two_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grub_cut_between_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grub_two_copies_first_sector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uboot_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uboot_redundant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uboot_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uboot_no_valid_copy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
