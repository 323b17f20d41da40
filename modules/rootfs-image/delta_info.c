/* SPDX-License-Identifier: Apache-2.0 */
/* The rootfs-delta artifact's description of itself (docs/delta.md): the base and target image
 * checksums from type-info, the format and sizes from meta-data. Input from the artifact header:
 * every value is checked (tests/test_delta_parse.c, fuzz_rootfs_delta_parse.c). */
#include "delta.h"

#include <stdlib.h>
#include <string.h>

static int hex64(const char *s, char out[65])
{
    if (!s || strlen(s) != 64)
        return -1;
    for (int i = 0; i < 64; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
    }
    memcpy(out, s, 65);
    return 0;
}

int rootfs_delta_parse(const char *type_info, const char *meta_data, rootfs_delta_info *ret,
                       struct molt_sdk_error *err)
{
    static const char *const ptr[2] = {"/artifact_depends/rootfs-image.checksum",
                                       "/artifact_provides/rootfs-image.checksum"};
    rootfs_delta_info d = {0};
    char *out[2] = {NULL, NULL}, *format = NULL;
    int r = 0;
    for (int i = 0; i < 2 && r == 0; i++) {
        r = molt_sdk_json_string(type_info, ptr[i], &out[i], NULL);
        if (r < 0 || hex64(out[i], i ? d.target_sha : d.base_sha) < 0)
            r = rootfs_err(err, MOLT_EFORMAT, "the rootfs-delta artifact's type-info lacks %s "
                           "as 64 lowercase hex digits (sha256)", ptr[i]);
    }
    if (r == 0 && (molt_sdk_json_string(meta_data, "/rootfs-delta/format", &format, NULL) < 0 ||
                   strcmp(format, "zstd-patch-from") != 0))
        r = rootfs_err(err, MOLT_EFORMAT, "the rootfs-delta artifact's meta-data "
                       "/rootfs-delta/format is %s%s%s, this module applies zstd-patch-from",
                       format ? "\"" : "", format ? format : "missing", format ? "\"" : "");
    if (r == 0 && (molt_sdk_json_int(meta_data, "/rootfs-delta/base_size", &d.base_size,
                                     NULL) < 0 ||
                   molt_sdk_json_int(meta_data, "/rootfs-delta/target_size", &d.target_size,
                                     NULL) < 0 ||
                   d.base_size <= 0 || d.target_size <= 0))
        r = rootfs_err(err, MOLT_EFORMAT, "the rootfs-delta artifact's meta-data lacks "
                       "/rootfs-delta/base_size and target_size as positive integers");
    free(out[0]);
    free(out[1]);
    free(format);
    if (r == 0)
        *ret = d;
    return r;
}
