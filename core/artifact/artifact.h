/* SPDX-License-Identifier: Apache-2.0 */
/* Mender Artifact format v3: the parsed header of an artifact (docs/reference §1). Shared by the
 * streaming reader, the writer and every consumer (state machine, module hosts, molt-artifact). */
#ifndef MOLT_ARTIFACT_ARTIFACT_H
#define MOLT_ARTIFACT_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "util/err.h"

typedef enum molt_compression {
    MOLT_COMPRESSION_NONE = 0,
    MOLT_COMPRESSION_GZIP,
    MOLT_COMPRESSION_XZ,
    MOLT_COMPRESSION_ZSTD,
} molt_compression;

/* "none", "gzip", "xz", "zstd" */
const char *molt_compression_name(molt_compression c);
/* "", ".gz", ".xz", ".zst" */
const char *molt_compression_suffix(molt_compression c);
/* Parse a --compression word; accepts mender-artifact's "lzma" for xz and "zstd_*" for zstd.
 * Returns 0 or MOLT_EINVAL. */
int molt_compression_parse(const char *word, molt_compression *ret);
/* Load the library that c needs (liblzma for xz, libzstd for zstd: util/compress_lib.h; gzip
 * and none need nothing) before a libarchive filter for c is added. 0, or MOLT_EUNSUPPORTED
 * with "<what>: xz compression needs liblzma, which cannot be loaded ...". */
int molt_compression_load(molt_compression c, const char *what, molt_err *err);

/* Limits on untrusted input (bytes). Every header member, the manifest and scripts are held in
 * memory, so each is capped; payload files are streamed and never held. */
#define MOLT_ARTIFACT_MAX_MANIFEST      (1u << 20)  /* 1 MiB */
#define MOLT_ARTIFACT_MAX_SIGNATURE     4096
#define MOLT_ARTIFACT_MAX_HEADER_MEMBER (1u << 20)  /* one member inside header.tar */
#define MOLT_ARTIFACT_MAX_HEADER_TOTAL  (8u << 20)  /* all of header.tar, uncompressed */
#define MOLT_ARTIFACT_MAX_FILES         1024        /* manifest lines / payload files */
#define MOLT_ARTIFACT_MAX_NAME          255         /* a member or payload file name */

typedef struct molt_manifest_entry {
    char *name;                 /* as listed: "version", "header.tar.gz", "data/0000/<file>" */
    unsigned char sha256[32];
    bool seen;                  /* set by the reader once the member was read and matched */
} molt_manifest_entry;

typedef struct molt_artifact_script {
    char *name;                 /* e.g. "ArtifactInstall_Enter_00" (without "scripts/") */
    unsigned char *data;
    size_t size;
} molt_artifact_script;

/* Everything known about an artifact before its payload is read. Owned by the reader (or by
 * whoever called molt_artifact_info_new); strings and JSON are owned by the struct. */
typedef struct molt_artifact_info {
    int format_version;          /* 3 */
    molt_compression compression;
    char *header_member;         /* "header.tar.gz" etc. as found */

    char *name;                  /* artifact_provides.artifact_name, never NULL */
    char *group;                 /* artifact_provides.artifact_group, NULL if none */
    char *payload_type;          /* header-info payloads[0].type; NULL for an empty payload */

    json_t *depends_device_types; /* array of strings, non-empty */
    json_t *depends_names;        /* array of strings or NULL */
    json_t *depends_groups;       /* array of strings or NULL */
    json_t *type_provides;        /* object string->string, never NULL (maybe empty) */
    json_t *type_depends;         /* object string->string, never NULL (maybe empty) */
    json_t *clears;               /* array of glob strings, or NULL when absent */

    json_t *header_info;          /* the parsed documents as found */
    json_t *type_info;
    json_t *meta_data;            /* object, or NULL when absent or empty */

    molt_artifact_script *scripts;
    size_t n_scripts;

    molt_manifest_entry *manifest;
    size_t n_manifest;

    bool is_signed;               /* manifest.sig present */
    bool signature_verified;      /* verified against one of the configured keys */
    char *verified_by;            /* path of the key that verified, or NULL */
} molt_artifact_info;

molt_artifact_info *molt_artifact_info_new(void);
void molt_artifact_info_free(molt_artifact_info *info);

/* Number of payload files listed in the manifest ("data/0000/..." entries). */
size_t molt_artifact_info_payload_count(const molt_artifact_info *info);

/* Whether this is a rootfs-image payload. */
bool molt_artifact_info_is_rootfs(const molt_artifact_info *info);

#endif
