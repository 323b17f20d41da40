/* SPDX-License-Identifier: Apache-2.0 */
/* Provides and depends bookkeeping (docs/reference §2.10): whether an artifact may be installed on
 * this device, and what the device provides once it is. Pure functions over JSON, no I/O. */
#ifndef MOLT_STATE_PROVIDES_H
#define MOLT_STATE_PROVIDES_H

#include <stdbool.h>
#include <jansson.h>
#include "config/config.h"
#include "util/err.h"

/* Suffix of the stored artifact name after a failure that could not be rolled back. */
#define MOLT_INCONSISTENT_SUFFIX "_INCONSISTENT"
/* Artifact name of a device that never installed anything. */
#define MOLT_UNKNOWN_ARTIFACT "unknown"

/* Whether s matches the clears glob pattern: '*' matches any run of characters (also empty),
 * every other character matches itself; the whole string must match. */
bool molt_provides_glob_match(const char *pattern, const char *s);

/* The device's provides as one flat object: "artifact_name" (MOLT_UNKNOWN_ARTIFACT when the
 * store has none), "artifact_group" (only when set) and every stored type-info provide.
 * store is the store document (keys artifact_name, artifact_group, artifact_provides).
 * *ret is a new reference owned by the caller. */
int molt_provides_current(const json_t *store, json_t **ret, molt_err *err);

/* The depends of an artifact, as the state machine keeps them. Borrowed JSON. */
typedef struct molt_depends {
    const json_t *device_types;  /* array of strings; required */
    const json_t *names;         /* array of strings or NULL */
    const json_t *groups;        /* array of strings or NULL */
    const json_t *type_depends;  /* object string->string or NULL */
} molt_depends;

/* Check depends against the device: device_type must be listed; names/groups lists need
 * "artifact_name"/"artifact_group" in provides with a listed value; every type-info depends key
 * must be in provides with exactly that value. 0 when all are met, MOLT_EDEPENDS naming the
 * first unmet key with expected and actual values otherwise (MOLT_EFORMAT for bad JSON). */
int molt_depends_check(const molt_depends *dep, const char *device_type, const json_t *provides,
                       molt_err *err);

/* What an installed artifact brings; borrowed JSON. */
typedef struct molt_provides_new {
    const char *name;            /* artifact_name, non-empty */
    const char *group;           /* artifact_group or NULL/"" for none */
    const json_t *provides;      /* type-info artifact_provides (object) or NULL */
    const json_t *clears;        /* clears_artifact_provides (array of globs) or NULL if absent */
} molt_provides_new;

/* Update the store document in place for an installed artifact: start from the stored
 * artifact_provides; without clears (absent) every stored provide is dropped (and also when
 * there are neither provides nor clears); with clears the stored keys matching any glob are
 * dropped; then the new provides are added. artifact_name is set, artifact_group set or removed
 * when empty. On failure the store is unchanged. */
int molt_provides_commit(json_t *store, const molt_provides_new *art, molt_err *err);

/* After a failure that could not be rolled back (docs/reference §2.10): only the name, with
 * MOLT_INCONSISTENT_SUFFIX appended once, and the group (removed when NULL or empty) are
 * written; the stored type-info provides stay as they were. */
int molt_provides_inconsistent(json_t *store, const char *name, const char *group,
                               molt_err *err);

/* The downgrade policy (molt.yaml `downgrade:`, docs/configuration.md). */
typedef struct molt_downgrade_policy {
    bool refuse;                 /* policy refuse; false: every version is accepted */
    const char *key;             /* the provide holding the version ("artifact_name" allowed) */
    molt_version_scheme scheme;
} molt_downgrade_policy;

/* Whether an artifact (its signed name and type-info provides) may replace what the device
 * provides (molt_provides_current) under policy p. 0: allowed, newer or equal (a reinstall);
 * 1: allowed because the device has no version under the key yet (nothing to compare);
 * MOLT_EDEPENDS: refused, with a message naming the artifact, the key, both versions and the
 * scheme: an older version, an artifact without the key, or a version (the artifact's or the
 * device's) that the scheme cannot read. */
int molt_downgrade_check(const molt_downgrade_policy *p, const char *artifact_name,
                         const json_t *type_provides, const json_t *device_provides,
                         molt_err *err);

#endif
