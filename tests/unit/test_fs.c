/* SPDX-License-Identifier: Apache-2.0 */
/* core/util/fs: molt_dir_names, the folder listing the module registry, the state scripts and
 * the inventory scripts share (sorted, filtered, bounded, with errors naming the folder), and
 * molt_rm_rf (util/rmtree.c) on trees deeper than PATH_MAX and than the descriptor limit, the
 * durable writes (util/durable.c) and the errno mapping (util/err.c) the core and the SDK share. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "util/fs.h"
#include "util/rmtree.h"

/* Every fsync of the program (molt-core is linked in statically), counted: the durable writes
 * must make theirs, molt_write_file_replace none. */
static unsigned long n_fsync;
int fsync(int fd)
{
    n_fsync++;
    return (int)syscall(SYS_fsync, fd);
}

static char dir[64];

static int setup(void **state)
{
    (void)state;
    fx_scratch(dir, sizeof dir, "fs-test");
    const char *files[] = {"b", "a", ".hidden", "c-sub", "a2"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        fx_write_in(dir, files[i], "x", 0644);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_scratch_remove(dir);
    return 0;
}

static bool not_hidden(void *ctx, int dir_fd, const char *name)
{
    (void)dir_fd;
    ++*(int *)ctx;
    return name[0] != '.';
}

/* Every name but . and .., sorted; the filter sees each entry and drops what it refuses. */
static void test_sorted_and_filtered(void **state)
{
    (void)state;
    char **names = NULL;
    size_t n = 0;
    molt_err err = {0};
    assert_int_equal(molt_dir_names(dir, "test folder", NULL, NULL, 100, &names, &n, &err), 0);
    assert_int_equal(n, 5);
    const char *all[] = {".hidden", "a", "a2", "b", "c-sub"};
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], all[i]);
    molt_names_free(names, n);

    int seen = 0;
    assert_int_equal(molt_dir_names(dir, "test folder", not_hidden, &seen, 100, &names, &n, &err),
                     0);
    assert_int_equal(seen, 5);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[3], "c-sub");
    molt_names_free(names, n);
}

/* A missing folder, a file, more names than allowed: each its code and the folder named. */
static void test_errors(void **state)
{
    (void)state;
    char **names = NULL;
    size_t n = 0;
    molt_err err = {0};
    char missing[128], file[128], want[256];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    snprintf(file, sizeof file, "%s/a", dir);
    assert_int_equal(molt_dir_names(missing, "test folder", NULL, NULL, 100, &names, &n, &err),
                     MOLT_ENOTFOUND);
    snprintf(want, sizeof want, "cannot read test folder %s", missing);
    assert_non_null(strstr(err.msg, want));
    assert_int_equal(molt_dir_names(file, "test folder", NULL, NULL, 100, &names, &n, &err),
                     MOLT_ENOTFOUND);
    assert_int_equal(molt_dir_names(dir, "test folder", NULL, NULL, 3, &names, &n, &err),
                     MOLT_ELIMIT);
    snprintf(want, sizeof want, "test folder %s: more than 3 entries", dir);
    assert_string_equal(err.msg, want);
    /* an empty folder: no names, nothing to free */
    char empty[128];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    assert_int_equal(molt_mkdir_p(empty, 0755, NULL), 0);
    names = (char **)&n;
    assert_int_equal(molt_dir_names(empty, "test folder", NULL, NULL, 3, &names, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(names);
}

/* molt_read_file: the whole file and its length, NUL-terminated, read to the size fstat gives
 * (without a read of 0 bytes after it); a file whose size says less than it holds (procfs says
 * 0) is read to its end all the same; a file of exactly max bytes is read, one byte over max
 * or not a regular file is refused. */
static void test_read_file(void **state)
{
    (void)state;
    char p[128], text[101];
    char *data = NULL;
    size_t len = 1;
    snprintf(p, sizeof p, "%s/empty-file", dir);
    fx_write_text(p, "", 0644);
    assert_int_equal(molt_read_file(p, 100, &data, &len, NULL), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);
    memset(text, 'x', 100);
    text[100] = '\0';
    snprintf(p, sizeof p, "%s/hundred", dir);
    fx_write_text(p, text, 0644);
    assert_int_equal(molt_read_file(p, 100, &data, &len, NULL), 0);
    assert_int_equal(len, 100);
    assert_string_equal(data, text);
    free(data);
    assert_int_equal(molt_read_file(p, 99, &data, &len, NULL), MOLT_ELIMIT);
    struct stat st;
    assert_int_equal(stat("/proc/self/status", &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(molt_read_file("/proc/self/status", 1 << 20, &data, &len, NULL), 0);
    assert_true(len > 100);
    assert_int_equal(strlen(data), len);
    assert_non_null(strstr(data, "\nPid:"));
    free(data);
    assert_int_equal(molt_read_file(dir, 100, &data, &len, NULL), MOLT_EFORMAT);
}

/* molt_mkdir_p: the missing folders of a path made below the deepest one there (trailing
 * slashes and all), an existing folder accepted as it is, and the errors name the path: a file
 * where a folder must be, a file in the middle of the path. */
static void test_mkdir_p(void **state)
{
    (void)state;
    molt_err err = {0};
    char deep[160], file[160], below_file[160];
    struct stat st;
    snprintf(deep, sizeof deep, "%s/m1/m2/m3/", dir);
    assert_int_equal(molt_mkdir_p(deep, 0700, &err), 0);
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(molt_mkdir_p(deep, 0755, &err), 0);   /* there: kept, mode unchanged */
    assert_int_equal(stat(deep, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(deep, sizeof deep, "%s/m1/m2/m4", dir);
    assert_int_equal(molt_mkdir_p(deep, 0755, &err), 0);
    assert_true(molt_path_exists(deep));
    snprintf(file, sizeof file, "%s/a", dir);
    assert_int_equal(molt_mkdir_p(file, 0755, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, "is not a folder"));
    snprintf(below_file, sizeof below_file, "%s/a/x/y", dir);
    assert_int_equal(molt_mkdir_p(below_file, 0755, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, "cannot create folder"));
    assert_non_null(strstr(err.msg, file));
}

/* A chain of depth folders named "d123456789" below top (mkdirat, so its paths exceed
 * PATH_MAX), with a file, a symlink and a sibling folder at every 100th level. */
static void make_deep(const char *top, int depth)
{
    int fd = open(top, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    for (int i = 0; i < depth; i++) {
        if (i % 100 == 0) {
            int f = openat(fd, "f", O_WRONLY | O_CREAT, 0644);
            assert_true(f >= 0);
            close(f);
            assert_int_equal(symlinkat("/", fd, "l"), 0);
            assert_int_equal(mkdirat(fd, "side", 0755), 0);
        }
        assert_int_equal(mkdirat(fd, "d123456789", 0755), 0);
        int next = openat(fd, "d123456789", O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        close(fd);
        fd = next;
    }
    close(fd);
}

/* 1500 levels (16.5 KB of path, more folders than the 256 descriptors allowed): removed whole;
 * the symlinks to / are unlinked, never followed. */
static void test_rm_rf_deep(void **state)
{
    (void)state;
    char top[128];
    molt_err err = {0};
    snprintf(top, sizeof top, "%s/deep", dir);
    assert_int_equal(mkdir(top, 0755), 0);
    make_deep(top, 1500);
    /* a device's usual limit, well below the depth */
    struct rlimit was, lim;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    lim = was;
    lim.rlim_cur = 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
    int r = molt_rm_rf(top, &err);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    if (r != 0)
        fail_msg("%s", err.msg);
    assert_false(molt_path_exists(top));
    assert_true(molt_path_exists("/"));
    /* a missing path, a file, a symlink, a trailing slash */
    assert_int_equal(molt_rm_rf(top, &err), 0);
    char file[128];
    snprintf(file, sizeof file, "%s/a", dir);
    assert_int_equal(molt_rm_rf(file, &err), 0);
    assert_false(molt_path_exists(file));
    assert_int_equal(mkdir(top, 0755), 0);
    char slash[140];
    snprintf(slash, sizeof slash, "%s/", top);
    assert_int_equal(molt_rm_rf(slash, &err), 0);
    assert_false(molt_path_exists(top));
}

/* Refusals: "/" itself; a path below a file (its folder cannot be opened), named in the error
 * with the reason. */
static void test_rm_rf_errors(void **state)
{
    (void)state;
    char below[160], want[400];
    molt_err err = {0};
    molt_rmtree_err e;
    assert_int_equal(molt_rmtree("/", &e), -1);
    assert_int_equal(e.errno_value, EINVAL);
    snprintf(below, sizeof below, "%s/a/x", dir);
    assert_int_equal(molt_rm_rf(below, &err), MOLT_EIO);
    snprintf(want, sizeof want, "cannot remove %s (remove %s): Not a directory", below, below);
    assert_string_equal(err.msg, want);
    assert_true(molt_path_exists(below) == false);
}

/* The atomic write (util/durable.c) gives the file exactly the mode asked, whatever the umask
 * (the old core write applied it: 0640 under umask 077 came out 0600); a replaced file takes
 * the new mode; nothing but the file is left in the folder. */
static void test_atomic_mode_ignores_umask(void **state)
{
    (void)state;
    char *p = molt_path_join(dir, "moded");
    struct stat st;
    mode_t old = umask(077);
    int r1 = molt_write_file_atomic(p, "one", 3, 0640, NULL);
    umask(0);
    int r2 = r1 ? r1 : stat(p, &st);
    mode_t first = st.st_mode & 07777;
    umask(022);
    int r3 = molt_write_file_atomic(p, "second", 6, 0666, NULL);
    umask(old);
    assert_int_equal(r1, 0);
    assert_int_equal(r2, 0);
    assert_int_equal(first, 0640);
    assert_int_equal(r3, 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0666);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(molt_read_file(p, 100, &data, &len, NULL), 0);
    assert_string_equal(data, "second");
    free(data);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(molt_dir_names(dir, "test folder", NULL, NULL, 100, &names, &n, NULL), 0);
    assert_int_equal(n, 6);   /* the five of setup and "moded": no temporary file */
    molt_names_free(names, n);
    free(p);
}

/* Streamed: the temporary is a new ".<name>.tmp-XXXXXXXX" beside the target, created
 * exclusively (two at once get two files), invisible as the target until commit; abort removes
 * it; a commit that cannot rename (the target is a non-empty folder) fails naming both and
 * removes it. A relative path works; a path naming a folder and a missing folder are refused. */
static void test_atomic_streamed(void **state)
{
    (void)state;
    char *p = molt_path_join(dir, "streamed"), *tmp1 = NULL, *tmp2 = NULL;
    int fd1, fd2;
    molt_err err = {0};
    assert_int_equal(molt_atomic_open(p, 0600, &fd1, &tmp1, &err), 0);
    assert_int_equal(molt_atomic_open(p, 0600, &fd2, &tmp2, &err), 0);
    assert_string_not_equal(tmp1, tmp2);
    char want[256];
    snprintf(want, sizeof want, "%s/.streamed.tmp-", dir);
    assert_int_equal(strncmp(tmp1, want, strlen(want)), 0);
    assert_int_equal(strlen(tmp1), strlen(want) + 8);
    assert_int_equal(write(fd1, "abc", 3), 3);
    assert_false(molt_path_exists(p));
    molt_atomic_abort(fd2, tmp2);
    assert_false(molt_path_exists(tmp2));
    assert_int_equal(molt_atomic_commit(fd1, tmp1, p, &err), 0);
    assert_false(molt_path_exists(tmp1));
    free(tmp1);
    free(tmp2);

    char *sub = molt_path_join(dir, "c-sub-folder"), *inner = molt_path_join(sub, "x");
    assert_int_equal(molt_mkdir_p(sub, 0755, NULL), 0);
    assert_int_equal(molt_write_file_atomic(inner, "x", 1, 0644, NULL), 0);
    assert_int_equal(molt_write_file_atomic(sub, "y", 1, 0644, &err), MOLT_EIO);
    assert_non_null(strstr(err.msg, "cannot rename "));
    assert_non_null(strstr(err.msg, sub));
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(molt_dir_names(dir, "test folder", NULL, NULL, 100, &names, &n, NULL), 0);
    assert_int_equal(n, 7);   /* setup's five, "streamed", "c-sub-folder": no temporary */
    molt_names_free(names, n);

    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(sub), 0);
    int r = molt_write_file_atomic("relative", "r", 1, 0644, NULL);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r, 0);
    free(inner);
    inner = molt_path_join(sub, "relative");
    assert_true(molt_path_exists(inner));

    char slash[300];
    snprintf(slash, sizeof slash, "%s/", sub);
    assert_int_equal(molt_write_file_atomic(slash, "z", 1, 0644, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "names a folder"));
    snprintf(slash, sizeof slash, "%s/none/f", dir);
    assert_int_equal(molt_write_file_atomic(slash, "z", 1, 0644, &err), MOLT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "cannot open the folder of "));
    assert_non_null(strstr(err.msg, "/none/f: No such file or directory"));
    free(inner);
    free(sub);
    free(p);
}

/* One errno mapping for the core and the SDK: a full disk and a full quota are MOLT_ESPACE
 * (the core mapped ENOSPC only), ENOMEM is MOLT_ENOMEM, anything else MOLT_EIO; molt_err_errno
 * refines MOLT_EIO with it and keeps any other code; molt_write_all says so for /dev/full. */
static void test_errno_mapping(void **state)
{
    (void)state;
    molt_err err = {0};
    assert_int_equal(molt_errno_code(ENOSPC), MOLT_ESPACE);
    assert_int_equal(molt_errno_code(EDQUOT), MOLT_ESPACE);
    assert_int_equal(molt_errno_code(ENOMEM), MOLT_ENOMEM);
    assert_int_equal(molt_errno_code(EACCES), MOLT_EIO);
    assert_int_equal(molt_err_errno(&err, MOLT_EIO, EDQUOT, "writing %s", "x"), MOLT_ESPACE);
    assert_int_equal(err.code, MOLT_ESPACE);
    char want[128];
    snprintf(want, sizeof want, "writing x: %s", strerror(EDQUOT));
    assert_string_equal(err.msg, want);
    assert_int_equal(molt_err_errno(&err, MOLT_ENOTFOUND, EDQUOT, "kept"), MOLT_ENOTFOUND);
    assert_int_equal(molt_err_errno(NULL, MOLT_EIO, ENOSPC, "no message"), MOLT_ESPACE);

    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(molt_write_all(fd, "abc", 3, &err, "the test file"), MOLT_ESPACE);
    close(fd);
    assert_string_equal(err.msg, "cannot write the test file: No space left on device");
}

/* molt_write_file_replace: the same atomic replacement (exact mode, no temporary left, the new
 * content in place of the old) without a single fsync; molt_write_file_atomic makes two (the
 * file, then its folder). */
static void test_replace_without_fsync(void **state)
{
    (void)state;
    char *p = molt_path_join(dir, "token");
    unsigned long before = n_fsync;
    assert_int_equal(molt_write_file_atomic(p, "old\n", 4, 0600, NULL), 0);
    assert_int_equal(n_fsync - before, 2);
    before = n_fsync;
    mode_t old = umask(077);
    int r = molt_write_file_replace(p, "new-token\n", 10, 0640, NULL);
    umask(old);
    assert_int_equal(r, 0);
    assert_int_equal(n_fsync - before, 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(molt_read_file(p, 100, &data, &len, NULL), 0);
    assert_string_equal(data, "new-token\n");
    free(data);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(molt_dir_names(dir, "test folder", NULL, NULL, 100, &names, &n, NULL), 0);
    assert_int_equal(n, 6);   /* the five of setup and "token": no temporary file */
    molt_names_free(names, n);
    free(p);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sorted_and_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rm_rf_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rm_rf_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_mode_ignores_umask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_streamed, setup, teardown),
        cmocka_unit_test(test_errno_mapping),
        cmocka_unit_test_setup_teardown(test_replace_without_fsync, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
