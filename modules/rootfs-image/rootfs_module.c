/* SPDX-License-Identifier: Apache-2.0 */
/* The rootfs-image native module: A/B system updates. Download streams the image into the
 * inactive partition, ArtifactInstall arms a trial boot of it in the bootloader environment,
 * the device reboots (Automatic), ArtifactVerifyReboot checks the new partition runs and is
 * healthy, ArtifactCommit disarms the trial; ArtifactRollback points the bootloader back.
 * What must survive reboots is in the module's key-value store:
 *   old, new     partition letters ("A"/"B") of the running system and of the target
 *   downloaded   "1" once the image was written and fsync'd
 *   rollback     "1" once ArtifactRollback began (NeedsArtifactReboot then answers for it) */
#include "delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE_VERSION "1.0.0"

typedef struct rootfs_state {
    const struct molt_host_api *host;
    rootfs_config cfg;
} rootfs_state;

static const char letter[2] = {'A', 'B'};

static int init(const struct molt_host_api *host, void **ret_state)
{
    rootfs_state *s = calloc(1, sizeof *s);
    if (!s)
        return MOLT_ENOMEM;
    s->host = host;
    *ret_state = s;
    return 0;
}

static void fini(void *st)
{
    free(st);
}

/* Report err to the host and return its code. */
static int fail(rootfs_state *s, const struct molt_sdk_error *err)
{
    return molt_sdk_fail(s->host, err);
}

/* Load the settings; every state starts here (a state may be the first call of a process). */
static int setup(rootfs_state *s, struct molt_sdk_error *err)
{
    return rootfs_config_load(s->host, &s->cfg, err);
}

/* kv "old"/"new" as a partition index, or MOLT_ENOTFOUND. */
static int kv_part(rootfs_state *s, const char *key, int *ret, struct molt_sdk_error *err)
{
    char v[8];
    size_t len = 0;
    int r = s->host->kv_get(s->host, key, v, sizeof v, &len);
    if (r < 0)
        return rootfs_err(err, r, "key-value store: %s is %s", key,
                          r == MOLT_ENOTFOUND ? "not set (no download recorded)" : "unreadable");
    if (len != 1 || (v[0] != 'A' && v[0] != 'B'))
        return rootfs_err(err, MOLT_ECORRUPT, "key-value store: %s holds \"%.*s\", expected A "
                          "or B", key, (int)len, v);
    *ret = v[0] == 'A' ? PART_A : PART_B;
    return 0;
}

static int kv_put(rootfs_state *s, const char *key, const char *value,
                  struct molt_sdk_error *err)
{
    int r = s->host->kv_set(s->host, key, value, strlen(value));
    if (r < 0)
        return rootfs_err(err, r, "key-value store: cannot set %s", key);
    return 0;
}

static bool kv_flag(rootfs_state *s, const char *key)
{
    char v[4];
    size_t len = 0;
    return s->host->kv_get(s->host, key, v, sizeof v, &len) == 0 && len == 1 && v[0] == '1';
}

/* "downloaded": the inactive partition holds the whole image, durably. A deployment value where
 * the host keeps them (ABI 1.2): saved with the record of state ArtifactInstall, which is durable
 * before artifact_install runs, so it costs no write of its own. In the key-value store on an
 * older host. */
static int mark_downloaded(rootfs_state *s, struct molt_sdk_error *err)
{
    const struct molt_host_api *h = s->host;
    if (!MOLT_HOST_HAS(h, dep_set))
        return kv_put(s, "downloaded", "1", err);
    int r = h->dep_set(h, "downloaded", "1", 1);
    if (r < 0)
        return rootfs_err(err, r, "deployment values: cannot set downloaded");
    return 0;
}

/* The mark of mark_downloaded. artifact_install follows download in the same process (a
 * deployment resumed in ArtifactInstall takes the rollback path), so the mark is where this
 * module's download put it. */
static bool downloaded(rootfs_state *s)
{
    const struct molt_host_api *h = s->host;
    if (!MOLT_HOST_HAS(h, dep_get))
        return kv_flag(s, "downloaded");
    char v[4];
    size_t len = 0;
    return h->dep_get(h, "downloaded", v, sizeof v, &len) == 0 && len == 1 && v[0] == '1';
}

/* Point the bootloader at partition i: boot part and its hex, upgrade_available (1 = a trial
 * boot the bootloader falls back from), bootcount 0; one atomic environment update. */
static int env_point(rootfs_state *s, int i, bool trial, struct molt_sdk_error *err)
{
    const rootfs_config *c = &s->cfg;
    char hex[16];
    snprintf(hex, sizeof hex, "%lx", strtol(c->part_num[i], NULL, 10));
    const char *names[] = {c->var_part, c->var_part_hex, c->var_upgrade, c->var_bootcount};
    const char *values[] = {c->part_num[i], hex, trial ? "1" : "0", "0"};
    int r = c->env->set(c->env_config, c->env_config2, 4, names, values, err);
    if (r == 0)
        molt_sdk_log_info(s->host, "bootloader (%s): %s=%s %s=%s %s=%s %s=0", c->env->name,
                          names[0], values[0], names[1], values[1], names[2], values[2],
                          names[3]);
    return r;
}

/* Whether the environment boots partition i without a trial (boot part = i, upgrade_available
 * not 1). */
static int env_settled_on(rootfs_state *s, int i, bool *ret, struct molt_sdk_error *err)
{
    const rootfs_config *c = &s->cfg;
    const char *names[] = {c->var_part, c->var_upgrade};
    char *values[2] = {NULL, NULL};
    int r = c->env->get(c->env_config, c->env_config2, 2, names, values, err);
    if (r < 0)
        return r;
    *ret = values[0] && strcmp(values[0], c->part_num[i]) == 0 &&
           !(values[1] && strcmp(values[1], "1") == 0);
    free(values[0]);
    free(values[1]);
    return 0;
}

static int download(void *st)
{
    rootfs_state *s = st;
    const struct molt_host_api *h = s->host;
    struct molt_sdk_error err = {0};
    int active = -1, r;
    if ((r = setup(s, &err)) < 0 || (r = rootfs_active_partition(&s->cfg, &active, &err)) < 0)
        return fail(s, &err);
    int target = 1 - active;
    char a[2] = {letter[active], 0}, t[2] = {letter[target], 0};
    h->kv_delete(h, "downloaded");
    h->kv_delete(h, "rollback");
    if ((r = kv_put(s, "old", a, &err)) < 0 || (r = kv_put(s, "new", t, &err)) < 0)
        return fail(s, &err);
    /* Never let the bootloader try the partition being written: an earlier trial left armed
     * (or an environment pointing elsewhere) is settled on the running system first. */
    bool settled = false;
    if ((r = env_settled_on(s, active, &settled, &err)) < 0)
        return fail(s, &err);
    if (!settled) {
        molt_sdk_log_warning(h, "the bootloader environment did not boot the running partition "
                             "%c without a trial; setting it back before writing %c",
                             letter[active], letter[target]);
        if ((r = env_point(s, active, false, &err)) < 0)
            return fail(s, &err);
    }
    const char *name = NULL;
    int64_t size = 0;
    r = h->next_file(h, &name, &size);
    if (r <= 0) {
        if (r == 0)
            h->error(h, "the rootfs-image payload has no file (expected one image)");
        return r < 0 ? r : MOLT_EFORMAT;
    }
    molt_sdk_log_info(h, "writing %s (%lld bytes) to partition %c (%s); running %c",
                      name, (long long)size, letter[target], s->cfg.part[target],
                      letter[active]);
    /* rootfs-delta (delta_apply.c): rebuilt from the running partition; the rest is shared */
    if (strcmp(h->payload_type(h), ROOTFS_DELTA_TYPE) == 0)
        r = rootfs_delta_write(h, &s->cfg, s->cfg.part[active], s->cfg.part[target], size, &err);
    else
        r = rootfs_write_partition(h, &s->cfg, s->cfg.part[target], size, &err);
    if (r < 0)
        return fail(s, &err);
    r = h->next_file(h, &name, &size);
    if (r != 0) {
        if (r == 1)
            h->error(h, "the rootfs-image payload has more than one file (%s): expected one "
                        "image", name);
        return r < 0 ? r : MOLT_EFORMAT;
    }
    if ((r = mark_downloaded(s, &err)) < 0)
        return fail(s, &err);
    return 0;
}

static int artifact_install(void *st)
{
    rootfs_state *s = st;
    struct molt_sdk_error err = {0};
    int target = -1, active = -1, r;
    if ((r = setup(s, &err)) < 0 || (r = kv_part(s, "new", &target, &err)) < 0 ||
        (r = rootfs_active_partition(&s->cfg, &active, &err)) < 0)
        return fail(s, &err);
    if (!downloaded(s)) {
        s->host->error(s->host, "partition %c was not completely written: nothing to install",
                       letter[target]);
        return MOLT_ESTATE;
    }
    if (active == target) {
        s->host->error(s->host, "partition %c, the target, is the running one", letter[target]);
        return MOLT_ESTATE;
    }
    if ((r = env_point(s, target, true, &err)) < 0)
        return fail(s, &err);
    return 0;
}

static int needs_artifact_reboot(void *st)
{
    rootfs_state *s = st;
    struct molt_sdk_error err = {0};
    int target = -1, active = -1, r;
    if (!kv_flag(s, "rollback"))
        return MOLT_MODULE_REBOOT_AUTOMATIC;
    /* On the rollback path: a reboot only if the new system is the one running. */
    if ((r = setup(s, &err)) < 0 || (r = kv_part(s, "new", &target, &err)) < 0)
        return fail(s, &err);
    if (rootfs_active_partition(&s->cfg, &active, &err) < 0) {
        molt_sdk_log_warning(s->host, "%s; rebooting into the restored partition", err.msg);
        return MOLT_MODULE_REBOOT_AUTOMATIC;
    }
    return active == target ? MOLT_MODULE_REBOOT_AUTOMATIC : MOLT_MODULE_REBOOT_NO;
}

/* Fail unless partition `want` (from kv key) is the one running. */
static int expect_running(rootfs_state *s, const char *key, const char *what,
                          struct molt_sdk_error *err)
{
    int want = -1, active = -1, r;
    if ((r = setup(s, err)) < 0 || (r = kv_part(s, key, &want, err)) < 0 ||
        (r = rootfs_active_partition(&s->cfg, &active, err)) < 0)
        return r;
    if (active != want)
        return rootfs_err(err, MOLT_EMODULE, "running partition %c (%s), expected %c: %s",
                          letter[active], s->cfg.part[active], letter[want], what);
    return 0;
}

static int artifact_verify_reboot(void *st)
{
    rootfs_state *s = st;
    struct molt_sdk_error err = {0};
    int r = expect_running(s, "new", "the new system did not boot (the bootloader fell back "
                           "to the old one)", &err);
    if (r == 0)
        r = rootfs_health_check(s->host, &s->cfg, &err);
    return r < 0 ? fail(s, &err) : 0;
}

static int artifact_commit(void *st)
{
    rootfs_state *s = st;
    struct molt_sdk_error err = {0};
    int target = -1, r;
    if ((r = expect_running(s, "new", "refusing to commit a system that is not running",
                            &err)) < 0 ||
        (r = kv_part(s, "new", &target, &err)) < 0 || (r = env_point(s, target, false, &err)) < 0)
        return fail(s, &err);
    return 0;
}

static int artifact_rollback(void *st)
{
    rootfs_state *s = st;
    struct molt_sdk_error err = {0};
    int old = -1, r;
    if ((r = setup(s, &err)) < 0 || (r = kv_put(s, "rollback", "1", &err)) < 0)
        return fail(s, &err);
    if (kv_part(s, "old", &old, &err) < 0 &&
        (r = rootfs_active_partition(&s->cfg, &old, &err)) < 0)
        return fail(s, &err);
    if ((r = env_point(s, old, false, &err)) < 0)
        return fail(s, &err);
    return 0;
}

static int artifact_verify_rollback_reboot(void *st)
{
    rootfs_state *s = st;
    struct molt_sdk_error err = {0};
    if (expect_running(s, "old", "the old system is not back", &err) < 0)
        return fail(s, &err);
    return 0;
}

static int cleanup(void *st)
{
    rootfs_state *s = st;
    const char *keys[] = {"downloaded", "rollback", "new", "old"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int r = s->host->kv_delete(s->host, keys[i]);
        if (r < 0) {
            s->host->error(s->host, "key-value store: cannot remove %s", keys[i]);
            return r;
        }
    }
    return 0;
}

static const char *const payload_types[] = {"rootfs-image", ROOTFS_DELTA_TYPE, NULL};

static const struct molt_module_desc desc = {
    MOLT_MODULE_V1_MINOR(1),   /* fills no descriptor field of 1.2: loads in 1.1 hosts too */
    .name = ROOTFS_MODULE_NAME,
    .version = MODULE_VERSION,
    .payload_types = payload_types,
    .capabilities = MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK | MOLT_CAP_REBOOT,
    .init = init,
    .fini = fini,
    .download = download,
    .artifact_install = artifact_install,
    .needs_artifact_reboot = needs_artifact_reboot,
    .artifact_verify_reboot = artifact_verify_reboot,
    .artifact_commit = artifact_commit,
    .artifact_rollback = artifact_rollback,
    .artifact_verify_rollback_reboot = artifact_verify_rollback_reboot,
    .cleanup = cleanup,
};

MOLT_MODULE_EXPORT const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
