/* SPDX-License-Identifier: Apache-2.0 */
/* A record file written in place: two slots of equal size, each a 64-byte header (format,
 * sequence number, length, CRC-32 of the header's fields and the data) and the data. A write
 * goes into the slot that does not hold the newest record, with the next sequence number, and
 * is made durable with one fdatasync: no temporary file, no rename, no folder fsync, so one
 * flush of data blocks instead of a file fsync, a rename and a folder fsync with their journal
 * commits. A write cut by a power loss leaves that slot failing its check, and the reader takes
 * the other slot: the record of the write before, which is what a cut before the write would
 * have left. docs/performance.md ("The store") argues it against the atomic rename. */
#ifndef MOLT_UTIL_SLOTS_H
#define MOLT_UTIL_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include "util/err.h"

#define MOLT_SLOTS_HEADER 64u

/* What a read found beyond the record. */
typedef struct molt_slots_read_info {
    unsigned long long seq; /* the record's sequence number */
    int slot;               /* the slot that holds it, 0 or 1 */
    int damaged;            /* -1, or the other slot when it holds bytes that fail the check: a
                             * write cut by a power loss, a concurrent write seen by a reader
                             * without the lock, or damage */
    char why[160];          /* why that slot was refused, for a warning */
    bool lazy;              /* the record was written without fdatasync (a power cut may lose
                             * it) and not made durable since (molt_slots_sync) */
    size_t half;            /* the slot size: the file is 2 * half bytes */
    unsigned char heads[2][MOLT_SLOTS_HEADER];   /* both slots' headers as read */
} molt_slots_read_info;

/* Read the newest valid record of path (at most max bytes of data) into *ret (malloc'd, NUL
 * added after the data, not counted in *ret_len). MOLT_ENOTFOUND when path does not exist;
 * MOLT_ECORRUPT, naming path and both slots' faults, when neither slot holds a valid record or
 * the file is not a slots file. info may be NULL. */
int molt_slots_read(const char *path, size_t max, char **ret, size_t *ret_len,
                    molt_slots_read_info *info, molt_err *err);

/* Write data as the next record of path: into the slot that does not hold the newest valid
 * record (or into the newest one's when that was written without durable: the other slot then
 * holds the last durable record, which stays), then fdatasync when durable. A missing file, one
 * too small for the record or one that is not a slots file is replaced atomically and durably,
 * even without durable (util/durable.h: later writes in place need its name on the disk), by a
 * new one of mode 0600 whose slots fit the record (at least 8 KiB each, a
 * power of two), the record in slot 0 with a sequence number one above the old file's (1 for a
 * new file). Without durable the record is visible to every reader at once but a power cut may
 * lose it (the previous record is read). */
int molt_slots_write(const char *path, const void *data, size_t len, bool durable, molt_err *err);

/* Make the newest record of path durable when it was written without (a lazy write): its header
 * is rewritten with the durable mark (and CRC) in place, then fdatasync, which flushes the
 * record's data too. A cut before the fdatasync returned leaves the record lazy (or lost: the
 * other slot's is read), as a cut before the call would. The next write then goes to the other
 * slot, as after a durable write. 0 without any write when the newest record is durable. */
int molt_slots_sync(const char *path, molt_err *err);

/* The writes of one process to one slots file: the file is opened and read once, at the first
 * put, and kept open; which slot holds the newest record, its sequence number and whether it
 * was written without fdatasync are then known from this writer's own puts, with the rules of
 * molt_slots_write. Only for a process that no other writes beside (the store's writer holds
 * the data dir's lock from before its first put to after molt_slots_writer_free). Each later put
 * reads the two slot headers first (two 64-byte reads): a record written in place by anything
 * else in the process (molt_slots_sync making a lazy record durable) changed one, and the file is then read again (a file replaced under its
 * name is not noticed: none is while the lock is held). A put that fails leaves the file
 * unknown: the next one reads it again. */
typedef struct molt_slots_writer molt_slots_writer;
int molt_slots_writer_new(const char *path, molt_slots_writer **ret, molt_err *err);
int molt_slots_writer_put(molt_slots_writer *w, const void *data, size_t len, bool durable,
                          molt_err *err);
void molt_slots_writer_free(molt_slots_writer *w);   /* closes the file; NULL accepted */

/* What a read of the file found (molt_slots_read's info), given to a writer before its first
 * put: that put then opens the file and reads its size and the two slot headers (an fstat and
 * two 64-byte reads) instead of the whole file, and takes the read's findings when the size and
 * both headers are still those the read saw, as each later put does with its own; it reads the
 * whole file otherwise. For a read made before the writer's process took the lock: a write by
 * another process in between changed a header (every record has a new sequence number, every
 * header its CRC), or replaced the file. */
void molt_slots_writer_known(molt_slots_writer *w, const molt_slots_read_info *info);

/* The check of one slot's bytes (len of them, header first): 1 and *seq, *data, *data_len
 * when it holds a valid record, 0 when it is all zero bytes (never written), -1 with why when
 * it fails. For the fuzz target and the tests. */
int molt_slots_check(const unsigned char *slot, size_t len, unsigned long long *seq,
                     const unsigned char **data, size_t *data_len, char *why, size_t why_cap);

#endif
