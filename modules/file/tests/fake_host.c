/* SPDX-License-Identifier: Apache-2.0 */
/* The fake host of fake_host.h. */
#include "fake_host.h"

#include <string.h>

const char *fake_roots, *fake_roots0;
static const unsigned char *payload;
static size_t payload_len, payload_off;
static int payload_fail;

void fake_payload(const void *data, size_t len, int fail)
{
    payload = data;
    payload_len = len;
    payload_off = 0;
    payload_fail = fail;
}

static void h_log(const struct molt_host_api *h, int level, const char *fmt, ...)
{
    (void)h;
    (void)level;
    (void)fmt;
}

static void h_progress(const struct molt_host_api *h, uint64_t done, uint64_t total)
{
    (void)h;
    (void)done;
    (void)total;
}

static int64_t h_read_block(const struct molt_host_api *h, const void **buf)
{
    (void)h;
    size_t n = payload_len - payload_off < 1000 ? payload_len - payload_off : 1000;
    if (n == 0)
        return payload_fail;
    *buf = payload + payload_off;
    payload_off += n;
    return (int64_t)n;
}

static const char *h_config_get(const struct molt_host_api *h, const char *key)
{
    (void)h;
    if (strcmp(key, "allowed_roots") == 0)
        return fake_roots;
    if (strcmp(key, "allowed_roots.0") == 0)
        return fake_roots0;
    return NULL;
}

const struct molt_host_api fake_host = {
    .struct_size = sizeof(struct molt_host_api),
    .abi_major = MOLT_MODULE_ABI_MAJOR,
    .log = h_log,
    .progress = h_progress,
    .read_block = h_read_block,
    .config_get = h_config_get,
};
