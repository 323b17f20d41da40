/* SPDX-License-Identifier: Apache-2.0 */
/* Which partition is running: the root= of the kernel command line (a file, /proc/cmdline by
 * default, so tests and the simulated device can supply it), or the device behind /. */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define CMDLINE_MAX 8192

/* True when the root= value names partition i (its root_id, or the same file as its path). */
static bool root_is(const rootfs_config *cfg, const char *value, int i)
{
    if (strcmp(value, cfg->root_id[i]) == 0 || strcmp(value, cfg->part[i]) == 0)
        return true;
    struct stat a, b;
    if (value[0] != '/' || stat(value, &a) < 0 || stat(cfg->part[i], &b) < 0)
        return false;
    if (S_ISBLK(a.st_mode) && S_ISBLK(b.st_mode))
        return a.st_rdev == b.st_rdev;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int from_cmdline(const rootfs_config *cfg, int *ret, struct molt_sdk_error *err)
{
    char buf[CMDLINE_MAX + 1];
    FILE *f = fopen(cfg->cmdline_file, "r");
    if (!f)
        return molt_sdk_err_errno(err, errno, "cannot read the kernel command line %s",
                                  cfg->cmdline_file);
    size_t n = fread(buf, 1, CMDLINE_MAX, f);
    fclose(f);
    buf[n] = '\0';
    const char *value = NULL;
    for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save); tok;
         tok = strtok_r(NULL, " \t\n", &save))
        if (strncmp(tok, "root=", 5) == 0)
            value = tok + 5;   /* the last root= wins, as for the kernel */
    if (!value)
        return rootfs_err(err, MOLT_ENOTFOUND, "the kernel command line %s has no root=",
                          cfg->cmdline_file);
    for (int i = PART_A; i <= PART_B; i++) {
        if (root_is(cfg, value, i)) {
            *ret = i;
            return 0;
        }
    }
    return rootfs_err(err, MOLT_ENOTFOUND, "the running root %s (from %s) is neither partition "
                      "A (%s) nor B (%s)", value, cfg->cmdline_file, cfg->root_id[PART_A],
                      cfg->root_id[PART_B]);
}

static int from_root_device(const rootfs_config *cfg, int *ret, struct molt_sdk_error *err)
{
    struct stat root;
    if (stat(cfg->root_path, &root) < 0)
        return molt_sdk_err_errno(err, errno, "cannot stat %s", cfg->root_path);
    for (int i = PART_A; i <= PART_B; i++) {
        struct stat p;
        if (stat(cfg->part[i], &p) == 0 && S_ISBLK(p.st_mode) && p.st_rdev == root.st_dev) {
            *ret = i;
            return 0;
        }
    }
    return rootfs_err(err, MOLT_ENOTFOUND, "the device behind %s (%u:%u) is neither partition "
                      "A (%s) nor B (%s)", cfg->root_path, major(root.st_dev),
                      minor(root.st_dev), cfg->part[PART_A], cfg->part[PART_B]);
}

/* For harnesses that only simulate the reboot (the conformance kit): the partition the
 * environment boots is taken as the running one, as if every boot succeeded. Never on a device:
 * it cannot see a boot that failed. */
static int from_bootenv(const rootfs_config *cfg, int *ret, struct molt_sdk_error *err)
{
    const char *names[] = {cfg->var_part};
    char *value = NULL;
    int r = cfg->env->get(cfg->env_config, cfg->env_config2, 1, names, &value, err);
    if (r < 0)
        return r;
    for (int i = PART_A; i <= PART_B && value; i++) {
        if (strcmp(value, cfg->part_num[i]) == 0) {
            free(value);
            *ret = i;
            return 0;
        }
    }
    r = rootfs_err(err, MOLT_ENOTFOUND, "%s=%s in %s is neither partition A (%s) nor B (%s)",
                   cfg->var_part, value ? value : "(unset)", cfg->env_config,
                   cfg->part_num[PART_A], cfg->part_num[PART_B]);
    free(value);
    return r;
}

int rootfs_active_partition(const rootfs_config *cfg, int *ret, struct molt_sdk_error *err)
{
    if (strcmp(cfg->active_source, "root-device") == 0)
        return from_root_device(cfg, ret, err);
    if (strcmp(cfg->active_source, "bootenv") == 0)
        return from_bootenv(cfg, ret, err);
    return from_cmdline(cfg, ret, err);
}

int rootfs_partition_size(const char *path, int64_t *ret, struct molt_sdk_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return molt_sdk_err_errno(err, errno, "partition %s: cannot open it", path);
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = molt_sdk_err_errno(err, errno, "partition %s: cannot stat it", path);
    } else if (S_ISBLK(st.st_mode)) {
        uint64_t bytes = 0;
        if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
            r = molt_sdk_err_errno(err, errno, "partition %s: cannot get its size", path);
        else
            *ret = (int64_t)bytes;
    } else if (S_ISREG(st.st_mode)) {
        *ret = (int64_t)st.st_size;
    } else {
        r = rootfs_err(err, MOLT_EINVAL, "partition %s: neither a block device nor a file", path);
    }
    close(fd);
    return r;
}
