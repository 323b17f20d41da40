/* SPDX-License-Identifier: Apache-2.0 */
/* The module work tree (core/host/worktree.c): both layouts are made afresh, and made durable
 * with exactly the fsyncs docs/performance.md counts ("fsyncs per install"): each exec tree file,
 * header/, tmp/, the tree and its parent; for a native tree none. Bad
 * arguments change nothing; errors name the tree. The header JSON text (what header/<name> holds
 * and what a native module reads) is pinned. The exec layout's bytes are in test_exec_host. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "host/worktree.h"
#include "util/fs.h"

/* ---- every fsync of the process, by path ----
 * This definition takes the place of libc's for the whole program (molt-core is linked in
 * statically), records the path of the descriptor and does the real fsync. */
#define MAX_SYNCS 64
static char synced[MAX_SYNCS][PATH_MAX];
static size_t n_synced;

int fsync(int fd)
{
    if (n_synced < MAX_SYNCS) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, synced[n_synced], PATH_MAX - 1);
        synced[n_synced][n < 0 ? 0 : n] = '\0';
    }
    n_synced++;
    return (int)syscall(SYS_fsync, fd);
}

typedef struct fixture {
    char dir[PATH_MAX];     /* realpath of the scratch folder: readlink gives real paths */
    char tree[PATH_MAX];    /* dir/work/tree */
    char parent[PATH_MAX];  /* dir/work */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char tmpl[] = "/tmp/molt-worktree-XXXXXX";
    if (!f || !mkdtemp(tmpl) || !realpath(tmpl, f->dir))
        return -1;
    if (snprintf(f->parent, sizeof f->parent, "%s/work", f->dir) >= (int)sizeof f->parent ||
        snprintf(f->tree, sizeof f->tree, "%s/work/tree", f->dir) >= (int)sizeof f->tree)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    molt_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

static void put(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(molt_write_file_atomic(path, "x", 1, 0644, NULL), 0);
}

/* A tree left by an earlier deployment: files, a nested folder. */
static void stale_tree(fixture *f)
{
    char sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/files/deep", f->tree);
    assert_int_equal(molt_mkdir_p(sub, 0755, NULL), 0);
    put(sub, "old-payload");
    put(f->tree, "stream-next");
}

/* The names in dir, sorted, joined with spaces. */
static void names(const char *dir, char *out, size_t size)
{
    char **v = NULL;
    size_t n = 0;
    out[0] = '\0';
    assert_int_equal(molt_dir_names(dir, "test", NULL, NULL, 64, &v, &n, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i ? " " : "", v[i]);
    }
    molt_names_free(v, n);
}

static molt_artifact_info *sample_info(void)
{
    molt_artifact_info *info = molt_artifact_info_new();
    assert_non_null(info);
    info->name = strdup("release-2");
    info->payload_type = strdup("my-type");
    info->header_info = json_pack("{s:[{s:s}]}", "payloads", "type", "my-type");
    assert_non_null(info->header_info);
    return info;
}

static void test_native_tree(void **state)
{
    fixture *f = *state;
    char got[1024], path[PATH_MAX + 16];
    molt_err err = {0};
    stale_tree(f);
    n_synced = 0;
    if (molt_worktree_create_native(f->tree, &err) != 0)
        fail_msg("%s", err.msg);
    /* the stale tree removed, nothing made: the host makes tree/ and tmp/ when the module asks
     * for them; no fsync: the machine calls a native module's Cleanup whatever the tree, and the
     * host makes tmp/'s name durable when the module asks for tmp_dir() (host/worktree.h) */
    struct stat st;
    assert_int_equal(lstat(f->tree, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(n_synced, 0);
    /* again, with no tree there */
    if (molt_worktree_create_native(f->tree, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(lstat(f->tree, &st), -1);
    (void)got;
    (void)path;
}

static void test_exec_tree(void **state)
{
    fixture *f = *state;
    char got[1024], header[PATH_MAX + 16], tmp[PATH_MAX + 16];
    molt_err err = {0};
    stale_tree(f);
    molt_artifact_info *info = sample_info();
    molt_exec_tree_info cur = {"release-1", "", "dev-a"};
    n_synced = 0;
    if (molt_worktree_create_exec(f->tree, info, &cur, &err) != 0)
        fail_msg("%s", err.msg);
    molt_artifact_info_free(info);
    names(f->tree, got, sizeof got);
    assert_string_equal(got, "current_artifact_group current_artifact_name current_device_type "
                             "header tmp version");
    snprintf(header, sizeof header, "%s/header", f->tree);
    names(header, got, sizeof got);
    assert_string_equal(got, "artifact_group artifact_name header-info meta-data payload_type "
                             "type-info");
    /* ten files, then header/, tmp/, the tree, its parent: 14, in that order at the end */
    snprintf(tmp, sizeof tmp, "%s/tmp", f->tree);
    assert_int_equal(n_synced, 14);
    for (size_t i = 0; i < 10; i++) {
        const char *slash = strrchr(synced[i], '/');
        assert_non_null(slash);
        size_t dlen = (size_t)(slash - synced[i]);
        assert_true((dlen == strlen(f->tree) && strncmp(synced[i], f->tree, dlen) == 0) ||
                    (dlen == strlen(header) && strncmp(synced[i], header, dlen) == 0));
    }
    assert_string_equal(synced[10], header);
    assert_string_equal(synced[11], tmp);
    assert_string_equal(synced[12], f->tree);
    assert_string_equal(synced[13], f->parent);
}

/* Missing arguments: MOLT_EINVAL, the old tree untouched. */
static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX + 32];
    molt_err err = {0};
    stale_tree(f);
    molt_artifact_info *info = sample_info();
    molt_exec_tree_info cur = {"", "", "dev-a"};
    assert_int_equal(molt_worktree_create_exec(f->tree, NULL, &cur, &err), MOLT_EINVAL);
    assert_int_equal(molt_worktree_create_exec(f->tree, info, NULL, &err), MOLT_EINVAL);
    assert_int_equal(molt_worktree_create_exec(NULL, info, &cur, &err), MOLT_EINVAL);
    assert_int_equal(molt_worktree_create_exec("", info, &cur, &err), MOLT_EINVAL);
    assert_int_equal(molt_worktree_create_native(NULL, &err), MOLT_EINVAL);
    assert_int_equal(molt_worktree_create_native("", &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "missing argument"));
    molt_artifact_info_free(info);
    snprintf(path, sizeof path, "%s/files/deep/old-payload", f->tree);
    assert_true(molt_path_exists(path));
}

/* A tree that cannot be made: the error names the tree, for both layouts. */
static void test_error_names_tree(void **state)
{
    fixture *f = *state;
    char blocked[PATH_MAX + 16], prefix[PATH_MAX + 64];
    molt_err err = {0};
    put(f->dir, "file");
    snprintf(blocked, sizeof blocked, "%s/file/tree", f->dir);   /* under a plain file */
    snprintf(prefix, sizeof prefix, "creating module work tree %s: ", blocked);
    assert_true(molt_worktree_create_native(blocked, &err) < 0);
    assert_memory_equal(err.msg, prefix, strlen(prefix));
    molt_artifact_info *info = sample_info();
    molt_exec_tree_info cur = {"", "", "dev-a"};
    err = (molt_err){0};
    assert_true(molt_worktree_create_exec(blocked, info, &cur, &err) < 0);
    assert_memory_equal(err.msg, prefix, strlen(prefix));
    molt_artifact_info_free(info);
}

/* The header text both module kinds see: nlohmann's dump(2) shape, "null" when missing. */
static void test_header_json(void **state)
{
    (void)state;
    char *s = molt_worktree_header_json(NULL);
    assert_string_equal(s, "null");
    free(s);
    json_t *j = json_pack("{s:i, s:[b, n], s:{}}", "b", 1, "a", 1, "Z", "");
    assert_non_null(j);
    s = molt_worktree_header_json(j);
    assert_string_equal(s, "{\n  \"Z\": {},\n  \"a\": [\n    true,\n    null\n  ],\n  \"b\": 1\n}");
    free(s);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_native_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_names_tree, setup, teardown),
        cmocka_unit_test(test_header_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
