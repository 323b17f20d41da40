/* SPDX-License-Identifier: Apache-2.0 */
/* libmolt-sdk file operations for modules: atomic durable replace, a path join that cannot escape
 * a root, copies with progress (from the payload stream or from a file), recursive removal. */
#ifndef MOLT_FILEOPS_H
#define MOLT_FILEOPS_H

#include <stddef.h>
#include <stdint.h>
#include <molt/module.h>

#ifdef __cplusplus
extern "C" {
#endif

struct molt_sdk_error;

/* Replace path atomically and durably with len bytes of data: a new temporary sibling
 * (".<name>.tmp-<8 hex digits>", created exclusively) is written, given exactly mode (e.g. 0644;
 * the umask does not apply), fsync'd, renamed over path, and the folder is fsync'd. After a power
 * cut path has its old or its new content (and at most a leftover temporary file beside it).
 * 0 or a negative MOLT_E* code (MOLT_ESPACE for a full disk, MOLT_ENOTFOUND for a missing
 * folder). molt replaces its own files the same way, with the same code. */
int molt_sdk_write_file_atomic(const char *path, const void *data, size_t len, unsigned int mode,
                               struct molt_sdk_error *err);

/* The same for content that is streamed: open a temporary sibling of path (its descriptor in
 * *ret_fd, its name in *ret_tmp, malloc'd), write to it, then molt_sdk_atomic_commit (fsync,
 * rename, fsync folder; closes fd and frees tmp) or molt_sdk_atomic_abort (close, unlink, free). */
int molt_sdk_atomic_open(const char *path, unsigned int mode, int *ret_fd, char **ret_tmp,
                         struct molt_sdk_error *err);
int molt_sdk_atomic_commit(int fd, char *tmp, const char *path, struct molt_sdk_error *err);
void molt_sdk_atomic_abort(int fd, char *tmp);

/* Write all len bytes of buf to fd, retrying on EINTR and short writes. A failure is
 * "cannot write <what>: <strerror>", with the code of molt_sdk_err_errno. */
int molt_sdk_write_all(int fd, const void *buf, size_t len, const char *what,
                       struct molt_sdk_error *err);

/* fsync a folder (after creating, renaming or removing entries in it). */
int molt_sdk_fsync_dir(const char *dir, struct molt_sdk_error *err);

/* rm -rf path: a file or symlink is unlinked, a folder emptied and removed, depth first, with
 * *at() calls relative to folder descriptors (never by full path: any depth and path length up
 * to 65536 levels, symlinks never followed). A missing path is 0. Otherwise MOLT_EIO (or
 * MOLT_ENOMEM) with a message naming path, the operation and the entry that failed. */
int molt_sdk_rm_rf(const char *path, struct molt_sdk_error *err);

/* root + "/" + rel, refusing anything that could leave root: an absolute rel, a ".." component,
 * an empty rel, or an existing component that is a symlink resolving outside root (or pointing
 * nowhere). "." and empty components ("a//b") are dropped. root must exist. *ret_path malloc'd
 * (free()). MOLT_EINVAL with a message naming the component otherwise. Checks the state of the
 * file system now: a folder that a concurrent writer changes afterwards is not covered. */
int molt_sdk_path_join(const char *root, const char *rel, char **ret_path,
                       struct molt_sdk_error *err);

/* Download only: copy the rest of the host's current payload file to fd (read_block, write),
 * reporting progress to the host (done = bytes written, total = size, 0 if unknown). Returns the
 * number of bytes copied (>= 0) once the file ended and its checksum matched, or a negative code
 * (the host's read error, or MOLT_EIO / MOLT_ESPACE writing). */
int64_t molt_sdk_copy_payload(const struct molt_host_api *host, int fd, int64_t size,
                              struct molt_sdk_error *err);

/* Progress of molt_sdk_copy_file: bytes copied so far and the source size. */
typedef void (*molt_sdk_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Copy the file src to dst atomically and durably (as molt_sdk_write_file_atomic, streaming),
 * with mode, calling progress (may be NULL) after each block. */
int molt_sdk_copy_file(const char *src, const char *dst, unsigned int mode,
                       molt_sdk_progress_fn progress, void *ctx, struct molt_sdk_error *err);

#ifdef __cplusplus
}
#endif
#endif
