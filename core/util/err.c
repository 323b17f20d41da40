/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes and messages. */
#include "util/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *molt_strerror(int code)
{
    switch (code) {
    case MOLT_OK: return "success";
    case MOLT_EINVAL: return "invalid argument";
    case MOLT_ENOMEM: return "out of memory";
    case MOLT_EIO: return "input/output error";
    case MOLT_EFORMAT: return "malformed input";
    case MOLT_ECHECKSUM: return "checksum mismatch";
    case MOLT_ESIGNATURE: return "signature error";
    case MOLT_EUNSUPPORTED: return "not supported";
    case MOLT_ELIMIT: return "limit exceeded";
    case MOLT_ENOTFOUND: return "not found";
    case MOLT_EDEPENDS: return "dependencies not met";
    case MOLT_ETIMEOUT: return "timed out";
    case MOLT_EPROTOCOL: return "protocol error";
    case MOLT_ESTATE: return "wrong state";
    case MOLT_ENET: return "network error";
    case MOLT_ETLS: return "TLS error";
    case MOLT_ECANCELED: return "canceled";
    case MOLT_ECORRUPT: return "corrupt data";
    case MOLT_EMODULE: return "update module failed";
    case MOLT_ECONFIG: return "configuration error";
    case MOLT_ESPACE: return "not enough space";
    case MOLT_ETEMP: return "temporarily unavailable, try again later";
    default: return "unknown error";
    }
}

int molt_errno_code(int errno_value)
{
    switch (errno_value) {
    case ENOSPC:
    case EDQUOT:
        return MOLT_ESPACE;
    case ENOMEM:
        return MOLT_ENOMEM;
    default:
        return MOLT_EIO;
    }
}

void molt_err_vformat(char *msg, size_t cap, int errno_value, const char *fmt, va_list ap)
{
    if (cap == 0)
        return;
    int n = vsnprintf(msg, cap, fmt, ap);
    if (n < 0)
        msg[0] = '\0';
    else if (errno_value && (size_t)n < cap)
        snprintf(msg + n, cap - (size_t)n, ": %s", strerror(errno_value));
}

int molt_err_set(molt_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    molt_err_vformat(err->msg, sizeof err->msg, 0, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

int molt_err_errno(molt_err *err, int code, int errno_value, const char *fmt, ...)
{
    if (code == MOLT_EIO)
        code = molt_errno_code(errno_value);
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    molt_err_vformat(err->msg, sizeof err->msg, errno_value, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

int molt_err_prefix(molt_err *err, const char *fmt, ...)
{
    if (!err)
        return MOLT_EINVAL;
    char prefix[MOLT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t lp = strlen(prefix), lm = strlen(err->msg);
    if (lp >= sizeof err->msg)
        lp = sizeof err->msg - 1;
    if (lp + lm >= sizeof err->msg)
        lm = sizeof err->msg - 1 - lp;
    memmove(err->msg + lp, err->msg, lm);
    memcpy(err->msg, prefix, lp);
    err->msg[lp + lm] = '\0';
    return err->code ? err->code : MOLT_EINVAL;
}

void molt_err_clear(molt_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
