/* SPDX-License-Identifier: Apache-2.0 */
/* A native module that only exists to be loaded: its descriptor's ABI fields come from the build
 * (tests/CMakeLists.txt builds one variant per refusal the host must make):
 *   PROBE_MAJOR, PROBE_MINOR   abi_major / abi_minor (default: this SDK's)
 *   PROBE_SIZE                 struct_size (default: the real size)
 *   PROBE_NO_INSTALL           artifact_install is NULL
 *   PROBE_TYPE, PROBE_NAME     the payload type and name claimed
 *   PROBE_CAPS                 capabilities (default MOLT_CAP_STREAMING)
 *   PROBE_CRASH                its constructor aborts (dlopen never returns)
 * Its download streams but returns at once without reading anything; every other function but
 * artifact_install is NULL. */
#include <molt/module.h>

#ifdef PROBE_CRASH
#include <stdlib.h>
__attribute__((constructor)) static void crash(void)
{
    abort();
}
#endif

#ifndef PROBE_MAJOR
#define PROBE_MAJOR MOLT_MODULE_ABI_MAJOR
#endif
#ifndef PROBE_MINOR
#define PROBE_MINOR MOLT_MODULE_ABI_MINOR
#endif
#ifndef PROBE_SIZE
#define PROBE_SIZE sizeof(struct molt_module_desc)
#endif
#ifndef PROBE_TYPE
#define PROBE_TYPE "probe"
#endif
#ifndef PROBE_NAME
#define PROBE_NAME "probe"
#endif
#ifndef PROBE_CAPS
#define PROBE_CAPS MOLT_CAP_STREAMING
#endif

static int init(const struct molt_host_api *host, void **ret_state)
{
    *ret_state = 0;
    return 0;
}

static int ok(void *state)
{
    return 0;
}

static const char *const types[] = {PROBE_TYPE, 0};

static const struct molt_module_desc desc = {
    .struct_size = PROBE_SIZE,
    .abi_major = PROBE_MAJOR,
    .abi_minor = PROBE_MINOR,
    .name = PROBE_NAME,
    .version = "0.1",
    .payload_types = types,
    .capabilities = PROBE_CAPS,
    .init = init,
    .download = ok,
#ifndef PROBE_NO_INSTALL
    .artifact_install = ok,
#endif
};

const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
