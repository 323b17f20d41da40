/* SPDX-License-Identifier: Apache-2.0 */
/* libmolt-sdk: version, error messages, handing a failure to the host. */
#include "sdk_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *molt_sdk_version(void)
{
    return MOLT_SDK_VERSION_STR;
}

int molt_sdk_err_set(struct molt_sdk_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        molt_err_vformat(err->msg, sizeof err->msg, 0, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int molt_sdk_err_errno(struct molt_sdk_error *err, int errno_value, const char *fmt, ...)
{
    int code = molt_errno_code(errno_value);
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        molt_err_vformat(err->msg, sizeof err->msg, errno_value, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int molt_sdk_err_from(struct molt_sdk_error *err, const molt_err *e)
{
    if (err) {
        err->code = e->code;
        size_t n = strnlen(e->msg, sizeof err->msg - 1);   /* cut to the SDK's size */
        memcpy(err->msg, e->msg, n);
        err->msg[n] = '\0';
    }
    return e->code;
}

int molt_sdk_fail(const struct molt_host_api *host, const struct molt_sdk_error *err)
{
    int code = err && err->code < 0 ? err->code : MOLT_EMODULE;
    if (host && err && err->msg[0])
        host->error(host, "%s", err->msg);
    return code;
}
