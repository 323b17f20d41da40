/* SPDX-License-Identifier: Apache-2.0 */
/* Payload files staged on disk for modules that take files, not streams (the exec host's files/,
 * the native host's files_dir()): one writer for both, bounded by what the artifact declared. */
#ifndef MOLT_HOST_STAGE_H
#define MOLT_HOST_STAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "artifact/reader.h"
#include "util/err.h"

/* The next block of a payload file: > 0 bytes in *ret_buf, 0 at its end (checksum verified), or
 * a negative MOLT_E* code with err filled. */
typedef ssize_t (*molt_stage_block_fn)(void *ctx, const void **ret_buf, molt_err *err);

/* Write the payload file name, declared size bytes (its tar header), from next(ctx) into
 * dir/name (0644, never through a symlink), fsync'd. Before anything is written,
 * the free space of dir (statvfs f_bavail) must hold size: MOLT_ESPACE naming the file, its
 * size and the space otherwise. More bytes than declared stop the write: MOLT_EFORMAT. On any
 * failure dir/name is removed. */
int molt_stage_file(const char *dir, const char *name, int64_t size, molt_stage_block_fn next,
                    void *ctx, molt_err *err);

/* The staging folder dir: private (0700) while the payload files arrive, their bytes being
 * untrusted until each one's read returned 0 (docs/modules.md), then 0755 for the module. */
int molt_stage_private(const char *dir, bool private_, molt_err *err);

/* molt_stage_file from the current payload file of r (molt_artifact_reader_read_block). */
int molt_stage_reader_file(molt_artifact_reader *r, const char *dir, const char *name,
                           int64_t size, molt_err *err);

#endif
