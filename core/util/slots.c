/* SPDX-License-Identifier: Apache-2.0 */
/* Two-slot record files (util/slots.h). */
#include "util/slots.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

#include "util/durable.h"
#include "util/fs.h"

/* Header: "molt-slots 1 " <seq: 16 hex> ' ' <len: 8 hex> ' ' <sync: 'd' or 'l'> ' '
 * <crc: 8 hex>, spaces, '\n' at byte 63. The CRC covers the header up to the sync mark and the
 * data. The mark says whether the write was followed by an fdatasync ('d') or not ('l'). */
#define MAGIC "molt-slots 1 "
#define MAGIC_LEN 13u
#define SEQ_AT MAGIC_LEN
#define LEN_AT (SEQ_AT + 17u)
#define SYNC_AT (LEN_AT + 9u)
#define CRC_AT (SYNC_AT + 2u)
#define COVERED (SYNC_AT + 1u)
#define SLOT_MIN (8u * 1024)
/* A file larger than this is not read to find its sequence number: it is replaced. */
#define SLOTS_FILE_MAX (64u * 1024 * 1024)

static unsigned long record_crc(const unsigned char *header, const unsigned char *data, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, header, COVERED);
    /* zlib takes uInt lengths; records are far below 4 GiB, but feed it in pieces anyway. */
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, data, n);
        data += n;
        len -= n;
    }
    return crc;
}

static bool hex_field(const unsigned char *p, size_t n, unsigned long long *ret)
{
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *ret = v;
    return true;
}

int molt_slots_check(const unsigned char *slot, size_t len, unsigned long long *seq,
                     const unsigned char **data, size_t *data_len, char *why, size_t why_cap)
{
    if (len < MOLT_SLOTS_HEADER) {
        snprintf(why, why_cap, "%zu bytes, less than a header", len);
        return -1;
    }
    bool zero = true;
    for (size_t i = 0; i < MOLT_SLOTS_HEADER && zero; i++)
        zero = slot[i] == 0;
    if (zero)
        return 0;
    unsigned long long s, l, c;
    if (memcmp(slot, MAGIC, MAGIC_LEN) != 0 || !hex_field(slot + SEQ_AT, 16, &s) ||
        slot[SEQ_AT + 16] != ' ' || !hex_field(slot + LEN_AT, 8, &l) || slot[LEN_AT + 8] != ' ' ||
        (slot[SYNC_AT] != 'd' && slot[SYNC_AT] != 'l') || slot[SYNC_AT + 1] != ' ' ||
        !hex_field(slot + CRC_AT, 8, &c) || slot[MOLT_SLOTS_HEADER - 1] != '\n' ||
        strspn((const char *)slot + CRC_AT + 8, " ") != MOLT_SLOTS_HEADER - 1 - CRC_AT - 8) {
        snprintf(why, why_cap, "the header is malformed");
        return -1;
    }
    if (l > len - MOLT_SLOTS_HEADER) {
        snprintf(why, why_cap, "the header says %llu bytes of data, the slot holds %zu", l,
                 len - MOLT_SLOTS_HEADER);
        return -1;
    }
    unsigned long got = record_crc(slot, slot + MOLT_SLOTS_HEADER, (size_t)l);
    if (got != c) {
        snprintf(why, why_cap, "CRC-32 of the record is %08lx, the header says %08llx", got, c);
        return -1;
    }
    *seq = s;
    *data = slot + MOLT_SLOTS_HEADER;
    *data_len = (size_t)l;
    return 1;
}

/* The newest valid slot of a file's bytes (size 2 * slot size): its index, or -1. */
typedef struct found {
    int slot;
    unsigned long long seq;
    const unsigned char *data;
    size_t len;
    int state[2]; /* molt_slots_check's answer per slot */
    char why[2][120];
} found;

static void find_newest(const unsigned char *buf, size_t size, found *f)
{
    size_t half = size / 2;
    f->slot = -1;
    for (int i = 0; i < 2; i++) {
        unsigned long long seq = 0;
        const unsigned char *data = NULL;
        size_t len = 0;
        f->state[i] = molt_slots_check(buf + (size_t)i * half, half, &seq, &data, &len,
                                       f->why[i], sizeof f->why[i]);
        if (f->state[i] == 1 && (f->slot < 0 || seq > f->seq)) {
            f->slot = i;
            f->seq = seq;
            f->data = data;
            f->len = len;
        }
    }
}

/* A slots file never changes size once written: two slots of a power of two, at least
 * SLOT_MIN each. Any other size is damage (a truncated or extended file), never a cut write. */
static bool shape_ok(off_t size)
{
    if (size < (off_t)(2 * SLOT_MIN) || size % 2 != 0)
        return false;
    unsigned long long half = (unsigned long long)size / 2;
    return (half & (half - 1)) == 0;
}

/* open(2) of a slots file for reading it, with O_NOATIME: the file is written by every command,
 * so under relatime each first read after a write would update its access time, a dirty inode
 * and a journal entry for a time nobody reads. Without it where the kernel refuses it (EPERM:
 * a process that does not own the file, such as `molt status` run by another user). */
static int open_noatime(const char *path, int flags)
{
    int fd = open(path, flags | O_NOATIME | O_CLOEXEC);
    if (fd < 0 && errno == EPERM)
        fd = open(path, flags | O_CLOEXEC);
    return fd;
}

/* The bytes of path (util/fs.h molt_read_fd, at most max) when it has a slots file's size:
 * MOLT_ENOTFOUND when missing, MOLT_ECORRUPT naming the size otherwise. */
static int read_slots_file(const char *path, size_t max, unsigned char **ret, size_t *ret_size,
                           molt_err *err)
{
    char *buf = NULL;
    size_t size = 0;
    int fd = open_noatime(path, O_RDONLY);
    if (fd < 0)
        return molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                              "cannot open %s", path);
    int r = molt_read_fd(fd, path, max, &buf, &size, err);
    close(fd);
    if (r == MOLT_ELIMIT)
        return molt_err_set(err, MOLT_ECORRUPT, "%s is not a two-slot record file (more than %zu "
                            "bytes)", path, max);
    if (r < 0)
        return r;
    if (!shape_ok((off_t)size)) {
        free(buf);
        return molt_err_set(err, MOLT_ECORRUPT, "%s is not a two-slot record file (%zu bytes)",
                            path, size);
    }
    *ret = (unsigned char *)buf;
    *ret_size = size;
    return 0;
}

/* Was the record of this slot written without an fdatasync? */
static bool slot_lazy(const unsigned char *slot)
{
    return slot[SYNC_AT] == 'l';
}

int molt_slots_read(const char *path, size_t max, char **ret, size_t *ret_len,
                    molt_slots_read_info *info, molt_err *err)
{
    /* Slots are at most a power of two above header + max: a larger file is not ours. */
    unsigned char *buf = NULL;
    size_t size = 0;
    int r = read_slots_file(path, 2 * (2 * (max + MOLT_SLOTS_HEADER) + SLOT_MIN), &buf, &size,
                            err);
    if (r < 0)
        return r;
    found f;
    find_newest(buf, size, &f);
    if (f.slot < 0) {
        r = molt_err_set(err, MOLT_ECORRUPT, "%s holds no valid record: slot 0: %s; slot 1: %s",
                         path, f.state[0] == 0 ? "never written" : f.why[0],
                         f.state[1] == 0 ? "never written" : f.why[1]);
    } else if (f.len > max) {
        r = molt_err_set(err, MOLT_ECORRUPT, "%s: the record is %zu bytes, more than %zu", path,
                         f.len, max);
    }
    if (r < 0) {
        free(buf);
        return r;
    }
    char *out = malloc(f.len + 1);
    if (!out) {
        free(buf);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory reading %s", path);
    }
    memcpy(out, f.data, f.len);
    out[f.len] = '\0';
    if (info) {
        int other = 1 - f.slot;
        info->seq = f.seq;
        info->slot = f.slot;
        info->lazy = slot_lazy(buf + (size_t)f.slot * (size / 2));
        info->damaged = f.state[other] < 0 ? other : -1;
        snprintf(info->why, sizeof info->why, "%s", f.state[other] < 0 ? f.why[other] : "");
        info->half = size / 2;
        memcpy(info->heads[0], buf, MOLT_SLOTS_HEADER);
        memcpy(info->heads[1], buf + size / 2, MOLT_SLOTS_HEADER);
    }
    free(buf);
    *ret = out;
    *ret_len = f.len;
    return 0;
}

/* The header of the record whose len bytes of data are in place after it. */
static void put_header_only(unsigned char *slot, unsigned long long seq, size_t len, bool durable)
{
    const unsigned char *data = slot + MOLT_SLOTS_HEADER;
    char h[MOLT_SLOTS_HEADER + 1];
    snprintf(h, sizeof h, MAGIC "%016llx %08zx %c ", seq, len, durable ? 'd' : 'l');
    memset(h + CRC_AT, ' ', MOLT_SLOTS_HEADER - CRC_AT);
    memcpy(slot, h, MOLT_SLOTS_HEADER);
    snprintf(h, 9, "%08lx", record_crc(slot, data, len));
    memcpy(slot + CRC_AT, h, 8);
    slot[MOLT_SLOTS_HEADER - 1] = '\n';
}

static void put_header(unsigned char *slot, unsigned long long seq, const void *data, size_t len,
                       bool durable)
{
    memcpy(slot + MOLT_SLOTS_HEADER, data, len);
    put_header_only(slot, seq, len, durable);
}

/* A new file: slot 0 holds the record, slot 1 never written. Always durable, lazy or not: the
 * writes after it go into the file in place, and a durable one must find the file's name on the
 * disk (a lazy first record, molt_slots_sync'd later, would leave it to the rename). */
static int write_new(const char *path, unsigned long long seq, const void *data, size_t len,
                     size_t *ret_half, molt_err *err)
{
    const bool durable = true;
    size_t half = SLOT_MIN;
    while (half < MOLT_SLOTS_HEADER + len) {
        if (half > ((size_t)-1) / 4)
            return molt_err_set(err, MOLT_ELIMIT, "%s: a record of %zu bytes is too large", path,
                                len);
        half *= 2;
    }
    unsigned char *buf = calloc(2, half);
    if (!buf)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory writing %s", path);
    put_header(buf, seq, data, len, durable);
    int r = molt_write_file_atomic(path, buf, 2 * half, 0600, err);
    free(buf);
    if (r == 0)
        *ret_half = half;
    return r;
}

int molt_slots_sync(const char *path, molt_err *err)
{
    unsigned char *buf = NULL;
    size_t size = 0;
    int r = read_slots_file(path, SLOTS_FILE_MAX, &buf, &size, err);
    if (r < 0)
        return r;
    found f = {.slot = -1};
    find_newest(buf, size, &f);
    size_t half = size / 2;
    unsigned char *slot = f.slot >= 0 ? buf + (size_t)f.slot * half : NULL;
    if (!slot || !slot_lazy(slot)) {
        free(buf);
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot open %s", path);
    } else {
        put_header_only(slot, f.seq, f.len, true);
        if (pwrite(fd, slot, MOLT_SLOTS_HEADER, (off_t)((size_t)f.slot * half)) !=
            (ssize_t)MOLT_SLOTS_HEADER)
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot write %s", path);
        else if (fdatasync(fd) != 0)
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot fdatasync %s", path);
        if (close(fd) != 0 && r == 0)
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot close %s", path);
    }
    free(buf);
    return r;
}

struct molt_slots_writer {
    char *path;
    int fd;                  /* open for writing once the file is known; -1 before, and after
                              * write_new replaced it */
    bool known;              /* the fields below are the file's (from its read or our writes) */
    size_t half;             /* the slot size; 0: no file */
    int newest;              /* the slot holding the newest valid record; -1: none */
    unsigned long long seq;  /* its sequence number */
    bool newest_lazy;        /* it was written without fdatasync */
    bool trusting;           /* the fields are a read's (molt_slots_writer_known), the file not
                              * opened yet: its size is checked at the open */
    unsigned char heads[2][MOLT_SLOTS_HEADER];   /* both slots' headers as known */
};

int molt_slots_writer_new(const char *path, molt_slots_writer **ret, molt_err *err)
{
    molt_slots_writer *w = calloc(1, sizeof *w);
    if (w)
        w->path = strdup(path);
    if (!w || !w->path) {
        free(w);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    w->fd = -1;
    *ret = w;
    return 0;
}

void molt_slots_writer_free(molt_slots_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w->path);
    free(w);
}

void molt_slots_writer_known(molt_slots_writer *w, const molt_slots_read_info *info)
{
    if (info->slot < 0 || info->slot > 1 || !shape_ok((off_t)(2 * info->half)))
        return;   /* not a read's findings: the first put reads the file */
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->known = true;
    w->trusting = true;
    w->half = info->half;
    w->newest = info->slot;
    w->seq = info->seq;
    w->newest_lazy = info->lazy;
    memcpy(w->heads, info->heads, sizeof w->heads);
}

static void forget(molt_slots_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->known = false;
    w->trusting = false;
}

/* Read the file once: which slot holds the newest record. A missing file, one of another shape
 * and one without a valid record are known too: the next put replaces them (write_new). */
static int learn(molt_slots_writer *w, molt_err *err)
{
    w->half = 0;
    w->newest = -1;
    w->seq = 0;
    w->newest_lazy = false;
    int fd = open_noatime(w->path, O_RDWR);
    if (fd < 0 && errno == ENOENT) {
        w->known = true;
        return 0;
    }
    if (fd < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot open %s", w->path);
    char *buf = NULL;
    size_t size = 0;
    int r = molt_read_fd(fd, w->path, SLOTS_FILE_MAX, &buf, &size, err);
    if (r == MOLT_ELIMIT || (r == 0 && !shape_ok((off_t)size))) {
        r = 0;   /* not a slots file: replaced by the next put */
        size = 0;
        molt_err_clear(err);
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    if (size > 0) {
        found f;
        find_newest((const unsigned char *)buf, size, &f);
        if (f.slot >= 0) {
            w->half = size / 2;
            w->newest = f.slot;
            w->seq = f.seq;
            w->newest_lazy = slot_lazy((const unsigned char *)buf + (size_t)f.slot * w->half);
            memcpy(w->heads[0], buf, MOLT_SLOTS_HEADER);
            memcpy(w->heads[1], buf + w->half, MOLT_SLOTS_HEADER);
        }
    }
    free(buf);
    if (w->newest >= 0)
        w->fd = fd;
    else
        close(fd);
    w->known = true;
    return 0;
}

/* Whether both slots' headers are still those this writer knows: a write in place by anything
 * else (another writer of the same file in this process) changes one, since every record has a
 * new sequence number. Two small reads instead of the whole file; a mismatch reads it again. */
static bool heads_unchanged(molt_slots_writer *w)
{
    unsigned char h[MOLT_SLOTS_HEADER];
    for (int i = 0; i < 2; i++)
        if (pread(w->fd, h, sizeof h, (off_t)((size_t)i * w->half)) != (ssize_t)sizeof h ||
            memcmp(h, w->heads[i], sizeof h) != 0)
            return false;
    return true;
}

int molt_slots_writer_put(molt_slots_writer *w, const void *data, size_t len, bool durable,
                          molt_err *err)
{
    if (w->known && w->newest >= 0 && w->fd < 0 &&   /* the file write_new made, or read */
        (w->fd = open_noatime(w->path, O_RDWR)) < 0)
        forget(w);
    if (w->known && w->trusting) {
        /* A file of another size is not the one the read saw (replaced, or damaged). */
        struct stat st;
        if (fstat(w->fd, &st) != 0 || !S_ISREG(st.st_mode) ||
            (unsigned long long)st.st_size != 2ull * w->half)
            forget(w);
        w->trusting = false;
    }
    if (w->known && w->newest >= 0 && !heads_unchanged(w))
        forget(w);
    int r = w->known ? 0 : learn(w, err);
    if (r < 0)
        return r;
    unsigned long long seq = w->newest >= 0 ? w->seq + 1 : 1;
    if (w->newest < 0 || MOLT_SLOTS_HEADER + len > w->half) {
        if (w->fd >= 0)
            close(w->fd);
        w->fd = -1;
        size_t half = 0;
        r = write_new(w->path, seq, data, len, &half, err);
        if (r < 0) {
            forget(w);
            return r;
        }
        w->half = half;
        w->newest = 0;
        w->seq = seq;
        w->newest_lazy = false;   /* a new file is always written durably (write_new) */
        unsigned char *rec = malloc(MOLT_SLOTS_HEADER + len);
        if (!rec) {
            forget(w);   /* read again at the next put */
            return 0;
        }
        put_header(rec, seq, data, len, true);
        memcpy(w->heads[0], rec, MOLT_SLOTS_HEADER);
        memset(w->heads[1], 0, MOLT_SLOTS_HEADER);
        free(rec);
        return 0;
    }
    /* The slot that does not hold the newest record: its bytes are the record before, or a
     * write a cut interrupted, and no reader needs them once this one is whole. */
    int target = 1 - w->newest;
    /* Unless the newest record was written without an fdatasync (lazy): it may not be on the
     * disk, so the other slot may hold the only durable record, which must stay. The lazy one
     * is overwritten instead: a cut during this write leaves that slot torn or holding a record
     * older than the other's, and the reader takes the other slot's, as it would have after a
     * cut that lost the lazy record. */
    if (w->newest_lazy)
        target = w->newest;
    size_t n = MOLT_SLOTS_HEADER + len, done = 0;
    unsigned char *slot = malloc(n);
    if (!slot)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory writing %s", w->path);
    put_header(slot, seq, data, len, durable);
    while (r == 0 && done < n) {
        ssize_t wr = pwrite(w->fd, slot + done, n - done, (off_t)((size_t)target * w->half + done));
        if (wr < 0 && errno == EINTR)
            continue;
        if (wr < 0)
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot write %s", w->path);
        else
            done += (size_t)wr;
    }
    if (r == 0 && durable && fdatasync(w->fd) != 0)
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot fdatasync %s", w->path);
    if (r < 0) {
        free(slot);
        forget(w);   /* what the slot holds now is not known: read the file again */
        return r;
    }
    w->newest = target;
    w->seq = seq;
    w->newest_lazy = !durable;
    memcpy(w->heads[target], slot, MOLT_SLOTS_HEADER);
    free(slot);
    return 0;
}

int molt_slots_write(const char *path, const void *data, size_t len, bool durable, molt_err *err)
{
    molt_slots_writer *w = NULL;
    int r = molt_slots_writer_new(path, &w, err);
    if (r == 0)
        r = molt_slots_writer_put(w, data, len, durable, err);
    if (r == 0 && w->fd >= 0 && close(w->fd) != 0)
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot close %s", path);
    if (w)
        w->fd = -1;
    molt_slots_writer_free(w);
    return r;
}
