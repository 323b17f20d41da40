/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the file module's path rules and tar checks (file_paths.c, file_tree.c) against a
 * fake host table: allowed roots from config_get and from the environment, destination
 * normalization and confinement (symlinks, ".."), the folders made and unmade, sibling names,
 * free-space refusals, and tar extraction from the payload stream with its refusals. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <archive_entry.h>

#include "../file_tar.h"
#include "fake_host.h"

/* ---- fixtures ------------------------------------------------------------------------------- */

typedef struct fx {
    char dir[PATH_MAX];        /* scratch, resolved */
    char root[PATH_MAX + 8];   /* dir/root: the allowed root */
    fm m;
} fx;

static int setup(void **st)
{
    fx *f = calloc(1, sizeof *f);
    char tmpl[] = "/tmp/molt-file-unit.XXXXXX";
    assert_non_null(f);
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, f->dir));
    snprintf(f->root, sizeof f->root, "%s/root", f->dir);
    assert_int_equal(mkdir(f->root, 0755), 0);
    f->m.h = &fake_host;
    fake_roots = fake_roots0 = NULL;
    unsetenv("MOLT_FILE_ALLOWED_ROOTS");
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    fx *f = *st;
    for (size_t i = 0; i < f->m.n_roots; i++)
        free(f->m.roots[i]);
    free(f->m.roots);
    fm_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

#define P_MAX (PATH_MAX + 64)

static void path(char *out, const fx *f, const char *rel)
{
    snprintf(out, P_MAX, "%s/%s", f->dir, rel);
}

static void use_root(fx *f)
{
    setenv("MOLT_FILE_ALLOWED_ROOTS", f->root, 1);
    assert_int_equal(fm_load_roots(&f->m, NULL), 0);
}

/* ---- allowed roots ------------------------------------------------------------------------- */

static void test_roots_none(void **st)
{
    fx *f = *st;
    struct molt_sdk_error err = {0};
    assert_int_equal(fm_load_roots(&f->m, &err), MOLT_EINVAL);
    assert_non_null(
        strstr(err.msg, "no allowed roots (MOLT_FILE_ALLOWED_ROOTS is empty or unset)"));
}

static void test_roots_env(void **st)
{
    fx *f = *st;
    char list[P_MAX * 2 + 16], missing[P_MAX];
    path(missing, f, "missing");
    snprintf(list, sizeof list, "%s:%s", missing, f->root);
    setenv("MOLT_FILE_ALLOWED_ROOTS", list, 1);
    assert_int_equal(fm_load_roots(&f->m, NULL), 0);
    assert_int_equal(f->m.n_roots, 1);   /* the missing one is skipped */
    assert_string_equal(f->m.roots[0], f->root);
}

static void test_roots_config_list_wins(void **st)
{
    fx *f = *st;
    char colon[P_MAX];
    /* a list item may hold ':' (split on newlines only); the environment is not read */
    path(colon, f, "a:b");
    assert_int_equal(mkdir(colon, 0755), 0);
    char list[P_MAX * 2 + 2];
    snprintf(list, sizeof list, "%s\n%s", colon, f->root);
    fake_roots = list;
    fake_roots0 = colon;
    setenv("MOLT_FILE_ALLOWED_ROOTS", "/", 1);
    assert_int_equal(fm_load_roots(&f->m, NULL), 0);
    assert_int_equal(f->m.n_roots, 2);
    assert_string_equal(f->m.roots[0], colon);
    assert_string_equal(f->m.roots[1], f->root);
}

static void test_roots_config_empty_refuses(void **st)
{
    fx *f = *st;
    struct molt_sdk_error err = {0};
    fake_roots = "";
    setenv("MOLT_FILE_ALLOWED_ROOTS", f->root, 1);
    assert_int_equal(fm_load_roots(&f->m, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "modules: file: allowed_roots is empty or unset"));
}

static void test_roots_relative_refused(void **st)
{
    fx *f = *st;
    struct molt_sdk_error err = {0};
    setenv("MOLT_FILE_ALLOWED_ROOTS", "etc/app", 1);
    assert_int_equal(fm_load_roots(&f->m, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "'etc/app' is not an absolute path"));
}

/* ---- destinations --------------------------------------------------------------------------- */

static void test_dest_normalized_and_made(void **st)
{
    fx *f = *st;
    char raw[PATH_MAX * 2], want[PATH_MAX * 2], made_want[PATH_MAX * 2], *dest = NULL, *made = NULL;
    use_root(f);
    snprintf(raw, sizeof raw, "%s//./a/b/./file.txt", f->root);
    assert_int_equal(fm_resolve_dest(&f->m, raw, &dest, &made, NULL), 0);
    snprintf(want, sizeof want, "%s/a/b/file.txt", f->root);
    snprintf(made_want, sizeof made_want, "%s/a", f->root);
    assert_string_equal(dest, want);
    assert_string_equal(made, made_want);
    struct stat sb;
    assert_int_equal(stat(made_want, &sb), 0);
    /* the folders made go again, up to made, when empty */
    fm_unmake_dirs(dest, made);
    assert_int_equal(stat(made_want, &sb), -1);
    assert_int_equal(stat(f->root, &sb), 0);
    free(dest);
    free(made);
}

static void test_dest_refusals(void **st)
{
    fx *f = *st;
    char raw[P_MAX * 2], out[P_MAX], link[P_MAX * 2], *dest = NULL, *made = NULL;
    struct molt_sdk_error err = {0};
    use_root(f);
    path(out, f, "outside");
    assert_int_equal(mkdir(out, 0755), 0);
    struct {
        int below_root;   /* rel is appended to the root */
        const char *rel, *msg;
    } cases[] = {
        {0, "relative/x", "is not an absolute path"},
        {1, "/a/../../outside/x", "'..' component"},
        {0, "/", "is the root folder"},
        {1, "", "outside the allowed roots"},           /* the root itself: its parent is outside */
        {1, "/escape/x", "outside the allowed roots"},  /* a symlink out of the root */
        {1, "/escape/new/x", "outside the allowed roots"},
        {1, "/file/x", "is not a folder"},
    };
    snprintf(link, sizeof link, "%s/escape", f->root);
    assert_int_equal(symlink(out, link), 0);
    snprintf(raw, sizeof raw, "%s/file", f->root);
    FILE *fp = fopen(raw, "w");
    assert_non_null(fp);
    fclose(fp);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(raw, sizeof raw, "%s%s", cases[i].below_root ? f->root : "", cases[i].rel);
        memset(&err, 0, sizeof err);
        assert_int_equal(fm_resolve_dest(&f->m, raw, &dest, &made, &err), MOLT_EINVAL);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("%s: '%s' does not say '%s'", raw, err.msg, cases[i].msg);
    }
    /* nothing was created outside, not even below the symlink */
    char probe[P_MAX * 2];
    snprintf(probe, sizeof probe, "%s/new", out);
    assert_int_equal(access(probe, F_OK), -1);
}

static void test_sibling_names(void **st)
{
    (void)st;
    char *s = fm_sibling("/opt/app/app.bin", "new");
    assert_string_equal(s, "/opt/app/.app.bin.molt-new");
    free(s);
    s = fm_sibling("/etc", "old");
    assert_string_equal(s, "/.etc.molt-old");
    free(s);
}

static void test_space_refusal(void **st)
{
    fx *f = *st;
    struct molt_sdk_error err = {0};
    uint64_t avail;
    assert_int_equal(fm_free_bytes(f->dir, &avail, NULL), 0);
    assert_int_equal(fm_check_space(f->dir, avail / 2, "x", NULL), 0);
    assert_int_equal(fm_check_space(f->dir, avail + (1ull << 40), "big.bin", &err), MOLT_ESPACE);
    char want[128];
    snprintf(want, sizeof want, "%llu bytes needed", (unsigned long long)(avail + (1ull << 40)));
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "big.bin"));
}

/* ---- tars ------------------------------------------------------------------------------------ */

typedef struct member {
    const char *name;
    mode_t type;       /* AE_IF* */
    const char *data;  /* regular file content */
    const char *link;  /* symlink or hard link target */
} member;

static unsigned char tarbuf[1 << 16];
static size_t tar_len;

/* A tar of members in tarbuf, served by the fake read_block. */
static void make_tar(const member *ms, size_t n)
{
    struct archive *a = archive_write_new();
    size_t used = 0;
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    assert_int_equal(archive_write_open_memory(a, tarbuf, sizeof tarbuf, &used), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ms[i].name);
        archive_entry_set_perm(e, ms[i].type == AE_IFDIR ? 0755 : 0644);
        if (ms[i].type == AE_IFREG && ms[i].link) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, ms[i].link);
        } else {
            archive_entry_set_filetype(e, ms[i].type);
            if (ms[i].link)
                archive_entry_set_symlink(e, ms[i].link);
            if (ms[i].data)
                archive_entry_set_size(e, (la_int64_t)strlen(ms[i].data));
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (ms[i].data && !(ms[i].type == AE_IFREG && ms[i].link))
            archive_write_data(a, ms[i].data, strlen(ms[i].data));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    fake_payload(tarbuf, used, 0);
    tar_len = used;
}

/* Extract the payload tar into dir/tree (created); the result and err. */
static int extract(fx *f, uint64_t avail, struct molt_sdk_error *err, char *tree)
{
    path(tree, f, "tree");
    fm_rm_rf(tree, NULL);
    assert_int_equal(mkdir(tree, 0755), 0);
    int status = 0;
    struct archive *a = fm_archive_from_payload(&f->m, &status);
    assert_non_null(a);
    FILE *fix = tmpfile();
    assert_non_null(fix);
    int r = fm_extract_tar(&f->m, a, tree, avail, fileno(fix), err);
    archive_read_free(a);
    if (r == 0 && status == 0)
        r = fm_apply_fixups(fileno(fix), tree, err);
    fclose(fix);
    return status < 0 ? status : r;
}

static void test_tar_good(void **st)
{
    fx *f = *st;
    char tree[P_MAX], p[P_MAX * 2], target[64];
    const member ms[] = {
        {"./", AE_IFDIR, NULL, NULL},
        {"./bin/", AE_IFDIR, NULL, NULL},
        {"./bin/tool", AE_IFREG, "tool\n", NULL},
        {"./etc/conf", AE_IFREG, "a=1\n", NULL},
        {"./etc/tool", AE_IFLNK, NULL, "../bin/tool"},
        {"./etc/hard", AE_IFREG, NULL, "./etc/conf"},
    };
    make_tar(ms, sizeof ms / sizeof ms[0]);
    assert_int_equal(extract(f, 1 << 20, NULL, tree), 0);
    snprintf(p, sizeof p, "%s/etc/tool", tree);
    ssize_t n = readlink(p, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "../bin/tool");
    struct stat a, b;
    snprintf(p, sizeof p, "%s/etc/hard", tree);
    assert_int_equal(stat(p, &a), 0);
    snprintf(p, sizeof p, "%s/etc/conf", tree);
    assert_int_equal(stat(p, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
}

static void test_tar_refusals(void **st)
{
    fx *f = *st;
    char tree[P_MAX];
    struct {
        member m[2];
        const char *msg;
    } cases[] = {
        {{{"/etc/evil", AE_IFREG, "x", NULL}}, "absolute or with '..'"},
        {{{"a/../../evil", AE_IFREG, "x", NULL}}, "absolute or with '..'"},
        {{{"l", AE_IFLNK, NULL, "/etc/passwd"}}, "points outside the tree"},
        {{{"d/l", AE_IFLNK, NULL, "../../x"}}, "points outside the tree"},
        {{{"s", AE_IFLNK, NULL, "."}, {"a", AE_IFLNK, NULL, "s/../x"}},
         "resolves outside the tree"},
        {{{"h", AE_IFREG, NULL, "../x"}}, "hard link"},
        {{{"null", AE_IFCHR, NULL, NULL}}, "is a character device"},
        {{{"disk", AE_IFBLK, NULL, NULL}}, "is a block device"},
        {{{"fifo", AE_IFIFO, NULL, NULL}}, "is a fifo"},
        {{{".", AE_IFREG, "x", NULL}}, "names the tree's root but is not a folder"},
        {{{"big", AE_IFREG, "0123456789", NULL}}, "not enough space"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct molt_sdk_error err = {0};
        make_tar(cases[i].m, cases[i].m[1].name ? 2 : 1);
        assert_true(extract(f, 5, &err, tree) < 0);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu (%s): '%s' does not say '%s'", i, cases[i].m[0].name, err.msg,
                     cases[i].msg);
    }
}

/* Entries that would write through a symlink leaving the tree (each link on its own looks
 * inside): refused, and nothing appears outside. */
static void test_tar_through_links(void **st)
{
    fx *f = *st;
    char tree[P_MAX], outside[P_MAX * 2];
    struct stat sb;
    const member via_file[] = {
        {"s", AE_IFLNK, NULL, "."},
        {"a", AE_IFLNK, NULL, "s/.."},
        {"a/evil", AE_IFREG, "evil\n", NULL},
    };
    const member via_hardlink[] = {
        {"s", AE_IFLNK, NULL, "."},
        {"a", AE_IFLNK, NULL, "s/.."},
        {"h", AE_IFREG, NULL, "a/secret"},
    };
    path(outside, f, "secret");
    FILE *fp = fopen(outside, "w");
    assert_non_null(fp);
    fputs("secret\n", fp);
    fclose(fp);
    make_tar(via_file, 3);
    assert_true(extract(f, 1 << 20, NULL, tree) < 0);
    path(outside, f, "evil");
    assert_int_equal(lstat(outside, &sb), -1);
    make_tar(via_hardlink, 3);
    assert_true(extract(f, 1 << 20, NULL, tree) < 0);
    path(outside, f, "secret");
    assert_int_equal(stat(outside, &sb), 0);
    assert_int_equal(sb.st_nlink, 1);   /* no link to it was left in the tree */
}

static void test_tar_read_error(void **st)
{
    fx *f = *st;
    char tree[P_MAX];
    const member ms[] = {{"a", AE_IFREG, "a\n", NULL}};
    make_tar(ms, 1);
    /* cut inside the tar, then the host reports a checksum mismatch */
    assert_true(tar_len > 700);
    fake_payload(tarbuf, 700, MOLT_ECHECKSUM);
    assert_int_equal(extract(f, 1 << 20, NULL, tree), MOLT_ECHECKSUM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roots_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roots_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roots_config_list_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roots_config_empty_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roots_relative_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dest_normalized_and_made, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dest_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sibling_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_space_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_through_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_read_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
