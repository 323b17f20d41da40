/* SPDX-License-Identifier: Apache-2.0 */
/* liblzma and libzstd loaded on demand (core/util/compress_lib.h): a process that has read and
 * written only gzip and uncompressed tars has neither mapped; the first xz tar maps liblzma
 * (and not libzstd), the first zstd tar libzstd, and both round-trip through libarchive's
 * filters (whose calls land in compress_lib.c's forwarders); a missing library is one clear
 * MOLT_EUNSUPPORTED naming the member, the compression and the library, and libarchive called
 * without it stops the program with that message instead of calling through an empty table
 * (a bug of the caller; the sonames of
 * molt_compress_lib_set_sonames, a test hook). Each case runs in a forked child so the
 * load-once state starts empty. This program links neither library (--as-needed drops them,
 * as for molt: test_footprint). */
#include "fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "artifact/tar_in.h"
#include "artifact/tar_write.h"
#include "util/compress_lib.h"

/* The sonames of the cases with missing libraries (molt_compress_lib_set_sonames, in the
 * child). */
static void set_missing(void)
{
    molt_compress_lib_set_sonames("libmolt-no-such-lzma.so.5", "libmolt-no-such-zstd.so.1");
}

static const char content[] = "molt compresses this line";

/* A tar of one file "f" holding content (molt's ustar writer), through libarchive's filter for
 * c as molt's writer does (format "raw": the whole ustar format table would pull libarchive's
 * 7zip and xar writers, and libxml2, into this program), into buf; its length, or 0 when
 * libarchive failed. */
static size_t write_tar(molt_compression c, char *buf, size_t cap)
{
    unsigned char tar[4 * MOLT_TAR_BLOCK] = {0};
    const molt_tar_meta meta = { .mode = 0644 };
    assert_int_equal(molt_tar_header_fill(tar, "f", strlen(content), &meta, NULL), 0);
    memcpy(tar + MOLT_TAR_BLOCK, content, strlen(content));
    struct archive *a = archive_write_new();
    size_t used = 0;
    int rc = archive_write_set_format_raw(a);
    switch (c) {
    case MOLT_COMPRESSION_GZIP: rc |= archive_write_add_filter_gzip(a); break;
    case MOLT_COMPRESSION_XZ: rc |= archive_write_add_filter_xz(a); break;
    case MOLT_COMPRESSION_ZSTD: rc |= archive_write_add_filter_zstd(a); break;
    case MOLT_COMPRESSION_NONE: break;
    }
    rc |= archive_write_open_memory(a, buf, cap, &used);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "test.tar");
    archive_entry_set_filetype(e, AE_IFREG);
    bool ok = rc == ARCHIVE_OK && archive_write_header(a, e) == ARCHIVE_OK &&
              archive_write_data(a, tar, sizeof tar) == (la_ssize_t)sizeof tar &&
              archive_write_close(a) == ARCHIVE_OK;
    archive_entry_free(e);
    archive_write_free(a);
    return ok ? used : 0;
}

/* Write a tar compressed with c and read it back through molt_tar_in_new; exits with code on
 * any failure. */
static void round_trip(molt_compression c, int code)
{
    static char buf[1 << 16];
    molt_err e = {0};
    if (molt_compression_load(c, "test.tar", &e) != 0)
        _exit(code);
    size_t n = write_tar(c, buf, sizeof buf);
    struct archive *a = NULL;
    if (n == 0 || molt_tar_in_new(&a, c, false, "test.tar", &e) != 0)
        _exit(code + 1);
    struct archive_entry *entry = NULL;
    char got[64] = "";
    if (archive_read_open_memory(a, buf, n) != ARCHIVE_OK ||
        molt_tar_in_check_filter(a, c, "test.tar", &e) != 0 ||
        archive_read_next_header(a, &entry) != ARCHIVE_OK ||
        archive_read_data(a, got, sizeof got - 1) != (la_ssize_t)strlen(content) ||
        strcmp(got, content) != 0)
        _exit(code + 2);
    archive_read_free(a);
}

static void child_gzip(void)
{
    if (fx_mapped("/liblzma") || fx_mapped("/libzstd"))
        _exit(10);   /* mapped at start: this program links one */
    round_trip(MOLT_COMPRESSION_GZIP, 11);
    round_trip(MOLT_COMPRESSION_NONE, 14);
    if (fx_mapped("/liblzma") || fx_mapped("/libzstd"))
        _exit(17);
}

static void test_gzip_loads_nothing(void **state)
{
    (void)state;
    assert_int_equal(fx_in_child(child_gzip, NULL), 0);
}

static void child_xz_zstd(void)
{
    round_trip(MOLT_COMPRESSION_XZ, 20);
    if (!fx_mapped("/liblzma") || fx_mapped("/libzstd"))
        _exit(23);
    round_trip(MOLT_COMPRESSION_ZSTD, 24);
    if (!fx_mapped("/libzstd"))
        _exit(27);
    const molt_lzma_lib *l = NULL, *l2 = NULL;
    const molt_zstd_lib *z = NULL;
    if (molt_lzma_get(&l, NULL) != 0 || molt_lzma_get(&l2, NULL) != 0 || !l || l != l2 ||
        molt_zstd_get(&z, NULL) != 0 || !z || z->ZSTD_maxCLevel() < 19)
        _exit(28);
}

static void test_xz_zstd_load_on_use(void **state)
{
    (void)state;
    assert_int_equal(fx_in_child(child_xz_zstd, NULL), 0);
}

/* The missing library's message, for member with compression c; exits with code unless it is
 * MOLT_EUNSUPPORTED and says what. */
static void expect_missing(molt_compression c, const char *want, int code)
{
    struct archive *a = NULL;
    molt_err e = {0};
    if (molt_tar_in_new(&a, c, false, "data/0000.tar", &e) != MOLT_EUNSUPPORTED || a)
        _exit(code);
    if (!strstr(e.msg, want)) {
        fprintf(stderr, "got: %s\nwant: %s\n", e.msg, want);
        _exit(code + 1);
    }
    molt_err again = {0};
    if (molt_compression_load(c, "data/0000.tar", &again) != MOLT_EUNSUPPORTED ||
        strcmp(again.msg, e.msg) != 0)
        _exit(code + 2);
}

static void child_missing(void)
{
    set_missing();
    expect_missing(MOLT_COMPRESSION_XZ, "data/0000.tar: xz compression needs liblzma, which "
                   "cannot be loaded (libmolt-no-such-lzma.so.5): ", 30);
    expect_missing(MOLT_COMPRESSION_XZ, "; install liblzma (Debian: liblzma5)", 33);
    expect_missing(MOLT_COMPRESSION_ZSTD, "data/0000.tar: zstd compression needs libzstd, which "
                   "cannot be loaded (libmolt-no-such-zstd.so.1): ", 36);
    expect_missing(MOLT_COMPRESSION_ZSTD, "; install libzstd (Debian: libzstd1)", 39);
    /* gzip needs neither */
    round_trip(MOLT_COMPRESSION_GZIP, 42);
}

/* libarchive's xz writer without molt_compression_load: stops with the load's message. */
static void child_unloaded_call(void)
{
    set_missing();
    static char buf[1 << 16];
    write_tar(MOLT_COMPRESSION_XZ, buf, sizeof buf);
}

static void test_missing_library(void **state)
{
    (void)state;
    assert_int_equal(fx_in_child(child_missing, NULL), 0);
    char dir[64], path[128];
    fx_scratch(dir, sizeof dir, "compress-lib");
    snprintf(path, sizeof path, "%s/stderr", dir);
    assert_int_equal(fx_in_child(child_unloaded_call, path), 128 + SIGABRT);
    char *text = fx_read(path, NULL);
    assert_non_null(strstr(text, "molt: xz compression needs liblzma, which cannot be loaded "
                                 "(libmolt-no-such-lzma.so.5)"));
    assert_non_null(strstr(text, "(libarchive called lzma_"));
    free(text);
    fx_scratch_remove(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip_loads_nothing),
        cmocka_unit_test(test_xz_zstd_load_on_use),
        cmocka_unit_test(test_missing_library),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
