/* SPDX-License-Identifier: Apache-2.0 */
/* The native module registry's cache (core/host/registry_cache.h) through molt_registry_load,
 * against real module files built from tests/modules/native and the real docker module: a
 * cached scan gives exactly the rows of an uncached one (claims, the type claimed twice, the
 * refusals); an unchanged file is not loaded again (an edited cache entry is believed, and the
 * docker module's libcurl is never mapped); a file changed in place, replaced, or removed, a
 * cache of another molt, a malformed or unwritable cache: the files are loaded again. The
 * rows of a scan with the cache are always compared with those of a scan without it. */
#include "fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <jansson.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "host/registry.h"
#include "util/fs.h"

#define BUF 1024

typedef struct fixture {
    char dir[PATH_MAX];  /* realpath: PATH_MAX bytes */
    char mods[BUF];      /* <build>/tests/modules/native */
    char native[BUF];    /* the native module dir under test (copies) */
    char data[BUF];
    char cache[BUF];     /* <data>/native/registry.cache */
    molt_config cfg;     /* with the cache */
    molt_config nocache; /* the same without a data dir: never cached */
} fixture;

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "regcache-test");
    const char *build = fx_build_dir();
    snprintf(f->mods, sizeof f->mods, "%s/tests/modules/native", build);
    snprintf(f->native, sizeof f->native, "%s/native", f->dir);
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    snprintf(f->cache, sizeof f->cache, "%s/native/registry.cache", f->data);
    assert_int_equal(molt_mkdir_p(f->native, 0755, NULL), 0);
    assert_int_equal(molt_mkdir_p(f->data, 0755, NULL), 0);
    char cmd[4 * BUF];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cp native_copy.so probe_dup.so probe_major2.so probe_ok.so '%s/'",
             f->mods, f->native);
    fx_sh("%s", cmd);
    f->cfg = (molt_config){.native_module_dir = f->native, .data_dir = f->data};
    f->nocache = (molt_config){.native_module_dir = f->native};
    return 0;
}

static int teardown(void **state)
{
    return fx_fixture_free(state);
}

/* Every row of the registry of cfg as text. */
static char *rows(const molt_config *cfg)
{
    molt_registry *reg = NULL;
    molt_err err = {0};
    if (molt_registry_load(&reg, cfg, &err) != 0)
        fail_msg("%s", err.msg);
    size_t cap = 64 * BUF, len = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = 0; i < reg->n_items; i++) {
        const molt_registry_item *it = &reg->items[i];
        len += (size_t)snprintf(out + len, cap - len, "%d|%s|%s|%s|%s|%u|%d|%s\n", it->kind,
                                it->type ? it->type : "-", it->path, it->name ? it->name : "-",
                                it->version ? it->version : "-", it->capabilities, it->isolated,
                                it->refused ? it->refused : "-");
        assert_true(len < cap);
    }
    molt_registry_free(reg);
    return out;
}

/* The rows with and without the cache are the same; returns them. */
static char *rows_agree(const fixture *f)
{
    char *cached = rows(&f->cfg);
    char *fresh = rows(&f->nocache);
    assert_string_equal(cached, fresh);
    free(fresh);
    return cached;
}

/* Set "version" of the cache entry of module file name. */
static void edit_cached_version(const fixture *f, const char *name, const char *version)
{
    json_error_t jerr;
    json_t *root = json_load_file(f->cache, 0, &jerr);
    assert_non_null(root);
    char path[2 * BUF];
    snprintf(path, sizeof path, "%s/%s", f->native, name);
    json_t *mods = json_object_get(root, "modules"), *m;
    size_t i;
    bool found = false;
    json_array_foreach(mods, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "path")), path) == 0) {
            json_object_set_new(m, "version", json_string(version));
            found = true;
        }
    }
    assert_true(found);
    assert_int_equal(json_dump_file(root, f->cache, 0), 0);
    json_decref(root);
}

static size_t cached_count(const fixture *f)
{
    json_t *root = json_load_file(f->cache, 0, NULL);
    assert_non_null(root);
    size_t n = json_array_size(json_object_get(root, "modules"));
    json_decref(root);
    return n;
}

static void test_cached_rows_are_exact(void **state)
{
    fixture *f = *state;
    char *first = rows_agree(f);
    /* native_copy claims native-copy; probe_dup's claim of it refuses that file; probe_major2
     * is refused by its ABI; probe_ok claims probe */
    assert_non_null(strstr(first, "|native-copy|"));
    assert_non_null(strstr(first, "probe_dup.so: payload type native-copy is already claimed"));
    assert_non_null(strstr(first, "probe_major2.so: ABI 2.0 is not supported"));
    assert_non_null(strstr(first, "|probe|"));
    struct stat st;
    assert_int_equal(stat(f->cache, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* the accepted descriptors (probe_dup's too: its refusal is decided at each scan) */
    assert_int_equal(cached_count(f), 3);
    char *second = rows_agree(f);
    assert_string_equal(first, second);
    free(first);
    free(second);
}

static void test_unchanged_file_not_loaded(void **state)
{
    fixture *f = *state;
    free(rows(&f->cfg));
    edit_cached_version(f, "probe_ok.so", "7.7.7-from-cache");
    char *r = rows(&f->cfg);
    assert_non_null(strstr(r, "|probe|"));
    assert_non_null(strstr(r, "|7.7.7-from-cache|"));
    free(r);
}

static void test_changed_files_loaded_again(void **state)
{
    fixture *f = *state;
    char cmd[4 * BUF], *r;
    free(rows(&f->cfg));

    /* changed in place (same inode, same size: the mtime/ctime differ) */
    edit_cached_version(f, "probe_ok.so", "7.7.7-from-cache");
    snprintf(cmd, sizeof cmd, "touch -d '2001-01-01' '%s/probe_ok.so'", f->native);
    fx_sh("%s", cmd);
    r = rows_agree(f);
    assert_null(strstr(r, "7.7.7-from-cache"));
    free(r);

    /* replaced by another module (probe_reboot: capabilities streaming|reboot) */
    snprintf(cmd, sizeof cmd, "cp '%s/probe_reboot.so' '%s/probe_ok.so.new' && "
             "mv '%s/probe_ok.so.new' '%s/probe_ok.so'", f->mods, f->native, f->native, f->native);
    fx_sh("%s", cmd);
    r = rows_agree(f);
    assert_non_null(strstr(r, "|probe|"));
    assert_non_null(strstr(r, "|5|"));   /* MOLT_CAP_STREAMING | MOLT_CAP_REBOOT */
    free(r);

    /* removed: gone from the rows and from the cache */
    snprintf(cmd, sizeof cmd, "rm '%s/probe_ok.so'", f->native);
    fx_sh("%s", cmd);
    r = rows_agree(f);
    assert_null(strstr(r, "|probe|"));
    free(r);
    assert_int_equal(cached_count(f), 2);

    /* the refusal of the second claimant goes when the first claimant goes */
    snprintf(cmd, sizeof cmd, "rm '%s/native_copy.so'", f->native);
    fx_sh("%s", cmd);
    r = rows_agree(f);
    assert_non_null(strstr(r, "|native-copy|"));
    assert_non_null(strstr(r, "|dup|"));
    free(r);
}

static void test_bad_caches_ignored(void **state)
{
    fixture *f = *state;
    char *want = rows(&f->nocache), *r;

    /* a cache of another molt */
    free(rows(&f->cfg));
    edit_cached_version(f, "probe_ok.so", "7.7.7-from-cache");
    json_t *root = json_load_file(f->cache, 0, NULL);
    assert_non_null(root);
    json_object_set_new(root, "host", json_string("molt 0.0.1 abi 1.0"));
    assert_int_equal(json_dump_file(root, f->cache, 0), 0);
    json_decref(root);
    r = rows(&f->cfg);
    assert_string_equal(r, want);
    free(r);

    /* malformed, then an entry of the wrong shape: rewritten */
    const char *bad[] = {"{\"host\": ", "[1, 2]",
                         "{\"host\": \"x\", \"modules\": [{\"path\": 3}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(molt_write_file_atomic(f->cache, bad[i], strlen(bad[i]), 0600, NULL), 0);
        r = rows(&f->cfg);
        assert_string_equal(r, want);
        free(r);
        assert_int_equal(cached_count(f), 3);
    }

    /* the cache cannot be written (its folder is a file): same rows, no error */
    char cmd[4 * BUF];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/native' && touch '%s/native'", f->data, f->data);
    fx_sh("%s", cmd);
    r = rows(&f->cfg);
    assert_string_equal(r, want);
    free(r);
    free(want);
}

/* True if a mapping of this process names libcurl. */
static bool libcurl_mapped(void)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    char line[4096];
    bool found = false;
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp))
        if (strstr(line, "/libcurl"))
            found = true;
    fclose(fp);
    return found;
}

/* The docker module links libcurl: once its claims are cached, a scan in a fresh process (fork)
 * neither opens docker.so (inotify sees no IN_OPEN of the file, which dlopen would cause) nor
 * maps libcurl; the first scan (nothing cached) opens it. */
static void test_docker_module_not_loaded(void **state)
{
    fixture *f = *state;
    char cmd[4 * BUF], so[2 * BUF];
    const char *build = getenv("MOLT_BUILD_DIR");
    snprintf(cmd, sizeof cmd, "cp '%s/modules/native/docker.so' '%s/'", build, f->native);
    fx_sh("%s", cmd);
    snprintf(so, sizeof so, "%s/docker.so", f->native);
    for (int round = 0; round < 2; round++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int in = inotify_init1(IN_NONBLOCK);
            if (in < 0 || inotify_add_watch(in, so, IN_OPEN) < 0 || libcurl_mapped())
                _exit(10);
            molt_registry *reg = NULL;
            if (molt_registry_load(&reg, &f->cfg, NULL) != 0 ||
                !molt_registry_lookup(reg, "docker"))
                _exit(11);
            molt_registry_free(reg);
            char ev[4096];
            bool opened = read(in, ev, sizeof ev) > 0;
            if (opened != (round == 0))
                _exit(12 + round);
            _exit(round == 1 && libcurl_mapped() ? 14 : 0);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cached_rows_are_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_file_not_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_files_loaded_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_caches_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docker_module_not_loaded, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
