/* SPDX-License-Identifier: Apache-2.0 */
/* U-Boot environment backend: libubootenv with an fw_env.config (one or two copies; with two,
 * libubootenv writes the inactive copy and flips the flag, so an update is atomic). */
#include "bootenv.h"

#include <stdlib.h>
#include <string.h>
#include <libuboot.h>

/* libubootenv context for config, opened (the environment read and its CRC checked). */
static int uboot_open(const char *config, struct uboot_ctx **ret, struct molt_sdk_error *err)
{
    struct uboot_ctx *ctx = NULL;
    if (libuboot_initialize(&ctx, NULL) < 0)
        return rootfs_err(err, MOLT_ENOMEM, "libubootenv: cannot initialize");
    int r = libuboot_read_config(ctx, config);
    if (r < 0) {
        libuboot_exit(ctx);
        return rootfs_err(err, MOLT_ECONFIG, "U-Boot environment: cannot read configuration %s "
                          "(%s)", config, strerror(-r));
    }
    r = libuboot_open(ctx);
    if (r < 0) {
        /* libuboot_open took the global lock (/var/lock/fw_printenv.lock) before it failed to
         * load: libuboot_close releases it, or the next open in this process waits forever. */
        libuboot_close(ctx);
        libuboot_exit(ctx);
        return rootfs_err(err, MOLT_EIO, "U-Boot environment of %s: cannot open it, or no copy "
                          "has a valid CRC (%s)", config, strerror(-r));
    }
    *ret = ctx;
    return 0;
}

static void uboot_close(struct uboot_ctx *ctx)
{
    libuboot_close(ctx);
    libuboot_exit(ctx);
}

static int uboot_get(const char *config, const char *config2, size_t n, const char *const *names, char **values,
                     struct molt_sdk_error *err)
{
    (void)config2;   /* fw_env.config names both copies */
    struct uboot_ctx *ctx = NULL;
    int r = uboot_open(config, &ctx, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        values[i] = libuboot_get_env(ctx, names[i]);   /* malloc'd or NULL */
    uboot_close(ctx);
    return 0;
}

static int uboot_set(const char *config, const char *config2, size_t n, const char *const *names,
                     const char *const *values, struct molt_sdk_error *err)
{
    (void)config2;   /* fw_env.config names both copies */
    struct uboot_ctx *ctx = NULL;
    int r = uboot_open(config, &ctx, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && r == 0; i++) {
        int s = libuboot_set_env(ctx, names[i], values[i]);
        if (s < 0)
            r = rootfs_err(err, MOLT_EIO, "U-Boot environment of %s: cannot set %s=%s (%s)",
                           config, names[i], values[i] ? values[i] : "(unset)", strerror(-s));
    }
    if (r == 0) {
        int s = libuboot_env_store(ctx);
        if (s < 0)
            r = rootfs_err(err, MOLT_EIO, "U-Boot environment of %s: cannot store it (%s)",
                           config, strerror(-s));
    }
    uboot_close(ctx);
    return r;
}

const bootenv_backend bootenv_uboot = {
    .name = "uboot",
    .get = uboot_get,
    .set = uboot_set,
};
