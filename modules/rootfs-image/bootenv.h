/* SPDX-License-Identifier: Apache-2.0 */
/* The bootloader environment interface of the rootfs-image module: one small table of functions
 * per backend (bootenv_uboot.c, bootenv_grub.c), so another bootloader is one more file. */
#ifndef ROOTFS_BOOTENV_H
#define ROOTFS_BOOTENV_H

#include <stddef.h>
#include <molt/sdk.h>

/* Longest variable value the module reads or writes (partition numbers, counters). */
#define BOOTENV_VALUE_MAX 256

typedef struct bootenv_backend {
    const char *name;   /* "uboot", "grub": the module's `bootloader` setting */
    /* Read n variables of the environment described by config (the backend's file: fw_env.config
     * for U-Boot, the grubenv file for GRUB) and config2 (GRUB: the redundant copy, or NULL;
     * U-Boot: unused, fw_env.config names the copies): values[i] is set to a malloc'd copy of
     * names[i]'s value, or NULL when it is not set. On failure nothing is returned (every
     * values[i] NULL) and err names the file and the reason. */
    int (*get)(const char *config, const char *config2, size_t n, const char *const *names,
               char **values, struct molt_sdk_error *err);
    /* Set n variables in ONE durable, atomic update of the environment (after a power cut it
     * holds all of the old values or all of the new ones, as the bootloader reads it: written
     * where the bootloader reads, not only where Linux does); a NULL value removes the variable.
     * Other variables are kept. */
    int (*set)(const char *config, const char *config2, size_t n, const char *const *names,
               const char *const *values, struct molt_sdk_error *err);
} bootenv_backend;

extern const bootenv_backend bootenv_uboot;
extern const bootenv_backend bootenv_grub;

/* The backend called name, or NULL. */
const bootenv_backend *bootenv_find(const char *name);

/* Set err's code and message; returns code (libmolt-sdk's setter, under a short name). */
#define rootfs_err molt_sdk_err_set

#endif
