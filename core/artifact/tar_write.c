/* SPDX-License-Identifier: Apache-2.0 */
/* Raw ustar blocks for the outer artifact tar, laid out like Go's archive/tar (what
 * mender-artifact uses), so that molt's artifacts look like mender-artifact's. */
#include "artifact/tar_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/fs.h"

/* ustar field offsets and widths */
#define OFF_NAME 0
#define OFF_MODE 100
#define OFF_UID 108
#define OFF_GID 116
#define OFF_SIZE 124
#define OFF_MTIME 136
#define OFF_CHKSUM 148
#define OFF_TYPE 156
#define OFF_MAGIC 257
#define OFF_VERSION 263
#define OFF_UNAME 265
#define OFF_GNAME 297
#define OFF_DEVMAJOR 329
#define OFF_DEVMINOR 337
#define OFF_PREFIX 345

static const unsigned char zero_block[MOLT_TAR_BLOCK];

/* width-1 octal digits and a NUL, as Go writes numeric fields */
static void put_octal(unsigned char *field, size_t width, uint64_t v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%0*llo", (int)(width - 1), (unsigned long long)v);
    memcpy(field, tmp, width - 1);
    field[width - 1] = '\0';
}

static void put_size(unsigned char *block, uint64_t size)
{
    if (size < (1ull << 33)) {
        put_octal(block + OFF_SIZE, 12, size);
        return;
    }
    /* base-256: high bit of the first byte set, the value big-endian in the rest */
    memset(block + OFF_SIZE, 0, 12);
    block[OFF_SIZE] = 0x80;
    for (int i = 11; i >= 4; i--, size >>= 8)
        block[OFF_SIZE + i] = (unsigned char)(size & 0xff);
}

static unsigned checksum_of(const unsigned char *block)
{
    unsigned sum = 0;
    for (size_t i = 0; i < MOLT_TAR_BLOCK; i++)
        sum += (i >= OFF_CHKSUM && i < OFF_CHKSUM + 8) ? ' ' : block[i];
    return sum;
}

static void put_checksum(unsigned char *block)
{
    char tmp[16];
    snprintf(tmp, sizeof tmp, "%06o", checksum_of(block));
    memcpy(block + OFF_CHKSUM, tmp, 6);
    block[OFF_CHKSUM + 6] = '\0';
    block[OFF_CHKSUM + 7] = ' ';
}

int molt_tar_header_fill(unsigned char block[MOLT_TAR_BLOCK], const char *name, uint64_t size,
                         const molt_tar_meta *meta, molt_err *err)
{
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > 100)
        return molt_err_set(err, MOLT_EINVAL, "tar member name \"%s\" must be 1 to 100 bytes",
                            name);
    const char *u = meta->uname ? meta->uname : "", *g = meta->gname ? meta->gname : "";
    if (strlen(u) > 31 || strlen(g) > 31)
        return molt_err_set(err, MOLT_EINVAL, "tar owner names of %s are longer than 31 bytes",
                            name);
    memset(block, 0, MOLT_TAR_BLOCK);
    memcpy(block + OFF_NAME, name, nlen);
    put_octal(block + OFF_MODE, 8, meta->mode & 07777);
    put_octal(block + OFF_UID, 8, meta->uid & 07777777);
    put_octal(block + OFF_GID, 8, meta->gid & 07777777);
    put_size(block, size);
    put_octal(block + OFF_MTIME, 12, meta->mtime > 0 ? (uint64_t)meta->mtime : 0);
    block[OFF_TYPE] = '0';
    memcpy(block + OFF_MAGIC, "ustar", 6);
    memcpy(block + OFF_VERSION, "00", 2);
    memcpy(block + OFF_UNAME, u, strlen(u));
    memcpy(block + OFF_GNAME, g, strlen(g));
    put_octal(block + OFF_DEVMAJOR, 8, 0);
    put_octal(block + OFF_DEVMINOR, 8, 0);
    put_checksum(block);
    return 0;
}

void molt_tar_header_set_size(unsigned char block[MOLT_TAR_BLOCK], uint64_t size)
{
    put_size(block, size);
    put_checksum(block);
}

int molt_tar_write_padding(int fd, uint64_t size, molt_err *err)
{
    size_t pad = (size_t)(molt_tar_padded(size) - size);
    return pad ? molt_write_all(fd, zero_block, pad, err, "tar padding") : 0;
}

int molt_tar_write_member(int fd, const char *name, const void *data, size_t len,
                          const molt_tar_meta *meta, molt_err *err)
{
    unsigned char block[MOLT_TAR_BLOCK];
    int r = molt_tar_header_fill(block, name, len, meta, err);
    if (r == 0)
        r = molt_write_all(fd, block, sizeof block, err, name);
    if (r == 0 && len)
        r = molt_write_all(fd, data, len, err, name);
    if (r == 0)
        r = molt_tar_write_padding(fd, len, err);
    return r;
}

int molt_tar_write_end(int fd, molt_err *err)
{
    int r = molt_write_all(fd, zero_block, sizeof zero_block, err, "tar end");
    return r ? r : molt_write_all(fd, zero_block, sizeof zero_block, err, "tar end");
}

/* Octal field (spaces and NULs around the digits allowed) or base-256. */
static int get_number(const unsigned char *field, size_t width, uint64_t *ret)
{
    uint64_t v = 0;
    if (field[0] & 0x80) {
        if (field[0] != 0x80)
            return MOLT_EFORMAT; /* negative or too large */
        for (size_t i = 1; i < width; i++) {
            if (v >> 55)
                return MOLT_EFORMAT;
            v = v << 8 | field[i];
        }
        *ret = v;
        return 0;
    }
    size_t i = 0;
    while (i < width && field[i] == ' ')
        i++;
    size_t digits = 0;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; i++, digits++) {
        if (v >> 60)
            return MOLT_EFORMAT;
        v = v << 3 | (uint64_t)(field[i] - '0');
    }
    for (; i < width; i++)
        if (field[i] != ' ' && field[i] != '\0')
            return MOLT_EFORMAT;
    *ret = v;
    return 0;
}

int molt_tar_header_parse(const unsigned char block[MOLT_TAR_BLOCK], molt_tar_header *ret,
                          molt_err *err)
{
    if (memcmp(block, zero_block, MOLT_TAR_BLOCK) == 0)
        return 0;
    uint64_t sum = 0, size = 0;
    if (get_number(block + OFF_CHKSUM, 8, &sum) < 0 || sum != checksum_of(block))
        return molt_err_set(err, MOLT_EFORMAT, "tar header checksum mismatch (not a tar file, "
                            "or corrupt)");
    if (get_number(block + OFF_SIZE, 12, &size) < 0)
        return molt_err_set(err, MOLT_EFORMAT, "tar header with an invalid size field");
    molt_tar_header h = {.typeflag = (char)block[OFF_TYPE], .size = size};
    size_t plen = 0;
    if (memcmp(block + OFF_MAGIC, "ustar", 5) == 0 && block[OFF_PREFIX]) {
        plen = strnlen((const char *)block + OFF_PREFIX, 155);
        memcpy(h.name, block + OFF_PREFIX, plen);
        h.name[plen++] = '/';
    }
    size_t nlen = strnlen((const char *)block + OFF_NAME, 100);
    memcpy(h.name + plen, block + OFF_NAME, nlen);
    h.name[plen + nlen] = '\0';
    *ret = h;
    return 1;
}

