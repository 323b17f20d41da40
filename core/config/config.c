/* SPDX-License-Identifier: Apache-2.0 */
/* molt.yaml: defaults, then the file's keys on top, checked strictly (libyaml document API).
 * Every mistake is refused as "<file>:<line>: <what>" so a device never runs on a guess. */
#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "util/fs.h"
#include "util/strict.h"
#include "util/log.h"

/* A configuration file is a page of text; nothing legitimate comes near this. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* Most entries in one list (module_dirs, artifact_verify_keys). */
#define CONFIG_LIST_MAX 64
#define DEVICE_TYPE_FILE_MAX 4096
/* Modules under `modules:`, and flattened settings of one module (a list counts once per item,
 * plus once for the joined key). */
#define CONFIG_MODULES_MAX 64
#define MODULE_SETTINGS_MAX 512
/* A module name or a setting key: this many characters of [A-Za-z0-9._+-]. */
#define MODULE_WORD_MAX 128

enum key_kind {
    KEY_PATH,       /* string, relative paths resolved against the config file's folder */
    KEY_PATH_NULL,  /* the same, or null (~, null, empty) for "not set" */
    KEY_PATH_LIST,  /* list of paths */
    KEY_INT,        /* integer in [min, max] */
    KEY_LOG_LEVEL,  /* error|warning|info|debug */
    KEY_SECTION,    /* a mapping of the keys named "<name>.<key>" (http, server, downgrade) */
    KEY_STRING,     /* a string kept as written */
    KEY_STRING_NULL,/* the same, or null for "not set" */
    KEY_PATH_OR_URI,/* a path, or a "pkcs11:" URI kept as written */
    KEY_MODULES,    /* modules: <name>: <key>: scalar or list (molt_module_config) */
    KEY_POLICY,     /* refuse|allow, stored as an int 1|0 */
    KEY_SCHEME,     /* integer|semver|debian (molt_version_scheme) */
};

typedef struct key_spec {
    const char *name;     /* the full name: "data_dir", "http", "http.ca_file" */
    enum key_kind kind;
    const char *def;      /* the default, as molt.yaml writes it (YAML flow style); a path that
                             follows data_dir is "<data_dir>/<file>"; NULL for a KEY_SECTION */
    size_t offset;        /* of the field in molt_config */
    size_t count_offset;  /* KEY_PATH_LIST: of the size_t count */
    long min, max;        /* KEY_INT */
} key_spec;

#define FIELD(f) offsetof(molt_config, f)
#define DAY 86400L
/* A default derived from data_dir. */
#define UNDER_DATA_DIR "<data_dir>/"

/* Every key of molt.yaml and its default, stated here only: the loader starts from these
 * defaults, docs/configuration.md's table and examples/molt.yaml are checked against them
 * (tests/unit/test_config.c), and a section's keys follow the section. In the order of the
 * documentation. */
static const key_spec config_keys[] = {
    {"data_dir", KEY_PATH, "/var/lib/molt", FIELD(data_dir), 0, 0, 0},
    {"device_type_file", KEY_PATH, UNDER_DATA_DIR "device_type", FIELD(device_type_file), 0, 0, 0},
    {"module_dirs", KEY_PATH_LIST, "[/usr/share/molt/modules/v3, /usr/share/mender/modules/v3]",
     FIELD(module_dirs), FIELD(n_module_dirs), 0, 0},
    {"native_module_dir", KEY_PATH, "/usr/lib/molt/modules", FIELD(native_module_dir), 0, 0, 0},
    {"native_isolated_modules", KEY_PATH_LIST, "[]", FIELD(native_isolated_modules),
     FIELD(n_native_isolated_modules), 0, 0},
    {"artifact_verify_keys", KEY_PATH_LIST, "[]", FIELD(verify_keys), FIELD(n_verify_keys), 0, 0},
    {"scripts_dir", KEY_PATH, "/etc/molt/scripts", FIELD(scripts_dir), 0, 0, 0},
    {"module_timeout", KEY_INT, "14400", FIELD(module_timeout), 0, 1, 30 * DAY},
    {"state_script_timeout", KEY_INT, "3600", FIELD(script_timeout), 0, 1, 30 * DAY},
    {"state_script_retry_interval", KEY_INT, "60", FIELD(script_retry_interval), 0, 1, DAY},
    {"state_script_retry_timeout", KEY_INT, "1800", FIELD(script_retry_timeout), 0, 0, 30 * DAY},
    {"max_state_loops", KEY_INT, "28", FIELD(max_state_loops), 0, 1, 10000},
    {"keep_deployment_logs", KEY_INT, "5", FIELD(keep_logs), 0, 1, 1000},
    {"log_level", KEY_LOG_LEVEL, "info", FIELD(log_level), 0, 0, 0},
    {"http", KEY_SECTION, NULL, 0, 0, 0, 0},
    {"http.ca_file", KEY_PATH_NULL, "null", FIELD(ca_file), 0, 0, 0},
    {"http.retry_download_count", KEY_INT, "10", FIELD(retry_download_count), 0, 0, 1000},
    {"http.retry_max_interval", KEY_INT, "300", FIELD(retry_max_interval), 0, 1, DAY},
    {"http.connect_timeout", KEY_INT, "30", FIELD(connect_timeout), 0, 1, 3600},
    {"http.low_speed_time", KEY_INT, "60", FIELD(low_speed_time), 0, 1, 3600},
    {"server", KEY_SECTION, NULL, 0, 0, 0, 0},
    {"server.url", KEY_STRING_NULL, "null", FIELD(server_url), 0, 0, 0},
    {"server.tenant_token", KEY_STRING_NULL, "null", FIELD(tenant_token), 0, 0, 0},
    {"server.update_poll_interval", KEY_INT, "1800", FIELD(update_poll_interval), 0, 1, 30 * DAY},
    {"server.inventory_poll_interval", KEY_INT, "28800", FIELD(inventory_poll_interval), 0, 1,
     30 * DAY},
    {"server.retry_poll_interval", KEY_INT, "300", FIELD(retry_poll_interval), 0, 1, DAY},
    {"server.device_key", KEY_PATH_OR_URI, UNDER_DATA_DIR "device-key.pem", FIELD(device_key), 0,
     0, 0},
    {"server.device_key_type", KEY_STRING, "ed25519", FIELD(device_key_type), 0, 0, 0},
    {"server.pkcs11_module", KEY_PATH_NULL, "null", FIELD(pkcs11_module), 0, 0, 0},
    {"server.identity_scripts", KEY_PATH_LIST,
     "[/usr/share/molt/identity/molt-device-identity, "
     "/usr/share/mender/identity/mender-device-identity]",
     FIELD(identity_scripts), FIELD(n_identity_scripts), 0, 0},
    {"server.inventory_dirs", KEY_PATH_LIST,
     "[/usr/share/mender/inventory, /usr/share/molt/inventory]", FIELD(inventory_dirs),
     FIELD(n_inventory_dirs), 0, 0},
    {"server.client_cert", KEY_PATH_NULL, "null", FIELD(client_cert), 0, 0, 0},
    {"server.client_key", KEY_PATH_NULL, "null", FIELD(client_key), 0, 0, 0},
    {"server.proxy", KEY_STRING_NULL, "null", FIELD(proxy), 0, 0, 0},
    {"server.control_socket", KEY_PATH, "/run/molt/molt.sock", FIELD(control_socket), 0, 0, 0},
    {"server.reboot_command", KEY_STRING_NULL, "reboot", FIELD(reboot_command), 0, 0, 0},
    {"modules", KEY_MODULES, "{}", 0, 0, 0, 0},
    {"downgrade", KEY_SECTION, NULL, 0, 0, 0, 0},
    {"downgrade.policy", KEY_POLICY, "allow", FIELD(downgrade_refuse), 0, 0, 0},
    {"downgrade.key", KEY_STRING_NULL, "rootfs-image.version", FIELD(downgrade_key), 0, 0, 0},
    {"downgrade.scheme", KEY_SCHEME, "semver", FIELD(downgrade_scheme), 0, 0, 0},
};
#define N_KEYS (sizeof config_keys / sizeof config_keys[0])

static const char *const scheme_names[] = {"integer", "semver", "debian"};
static const char *const policy_names[] = {"allow", "refuse"};

const char *molt_config_scheme_name(molt_version_scheme scheme)
{
    return (size_t)scheme < sizeof scheme_names / sizeof scheme_names[0] ? scheme_names[scheme]
                                                                          : "?";
}

bool molt_config_key(size_t i, const char **ret_name, const char **ret_def)
{
    if (i >= N_KEYS)
        return false;
    *ret_name = config_keys[i].name;
    *ret_def = config_keys[i].def;
    return true;
}

/* Whether spec belongs to the mapping whose keys are named prefix<key> ("" = the top level). */
static bool in_mapping(const key_spec *spec, const char *prefix)
{
    size_t pl = strlen(prefix);
    return strncmp(spec->name, prefix, pl) == 0 && !strchr(spec->name + pl, '.');
}

/* What a parse needs to report errors and resolve paths. */
typedef struct loader {
    const char *file;     /* as given, for messages */
    char *dir;            /* absolute folder of the file, for relative paths */
    yaml_document_t *doc;
    molt_config *cfg;
    molt_err *err;
} loader;

static int at(const loader *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<file>:<line>: <what>" with the node's 1-based line. */
static int at(const loader *ld, const yaml_node_t *node, const char *fmt, ...)
{
    char what[MOLT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return molt_err_set(ld->err, MOLT_ECONFIG, "%s:%zu: %s", ld->file,
                        node->start_mark.line + 1, what);
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void free_modules(molt_module_config *mods, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(mods[i].name);
        free_list(mods[i].keys, mods[i].n);
        free_list(mods[i].values, mods[i].n);
    }
    free(mods);
}

/* Whether a key of this kind is held in a char * field. */
static bool is_text(enum key_kind kind)
{
    return kind == KEY_PATH || kind == KEY_PATH_NULL || kind == KEY_STRING ||
           kind == KEY_STRING_NULL || kind == KEY_PATH_OR_URI || kind == KEY_LOG_LEVEL;
}

void molt_config_free(molt_config *cfg)
{
    if (!cfg)
        return;
    char *base = (char *)cfg;
    for (size_t i = 0; i < N_KEYS; i++) {
        if (is_text(config_keys[i].kind))
            free(*(char **)(base + config_keys[i].offset));
        else if (config_keys[i].kind == KEY_PATH_LIST)
            free_list(*(char ***)(base + config_keys[i].offset),
                      *(size_t *)(base + config_keys[i].count_offset));
    }
    free_modules(cfg->modules, cfg->n_modules);
    free(cfg->path);
    free(cfg);
}

static int set_value(loader *ld, const key_spec *spec, const char *key, yaml_node_t *value);

/* Items of a list default ("[a, b]"); the table's longest has 2. */
#define DEFAULT_ITEMS_MAX 8

/* A character that makes YAML read flow text as more than plain scalars (quotes, comments,
 * anchors, tags, block scalars, directives, reserved, flow collections). */
static bool flow_special(char c)
{
    switch (c) {
    case '"': case '\'': case '#': case '&': case '*': case '!': case '|': case '>': case '%':
    case '@': case '`': case '[': case ']': case '{': case '}': case ',':
        return true;
    default:
        return false;
    }
}

static int bad_default(loader *ld, const key_spec *spec)
{
    return molt_err_set(ld->err, MOLT_EINVAL, "the built-in default of %s is not flow text "
                        "this loader reads (plain scalars, [a, b] or {}): %s", spec->name,
                        spec->def);
}

/* One default of the key table given to set_value as the node libyaml makes of its text (flow
 * style, as molt.yaml writes it: "[a, b]" a list of plain scalars, "{}" an empty mapping, else
 * a plain scalar), so a default is checked as strictly as a value in a file. The text is not run
 * through libyaml's parser: a parser and a document of the ~40 defaults cost more than the
 * rest of a configuration's load (docs/performance.md). That each default reads back as written
 * is tested (test_config's assert_defaults; examples/molt.yaml, read by the parser, holds the
 * same values). The scan is written out (no strpbrk, strstr, strtoll): a libc function the start
 * of a command calls first costs it the page fault of its code. */
static int set_default(loader *ld, const key_spec *spec)
{
    yaml_node_t node = {.type = YAML_SCALAR_NODE};
    yaml_node_t items[DEFAULT_ITEMS_MAX];
    yaml_node_item_t ids[DEFAULT_ITEMS_MAX];
    yaml_document_t doc = {
        .nodes = {.start = items, .end = items + DEFAULT_ITEMS_MAX, .top = items}};
    char text[512];
    size_t len = strlen(spec->def);
    if (len == 0 || len >= sizeof text)
        return bad_default(ld, spec);
    memcpy(text, spec->def, len + 1);
    if (strcmp(text, "{}") == 0) {
        node.type = YAML_MAPPING_NODE;
    } else if (text[0] == '[' && text[len - 1] == ']') {
        node.type = YAML_SEQUENCE_NODE;
        node.data.sequence.items.start = node.data.sequence.items.top = ids;
        text[len - 1] = '\0';
        for (char *item = text + 1, *end; *item; item = end) {
            for (end = item; *end && *end != ','; end++)
                if (flow_special(*end))
                    return bad_default(ld, spec);
            size_t n = (size_t)(doc.nodes.top - items);
            if (end == item || n == DEFAULT_ITEMS_MAX || (*end == ',' && end[1] != ' '))
                return bad_default(ld, spec);
            items[n] = (yaml_node_t){.type = YAML_SCALAR_NODE};
            items[n].data.scalar.value = (yaml_char_t *)item;
            items[n].data.scalar.length = (size_t)(end - item);
            items[n].data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
            ids[n] = (yaml_node_item_t)(n + 1);
            doc.nodes.top++;
            node.data.sequence.items.top++;
            if (*end) {
                *end = '\0';
                end += 2;   /* past ", " */
            }
        }
    } else {
        for (const char *p = text; *p; p++)
            if (flow_special(*p))
                return bad_default(ld, spec);
        node.data.scalar.value = (yaml_char_t *)text;
        node.data.scalar.length = len;
        node.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
    }
    ld->doc = &doc;
    int r = set_value(ld, spec, spec->name, &node);
    ld->doc = NULL;
    return r;
}

/* A new configuration holding the defaults of the key table. Those under data_dir come later,
 * from the final data_dir (derive_defaults). */
static int config_defaults(molt_config **ret, molt_err *err)
{
    molt_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    char root[] = "/";
    loader ld = {.file = "the built-in defaults", .dir = root, .cfg = cfg, .err = err};
    int r = 0;
    for (size_t i = 0; i < N_KEYS && r == 0; i++) {
        const key_spec *spec = &config_keys[i];
        if (spec->kind != KEY_SECTION &&
            strncmp(spec->def, UNDER_DATA_DIR, strlen(UNDER_DATA_DIR)) != 0)
            r = set_default(&ld, spec);
    }
    if (r != 0) {
        molt_config_free(cfg);
        return r;
    }
    *ret = cfg;
    return 0;
}

/* The defaults under data_dir ("<data_dir>/device_type") of the keys the file left unset. */
static int derive_defaults(molt_config *cfg, molt_err *err)
{
    size_t pl = strlen(UNDER_DATA_DIR);
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_spec *spec = &config_keys[i];
        if (!spec->def || strncmp(spec->def, UNDER_DATA_DIR, pl) != 0)
            continue;
        char **field = (char **)((char *)cfg + spec->offset);
        if (!*field && !(*field = molt_path_join(cfg->data_dir, spec->def + pl)))
            return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    return 0;
}

static const char *scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

/* A null scalar as YAML 1.1 spells it, written plain (a quoted "null" is a string). */
static bool is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = scalar_text(node);
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

static const char *node_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

/* A path value: a non-empty string scalar; relative ones are made absolute against the
 * config file's folder. *ret malloc'd. */
static int get_path(loader *ld, const char *key, const yaml_node_t *node, char **ret)
{
    if (node->type != YAML_SCALAR_NODE)
        return at(ld, node, "%s: expected a path (a string), got %s", key, node_kind(node));
    if (is_null(node))
        return at(ld, node, "%s: expected a path, got nothing (null)", key);
    const char *s = scalar_text(node);
    if (strlen(s) != node->data.scalar.length)
        return at(ld, node, "%s: the path contains a NUL character", key);
    char *path = s[0] == '/' ? strdup(s) : molt_path_join(ld->dir, s);
    if (!path)
        return molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
    *ret = path;
    return 0;
}

static int get_int(loader *ld, const key_spec *spec, const char *key, const yaml_node_t *node,
                   int *ret)
{
    if (node->type != YAML_SCALAR_NODE)
        return at(ld, node, "%s: expected an integer, got %s", key, node_kind(node));
    const char *s = scalar_text(node);
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return at(ld, node, "%s: expected an integer, got the string \"%s\"", key, s);
    const char *digits = s + (s[0] == '-' || s[0] == '+');
    bool ok = *digits != '\0' && strlen(digits) <= 12;
    long long v = 0;   /* at most 12 digits: no overflow (no strtoll: see set_default) */
    for (const char *p = digits; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9';
        v = v * 10 + (*p - '0');
    }
    if (!ok)
        return at(ld, node, "%s: expected an integer, got \"%s\"", key, s);
    if (s[0] == '-')
        v = -v;
    if (v < spec->min || v > spec->max)
        return at(ld, node, "%s: must be between %ld and %ld, got %lld", key, spec->min,
                  spec->max, v);
    *ret = (int)v;
    return 0;
}

static int get_path_list(loader *ld, const char *key, yaml_node_t *node, char ***ret_list,
                         size_t *ret_n)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return at(ld, node, "%s: expected a list of paths, got %s", key, node_kind(node));
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > CONFIG_LIST_MAX)
        return at(ld, node, "%s: %zu entries, at most %d allowed", key, n, CONFIG_LIST_MAX);
    char **list = calloc(n ? n : 1, sizeof *list);
    if (!list)
        return molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(ld->doc, node->data.sequence.items.start[i]);
        char name[192];
        snprintf(name, sizeof name, "%s[%zu]", key, i);
        int r = item ? get_path(ld, name, item, &list[i]) : at(ld, node, "%s: bad entry", name);
        if (r != 0) {
            free_list(list, i);
            return r;
        }
    }
    *ret_list = list;
    *ret_n = n;
    return 0;
}

static int load_mapping(loader *ld, yaml_node_t *map, const char *prefix);
static int load_modules(loader *ld, yaml_node_t *map);

/* Store one value of spec into the config (replacing the default). */
static int set_value(loader *ld, const key_spec *spec, const char *key, yaml_node_t *value)
{
    char *base = (char *)ld->cfg;
    switch (spec->kind) {
    case KEY_PATH:
    case KEY_PATH_OR_URI:
    case KEY_PATH_NULL: {
        char *path = NULL;
        if (spec->kind == KEY_PATH_OR_URI && value->type == YAML_SCALAR_NODE &&
            strncmp(scalar_text(value), "pkcs11:", 7) == 0) {
            if (!(path = strdup(scalar_text(value))))
                return molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
        } else if (!(spec->kind == KEY_PATH_NULL && is_null(value))) {
            int r = get_path(ld, key, value, &path);
            if (r != 0)
                return r;
        }
        char **field = (char **)(base + spec->offset);
        free(*field);
        *field = path;
        return 0;
    }
    case KEY_PATH_LIST: {
        char **list = NULL;
        size_t n = 0;
        int r = get_path_list(ld, key, value, &list, &n);
        if (r != 0)
            return r;
        char ***field = (char ***)(base + spec->offset);
        size_t *count = (size_t *)(base + spec->count_offset);
        free_list(*field, *count);
        *field = list;
        *count = n;
        return 0;
    }
    case KEY_INT:
        return get_int(ld, spec, key, value, (int *)(base + spec->offset));
    case KEY_LOG_LEVEL: {
        molt_log_level level;
        if (value->type != YAML_SCALAR_NODE || molt_log_level_parse(scalar_text(value), &level))
            return at(ld, value, "%s: expected one of error, warning, info, debug, got %s%s%s",
                      key, value->type == YAML_SCALAR_NODE ? "\"" : "",
                      value->type == YAML_SCALAR_NODE ? scalar_text(value) : node_kind(value),
                      value->type == YAML_SCALAR_NODE ? "\"" : "");
        char *word = strdup(scalar_text(value));
        if (!word)
            return molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
        free(ld->cfg->log_level);
        ld->cfg->log_level = word;
        return 0;
    }
    case KEY_SECTION: {
        if (is_null(value))
            return 0;   /* "http:" with every key commented out */
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%s.", spec->name);
        return load_mapping(ld, value, prefix);
    }
    case KEY_STRING:
    case KEY_STRING_NULL: {
        char *text = NULL;
        if (value->type != YAML_SCALAR_NODE)
            return at(ld, value, "%s: expected a string, got %s", key, node_kind(value));
        if (spec->kind == KEY_STRING && is_null(value))
            return at(ld, value, "%s: expected a string, got nothing (null)", key);
        if (!is_null(value)) {
            if (strlen(scalar_text(value)) != value->data.scalar.length)
                return at(ld, value, "%s: the string contains a NUL character", key);
            text = strdup(scalar_text(value));
            if (!text)
                return molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
        }
        char **field = (char **)(base + spec->offset);
        free(*field);
        *field = text;
        return 0;
    }
    case KEY_MODULES:
        return load_modules(ld, value);
    case KEY_POLICY:
    case KEY_SCHEME: {
        const char *const *names = spec->kind == KEY_POLICY ? policy_names : scheme_names;
        size_t n = spec->kind == KEY_POLICY ? 2 : sizeof scheme_names / sizeof scheme_names[0];
        const char *text = value->type == YAML_SCALAR_NODE ? scalar_text(value) : NULL;
        for (size_t i = 0; text && i < n; i++) {
            if (strcmp(text, names[i]) == 0) {
                if (spec->kind == KEY_POLICY)
                    *(int *)(base + spec->offset) = (int)i;
                else
                    *(molt_version_scheme *)(base + spec->offset) = (molt_version_scheme)i;
                return 0;
            }
        }
        return at(ld, value, "%s: expected %s, got %s%s%s", key,
                  spec->kind == KEY_POLICY ? "refuse or allow" : "integer, semver or debian",
                  text ? "\"" : "", text ? text : node_kind(value), text ? "\"" : "");
    }
    }
    return at(ld, value, "%s: internal error: unknown kind", key);
}

/* Edit distance of two short words (longer ones compare as far apart). */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAX = 40 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAX || lb >= MAX)
        return MAX;
    size_t row[MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The full name of the known key of the mapping prefix that a typo most likely meant (at most
 * 2 edits away), or NULL. */
static const char *nearest_key(const char *prefix, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < N_KEYS; i++) {
        if (!in_mapping(&config_keys[i], prefix))
            continue;
        size_t d = edit_distance(config_keys[i].name + strlen(prefix), name);
        if (d < best_d) {
            best_d = d;
            best = config_keys[i].name;
        }
    }
    return best;
}

/* The keys of the mapping whose keys are named prefix<key> ("" = the top level). */
static int load_mapping(loader *ld, yaml_node_t *map, const char *prefix)
{
    if (map->type != YAML_MAPPING_NODE)
        return at(ld, map, "%.*s%sexpected a mapping of keys to values, got %s",
                  *prefix ? (int)strlen(prefix) - 1 : 0, prefix, *prefix ? ": " : "",
                  node_kind(map));
    int seen_line[N_KEYS] = {0};
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
        if (!k || !v)
            return molt_err_set(ld->err, MOLT_ECONFIG, "%s: malformed YAML document", ld->file);
        if (k->type != YAML_SCALAR_NODE)
            return at(ld, k, "a key must be a plain word, got %s", node_kind(k));
        const char *name = scalar_text(k);
        char full[160];
        snprintf(full, sizeof full, "%s%.100s", prefix, name);
        size_t i = 0;
        while (i < N_KEYS &&
               !(in_mapping(&config_keys[i], prefix) && strcmp(config_keys[i].name, full) == 0))
            i++;
        if (i == N_KEYS) {
            const char *near = nearest_key(prefix, name);
            return at(ld, k, "unknown key \"%s\"%s%s%s", full, near ? " (did you mean \"" : "",
                      near ? near : "", near ? "\"?)" : "");
        }
        if (seen_line[i])
            return at(ld, k, "duplicate key \"%s\" (first set on line %d)", full, seen_line[i]);
        seen_line[i] = (int)k->start_mark.line + 1;
        int r = set_value(ld, &config_keys[i], full, v);
        if (r != 0)
            return r;
    }
    return 0;
}

/* ---- modules: per-module settings ---------------------------------------------------------- */

static bool is_module_word(const char *s, size_t len)
{
    if (len == 0 || len > MODULE_WORD_MAX || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

/* Append key -> value (both taken over, freed on failure) to mc. */
static int module_add(loader *ld, molt_module_config *mc, const yaml_node_t *node, char *key,
                      char *value)
{
    int r = 0;
    if (!key || !value) {
        r = molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < mc->n; i++) {
        if (strcmp(mc->keys[i], key) == 0) {
            r = at(ld, node, "duplicate key \"modules.%s.%s\"", mc->name, key);
            goto fail;
        }
    }
    if (mc->n >= MODULE_SETTINGS_MAX) {
        r = at(ld, node, "modules.%s: more than %d settings", mc->name, MODULE_SETTINGS_MAX);
        goto fail;
    }
    char **keys = realloc(mc->keys, (mc->n + 1) * sizeof *keys);
    if (keys)
        mc->keys = keys;
    char **values = keys ? realloc(mc->values, (mc->n + 1) * sizeof *values) : NULL;
    if (!values) {
        r = molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
        goto fail;
    }
    mc->values = values;
    mc->keys[mc->n] = key;
    mc->values[mc->n] = value;
    mc->n++;
    return 0;
fail:
    free(key);
    free(value);
    return r;
}

/* A scalar setting value: its text, refused when it holds a NUL. */
static int setting_text(loader *ld, const char *where, const yaml_node_t *node, char **ret)
{
    if (node->type != YAML_SCALAR_NODE)
        return at(ld, node, "%s: expected a scalar, got %s", where, node_kind(node));
    if (strlen(scalar_text(node)) != node->data.scalar.length)
        return at(ld, node, "%s: the value contains a NUL character", where);
    char *text = strdup(scalar_text(node));
    if (!text)
        return molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
    *ret = text;
    return 0;
}

/* A list setting: "key" -> items joined with '\n', and "key.<i>" -> item i. */
static int load_setting_list(loader *ld, molt_module_config *mc, const char *key,
                             const char *where, yaml_node_t *list)
{
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    size_t joined_len = 0;
    char *joined = NULL;
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(ld->doc, list->data.sequence.items.start[i]);
        char item_where[340], *text = NULL;
        snprintf(item_where, sizeof item_where, "%s[%zu]", where, i);
        if (!item)
            return free(joined), at(ld, list, "%s: bad entry", item_where);
        if (is_null(item))
            return free(joined), at(ld, item, "%s: expected a scalar, got nothing (null)",
                                    item_where);
        if ((r = setting_text(ld, item_where, item, &text)) != 0)
            return free(joined), r;
        size_t tl = strlen(text);
        char *grown = realloc(joined, joined_len + tl + 2);
        if (!grown) {
            free(text);
            free(joined);
            return molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
        }
        joined = grown;
        if (i > 0)
            joined[joined_len++] = '\n';
        memcpy(joined + joined_len, text, tl + 1);
        joined_len += tl;
        char indexed[MODULE_WORD_MAX + 24];
        snprintf(indexed, sizeof indexed, "%s.%zu", key, i);
        if ((r = module_add(ld, mc, item, strdup(indexed), text)) != 0)
            return free(joined), r;
    }
    return module_add(ld, mc, list, strdup(key), joined ? joined : strdup(""));
}

/* The mapping of one module's settings into mc. */
static int load_module_settings(loader *ld, molt_module_config *mc, yaml_node_t *map)
{
    if (is_null(map))
        return 0;   /* "name:" with every setting commented out */
    if (map->type != YAML_MAPPING_NODE)
        return at(ld, map, "modules.%s: expected a mapping of settings, got %s", mc->name,
                  node_kind(map));
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
        if (!k || !v)
            return molt_err_set(ld->err, MOLT_ECONFIG, "%s: malformed YAML document", ld->file);
        if (k->type != YAML_SCALAR_NODE ||
            !is_module_word(scalar_text(k), k->data.scalar.length))
            return at(ld, k, "modules.%s: a setting name must be 1 to %d characters of "
                      "[A-Za-z0-9._+-]", mc->name, MODULE_WORD_MAX);
        const char *key = scalar_text(k);
        char where[300];
        snprintf(where, sizeof where, "modules.%s.%s", mc->name, key);
        int r;
        if (is_null(v))
            continue;
        if (v->type == YAML_SEQUENCE_NODE) {
            r = load_setting_list(ld, mc, key, where, v);
        } else if (v->type == YAML_SCALAR_NODE) {
            char *text = NULL;
            r = setting_text(ld, where, v, &text);
            if (r == 0)
                r = module_add(ld, mc, v, strdup(key), text);
        } else {
            r = at(ld, v, "%s: expected a scalar or a list of scalars, got %s", where,
                   node_kind(v));
        }
        if (r != 0)
            return r;
    }
    return 0;
}

/* modules: <name>: <settings>, replacing any earlier value. */
static int load_modules(loader *ld, yaml_node_t *map)
{
    if (is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return at(ld, map, "modules: expected a mapping of module names to settings, got %s",
                  node_kind(map));
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n > CONFIG_MODULES_MAX)
        return at(ld, map, "modules: %zu modules, at most %d allowed", n, CONFIG_MODULES_MAX);
    molt_module_config *mods = calloc(n ? n : 1, sizeof *mods);
    if (!mods)
        return molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
    size_t done = 0;
    int r = 0;
    for (; done < n; done++) {
        yaml_node_pair_t *pair = &map->data.mapping.pairs.start[done];
        yaml_node_t *k = yaml_document_get_node(ld->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(ld->doc, pair->value);
        if (!k || !v) {
            r = molt_err_set(ld->err, MOLT_ECONFIG, "%s: malformed YAML document", ld->file);
            break;
        }
        if (k->type != YAML_SCALAR_NODE ||
            !is_module_word(scalar_text(k), k->data.scalar.length)) {
            r = at(ld, k, "modules: a module name must be 1 to %d characters of [A-Za-z0-9._+-]",
                   MODULE_WORD_MAX);
            break;
        }
        for (size_t i = 0; i < done && r == 0; i++)
            if (strcmp(mods[i].name, scalar_text(k)) == 0)
                r = at(ld, k, "duplicate key \"modules.%s\"", scalar_text(k));
        if (r != 0)
            break;
        mods[done].name = strdup(scalar_text(k));
        if (!mods[done].name) {
            r = molt_err_set(ld->err, MOLT_ENOMEM, "out of memory");
            break;
        }
        if ((r = load_module_settings(ld, &mods[done], v)) != 0) {
            done++;   /* free what it holds */
            break;
        }
    }
    if (r != 0) {
        free_modules(mods, done);
        return r;
    }
    free_modules(ld->cfg->modules, ld->cfg->n_modules);
    ld->cfg->modules = mods;
    ld->cfg->n_modules = n;
    return 0;
}

const char *molt_config_module_get(const molt_config *cfg, const char *module, const char *key)
{
    if (!cfg || !module || !key)
        return NULL;
    for (size_t i = 0; i < cfg->n_modules; i++) {
        const molt_module_config *mc = &cfg->modules[i];
        if (strcmp(mc->name, module) != 0)
            continue;
        for (size_t j = 0; j < mc->n; j++)
            if (strcmp(mc->keys[j], key) == 0)
                return mc->values[j];
        return NULL;
    }
    return NULL;
}

int molt_config_value(const molt_config *cfg, const char *key, char **ret)
{
    const key_spec *spec = NULL;
    for (size_t i = 0; i < N_KEYS && !spec; i++)
        if (strcmp(config_keys[i].name, key) == 0)
            spec = &config_keys[i];
    if (!spec || spec->kind == KEY_SECTION)
        return MOLT_ENOTFOUND;
    const char *base = (const char *)cfg;
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return MOLT_ENOMEM;
    if (is_text(spec->kind)) {
        const char *v = *(char *const *)(base + spec->offset);
        fputs(v ? v : "null", f);
    } else if (spec->kind == KEY_PATH_LIST) {
        char *const *list = *(char **const *)(base + spec->offset);
        size_t n = *(const size_t *)(base + spec->count_offset);
        fputc('[', f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%s%s", i ? ", " : "", list[i]);
        fputc(']', f);
    } else if (spec->kind == KEY_INT) {
        fprintf(f, "%d", *(const int *)(base + spec->offset));
    } else if (spec->kind == KEY_POLICY) {
        fputs(policy_names[*(const int *)(base + spec->offset) != 0], f);
    } else if (spec->kind == KEY_SCHEME) {
        fputs(molt_config_scheme_name(*(const molt_version_scheme *)(base + spec->offset)), f);
    } else {   /* KEY_MODULES */
        fputc('{', f);
        for (size_t i = 0; i < cfg->n_modules; i++)
            fprintf(f, "%s%s: {...}", i ? ", " : "", cfg->modules[i].name);
        fputc('}', f);
    }
    if (fclose(f) != 0 || !text) {
        free(text);
        return MOLT_ENOMEM;
    }
    *ret = text;
    return 0;
}

/* The absolute folder of path (relative paths taken from the current directory). */
static char *config_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir || dir[0] == '/')
        return dir;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        free(dir);
        return NULL;
    }
    char *abs = strcmp(dir, ".") == 0 ? strdup(cwd) : molt_path_join(cwd, dir);
    free(dir);
    return abs;
}

/* 1-based line of a byte offset (libyaml's reader errors give offsets, not marks). */
static size_t line_of_offset(const char *buf, size_t len, size_t offset)
{
    size_t line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        line += buf[i] == '\n';
    return line;
}

static int yaml_error(const yaml_parser_t *parser, const char *file, const char *buf, size_t len,
                      molt_err *err)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory parsing YAML", file);
    if (parser->error == YAML_READER_ERROR)
        return molt_err_set(err, MOLT_ECONFIG, "%s:%zu: not valid YAML text: %s", file,
                            line_of_offset(buf, len, parser->problem_offset),
                            parser->problem ? parser->problem : "unreadable");
    return molt_err_set(err, MOLT_ECONFIG, "%s:%zu: YAML syntax error: %s%s%s", file,
                        parser->problem_mark.line + 1,
                        parser->problem ? parser->problem : "malformed",
                        parser->context ? " " : "", parser->context ? parser->context : "");
}

/* Parse buf (the text of file) over the defaults already in cfg; relative paths are taken from
 * dir (NULL: the folder of file). */
static int parse_config(molt_config *cfg, const char *file, const char *dir, const char *buf,
                        size_t len, molt_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_doc = false;
    int r = 0;
    loader ld = {.file = file, .doc = &doc, .cfg = cfg, .err = err};
    if (!yaml_parser_initialize(&parser))
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        r = yaml_error(&parser, file, buf, len, err);
        goto out;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        goto out;   /* an empty file (or only comments): the defaults */
    if (!yaml_parser_load(&parser, &extra)) {
        r = yaml_error(&parser, file, buf, len, err);
        goto out;
    }
    yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
    if (extra_root)
        r = molt_err_set(err, MOLT_ECONFIG, "%s:%zu: a second YAML document; molt.yaml holds "
                         "one mapping", file, extra.start_mark.line + 1);
    yaml_document_delete(&extra);
    if (r != 0)
        goto out;
    if (is_null(root))
        goto out;
    ld.dir = dir ? strdup(dir) : config_dir(file);
    if (!ld.dir) {
        r = molt_err_errno(err, MOLT_EIO, errno, "%s: cannot find its folder", file);
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        r = at(&ld, root, "expected a mapping of keys to values at the top, got %s",
               node_kind(root));
        goto out;
    }
    r = load_mapping(&ld, root, "");
out:
    free(ld.dir);
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return r;
}

int molt_config_load(molt_config **ret, const char *path, molt_err *err)
{
    const char *file = path ? path : MOLT_DEFAULT_CONFIG;
    char *buf = NULL;
    size_t len = 0;
    molt_config *cfg = NULL;
    int r = config_defaults(&cfg, err);
    if (r != 0)
        return r;
    r = molt_read_file(file, CONFIG_FILE_MAX, &buf, &len, err);
    if (r == MOLT_ENOTFOUND && !path) {
        r = 0;   /* no /etc/molt/molt.yaml: a device running on the defaults */
    } else if (r != 0) {
        molt_err_prefix(err, "configuration: ");
        r = MOLT_ECONFIG;
        if (err)
            err->code = r;
        goto out;
    } else if ((r = molt_strict_check(file, "configuration", err)) < 0) {
        goto out;   /* it sets what molt runs as root: nobody else may write it */
    } else {
        cfg->path = strdup(file);
        if (!cfg->path) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
            goto out;
        }
        r = parse_config(cfg, file, NULL, buf, len, err);
        if (r != 0)
            goto out;
        if (cfg->downgrade_refuse && (!cfg->downgrade_key || !*cfg->downgrade_key)) {
            r = molt_err_set(err, MOLT_ECONFIG, "%s: downgrade.policy is refuse but "
                             "downgrade.key names no provide to take the version from", file);
            goto out;
        }
    }
    r = derive_defaults(cfg, err);
out:
    free(buf);
    if (r != 0) {
        molt_config_free(cfg);
        return r;
    }
    *ret = cfg;
    return 0;
}

int molt_config_device_type(const molt_config *cfg, char **ret, molt_err *err)
{
    static const char prefix[] = "device_type=";
    char *buf = NULL;
    size_t len = 0;
    const char *file = cfg->device_type_file;
    int r = molt_read_file(file, DEVICE_TYPE_FILE_MAX, &buf, &len, err);
    if (r != 0) {
        molt_err_prefix(err, "device type: ");
        return r;
    }
    size_t plen = sizeof prefix - 1;
    if (len < plen || memcmp(buf, prefix, plen) != 0) {
        r = molt_err_set(err, MOLT_EFORMAT, "%s: expected one line \"device_type=<value>\"",
                         file);
        goto out;
    }
    size_t vlen = len - plen;
    if (vlen > 0 && buf[len - 1] == '\n')
        vlen--;
    const char *value = buf + plen;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\n') {
            r = molt_err_set(err, MOLT_EFORMAT, "%s: trailing data after the device_type line",
                             file);
            goto out;
        }
        if (c < 0x20 || c == 0x7f) {
            r = molt_err_set(err, MOLT_EFORMAT, "%s: control character 0x%02x in device_type",
                             file, c);
            goto out;
        }
    }
    if (vlen == 0) {
        r = molt_err_set(err, MOLT_EFORMAT, "%s: device_type is empty", file);
        goto out;
    }
    char *dt = strndup(value, vlen);
    if (!dt) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    *ret = dt;
out:
    free(buf);
    return r;
}
