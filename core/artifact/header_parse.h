/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing header.tar[.gz|.xz|.zst] (docs/reference §1.5) from memory, after its checksum matched. */
#ifndef MOLT_ARTIFACT_HEADER_PARSE_H
#define MOLT_ARTIFACT_HEADER_PARSE_H

#include <stddef.h>
#include "artifact/artifact.h"
#include "util/err.h"

/* At most this many state scripts in one artifact. */
#define MOLT_ARTIFACT_MAX_SCRIPTS 256

/* Decompress (c, magic bytes checked) and parse the header tar held in data[0..len): entries
 * header-info, scripts/..., headers/0000/type-info, headers/0000/meta-data in that order, JSON
 * parsed strictly, sizes limited (MOLT_ARTIFACT_MAX_HEADER_MEMBER per entry,
 * MOLT_ARTIFACT_MAX_HEADER_TOTAL in all, checked before anything is allocated). Fills name,
 * group, payload_type, depends_*, type_*, clears, header_info, type_info, meta_data and scripts
 * of info. member is the outer member's name, for messages. Errors: MOLT_EFORMAT,
 * MOLT_EUNSUPPORTED, MOLT_ELIMIT, naming member, the entry and the key. On failure info may
 * hold some fields; the caller frees it. */
int molt_header_parse(const void *data, size_t len, molt_compression c, const char *member,
                      molt_artifact_info *info, molt_err *err);

/* Whether name (without "scripts/") is a valid artifact state script name:
 * Artifact<Install|Reboot|Commit|Rollback|RollbackReboot|Failure>_<Enter|Leave|Error>_NN[_desc]. */
bool molt_header_script_name_ok(const char *name);

#endif
