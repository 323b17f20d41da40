/* SPDX-License-Identifier: Apache-2.0 */
/* The artifact manifest (docs/reference §1.3): "<sha256 hex>  <name>\n" lines, parsed strictly. */
#ifndef MOLT_ARTIFACT_MANIFEST_H
#define MOLT_ARTIFACT_MANIFEST_H

#include <stddef.h>
#include "artifact/artifact.h"
#include "util/err.h"

/* Parse the manifest bytes. Every line is 64 lower-case hex digits, two spaces and a name,
 * ending with '\n'; names are "version", one "header.tar[.gz|.xz|.zst]" or "data/0000/<file>"
 * (flat file name); no duplicates; at most MOLT_ARTIFACT_MAX_FILES payload files.
 * *ret (array, caller frees with molt_manifest_free) and *ret_n are set on success only.
 * Errors: MOLT_EFORMAT or MOLT_ELIMIT naming the line. */
int molt_manifest_parse(const char *data, size_t len, molt_manifest_entry **ret, size_t *ret_n,
                        molt_err *err);

/* The entry named name, or NULL. */
molt_manifest_entry *molt_manifest_find(molt_manifest_entry *entries, size_t n,
                                        const char *name);

void molt_manifest_free(molt_manifest_entry *entries, size_t n);

/* Whether name is a valid flat payload file name: non-empty, no '/', not "." or "..",
 * no control characters, at most MOLT_ARTIFACT_MAX_NAME bytes. */
bool molt_manifest_file_name_ok(const char *name, size_t len);

#endif
