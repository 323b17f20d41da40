/* SPDX-License-Identifier: Apache-2.0 */
/* molt-module-index: validates module manifests (module.yaml, the format in docs/modules.md) and
 * writes the module repository index (YAML, sorted by name). Every error names file:line. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MANIFESTS_MAX 1024
#define LIST_MAX 64

typedef struct manifest {
    char *file, *dir;
    char *name, *version, *description, *license, *maintainer, *kind, *abi;
    bool probe;   /* an effect probe: the kit verifies what the module does */
    long protocol;
    char *payload_types[LIST_MAX];
    int n_payload_types;
    bool streaming, rollback, reboot;
    char *commands[LIST_MAX], *services[LIST_MAX], *tested_with[LIST_MAX];
    int n_commands, n_services, n_tested_with;
} manifest;

static int errors;

static void bad(const char *file, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad(const char *file, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%zu: ", file, node ? node->start_mark.line + 1 : 1);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    errors++;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool plain(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static char *get_string(const char *file, const char *key, const yaml_node_t *n)
{
    const char *s = scalar(n);
    if (!s || !*s) {
        bad(file, n, "key '%s': expected a non-empty string", key);
        return NULL;
    }
    return strdup(s);
}

static bool get_bool(const char *file, const char *key, const yaml_node_t *n)
{
    const char *s = scalar(n);
    if (s && plain(n) && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
        return strcmp(s, "true") == 0;
    bad(file, n, "key '%s': expected true or false, got %s%s%s", key, s ? "'" : "",
        s ? s : "a list or mapping", s ? "'" : "");
    return false;
}

static int get_list(const char *file, yaml_document_t *doc, const char *key, const yaml_node_t *n,
                    char **out, bool non_empty)
{
    if (n->type != YAML_SEQUENCE_NODE) {
        bad(file, n, "key '%s': expected a list of strings", key);
        return 0;
    }
    int count = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        const char *s = scalar(item);
        if (!s || !*s) {
            bad(file, item, "key '%s': every item must be a non-empty string", key);
            continue;
        }
        if (count == LIST_MAX) {
            bad(file, item, "key '%s': more than %d items", key, LIST_MAX);
            break;
        }
        out[count++] = strdup(s);
    }
    if (non_empty && count == 0)
        bad(file, n, "key '%s': expected at least one item", key);
    return count;
}

/* A mapping with exactly the keys in names; values into vals (NULL when missing, reported). */
static void sub_mapping(const char *file, yaml_document_t *doc, const char *key, const yaml_node_t *n,
                        const char *const *names, size_t n_names, yaml_node_t **vals)
{
    for (size_t i = 0; i < n_names; i++)
        vals[i] = NULL;
    if (n->type != YAML_MAPPING_NODE) {
        bad(file, n, "key '%s': expected a mapping", key);
        return;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        const char *ks = scalar(k);
        size_t i;
        for (i = 0; ks && i < n_names; i++)
            if (strcmp(ks, names[i]) == 0)
                break;
        if (!ks || i == n_names) {
            bad(file, k, "unknown key '%s.%s'", key, ks ? ks : "?");
            continue;
        }
        if (vals[i])
            bad(file, k, "duplicate key '%s.%s'", key, ks);
        vals[i] = yaml_document_get_node(doc, p->value);
    }
    for (size_t i = 0; i < n_names; i++)
        if (!vals[i])
            bad(file, n, "missing key '%s.%s'", key, names[i]);
}

enum {
    K_NAME, K_VERSION, K_DESCRIPTION, K_LICENSE, K_MAINTAINER, K_KIND, K_PROTOCOL, K_ABI,
    K_PAYLOAD_TYPES, K_CAPABILITIES, K_REQUIRES, K_TESTED_WITH, K_PROBE, K_COUNT
};
static const char *const keys[K_COUNT] = {
    "name", "version", "description", "license", "maintainer", "kind", "protocol", "abi",
    "payload_types", "capabilities", "requires", "tested_with", "probe"};

static void load(const char *file, manifest *m)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    FILE *f = fopen(file, "rb");
    memset(m, 0, sizeof *m);
    m->file = strdup(file);
    const char *slash = strrchr(file, '/');
    m->dir = slash ? strndup(file, (size_t)(slash - file)) : strdup(".");
    if (!f) {
        fprintf(stderr, "%s: %s\n", file, strerror(errno));
        errors++;
        return;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(stderr, "%s:%zu: YAML: %s\n", file, parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "cannot parse");
        errors++;
        yaml_parser_delete(&parser);
        fclose(f);
        return;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *v[K_COUNT] = {0};
    if (!root || root->type != YAML_MAPPING_NODE) {
        bad(file, root, "expected a mapping of the manifest keys");
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        const char *ks = scalar(k);
        int i;
        for (i = 0; ks && i < K_COUNT; i++)
            if (strcmp(ks, keys[i]) == 0)
                break;
        if (!ks || i == K_COUNT) {
            bad(file, k, "unknown key '%s'", ks ? ks : "?");
            continue;
        }
        if (v[i])
            bad(file, k, "duplicate key '%s'", ks);
        v[i] = yaml_document_get_node(&doc, p->value);
    }
    for (int i = 0; i < K_COUNT; i++)
        if (!v[i] && i != K_ABI && i != K_PROBE)
            bad(file, root, "missing key '%s'", keys[i]);
    if (v[K_NAME])
        m->name = get_string(file, "name", v[K_NAME]);
    if (v[K_VERSION])
        m->version = get_string(file, "version", v[K_VERSION]);
    if (v[K_DESCRIPTION])
        m->description = get_string(file, "description", v[K_DESCRIPTION]);
    if (v[K_LICENSE])
        m->license = get_string(file, "license", v[K_LICENSE]);
    if (v[K_MAINTAINER])
        m->maintainer = get_string(file, "maintainer", v[K_MAINTAINER]);
    if (v[K_KIND]) {
        m->kind = get_string(file, "kind", v[K_KIND]);
        if (m->kind && strcmp(m->kind, "native") != 0 && strcmp(m->kind, "exec") != 0)
            bad(file, v[K_KIND], "key 'kind': expected native or exec, got '%s'", m->kind);
    }
    if (v[K_PROTOCOL]) {
        const char *s = scalar(v[K_PROTOCOL]);
        if (!s || !plain(v[K_PROTOCOL]) || strcmp(s, "3") != 0)
            bad(file, v[K_PROTOCOL], "key 'protocol': expected 3 (Update Module protocol v3), got %s",
                s ? s : "a list or mapping");
        m->protocol = 3;
    }
    if (m->kind && strcmp(m->kind, "native") == 0 && !v[K_ABI])
        bad(file, root, "missing key 'abi' (a native module names its ABI, \"1.1\")");
    if (m->kind && strcmp(m->kind, "exec") == 0 && v[K_ABI])
        bad(file, v[K_ABI], "key 'abi': only for native modules");
    if (v[K_ABI]) {
        m->abi = get_string(file, "abi", v[K_ABI]);
        if (m->abi && (strlen(m->abi) < 3 || strchr(m->abi, '.') == NULL))
            bad(file, v[K_ABI], "key 'abi': expected \"<major>.<minor>\", got '%s'", m->abi);
    }
    if (v[K_PROBE]) {
        char *p = get_string(file, "probe", v[K_PROBE]);
        m->probe = p != NULL;
        free(p);
    }
    if (v[K_PAYLOAD_TYPES])
        m->n_payload_types = get_list(file, &doc, "payload_types", v[K_PAYLOAD_TYPES],
                                      m->payload_types, true);
    if (v[K_TESTED_WITH])
        m->n_tested_with = get_list(file, &doc, "tested_with", v[K_TESTED_WITH], m->tested_with,
                                    false);
    if (v[K_CAPABILITIES]) {
        static const char *const caps[] = {"streaming", "rollback", "reboot"};
        yaml_node_t *c[3];
        sub_mapping(file, &doc, "capabilities", v[K_CAPABILITIES], caps, 3, c);
        if (c[0])
            m->streaming = get_bool(file, "capabilities.streaming", c[0]);
        if (c[1])
            m->rollback = get_bool(file, "capabilities.rollback", c[1]);
        if (c[2])
            m->reboot = get_bool(file, "capabilities.reboot", c[2]);
    }
    if (v[K_REQUIRES]) {
        static const char *const req[] = {"commands", "services"};
        yaml_node_t *r[2];
        sub_mapping(file, &doc, "requires", v[K_REQUIRES], req, 2, r);
        if (r[0])
            m->n_commands = get_list(file, &doc, "requires.commands", r[0], m->commands, false);
        if (r[1])
            m->n_services = get_list(file, &doc, "requires.services", r[1], m->services, false);
    }
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
}

/* A YAML double-quoted scalar (JSON-style escapes). */
static void put_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(o, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(o, "\\x%02x", *p);
        else
            fputc(*p, o);
    }
    fputc('"', o);
}

static void put_list(FILE *o, const char *indent, const char *key, char **items, int n)
{
    fprintf(o, "%s%s:", indent, key);
    if (n == 0) {
        fputs(" []\n", o);
        return;
    }
    fputc('\n', o);
    for (int i = 0; i < n; i++) {
        fprintf(o, "%s  - ", indent);
        put_str(o, items[i]);
        fputc('\n', o);
    }
}

static void free_list(char **items, int n)
{
    for (int i = 0; i < n; i++)
        free(items[i]);
}

static void manifest_free(manifest *m)
{
    char *strs[] = {m->file, m->dir, m->name, m->version, m->description, m->license,
                    m->maintainer, m->kind, m->abi};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(strs[i]);
    free_list(m->payload_types, m->n_payload_types);
    free_list(m->commands, m->n_commands);
    free_list(m->services, m->n_services);
    free_list(m->tested_with, m->n_tested_with);
}

static int by_name(const void *a, const void *b)
{
    const manifest *x = a, *y = b;
    return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static void write_index(FILE *o, manifest *ms, int n)
{
    fputs("# The molt module repository index, generated by molt-module-index from every\n"
          "# module.yaml (tools/module-index.sh); do not edit by hand.\n"
          "modules:\n", o);
    for (int i = 0; i < n; i++) {
        manifest *m = &ms[i];
        static const char *const fields[] = {"name", "path", "version", "description", "license",
                                             "maintainer", "kind"};
        const char *vals[] = {m->name, m->dir, m->version, m->description, m->license,
                              m->maintainer, m->kind};
        for (size_t f = 0; f < 7; f++) {
            fprintf(o, "%s%s: ", f == 0 ? "  - " : "    ", fields[f]);
            put_str(o, vals[f]);
            fputc('\n', o);
        }
        fprintf(o, "    protocol: %ld\n", m->protocol);
        if (m->abi) {
            fputs("    abi: ", o);
            put_str(o, m->abi);
            fputc('\n', o);
        }
        put_list(o, "    ", "payload_types", m->payload_types, m->n_payload_types);
        fprintf(o, "    capabilities: {streaming: %s, rollback: %s, reboot: %s}\n",
                m->streaming ? "true" : "false", m->rollback ? "true" : "false",
                m->reboot ? "true" : "false");
        fputs("    requires:\n", o);
        put_list(o, "      ", "commands", m->commands, m->n_commands);
        put_list(o, "      ", "services", m->services, m->n_services);
        put_list(o, "    ", "tested_with", m->tested_with, m->n_tested_with);
        /* whether molt-module-test can verify what the module does (docs/modules.md) */
        fprintf(o, "    effects: %s\n", m->probe ? "\"verified (probe)\"" : "\"not verified (no probe)\"");
    }
}

static const char usage_text[] =
    "Usage: molt-module-index [-o INDEX | --check INDEX] MANIFEST...\n"
    "\n"
    "Validates each module manifest (module.yaml; errors as file:line: message) and writes the\n"
    "module repository index, sorted by name, to INDEX (-o) or stdout. --check INDEX compares\n"
    "instead: exit 1 when INDEX is not what would be written (stale).\n"
    "Exit codes: 0 ok, 1 invalid manifest or stale index, 2 usage.\n";

int main(int argc, char **argv)
{
    const char *out = NULL, *check = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0 && i + 1 < argc) {
            check = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else {
            fputs(usage_text, stderr);
            return 2;
        }
    }
    int n = argc - i;
    if (n < 1 || n > MANIFESTS_MAX || (out && check)) {
        fputs(usage_text, stderr);
        return 2;
    }
    manifest *ms = calloc((size_t)n, sizeof *ms);
    if (!ms)
        return 2;
    for (int j = 0; j < n; j++)
        load(argv[i + j], &ms[j]);
    qsort(ms, (size_t)n, sizeof *ms, by_name);
    for (int j = 1; j < n; j++)
        if (ms[j].name && ms[j - 1].name && strcmp(ms[j].name, ms[j - 1].name) == 0) {
            fprintf(stderr, "%s:1: module name '%s' is also used by %s\n", ms[j].file, ms[j].name,
                    ms[j - 1].file);
            errors++;
        }
    if (errors) {
        fprintf(stderr, "molt-module-index: %d error(s); no index written\n", errors);
        for (int j = 0; j < n; j++)
            manifest_free(&ms[j]);
        free(ms);
        return 1;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return 2;
    write_index(mem, ms, n);
    fclose(mem);
    int code = 0;
    if (check) {
        FILE *f = fopen(check, "rb");
        char *old = malloc(len + 2);
        size_t got = f && old ? fread(old, 1, len + 1, f) : 0;
        if (!f || got != len || memcmp(old, text, len) != 0) {
            fprintf(stderr, "%s: stale: it is not the index of these manifests; run tools/module-index.sh\n",
                    check);
            code = 1;
        }
        if (f)
            fclose(f);
        free(old);
    } else if (out) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", out);
        FILE *f = fopen(tmp, "wb");
        if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0 || rename(tmp, out) != 0) {
            fprintf(stderr, "molt-module-index: cannot write %s: %s\n", out, strerror(errno));
            code = 2;
        }
    } else {
        fwrite(text, 1, len, stdout);
    }
    free(text);
    for (int j = 0; j < n; j++)
        manifest_free(&ms[j]);
    free(ms);
    return code;
}
