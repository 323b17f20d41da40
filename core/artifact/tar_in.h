/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the tars inside an artifact (header.tar*, data/0000.tar*): compression by suffix with
 * the magic bytes checked, and the entry checks shared by the header and payload readers. */
#ifndef MOLT_ARTIFACT_TAR_IN_H
#define MOLT_ARTIFACT_TAR_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <archive.h>
#include <archive_entry.h>
#include "artifact/artifact.h"
#include "util/err.h"

/* The compression of member name given its base ("header.tar.gz" with base "header.tar" ->
 * gzip). 0, or MOLT_EFORMAT (no message) when name is not base plus a known suffix. */
int molt_tar_in_compression(const char *name, const char *base, molt_compression *ret);

/* Number of magic bytes a stream compressed with c starts with (0 for none). */
size_t molt_tar_in_magic_len(molt_compression c);

/* Check that the first n bytes of member (n >= molt_tar_in_magic_len(c), or the whole member
 * when it is shorter) carry c's magic bytes. 0 or MOLT_EFORMAT naming member, expected and
 * actual bytes. */
int molt_tar_in_check_magic(molt_compression c, const unsigned char *p, size_t n,
                            const char *member, molt_err *err);

/* A libarchive reader for a tar compressed with c (only that decompressor enabled). With
 * allow_empty, a zero-byte stream reads as an archive without entries. The caller opens it and
 * then calls molt_tar_in_check_filter. */
int molt_tar_in_new(struct archive **ret, molt_compression c, bool allow_empty,
                    const char *member, molt_err *err);

/* After archive_read_open: refuse a stream that libarchive did not decode with c. */
int molt_tar_in_check_filter(struct archive *a, molt_compression c, const char *member,
                             molt_err *err);

/* "regular file", "symlink", "hardlink", "directory", "character device", ... */
const char *molt_tar_in_type_name(struct archive_entry *e);

/* Entry name checks shared by every tar we read: present, at most MOLT_ARTIFACT_MAX_NAME
 * bytes (MOLT_ELIMIT), no control characters (MOLT_EFORMAT); and the entry is a plain
 * regular file with a size (not a symlink, hardlink, directory, device, fifo or sparse file;
 * MOLT_EFORMAT naming the entry and its type). On success *ret_name is the entry's name
 * (owned by libarchive, valid until the next header). */
int molt_tar_in_check_entry(struct archive_entry *e, const char *member, const char **ret_name,
                            molt_err *err);

/* Copy name into out (size outsz) with control characters replaced by '?', for messages
 * about names that failed validation. Returns out. */
const char *molt_tar_in_printable(const char *name, char *out, size_t outsz);

#endif
