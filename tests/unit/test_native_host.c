/* SPDX-License-Identifier: Apache-2.0 */
/* The native module host and the registry against real shared objects built from
 * tests/modules/native: the ABI refusals with their exact messages, the registry (native before
 * exec, a payload type claimed twice), and a whole deployment driven through the molt_module
 * interface on an artifact written by the real mender-artifact, in-process and isolated (forked
 * child), streaming and files mode, including a module that dies of SIGSEGV. */
#include "fixture.h"

#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "artifact/reader.h"
#include "artifact/source.h"
#include "host/exec_host.h"
#include "host/native_host.h"
#include "host/registry.h"
#include "host/worktree.h"
#include "util/fs.h"

#define BUF 1024

typedef struct fixture {
    char dir[PATH_MAX]; /* scratch folder (realpath: PATH_MAX bytes) */
    char mods[BUF];     /* built test modules: <build>/tests/modules/native */
    char data[BUF];     /* molt data dir */
    char tree[BUF];     /* the deployment's work tree */
    char dest[BUF];     /* where the copy module installs */
    char payload[BUF];  /* 300001 random bytes */
    char artifact[BUF];
    int timeout;        /* of isolated calls made by new_module, seconds */
} fixture;

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *da = fx_read(a, &la), *db = fx_read(b, &lb);
    if (la != lb || memcmp(da, db, la) != 0)
        fail_msg("%s (%zu bytes) and %s (%zu bytes) differ", a, la, b, lb);
    free(da);
    free(db);
}

static void assert_text(const char *path, const char *expect)
{
    size_t len;
    char *data = fx_read(path, &len);
    if (strcmp(data, expect) != 0)
        fail_msg("%s: expected\n%s\ngot\n%s", path, expect, data);
    free(data);
}

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "native-test");
    const char *build = fx_build_dir();
    snprintf(f->mods, sizeof f->mods, "%s/tests/modules/native", build);
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    snprintf(f->tree, sizeof f->tree, "%s/data/tree", f->dir);
    snprintf(f->dest, sizeof f->dest, "%s/dest", f->dir);
    snprintf(f->payload, sizeof f->payload, "%s/payload.bin", f->dir);
    snprintf(f->artifact, sizeof f->artifact, "%s/a.mender", f->dir);
    assert_int_equal(molt_mkdir_p(f->data, 0755, NULL), 0);
    assert_int_equal(molt_mkdir_p(f->dest, 0755, NULL), 0);
    f->timeout = 60;
    return 0;
}

static int teardown(void **state)
{
    return fx_fixture_free(state);
}

static void mod_path(const fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.so", f->mods, name);
}

/* ---- loading and the refusals -------------------------------------------------------------- */

/* A module of this ABI (probe_ok) and one built for minor 0 (probe_minor0: a 1.0 module, which
 * a 1.1 host loads unchanged) both load. */
static void test_load_minor0(void **state)
{
    fixture *f = *state;
    const char *files[] = {"probe_ok", "probe_minor0"};
    const unsigned minors[] = {MOLT_MODULE_ABI_MINOR, 0};
    for (size_t i = 0; i < 2; i++) {
        char path[BUF];
        molt_err err = {0};
        molt_native *n = NULL;
        mod_path(f, files[i], path, sizeof path);
        if (molt_native_load(&n, path, &err) != 0)
            fail_msg("%s", err.msg);
        const struct molt_module_desc *d = molt_native_desc(n);
        assert_int_equal(d->abi_major, 1);
        assert_int_equal(d->abi_minor, minors[i]);
        assert_string_equal(d->name, "probe");
        assert_true(molt_native_claims(n, "probe"));
        assert_false(molt_native_claims(n, "probex"));
        assert_string_equal(molt_native_path(n), path);
        molt_native_free(n);
    }
}

/* Loading tests/modules/native/<name>.so fails with code and "module <path>: <why>". */
static void expect_refusal(const fixture *f, const char *name, int code, const char *why)
{
    char path[BUF], want[2 * BUF];
    molt_err err = {0};
    molt_native *n = NULL;
    mod_path(f, name, path, sizeof path);
    snprintf(want, sizeof want, "module %s: %s", path, why);
    assert_int_equal(molt_native_load(&n, path, &err), code);
    assert_null(n);
    assert_string_equal(err.msg, want);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    expect_refusal(f, "probe_major2", MOLT_EUNSUPPORTED,
                   "ABI 2.0 is not supported by this molt (ABI 1.2): rebuild it "
                   "against molt-sdk 1");
    expect_refusal(f, "probe_minor99", MOLT_EUNSUPPORTED,
                   "ABI 1.99 is newer than this molt (ABI 1.2): rebuild it against "
                   "molt-sdk 1.2 or update molt");
    char fmt[BUF];
    snprintf(fmt, sizeof fmt,
             "descriptor struct_size 16 is smaller than the %zu bytes of ABI 1.2: "
             "rebuild it against molt-sdk 1",
             sizeof(struct molt_module_desc));
    expect_refusal(f, "probe_short", MOLT_EUNSUPPORTED, fmt);
    expect_refusal(f, "probe_no_install", MOLT_EUNSUPPORTED,
                   "mandatory function artifact_install is missing (NULL)");
    expect_refusal(f, "probe_no_rollback", MOLT_EUNSUPPORTED,
                   "mandatory function artifact_rollback (MOLT_CAP_ROLLBACK is set) is missing "
                   "(NULL)");

    /* not a shared object at all, and a shared object that is not a module */
    char path[BUF];
    molt_err err = {0};
    molt_native *n = NULL;
    snprintf(path, sizeof path, "%s/junk.so", f->dir);
    assert_int_equal(molt_write_file_atomic(path, "junk", 4, 0644, NULL), 0);
    assert_int_equal(molt_native_load(&n, path, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, "junk.so: cannot load: "));
    snprintf(path, sizeof path, "%s/../../../sdk/lib/libmolt-sdk.so", f->mods);
    assert_int_equal(molt_native_load(&n, path, &err), MOLT_EFORMAT);
    char want[2 * BUF];
    snprintf(want, sizeof want, "module %s: no symbol molt_module_entry: not a molt native module",
             path);
    assert_string_equal(err.msg, want);
}

/* Whether the shared object at path is mapped in this process (RTLD_NOLOAD maps nothing). */
static bool is_mapped(const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (dl)
        dlclose(dl);   /* the reference RTLD_NOLOAD took */
    return dl != NULL;
}

/* The module is unloaded by molt_native_free (keep false: as the daemon needs, for its idle
 * RSS) or left mapped (keep true), and a module that molt_native_load refused is never left
 * mapped. NULL, or what went wrong (no cmocka assertion: test_keep_mapped runs it in a child). */
static const char *check_unloads(const fixture *f, bool keep)
{
    char ok[BUF], refused[BUF];
    molt_err err = {0};
    molt_native *n = NULL;
    mod_path(f, "probe_ok", ok, sizeof ok);
    mod_path(f, "probe_major2", refused, sizeof refused);
    if (is_mapped(ok))
        return "probe_ok is mapped before it is loaded";
    if (molt_native_load(&n, ok, &err) != 0)
        return "probe_ok does not load";
    if (!is_mapped(ok))
        return "probe_ok is not mapped once loaded";
    molt_native_free(n);
    if (is_mapped(ok) != keep)
        return keep ? "probe_ok was unmapped by molt_native_free"
                    : "probe_ok is still mapped after molt_native_free";
    if (molt_native_load(&n, refused, &err) != MOLT_EUNSUPPORTED)
        return "probe_major2 was not refused";
    if (is_mapped(refused))
        return "probe_major2 is still mapped after its refusal";
    return NULL;
}

static void test_free_unloads(void **state)
{
    const char *why = check_unloads(*state, false);
    if (why)
        fail_msg("%s", why);
}

/* After molt_native_keep_mapped (the CLI's one-shot commands), molt_native_free leaves the
 * module mapped for the exit to unmap, and a refused module is still unloaded at once. In a
 * child: the switch is for the rest of a process. */
static void test_keep_mapped(void **state)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        molt_native_keep_mapped();
        const char *why = check_unloads(*state, true);
        if (why && write(pipefd[1], why, strlen(why)) < 0)
            _exit(2);
        _exit(why ? 1 : 0);
    }
    close(pipefd[1]);
    char why[256] = "";
    ssize_t len = read(pipefd[0], why, sizeof why - 1);
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child: %s", len > 0 ? why : "died");
}

/* ---- the registry ---------------------------------------------------------------------------- */

static void link_module(const fixture *f, const char *dir, const char *name)
{
    char cmd[4 * BUF];
    snprintf(cmd, sizeof cmd, "ln -s '%s/%s.so' '%s/%s.so'", f->mods, name, dir, name);
    fx_sh("%s", cmd);
}

static void test_registry(void **state)
{
    fixture *f = *state;
    char native[BUF], exec1[BUF], exec2[BUF], cmd[4 * BUF];
    snprintf(native, sizeof native, "%s/native", f->dir);
    snprintf(exec1, sizeof exec1, "%s/exec1", f->dir);
    snprintf(exec2, sizeof exec2, "%s/exec2", f->dir);
    snprintf(cmd, sizeof cmd,
             "mkdir '%s' '%s' '%s' && printf '#!/bin/sh\\n' >'%s/native-copy' && "
             "printf '#!/bin/sh\\n' >'%s/other' && cp '%s/other' '%s/other' && "
             "chmod 755 '%s/native-copy' '%s/other' '%s/other' && touch '%s/README.txt'",
             native, exec1, exec2, exec1, exec1, exec1, exec2, exec1, exec1, exec2, native);
    fx_sh("%s", cmd);
    link_module(f, native, "native_copy");
    link_module(f, native, "probe_crash");
    link_module(f, native, "probe_dup");
    link_module(f, native, "probe_major2");

    char *dirs[] = {exec1, exec2};
    molt_config cfg = {.native_module_dir = native, .module_dirs = dirs, .n_module_dirs = 2,
                       .data_dir = f->data, .module_timeout = 30};
    molt_registry *reg = NULL;
    molt_err err = {0};
    if (molt_registry_load(&reg, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(reg->n_items, 5);
    char want[4 * BUF];
    /* native first, in file name order */
    assert_int_equal(reg->items[0].kind, MOLT_MODULE_NATIVE);
    assert_string_equal(reg->items[0].type, "native-copy");
    assert_string_equal(reg->items[0].name, "copy");
    assert_string_equal(reg->items[0].version, "1.0.0");
    assert_null(reg->items[0].refused);
    /* loaded in a child process: its crash refuses it, molt goes on */
    snprintf(want, sizeof want, "module %s/probe_crash.so: loading it crashed: killed by signal "
             "%d (%s)", native, SIGABRT, strsignal(SIGABRT));
    assert_null(reg->items[1].type);
    assert_string_equal(reg->items[1].refused, want);
    snprintf(want, sizeof want,
             "module %s/probe_dup.so: payload type native-copy is already claimed by module "
             "%s/native_copy.so",
             native, native);
    assert_null(reg->items[2].type);
    assert_string_equal(reg->items[2].refused, want);
    snprintf(want, sizeof want,
             "module %s/probe_major2.so: ABI 2.0 is not supported by this molt (ABI 1.2): "
             "rebuild it against molt-sdk 1",
             native);
    assert_string_equal(reg->items[3].refused, want);
    /* exec: native-copy is hidden by the native module, other/ of exec2 by exec1's */
    assert_int_equal(reg->items[4].kind, MOLT_MODULE_EXEC);
    assert_string_equal(reg->items[4].type, "other");
    snprintf(want, sizeof want, "%s/other", exec1);
    assert_string_equal(reg->items[4].path, want);
    assert_ptr_equal(molt_registry_lookup(reg, "other"), &reg->items[4]);
    assert_null(molt_registry_lookup(reg, "probe"));
    molt_registry_free(reg);

    char *path = NULL;
    molt_module_kind kind = MOLT_MODULE_EXEC;
    assert_int_equal(molt_registry_find(&cfg, "native-copy", &path, &kind, NULL, &err), 0);
    snprintf(want, sizeof want, "%s/native_copy.so", native);
    assert_string_equal(path, want);
    assert_int_equal(kind, MOLT_MODULE_NATIVE);
    assert_true(molt_registry_is_native(&cfg, path));
    free(path);
    assert_int_equal(molt_registry_find(&cfg, "other", &path, &kind, NULL, &err), 0);
    snprintf(want, sizeof want, "%s/other", exec1);
    assert_string_equal(path, want);
    assert_int_equal(kind, MOLT_MODULE_EXEC);
    assert_false(molt_registry_is_native(&cfg, path));
    free(path);
    assert_int_equal(molt_registry_find(&cfg, "nothing", &path, &kind, NULL, &err), MOLT_ENOTFOUND);
    const char *head = "Update Module not found for payload type 'nothing' in ";
    assert_true(strncmp(err.msg, head, strlen(head)) == 0);
    snprintf(want, sizeof want, " (and no native module in %s claims it)", native);
    assert_true(strlen(err.msg) > strlen(want) &&
                strcmp(err.msg + strlen(err.msg) - strlen(want), want) == 0);

    /* a module whose file is not in the native dir is not native, even if it ends in .so */
    snprintf(want, sizeof want, "%s/native_copy.so", f->mods);
    assert_false(molt_registry_is_native(&cfg, want));
}

/* ---- a deployment through the molt_module interface ------------------------------------------ */

/* An artifact of type with payload.bin (size random bytes) and notes.txt, meta-data
 * {"dest": dest, ...}. */
static void make_artifact_sized(fixture *f, const char *type, const char *extra_meta, long size)
{
    char cmd[8 * BUF];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c %ld /dev/urandom >payload.bin && printf 'hello\\n' >notes.txt"
             " && printf '{\"dest\": \"%s\"%s}' >meta.json && rm -f a.mender && "
             "mender-artifact write module-image -T %s -n art-1 -t dev -f payload.bin "
             "-f notes.txt -m meta.json -o a.mender >/dev/null",
             f->dir, size, f->dest, extra_meta, type);
    fx_sh("%s", cmd);
}

static void make_artifact(fixture *f, const char *type, const char *extra_meta)
{
    make_artifact_sized(f, type, extra_meta, 300001);
}

/* Open the artifact and create the work tree, as the state machine does before Download. */
static void open_artifact(fixture *f, molt_source **src, molt_artifact_reader **r)
{
    molt_err err = {0};
    molt_artifact_opts opts = {0};
    molt_rm_rf(f->tree, NULL);
    assert_int_equal(molt_source_file_new(src, f->artifact, &err), 0);
    if (molt_artifact_reader_open(r, *src, &opts, &err) != 0)
        fail_msg("%s", err.msg);
    molt_exec_tree_info ti = {"old-1", "", "dev"};
    if (molt_worktree_create_exec(f->tree, molt_artifact_reader_info(*r), &ti, &err) != 0)
        fail_msg("%s", err.msg);
}

static molt_module *new_module(fixture *f, const char *file, const char *type, bool isolated)
{
    char path[BUF];
    molt_err err = {0};
    molt_module *m = NULL;
    mod_path(f, file, path, sizeof path);
    /* the module's settings from molt.yaml (modules: copy: marker: ...) */
    static char *keys[] = {"marker"}, *values[] = {"from molt.yaml"};
    static molt_module_config settings[] = {{"copy", keys, values, 1}};
    molt_config cfg = {.modules = settings, .n_modules = 1};
    molt_native_opts opts = {.tree_dir = f->tree, .data_dir = f->data, .isolated = isolated,
                             .timeout = f->timeout, .cfg = &cfg};
    if (molt_native_module_new(&m, path, type, &opts, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(m->name, type);
    assert_string_equal(m->path, path);
    return m;
}

/* The artifact (made by the caller) opened, the module created and its Download done. */
static molt_module *downloaded(fixture *f, const char *file, const char *type, bool isolated)
{
    molt_err err = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    open_artifact(f, &src, &r);
    molt_module *m = new_module(f, file, type, isolated);
    if (m->ops->download(m, r, &err) != 0)
        fail_msg("Download: %s", err.msg);
    molt_artifact_reader_free(r);
    molt_source_free(src);
    return m;
}

/* Download with m, then the host's reading of what m left unread (as the state machine does),
 * then the artifact closed. */
static void download_finish(molt_module *m, molt_artifact_reader *r, molt_source *src)
{
    molt_err err = {0};
    if (m->ops->download(m, r, &err) != 0)
        fail_msg("Download: %s", err.msg);
    if (molt_artifact_reader_finish(r, &err) != 0)
        fail_msg("finish: %s", err.msg);
    molt_artifact_reader_free(r);
    molt_source_free(src);
}

static void call_ok(molt_module *m, molt_call call)
{
    molt_err err = {0};
    if (m->ops->call(m, call, &err) != 0)
        fail_msg("%s: %s", molt_call_name(call), err.msg);
}

/* A native module's work tree holds no header (molt_worktree_create_native: tree/ and tree/tmp/,
 * no fsync per header file): the module reads the header from the deployment record, here
 * built as the state machine builds it; the meta-data's "dest" steers the copy module. */
static void test_header_from_record(void **state)
{
    fixture *f = *state;
    char path[2 * BUF], mpath[BUF];
    molt_err err = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    make_artifact(f, "native-copy", "");
    snprintf(path, sizeof path, "%s/header", f->tree);
    assert_int_equal(molt_mkdir_p(path, 0755, NULL), 0);   /* an older tree: removed */
    if (molt_worktree_create_native(f->tree, &err) != 0)
        fail_msg("%s", err.msg);
    assert_false(molt_path_exists(f->tree));   /* made when the module asks for tmp_dir() */
    assert_int_equal(molt_source_file_new(&src, f->artifact, &err), 0);
    molt_artifact_opts aopts = {0};
    if (molt_artifact_reader_open(&r, src, &aopts, &err) != 0)
        fail_msg("%s", err.msg);
    const molt_artifact_info *info = molt_artifact_reader_info(r);
    json_t *art = json_pack("{s:s, s:s?, s:O?, s:O?, s:O?}", "name", info->name, "group",
                            info->group, "type_info", info->type_info, "header_info",
                            info->header_info, "meta_data", info->meta_data);
    assert_non_null(art);
    mod_path(f, "native_copy", mpath, sizeof mpath);
    molt_native_opts opts = {.tree_dir = f->tree, .data_dir = f->data, .artifact = art};
    molt_module *m = NULL;
    if (molt_native_module_new(&m, mpath, "native-copy", &opts, &err) != 0)
        fail_msg("%s", err.msg);
    download_finish(m, r, src);
    snprintf(path, sizeof path, "%s/tmp", f->tree);
    assert_true(molt_path_exists(path));   /* made at the module's first tmp_dir() */
    m->ops->free(m);
    /* a new handle, as after a restart */
    if (molt_native_module_new(&m, mpath, "native-copy", &opts, &err) != 0)
        fail_msg("%s", err.msg);
    call_ok(m, MOLT_CALL_ARTIFACT_INSTALL);
    snprintf(path, sizeof path, "%s/payload.bin", f->dest);
    assert_same_file(path, f->payload);
    call_ok(m, MOLT_CALL_ARTIFACT_COMMIT);
    call_ok(m, MOLT_CALL_CLEANUP);
    m->ops->free(m);
    json_decref(art);
}

static void deploy(fixture *f, const char *file, const char *type, bool isolated)
{
    char path[2 * BUF], calls[2 * BUF], old[BUF];
    molt_err err = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    make_artifact(f, type, "");
    /* notes.txt exists on the device before: rollback must bring it back */
    snprintf(old, sizeof old, "%s/notes.txt", f->dest);
    assert_int_equal(molt_write_file_atomic(old, "old notes\n", 10, 0644, NULL), 0);
    open_artifact(f, &src, &r);
    molt_module *m = new_module(f, file, type, isolated);
    download_finish(m, r, src);
    /* the exact payload bytes reached the module */
    snprintf(path, sizeof path, "%s/tmp/payload.bin", f->tree);
    assert_same_file(path, f->payload);

    /* a new handle, as after a restart: the module keeps nothing in memory */
    m->ops->free(m);
    m = new_module(f, file, type, isolated);
    call_ok(m, MOLT_CALL_ARTIFACT_INSTALL);
    snprintf(path, sizeof path, "%s/payload.bin", f->dest);
    assert_same_file(path, f->payload);
    assert_text(old, "hello\n");
    molt_answer a = MOLT_ANSWER_AUTOMATIC;
    assert_int_equal(m->ops->query(m, MOLT_CALL_NEEDS_ARTIFACT_REBOOT, &a, &err), 0);
    assert_int_equal(a, MOLT_ANSWER_NO);
    assert_int_equal(m->ops->query(m, MOLT_CALL_SUPPORTS_ROLLBACK, &a, &err), 0);
    assert_int_equal(a, MOLT_ANSWER_YES);
    /* rollback twice (idempotent), then failure and cleanup */
    call_ok(m, MOLT_CALL_ARTIFACT_ROLLBACK);
    call_ok(m, MOLT_CALL_ARTIFACT_ROLLBACK);
    assert_text(old, "old notes\n");
    assert_false(molt_path_exists(path));
    call_ok(m, MOLT_CALL_ARTIFACT_FAILURE);
    call_ok(m, MOLT_CALL_CLEANUP);
    /* a query is not a call and the other way round */
    assert_int_equal(m->ops->call(m, MOLT_CALL_SUPPORTS_ROLLBACK, &err), MOLT_EINVAL);
    assert_int_equal(m->ops->query(m, MOLT_CALL_ARTIFACT_COMMIT, &a, &err), MOLT_EINVAL);
    m->ops->free(m);

    const struct { const char *file, *name; } names[] = {{"native_copy", "copy"},
                                                          {"native_files", "files"}};
    const char *name = strcmp(file, names[0].file) == 0 ? names[0].name : names[1].name;
    snprintf(calls, sizeof calls, "%s/native/%s/work/calls", f->data, name);
    assert_text(calls, "Download\nArtifactInstall\nArtifactRollback\nArtifactRollback\n"
                       "ArtifactFailure\nCleanup\n");
    /* the kv store: "files" was set by Download and deleted by Cleanup */
    snprintf(path, sizeof path, "%s/native/%s/kv/files", f->data, name);
    assert_false(molt_path_exists(path));
    /* config_get answered from the settings of the module's name only */
    snprintf(path, sizeof path, "%s/native/%s/kv/marker", f->data, name);
    if (strcmp(name, "copy") == 0)
        assert_text(path, "from molt.yaml");
    else
        assert_false(molt_path_exists(path));
}

/* Every fsync of the program (molt-core is linked in statically): the paths, in order. */
static char synced[16][PATH_MAX];
static int n_synced;
int fsync(int fd)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    if (n_synced < 16) {
        ssize_t n = readlink(link, synced[n_synced], PATH_MAX - 1);
        synced[n_synced][n > 0 ? n : 0] = '\0';
        n_synced++;
    }
    return (int)syscall(SYS_fsync, fd);
}

static bool was_synced(const char *path)
{
    for (int i = 0; i < n_synced && i < 16; i++)
        if (strcmp(synced[i], path) == 0)
            return true;
    return false;
}

/* A native tree is made only when the module asks for tmp_dir() (host/worktree.h), without
 * fsyncs: a module that never asks gets none (the file module's single file); one that asks in
 * Download (the copy module stages its payloads there) gets it made and its name made durable:
 * the tree and the tree's parent are fsync'd. */
static void test_tmp_dir_made_durable(void **state)
{
    fixture *f = *state;
    char tree[PATH_MAX], parent[PATH_MAX];
    molt_err err = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    molt_artifact_opts aopts = {0};
    make_artifact(f, "native-copy", "");
    assert_int_equal(molt_source_file_new(&src, f->artifact, &err), 0);
    if (molt_artifact_reader_open(&r, src, &aopts, &err) != 0)
        fail_msg("%s", err.msg);
    molt_rm_rf(f->tree, NULL);
    n_synced = 0;
    if (molt_worktree_create_native(f->tree, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(n_synced, 0);
    snprintf(tree, sizeof tree, "%s", f->tree);
    *strrchr(tree, '/') = '\0';
    assert_non_null(realpath(tree, parent));
    snprintf(tree, sizeof tree, "%s%s", parent, strrchr(f->tree, '/'));
    molt_module *m = new_module(f, "native_copy", "native-copy", false);
    call_ok(m, MOLT_CALL_ARTIFACT_COMMIT);   /* the copy module's commit asks for no folder */
    assert_false(molt_path_exists(f->tree));
    assert_false(was_synced(tree));
    assert_false(was_synced(parent));
    download_finish(m, r, src);
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s/tmp", f->tree);
    assert_true(molt_path_exists(tmp));
    assert_true(was_synced(tree));
    assert_true(was_synced(parent));
    m->ops->free(m);
}

/* The record's sync (molt_module_record): counts its calls. */
static int n_record_syncs;
static int count_sync(void *ctx, molt_err *err)
{
    (void)ctx;
    (void)err;
    n_record_syncs++;
    return 0;
}

/* A module handle whose deployment record holds values (NULL: none), as the state machine makes
 * it (molt_module_record). */
static molt_module *module_with_values(fixture *f, const json_t *values, bool isolated)
{
    char path[BUF];
    molt_err err = {0};
    molt_module *m = NULL;
    mod_path(f, "native_copy", path, sizeof path);
    molt_module_record rec = {.values = values, .sync = count_sync};
    molt_native_opts opts = {.tree_dir = f->tree, .data_dir = f->data, .isolated = isolated,
                             .timeout = f->timeout, .record = &rec};
    if (molt_native_module_new(&m, path, "native-copy", &opts, &err) != 0)
        fail_msg("%s", err.msg);
    return m;
}

/* A handle of the copy module whose deployment record holds no values, after Download of a
 * native-copy artifact with extra_meta. The copy module names files in Download (tmp_dir(), the
 * kv store): the record was made durable first, once (counted in this process only). */
static molt_module *downloaded_with_record(fixture *f, const char *extra_meta, bool isolated)
{
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    make_artifact(f, "native-copy", extra_meta);
    open_artifact(f, &src, &r);
    n_record_syncs = 0;
    molt_module *m = module_with_values(f, NULL, isolated);
    assert_null(m->ops->values(m));
    download_finish(m, r, src);
    if (!isolated)
        assert_int_equal(n_record_syncs, 1);
    return m;
}

/* The deployment values (ABI 1.2, dep_get/dep_set): a value set in a call is visible to the
 * next, in this process and (given the record's values, as the machine saves them) in a new
 * handle; one the record did not get is lost; over MOLT_DEP_VALUES_MAX is refused. The copy
 * module writes what each call saw into work_dir()/values. In an isolated module each call runs
 * in a child, whose changes come back with the result. */
static void dep_values(fixture *f, bool isolated)
{
    char values[2 * BUF];
    molt_module *m = downloaded_with_record(f, "", isolated);
    call_ok(m, MOLT_CALL_ARTIFACT_INSTALL);
    json_t *saved = json_deep_copy(m->ops->values(m));   /* as the machine saves them */
    assert_non_null(saved);
    assert_string_equal(json_string_value(json_object_get(saved, "seen")),
                        "446f776e6c6f61642c4172746966616374496e7374616c6c2c");   /* Download,ArtifactInstall, */
    call_ok(m, MOLT_CALL_ARTIFACT_COMMIT);   /* set, but never saved: lost below */
    if (!isolated)   /* a value set in ArtifactCommit makes nothing durable: no record sync */
        assert_int_equal(n_record_syncs, 1);
    m->ops->free(m);
    /* a new process: the record's values */
    m = module_with_values(f, saved, isolated);
    call_ok(m, MOLT_CALL_ARTIFACT_ROLLBACK);
    call_ok(m, MOLT_CALL_CLEANUP);
    m->ops->free(m);
    json_decref(saved);
    snprintf(values, sizeof values, "%s/native/copy/work/values", f->data);
    assert_text(values, "Download: -\n"
                        "big: -8\n"   /* MOLT_ELIMIT */
                        "ArtifactInstall: Download,\n"
                        "ArtifactCommit: Download,ArtifactInstall,\n"
                        "ArtifactRollback: Download,ArtifactInstall,\n"
                        "Cleanup: Download,ArtifactInstall,ArtifactRollback,\n");
}

/* The record's sync in ArtifactCommit (MOLT_CAP_LAZY_COMMIT: the machine may have saved state
 * ArtifactCommit lazily): before a kv_set changes anything there, as in Download; not in
 * ArtifactInstall or Cleanup, whose records are durable. A new handle, as in `molt commit`:
 * its init runs in ArtifactCommit. */
static void test_record_sync_in_commit(void **state)
{
    fixture *f = *state;
    molt_module *m = downloaded_with_record(f, ", \"kv_set\": \"ArtifactCommit\"", false);
    assert_int_equal(m->caps, MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK);
    call_ok(m, MOLT_CALL_ARTIFACT_INSTALL);
    m->ops->free(m);
    m = module_with_values(f, NULL, false);
    call_ok(m, MOLT_CALL_ARTIFACT_COMMIT);
    assert_int_equal(n_record_syncs, 2);   /* its kv_set, once */
    char path[2 * BUF];
    snprintf(path, sizeof path, "%s/native/copy/kv/kv-set", f->data);
    assert_text(path, "ArtifactCommit");
    call_ok(m, MOLT_CALL_CLEANUP);         /* deletes the kv key "files": durable record */
    assert_int_equal(n_record_syncs, 2);
    m->ops->free(m);
}

/* The capability bits of ABI 1.2 are honoured from a module of minor 2 on (molt_native_caps). */
static void test_caps_by_minor(void **state)
{
    (void)state;
    const uint32_t all = MOLT_CAP_STREAMING | MOLT_CAP_LAZY_DOWNLOAD | MOLT_CAP_LAZY_COMMIT;
    struct molt_module_desc d = {MOLT_MODULE_V1_MINOR(1), .capabilities = all};
    assert_int_equal(molt_native_caps(&d), MOLT_CAP_STREAMING);
    d.abi_minor = 2;
    assert_int_equal(molt_native_caps(&d), all);
}

static void test_dep_values_in_process(void **state)
{
    dep_values(*state, false);
}

static void test_dep_values_isolated(void **state)
{
    dep_values(*state, true);
}

static void test_deploy_in_process(void **state)
{
    deploy(*state, "native_copy", "native-copy", false);
}

static void test_deploy_isolated(void **state)
{
    deploy(*state, "native_copy", "native-copy", true);
}

static void test_deploy_files_mode(void **state)
{
    fixture *f = *state;
    deploy(f, "native_files", "native-files", false);
    char path[2 * BUF];
    snprintf(path, sizeof path, "%s/files/payload.bin", f->tree);
    assert_same_file(path, f->payload);   /* the host staged it there first */
}

static void test_module_error_message(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    make_artifact(f, "native-copy", ", \"fail\": \"ArtifactCommit\"");
    molt_module *m = downloaded(f, "native_copy", "native-copy", false);
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_COMMIT, &err), MOLT_EMODULE);
    char want[2 * BUF];
    snprintf(want, sizeof want,
             "module copy (%s/native_copy.so): ArtifactCommit failed: injected failure in "
             "ArtifactCommit",
             f->mods);
    assert_string_equal(err.msg, want);
    m->ops->free(m);
}

static void test_crash_isolated(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    make_artifact(f, "native-crash", "");
    molt_module *m = downloaded(f, "native_crash", "native-crash", true);
    /* the child dies, molt does not */
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_INSTALL, &err), MOLT_EMODULE);
    char want[2 * BUF];
    snprintf(want, sizeof want,
             "module crash (%s/native_crash.so): ArtifactInstall crashed: killed by signal 11 "
             "(Segmentation fault)",
             f->mods);
    assert_string_equal(err.msg, want);
    /* the kv value set just before the crash survived: the second call installs */
    call_ok(m, MOLT_CALL_ARTIFACT_INSTALL);
    char path[2 * BUF];
    snprintf(path, sizeof path, "%s/payload.bin", f->dest);
    assert_same_file(path, f->payload);
    m->ops->free(m);
}

/* A flipped payload byte fails Download with the reader's checksum error, in-process and in the
 * isolated child alike, and the module staged nothing under the name. */
static void checksum_mismatch(fixture *f, bool isolated)
{
    char cmd[8 * BUF];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'payload MARKER-0123456789 end\\n' >payload.bin && "
             "printf '{\"dest\": \"%s\"}' >meta.json && rm -f a.mender && "
             "mender-artifact write module-image -T native-copy -n art-1 -t dev -f payload.bin "
             "-m meta.json --compression none -o a.mender >/dev/null && "
             "python3 -c \"import sys; p=sys.argv[1]; d=bytearray(open(p,'rb').read()); "
             "i=d.find(b'MARKER-0123'); assert i>0; d[i]^=1; open(p,'wb').write(d)\" a.mender",
             f->dir, f->dest);
    fx_sh("%s", cmd);
    molt_err err = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    open_artifact(f, &src, &r);
    molt_module *m = new_module(f, "native_copy", "native-copy", isolated);
    assert_int_equal(m->ops->download(m, r, &err), MOLT_ECHECKSUM);
    assert_non_null(strstr(err.msg, "payload.bin"));
    char path[2 * BUF];
    snprintf(path, sizeof path, "%s/tmp/payload.bin", f->tree);
    assert_false(molt_path_exists(path));
    molt_artifact_reader_free(r);
    molt_source_free(src);
    m->ops->free(m);
}

static void test_checksum_in_process(void **state)
{
    checksum_mismatch(*state, false);
}

static void test_checksum_isolated(void **state)
{
    checksum_mismatch(*state, true);
}

/* A write of the module failing during Download (the SDK's payload copy into /dev/full, which
 * runs as the host's payload sink on the reader's hashing thread in-process, and in the child's
 * reads when isolated) fails Download with the module's own message, not a reader error. */
static void sink_write_fails(fixture *f, bool isolated)
{
    molt_err err = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    make_artifact_sized(f, "native-copy", ", \"write_to\": \"/dev/full\"", 1000000);
    open_artifact(f, &src, &r);
    molt_module *m = new_module(f, "native_copy", "native-copy", isolated);
    assert_int_equal(m->ops->download(m, r, &err), MOLT_ESPACE);
    char want[2 * BUF];
    snprintf(want, sizeof want, "module copy (%s/native_copy.so): Download failed: cannot write "
             "the payload copy: No space left on device", f->mods);
    assert_string_equal(err.msg, want);
    molt_artifact_reader_free(r);
    molt_source_free(src);
    m->ops->free(m);
}

static void test_sink_write_fails_in_process(void **state)
{
    sink_write_fails(*state, false);
}

static void test_sink_write_fails_isolated(void **state)
{
    sink_write_fails(*state, true);
}

/* A module that sets a sink, reads one block and returns from Download: the host reads and
 * verifies the rest without calling the sink again (the module's ArtifactInstall checks). */
static void test_sink_ends_with_download(void **state)
{
    fixture *f = *state;
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    make_artifact_sized(f, "native-copy", ", \"sink_stop\": true", 1000000);
    open_artifact(f, &src, &r);
    molt_module *m = new_module(f, "native_copy", "native-copy", false);
    download_finish(m, r, src);
    call_ok(m, MOLT_CALL_ARTIFACT_INSTALL);
    m->ops->free(m);
}

/* Isolated: a call past the timeout is killed; a Download that reads nothing of a payload larger
 * than the socket buffer (8 MiB) still ends (the rest is verified by the reader afterwards). */
static void test_isolated_timeout_and_unread(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    make_artifact(f, "native-copy", ", \"hang\": \"ArtifactCommit\"");
    /* Downloaded with the fixture's timeout (a busy machine may take more than 1 s), then a
     * module of 1 s (a resume, reading the header from the tree) hangs in ArtifactCommit. */
    molt_module *m = downloaded(f, "native_copy", "native-copy", true);
    m->ops->free(m);
    f->timeout = 1;
    m = new_module(f, "native_copy", "native-copy", true);
    assert_int_equal(m->ops->call(m, MOLT_CALL_ARTIFACT_COMMIT, &err), MOLT_ETIMEOUT);
    char want[2 * BUF];
    snprintf(want, sizeof want, "module copy (%s): ArtifactCommit took more than 1 s: killed",
             m->path);
    assert_string_equal(err.msg, want);
    m->ops->free(m);

    /* probe's download returns at once without reading the 8 MiB payload */
    f->timeout = 30;
    make_artifact_sized(f, "probe", "", 8 << 20);
    open_artifact(f, &src, &r);
    m = new_module(f, "probe_ok", "probe", true);
    download_finish(m, r, src);
    call_ok(m, MOLT_CALL_ARTIFACT_INSTALL);
    call_ok(m, MOLT_CALL_ARTIFACT_COMMIT);   /* NULL: succeeds doing nothing */
    molt_answer a = MOLT_ANSWER_YES;
    assert_int_equal(m->ops->query(m, MOLT_CALL_SUPPORTS_ROLLBACK, &a, &err), 0);
    assert_int_equal(a, MOLT_ANSWER_NO);   /* NULL, no MOLT_CAP_ROLLBACK */
    assert_int_equal(m->ops->query(m, MOLT_CALL_NEEDS_ARTIFACT_REBOOT, &a, &err), 0);
    assert_int_equal(a, MOLT_ANSWER_NO);   /* NULL, no MOLT_CAP_REBOOT */
    m->ops->free(m);

    /* NULL needs_artifact_reboot with MOLT_CAP_REBOOT: Yes; NULL artifact_reboot succeeds */
    m = new_module(f, "probe_reboot", "probe", false);
    assert_int_equal(m->ops->query(m, MOLT_CALL_NEEDS_ARTIFACT_REBOOT, &a, &err), 0);
    assert_int_equal(a, MOLT_ANSWER_YES);
    call_ok(m, MOLT_CALL_ARTIFACT_REBOOT);
    m->ops->free(m);
}

static void test_wrong_type(void **state)
{
    fixture *f = *state;
    char path[BUF];
    molt_err err = {0};
    molt_module *m = NULL;
    mod_path(f, "native_copy", path, sizeof path);
    molt_native_opts opts = {.tree_dir = f->tree, .data_dir = f->data};
    assert_int_equal(molt_native_module_new(&m, path, "rootfs-image", &opts, &err),
                     MOLT_ENOTFOUND);
    assert_null(m);
    char want[2 * BUF];
    snprintf(want, sizeof want, "module copy (%s) does not claim payload type rootfs-image", path);
    assert_string_equal(err.msg, want);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_minor0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_unloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_mapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmp_dir_made_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_files_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_error_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_write_fails_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_write_fails_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_ends_with_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_isolated_timeout_and_unread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_from_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dep_values_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dep_values_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_sync_in_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps_by_minor, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
