/* SPDX-License-Identifier: Apache-2.0 */
/* A deployment's module work tree (worktree.h): the exec layout and the native one, made afresh
 * and made durable by one shared ending. */
#include "host/worktree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fs.h"

/* Create dir/name with data, fsync'd. */
static int write_new_file(const char *dir, const char *name, const char *data, size_t len,
                          molt_err *err)
{
    char *path = molt_path_join(dir, name);
    if (!path)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory writing %s", name);
    int r = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot create %s", path);
        goto out;
    }
    r = molt_write_all(fd, data, len, err, path);
    if (r == 0 && fsync(fd) != 0)
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot fsync %s", path);
    if (close(fd) != 0 && r == 0)
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot close %s", path);
out:
    free(path);
    return r;
}

static int write_str(const char *dir, const char *name, const char *s, molt_err *err)
{
    s = s ? s : "";
    return write_new_file(dir, name, s, strlen(s), err);
}

/* The C++ client's current_* files: the value and a newline, or an empty file if unknown. */
static int write_line(const char *dir, const char *name, const char *s, molt_err *err)
{
    if (!s || !*s)
        return write_new_file(dir, name, "", 0, err);
    size_t n = strlen(s);
    char *buf = malloc(n + 2);
    if (!buf)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory writing %s", name);
    memcpy(buf, s, n);
    buf[n] = '\n';
    int r = write_new_file(dir, name, buf, n + 1, err);
    free(buf);
    return r;
}

char *molt_worktree_header_json(const json_t *j)
{
    return j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY) : strdup("null");
}

static int write_json(const char *dir, const char *name, const json_t *j, molt_err *err)
{
    char *s = molt_worktree_header_json(j);
    if (!s)
        return molt_err_set(err, MOLT_ENOMEM, "cannot serialize %s", name);
    int r = write_new_file(dir, name, s, strlen(s), err);
    free(s);
    return r;
}

/* The start both layouts share: tree_dir removed with whatever an earlier deployment left, then
 * tree_dir/tmp created (and tree_dir with it). *ret_tmp is tmp's path (malloc'd). */
static int tree_begin(const char *tree_dir, char **ret_tmp, molt_err *err)
{
    if (!tree_dir || !*tree_dir)
        return molt_err_set(err, MOLT_EINVAL, "creating a module work tree: missing argument");
    char *tmp = molt_path_join(tree_dir, "tmp");
    if (!tmp)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int r = molt_rm_rf(tree_dir, err);
    if (r == 0)
        r = molt_mkdir_p(tmp, 0755, err);
    if (r < 0) {
        molt_err_prefix(err, "creating module work tree %s: ", tree_dir);
        free(tmp);
        return r;
    }
    *ret_tmp = tmp;
    return 0;
}

/* The ending both layouts share, after r (the result of filling the tree): the folders in
 * dirs[0..n) fsync'd (the names of the files made in them), then the tree (the names of its
 * entries) and its parent (the tree's own name). Errors get the tree's name in front. */
static int tree_end(int r, const char *tree_dir, const char *const *dirs, size_t n, molt_err *err)
{
    for (size_t i = 0; i < n && r == 0; i++)
        r = molt_fsync_dir(dirs[i], err);
    if (r == 0)
        r = molt_fsync_dir(tree_dir, err);
    if (r == 0)
        r = molt_fsync_parent(tree_dir, err);
    if (r != 0)
        molt_err_prefix(err, "creating module work tree %s: ", tree_dir);
    return r;
}

int molt_worktree_create_exec(const char *tree_dir, const molt_artifact_info *info,
                              const molt_exec_tree_info *cur, molt_err *err)
{
    if (!info || !info->name || !cur)
        return molt_err_set(err, MOLT_EINVAL, "creating a module work tree: missing argument");
    char *tmp = NULL;
    int r = tree_begin(tree_dir, &tmp, err);
    if (r < 0)
        return r;
    char *header = molt_path_join(tree_dir, "header");
    if (!header)
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
    if (r == 0)
        r = molt_mkdir_p(header, 0755, err);
    if (r == 0)
        r = write_new_file(tree_dir, "version", "3\n", 2, err);
    if (r == 0)
        r = write_line(tree_dir, "current_artifact_name", cur->current_artifact_name, err);
    if (r == 0)
        r = write_line(tree_dir, "current_artifact_group", cur->current_artifact_group, err);
    if (r == 0)
        r = write_line(tree_dir, "current_device_type", cur->current_device_type, err);
    if (r == 0)
        r = write_str(header, "artifact_name", info->name, err);
    if (r == 0)
        r = write_str(header, "artifact_group", info->group, err);
    if (r == 0)
        r = write_str(header, "payload_type", info->payload_type, err);
    if (r == 0)
        r = write_json(header, "header-info", info->header_info, err);
    if (r == 0)
        r = write_json(header, "type-info", info->type_info, err);
    if (r == 0)
        r = write_json(header, "meta-data", info->meta_data, err);
    const char *dirs[] = { header, tmp };
    r = tree_end(r, tree_dir, dirs, 2, err);
    free(header);
    free(tmp);
    return r;
}

int molt_worktree_create_native(const char *tree_dir, molt_err *err)
{
    if (!tree_dir || !*tree_dir)
        return molt_err_set(err, MOLT_EINVAL, "creating a module work tree: missing argument");
    int r = molt_rm_rf(tree_dir, err);   /* a tree an earlier deployment left */
    if (r < 0)
        molt_err_prefix(err, "creating module work tree %s: ", tree_dir);
    return r;
}
