/* SPDX-License-Identifier: Apache-2.0 */
/* The conformance kit's shim: a native module that loads the module under test (the file named by
 * $MOLT_KIT_REAL) and forwards every call to it, so molt-module-test can see and steer the calls
 * of a module it cannot change. Around each call it appends to $MOLT_KIT_CTL/log, and after the
 * call it obeys the knobs in that folder: sleep_<Call> (record its pid in pid, then sleep: the kit
 * kills molt there) and fail_<Call> (report failure although the module succeeded). The reboot
 * calls are simulated (never forwarded): the kit must not reboot the machine it runs on. */
#include <molt/error.h>
#include <molt/module.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kit_guard.h"

static struct molt_module_desc g_real;   /* the module's descriptor, as it gave it */
static struct molt_module_desc g_desc;   /* the same with the calls wrapped */
static const struct molt_host_api *g_host;
static char g_ctl[4096];

static void ctl_path(char *buf, size_t cap, const char *what, const char *call)
{
    snprintf(buf, cap, "%s/%s%s", g_ctl, what, call ? call : "");
}

static void ctl_append(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ctl_append(const char *fmt, ...)
{
    char path[4200], line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    ctl_path(path, sizeof path, "log", NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) < 0) {
        /* the kit then misses a line and says so in its report */
    }
    close(fd);
}

static int ctl_has(const char *knob, const char *call)
{
    char path[4200];
    ctl_path(path, sizeof path, knob, call);
    return access(path, F_OK) == 0;
}

typedef enum kind { K_STATE, K_QUERY, K_REBOOT } kind;

/* One call of the module: log it, forward it (or simulate a reboot), then the knobs. */
static int around(const char *call, int (*fn)(void *), void *st, kind k)
{
    int r = 0;
    ctl_append("call %s\n", call);
    if (k == K_REBOOT) {
        ctl_append("simulated %s\n", call);
        const char *hook = getenv("MOLT_KIT_REBOOT_HOOK");
        if (hook && *hook && system(hook) != 0) {
            if (g_host)
                g_host->error(g_host, "molt-module-test: the reboot hook failed");
            r = MOLT_EMODULE;
        }
    } else
        r = fn(st);
    ctl_append("done %s %d\n", call, r);
    if (k == K_QUERY) {
        char path[4200], num[32];
        ctl_path(path, sizeof path, "answer_", call);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int n = snprintf(num, sizeof num, "%d", r);
        if (fd >= 0) {
            if (write(fd, num, (size_t)n) < 0) {
                /* the kit reports a missing answer */
            }
            close(fd);
        }
    }
    if (ctl_has("sleep_", call)) {
        char path[4200], num[32];
        ctl_path(path, sizeof path, "pid", NULL);
        int n = snprintf(num, sizeof num, "%ld\n", (long)getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (write(fd, num, (size_t)n) < 0) {
                /* the kit times out waiting and says so */
            }
            close(fd);
        }
        sleep(KIT_KILL_POINT_SLEEP);   /* the kit kills molt, and this with it */
    }
    if (k != K_QUERY && r == 0 && ctl_has("fail_", call)) {
        if (g_host)
            g_host->error(g_host, "molt-module-test: failure injected after %s", call);
        return MOLT_EMODULE;
    }
    return r;
}

#define WRAP(field, name, k)                                                                  \
    static int w_##field(void *st)                                                            \
    {                                                                                         \
        return around(name, g_real.field, st, k);                                             \
    }
WRAP(download, "Download", K_STATE)
WRAP(artifact_install, "ArtifactInstall", K_STATE)
WRAP(needs_artifact_reboot, "NeedsArtifactReboot", K_QUERY)
WRAP(artifact_reboot, "ArtifactReboot", K_REBOOT)
WRAP(artifact_verify_reboot, "ArtifactVerifyReboot", K_STATE)
WRAP(artifact_commit, "ArtifactCommit", K_STATE)
WRAP(supports_rollback, "SupportsRollback", K_QUERY)
WRAP(artifact_rollback, "ArtifactRollback", K_STATE)
WRAP(artifact_rollback_reboot, "ArtifactRollbackReboot", K_REBOOT)
WRAP(artifact_verify_rollback_reboot, "ArtifactVerifyRollbackReboot", K_STATE)
WRAP(artifact_failure, "ArtifactFailure", K_STATE)
WRAP(cleanup, "Cleanup", K_STATE)

static int w_init(const struct molt_host_api *host, void **ret_state)
{
    g_host = host;
    return g_real.init(host, ret_state);
}

static void w_fini(void *st)
{
    if (g_real.fini)
        g_real.fini(st);
    g_host = NULL;
}

/* A NULL function stays NULL, so the host answers from the capability bits as it would for the
 * module itself. */
#define SET(field)                                                                            \
    if (g_desc.field)                                                                         \
    g_desc.field = w_##field

MOLT_MODULE_EXPORT const struct molt_module_desc *molt_module_entry(void)
{
    const char *real = getenv("MOLT_KIT_REAL");
    const char *ctl = getenv("MOLT_KIT_CTL");
    if (!real || !ctl || strlen(ctl) >= sizeof g_ctl)
        return NULL;
    snprintf(g_ctl, sizeof g_ctl, "%s", ctl);
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return NULL;
    molt_module_entry_fn entry;
    *(void **)&entry = dlsym(h, MOLT_MODULE_ENTRY_SYMBOL);
    const struct molt_module_desc *d = entry ? entry() : NULL;
    if (!d || d->struct_size < offsetof(struct molt_module_desc, reserved))
        return NULL;   /* the kit loads the module itself first and reports why */
    size_t n = d->struct_size < sizeof g_real ? d->struct_size : sizeof g_real;
    memcpy(&g_real, d, n);
    g_desc = g_real;
    SET(init);
    SET(fini);
    SET(download);
    SET(artifact_install);
    SET(needs_artifact_reboot);
    SET(artifact_reboot);
    SET(artifact_verify_reboot);
    SET(artifact_commit);
    SET(supports_rollback);
    SET(artifact_rollback);
    SET(artifact_rollback_reboot);
    SET(artifact_verify_rollback_reboot);
    SET(artifact_failure);
    SET(cleanup);
    return &g_desc;
}
