/* SPDX-License-Identifier: Apache-2.0 */
/* The native module registry's cache: what each loaded and accepted module file declared
 * (name, version, capabilities, payload types), so a later scan does not dlopen every module
 * (and map every module's libraries: the docker module pulls in libcurl) just to read claims.
 * Kept in <data_dir>/native/registry.cache (JSON), keyed by the file's path, device, inode,
 * size, mtime and ctime (nanoseconds) and by the host (molt version and module ABI): any change
 * of the file or of molt makes the entry stale and the file is loaded again. Only accepted
 * modules are cached; a refused file is loaded at every scan (its refusal may depend on other
 * files, e.g. a missing library installed later). */
#ifndef MOLT_HOST_REGISTRY_CACHE_H
#define MOLT_HOST_REGISTRY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "util/err.h"

/* Files and payload types per module beyond these are not cached (loaded every time). */
#define MOLT_REGISTRY_CACHE_MAX_BYTES (1024 * 1024)
#define MOLT_REGISTRY_CACHE_MAX_TYPES 64

typedef struct molt_registry_cache_entry {
    char *path;
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
    char *name;
    char *version;
    uint32_t capabilities;
    char **types;           /* NULL-terminated, as the descriptor's payload_types */
    bool used;              /* looked up or stored during this scan */
} molt_registry_cache_entry;

typedef struct molt_registry_cache molt_registry_cache;

/* Read <data_dir>/native/registry.cache. A missing, unreadable, malformed or other-host file is
 * an empty cache (it is rewritten by save). *ret is the caller's (molt_registry_cache_free).
 * Errors: MOLT_ENOMEM only. */
int molt_registry_cache_open(molt_registry_cache **ret, const char *data_dir, molt_err *err);

/* The entry of path whose key matches st (as stat(path) returned it now); NULL if none or
 * stale. Marks it used. */
const molt_registry_cache_entry *molt_registry_cache_lookup(molt_registry_cache *c,
                                                            const char *path,
                                                            const struct stat *st);

/* Record what the module file at path (stat st, taken before loading it) declared. Replaces
 * an entry of the same path. Errors: MOLT_ENOMEM. */
int molt_registry_cache_put(molt_registry_cache *c, const char *path, const struct stat *st,
                            const char *name, const char *version, uint32_t capabilities,
                            const char *const *types, molt_err *err);

/* Write the cache back when it changed (entries stored, or entries not used in this scan, which
 * are dropped: their files are gone or were not looked up), atomically. Errors: MOLT_EIO and
 * MOLT_ENOMEM; callers may ignore them (the cache is only an optimization). */
int molt_registry_cache_save(molt_registry_cache *c, molt_err *err);

void molt_registry_cache_free(molt_registry_cache *c);

#endif
