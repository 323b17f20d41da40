/* SPDX-License-Identifier: Apache-2.0 */
/* abi_minor means the descriptor layout a module fills, not the host functions it calls: the
 * test module sdk_all (tests/modules/native/sdk_all.c) declares minor 0 and uses set_sink only
 * when MOLT_HOST_HAS says the host has it. It is loaded by molt's loader, then driven through
 * Download and ArtifactInstall by a host table as a 1.0 host fills it (abi_minor 0, the set_sink
 * slot still reserved, NULL) and by one as this 1.1 host fills it: it runs on both, with and
 * without the sink. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <molt/module.h>

#include "host/native_host.h"
#include "util/fs.h"

#define PAYLOAD_LEN 200000

static char g_tmp[256], g_dest[4096], g_meta[8192], g_kv[64];
static size_t g_kv_len;
static unsigned char g_payload[PAYLOAD_LEN];
static size_t g_pos;
static int g_files;   /* next_file calls so far */
static int (*g_sink)(void *, const void *, size_t);
static void *g_sink_ctx;

static void h_log(const struct molt_host_api *h, int level, const char *fmt, ...)
{
    (void)h;
    (void)level;
    (void)fmt;
}

static void h_error(const struct molt_host_api *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void h_error(const struct molt_host_api *h, const char *fmt, ...)
{
    va_list ap;
    (void)h;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void h_progress(const struct molt_host_api *h, uint64_t done, uint64_t total)
{
    (void)h;
    (void)done;
    (void)total;
}

static int h_next_file(const struct molt_host_api *h, const char **ret_name, int64_t *ret_size)
{
    (void)h;
    if (g_files++ > 0)
        return 0;
    *ret_name = "payload.bin";
    *ret_size = PAYLOAD_LEN;
    return 1;
}

static int64_t h_read(const struct molt_host_api *h, void *buf, size_t len)
{
    (void)h;
    size_t n = PAYLOAD_LEN - g_pos < len ? PAYLOAD_LEN - g_pos : len;
    memcpy(buf, g_payload + g_pos, n);
    if (n > 0 && g_sink)
        g_sink(g_sink_ctx, g_payload + g_pos, n);
    g_pos += n;
    return (int64_t)n;
}

static int64_t h_read_block(const struct molt_host_api *h, const void **ret_buf)
{
    static unsigned char block[4096];
    *ret_buf = block;
    return h_read(h, block, sizeof block);
}

static const char *h_json(const struct molt_host_api *h)
{
    (void)h;
    return "{}";
}

static const char *h_meta(const struct molt_host_api *h)
{
    (void)h;
    return g_meta;
}

static const char *h_tmp(const struct molt_host_api *h)
{
    (void)h;
    return g_tmp;
}

static int h_kv_get(const struct molt_host_api *h, const char *key, void *buf, size_t cap,
                    size_t *ret_len)
{
    (void)h;
    if (strcmp(key, "sink") != 0 || g_kv_len == 0)
        return -9;   /* MOLT_ENOTFOUND */
    if (cap < g_kv_len)
        return -8;
    memcpy(buf, g_kv, g_kv_len);
    *ret_len = g_kv_len;
    return 0;
}

static int h_kv_set(const struct molt_host_api *h, const char *key, const void *value, size_t len)
{
    (void)h;
    (void)key;
    if (len > sizeof g_kv)
        return -8;
    memcpy(g_kv, value, len);
    g_kv_len = len;
    return 0;
}

static int h_set_sink(const struct molt_host_api *h, int (*sink)(void *, const void *, size_t),
                      void *ctx)
{
    (void)h;
    g_sink = sink;
    g_sink_ctx = ctx;
    return 0;
}

/* A host table as a host of minor `minor` fills it: the same size (1.1 gave a reserved slot a
 * meaning), set_sink only from 1.1 on. */
static struct molt_host_api host_of_minor(unsigned minor)
{
    struct molt_host_api h;
    memset(&h, 0, sizeof h);
    h.struct_size = sizeof h;
    h.abi_major = MOLT_MODULE_ABI_MAJOR;
    h.abi_minor = (uint16_t)minor;
    h.log = h_log;
    h.error = h_error;
    h.progress = h_progress;
    h.next_file = h_next_file;
    h.read = h_read;
    h.read_block = h_read_block;
    h.header_info = h_json;
    h.type_info = h_json;
    h.meta_data = h_meta;
    h.tmp_dir = h_tmp;
    h.work_dir = h_tmp;
    h.files_dir = h_tmp;
    h.kv_get = h_kv_get;
    h.kv_set = h_kv_set;
    if (minor >= 1)
        h.set_sink = h_set_sink;
    return h;
}

static void run_on(unsigned minor, const char *want_sink)
{
    const char *build = getenv("MOLT_BUILD_DIR");
    char so[4200], report[8400], *text = NULL;
    size_t len = 0;
    assert_non_null(build);
    snprintf(so, sizeof so, "%s/tests/modules/native/sdk_all.so", build);

    /* molt's own loader accepts it, and it says minor 0 */
    molt_native *n = NULL;
    molt_err e = {0};
    assert_int_equal(molt_native_load(&n, so, &e), 0);
    const struct molt_module_desc *d = molt_native_desc(n);
    assert_int_equal(d->abi_major, 1);
    assert_int_equal(d->abi_minor, 0);   /* so a 1.0 host loads it too */

    snprintf(g_tmp, sizeof g_tmp, "/tmp/molt-abi-minor.XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    snprintf(g_dest, sizeof g_dest, "%s/dest", g_tmp);
    assert_int_equal(molt_mkdir_p(g_dest, 0755, NULL), 0);
    snprintf(g_meta, sizeof g_meta, "{\"dest\": \"%s\", \"number\": 7, \"flag\": false, \"list\": []}",
             g_dest);
    for (size_t i = 0; i < PAYLOAD_LEN; i++)
        g_payload[i] = (unsigned char)(i * 7);
    g_pos = 0;
    g_files = 0;
    g_kv_len = 0;
    g_sink = NULL;

    struct molt_host_api host = host_of_minor(minor);
    void *st = NULL;
    assert_int_equal(d->init(&host, &st), 0);
    assert_int_equal(d->download(st), 0);
    assert_int_equal(d->artifact_install(st), 0);
    if (d->fini)
        d->fini(st);
    snprintf(report, sizeof report, "%s/sdk-all.txt", g_dest);
    assert_int_equal(molt_read_file(report, 4096, &text, &len, NULL), 0);
    assert_non_null(strstr(text, want_sink));
    free(text);
    molt_rm_rf(g_tmp, NULL);
    molt_native_free(n);
}

static void test_runs_on_a_1_0_host_without_the_sink(void **state)
{
    (void)state;
    run_on(0, "sink: none\n");
}

static void test_uses_the_sink_on_a_1_1_host(void **state)
{
    (void)state;
    run_on(1, "sink: used\n");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_on_a_1_0_host_without_the_sink),
        cmocka_unit_test(test_uses_the_sink_on_a_1_1_host),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
