/* SPDX-License-Identifier: Apache-2.0 */
/* The parsed header of a Mender Artifact v3 (molt_artifact_info) and the compression names
 * shared by the reader, the writer and molt-artifact. */
#include "artifact/artifact.h"

#include <stdlib.h>
#include <string.h>
#include <molt/error.h>

#include "util/compress_lib.h"

const char *molt_compression_name(molt_compression c)
{
    switch (c) {
    case MOLT_COMPRESSION_NONE: return "none";
    case MOLT_COMPRESSION_GZIP: return "gzip";
    case MOLT_COMPRESSION_XZ: return "xz";
    case MOLT_COMPRESSION_ZSTD: return "zstd";
    }
    return "unknown";
}

const char *molt_compression_suffix(molt_compression c)
{
    switch (c) {
    case MOLT_COMPRESSION_NONE: return "";
    case MOLT_COMPRESSION_GZIP: return ".gz";
    case MOLT_COMPRESSION_XZ: return ".xz";
    case MOLT_COMPRESSION_ZSTD: return ".zst";
    }
    return "";
}

int molt_compression_parse(const char *word, molt_compression *ret)
{
    static const struct {
        const char *word;
        molt_compression c;
    } words[] = {
        { "none", MOLT_COMPRESSION_NONE },
        { "gzip", MOLT_COMPRESSION_GZIP },
        { "xz", MOLT_COMPRESSION_XZ },
        { "lzma", MOLT_COMPRESSION_XZ },           /* mender-artifact's name for xz */
        { "zstd", MOLT_COMPRESSION_ZSTD },
        { "zstd_fastest", MOLT_COMPRESSION_ZSTD }, /* mender-artifact >= 3.10 levels */
        { "zstd_fast", MOLT_COMPRESSION_ZSTD },
        { "zstd_better", MOLT_COMPRESSION_ZSTD },
        { "zstd_best", MOLT_COMPRESSION_ZSTD },
    };
    if (!word || !ret)
        return MOLT_EINVAL;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(word, words[i].word) == 0) {
            *ret = words[i].c;
            return 0;
        }
    }
    return MOLT_EINVAL;
}

int molt_compression_load(molt_compression c, const char *what, molt_err *err)
{
    int r = c == MOLT_COMPRESSION_XZ ? molt_lzma_get(NULL, err)
            : c == MOLT_COMPRESSION_ZSTD ? molt_zstd_get(NULL, err) : 0;
    if (r < 0 && err)
        molt_err_prefix(err, "%s: ", what);
    return r;
}

molt_artifact_info *molt_artifact_info_new(void)
{
    return calloc(1, sizeof(molt_artifact_info));
}

void molt_artifact_info_free(molt_artifact_info *info)
{
    if (!info)
        return;
    free(info->header_member);
    free(info->name);
    free(info->group);
    free(info->payload_type);
    json_decref(info->depends_device_types);
    json_decref(info->depends_names);
    json_decref(info->depends_groups);
    json_decref(info->type_provides);
    json_decref(info->type_depends);
    json_decref(info->clears);
    json_decref(info->header_info);
    json_decref(info->type_info);
    json_decref(info->meta_data);
    for (size_t i = 0; i < info->n_scripts; i++) {
        free(info->scripts[i].name);
        free(info->scripts[i].data);
    }
    free(info->scripts);
    for (size_t i = 0; i < info->n_manifest; i++)
        free(info->manifest[i].name);
    free(info->manifest);
    free(info->verified_by);
    free(info);
}

size_t molt_artifact_info_payload_count(const molt_artifact_info *info)
{
    size_t n = 0;
    if (!info)
        return 0;
    for (size_t i = 0; i < info->n_manifest; i++) {
        if (strncmp(info->manifest[i].name, "data/0000/", 10) == 0)
            n++;
    }
    return n;
}

bool molt_artifact_info_is_rootfs(const molt_artifact_info *info)
{
    return info && info->payload_type && strcmp(info->payload_type, "rootfs-image") == 0;
}
