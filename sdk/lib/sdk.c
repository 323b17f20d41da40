/* SPDX-License-Identifier: Apache-2.0 */
/* libmolt-sdk: version, error messages, handing a failure to the host. */
#include "sdk_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *molt_sdk_version(void)
{
    return MOLT_SDK_VERSION_STR;
}

static void vset(struct molt_sdk_error *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vset(struct molt_sdk_error *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int molt_sdk_err_set(struct molt_sdk_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, code, fmt, ap);
        va_end(ap);
    }
    return code;
}

int molt_sdk_err_errno(struct molt_sdk_error *err, int errno_value, const char *fmt, ...)
{
    int code = errno_value == ENOSPC || errno_value == EDQUOT ? MOLT_ESPACE : MOLT_EIO;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vset(err, code, fmt, ap);
        va_end(ap);
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(errno_value));
    }
    return code;
}

int molt_sdk_fail(const struct molt_host_api *host, const struct molt_sdk_error *err)
{
    int code = err && err->code < 0 ? err->code : MOLT_EMODULE;
    if (host && err && err->msg[0])
        host->error(host, "%s", err->msg);
    return code;
}
