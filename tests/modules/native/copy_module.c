/* SPDX-License-Identifier: Apache-2.0 */
/* A native test module built on libmolt-sdk: installs the payload files into the folder named by
 * the artifact's meta-data {"dest": "<folder>"}, with a backup for rollback.
 *   Download          each payload file -> tmp_dir()/<name> (streamed with read_block; without
 *                     MOLT_CAP_STREAMING, copied from files_dir()); the names go to the kv key
 *                     "files"
 *   ArtifactInstall   back up dest/<name> to work_dir()/backup/<name> (or mark it
 *                     backup/<name>.absent when it is new), then replace dest/<name>
 *   ArtifactRollback  put the backups back, remove the files that were new; idempotent
 *   ArtifactCommit    nothing: a power cut during it leads to ArtifactRollback, which needs the
 *                     backups (module.h)
 *   Cleanup           drop the backups
 * Every call appends its name to work_dir()/calls. Meta-data {"fail": "<State>"} makes that
 * state fail, {"hang": "<State>"} makes it wait forever (for timeouts), {"crash": "<State>"}
 * makes it die of SIGSEGV the first time (kv key "crashed-<State>" remembers), {"kv_set":
 * "<State>"} makes that state set the kv key "kv-set" (to the state's name), {"write_to":
 * "<file>"} makes Download copy the payload into that file instead (/dev/full: a write that
 * fails with ENOSPC), {"sink_stop": true} makes Download set a counting payload sink, read one
 * block and return with the rest unread, and ArtifactInstall fail unless the sink got exactly
 * that one block (the host must read the rest without it). With a host of ABI 1.2, every call
 * appends "<call>: <the deployment value "seen">" ("-" when unset) to work_dir()/values, then
 * appends "<call>," to "seen" (dep_set); Download also appends "big: <dep_set of a value over
 * MOLT_DEP_VALUES_MAX>". Built in variants (tests/CMakeLists.txt):
 *   TEST_TYPE "native-copy" and TEST_CAPS: the payload type and capabilities
 *   TEST_CRASH: ArtifactInstall dies of SIGSEGV the first time (kv key "crashed" remembers)
 *   TEST_BROKEN_INSTALL: ArtifactInstall returns 0 and writes nothing
 *   TEST_BROKEN_ROLLBACK: ArtifactRollback returns 0 and restores nothing
 *   TEST_BROKEN_COMMIT: ArtifactCommit drops the backups (breaks the ArtifactCommit contract)
 *   TEST_BROKEN_LAZY: declares MOLT_CAP_LAZY_DOWNLOAD, yet Download creates <dest>/leftover
 *                     (which Cleanup removes) before anything that makes the host's record
 *                     durable, and stages nothing: a cut that loses the record leaves it
 *   TEST_BROKEN_LAZY_COMMIT: declares MOLT_CAP_LAZY_COMMIT, yet ArtifactCommit creates
 *                     <dest>/leftover (which Cleanup removes): a cut that loses the record of
 *                     state ArtifactCommit leaves the update awaiting its commit with it
 *   TEST_NO_COMMIT: declares MOLT_CAP_LAZY_COMMIT without an artifact_commit (NULL: the
 *                     commit succeeds doing nothing), for the kit's skip of lazy-commit-lost
 * (the BROKEN variants are modules the conformance kit must fail, tests/integration/
 * test_conformance.sh). */
#include <molt/sdk.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#ifndef TEST_TYPE
#define TEST_TYPE "native-copy"
#endif
#ifndef TEST_NAME
#define TEST_NAME "copy"
#endif
#if defined TEST_BROKEN_LAZY && !defined TEST_CAPS
#define TEST_CAPS (MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK | MOLT_CAP_LAZY_DOWNLOAD)
#endif
#if defined TEST_BROKEN_LAZY_COMMIT && !defined TEST_CAPS
#define TEST_CAPS (MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK | MOLT_CAP_LAZY_COMMIT)
#endif
#if defined TEST_NO_COMMIT && !defined TEST_CAPS
#define TEST_CAPS (MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK | MOLT_CAP_LAZY_COMMIT)
#endif
#ifndef TEST_CAPS
#define TEST_CAPS (MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK)
#endif
#define FILES_MAX 65536

typedef struct state {
    const struct molt_host_api *host;
} state;

static void note_call(state *s, const char *call)
{
    char *path = NULL;
    if (asprintf(&path, "%s/calls", s->host->work_dir(s->host)) < 0)
        return;
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s\n", call);
        fclose(f);
    }
    free(path);
}

/* Die of SIGSEGV, for real (also under ASan, whose handler would turn it into an exit). */
static void crash(state *s, const char *call)
{
    molt_sdk_log_info(s->host, "crashing now in %s", call);
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
}

/* The deployment values (ABI 1.2): what this call sees, then the call added to them. */
static void note_values(state *s, const char *call)
{
    const struct molt_host_api *h = s->host;
    char seen[1024], *path = NULL;
    size_t len = 0;
    if (!MOLT_HOST_HAS(h, dep_set) ||
        asprintf(&path, "%s/values", h->work_dir(h)) < 0)
        return;
    int r = h->dep_get(h, "seen", seen, sizeof seen - 64, &len);
    if (r < 0)
        len = 0;
    seen[len] = '\0';
    FILE *f = fopen(path, "a");
    free(path);
    if (!f)
        return;
    fprintf(f, "%s: %s\n", call, r < 0 ? "-" : seen);
    if (strcmp(call, "Download") == 0) {
        static char big[MOLT_DEP_VALUES_MAX + 1];
        fprintf(f, "big: %d\n", h->dep_set(h, "big", big, sizeof big));
    }
    fclose(f);
    snprintf(seen + len, sizeof seen - len, "%s,", call);
    h->dep_set(h, "seen", seen, strlen(seen));
}

/* Note the call; fail it, hang in it or crash in it (once) if the meta-data says so. */
static int enter(state *s, const char *call)
{
    char *fail = NULL, *hang = NULL, *crash_in = NULL;
    note_call(s, call);
    note_values(s, call);
    if (molt_sdk_json_string(s->host->meta_data(s->host), "/crash", &crash_in, NULL) == 0) {
        char key[128], flag[4];
        size_t len;
        int hit = strcmp(crash_in, call) == 0;
        free(crash_in);
        snprintf(key, sizeof key, "crashed-%s", call);
        if (hit && s->host->kv_get(s->host, key, flag, sizeof flag, &len) == MOLT_ENOTFOUND) {
            if (s->host->kv_set(s->host, key, "1", 1) < 0)
                return MOLT_EIO;
            crash(s, call);
        }
    }
    if (molt_sdk_json_string(s->host->meta_data(s->host), "/hang", &hang, NULL) == 0) {
        int hit = strcmp(hang, call) == 0;
        free(hang);
        while (hit)
            pause();
    }
    char *kv_in = NULL;
    if (molt_sdk_json_string(s->host->meta_data(s->host), "/kv_set", &kv_in, NULL) == 0) {
        int hit = strcmp(kv_in, call) == 0;
        free(kv_in);
        if (hit && s->host->kv_set(s->host, "kv-set", call, strlen(call)) < 0)
            return MOLT_EIO;
    }
    if (molt_sdk_json_string(s->host->meta_data(s->host), "/fail", &fail, NULL) == 0) {
        int hit = strcmp(fail, call) == 0;
        free(fail);
        if (hit) {
            s->host->error(s->host, "injected failure in %s", call);
            return MOLT_EMODULE;
        }
    }
    return 0;
}

static int init(const struct molt_host_api *host, void **ret_state)
{
    state *s = calloc(1, sizeof *s);
    if (!s)
        return MOLT_ENOMEM;
    s->host = host;
    /* molt.yaml's modules: <name>: marker: <text> is kept in the kv key "marker" (for tests) */
    const char *marker = host->config_get(host, "marker");
    if (marker && host->kv_set(host, "marker", marker, strlen(marker)) < 0) {
        free(s);
        return MOLT_EIO;
    }
    molt_sdk_log_debug(host, "init, host ABI %u.%u, sdk %s", host->abi_major, host->abi_minor,
                       molt_sdk_version());
    *ret_state = s;
    return 0;
}

static void fini(void *st)
{
    free(st);
}

/* The staged file names ("files"), NUL-terminated, in buf. */
static int staged_names(state *s, char *buf, size_t cap)
{
    size_t len = 0;
    int r = s->host->kv_get(s->host, "files", buf, cap - 1, &len);
    if (r == MOLT_ENOTFOUND)
        len = 0;
    else if (r < 0)
        return r;
    buf[len] = '\0';
    return 0;
}

/* {"sink_stop": true}: the calls of the counting sink, and the blocks Download read. */
static long sink_calls, blocks_read = -1;

static int counting_sink(void *ctx, const void *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    sink_calls++;
    return 0;
}

static int meta_flag(const struct molt_host_api *h, const char *pointer)
{
    int v = 0;
    return molt_sdk_json_bool(h->meta_data(h), pointer, &v, NULL) == 0 && v;
}

#if defined TEST_BROKEN_LAZY || defined TEST_BROKEN_LAZY_COMMIT
/* <dest>/leftover (malloc'd), or NULL. */
static char *leftover_path(const struct molt_host_api *h)
{
    char *dest = NULL, *left = NULL;
    if (molt_sdk_json_string(h->meta_data(h), "/dest", &dest, NULL) == 0 &&
        asprintf(&left, "%s/leftover", dest) < 0)
        left = NULL;
    free(dest);
    return left;
}
#endif

#if defined TEST_BROKEN_LAZY || defined TEST_BROKEN_LAZY_COMMIT
static void make_leftover(const struct molt_host_api *h)
{
    char *left = leftover_path(h);
    FILE *f = left ? fopen(left, "w") : NULL;
    if (f)
        fclose(f);
    free(left);
}
#endif

static int download(void *st)
{
    state *s = st;
    const struct molt_host_api *h = s->host;
    struct molt_sdk_error err = {0};
    int r = enter(s, "Download");
    if (r < 0)
        return r;
#ifdef TEST_BROKEN_LAZY
    make_leftover(h);
    return 0;
#endif
    if (meta_flag(h, "/sink_stop")) {
        const char *name;
        const void *block;
        int64_t size;
        if (h->next_file(h, &name, &size) != 1 || h->set_sink(h, counting_sink, NULL) != 0 ||
            h->read_block(h, &block) <= 0)
            return MOLT_EPROTOCOL;
        blocks_read = 1;
        return 0;   /* the rest unread */
    }
    char *names = calloc(1, FILES_MAX);
    size_t used = 0;
    if (!names)
        return MOLT_ENOMEM;
    const char *name;
    int64_t size;
    if (!(TEST_CAPS & MOLT_CAP_STREAMING)) {
        /* files mode: the host staged the files; take them from files_dir() */
        if (h->next_file(h, &name, &size) != 0) {
            h->error(h, "next_file gave a file in files mode");
            free(names);
            return MOLT_EPROTOCOL;
        }
    }
    while ((TEST_CAPS & MOLT_CAP_STREAMING) && (r = h->next_file(h, &name, &size)) == 1) {
        char *path = NULL, *tmp = NULL;
        int fd;
        if ((r = molt_sdk_path_join(h->tmp_dir(h), name, &path, &err)) < 0 ||
            (r = molt_sdk_atomic_open(path, 0644, &fd, &tmp, &err)) < 0) {
            free(path);
            break;
        }
        char *write_to = NULL;
        int to = -1;
        if (molt_sdk_json_string(h->meta_data(h), "/write_to", &write_to, NULL) == 0)
            to = open(write_to, O_WRONLY | O_CLOEXEC);
        free(write_to);
        int64_t got = molt_sdk_copy_payload(h, to >= 0 ? to : fd, size, &err);
        if (to >= 0)
            close(to);
        if (got < 0) {
            molt_sdk_atomic_abort(fd, tmp);
            free(path);
            r = (int)got;
            break;
        }
        r = molt_sdk_atomic_commit(fd, tmp, path, &err);
        free(path);
        if (r < 0)
            break;
        molt_sdk_log_info(h, "staged %s: %lld bytes", name, (long long)got);
        used += (size_t)snprintf(names + used, FILES_MAX - used, "%s\n", name);
    }
    if (r == 0 && !(TEST_CAPS & MOLT_CAP_STREAMING)) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "cd '%s' && ls", h->files_dir(h));
        FILE *ls = popen(cmd, "r");
        char line[1024];
        while (ls && fgets(line, sizeof line, ls)) {
            line[strcspn(line, "\n")] = '\0';
            char *src = NULL, *dst = NULL;
            if ((r = molt_sdk_path_join(h->files_dir(h), line, &src, &err)) == 0 &&
                (r = molt_sdk_path_join(h->tmp_dir(h), line, &dst, &err)) == 0)
                r = molt_sdk_copy_file(src, dst, 0644, NULL, NULL, &err);
            free(src);
            free(dst);
            if (r < 0)
                break;
            used += (size_t)snprintf(names + used, FILES_MAX - used, "%s\n", line);
        }
        if (ls)
            pclose(ls);
    }
    if (r == 0)
        r = h->kv_set(h, "files", names, used);
    free(names);
    return r < 0 ? (err.code ? molt_sdk_fail(h, &err) : r) : 0;
}

/* Run fn(s, dest, name) for every staged file. */
static int each_file(state *s, int (*fn)(state *, const char *, const char *,
                                          struct molt_sdk_error *))
{
    const struct molt_host_api *h = s->host;
    struct molt_sdk_error err = {0};
    char *dest = NULL, *names = malloc(FILES_MAX + 1);
    int r = names ? staged_names(s, names, FILES_MAX + 1) : MOLT_ENOMEM;
    if (r == 0 && molt_sdk_json_string(h->meta_data(h), "/dest", &dest, &err) < 0)
        r = molt_sdk_fail(h, &err);
    for (char *save = NULL, *n = r == 0 ? strtok_r(names, "\n", &save) : NULL; n && r == 0;
         n = strtok_r(NULL, "\n", &save))
        if ((r = fn(s, dest, n, &err)) < 0)
            r = molt_sdk_fail(h, &err);
    free(dest);
    free(names);
    return r;
}

static int backup_path(state *s, const char *name, char **ret, struct molt_sdk_error *err)
{
    char *dir = NULL;
    if (asprintf(&dir, "%s/backup", s->host->work_dir(s->host)) < 0)
        return MOLT_ENOMEM;
    mkdir(dir, 0700);
    int r = molt_sdk_path_join(dir, name, ret, err);
    free(dir);
    return r;
}

static int install_one(state *s, const char *dest, const char *name, struct molt_sdk_error *err)
{
    char *target = NULL, *backup = NULL, *staged = NULL;
    int r;
    if ((r = molt_sdk_path_join(dest, name, &target, err)) == 0 &&
        (r = backup_path(s, name, &backup, err)) == 0 &&
        (r = molt_sdk_path_join(s->host->tmp_dir(s->host), name, &staged, err)) == 0) {
        char absent[4096];
        snprintf(absent, sizeof absent, "%s.absent", backup);
        if (access(target, F_OK) == 0)
            r = molt_sdk_copy_file(target, backup, 0644, NULL, NULL, err);
        else
            r = molt_sdk_write_file_atomic(absent, "", 0, 0644, err);
        if (r == 0)
            r = molt_sdk_copy_file(staged, target, 0644, NULL, NULL, err);
    }
    free(target);
    free(backup);
    free(staged);
    return r;
}

static int artifact_install(void *st)
{
    state *s = st;
    int r = enter(s, "ArtifactInstall");
    if (r < 0)
        return r;
    if (meta_flag(s->host, "/sink_stop")) {
        if (sink_calls != blocks_read) {
            s->host->error(s->host, "the sink was called %ld times for the %ld block(s) read",
                           sink_calls, blocks_read);
            return MOLT_EMODULE;
        }
        return 0;
    }
#ifdef TEST_CRASH
    size_t len;
    char flag[4];
    if (s->host->kv_get(s->host, "crashed", flag, sizeof flag, &len) == MOLT_ENOTFOUND) {
        if (s->host->kv_set(s->host, "crashed", "1", 1) < 0)
            return MOLT_EIO;
        crash(s, "ArtifactInstall");
    }
#endif
#ifdef TEST_BROKEN_INSTALL
    (void)install_one;
    return 0;
#else
    return each_file(s, install_one);
#endif
}

static int rollback_one(state *s, const char *dest, const char *name, struct molt_sdk_error *err)
{
    char *target = NULL, *backup = NULL;
    int r;
    if ((r = molt_sdk_path_join(dest, name, &target, err)) == 0 &&
        (r = backup_path(s, name, &backup, err)) == 0) {
        char absent[4096];
        snprintf(absent, sizeof absent, "%s.absent", backup);
        /* a backup: put it back; "absent": the file was new; neither: install never got here */
        if (access(backup, F_OK) == 0)
            r = molt_sdk_copy_file(backup, target, 0644, NULL, NULL, err);
        else if (access(absent, F_OK) == 0 && unlink(target) < 0 && errno != ENOENT)
            r = MOLT_EIO;
    }
    free(target);
    free(backup);
    return r;
}

static int artifact_rollback(void *st)
{
    state *s = st;
    int r = enter(s, "ArtifactRollback");
#ifdef TEST_BROKEN_ROLLBACK
    (void)rollback_one;
    return r;
#else
    return r < 0 ? r : each_file(s, rollback_one);
#endif
}

static int drop_backup(state *s, const char *dest, const char *name, struct molt_sdk_error *err)
{
    char *backup = NULL;
    int r = backup_path(s, name, &backup, err);
    char absent[4096];
    if (r == 0) {
        snprintf(absent, sizeof absent, "%s.absent", backup);
        unlink(backup);
        unlink(absent);
    }
    free(backup);
    return r;
}

#ifndef TEST_NO_COMMIT
static int artifact_commit(void *st)
{
    state *s = st;
    int r = enter(s, "ArtifactCommit");
#ifdef TEST_BROKEN_LAZY_COMMIT
    if (r == 0)
        make_leftover(s->host);
#endif
#ifdef TEST_BROKEN_COMMIT
    return r < 0 ? r : each_file(s, drop_backup);
#else
    return r;
#endif
}
#endif

static int artifact_failure(void *st)
{
    return enter(st, "ArtifactFailure");
}

static int cleanup(void *st)
{
    state *s = st;
    int r = enter(s, "Cleanup");
#if defined TEST_BROKEN_LAZY || defined TEST_BROKEN_LAZY_COMMIT
    char *left = leftover_path(s->host);
    if (left)
        unlink(left);
    free(left);
#endif
    if (r == 0)
        r = each_file(s, drop_backup);
    return r < 0 ? r : s->host->kv_delete(s->host, "files");
}

static const char *const types[] = {TEST_TYPE, NULL};

static const struct molt_module_desc desc = {
    MOLT_MODULE_V1,
    .name = TEST_NAME,
    .version = "1.0.0",
    .payload_types = types,
    .capabilities = TEST_CAPS,
    .init = init,
    .fini = fini,
    .download = download,
    .artifact_install = artifact_install,
#ifndef TEST_NO_COMMIT
    .artifact_commit = artifact_commit,
#endif
    .artifact_rollback = artifact_rollback,
    .artifact_failure = artifact_failure,
    .cleanup = cleanup,
};

const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
