/* SPDX-License-Identifier: Apache-2.0 */
/* Durable writes: every write that must survive a power cut goes through these, the one
 * implementation behind the core (util/fs.h includes this) and libmolt-sdk (molt_sdk_write_all,
 * molt_sdk_fsync_dir, molt_sdk_atomic_*, molt_sdk_write_file_atomic: compiled in there too). */
#ifndef MOLT_UTIL_DURABLE_H
#define MOLT_UTIL_DURABLE_H

#include <stddef.h>
#include <sys/types.h>
#include "util/err.h"

/* Write all of buf to fd, retrying on EINTR and short writes. A failure is "cannot write
 * <what>: <strerror>", MOLT_ESPACE for a full disk or quota (molt_errno_code), else MOLT_EIO. */
int molt_write_all(int fd, const void *buf, size_t len, molt_err *err, const char *what);

/* Finish a written file: fsync and close fd (closed whatever happens); a failure names what. */
int molt_fsync_close(int fd, const char *what, molt_err *err);

/* fsync a folder (after creating, renaming or removing entries in it). */
int molt_fsync_dir(const char *dir, molt_err *err);
/* fsync the folder that contains path. */
int molt_fsync_parent(const char *path, molt_err *err);

/* Atomic, durable replacement of path, in three steps:
 * - molt_atomic_open creates a new temporary file beside path, ".<name>.tmp-<8 hex digits>",
 *   unique (O_EXCL, relative to the folder's descriptor) and given exactly mode (fchmod: the
 *   umask does not apply), open for writing in *ret_fd; its path in *ret_tmp (malloc'd, the
 *   caller frees it after commit or abort). A missing folder is MOLT_ENOTFOUND.
 * - the caller writes to the descriptor;
 * - molt_atomic_commit fsyncs and closes it, renames the temporary over path (renameat in the
 *   folder's descriptor) and fsyncs the folder; on any failure the temporary is removed. Or
 *   molt_atomic_abort closes it and removes the temporary.
 * After a power cut path has its old or its new content, never a mix; at most a temporary
 * file is left beside it, which no reader takes for path. fd is closed by commit or abort. */
int molt_atomic_open(const char *path, mode_t mode, int *ret_fd, char **ret_tmp, molt_err *err);
int molt_atomic_commit(int fd, const char *tmp, const char *path, molt_err *err);
void molt_atomic_abort(int fd, const char *tmp);

/* The three steps for len bytes of data. */
int molt_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           molt_err *err);

/* The same replacement without the fsyncs: atomic for every reader, and across a crash of this
 * process (the page cache keeps it), but not durable across a power cut, after which path may
 * hold its old content, the new one, or nothing. Only for files whose content means nothing
 * after a reboot: the `running` token (state/machine.c), which names processes a power cut
 * ended anyway. */
int molt_write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
                            molt_err *err);

#endif
