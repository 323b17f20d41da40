/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent store: round trip, the slots file's layout and syncs, every torn or altered
 * file refused or (one damaged slot beside a valid one) read as the record before, the legacy
 * file of earlier releases, and a writer killed at chosen points never leaves anything but the
 * old or the new document. */
#include "fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "state/store.h"
#include "util/encoding.h"
#include "util/fs.h"
#include "util/slots.h"
#include "open_hook.h"

typedef struct fixture {
    char dir[64];
    char path[96];  /* the store's (legacy) path */
    char slots[104]; /* its slots file */
} fixture;

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "store-test");
    fx_path(f->path, sizeof f->path, "%s/store", f->dir);
    fx_path(f->slots, sizeof f->slots, "%s/store.slots", f->dir);
    return 0;
}

static int teardown(void **state)
{
    return fx_fixture_free(state);
}

static void write_raw(const char *path, const void *data, size_t len)
{
    fx_write(path, data, len, 0600);
}

static char *read_raw(const char *path, size_t *len)
{
    return fx_read(path, len);
}

/* A legacy store file (format 1, as earlier releases write it) holding data, into file. */
static void legacy_file(char *file, size_t cap, const char *data)
{
    unsigned char sum[32];
    char hex[65];
    molt_sha256(data, strlen(data), sum);
    molt_hex_encode(sum, 32, hex);
    snprintf(file, cap, "molt-store 1 %s %zu\n%s", hex, strlen(data), data);
}

static json_t *sample_doc(void)
{
    json_t *doc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:i, s:[s,s]}", "artifact-name", "release-1",
                            "state", "ArtifactInstall", "artifact-provides",
                            "rootfs-image.version", "1.0", "data-partition.checksum", "abc",
                            "loops", 3, "list", "a", "b\xc3\xa9\n\"");
    assert_non_null(doc);
    return doc;
}

/* Save the sample document and return the slots file's bytes. */
static char *saved_sample(fixture *f, size_t *len)
{
    json_t *doc = sample_doc();
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    json_decref(doc);
    return read_raw(f->slots, len);
}

static void test_missing_is_empty(void **state)
{
    fixture *f = *state;
    json_t *doc = NULL;
    molt_err err = {0};
    assert_int_equal(molt_store_load(f->path, &doc, &err), 0);
    assert_true(json_is_object(doc));
    assert_int_equal(json_object_size(doc), 0);
    json_decref(doc);
}

/* Every fsync and fdatasync of the program (molt-core is linked in statically), counted. */
static unsigned long n_fsync, n_fdatasync;
int fsync(int fd)
{
    n_fsync++;
    return (int)syscall(SYS_fsync, fd);
}
int fdatasync(int fd)
{
    n_fdatasync++;
    return (int)syscall(SYS_fdatasync, fd);
}

/* The opens of the slots file for writing (a load's are read-only) and the stats of the legacy
 * file, counted (test_writer). */
static const char *counted_slots, *counted_legacy;
static unsigned long n_slots_open, n_legacy_stat, n_legacy_open;
static void open_seen(const char *path, int flags)
{
    if (counted_slots && (flags & O_ACCMODE) != O_RDONLY && strcmp(path, counted_slots) == 0)
        n_slots_open++;
    if (counted_legacy && strcmp(path, counted_legacy) == 0)
        n_legacy_open++;
}
int stat(const char *restrict path, struct stat *restrict st)
{
    if (counted_legacy && strcmp(path, counted_legacy) == 0)
        n_legacy_stat++;
    return (int)syscall(SYS_newfstatat, AT_FDCWD, path, st, 0);
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    json_t *doc = sample_doc();
    assert_int_equal(molt_store_save(f->path, doc, 0, &err), 0);
    json_t *back = NULL;
    molt_store_info info;
    assert_int_equal(molt_store_load_info(f->path, &back, &info, &err), 0);
    assert_true(json_equal(doc, back));
    assert_false(info.legacy);
    assert_int_equal(info.damaged, -1);
    json_decref(back);
    /* The legacy file is not written by an ordinary save. */
    assert_false(molt_path_exists(f->path));

    /* The slots file is what util/slots.h documents: two 8 KiB slots, the record in slot 0 with
     * sequence 1, its data the store's own line naming the legacy file ("-": none), then the
     * compact JSON; slot 1 never written (zeros). */
    size_t len;
    char *raw = read_raw(f->slots, &len);
    assert_int_equal(len, 2 * 8192);
    assert_memory_equal(raw, "molt-slots 1 0000000000000001 ", 30);
    assert_int_equal(raw[63], '\n');
    assert_memory_equal(raw + 64, "molt-store 2 legacy=-\n{", 23);
    for (size_t i = 8192; i < len; i++)
        assert_int_equal(raw[i], 0);
    free(raw);

    /* The next save goes into slot 1 with sequence 2, slot 0 untouched; the one after into
     * slot 0 again. Permissions are private. */
    json_object_set_new(doc, "state", json_string("ArtifactCommit"));
    assert_int_equal(molt_store_save(f->path, doc, 0, &err), 0);
    raw = read_raw(f->slots, &len);
    assert_memory_equal(raw, "molt-slots 1 0000000000000001 ", 30);
    assert_memory_equal(raw + 8192, "molt-slots 1 0000000000000002 ", 30);
    free(raw);
    assert_int_equal(molt_store_load(f->path, &back, &err), 0);
    assert_string_equal(json_string_value(json_object_get(back, "state")), "ArtifactCommit");
    json_decref(back);
    json_object_set_new(doc, "state", json_string("Cleanup"));
    assert_int_equal(molt_store_save(f->path, doc, 0, &err), 0);
    raw = read_raw(f->slots, &len);
    assert_memory_equal(raw, "molt-slots 1 0000000000000003 ", 30);
    free(raw);
    assert_int_equal(molt_store_load(f->path, &back, &err), 0);
    assert_string_equal(json_string_value(json_object_get(back, "state")), "Cleanup");
    json_decref(back);
    struct stat st;
    assert_int_equal(stat(f->slots, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_decref(doc);
}

/* One fdatasync per save once the file exists, none for a lazy save; the save after a lazy one
 * overwrites the lazy record's slot, never the other (which may hold the only durable record). */
static void test_syncs(void **state)
{
    fixture *f = *state;
    json_t *doc = sample_doc();
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0); /* creates: atomic write */
    n_fsync = n_fdatasync = 0;
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    assert_int_equal(n_fsync, 0);
    assert_int_equal(n_fdatasync, 1);
    n_fdatasync = 0;
    assert_int_equal(molt_store_save(f->path, doc, MOLT_STORE_LAZY, NULL), 0);
    assert_int_equal(n_fsync + n_fdatasync, 0);
    size_t len;
    char *raw = read_raw(f->slots, &len);
    assert_memory_equal(raw, "molt-slots 1 0000000000000003 ", 30); /* lazy, in slot 0 */
    assert_memory_equal(raw + 8192, "molt-slots 1 0000000000000002 ", 30);
    free(raw);
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    assert_int_equal(n_fsync, 0);
    assert_int_equal(n_fdatasync, 1);
    raw = read_raw(f->slots, &len);
    assert_memory_equal(raw, "molt-slots 1 0000000000000004 ", 30); /* over the lazy one */
    assert_memory_equal(raw + 8192, "molt-slots 1 0000000000000002 ", 30); /* kept */
    free(raw);
    /* A record larger than a slot: a new file with larger slots, replaced atomically. */
    char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_object_set_new(doc, "big", json_string(big));
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    struct stat st;
    assert_int_equal(stat(f->slots, &st), 0);
    assert_int_equal(st.st_size, 2 * 32768);
    json_t *back = NULL;
    assert_int_equal(molt_store_load(f->path, &back, NULL), 0);
    assert_true(json_equal(doc, back));
    json_decref(back);
    json_decref(doc);
}

/* A lazy record made durable afterwards (molt_store_sync, the Download record of a module that
 * named something after all): one fdatasync, the header's mark rewritten in place ('l' to 'd',
 * the record and its sequence unchanged), and the next save goes to the other slot, keeping it.
 * On a durable record, nothing. */
static void test_sync_lazy(void **state)
{
    fixture *f = *state;
    json_t *doc = sample_doc();
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);   /* seq 2 in slot 1 */
    n_fsync = n_fdatasync = 0;
    assert_int_equal(molt_store_sync(f->path, NULL), 0);
    assert_int_equal(n_fsync + n_fdatasync, 0);
    assert_int_equal(molt_store_save(f->path, doc, MOLT_STORE_LAZY, NULL), 0);
    size_t len;
    char *raw = read_raw(f->slots, &len);
    assert_memory_equal(raw, "molt-slots 1 0000000000000003 ", 30);
    assert_int_equal(raw[39], 'l');
    free(raw);
    assert_int_equal(molt_store_sync(f->path, NULL), 0);
    assert_int_equal(n_fsync, 0);
    assert_int_equal(n_fdatasync, 1);
    raw = read_raw(f->slots, &len);
    assert_memory_equal(raw, "molt-slots 1 0000000000000003 ", 30);
    assert_int_equal(raw[39], 'd');
    free(raw);
    json_t *back = NULL;
    assert_int_equal(molt_store_load(f->path, &back, NULL), 0);
    assert_true(json_equal(doc, back));
    json_decref(back);
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    raw = read_raw(f->slots, &len);
    assert_memory_equal(raw, "molt-slots 1 0000000000000003 ", 30);   /* kept */
    assert_memory_equal(raw + 8192, "molt-slots 1 0000000000000004 ", 30);
    free(raw);
    json_decref(doc);
}

/* The sequence number in slot i's header of the slots file, and its sync mark. */
static void expect_slot(const fixture *f, int i, unsigned seq, char sync)
{
    size_t len;
    char *raw = read_raw(f->slots, &len);
    assert_int_equal(len, 16384);
    char want[48];
    snprintf(want, sizeof want, "molt-slots 1 %016x ", seq);
    assert_memory_equal(raw + (size_t)i * 8192, want, strlen(want));
    assert_int_equal(raw[(size_t)i * 8192 + 39], sync);
    free(raw);
}

static void expect_doc(const fixture *f, const json_t *want)
{
    unsigned long stats = n_legacy_stat;   /* the load's own stat is not the writer's */
    json_t *back = NULL;
    molt_store_info info;
    assert_int_equal(molt_store_load_info(f->path, &back, &info, NULL), 0);
    assert_false(info.legacy);
    assert_int_equal(info.damaged, -1);
    assert_true(json_equal(back, want));
    json_decref(back);
    n_legacy_stat = stats;
}

/* Set the document's "loops" and save it through w. */
static void write_loops(molt_store_writer *w, json_t *doc, int loops, unsigned flags)
{
    json_object_set_new(doc, "loops", json_integer(loops));
    assert_int_equal(molt_store_write(w, doc, flags, NULL), 0);
}

/* A writer (the state machine's, under the lock) reads the slots file and stats the legacy file
 * at its first save only, and then keeps the slots alternating as separate saves do: the lazy
 * record overwritten, never the durable one before it; a new writer after a lazy save finds it. */
static void test_writer(void **state)
{
    fixture *f = *state;
    json_t *doc = sample_doc();
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0); /* seq 1 in slot 0 */
    counted_slots = f->slots;
    counted_legacy = f->path;
    n_slots_open = n_legacy_stat = n_fsync = n_fdatasync = 0;
    molt_store_writer *w = NULL;
    assert_int_equal(molt_store_writer_new(f->path, &w, NULL), 0);
    assert_int_equal(n_slots_open + n_legacy_stat, 0);
    for (int i = 2; i <= 5; i++) {
        write_loops(w, doc, i, i == 4 ? MOLT_STORE_LAZY : 0);
        assert_int_equal(n_slots_open, 1);   /* the first save's, kept open */
        assert_int_equal(n_legacy_stat, 1);
        assert_int_equal(n_fsync, 0);
        assert_int_equal(n_fdatasync, (unsigned long)(i < 4 ? i - 1 : i - 2));
        expect_doc(f, doc);
    }
    /* 2 in slot 1, 3 in slot 0, 4 (lazy) in slot 1, 5 over it: slot 0 keeps 3. */
    expect_slot(f, 0, 3, 'd');
    expect_slot(f, 1, 5, 'd');
    write_loops(w, doc, 6, MOLT_STORE_LAZY);
    expect_slot(f, 0, 6, 'l');
    expect_slot(f, 1, 5, 'd');
    molt_store_writer_free(w);
    /* The next process's writer reads the file: the lazy record is the newest and the one it
     * overwrites, and the durable one before it stays. */
    assert_int_equal(molt_store_writer_new(f->path, &w, NULL), 0);
    write_loops(w, doc, 7, 0);
    assert_int_equal(n_slots_open, 2);
    expect_slot(f, 0, 7, 'd');
    expect_slot(f, 1, 5, 'd');
    expect_doc(f, doc);
    /* A handover save writes the legacy file: its new identity is stat'd and recorded, so the
     * slots stay the newest; later saves need no stat. */
    assert_int_equal(n_legacy_stat, 2);
    write_loops(w, doc, 8, MOLT_STORE_HANDOVER);
    assert_int_equal(n_legacy_stat, 3);
    expect_doc(f, doc);
    write_loops(w, doc, 9, 0);
    assert_int_equal(n_legacy_stat, 3);
    assert_int_equal(n_slots_open, 2);
    expect_doc(f, doc);
    expect_slot(f, 0, 9, 'd');
    expect_slot(f, 1, 8, 'd');
    /* A record written in place by another writer is noticed (the slot headers are read before
     * each save): the file is read again and the slots keep alternating. */
    json_object_set_new(doc, "loops", json_integer(10));
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    expect_slot(f, 1, 10, 'd');
    n_slots_open = 0;
    write_loops(w, doc, 11, 0);
    assert_int_equal(n_slots_open, 1);
    expect_slot(f, 0, 11, 'd');
    expect_slot(f, 1, 10, 'd');
    expect_doc(f, doc);
    /* A record too large for the slots: a new file, which the writer then writes in place. */
    char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_object_set_new(doc, "big", json_string(big));
    assert_int_equal(molt_store_write(w, doc, 0, NULL), 0);
    write_loops(w, doc, 13, 0);
    expect_doc(f, doc);
    write_loops(w, doc, 14, MOLT_STORE_LAZY);
    write_loops(w, doc, 15, 0);
    expect_doc(f, doc);
    molt_store_writer_free(w);
    counted_slots = counted_legacy = NULL;
    json_decref(doc);
}

/* The read() calls of the program while reads_counted is set (a writer's read of the whole
 * slots file; the slot headers are pread). */
static bool reads_counted;
static unsigned long n_read;
ssize_t read(int fd, void *buf, size_t n)
{
    if (reads_counted)
        n_read++;
    return (ssize_t)syscall(SYS_read, fd, buf, n);
}
/* What a fortified read() with a buffer of known size calls instead (_FORTIFY_SOURCE). */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        abort();
    return read(fd, buf, n);
}

/* One save through a new writer given info (a load's findings); n_read counts its reads. */
static void write_known(fixture *f, const molt_store_info *info, json_t *doc, int loops,
                        unsigned flags)
{
    molt_store_writer *w = NULL;
    assert_int_equal(molt_store_writer_new(f->path, &w, NULL), 0);
    molt_store_writer_known(w, info);
    n_read = 0;
    reads_counted = true;
    write_loops(w, doc, loops, flags);
    reads_counted = false;
    molt_store_writer_free(w);
}

/* Both slots' sequence numbers and sync marks, and the document loaded. */
static void expect_both(const fixture *f, const json_t *doc, unsigned seq0, char sync0,
                        unsigned seq1, char sync1)
{
    expect_slot(f, 0, seq0, sync0);
    expect_slot(f, 1, seq1, sync1);
    expect_doc(f, doc);
}

static void load_known(fixture *f, molt_store_info *info)
{
    json_t *back = NULL;
    assert_int_equal(molt_store_load_info(f->path, &back, info, NULL), 0);
    assert_true(info->slots_read);
    json_decref(back);
}

/* A writer given the load's findings (the state machine's, whose load ran before the lock)
 * does not read the slots file again when its size and slot headers are still the load's; any
 * write between the load and the first save (another writer's, a lazy record made durable, a
 * new file) is noticed and the file read, so the slots keep alternating as without it. */
static void test_writer_known(void **state)
{
    fixture *f = *state;
    json_t *doc = sample_doc();
    molt_store_info info;
    json_object_set_new(doc, "loops", json_integer(1));
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);   /* 1 in slot 0 */
    json_object_set_new(doc, "loops", json_integer(2));
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);   /* 2 in slot 1 */
    load_known(f, &info);
    assert_int_equal(info.slots.slot, 1);
    assert_int_equal(info.slots.seq, 2);
    write_known(f, &info, doc, 3, 0);
    assert_int_equal(n_read, 0);
    expect_both(f, doc, 3, 'd', 2, 'd');
    /* A lazy newest record is the one overwritten, as a writer that read the file does. */
    json_object_set_new(doc, "loops", json_integer(4));
    assert_int_equal(molt_store_save(f->path, doc, MOLT_STORE_LAZY, NULL), 0);   /* slot 1 */
    load_known(f, &info);
    assert_true(info.slots.lazy);
    write_known(f, &info, doc, 5, 0);
    assert_int_equal(n_read, 0);
    expect_both(f, doc, 3, 'd', 5, 'd');
    /* Another writer's save after the load: the headers differ, the file is read. */
    load_known(f, &info);
    json_object_set_new(doc, "loops", json_integer(6));
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);   /* 6 in slot 0 */
    write_known(f, &info, doc, 7, 0);
    assert_true(n_read > 0);
    expect_both(f, doc, 6, 'd', 7, 'd');
    /* A lazy record made durable in place after the load (molt_store_sync): read again, and
     * the next save goes to the other slot, not over the now durable record. */
    json_object_set_new(doc, "loops", json_integer(8));
    assert_int_equal(molt_store_save(f->path, doc, MOLT_STORE_LAZY, NULL), 0);   /* slot 0 */
    load_known(f, &info);
    assert_true(info.slots.lazy);
    assert_int_equal(molt_store_sync(f->path, NULL), 0);
    write_known(f, &info, doc, 9, 0);
    assert_true(n_read > 0);
    expect_both(f, doc, 8, 'd', 9, 'd');
    /* The file replaced by a larger one after the load (a record too large for the slots):
     * another size, read again. */
    load_known(f, &info);
    char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_object_set_new(doc, "big", json_string(big));
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    json_object_del(doc, "big");
    write_known(f, &info, doc, 11, 0);
    assert_true(n_read > 0);
    expect_doc(f, doc);
    /* Findings of no read (a load that found no slots file) change nothing. */
    molt_store_info none = {.damaged = -1};
    write_known(f, &none, doc, 12, 0);
    assert_true(n_read > 0);
    expect_doc(f, doc);
    json_decref(doc);
}

/* molt's reads of store.slots leave its access time alone (O_NOATIME): the file is written by
 * every command, and under relatime every first read after a write would update it. */
static void test_reads_keep_atime(void **state)
{
    fixture *f = *state;
    json_t *doc = sample_doc();
    assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
    const struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_nsec = UTIME_OMIT}};
    assert_int_equal(utimensat(AT_FDCWD, f->slots, old, 0), 0);
    json_t *back = NULL;
    molt_store_info info;
    assert_int_equal(molt_store_load_info(f->path, &back, &info, NULL), 0);
    json_decref(back);
    molt_store_writer *w = NULL;
    assert_int_equal(molt_store_writer_new(f->path, &w, NULL), 0);
    write_loops(w, doc, 2, 0);   /* the writer's read of the file */
    write_loops(w, doc, 3, 0);   /* its reads of the slot headers */
    molt_store_writer_free(w);
    struct stat st;
    assert_int_equal(stat(f->slots, &st), 0);
    assert_int_equal(st.st_atim.tv_sec, 1000000000);
    json_decref(doc);
}

static void test_save_refuses_non_object(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    json_t *arr = json_array();
    assert_int_equal(molt_store_save(f->path, arr, 0, &err), MOLT_EINVAL);
    assert_false(molt_path_exists(f->path));
    json_decref(arr);
}

/* The store at path refused, the message naming named (the file at fault). */
static void expect_corrupt(const char *path, const char *named, const char *what)
{
    json_t *doc = NULL;
    molt_err err = {0};
    int r = molt_store_load(path, &doc, &err);
    if (r != MOLT_ECORRUPT)
        fail_msg("%s: expected MOLT_ECORRUPT, got %d (%s)", what, r, err.msg);
    assert_null(doc);
    assert_non_null(strstr(err.msg, named));
}

static void test_truncated_at_every_offset(void **state)
{
    fixture *f = *state;
    size_t len;
    char *raw = saved_sample(f, &len);
    /* A slots file never changes size: any other size is refused, whatever the slots hold. */
    for (size_t cut = 0; cut < len; cut += (cut < 200 || cut > len - 200) ? 1 : 61) {
        write_raw(f->slots, raw, cut);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cut, len);
        expect_corrupt(f->path, f->slots, what);
    }
    char *longer = calloc(1, len + 2);
    memcpy(longer, raw, len);
    write_raw(f->slots, longer, len + 2);
    expect_corrupt(f->path, f->slots, "extended by 2 bytes");
    free(longer);
    free(raw);
}

/* One save: slot 0 holds the only record. A flipped bit in its header or record is refused (no
 * valid record: the store is not trusted); in slot 1's header it is a damaged slot beside a
 * valid one (loaded, the damage reported); in the unused bytes after either, nothing. */
static void test_flipped_bytes(void **state)
{
    fixture *f = *state;
    size_t len;
    char *raw = saved_sample(f, &len);
    size_t rec_end = 64 + strtoull(raw + 30, NULL, 16);
    json_t *want = sample_doc();
    for (size_t i = 0; i < len; i += (i < rec_end + 64 || (i >= 8192 && i < 8192 + 64)) ? 1 : 97) {
        raw[i] ^= (char)(1u << (i % 8));
        write_raw(f->slots, raw, len);
        char what[64];
        snprintf(what, sizeof what, "bit %zu of byte %zu flipped", i % 8, i);
        if (i < rec_end) {
            expect_corrupt(f->path, f->slots, what);
        } else {
            json_t *doc = NULL;
            molt_store_info info;
            molt_err err = {0};
            if (molt_store_load_info(f->path, &doc, &info, &err) != 0)
                fail_msg("%s: %s", what, err.msg);
            assert_true(json_equal(doc, want));
            assert_int_equal(info.damaged, i >= 8192 && i < 8192 + 64 ? 1 : -1);
            json_decref(doc);
        }
        raw[i] ^= (char)(1u << (i % 8));
    }
    json_decref(want);
    free(raw);
}

/* Two saves: a damaged newest slot (what a save cut by a power loss leaves) gives the record
 * before it, and says which slot failed. */
static void test_newest_slot_damaged(void **state)
{
    fixture *f = *state;
    json_t *one = sample_doc(), *two = sample_doc();
    json_object_set_new(two, "state", json_string("Cleanup"));
    assert_int_equal(molt_store_save(f->path, one, 0, NULL), 0);
    assert_int_equal(molt_store_save(f->path, two, 0, NULL), 0);
    size_t len;
    char *raw = read_raw(f->slots, &len);
    raw[8192 + 100] ^= 4;
    write_raw(f->slots, raw, len);
    json_t *doc = NULL;
    molt_store_info info;
    molt_err err = {0};
    assert_int_equal(molt_store_load_info(f->path, &doc, &info, &err), 0);
    assert_true(json_equal(doc, one));
    assert_int_equal(info.damaged, 1);
    assert_non_null(strstr(info.why, "CRC-32"));
    json_decref(doc);
    /* The next save overwrites the damaged slot, not the good one. */
    assert_int_equal(molt_store_save(f->path, two, 0, NULL), 0);
    assert_int_equal(molt_store_load_info(f->path, &doc, &info, &err), 0);
    assert_true(json_equal(doc, two));
    assert_int_equal(info.damaged, -1);
    json_decref(doc);
    /* Both slots damaged: refused, naming both. */
    free(raw);
    raw = read_raw(f->slots, &len);
    raw[100] ^= 4;
    raw[8192 + 100] ^= 4;
    write_raw(f->slots, raw, len);
    expect_corrupt(f->path, f->slots, "both slots damaged");
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "slot 0: CRC-32"));
    assert_non_null(strstr(err.msg, "slot 1: CRC-32"));
    free(raw);
    json_decref(one);
    json_decref(two);
}

/* The legacy file (format 1) of an earlier release: read while there is no slots file, and
 * again when it was replaced after the slots file's newest record (an earlier molt ran after an
 * A/B rollback to it); written beside the slots with MOLT_STORE_HANDOVER. */
static void test_legacy(void **state)
{
    fixture *f = *state;
    json_t *one = sample_doc(), *two = sample_doc(), *doc = NULL;
    json_object_set_new(two, "state", json_string("Cleanup"));
    molt_store_info info;
    molt_err err = {0};
    /* A data dir of an earlier release: its store. */
    char file[256];
    legacy_file(file, sizeof file, "{\"artifact_name\":\"old\"}\n");
    assert_int_equal(molt_write_file_atomic(f->path, file, strlen(file), 0600, &err), 0);
    assert_int_equal(molt_store_load_info(f->path, &doc, &info, &err), 0);
    assert_true(info.legacy);
    assert_string_equal(json_string_value(json_object_get(doc, "artifact_name")), "old");
    json_decref(doc);
    /* The first save makes the slots file, which then wins; the legacy file stays as it was. */
    assert_int_equal(molt_store_save(f->path, one, 0, &err), 0);
    assert_int_equal(molt_store_load_info(f->path, &doc, &info, &err), 0);
    assert_false(info.legacy);
    assert_true(json_equal(doc, one));
    json_decref(doc);
    size_t len;
    char *raw = read_raw(f->path, &len);
    assert_int_equal(len, strlen(file));
    assert_memory_equal(raw, file, len);
    free(raw);
    /* An earlier release replaces the legacy file with its own record: it is newer than the
     * slots' record. */
    legacy_file(file, sizeof file, "{\"artifact_name\":\"older\"}\n");
    assert_int_equal(molt_write_file_atomic(f->path, file, strlen(file), 0600, &err), 0);
    assert_int_equal(molt_store_load_info(f->path, &doc, &info, &err), 0);
    assert_true(info.legacy);
    assert_string_equal(json_string_value(json_object_get(doc, "artifact_name")), "older");
    json_decref(doc);
    /* A handover save writes both; the legacy file holds the same document and the slots win. */
    assert_int_equal(molt_store_save(f->path, two, MOLT_STORE_HANDOVER, &err), 0);
    assert_int_equal(molt_store_load_info(f->path, &doc, &info, &err), 0);
    assert_false(info.legacy);
    assert_true(json_equal(doc, two));
    json_decref(doc);
    raw = read_raw(f->path, &len);
    assert_memory_equal(raw, "molt-store 1 ", 13);
    const char *data = strchr(raw, '\n') + 1;
    json_t *legacy_doc = json_loadb(data, len - (size_t)(data - raw), 0, NULL);
    assert_true(json_equal(legacy_doc, two));
    json_decref(legacy_doc);
    free(raw);
    json_decref(one);
    json_decref(two);
}

/* What cp -a does to a file: the same bytes, mode and times in a new inode. */
static void copy_like_cp_a(const char *from, const char *to)
{
    struct stat st;
    assert_int_equal(stat(from, &st), 0);
    size_t len;
    char *raw = read_raw(from, &len);
    write_raw(to, raw, len);
    free(raw);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, to, times, 0), 0);
}

static const char *loaded_name(const fixture *f, molt_store_info *info)
{
    static char name[64];
    json_t *doc = NULL;
    assert_int_equal(molt_store_load_info(f->path, &doc, info, NULL), 0);
    snprintf(name, sizeof name, "%s", json_string_value(json_object_get(doc, "artifact_name")));
    json_decref(doc);
    return name;
}

/* A store's files copied (a data dir copied with cp -a, restored from a backup, or its device
 * numbered otherwise at the next boot) keep their newest record: the legacy file's stat is not
 * the recorded one, but its sum is; the legacy file is read only then, and the next save names
 * the new stat. An earlier molt's write (other content) still wins over the slots, a legacy file
 * rewritten with the bytes the record names does not (a write that changed nothing), and one
 * that is gone leaves the slots' record in charge. A record of molt before the sum (the
 * stat alone) is compared by the stat, as that molt did. */
static void test_legacy_copied(void **state)
{
    fixture *f = *state;
    json_t *reboot = json_pack("{s:s}", "artifact_name", "handed-over");
    json_t *later = json_pack("{s:s}", "artifact_name", "committed");
    assert_int_equal(molt_store_save(f->path, reboot, MOLT_STORE_HANDOVER, NULL), 0);
    assert_int_equal(molt_store_save(f->path, later, 0, NULL), 0);
    molt_store_info info;
    assert_string_equal(loaded_name(f, &info), "committed");

    fixture copy = *f;
    snprintf(copy.path, sizeof copy.path, "%s/copy", f->dir);
    snprintf(copy.slots, sizeof copy.slots, "%s/copy.slots", f->dir);
    copy_like_cp_a(f->path, copy.path);
    copy_like_cp_a(f->slots, copy.slots);
    counted_legacy = copy.path;
    n_legacy_open = 0;
    assert_string_equal(loaded_name(&copy, &info), "committed");
    assert_false(info.legacy);
    assert_int_equal(n_legacy_open, 1);   /* its header's sum, once the stat differed */
    /* The writer takes the load's identity (same stat): no read; its record names the copy. */
    molt_store_writer *w = NULL;
    assert_int_equal(molt_store_writer_new(copy.path, &w, NULL), 0);
    molt_store_writer_known(w, &info);
    assert_int_equal(molt_store_write(w, later, 0, NULL), 0);
    molt_store_writer_free(w);
    assert_int_equal(n_legacy_open, 1);
    assert_string_equal(loaded_name(&copy, &info), "committed");
    assert_int_equal(n_legacy_open, 1);   /* the same stat: the file is not read */
    counted_legacy = NULL;

    /* An earlier molt replaced the legacy file with its own record: the legacy file wins. */
    char file[256];
    legacy_file(file, sizeof file, "{\"artifact_name\":\"older-molt\"}\n");
    assert_int_equal(molt_write_file_atomic(copy.path, file, strlen(file), 0600, NULL), 0);
    assert_string_equal(loaded_name(&copy, &info), "older-molt");
    assert_true(info.legacy);

    /* Rewritten with the same bytes as the recorded file (a new inode, a new time): a write
     * that changed nothing, so the record stays the newest. */
    assert_int_equal(molt_store_save(f->path, later, 0, NULL), 0);
    size_t len;
    char *raw = read_raw(f->path, &len);
    assert_int_equal(molt_write_file_atomic(f->path, raw, len, 0600, NULL), 0);
    free(raw);
    assert_string_equal(loaded_name(f, &info), "committed");
    assert_false(info.legacy);

    /* Gone: no molt removes it, the record stays the newest. */
    assert_int_equal(unlink(f->path), 0);
    assert_string_equal(loaded_name(f, &info), "committed");
    assert_false(info.legacy);
    /* A record naming no legacy file, and one made since: an earlier molt's (as above). */
    assert_int_equal(molt_store_save(f->path, later, 0, NULL), 0);
    assert_int_equal(molt_write_file_atomic(f->path, file, strlen(file), 0600, NULL), 0);
    assert_string_equal(loaded_name(f, &info), "older-molt");
    assert_true(info.legacy);

    /* A record of molt before the sum: the stat decides. Written with the slots writer as that
     * molt wrote it. */
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    char rec[256];
    int n = snprintf(rec, sizeof rec, "molt-store 2 legacy=%llx:%llx:%llx:%lld.%09ld\n"
                     "{\"artifact_name\":\"stat-only\"}\n", (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
                     (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    molt_slots_writer *sw = NULL;
    assert_int_equal(molt_slots_writer_new(f->slots, &sw, NULL), 0);
    assert_int_equal(molt_slots_writer_put(sw, rec, (size_t)n, true, NULL), 0);
    molt_slots_writer_free(sw);
    assert_string_equal(loaded_name(f, &info), "stat-only");
    assert_false(info.legacy);
    copy_like_cp_a(f->path, copy.path);
    copy_like_cp_a(f->slots, copy.slots);
    assert_string_equal(loaded_name(&copy, &info), "older-molt");
    assert_true(info.legacy);
    json_decref(reboot);
    json_decref(later);
}

static void test_messages(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    json_t *doc = NULL;

    write_raw(f->path, "", 0);
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "empty"));

    /* A future format is named in the message. */
    const char *v2 = "molt-store 2 0000000000000000000000000000000000000000000000000000000000000000"
                     " 3\n{}\n";
    write_raw(f->path, v2, strlen(v2));
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "format version 2"));

    /* A valid checksum over something that is not an object. */
    char file[256];
    legacy_file(file, sizeof file, "[1,2]\n");
    write_raw(f->path, file, strlen(file));
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a JSON object"));

    /* Valid checksum over bad JSON, and over duplicate keys. */
    const char *bad[] = {"{\"a\":\n", "{\"a\":1,\"a\":2}\n"};
    for (size_t i = 0; i < 2; i++) {
        legacy_file(file, sizeof file, bad[i]);
        write_raw(f->path, file, strlen(file));
        assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
        assert_non_null(strstr(err.msg, "not JSON"));
    }

    /* Plain JSON (no header) is not trusted either. */
    write_raw(f->path, "{}\n", 3);
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "molt-store"));

    /* A slots file that is not one, or whose record is not the store's, is refused by name. */
    char slots[128];
    snprintf(slots, sizeof slots, "%s.slots", f->path);
    write_raw(slots, "{}\n", 3);
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a two-slot record file"));
    assert_int_equal(molt_slots_write(slots, "{}\n", 3, true, &err), 0);
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "does not start with \"molt-store 2 legacy=\""));
    unlink(slots);

    /* A huge file is refused without reading it all. */
    assert_int_equal(truncate(f->path, 64 * 1024 * 1024), 0);
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "larger than"));
    assert_null(doc);
}

/* The child: saves documents 1, 2, 3... forever. Each document's "check" is derived from its
 * "n", so a document mixed from two saves would be noticed. */
typedef struct writer_arg {
    const char *path;
    long start;
} writer_arg;

/* Saves n = start, start + 1, ... until killed, reporting (fx_report) after each save returned:
 * the parent kills after a number of reported saves, not after a time. */
static int writer(void *arg, int report_fd)
{
    const writer_arg *w = arg;
    char pad[2048];
    for (long n = w->start;; n++) {
        memset(pad, 'a' + (int)(n % 26), sizeof pad - 1);
        pad[sizeof pad - 1] = '\0';
        json_t *doc = json_pack("{s:i, s:i, s:s}", "n", (json_int_t)n, "check",
                                (json_int_t)(n * 7919 % 104729), "pad", pad);
        if (!doc || molt_store_save(w->path, doc, 0, NULL) != 0)
            return 3;
        json_decref(doc);
        fx_report(report_fd);
    }
}

static void test_killed_writer(void **state)
{
    fixture *f = *state;
    long last = 0;
    int changed = 0;
    for (int i = 0; i < 200; i++) {
        /* Kill after 0 to 3 saves have returned (a handshake: a busy machine changes nothing);
         * the writer is then somewhere inside the next save, wherever the scheduler left it. */
        int saves = i % 4;
        writer_arg w = {f->path, last + 1};
        fx_child c;
        fx_child_start(&c, writer, &w);
        assert_int_equal(fx_child_wait_reports(&c, saves), saves);
        int status = fx_child_end(&c, SIGKILL);
        assert_true(WIFSIGNALED(status));

        json_t *doc = NULL;
        molt_err err = {0};
        if (molt_store_load(f->path, &doc, &err) != 0)
            fail_msg("iteration %d: store does not load after kill: %s", i, err.msg);
        json_int_t n = json_integer_value(json_object_get(doc, "n"));
        if (json_object_size(doc) == 0) {
            assert_int_equal(last, 0);   /* never saved yet */
            assert_int_equal(saves, 0);
        } else {
            assert_int_equal(json_integer_value(json_object_get(doc, "check")),
                             n * 7919 % 104729);
            const char *pad = json_string_value(json_object_get(doc, "pad"));
            assert_non_null(pad);
            assert_int_equal(strlen(pad), 2047);
            assert_int_equal(pad[0], 'a' + (int)(n % 26));
            assert_int_equal(pad[2046], 'a' + (int)(n % 26));
            /* Old or new: never older than what a previous round left, and every save that
             * returned is there. */
            assert_true(n >= last + saves);
            changed += n > last;
            last = (long)n;
        }
        json_decref(doc);
    }
    /* Three rounds in four waited for at least one save, so the store changed in at least
     * those: the kills did not all land before the first save. */
    assert_true(changed >= 150);
    /* Temporary files of killed writers are left behind (unique per pid); they do not matter
     * for loading. */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_refuses_non_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_at_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newest_slot_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_copied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_lazy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_keep_atime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_writer, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
