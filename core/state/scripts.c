/* SPDX-License-Identifier: Apache-2.0 */
/* State scripts (docs/reference §2.9): extraction from the artifact, selection by name, ordered runs
 * with the retry-later exit code 21, a timeout per script, stderr into the log. */
#include "state/scripts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util/proc.h"
#include "util/fs.h"
#include "util/strict.h"
#include "util/log.h"

#define RETRY_LATER_CODE 21
#define STDERR_LOG_MAX (10 * 1024)
#define MAX_SCRIPTS 1024
/* A folder's listing keeps the names of every state's scripts and "version". */
#define MAX_LISTED (MAX_SCRIPTS * 27 + 1)

static const char *const rootfs_states[] = { "Idle", "Sync", "Download" };
static const char *const artifact_states[] = {
    "ArtifactInstall", "ArtifactReboot", "ArtifactCommit", "ArtifactRollback",
    "ArtifactRollbackReboot", "ArtifactFailure",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i]))
            return true;
    return false;
}

static bool plain_name(const char *name)
{
    return *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..") &&
           strlen(name) <= NAME_MAX;
}

/* Does artifact_dir hold exactly what an artifact without scripts leaves (a "version" file
 * saying 3, nothing else)? It was made durable when it was written: nothing to replace. */
static bool holds_no_scripts(const char *artifact_dir)
{
    char **names = NULL, *data = NULL, *path = NULL;
    size_t n = 0, len = 0;
    bool same = molt_dir_names(artifact_dir, "state scripts folder", NULL, NULL, 2, &names, &n,
                               NULL) == 0 &&
                n == 1 && strcmp(names[0], "version") == 0 &&
                (path = molt_path_join(artifact_dir, "version")) != NULL &&
                molt_read_file(path, 16, &data, &len, NULL) == 0 && len == 1 && data[0] == '3';
    molt_names_free(names, n);
    free(path);
    free(data);
    return same;
}

int molt_scripts_extract(const molt_scripts_opts *opts, const molt_artifact_info *info,
                         molt_err *err)
{
    const char *artifact_dir = opts ? opts->artifact_dir : NULL;
    if (!artifact_dir || !*artifact_dir || !info)
        return molt_err_set(err, MOLT_EINVAL, "extracting state scripts: missing argument");
    molt_scripts_listing *cache = opts->artifact_listing;
    molt_scripts_listing_clear(cache);   /* whatever happens next, read the folder again */
    for (size_t i = 0; i < info->n_scripts; i++) {
        const char *name = info->scripts[i].name;
        if (!name || !plain_name(name) || !strcmp(name, "version"))
            return molt_err_set(err, MOLT_EFORMAT, "state script name '%s' in the artifact is "
                                "not a plain file name", name ? name : "(null)");
    }
    if (info->n_scripts == 0 && holds_no_scripts(artifact_dir)) {
        /* What the state's runs would read: a version saying 3, no scripts. */
        if (cache && (cache->names = calloc(1, sizeof *cache->names)) != NULL &&
            (cache->names[0] = strdup("version")) != NULL) {
            cache->n = 1;
            cache->read = true;
        } else {
            molt_scripts_listing_clear(cache);
        }
        return 0;   /* no fsyncs for an install without scripts (docs/performance.md) */
    }
    /* Built beside the old folder and swapped in, so a power cut leaves the old scripts or the
     * new ones, never a mix. */
    size_t len = strlen(artifact_dir);
    char *tmp = malloc(len + 8), *path = NULL;
    if (!tmp)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory extracting state scripts");
    memcpy(tmp, artifact_dir, len);
    memcpy(tmp + len, ".new", 5);
    int r = molt_rm_rf(tmp, err);
    if (r == 0)
        r = molt_mkdir_p(tmp, 0700, err);
    for (size_t i = 0; r == 0 && i < info->n_scripts; i++) {
        const molt_artifact_script *s = &info->scripts[i];
        path = molt_path_join(tmp, s->name);
        r = path ? molt_write_file_atomic(path, s->data, s->size, 0700, err)
                 : molt_err_set(err, MOLT_ENOMEM, "out of memory extracting %s", s->name);
        free(path);
        path = NULL;
    }
    if (r == 0) {
        path = molt_path_join(tmp, "version");
        r = path ? molt_write_file_atomic(path, "3", 1, 0600, err)
                 : molt_err_set(err, MOLT_ENOMEM, "out of memory extracting state scripts");
    }
    if (r == 0 && molt_path_exists(artifact_dir)) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, artifact_dir, RENAME_EXCHANGE) == 0) {
            r = molt_rm_rf(tmp, err);   /* now the old scripts */
        } else if (errno == EINVAL || errno == ENOSYS) {
            r = molt_rm_rf(artifact_dir, err);
            if (r == 0 && rename(tmp, artifact_dir) != 0)
                r = molt_err_errno(err, MOLT_EIO, errno, "cannot rename %s to %s", tmp,
                                   artifact_dir);
        } else {
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot replace %s", artifact_dir);
        }
    } else if (r == 0 && rename(tmp, artifact_dir) != 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot rename %s to %s", tmp, artifact_dir);
    }
    if (r == 0)
        r = molt_fsync_parent(artifact_dir, err);
    if (r != 0) {
        molt_err_prefix(err, "extracting state scripts into %s: ", artifact_dir);
        molt_rm_rf(tmp, NULL);
    }
    free(path);
    free(tmp);
    return r;
}

/* The C++ client's regex (State)_(Action)_[0-9][0-9](_\S+)? matched against the whole name,
 * \S being any byte but ASCII white space (std::regex in the C locale). */
static bool name_matches(const char *name, const char *state, const char *action)
{
    size_t ls = strlen(state), la = strlen(action);
    if (strncmp(name, state, ls) || name[ls] != '_')
        return false;
    name += ls + 1;
    if (strncmp(name, action, la) || name[la] != '_')
        return false;
    name += la + 1;
    if (name[0] < '0' || name[0] > '9' || name[1] < '0' || name[1] > '9')
        return false;
    name += 2;
    if (*name == '\0')
        return true;
    if (*name != '_' || name[1] == '\0')
        return false;
    for (name++; *name; name++)
        if (strchr(" \t\n\v\f\r", *name))
            return false;
    return true;
}

/* A version file, if present, must say 2 or 3 (its first word, as the C++ client reads it). */
static int check_version(const char *dir, molt_err *err)
{
    char *path = molt_path_join(dir, "version"), *data = NULL;
    if (!path)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory reading state script version");
    int r = molt_read_file(path, 4096, &data, NULL, err);
    if (r == MOLT_ENOTFOUND) {
        molt_err_clear(err);
        r = 0;
        goto out;
    }
    if (r < 0)
        goto out;
    char *word = data + strspn(data, " \t\n\v\f\r");
    word[strcspn(word, " \t\n\v\f\r")] = '\0';
    if (strcmp(word, "2") && strcmp(word, "3"))
        r = molt_err_set(err, MOLT_EUNSUPPORTED,
                         "state script version file %s says '%.32s'; expected 2 or 3", path, word);
out:
    free(data);
    free(path);
    return r;
}

void molt_scripts_listing_clear(molt_scripts_listing *l)
{
    if (!l)
        return;
    molt_names_free(l->names, l->n);
    memset(l, 0, sizeof *l);
}

/* The names a listing keeps: "version" and those of a state script of any state and action. */
static bool listed(void *ctx, int dir_fd, const char *name)
{
    (void)ctx;
    (void)dir_fd;
    static const char *const actions[] = { "Enter", "Leave", "Error" };
    if (!strcmp(name, "version"))
        return true;
    for (size_t a = 0; a < sizeof actions / sizeof *actions; a++) {
        for (size_t i = 0; i < sizeof rootfs_states / sizeof *rootfs_states; i++)
            if (name_matches(name, rootfs_states[i], actions[a]))
                return true;
        for (size_t i = 0; i < sizeof artifact_states / sizeof *artifact_states; i++)
            if (name_matches(name, artifact_states[i], actions[a]))
                return true;
    }
    return false;
}

/* Read dir into l: its names, then its version file when it has one. */
static void read_listing(const char *dir, molt_scripts_listing *l)
{
    molt_scripts_listing_clear(l);
    l->read = true;
    l->code = molt_dir_names(dir, "state script folder", listed, NULL, MAX_LISTED, &l->names,
                             &l->n, &l->err);
    for (size_t i = 0; l->code == 0 && i < l->n; i++)
        if (!strcmp(l->names[i], "version"))
            l->code = check_version(dir, &l->err);
}

/* The listing of state's folder: the cached one of the artifact's (read once, until
 * molt_scripts_extract), else read into local. */
static const molt_scripts_listing *listing(const molt_scripts_opts *opts, const char *dir,
                                           bool artifact, molt_scripts_listing *local)
{
    molt_scripts_listing *l = artifact && opts->artifact_listing ? opts->artifact_listing : local;
    if (!l->read)
        read_listing(dir, l);
    return l;
}

/* The executable regular files among l's names for state and action, in l's (sorted) order:
 * *ret holds pointers into l. */
static int collect(const char *dir, const molt_scripts_listing *l, const char *state,
                   const char *action, const char ***ret, size_t *ret_n, molt_err *err)
{
    const char **names = NULL;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *name = l->names[i];
        if (!name_matches(name, state, action))
            continue;
        if (n == MAX_SCRIPTS) {
            free(names);
            return molt_err_set(err, MOLT_ELIMIT, "state script folder %s: more than %d %s_%s "
                                "scripts", dir, MAX_SCRIPTS, state, action);
        }
        char *path = molt_path_join(dir, name);
        struct stat st;
        bool ok = path && stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
        free(path);
        if (!ok) {
            molt_log_debug("State script %s/%s is not an executable file: skipped", dir, name);
            continue;
        }
        if (n % 16 == 0) {
            const char **more = realloc(names, (n + 16) * sizeof *names);
            if (!more) {
                free(names);
                return molt_err_set(err, MOLT_ENOMEM, "out of memory listing state scripts");
            }
            names = more;
        }
        names[n++] = name;
    }
    *ret = names;
    *ret_n = n;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int seconds_ms(int s)
{
    if (s <= 0)
        return 0;
    return s > INT_MAX / 1000 ? INT_MAX : s * 1000;
}

/* One run of a script: 0 with *ret_status, or a negative code (timeout, cannot execute). */
static int run_once(const char *path, const char *name, int timeout_ms, int *ret_status,
                    molt_err *err)
{
    char what[PATH_MAX + 32], out_prefix[NAME_MAX + 48], err_prefix[NAME_MAX + 48];
    snprintf(what, sizeof what, "state script %s", path);
    snprintf(out_prefix, sizeof out_prefix, "State script %s (stdout): ", name);
    snprintf(err_prefix, sizeof err_prefix, "State script %s (stderr): ", name);
    molt_proc_opts o = {
        .what = what,
        .timeout_ms = timeout_ms,
        .stdout_level = MOLT_LOG_DEBUG,
        .stdout_prefix = out_prefix,
        .stderr_level = MOLT_LOG_INFO,
        .stderr_prefix = err_prefix,
        .stderr_log_max = STDERR_LOG_MAX,
    };
    const char *argv[] = { path, NULL };
    molt_proc *p = NULL;
    molt_log_info("Running state script %s", path);
    int r = molt_proc_spawn(&p, argv, &o, err);
    if (r == 0)
        r = molt_proc_wait(p, ret_status, err);
    molt_proc_free(p);
    return r;
}

/* Run one script to success, failure, or the end of its retry-later window. */
static int run_script(const molt_scripts_opts *opts, const char *dir, const char *name,
                      molt_err *err)
{
    char *path = molt_path_join(dir, name);
    if (!path)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory running %s", name);
    int64_t retry_deadline = 0;
    int64_t interval = (int64_t)(opts->retry_interval > 0 ? opts->retry_interval : 0) * 1000;
    int r;
    /* It runs as root: never when another user could have written it (strict modes). */
    if ((r = molt_strict_check(path, "state script", err)) < 0) {
        molt_log_error("%s", err ? err->msg : "state script refused (strict modes)");
        free(path);
        if (err)
            err->code = MOLT_EMODULE;
        return MOLT_EMODULE;
    }
    for (;;) {
        int timeout = seconds_ms(opts->timeout);
        if (retry_deadline) {
            int64_t left = retry_deadline - now_ms();
            if (left < 1)
                left = 1;
            if (timeout == 0 || left < timeout)
                timeout = (int)left;
        }
        int status = 0;
        r = run_once(path, name, timeout, &status, err);
        if (r < 0) {
            r = MOLT_EMODULE;
            if (err)
                err->code = r;
            break;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            break;
        if (WIFEXITED(status) && WEXITSTATUS(status) == RETRY_LATER_CODE) {
            if (!retry_deadline)
                retry_deadline = now_ms() + (int64_t)seconds_ms(opts->retry_timeout);
            if (now_ms() + interval < retry_deadline) {
                molt_log_info("State script %s asked to retry later (exit %d): again in %d s",
                              name, RETRY_LATER_CODE, opts->retry_interval);
                sleep_ms(interval);
                continue;
            }
            r = molt_err_set(err, MOLT_EMODULE, "state script %s kept asking to retry later "
                             "(exit %d) until the retry timeout of %d s", path, RETRY_LATER_CODE,
                             opts->retry_timeout);
            break;
        }
        char how[96];
        r = molt_err_set(err, MOLT_EMODULE, "state script %s %s", path,
                         molt_proc_status_str(status, how, sizeof how));
        break;
    }
    free(path);
    return r;
}

/* The folder of state's scripts (*dir may be NULL or empty: none); false for an unknown state. */
static bool state_dir(const molt_scripts_opts *opts, const char *state, const char **dir,
                      bool *artifact)
{
    *artifact = in_list(state, artifact_states, sizeof artifact_states / sizeof *artifact_states);
    if (in_list(state, rootfs_states, sizeof rootfs_states / sizeof *rootfs_states))
        *dir = opts->rootfs_dir;
    else if (*artifact)
        *dir = opts->artifact_dir;
    else
        return false;
    return true;
}

int molt_scripts_run(const molt_scripts_opts *opts, const char *state, const char *action,
                     molt_err *err)
{
    if (!opts || !state || !action)
        return molt_err_set(err, MOLT_EINVAL, "running state scripts: missing argument");
    if (strcmp(action, "Enter") && strcmp(action, "Leave") && strcmp(action, "Error"))
        return molt_err_set(err, MOLT_EINVAL, "state script action '%s' is not Enter, Leave or "
                            "Error", action);
    const char *dir;
    bool artifact;
    if (!state_dir(opts, state, &dir, &artifact))
        return molt_err_set(err, MOLT_EINVAL, "no state scripts exist for state '%s'", state);
    if (!dir || !*dir)
        return 0;

    molt_scripts_listing local = {0};
    const molt_scripts_listing *l = listing(opts, dir, artifact, &local);
    const char **names = NULL;
    size_t n = 0;
    int r = l->code;
    if (r == MOLT_ENOTFOUND) {
        molt_scripts_listing_clear(&local);
        return 0;   /* no folder, nothing to run */
    }
    if (r < 0) {
        if (err)
            *err = l->err;
        molt_scripts_listing_clear(&local);
        return r;
    }
    if ((r = collect(dir, l, state, action, &names, &n, err)) < 0) {
        molt_scripts_listing_clear(&local);
        return r;
    }

    /* Error scripts all run; the first failure is reported. Otherwise the first failure stops. */
    bool run_all = !strcmp(action, "Error");
    size_t failed = 0;
    molt_err first;
    molt_err_clear(&first);
    for (size_t i = 0; i < n; i++) {
        molt_err one;
        molt_err_clear(&one);
        if (run_script(opts, dir, names[i], &one) == 0)
            continue;
        molt_log_error("%s", one.msg);
        if (failed++ == 0)
            first = one;
        if (!run_all)
            break;
    }
    free(names);
    molt_scripts_listing_clear(&local);
    if (failed == 0)
        return 0;
    if (failed > 1)
        return molt_err_set(err, MOLT_EMODULE, "%zu %s_%s scripts failed; the first: %s", failed,
                            state, action, first.msg);
    if (err)
        *err = first;
    return first.code;
}

bool molt_scripts_none(const molt_scripts_opts *opts, const char *state, const char *action)
{
    if (!opts || !state || !action)
        return false;
    const char *dir;
    bool artifact;
    if (!state_dir(opts, state, &dir, &artifact))
        return false;
    if (!dir || !*dir)
        return true;
    molt_scripts_listing local = {0};
    const molt_scripts_listing *l = listing(opts, dir, artifact, &local);
    const char **names = NULL;
    size_t n = 0;
    bool none = l->code == MOLT_ENOTFOUND ||
                (l->code == 0 && collect(dir, l, state, action, &names, &n, NULL) == 0 && n == 0);
    free(names);
    molt_scripts_listing_clear(&local);
    return none;
}
