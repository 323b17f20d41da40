/* SPDX-License-Identifier: Apache-2.0 */
/* The file module's tar payloads (file_tree.c, libarchive): what file-tar.so is made of, and what
 * the unit test and the fuzz target call directly. file.so reaches it through fm_tar_load only
 * (file_module.h), so that it needs no libarchive header and maps no libarchive. */
#ifndef MOLT_FILE_TAR_H
#define MOLT_FILE_TAR_H

#include "file_module.h"

#include <archive.h>

/* Extract the tar archive in (opened by the caller) into the existing empty folder root (which
 * the caller created 0700), checking every entry first: no absolute path, no "..", no device
 * node, fifo or socket, hard links and symlinks that stay inside the tree, sizes within avail
 * bytes, at most FM_TREE_DEPTH_MAX levels and paths shorter than PATH_MAX (MOLT_ELIMIT). Times
 * are applied as in the archive; every entry is owned by molt, with the archive's permission
 * bits minus setuid, setgid and sticky, and root stays 0700: nothing is usable by another user
 * while the payload is unverified (issue 12). The archive's owners (by name, then id) and full
 * modes (the entry "." gives root its own) are appended to the file fix_fd, for fm_apply_fixups
 * once the payload verified. Every byte is synced (syncfs) before it returns 0. On failure the
 * caller removes root. */
int fm_extract_tar(fm *m, struct archive *in, const char *root, uint64_t avail, int fix_fd,
                   struct molt_sdk_error *err);

/* An archive reader over the host's current payload file (read_block), for fm_extract_tar;
 * *ret_status receives the host's read error, if any. */
struct archive *fm_archive_from_payload(fm *m, int *ret_status);
/* An archive reader over a file. */
struct archive *fm_archive_from_file(const char *path);

/* The table of fm_tar (file_module.h) that file-tar.so exports as FM_TAR_ENTRY. */
__attribute__((visibility("default"))) const fm_tar *molt_file_tar_entry(void);

#endif
