/* SPDX-License-Identifier: Apache-2.0 */
/* Writer for Mender Artifact v3, byte-compatible with mender-artifact's layout (docs/reference §1):
 * version, manifest, manifest.sig, header.tar*, data/0000.tar*. */
#ifndef MOLT_ARTIFACT_WRITER_H
#define MOLT_ARTIFACT_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "artifact/artifact.h"
#include "util/err.h"

typedef struct molt_artifact_spec {
    const char *payload_type;      /* NULL = empty payload (bootstrap artifact) */
    const char *name;              /* artifact_name, required */
    const char *group;             /* artifact_group or NULL */
    const char *const *device_types; size_t n_device_types;      /* required, >= 1 */
    const char *const *depends_names; size_t n_depends_names;    /* -N */
    const char *const *depends_groups; size_t n_depends_groups;  /* -G */
    json_t *provides;              /* type-info artifact_provides (object) or NULL */
    json_t *depends;               /* type-info artifact_depends (object) or NULL */
    json_t *clears;                /* clears_artifact_provides (array) or NULL to omit */
    json_t *meta_data;             /* object, or NULL for no meta-data member */
    bool empty_meta_data;          /* write a 0-byte meta-data member (rootfs-image) */
    const char *const *files; size_t n_files;       /* payload file paths; stored by basename */
    const char *const *scripts; size_t n_scripts;   /* state script paths; stored by basename */
    molt_compression compression;
    const char *signing_key;       /* PEM private key path, or NULL for unsigned */
} molt_artifact_spec;

/* Write the artifact to out_path (written to a temporary sibling, then renamed). Payload files
 * are read twice (hash, then copy) and never held in memory. */
int molt_artifact_write(const molt_artifact_spec *spec, const char *out_path, molt_err *err);

/* SHA-256 of a regular file, streamed (e.g. for rootfs-image.checksum). */
int molt_artifact_file_sha256(const char *path, unsigned char ret_sha256[32], molt_err *err);

/* Add or replace manifest.sig in an existing artifact, copying every other member byte for byte.
 * in_path and out_path may be equal (the result replaces the input atomically). */
int molt_artifact_sign(const char *in_path, const char *out_path, const char *key_path,
                       molt_err *err);

#endif
