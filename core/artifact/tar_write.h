/* SPDX-License-Identifier: Apache-2.0 */
/* A small raw ustar writer (and header parser) for the outer artifact tar, where the writer
 * patches a member's size after streaming it and `sign` copies members block for block. */
#ifndef MOLT_ARTIFACT_TAR_WRITE_H
#define MOLT_ARTIFACT_TAR_WRITE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "util/err.h"

#define MOLT_TAR_BLOCK 512

/* Metadata of one member. uname/gname may be NULL (written empty). */
typedef struct molt_tar_meta {
    unsigned mode;
    unsigned uid, gid;
    const char *uname, *gname;
    int64_t mtime;
} molt_tar_meta;

/* Fill a ustar header block the way Go's archive/tar writes one (octal fields NUL-terminated,
 * checksum "%06o\0 "). Sizes of 8 GiB and more use the base-256 form that libarchive and Go
 * read. Names longer than 100 bytes are refused (MOLT_EINVAL). */
int molt_tar_header_fill(unsigned char block[MOLT_TAR_BLOCK], const char *name, uint64_t size,
                         const molt_tar_meta *meta, molt_err *err);

/* Rewrite the size field of a filled header and its checksum. */
void molt_tar_header_set_size(unsigned char block[MOLT_TAR_BLOCK], uint64_t size);

/* Write a whole member (header, data, padding to 512) to fd. */
int molt_tar_write_member(int fd, const char *name, const void *data, size_t len,
                          const molt_tar_meta *meta, molt_err *err);

/* Write the zero padding that follows size bytes of member data. */
int molt_tar_write_padding(int fd, uint64_t size, molt_err *err);

/* Write the end-of-archive marker (two zero blocks). */
int molt_tar_write_end(int fd, molt_err *err);

/* One parsed header block (for copying members). */
typedef struct molt_tar_header {
    char name[256 + 1];   /* prefix "/" name, NUL-terminated */
    char typeflag;
    uint64_t size;        /* from the size field (octal or base-256) */
} molt_tar_header;

/* Parse a header block: returns 1 for a header, 0 for an all-zero block (end of archive), or
 * MOLT_EFORMAT for a bad checksum or size field. */
int molt_tar_header_parse(const unsigned char block[MOLT_TAR_BLOCK], molt_tar_header *ret,
                          molt_err *err);

/* Padded length of size bytes of data (next multiple of 512). */
static inline uint64_t molt_tar_padded(uint64_t size)
{
    return (size + MOLT_TAR_BLOCK - 1) / MOLT_TAR_BLOCK * MOLT_TAR_BLOCK;
}

#endif
