/* SPDX-License-Identifier: Apache-2.0 */
/* The rootfs-image module's private parts: its settings (molt.yaml `modules: rootfs-image:`),
 * which partition runs, the streaming partition writer and the health checks. */
#ifndef ROOTFS_ROOTFS_H
#define ROOTFS_ROOTFS_H

#include <stdbool.h>
#include <stdint.h>
#include <molt/sdk.h>
#include "bootenv.h"

#define ROOTFS_MODULE_NAME "rootfs-image"

/* Index of a partition in rootfs_config.part (A = 0, B = 1); -1 = neither. */
enum { PART_A = 0, PART_B = 1 };

typedef struct rootfs_config {
    const char *part[2];        /* partition_a, partition_b: block devices or image files */
    char part_num[2][16];       /* partition_a_number, partition_b_number: mender_boot_part values */
    const char *root_id[2];     /* root_a, root_b: what root= says for each (default: the paths) */
    const bootenv_backend *env; /* bootloader: uboot (default) | grub */
    const char *env_config;     /* fw_env_config (/etc/fw_env.config) or grubenv (/boot/grub/grubenv) */
    const char *env_config2;    /* grub: grubenv_redundant (the second copy), or NULL */
    const char *var_part, *var_part_hex, *var_upgrade, *var_bootcount;   /* variable names */
    const char *active_source;  /* active_source: "cmdline" (default) | "root-device" |
                                   "bootenv" (test harnesses that cannot reboot) */
    const char *cmdline_file;   /* cmdline_file: /proc/cmdline */
    const char *root_path;      /* root_path: "/" (for root-device) */
    const char *health_commands;   /* health_commands: '\n'-separated shell commands, or NULL */
    const char *health_units;      /* health_units: '\n'-separated systemd units, or NULL */
    const char *systemctl;         /* systemctl: "systemctl" */
    int health_deadline;           /* health_deadline: seconds, default 120 */
    bool verify_write;             /* verify_write: read the partition back after writing */
    int64_t sync_interval;         /* sync_interval_mib: MiB between write-back waits (64) */
} rootfs_config;

/* Read the settings through host->config_get (strings stay the host's). MOLT_ECONFIG with a
 * message naming the setting when one is missing or wrong. */
int rootfs_config_load(const struct molt_host_api *host, rootfs_config *cfg,
                       struct molt_sdk_error *err);

/* The partition the running system booted from (PART_A or PART_B) in *ret; MOLT_ENOTFOUND when
 * it is neither (the module then refuses to write anything). */
int rootfs_active_partition(const rootfs_config *cfg, int *ret, struct molt_sdk_error *err);

/* The size in bytes of a partition (a block device's size, an image file's length). */
int rootfs_partition_size(const char *path, int64_t *ret, struct molt_sdk_error *err);

/* Download: stream the host's current payload file (size bytes) into the partition at path in
 * one pass, syncing every cfg->sync_interval bytes and fsync'ing at the end; with verify, read
 * it back and compare. Refuses (before writing) a file larger than the partition. */
int rootfs_write_partition(const struct molt_host_api *host, const rootfs_config *cfg,
                           const char *path, int64_t size, struct molt_sdk_error *err);

/* Test-only: SIGKILL molt after this many bytes of the partition were written (a power cut
 * inside the write, full image or delta). Never set on a device. */
#define ROOTFS_KILL_KNOB "MOLT_ROOTFS_TEST_KILL_AFTER"

/* Wait for the write-back of [off, off+len) of fd (path for messages) and drop it from the
 * page cache (pages still mapped by the caller stay). */
int rootfs_settle(int fd, const char *path, int64_t off, int64_t len, struct molt_sdk_error *err);

/* Run the health checks (commands and units) until all pass or cfg->health_deadline seconds
 * passed; MOLT_ETIMEOUT/MOLT_EMODULE naming the check that did not pass. */
int rootfs_health_check(const struct molt_host_api *host, const rootfs_config *cfg,
                        struct molt_sdk_error *err);

#endif
