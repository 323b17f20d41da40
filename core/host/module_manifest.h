/* SPDX-License-Identifier: Apache-2.0 */
/* The manifest of an installed module: the module repository's module.yaml (docs/modules.md),
 * installed beside the module as <name>.yaml, read for `molt modules`. */
#ifndef MOLT_HOST_MODULE_MANIFEST_H
#define MOLT_HOST_MODULE_MANIFEST_H

#include "util/err.h"

typedef struct molt_module_manifest {
    char *version;        /* NULL when the manifest has none */
    char *description;    /* NULL when the manifest has none */
    char *probe;          /* the effect probe, a shell command (docs/modules.md), or NULL */
    int streaming, rollback, reboot;   /* capabilities: 1, 0, or -1 when not given */
} molt_module_manifest;

/* The manifest of the module file module_path: "<dir>/x.so" -> "<dir>/x.yaml" (native), "<dir>/x"
 * -> "<dir>/x.yaml" (exec). MOLT_ENOTFOUND when there is none; MOLT_EFORMAT (with file:line) when
 * it is not a YAML mapping or a value has the wrong type. Only the keys shown by `molt modules`
 * are read; the repository's checker (molt-module-index) validates the rest. *ret is the
 * caller's (molt_module_manifest_free). */
int molt_module_manifest_load(const char *module_path, molt_module_manifest **ret, molt_err *err);
/* The same from the manifest file path itself (module.yaml in a module's source folder). */
int molt_module_manifest_read(const char *path, molt_module_manifest **ret, molt_err *err);
void molt_module_manifest_free(molt_module_manifest *m);

#endif
