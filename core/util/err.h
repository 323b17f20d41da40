/* SPDX-License-Identifier: Apache-2.0 */
/* Error reporting for the core: a code plus a message a person can act on. */
#ifndef MOLT_UTIL_ERR_H
#define MOLT_UTIL_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <molt/error.h>

#define MOLT_ERR_MSG_MAX 1024

/* Filled by a failing function; the caller owns it (usually on the stack).
 * Functions accept a NULL molt_err when the caller does not want the message.
 * It is the SDK's struct molt_sdk_error (<molt/sdk.h>) with room for a longer message (the
 * SDK's 512 bytes are frozen by its ABI; the core prefixes context): the same two fields, filled
 * by the same code (molt_err_vformat, molt_errno_code). libmolt-sdk runs the core's helpers
 * (util/durable.c, util/rmtree.c) on a molt_err and hands it over cut to 512 bytes
 * (molt_sdk_err_from, sdk/lib/sdk_internal.h). */
typedef struct molt_err {
    int code;                    /* 0 or a MOLT_E* code */
    char msg[MOLT_ERR_MSG_MAX];  /* what failed, on which file or key, expected vs actual */
} molt_err;

/* Set err to code and a printf-formatted message; returns code so callers can
 * `return molt_err_set(err, MOLT_EFORMAT, "...")`. err may be NULL. */
int molt_err_set(molt_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like molt_err_set, appending ": <strerror(errno_value)>". A code of MOLT_EIO (an operating
 * system call failed) is made precise by molt_errno_code: a full disk is MOLT_ESPACE. */
int molt_err_errno(molt_err *err, int code, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The MOLT_E* code of an operating-system error, the one mapping of the core and libmolt-sdk
 * (molt_sdk_err_errno): ENOSPC and EDQUOT are MOLT_ESPACE, ENOMEM is MOLT_ENOMEM, any other
 * errno MOLT_EIO. */
int molt_errno_code(int errno_value);

/* The one message formatter: fmt into msg (cap bytes, always terminated), then
 * ": <strerror(errno_value)>" unless errno_value is 0. */
void molt_err_vformat(char *msg, size_t cap, int errno_value, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Prepend context to an existing message ("reading header.tar.gz: " + old message); returns
 * err->code (or MOLT_EINVAL if err is NULL). */
int molt_err_prefix(molt_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reset to "no error". */
void molt_err_clear(molt_err *err);

#endif
