/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent store: round trip, every torn or altered file refused, and a writer killed at
 * chosen points never leaves anything but the old or the new document. */
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
#include <sys/wait.h>

#include "state/store.h"
#include "util/encoding.h"
#include "util/fs.h"

typedef struct fixture {
    char dir[64];
    char path[96];
} fixture;

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "store-test");
    fx_path(f->path, sizeof f->path, "%s/store", f->dir);
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

static json_t *sample_doc(void)
{
    json_t *doc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:i, s:[s,s]}", "artifact-name", "release-1",
                            "state", "ArtifactInstall", "artifact-provides",
                            "rootfs-image.version", "1.0", "data-partition.checksum", "abc",
                            "loops", 3, "list", "a", "b\xc3\xa9\n\"");
    assert_non_null(doc);
    return doc;
}

/* Save the sample document and return the file's bytes. */
static char *saved_sample(const char *path, size_t *len)
{
    json_t *doc = sample_doc();
    assert_int_equal(molt_store_save(path, doc, NULL), 0);
    json_decref(doc);
    return read_raw(path, len);
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

static void test_round_trip(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    json_t *doc = sample_doc();
    assert_int_equal(molt_store_save(f->path, doc, &err), 0);
    json_t *back = NULL;
    assert_int_equal(molt_store_load(f->path, &back, &err), 0);
    assert_true(json_equal(doc, back));
    json_decref(back);

    /* The header is what store.c documents: magic, version, sha256 of the rest, its length. */
    size_t len;
    char *raw = read_raw(f->path, &len);
    assert_memory_equal(raw, "molt-store 1 ", 13);
    size_t hlen = strcspn(raw, "\n");
    assert_true(hlen < len);
    size_t data_len = len - hlen - 1;
    unsigned char sum[32];
    char hex[65];
    molt_sha256(raw + hlen + 1, data_len, sum);
    molt_hex_encode(sum, 32, hex);
    char header[128];
    snprintf(header, sizeof header, "molt-store 1 %s %zu", hex, data_len);
    assert_memory_equal(raw, header, strlen(header));
    assert_int_equal(raw[len - 1], '\n');
    free(raw);

    /* Saving again replaces; permissions are private. */
    json_object_set_new(doc, "state", json_string("ArtifactCommit"));
    assert_int_equal(molt_store_save(f->path, doc, &err), 0);
    assert_int_equal(molt_store_load(f->path, &back, &err), 0);
    assert_string_equal(json_string_value(json_object_get(back, "state")), "ArtifactCommit");
    json_decref(back);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_decref(doc);
}

static void test_save_refuses_non_object(void **state)
{
    fixture *f = *state;
    molt_err err = {0};
    json_t *arr = json_array();
    assert_int_equal(molt_store_save(f->path, arr, &err), MOLT_EINVAL);
    assert_false(molt_path_exists(f->path));
    json_decref(arr);
}

static void expect_corrupt(const char *path, const char *what)
{
    json_t *doc = NULL;
    molt_err err = {0};
    int r = molt_store_load(path, &doc, &err);
    if (r != MOLT_ECORRUPT)
        fail_msg("%s: expected MOLT_ECORRUPT, got %d (%s)", what, r, err.msg);
    assert_null(doc);
    assert_non_null(strstr(err.msg, path));
}

static void test_truncated_at_every_offset(void **state)
{
    fixture *f = *state;
    size_t len;
    char *raw = saved_sample(f->path, &len);
    for (size_t cut = 0; cut < len; cut++) {
        write_raw(f->path, raw, cut);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cut, len);
        expect_corrupt(f->path, what);
    }
    /* Trailing garbage after the document is refused too. */
    char *longer = malloc(len + 2);
    memcpy(longer, raw, len);
    memcpy(longer + len, "{}", 2);
    write_raw(f->path, longer, len + 2);
    expect_corrupt(f->path, "trailing data");
    free(longer);
    free(raw);
}

static void test_flipped_bytes(void **state)
{
    fixture *f = *state;
    size_t len;
    char *raw = saved_sample(f->path, &len);
    /* Every byte position, one bit each: header fields and data alike. */
    for (size_t i = 0; i < len; i++) {
        raw[i] ^= (char)(1u << (i % 8));
        write_raw(f->path, raw, len);
        char what[64];
        snprintf(what, sizeof what, "bit %zu of byte %zu flipped", i % 8, i);
        expect_corrupt(f->path, what);
        raw[i] ^= (char)(1u << (i % 8));
    }
    free(raw);
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
    const char *data = "[1,2]\n";
    unsigned char sum[32];
    char hex[65], file[256];
    molt_sha256(data, strlen(data), sum);
    molt_hex_encode(sum, 32, hex);
    snprintf(file, sizeof file, "molt-store 1 %s %zu\n%s", hex, strlen(data), data);
    write_raw(f->path, file, strlen(file));
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a JSON object"));

    /* Valid checksum over bad JSON, and over duplicate keys. */
    const char *bad[] = {"{\"a\":\n", "{\"a\":1,\"a\":2}\n"};
    for (size_t i = 0; i < 2; i++) {
        molt_sha256(bad[i], strlen(bad[i]), sum);
        molt_hex_encode(sum, 32, hex);
        snprintf(file, sizeof file, "molt-store 1 %s %zu\n%s", hex, strlen(bad[i]), bad[i]);
        write_raw(f->path, file, strlen(file));
        assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
        assert_non_null(strstr(err.msg, "not JSON"));
    }

    /* Plain JSON (no header) is not trusted either. */
    write_raw(f->path, "{}\n", 3);
    assert_int_equal(molt_store_load(f->path, &doc, &err), MOLT_ECORRUPT);
    assert_non_null(strstr(err.msg, "molt-store"));

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
        if (!doc || molt_store_save(w->path, doc, NULL) != 0)
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
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_writer, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
