/* SPDX-License-Identifier: Apache-2.0 */
/* The rootfs-image module's delta path (payload type rootfs-delta, docs/delta.md). */
#ifndef ROOTFS_DELTA_H
#define ROOTFS_DELTA_H

#include "rootfs.h"

#define ROOTFS_DELTA_TYPE "rootfs-delta"

/* What a rootfs-delta artifact says of itself: the base and the target image (sha256 as 64
 * lowercase hex digits, sizes in bytes). */
typedef struct rootfs_delta_info {
    char base_sha[65], target_sha[65];
    int64_t base_size, target_size;
} rootfs_delta_info;

/* Read it from the payload's type-info (artifact_depends/artifact_provides
 * rootfs-image.checksum) and meta-data ({"rootfs-delta": {"format": "zstd-patch-from",
 * "base_size": N, "target_size": M}}). MOLT_EFORMAT naming what is missing or wrong;
 * *ret written only on success. */
int rootfs_delta_parse(const char *type_info, const char *meta_data, rootfs_delta_info *ret,
                       struct molt_sdk_error *err);

/* Download of a rootfs-delta payload (the host's current file, size bytes): check that the
 * partition at base_path holds the base (SHA-256 of its first base_size bytes), refusing before
 * any write when it does not; rebuild the new image into the partition at path; check its
 * SHA-256 against the target's; fsync. On any failure the caller must not record the download
 * (the bootloader is then never armed for path). */
int rootfs_delta_write(const struct molt_host_api *host, const rootfs_config *cfg,
                       const char *base_path, const char *path, int64_t size,
                       struct molt_sdk_error *err);

#endif
