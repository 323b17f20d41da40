/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent store: one JSON document in <data_dir>/store, replaced atomically (temporary
 * file, fsync, rename, fsync of the folder) and wrapped with a format version and a SHA-256, so a
 * torn or corrupt store is detected and reported, never silently trusted. */
#ifndef MOLT_STATE_STORE_H
#define MOLT_STATE_STORE_H

#include <jansson.h>
#include "util/err.h"

#define MOLT_STORE_FORMAT 1

/* Load the document. A missing store gives an empty object (fresh device). A store that fails
 * its checksum, has another format or is not JSON gives MOLT_ECORRUPT with the reason.
 * *ret is a new reference owned by the caller. */
int molt_store_load(const char *path, json_t **ret, molt_err *err);

/* Save the document (object) durably. */
int molt_store_save(const char *path, const json_t *doc, molt_err *err);

#endif
