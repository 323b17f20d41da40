/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration: defaults, every key, relative paths, every kind of mistake reported with
 * file and line, the documented example, and the device_type file. */
#include "fixture.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "util/fs.h"

typedef struct fixture {
    char dir[64];
    char path[96];
} fixture;

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "config-test");
    fx_path(f->path, sizeof f->path, "%s/molt.yaml", f->dir);
    return 0;
}

static int teardown(void **state)
{
    return fx_fixture_free(state);
}

static void write_text(const char *path, const char *text)
{
    fx_write_text(path, text, 0644);
}

#define UNDER_DATA_DIR "<data_dir>/"

/* The key table's default of name as c would hold it: "<data_dir>/x" under c's data_dir. */
static void default_of(const molt_config *c, const char *def, char *buf, size_t size)
{
    if (strncmp(def, UNDER_DATA_DIR, strlen(UNDER_DATA_DIR)) == 0)
        snprintf(buf, size, "%s/%s", c->data_dir, def + strlen(UNDER_DATA_DIR));
    else
        snprintf(buf, size, "%s", def);
}

/* Every key of c holds its default from the key table (core/config/config.c), the one place
 * where the defaults are written. */
static void assert_defaults(const molt_config *c)
{
    const char *name, *def;
    size_t n = 0;
    for (size_t i = 0; molt_config_key(i, &name, &def); i++) {
        if (!def)
            continue;   /* a mapping of keys */
        char *got = NULL, want[PATH_MAX];
        assert_int_equal(molt_config_value(c, name, &got), 0);
        default_of(c, def, want, sizeof want);
        if (strcmp(got, want) != 0)
            fail_msg("%s is %s, its default is %s", name, got, want);
        free(got);
        n++;
    }
    assert_true(n >= 30);   /* the table, not an empty loop */
    assert_string_equal(c->data_dir, "/var/lib/molt");   /* what the derived ones follow */
}

/* The key table's defaults reach the typed fields (molt_config_value reads the fields back). */
static void test_defaults_typed(void **state)
{
    fixture *f = *state;
    write_text(f->path, "");
    molt_config *c = NULL;
    molt_err err = {0};
    assert_int_equal(molt_config_load(&c, f->path, &err), 0);
    assert_defaults(c);
    assert_null(c->ca_file);
    assert_null(c->server_url);
    assert_int_equal(c->downgrade_refuse, 0);
    assert_int_equal(c->n_verify_keys, 0);
    assert_int_equal(c->n_modules, 0);
    assert_string_equal(c->device_type_file, "/var/lib/molt/device_type");
    assert_string_equal(c->device_key, "/var/lib/molt/device-key.pem");
    char *v = NULL;
    assert_int_equal(molt_config_value(c, "http", &v), MOLT_ENOTFOUND);
    assert_int_equal(molt_config_value(c, "no_such_key", &v), MOLT_ENOTFOUND);
    molt_config_free(c);
}

static void test_empty_file_gives_defaults(void **state)
{
    fixture *f = *state;
    const char *texts[] = {"", "# only a comment\n", "---\n", "~\n"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        write_text(f->path, texts[i]);
        molt_config *c = NULL;
        molt_err err = {0};
        if (molt_config_load(&c, f->path, &err) != 0)
            fail_msg("\"%s\": %s", texts[i], err.msg);
        assert_string_equal(c->path, f->path);
        assert_defaults(c);
        molt_config_free(c);
    }
}

static void test_missing_default_file(void **state)
{
    (void)state;
    if (molt_path_exists(MOLT_DEFAULT_CONFIG))
        skip();   /* a configured machine: its file is not ours to judge */
    molt_config *c = NULL;
    molt_err err = {0};
    assert_int_equal(molt_config_load(&c, NULL, &err), 0);
    assert_null(c->path);
    assert_defaults(c);
    molt_config_free(c);
}

static void test_missing_named_file(void **state)
{
    fixture *f = *state;
    molt_config *c = NULL;
    molt_err err = {0};
    assert_int_equal(molt_config_load(&c, f->path, &err), MOLT_ECONFIG);
    assert_null(c);
    assert_non_null(strstr(err.msg, f->path));
}

/* A source file's text, NUL-terminated; the caller frees it. */
static char *read_source(const char *rel)
{
    const char *src = getenv("MOLT_SRC_DIR");
    assert_non_null(src);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", src, rel);
    char *buf = NULL;
    size_t len = 0;
    molt_err err = {0};
    if (molt_read_file(path, 1024 * 1024, &buf, &len, &err) != 0)
        fail_msg("%s", err.msg);
    char *text = realloc(buf, len + 1);
    assert_non_null(text);
    text[len] = '\0';
    return text;
}

/* The full name a line of examples/molt.yaml sets ("  ca_file: null" under "http:" is
 * "http.ca_file"), with *ret_commented when the line is "# key: value", or NULL for any other
 * line. section is the last top-level key seen, updated here. */
static const char *example_key(const char *line, char *section, size_t section_size,
                               bool *ret_commented, const char **ret_value)
{
    static char full[256];
    size_t indent = strspn(line, " ");
    const char *p = line + indent;
    bool commented = false;
    if (p[0] == '#' && p[1] == ' ') {
        commented = true;
        p += 2;
    }
    size_t word = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
    if (word == 0 || p[word] != ':' || (p[word + 1] != ' ' && p[word + 1] != '\0'))
        return NULL;
    if (indent == 0 && !commented) {
        snprintf(section, section_size, "%.*s", (int)word, p);
        snprintf(full, sizeof full, "%.*s", (int)word, p);
    } else if (indent == 0) {
        snprintf(full, sizeof full, "%.*s", (int)word, p);
    } else {
        snprintf(full, sizeof full, "%s.%.*s", section, (int)word, p);
    }
    *ret_commented = commented;
    *ret_value = p[word + 1] ? p + word + 2 : "";
    return full;
}

/* examples/molt.yaml states every key of the table: loaded, it holds every default (but
 * downgrade.policy, which it turns on), and each key has its own line, "key: <default>", or for a
 * default under data_dir the comment "# key: <the default under /var/lib/molt>". */
static void test_example_is_the_defaults(void **state)
{
    fixture *f = *state;
    const char *src = getenv("MOLT_SRC_DIR");
    assert_non_null(src);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/examples/molt.yaml", src);
    molt_config *c = NULL, *d = NULL;
    molt_err err = {0};
    if (molt_config_load(&c, path, &err) != 0)
        fail_msg("examples/molt.yaml: %s", err.msg);
    write_text(f->path, "");
    assert_int_equal(molt_config_load(&d, f->path, &err), 0);
    /* The one setting the example turns on: the downgrade policy (key and scheme default). */
    assert_int_equal(c->downgrade_refuse, 1);
    c->downgrade_refuse = 0;
    assert_defaults(c);

    char *text = read_source("examples/molt.yaml");
    const char *name, *def;
    for (size_t i = 0; molt_config_key(i, &name, &def); i++) {
        char section[128] = "";
        int active = 0, commented = 0;
        char *save = NULL, *copy = strdup(text);
        assert_non_null(copy);
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            bool is_comment;
            const char *value;
            const char *key = example_key(line, section, sizeof section, &is_comment, &value);
            if (!key || strcmp(key, name) != 0)
                continue;
            if (!is_comment) {
                active++;
                continue;
            }
            char want[PATH_MAX];
            default_of(d, def ? def : "", want, sizeof want);
            if (strcmp(value, want) == 0)
                commented++;
        }
        free(copy);
        bool derived = def && strncmp(def, UNDER_DATA_DIR, strlen(UNDER_DATA_DIR)) == 0;
        const char *leaf = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
        if (derived && !(active == 0 && commented == 1))
            fail_msg("examples/molt.yaml: %s follows data_dir: want one line \"# %s: <its "
                     "default>\" and no setting, found %d and %d", name, leaf, commented, active);
        if (!derived && active != 1)
            fail_msg("examples/molt.yaml: %s is set on %d lines, want 1", name, active);
    }
    free(text);
    molt_config_free(c);
    molt_config_free(d);
}

/* The keys table of docs/configuration.md: one row per key of the table, in one piece, each
 * with its default ("`<default>`"; empty for a mapping of keys). */
static void test_docs_table(void **state)
{
    (void)state;
    char *text = read_source("docs/configuration.md");
    const char *head = strstr(text, "\n## Keys\n");
    assert_non_null(head);
    head = strstr(head, "\n| key | type | default | meaning |\n| --- |");
    assert_non_null(head);
    head = strchr(head + 1, '\n') + 1;   /* the separator row */
    head = strchr(head, '\n') + 1;
    size_t rows = 0;
    char names[64][128], defaults[64][512], section[128] = "";
    /* The table ends at the first line that is not a row: a blank line cuts it. */
    for (const char *line = head; *line == '|' && rows < 64; line = strchr(line, '\n') + 1) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        char row[1024];
        snprintf(row, sizeof row, "%.*s", (int)(end - line), line);
        /* | `name` | type | default | meaning | */
        char *cell[4] = {0}, *save = NULL;
        char *p = strtok_r(row, "|", &save);
        for (int k = 0; k < 4 && p; k++, p = strtok_r(NULL, "|", &save))
            cell[k] = p;
        if (!cell[2])
            fail_msg("docs/configuration.md: not a row of four cells: %.*s", (int)(end - line),
                     line);
        char *key = cell[0] + strspn(cell[0], " ");
        if (key[0] != '`')
            fail_msg("docs/configuration.md: a key cell without `name`: %s", cell[0]);
        key++;
        bool nested = strncmp(key, "  ", 2) == 0;
        key += strspn(key, " ");
        size_t len = strcspn(key, ":`");
        /* A cell longer than its buffer is a row this reader would truncate: named, not cut. */
        int w = nested ? snprintf(names[rows], sizeof names[rows], "%s.%.*s", section,
                                  (int)len, key)
                       : snprintf(names[rows], sizeof names[rows], "%.*s", (int)len, key);
        if (w < 0 || (size_t)w >= sizeof names[rows])
            fail_msg("docs/configuration.md: key name longer than %zu bytes: %.*s",
                     sizeof names[rows] - 1, (int)len, key);
        if (!nested && key[len] == ':' &&
            (size_t)snprintf(section, sizeof section, "%.*s", (int)len, key) >= sizeof section)
            fail_msg("docs/configuration.md: section name longer than %zu bytes: %.*s",
                     sizeof section - 1, (int)len, key);
        char *dflt = cell[2] + strspn(cell[2], " ");
        size_t dl = strlen(dflt);
        while (dl > 0 && dflt[dl - 1] == ' ')
            dl--;
        if ((size_t)snprintf(defaults[rows], sizeof defaults[rows], "%.*s", (int)dl, dflt) >=
            sizeof defaults[rows])
            fail_msg("docs/configuration.md: the default of %s is longer than %zu bytes",
                     names[rows], sizeof defaults[rows] - 1);
        rows++;
    }
    const char *name, *def;
    size_t n = 0;
    for (size_t i = 0; molt_config_key(i, &name, &def); i++, n++) {
        size_t found = rows;
        for (size_t r = 0; r < rows; r++) {
            if (strcmp(names[r], name) != 0)
                continue;
            if (found != rows)
                fail_msg("docs/configuration.md: %s has two rows", name);
            found = r;
        }
        if (found == rows)
            fail_msg("docs/configuration.md: no row for %s in the keys table", name);
        char want[600];
        if (def)
            snprintf(want, sizeof want, "`%s`", def);
        else
            want[0] = '\0';
        if (strcmp(defaults[found], want) != 0)
            fail_msg("docs/configuration.md: %s: default %s, the key table says %s", name,
                     defaults[found], def ? want : "(a mapping: none)");
    }
    if (rows != n)
        fail_msg("docs/configuration.md: %zu rows for %zu keys", rows, n);
    free(text);
}

static void test_every_key(void **state)
{
    fixture *f = *state;
    write_text(f->path,
               "data_dir: data\n"
               "device_type_file: /etc/dt\n"
               "module_dirs: [mods, /opt/mods]\n"
               "native_module_dir: ./native\n"
               "artifact_verify_keys:\n"
               "  - keys/a.pem\n"
               "  - '/k/b.pem'\n"
               "scripts_dir: \"scripts\"\n"
               "module_timeout: 10\n"
               "state_script_timeout: 11\n"
               "state_script_retry_interval: +12\n"   /* a sign, leading zeros: as strtoll */
               "state_script_retry_timeout: -0\n"
               "max_state_loops: 0014\n"
               "keep_deployment_logs: 1\n"
               "log_level: debug\n"
               "http:\n"
               "  ca_file: ca.pem\n"
               "  retry_download_count: 0\n"
               "  retry_max_interval: 17\n"
               "  connect_timeout: 18\n"
               "  low_speed_time: 19\n");
    molt_config *c = NULL;
    molt_err err = {0};
    if (molt_config_load(&c, f->path, &err) != 0)
        fail_msg("%s", err.msg);
    char want[256];
#define ASSERT_IN_DIR(value, rel)                                   \
    do {                                                           \
        snprintf(want, sizeof want, "%s/%s", f->dir, rel);         \
        assert_string_equal(value, want);                          \
    } while (0)
    ASSERT_IN_DIR(c->data_dir, "data");
    assert_string_equal(c->device_type_file, "/etc/dt");
    assert_int_equal(c->n_module_dirs, 2);
    ASSERT_IN_DIR(c->module_dirs[0], "mods");
    assert_string_equal(c->module_dirs[1], "/opt/mods");
    ASSERT_IN_DIR(c->native_module_dir, "./native");
    assert_int_equal(c->n_verify_keys, 2);
    ASSERT_IN_DIR(c->verify_keys[0], "keys/a.pem");
    assert_string_equal(c->verify_keys[1], "/k/b.pem");
    ASSERT_IN_DIR(c->scripts_dir, "scripts");
    assert_int_equal(c->module_timeout, 10);
    assert_int_equal(c->script_timeout, 11);
    assert_int_equal(c->script_retry_interval, 12);
    assert_int_equal(c->script_retry_timeout, 0);
    assert_int_equal(c->max_state_loops, 14);
    assert_int_equal(c->keep_logs, 1);
    assert_string_equal(c->log_level, "debug");
    ASSERT_IN_DIR(c->ca_file, "ca.pem");
    assert_int_equal(c->retry_download_count, 0);
    assert_int_equal(c->retry_max_interval, 17);
    assert_int_equal(c->connect_timeout, 18);
    assert_int_equal(c->low_speed_time, 19);
#undef ASSERT_IN_DIR
    molt_config_free(c);
}

static void test_downgrade(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text;
        int refuse;
        const char *key;
        molt_version_scheme scheme;
    } ok[] = {
        {"downgrade:\n  policy: refuse\n", 1, "rootfs-image.version", MOLT_VERSION_SEMVER},
        {"downgrade: {policy: refuse, key: app.version, scheme: debian}\n", 1, "app.version",
         MOLT_VERSION_DEBIAN},
        {"downgrade:\n  policy: allow\n  key: artifact_name\n  scheme: integer\n", 0,
         "artifact_name", MOLT_VERSION_INTEGER},
        {"downgrade:\n", 0, "rootfs-image.version", MOLT_VERSION_SEMVER},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        write_text(f->path, ok[i].text);
        molt_config *c = NULL;
        molt_err err = {0};
        if (molt_config_load(&c, f->path, &err) != 0)
            fail_msg("%s: %s", ok[i].text, err.msg);
        assert_int_equal(c->downgrade_refuse, ok[i].refuse);
        assert_string_equal(c->downgrade_key, ok[i].key);
        assert_int_equal(c->downgrade_scheme, ok[i].scheme);
        molt_config_free(c);
    }
    /* refuse without a key to read the version from */
    write_text(f->path, "downgrade:\n  policy: refuse\n  key: ~\n");
    molt_config *c = NULL;
    molt_err err = {0};
    assert_int_equal(molt_config_load(&c, f->path, &err), MOLT_ECONFIG);
    assert_null(c);
    assert_non_null(strstr(err.msg, "downgrade.policy is refuse but downgrade.key names no "
                                     "provide"));
}

static void test_device_type_file_follows_data_dir(void **state)
{
    fixture *f = *state;
    write_text(f->path, "data_dir: /srv/device\nmodule_dirs: []\nhttp:\n");
    molt_config *c = NULL;
    molt_err err = {0};
    assert_int_equal(molt_config_load(&c, f->path, &err), 0);
    assert_string_equal(c->device_type_file, "/srv/device/device_type");
    assert_int_equal(c->n_module_dirs, 0);
    assert_int_equal(c->connect_timeout, 30);
    molt_config_free(c);
}

/* A relative config path: relative values are still made absolute. */
static void test_relative_config_path(void **state)
{
    fixture *f = *state;
    write_text(f->path, "data_dir: d\n");
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/tmp"), 0);
    molt_config *c = NULL;
    molt_err err = {0};
    int r = molt_config_load(&c, f->path + strlen("/tmp/"), &err);
    assert_int_equal(chdir(cwd), 0);
    if (r != 0)
        fail_msg("%s", err.msg);
    char want[256];
    snprintf(want, sizeof want, "%s/d", f->dir);
    assert_string_equal(c->data_dir, want);
    molt_config_free(c);
}

/* modules: per-module settings, flattened for a module's config_get. */
static void test_module_settings(void **state)
{
    fixture *f = *state;
    write_text(f->path,
               "modules:\n"
               "  rootfs-image:\n"
               "    partition_a: /dev/mmcblk0p2\n"
               "    deadline: 30\n"
               "    empty: ''\n"
               "    unset: ~\n"
               "    health_commands:\n"
               "      - /bin/true\n"
               "      - test -e /etc/ok\n"
               "    none: []\n"
               "  other:\n");
    molt_config *c = NULL;
    molt_err err = {0};
    if (molt_config_load(&c, f->path, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(c->n_modules, 2);
    assert_string_equal(molt_config_module_get(c, "rootfs-image", "partition_a"),
                        "/dev/mmcblk0p2");   /* as written, not resolved */
    assert_string_equal(molt_config_module_get(c, "rootfs-image", "deadline"), "30");
    assert_string_equal(molt_config_module_get(c, "rootfs-image", "empty"), "");
    assert_null(molt_config_module_get(c, "rootfs-image", "unset"));
    assert_string_equal(molt_config_module_get(c, "rootfs-image", "health_commands"),
                        "/bin/true\ntest -e /etc/ok");
    assert_string_equal(molt_config_module_get(c, "rootfs-image", "health_commands.0"),
                        "/bin/true");
    assert_string_equal(molt_config_module_get(c, "rootfs-image", "health_commands.1"),
                        "test -e /etc/ok");
    assert_null(molt_config_module_get(c, "rootfs-image", "health_commands.2"));
    assert_string_equal(molt_config_module_get(c, "rootfs-image", "none"), "");
    assert_null(molt_config_module_get(c, "rootfs-image", "nothing"));
    assert_null(molt_config_module_get(c, "other", "partition_a"));
    assert_null(molt_config_module_get(c, "file", "partition_a"));
    molt_config_free(c);
}

typedef struct bad_case {
    const char *text;
    int line;
    const char *what;   /* a part of the message */
} bad_case;

static void test_mistakes(void **state)
{
    fixture *f = *state;
    static const bad_case cases[] = {
        {"data_dir: /x\ndata_dri: /y\n", 2, "unknown key \"data_dri\" (did you mean \"data_dir\"?)"},
        {"http:\n  ca_file: x\n  timeout: 3\n", 3, "unknown key \"http.timeout\""},
        {"http:\n  conect_timeout: 3\n", 2, "unknown key \"http.conect_timeout\" (did you mean "
                                            "\"http.connect_timeout\"?)"},
        {"server_url: https://x\n", 1, "unknown key \"server_url\""},
        {"http.ca_file: x\n", 1, "unknown key \"http.ca_file\""},
        {"server:\n  device_key_type: ~\n", 2, "server.device_key_type: expected a string, got "
                                               "nothing (null)"},
        {"module_timeout: 5\nmodule_timeout: 6\n", 2, "duplicate key \"module_timeout\" (first "
                                                       "set on line 1)"},
        {"http:\n  connect_timeout: 1\n  connect_timeout: 2\n", 3, "duplicate key"},
        {"\n\nmodule_timeout: \"10\"\n", 3, "expected an integer, got the string \"10\""},
        {"module_timeout: ten\n", 1, "expected an integer, got \"ten\""},
        {"module_timeout: 0x10\n", 1, "expected an integer"},
        {"module_timeout: 1.5\n", 1, "expected an integer"},
        {"module_timeout: -5\n", 1, "must be between 1 and 2592000, got -5"},
        {"keep_deployment_logs: 0\n", 1, "must be between 1 and 1000, got 0"},
        {"module_timeout: 99999999999999999\n", 1, "expected an integer"},
        {"module_timeout: [1]\n", 1, "expected an integer, got a list"},
        {"max_state_loops:\n", 1, "expected an integer"},
        {"data_dir: [a, b]\n", 1, "data_dir: expected a path (a string), got a list"},
        {"data_dir: {a: b}\n", 1, "got a mapping"},
        {"data_dir:\n", 1, "data_dir: expected a path, got nothing"},
        {"module_dirs: /usr/share\n", 1, "module_dirs: expected a list of paths, got a scalar"},
        {"module_dirs:\n  - a\n  - [b]\n", 3, "module_dirs[1]: expected a path"},
        {"log_level: verbose\n", 1, "expected one of error, warning, info, debug, got \"verbose\""},
        {"http: 5\n", 1, "http: expected a mapping"},
        {"- a\n- b\n", 1, "expected a mapping of keys to values at the top, got a list"},
        {"just text\n", 1, "got a scalar"},
        {"data_dir: /a\n  bad: indent\n", 2, "YAML syntax error"},
        {"a: [1, 2\n", 2, "YAML syntax error"},
        {"data_dir: \"unterminated\n", 2, "YAML syntax error"},
        {"data_dir: *nothing\n", 1, "YAML syntax error"},
        {"data_dir: /a\n---\ndata_dir: /b\n", 2, "a second YAML document"},
        {"data_dir: /a\n\xff\n", 2, "not valid YAML text"},
        {"[1, 2]: x\n", 1, "a key must be a plain word"},
        {"modules: [a]\n", 1, "modules: expected a mapping of module names to settings, got a "
                              "list"},
        {"modules:\n  a: 5\n", 2, "modules.a: expected a mapping of settings, got a scalar"},
        {"modules:\n  a:\n    k: {x: 1}\n", 3, "modules.a.k: expected a scalar or a list of "
                                                 "scalars, got a mapping"},
        {"modules:\n  a:\n    k: [x, [y]]\n", 3, "modules.a.k[1]: expected a scalar, got a list"},
        {"modules:\n  a:\n    k: [x, ~]\n", 3, "modules.a.k[1]: expected a scalar, got nothing"},
        {"modules:\n  a:\n    k: 1\n    k: 2\n", 4, "duplicate key \"modules.a.k\""},
        {"modules:\n  a:\n    k: [1]\n    k.0: 2\n", 4, "duplicate key \"modules.a.k.0\""},
        {"modules:\n  a: {}\n  a: {}\n", 3, "duplicate key \"modules.a\""},
        {"modules:\n  a/b: {}\n", 2, "a module name must be 1 to 128 characters"},
        {"modules:\n  a:\n    'x y': 1\n", 3, "a setting name must be 1 to 128 characters"},
        {"downgrade:\n  policy: never\n", 2, "downgrade.policy: expected refuse or allow, got "
                                             "\"never\""},
        {"downgrade:\n  scheme: [semver]\n", 2, "downgrade.scheme: expected integer, semver or "
                                                "debian, got a list"},
        {"downgrade:\n  schema: semver\n", 2, "unknown key \"downgrade.schema\" (did you mean "
                                             "\"downgrade.scheme\"?)"},
        {"downgrade: refuse\n", 1, "downgrade: expected a mapping"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(f->path, cases[i].text);
        molt_config *c = NULL;
        molt_err err = {0};
        int r = molt_config_load(&c, f->path, &err);
        if (r != MOLT_ECONFIG)
            fail_msg("case %zu (%s): expected MOLT_ECONFIG, got %d (%s)", i, cases[i].text, r,
                     err.msg);
        assert_null(c);
        char prefix[160];
        snprintf(prefix, sizeof prefix, "%s:%d: ", f->path, cases[i].line);
        if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || !strstr(err.msg, cases[i].what))
            fail_msg("case %zu: expected \"%s...%s\", got \"%s\"", i, prefix, cases[i].what,
                     err.msg);
    }
}

static void test_device_type(void **state)
{
    fixture *f = *state;
    char dt[128], data_dir_line[160];
    snprintf(dt, sizeof dt, "%s/device_type", f->dir);
    snprintf(data_dir_line, sizeof data_dir_line, "data_dir: %s\n", f->dir);
    write_text(f->path, data_dir_line);
    molt_config *c = NULL;
    molt_err err = {0};
    assert_int_equal(molt_config_load(&c, f->path, &err), 0);
    assert_string_equal(c->device_type_file, dt);

    char *value = NULL;
    assert_int_equal(molt_config_device_type(c, &value, &err), MOLT_ENOTFOUND);
    assert_null(value);

    const char *good[][2] = {{"device_type=raspberrypi4\n", "raspberrypi4"},
                             {"device_type=qemux86-64", "qemux86-64"},
                             {"device_type=a b=c\n", "a b=c"}};
    for (size_t i = 0; i < 3; i++) {
        write_text(dt, good[i][0]);
        if (molt_config_device_type(c, &value, &err) != 0)
            fail_msg("\"%s\": %s", good[i][0], err.msg);
        assert_string_equal(value, good[i][1]);
        free(value);
        value = NULL;
    }
    const char *bad[] = {"", "device_type=\n", "device_type=x\n\n", "device_type=x\nfoo=y\n",
                         "devicetype=x\n", " device_type=x\n", "device_type=x\r\n",
                         "DEVICE_TYPE=x\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(dt, bad[i]);
        int r = molt_config_device_type(c, &value, &err);
        if (r != MOLT_EFORMAT)
            fail_msg("\"%s\": expected MOLT_EFORMAT, got %d", bad[i], r);
        assert_null(value);
        assert_non_null(strstr(err.msg, dt));
    }
    molt_config_free(c);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_file_gives_defaults, setup, teardown),
        cmocka_unit_test(test_missing_default_file),
        cmocka_unit_test_setup_teardown(test_missing_named_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_typed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_is_the_defaults, setup, teardown),
        cmocka_unit_test(test_docs_table),
        cmocka_unit_test_setup_teardown(test_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_type_file_follows_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_config_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mistakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_type, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
