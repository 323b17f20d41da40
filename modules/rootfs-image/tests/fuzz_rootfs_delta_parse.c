/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for rootfs_delta_parse (delta_info.c): the input is the type-info JSON, a NUL byte,
 * then the meta-data JSON, as an artifact header hands them to the module. A success must give
 * two 64-digit lowercase hex checksums and positive sizes; a failure a message. Runs under
 * libFuzzer (MOLT_FUZZ) and over tests/fuzz/corpus/rootfs_delta_parse as an ordinary test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = 0;
    const char *ti = buf, *md = buf + strlen(buf) + 1;
    if (md > buf + size)
        md = "{}";
    rootfs_delta_info d;
    struct molt_sdk_error err = {0};
    int r = rootfs_delta_parse(ti, md, &d, &err);
    if (r == 0) {
        if (strlen(d.base_sha) != 64 || strlen(d.target_sha) != 64 || d.base_size <= 0 ||
            d.target_size <= 0 || strspn(d.base_sha, "0123456789abcdef") != 64)
            abort();
    } else if (r != MOLT_EFORMAT || err.code != r || !err.msg[0]) {
        abort();
    }
    free(buf);
    return 0;
}
