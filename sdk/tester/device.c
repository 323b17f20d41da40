/* SPDX-License-Identifier: Apache-2.0 */
/* The conformance kit's scratch device: a molt configuration, data dir, module folders and the
 * wrapper around the module under test; molt commands run in a forked child that the kit can
 * kill -9 inside any module call. */
#include "kit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "artifact/reader.h"
#include "artifact/source.h"
#include "config/config.h"
#include "host/native_host.h"
#include "artifact/writer.h"
#include "util/encoding.h"
#include "util/fs.h"
#include "util/log.h"
#include "kit_guard.h"

#ifndef MOLT_KIT_SHIM_INSTALLED
#define MOLT_KIT_SHIM_INSTALLED "/usr/lib/molt/molt-kit-shim.so"
#endif

static int write_text(const char *path, const char *text, mode_t mode)
{
    molt_err e = {0};
    return molt_write_file_atomic(path, text, strlen(text), mode, &e);
}

/* The shim next to this program (build tree), or where it is installed. */
static int find_shim(char *buf, size_t cap)
{
    const char *env = getenv("MOLT_KIT_SHIM");
    if (env && access(env, R_OK) == 0) {
        snprintf(buf, cap, "%s", env);
        return 0;
    }
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, cap, "%s/molt-kit-shim.so", self);
            if (access(buf, R_OK) == 0)
                return 0;
            snprintf(buf, cap, "%s/../lib/molt/molt-kit-shim.so", self);
            if (access(buf, R_OK) == 0)
                return 0;
        }
    }
    snprintf(buf, cap, "%s", MOLT_KIT_SHIM_INSTALLED);
    return access(buf, R_OK) == 0 ? 0 : -1;
}

static int read_artifact(kit *k, char *msg, size_t cap)
{
    molt_err e = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    int rc = -1;
    if (molt_source_file_new(&src, k->artifact_abs, &e) < 0 ||
        molt_artifact_reader_open(&r, src, &(molt_artifact_opts){0}, &e) < 0) {
        snprintf(msg, cap, "artifact %s: %s", k->artifact, e.msg);
        goto out;
    }
    const molt_artifact_info *info = molt_artifact_reader_info(r);
    if (!info->payload_type) {
        snprintf(msg, cap, "artifact %s has no payload: nothing for a module to install",
                 k->artifact);
        goto out;
    }
    k->payload_type = strdup(info->payload_type);
    k->artifact_name = strdup(info->name);
    json_t *dt = json_array_get(info->depends_device_types, 0);
    k->device_type = strdup(json_is_string(dt) ? json_string_value(dt) : "molt-kit-device");
    k->meta_data = info->meta_data ? json_dumps(info->meta_data, JSON_COMPACT | JSON_SORT_KEYS)
                                   : strdup("{}");
    rc = k->payload_type && k->artifact_name && k->device_type && k->meta_data ? 0 : -1;
out:
    molt_artifact_reader_free(r);
    molt_source_free(src);
    return rc;
}

/* The artifact's payload files of at most KIT_PAYLOAD_COPY_MAX bytes into <root>/payload/, for
 * the probe (MOLT_KIT_PAYLOAD_DIR: a dest_dir file, say); larger ones are only read. */
#define KIT_PAYLOAD_COPY_MAX (1 << 20)

static int save_payload(kit *k, char *msg, size_t cap)
{
    molt_err e = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    char dir[4200], path[8400];
    int rc = -1;
    const char *name;
    int64_t size;
    snprintf(dir, sizeof dir, "%s/payload", k->root);
    if (molt_mkdir_p(dir, 0755, &e) < 0 || molt_source_file_new(&src, k->artifact_abs, &e) < 0 ||
        molt_artifact_reader_open(&r, src, &(molt_artifact_opts){0}, &e) < 0)
        goto out;
    int n;
    while ((n = molt_artifact_reader_next(r, &name, &size, &e)) == 1) {
        if (size > KIT_PAYLOAD_COPY_MAX || strchr(name, '/') || name[0] == '.')
            continue;
        char *data = malloc((size_t)size + 1);
        size_t got = 0;
        ssize_t m = 1;
        while (data && m > 0 && got <= (size_t)size) {
            m = molt_artifact_reader_read(r, data + got, (size_t)size + 1 - got, &e);
            if (m > 0)
                got += (size_t)m;
        }
        snprintf(path, sizeof path, "%s/%.1000s", dir, name);
        int w = data && m == 0 ? molt_write_file_atomic(path, data, got, 0644, &e) : -1;
        free(data);
        if (w < 0)
            goto out;
    }
    rc = n < 0 ? -1 : 0;
out:
    if (rc < 0)
        snprintf(msg, cap, "artifact %s: %s", k->artifact, e.msg[0] ? e.msg : "cannot read its payload");
    molt_artifact_reader_free(r);
    molt_source_free(src);
    return rc;
}

/* The exec wrapper: logs each call, captures query answers verbatim, simulates the reboots,
 * then obeys the knobs, like the native shim. */
static int write_exec_wrapper(kit *k, const char *path)
{
    char *text = NULL;
    if (asprintf(&text,
                 "#!/bin/sh\n"
                 "# molt-module-test wrapper around %s\n"
                 "ctl='%s'\n"
                 "real='%s'\n"
                 "call=$1\n"
                 "echo \"call $call\" >>\"$ctl/log\"\n"
                 "case $call in\n"
                 "ArtifactReboot|ArtifactRollbackReboot)\n"
                 "    echo \"simulated $call\" >>\"$ctl/log\"; rc=0\n"
                 "    if [ -n \"${MOLT_KIT_REBOOT_HOOK:-}\" ]; then sh -c \"$MOLT_KIT_REBOOT_HOOK\" >&2 || rc=$?; fi ;;\n"
                 "NeedsArtifactReboot|SupportsRollback|ProvidePayloadFileSizes)\n"
                 "    \"$real\" \"$@\" >\"$ctl/answer_$call\"; rc=$?; cat \"$ctl/answer_$call\" ;;\n"
                 "*)\n"
                 "    \"$real\" \"$@\"; rc=$? ;;\n"
                 "esac\n"
                 "echo \"done $call $rc\" >>\"$ctl/log\"\n"
                 "if [ -f \"$ctl/sleep_$call\" ]; then echo $$ >\"$ctl/pid\"; sleep %d; fi\n"
                 "if [ $rc -eq 0 ] && [ -f \"$ctl/fail_$call\" ]; then\n"
                 "    echo \"molt-module-test: failure injected after $call\" >&2; exit 1\n"
                 "fi\n"
                 "exit $rc\n",
                 k->module_abs, k->ctl, k->module_abs, KIT_KILL_POINT_SLEEP) < 0)
        return -1;
    int r = write_text(path, text, 0755);
    free(text);
    return r;
}

int kit_device_setup(kit *k, char *msg, size_t cap)
{
    char path[8400], shim[4096];
    molt_err e = {0};
    if (!realpath(k->module, k->module_abs)) {
        snprintf(msg, cap, "module %s: %s", k->module, strerror(errno));
        return -1;
    }
    if (!realpath(k->artifact, k->artifact_abs)) {
        snprintf(msg, cap, "artifact %s: %s", k->artifact, strerror(errno));
        return -1;
    }
    if (strchr(k->module_abs, '\'') || strchr(k->module_abs, '\n')) {
        snprintf(msg, cap, "module %s: a path with a quote or a newline is not supported", k->module);
        return -1;
    }
    size_t len = strlen(k->module_abs);
    k->native = len > 3 && strcmp(k->module_abs + len - 3, ".so") == 0;
    if (read_artifact(k, msg, cap) < 0)
        return -1;
    if (k->native) {
        molt_native *n = NULL;
        if (molt_native_load(&n, k->module_abs, &e) < 0) {
            snprintf(msg, cap, "%s", e.msg);
            return -1;
        }
        bool claims = molt_native_claims(n, k->payload_type);
        const struct molt_module_desc *d = molt_native_desc(n);
        const struct { const void *fn; const char *call; } fns[] = {
            {(const void *)d->artifact_rollback, "ArtifactRollback"},
            {(const void *)d->artifact_commit, "ArtifactCommit"},
            {(const void *)d->artifact_failure, "ArtifactFailure"},
            {(const void *)d->artifact_verify_rollback_reboot, "ArtifactVerifyRollbackReboot"},
        };
        snprintf(k->implemented, sizeof k->implemented, " ");
        for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
            if (fns[i].fn) {
                size_t used = strlen(k->implemented);
                snprintf(k->implemented + used, sizeof k->implemented - used, "%s ", fns[i].call);
            }
        snprintf(k->module_name, sizeof k->module_name, "%s", molt_native_desc(n)->name);
        k->caps = molt_native_caps(molt_native_desc(n));   /* the bits a host honours */
        kit_info(k, "module: native %s %s (capabilities:%s%s%s%s%s)", molt_native_desc(n)->name,
                 molt_native_desc(n)->version, k->caps & MOLT_CAP_STREAMING ? " streaming" : "",
                 k->caps & MOLT_CAP_ROLLBACK ? " rollback" : "",
                 k->caps & MOLT_CAP_REBOOT ? " reboot" : "",
                 k->caps & MOLT_CAP_LAZY_DOWNLOAD ? " lazy-download" : "",
                 k->caps & MOLT_CAP_LAZY_COMMIT ? " lazy-commit" : "");
        molt_native_free(n);
        if (!claims) {
            snprintf(msg, cap, "module %s does not claim the artifact's payload type %s",
                     k->module, k->payload_type);
            return -1;
        }
        if (find_shim(shim, sizeof shim) < 0) {
            snprintf(msg, cap, "the kit's shim (molt-kit-shim.so) is not found: set MOLT_KIT_SHIM");
            return -1;
        }
    } else {
        if (access(k->module_abs, X_OK) < 0) {
            snprintf(msg, cap, "module %s is not executable (nor a native .so)", k->module);
            return -1;
        }
        kit_info(k, "module: exec %s", k->module_abs);
        snprintf(k->module_name, sizeof k->module_name, "%s", k->payload_type);
    }
    kit_info(k, "artifact: %s (name %s, payload type %s, device type %s)", k->artifact_abs,
             k->artifact_name, k->payload_type, k->device_type);

    const char *tmp = getenv("TMPDIR");
    snprintf(k->root, sizeof k->root, "%s/molt-kit.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(k->root)) {
        snprintf(msg, cap, "mkdtemp %s: %s", k->root, strerror(errno));
        return -1;
    }
    snprintf(k->conf, sizeof k->conf, "%s/molt.yaml", k->root);
    snprintf(k->ctl, sizeof k->ctl, "%s/ctl", k->root);
    snprintf(k->logs, sizeof k->logs, "%s/logs", k->root);
    static const char *const dirs[] = {"modules", "native", "scripts", "logs", "ctl"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", k->root, dirs[i]);
        if (molt_mkdir_p(path, 0755, &e) < 0) {
            snprintf(msg, cap, "%s", e.msg);
            return -1;
        }
    }
    if (save_payload(k, msg, cap) < 0)
        return -1;
    if (k->native) {
        /* The shim under the module's own file name, so refusals and logs name it. */
        const char *base = strrchr(k->module_abs, '/') + 1;
        snprintf(path, sizeof path, "%s/native/%s", k->root, base);
        if (symlink(shim, path) < 0) {
            snprintf(msg, cap, "symlink %s: %s", path, strerror(errno));
            return -1;
        }
        setenv("MOLT_KIT_REAL", k->module_abs, 1);
        setenv("MOLT_KIT_CTL", k->ctl, 1);
    } else {
        snprintf(path, sizeof path, "%s/modules/%s", k->root, k->payload_type);
        if (strchr(k->payload_type, '/') || write_exec_wrapper(k, path) < 0) {
            snprintf(msg, cap, "cannot write the module wrapper %s", path);
            return -1;
        }
    }
    if (k->reboot_hook)
        setenv("MOLT_KIT_REBOOT_HOOK", k->reboot_hook, 1);
    char *conf = NULL;
    if (asprintf(&conf,
                 "data_dir: %s/data\n"
                 "device_type_file: %s/data/device_type\n"
                 "module_dirs:\n"
                 "  - %s/modules\n"
                 "native_module_dir: %s/native\n"
                 "scripts_dir: %s/scripts\n"
                 "module_timeout: %d\n"
                 "state_script_retry_interval: 1\n"
                 "log_level: debug\n",
                 k->root, k->root, k->root, k->root, k->root, KIT_MODULE_TIMEOUT) < 0)
        return -1;
    if (k->native && k->isolated) {
        char *iso = NULL;
        int n = asprintf(&iso, "%snative_isolated_modules:\n  - %s/native/%s\n", conf, k->root,
                         strrchr(k->module_abs, '/') + 1);
        free(conf);
        if (n < 0)
            return -1;
        conf = iso;
        kit_info(k, "isolated: every call of the native module runs in a forked child");
    }
    if (k->extra_config) {
        /* The module's own settings (a `modules:` section, say), after molt's. */
        char *extra = NULL, *both = NULL;
        size_t extra_len = 0;
        if (molt_read_file(k->extra_config, 1 << 20, &extra, &extra_len, &e) < 0) {
            snprintf(msg, cap, "--config: %s", e.msg);
            free(conf);
            return -1;
        }
        int n = asprintf(&both, "%s%.*s\n", conf, (int)extra_len, extra);
        free(extra);
        free(conf);
        if (n < 0)
            return -1;
        conf = both;
    }
    int r = write_text(k->conf, conf, 0644);
    free(conf);
    if (r < 0) {
        snprintf(msg, cap, "cannot write %s", k->conf);
        return -1;
    }
    return 0;
}

void kit_device_remove(kit *k)
{
    if (k->root[0])
        molt_rm_rf(k->root, NULL);
}

int kit_case_start(kit *k, const char *name)
{
    char path[8400], text[512];
    snprintf(k->case_name, sizeof k->case_name, "%s", name);
    snprintf(path, sizeof path, "%s/data", k->root);
    if (molt_rm_rf(path, NULL) < 0 || molt_rm_rf(k->ctl, NULL) < 0 ||
        molt_mkdir_p(path, 0755, NULL) < 0 || molt_mkdir_p(k->ctl, 0755, NULL) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/data/device_type", k->root);
    snprintf(text, sizeof text, "device_type=%s\n", k->device_type);
    k->n_events = 0;
    return write_text(path, text, 0644);
}

void kit_knob(kit *k, const char *knob, const char *call)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/%s%s", k->ctl, knob, call);
    write_text(path, "", 0644);
}

void kit_knobs_clear(kit *k, const char *prefix)
{
    DIR *d = opendir(k->ctl);
    struct dirent *de;
    char path[8400];
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(path, sizeof path, "%s/%s", k->ctl, de->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* The child: one molt command through the state machine; "rc outcome message" on fd. */
static void child_main(kit *k, const char *command, int fd)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/%s.log", k->logs, k->case_name);
    int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log >= 0) {
        dprintf(log, "==== molt %s\n", command);
        dup2(log, 1);
        dup2(log, 2);
        close(log);
    }
    molt_err err = {0};
    molt_config *cfg = NULL;
    molt_machine *m = NULL;
    molt_outcome outcome = MOLT_OUTCOME_FAILED;
    int rc = molt_config_load(&cfg, k->conf, &err);
    if (rc == 0) {
        molt_log_set_level(MOLT_LOG_DEBUG);
        rc = molt_machine_open(&m, cfg, &err);
    }
    if (rc == 0) {
        if (strcmp(command, "install") == 0)
            rc = molt_machine_install(m, k->artifact_abs, &outcome, &err);
        else if (strcmp(command, "commit") == 0)
            rc = molt_machine_commit(m, &outcome, &err);
        else if (strcmp(command, "rollback") == 0)
            rc = molt_machine_rollback(m, &outcome, &err);
        else
            rc = molt_machine_resume(m, &outcome, &err);
    }
    dprintf(fd, "%d %d %s", rc, (int)outcome, err.msg);
    fprintf(stderr, "==== rc %d outcome %d %s\n", rc, (int)outcome, err.msg);
    molt_machine_free(m);
    molt_config_free(cfg);
    close(fd);
    _exit(0);
}

static bool read_pid(kit *k, pid_t *ret)
{
    char path[8400], *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/pid", k->ctl);
    if (molt_read_file(path, 64, &data, &len, NULL) < 0)
        return false;
    /* The wrapper and the shim write one line: without its newline it is still being written. */
    long v = len > 0 && data[len - 1] == '\n' ? strtol(data, NULL, 10) : 0;
    free(data);
    if (v <= 1)
        return false;
    *ret = (pid_t)v;
    return true;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The test switch MOLT_KIT_TEST_CUT_PAUSE_MS (docs/molt-module-test.md): a pause between the two
 * halves of a power cut, as a kit preempted there would make under load; test_conformance
 * checks that every kill still lands where it was asked for. */
static void cut_pause(void)
{
    const char *ms = getenv("MOLT_KIT_TEST_CUT_PAUSE_MS");
    if (ms && *ms)
        sleep_ms(atoi(ms));
}

/* After a power cut nothing of that run may live on (an isolated module's child holding the
 * store's lock, a module's background process): the kit is the subreaper of everything it
 * starts (main), so it reaps the orphans until both process groups are empty. */
static void reap_all(pid_t group, pid_t mod)
{
    for (int i = 0; i < 2000; i++) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        bool left = kill(-group, 0) == 0 || kill(mod, 0) == 0 || kill(-mod, 0) == 0;
        if (!left)
            return;
        kill(-group, SIGKILL);
        kill(-mod, SIGKILL);
        kill(mod, SIGKILL);
        sleep_ms(5);
    }
}

void kit_run(kit *k, const char *command, const char *kill_call, kit_result *res)
{
    int fds[2];
    memset(res, 0, sizeof *res);
    res->outcome = MOLT_OUTCOME_FAILED;
    res->rc = MOLT_EIO;
    if (kill_call)
        kit_knob(k, "sleep_", kill_call);
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(res->msg, sizeof res->msg, "pipe: %s", strerror(errno));
        res->lost = true;
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res->msg, sizeof res->msg, "fork: %s", strerror(errno));
        res->lost = true;
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        setpgid(0, 0);
        close(fds[0]);
        child_main(k, command, fds[1]);
    }
    setpgid(pid, pid);
    close(fds[1]);
    int status = 0;
    bool done = false;
    for (int waited = 0; waited < KIT_COMMAND_TIMEOUT * 1000; waited += 5) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            done = true;
            break;
        }
        pid_t mod;
        if (kill_call && read_pid(k, &mod)) {
            /* A power cut stops molt and the module at one instant. Molt goes first and is
             * reaped before the module is touched: killed first, the module's death would be
             * news to a molt still alive for the moment between two kill() calls (a kit
             * preempted there, under load), which then records the call as failed and moves
             * on (ArtifactFailure failed: the deployment ends _INCONSISTENT; Cleanup failed:
             * a failure) before its own kill lands: a cut a step late. A molt with SIGKILL
             * pending runs no more of its code, whatever happens to its children. */
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            cut_pause();
            /* The module: its pid cannot have been reused, nobody has reaped it yet (an
             * in-process native module's pid is molt's: gone already). */
            if (mod != pid) {
                kill(-mod, SIGKILL);
                kill(mod, SIGKILL);
            }
            reap_all(pid, mod);
            res->killed = true;
            done = true;
            break;
        }
        sleep_ms(5);
    }
    if (!done) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(res->msg, sizeof res->msg, "molt %s still running after %d s", command,
                 KIT_COMMAND_TIMEOUT);
        res->lost = true;
    } else if (!res->killed) {
        char buf[1200];
        ssize_t n = read(fds[0], buf, sizeof buf - 1);
        int rc = 0, outcome = 0, used = 0;
        if (n > 0) {
            buf[n] = '\0';
            if (sscanf(buf, "%d %d %n", &rc, &outcome, &used) >= 2) {
                res->rc = rc;
                res->outcome = (molt_outcome)outcome;
                snprintf(res->msg, sizeof res->msg, "%s", buf + used);
            }
        } else {
            res->lost = true;
            if (WIFSIGNALED(status))
                snprintf(res->msg, sizeof res->msg, "molt %s died of signal %d", command,
                         WTERMSIG(status));
            else
                snprintf(res->msg, sizeof res->msg, "molt %s exited without a result", command);
        }
    }
    close(fds[0]);
    if (kill_call) {
        char path[8400];
        kit_knobs_clear(k, "sleep_");
        snprintf(path, sizeof path, "%s/pid", k->ctl);
        unlink(path);
    }
    kit_load_events(k);
}

int kit_reboot(kit *k, char *msg, size_t cap)
{
    if (!k->reboot_hook)
        return 0;
    char path[8400];
    snprintf(path, sizeof path, "%s/%s.log", k->logs, k->case_name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log >= 0) {
            dprintf(log, "==== reboot hook: %s\n", k->reboot_hook);
            dup2(log, 1);
            dup2(log, 2);
        }
        execl("/bin/sh", "sh", "-c", k->reboot_hook, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        snprintf(msg, cap, "cannot run the reboot hook: %s", strerror(errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(msg, cap, "the reboot hook failed (%s %d)",
                 WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    return 0;
}

void kit_load_events(kit *k)
{
    char path[8400], line[256];
    snprintf(path, sizeof path, "%s/log", k->ctl);
    k->n_events = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f) && k->n_events < KIT_MAX_EVENTS) {
        char word[16], call[64];
        int rc = 0;
        int n = sscanf(line, "%15s %63s %d", word, call, &rc);
        if (n >= 2 && strcmp(word, "call") == 0) {
            kit_event *ev = &k->events[k->n_events++];
            snprintf(ev->call, sizeof ev->call, "%s", call);
            ev->rc = -1000;
            ev->simulated = false;
        } else if (n >= 2 && k->n_events > 0 &&
                   strcmp(k->events[k->n_events - 1].call, call) == 0) {
            if (strcmp(word, "done") == 0 && n == 3)
                k->events[k->n_events - 1].rc = rc;
            else if (strcmp(word, "simulated") == 0)
                k->events[k->n_events - 1].simulated = true;
        }
    }
    fclose(f);
}

char *kit_answer(kit *k, const char *call, size_t *ret_len)
{
    char path[8400], *data = NULL;
    snprintf(path, sizeof path, "%s/answer_%s", k->ctl, call);
    if (molt_read_file(path, 4096, &data, ret_len, NULL) < 0)
        return NULL;
    return data;
}

/* Open the device's store in this process (the module is not called). */
static molt_machine *open_machine(kit *k, molt_config **ret_cfg)
{
    molt_config *cfg = NULL;
    molt_machine *m = NULL;
    molt_log_set_level(MOLT_LOG_ERROR);
    if (molt_config_load(&cfg, k->conf, NULL) < 0)
        return NULL;
    if (molt_machine_open(&m, cfg, NULL) < 0) {
        molt_config_free(cfg);
        return NULL;
    }
    *ret_cfg = cfg;
    return m;
}

static char *machine_string(kit *k, bool provides, const char *key)
{
    molt_config *cfg = NULL;
    molt_machine *m = open_machine(k, &cfg);
    json_t *doc = NULL;
    char *out = NULL;
    if (m && (provides ? molt_machine_provides(m, &doc, NULL) : molt_machine_status(m, &doc, NULL)) == 0)
        out = strdup(json_is_string(json_object_get(doc, key)) ?
                         json_string_value(json_object_get(doc, key)) : "");
    json_decref(doc);
    molt_machine_free(m);
    molt_config_free(cfg);
    return out ? out : strdup("");
}

char *kit_artifact_name(kit *k)
{
    return machine_string(k, true, "artifact_name");
}

char *kit_state(kit *k)
{
    return machine_string(k, false, "state");
}

static int tree_found;

static int tree_visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    const char *base = strrchr(path, '/');
    if (flag == FTW_D && base && strcmp(base, "/tree") == 0) {
        tree_found = 1;
        return 1;
    }
    return 0;
}

bool kit_tree_left(kit *k)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/data", k->root);
    tree_found = 0;
    nftw(path, tree_visit, 16, FTW_PHYS);
    return tree_found != 0;
}

bool kit_log_has(kit *k, const char *needle)
{
    char path[8400], *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s.log", k->logs, k->case_name);
    if (molt_read_file(path, 64u << 20, &data, &len, NULL) < 0)
        return false;
    bool found = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

/* ---- effects ------------------------------------------------------------------------------- */

/* The probe child's environment: the scratch device's paths and the module's own settings of the
 * scratch molt.yaml, MOLT_KIT_SETTING_<key> (other characters than [A-Za-z0-9] as '_'). */
static void probe_env(kit *k)
{
    char path[8400];
    setenv("MOLT_KIT_ROOT", k->root, 1);
    setenv("MOLT_KIT_CONFIG", k->conf, 1);
    snprintf(path, sizeof path, "%s/data", k->root);
    setenv("MOLT_KIT_DATA_DIR", path, 1);
    setenv("MOLT_KIT_ARTIFACT", k->artifact_abs, 1);
    setenv("MOLT_KIT_PAYLOAD_TYPE", k->payload_type, 1);
    setenv("MOLT_KIT_META_DATA", k->meta_data, 1);
    snprintf(path, sizeof path, "%s/payload", k->root);
    setenv("MOLT_KIT_PAYLOAD_DIR", path, 1);
    molt_config *cfg = NULL;
    if (molt_config_load(&cfg, k->conf, NULL) < 0)
        return;
    for (size_t i = 0; i < cfg->n_modules; i++) {
        const molt_module_config *mc = &cfg->modules[i];
        if (strcmp(mc->name, k->module_name) != 0)
            continue;
        for (size_t j = 0; j < mc->n; j++) {
            char var[200];
            int n = snprintf(var, sizeof var, "MOLT_KIT_SETTING_%s", mc->keys[j]);
            for (int c = 17; c < n && c < (int)sizeof var - 1; c++)
                if (!((var[c] >= 'a' && var[c] <= 'z') || (var[c] >= 'A' && var[c] <= 'Z') ||
                      (var[c] >= '0' && var[c] <= '9')))
                    var[c] = '_';
            setenv(var, mc->values[j], 1);
        }
    }
    molt_config_free(cfg);
}

int kit_probe(kit *k, const char *label, char *ret, char *msg, size_t cap)
{
    char out[8400], log[8400];
    snprintf(out, sizeof out, "%s/probe", k->root);
    molt_mkdir_p(out, 0755, NULL);
    snprintf(out, sizeof out, "%s/probe/%s.%s.txt", k->root, k->case_name, label);
    snprintf(log, sizeof log, "%s/%s.log", k->logs, k->case_name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0 || lf < 0)
            _exit(127);
        dprintf(lf, "==== probe (%s): %s\n", label, k->probe);
        dup2(fd, 1);
        dup2(lf, 2);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        probe_env(k);
        if (chdir(k->root) < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", k->probe, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        snprintf(msg, cap, "cannot run the probe: %s", strerror(errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(msg, cap, "the probe failed (%s %d; its stderr in %s)",
                 WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), log);
        return -1;
    }
    unsigned char sha[32];
    molt_err e = {0};
    if (molt_artifact_file_sha256(out, sha, &e) < 0) {
        snprintf(msg, cap, "%s", e.msg);
        return -1;
    }
    molt_hex_encode(sha, sizeof sha, ret);
    return 0;
}

void kit_probe_diff(kit *k, const char *label_a, const char *label_b, char *buf, size_t cap)
{
    char pa[8400], pb[8400];
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    snprintf(pa, sizeof pa, "%s/probe/%s.%s.txt", k->root, k->case_name, label_a);
    snprintf(pb, sizeof pb, "%s/probe/%s.%s.txt", k->root, k->case_name, label_b);
    buf[0] = '\0';
    if (molt_read_file(pa, 64u << 20, &a, &la, NULL) < 0 ||
        molt_read_file(pb, 64u << 20, &b, &lb, NULL) < 0) {
        free(a);
        return;
    }
    /* The first line that differs, from both sides. */
    size_t i = 0, line = 0;
    while (i < la && i < lb && a[i] == b[i]) {
        if (a[i] == '\n')
            line = i + 1;
        i++;
    }
    if (i == la && i == lb) {
        free(a);
        free(b);
        return;
    }
    size_t ea = line, eb = line;
    while (ea < la && a[ea] != '\n')
        ea++;
    while (eb < lb && b[eb] != '\n')
        eb++;
    snprintf(buf, cap, "first difference: %s \"%.*s\", %s \"%.*s\"", label_a,
             (int)(ea - line > 160 ? 160 : ea - line), a + line, label_b,
             (int)(eb - line > 160 ? 160 : eb - line), b + line);
    free(a);
    free(b);
}

/* Octal field of a tar header. */
static uint64_t tar_octal(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; i++)
        v = v * 8 + (uint64_t)(p[i] - '0');
    return v;
}

int kit_corrupt_artifact(kit *k, char *ret_path, size_t path_cap, char *msg, size_t cap)
{
    char *data = NULL;
    size_t len = 0;
    molt_err e = {0};
    if (molt_read_file(k->artifact_abs, 1u << 30, &data, &len, &e) < 0) {
        snprintf(msg, cap, "%s", e.msg);
        return -1;
    }
    /* The outer tar is not compressed: walk its headers to the manifest, then change one hex
     * digit of its last line (the last payload file's checksum), in place: the tar header
     * does not cover the content. */
    size_t off = 0;
    char *manifest = NULL;
    size_t mlen = 0;
    while (off + 512 <= len && data[off]) {
        const unsigned char *h = (const unsigned char *)data + off;
        uint64_t size = tar_octal(h + 124, 12);
        if (strncmp((const char *)h, "manifest", 100) == 0 && off + 512 + size <= len) {
            manifest = data + off + 512;
            mlen = (size_t)size;
            break;
        }
        off += 512 + (size_t)((size + 511) / 512 * 512);
    }
    char *last = NULL;
    for (size_t i = 0; manifest && i + 70 < mlen; i++)
        if ((i == 0 || manifest[i - 1] == '\n') && strncmp(manifest + i + 66, "data/", 5) == 0)
            last = manifest + i;
    if (!last) {
        free(data);
        snprintf(msg, cap, "the artifact's manifest lists no payload file");
        return -1;
    }
    last[0] = last[0] == '0' ? '1' : '0';
    snprintf(ret_path, path_cap, "%s/corrupt.mender", k->root);
    int r = molt_write_file_atomic(ret_path, data, len, 0644, &e);
    free(data);
    if (r < 0) {
        snprintf(msg, cap, "%s", e.msg);
        return -1;
    }
    return 0;
}
