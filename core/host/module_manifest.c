/* SPDX-License-Identifier: Apache-2.0 */
/* Reading an installed module's manifest (<name>.yaml beside the module) for `molt modules`. */
#include "host/module_manifest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define MANIFEST_MAX (64 * 1024)

static char *manifest_path(const char *module_path)
{
    size_t n = strlen(module_path);
    if (n > 3 && strcmp(module_path + n - 3, ".so") == 0)
        n -= 3;
    char *p = malloc(n + 6);
    if (p) {
        memcpy(p, module_path, n);
        memcpy(p + n, ".yaml", 6);
    }
    return p;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_bool(const char *path, const char *key, const yaml_node_t *n, int *ret,
                    molt_err *err)
{
    const char *s = scalar(n);
    if (s && strcmp(s, "true") == 0)
        *ret = 1;
    else if (s && strcmp(s, "false") == 0)
        *ret = 0;
    else
        return molt_err_set(err, MOLT_EFORMAT, "%s:%zu: capabilities.%s: expected true or false",
                            path, n->start_mark.line + 1, key);
    return 0;
}

int molt_module_manifest_load(const char *module_path, molt_module_manifest **ret, molt_err *err)
{
    char *path = manifest_path(module_path);
    if (!path)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int rc = molt_module_manifest_read(path, ret, err);
    free(path);
    return rc;
}

int molt_module_manifest_read(const char *path, molt_module_manifest **ret, molt_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    molt_module_manifest *m = NULL;
    char *text = NULL;
    size_t len = 0;
    bool parser_ok = false, doc_ok = false;
    int rc = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = errno == ENOENT ? molt_err_set(err, MOLT_ENOTFOUND, "%s: no manifest", path)
                             : molt_err_errno(err, MOLT_EIO, errno, "%s", path);
        goto out;
    }
    text = malloc(MANIFEST_MAX + 1);
    if (!text) {
        rc = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    len = fread(text, 1, MANIFEST_MAX + 1, f);
    if (len > MANIFEST_MAX) {
        rc = molt_err_set(err, MOLT_ELIMIT, "%s: larger than %d bytes", path, MANIFEST_MAX);
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (!m || !yaml_parser_initialize(&parser)) {
        rc = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    parser_ok = true;
    m->streaming = m->rollback = m->reboot = -1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = molt_err_set(err, MOLT_EFORMAT, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                          parser.problem ? parser.problem : "not YAML");
        goto out;
    }
    doc_ok = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = molt_err_set(err, MOLT_EFORMAT, "%s:1: expected a mapping", path);
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        const char *key = scalar(yaml_document_get_node(&doc, p->key));
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        if (!key)
            continue;
        if (strcmp(key, "version") == 0 || strcmp(key, "description") == 0 ||
            strcmp(key, "probe") == 0) {
            char **dst = key[0] == 'v' ? &m->version : key[0] == 'd' ? &m->description : &m->probe;
            if (!scalar(v)) {
                rc = molt_err_set(err, MOLT_EFORMAT, "%s:%zu: %s: expected a string", path,
                                  v->start_mark.line + 1, key);
                goto out;
            }
            free(*dst);
            if (!(*dst = strdup(scalar(v)))) {
                rc = molt_err_set(err, MOLT_ENOMEM, "out of memory");
                goto out;
            }
        } else if (strcmp(key, "capabilities") == 0) {
            if (v->type != YAML_MAPPING_NODE) {
                rc = molt_err_set(err, MOLT_EFORMAT, "%s:%zu: capabilities: expected a mapping",
                                  path, v->start_mark.line + 1);
                goto out;
            }
            for (yaml_node_pair_t *c = v->data.mapping.pairs.start; c < v->data.mapping.pairs.top;
                 c++) {
                const char *ck = scalar(yaml_document_get_node(&doc, c->key));
                yaml_node_t *cv = yaml_document_get_node(&doc, c->value);
                int *dst = !ck ? NULL
                           : strcmp(ck, "streaming") == 0 ? &m->streaming
                           : strcmp(ck, "rollback") == 0 ? &m->rollback
                           : strcmp(ck, "reboot") == 0 ? &m->reboot : NULL;
                if (dst && (rc = get_bool(path, ck, cv, dst, err)) < 0)
                    goto out;
            }
        }
    }
    *ret = m;
    m = NULL;
out:
    if (doc_ok)
        yaml_document_delete(&doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    if (f)
        fclose(f);
    molt_module_manifest_free(m);
    free(text);
    return rc;
}

void molt_module_manifest_free(molt_module_manifest *m)
{
    if (!m)
        return;
    free(m->version);
    free(m->description);
    free(m->probe);
    free(m);
}
