/* SPDX-License-Identifier: Apache-2.0 */
/* The rootfs-image module's settings, read with the host's config_get from molt.yaml
 * (`modules: rootfs-image:`), with Mender's variable names as defaults. */
#include "rootfs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const bootenv_backend *bootenv_find(const char *name)
{
    static const bootenv_backend *const all[] = {&bootenv_uboot, &bootenv_grub};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

static const char *get_or(const struct molt_host_api *host, const char *key, const char *dflt)
{
    const char *v = host->config_get(host, key);
    return v && *v ? v : dflt;
}

/* A setting that is a whole number in [min, max]. */
static int get_int(const struct molt_host_api *host, const char *key, long dflt, long min,
                   long max, long *ret, struct molt_sdk_error *err)
{
    const char *v = host->config_get(host, key);
    if (!v || !*v) {
        *ret = dflt;
        return 0;
    }
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*end || n < min || n > max)
        return rootfs_err(err, MOLT_ECONFIG, "modules.rootfs-image.%s: expected a whole number "
                          "from %ld to %ld, got \"%s\"", key, min, max, v);
    *ret = n;
    return 0;
}

/* "yes/true/1" or "no/false/0". */
static int get_bool(const struct molt_host_api *host, const char *key, bool *ret,
                    struct molt_sdk_error *err)
{
    const char *v = host->config_get(host, key);
    if (!v || !*v || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0")) {
        *ret = false;
        return 0;
    }
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1")) {
        *ret = true;
        return 0;
    }
    return rootfs_err(err, MOLT_ECONFIG, "modules.rootfs-image.%s: expected true or false, got "
                      "\"%s\"", key, v);
}

/* The partition number for mender_boot_part: the setting, else the path's trailing digits
 * (/dev/mmcblk0p2 -> 2), else Mender's usual 2 (A) and 3 (B). */
static int part_number(const struct molt_host_api *host, rootfs_config *cfg, int i,
                       struct molt_sdk_error *err)
{
    const char *key = i == PART_A ? "partition_a_number" : "partition_b_number";
    long n = 0;
    int r = get_int(host, key, 0, 0, 255, &n, err);
    if (r < 0)
        return r;
    if (n == 0) {
        const char *p = cfg->part[i], *end = p + strlen(p), *d = end;
        while (d > p && d[-1] >= '0' && d[-1] <= '9')
            d--;
        n = d < end && end - d <= 3 ? strtol(d, NULL, 10) : 0;
        if (n <= 0 || n > 255)
            n = i == PART_A ? 2 : 3;
    }
    snprintf(cfg->part_num[i], sizeof cfg->part_num[i], "%ld", n);
    return 0;
}

int rootfs_config_load(const struct molt_host_api *host, rootfs_config *cfg,
                       struct molt_sdk_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->part[PART_A] = get_or(host, "partition_a", NULL);
    cfg->part[PART_B] = get_or(host, "partition_b", NULL);
    if (!cfg->part[PART_A] || !cfg->part[PART_B])
        return rootfs_err(err, MOLT_ECONFIG, "modules.rootfs-image: partition_a and partition_b "
                          "must both be set (the A and B root partitions)");
    if (strcmp(cfg->part[PART_A], cfg->part[PART_B]) == 0)
        return rootfs_err(err, MOLT_ECONFIG, "modules.rootfs-image: partition_a and partition_b "
                          "are the same (%s)", cfg->part[PART_A]);
    int r;
    if ((r = part_number(host, cfg, PART_A, err)) < 0 ||
        (r = part_number(host, cfg, PART_B, err)) < 0)
        return r;
    if (strcmp(cfg->part_num[PART_A], cfg->part_num[PART_B]) == 0)
        return rootfs_err(err, MOLT_ECONFIG, "modules.rootfs-image: partitions A and B have the "
                          "same number %s (set partition_a_number / partition_b_number)",
                          cfg->part_num[PART_A]);
    cfg->root_id[PART_A] = get_or(host, "root_a", cfg->part[PART_A]);
    cfg->root_id[PART_B] = get_or(host, "root_b", cfg->part[PART_B]);
    const char *bl = get_or(host, "bootloader", "uboot");
    cfg->env = bootenv_find(bl);
    if (!cfg->env)
        return rootfs_err(err, MOLT_ECONFIG, "modules.rootfs-image.bootloader: expected uboot "
                          "or grub, got \"%s\"", bl);
    cfg->env_config = cfg->env == &bootenv_grub ? get_or(host, "grubenv", "/boot/grub/grubenv")
                                                : get_or(host, "fw_env_config",
                                                         "/etc/fw_env.config");
    cfg->env_config2 = cfg->env == &bootenv_grub ? get_or(host, "grubenv_redundant", NULL) : NULL;
    if (cfg->env_config2 && strcmp(cfg->env_config2, cfg->env_config) == 0)
        return rootfs_err(err, MOLT_ECONFIG, "modules.rootfs-image: grubenv and grubenv_redundant "
                          "are the same file (%s)", cfg->env_config);
    cfg->var_part = get_or(host, "var_boot_part", "mender_boot_part");
    cfg->var_part_hex = get_or(host, "var_boot_part_hex", "mender_boot_part_hex");
    cfg->var_upgrade = get_or(host, "var_upgrade_available", "upgrade_available");
    cfg->var_bootcount = get_or(host, "var_bootcount", "bootcount");
    cfg->active_source = get_or(host, "active_source", "cmdline");
    if (strcmp(cfg->active_source, "cmdline") != 0 &&
        strcmp(cfg->active_source, "root-device") != 0 &&
        strcmp(cfg->active_source, "bootenv") != 0)
        return rootfs_err(err, MOLT_ECONFIG, "modules.rootfs-image.active_source: expected "
                          "cmdline, root-device or bootenv, got \"%s\"", cfg->active_source);
    cfg->cmdline_file = get_or(host, "cmdline_file", "/proc/cmdline");
    cfg->root_path = get_or(host, "root_path", "/");
    cfg->health_commands = get_or(host, "health_commands", NULL);
    cfg->health_units = get_or(host, "health_units", NULL);
    cfg->systemctl = get_or(host, "systemctl", "systemctl");
    long deadline = 0, sync_mib = 0;
    if ((r = get_int(host, "health_deadline", 120, 1, 86400, &deadline, err)) < 0 ||
        (r = get_int(host, "sync_interval_mib", 64, 1, 4096, &sync_mib, err)) < 0 ||
        (r = get_bool(host, "verify_write", &cfg->verify_write, err)) < 0)
        return r;
    cfg->health_deadline = (int)deadline;
    cfg->sync_interval = (int64_t)sync_mib << 20;
    return 0;
}
