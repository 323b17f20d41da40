/* SPDX-License-Identifier: Apache-2.0 */
/* libmolt-sdk: helpers for native module authors (logging through the host, errors with a message,
 * and the file and meta-data helpers of <molt/fileops.h> and <molt/json.h>). Link -lmolt-sdk
 * (pkg-config molt-sdk, or find_package(molt-sdk) and molt::molt-sdk). C99, usable from C++. */
#ifndef MOLT_SDK_H
#define MOLT_SDK_H

#include <molt/error.h>
#include <molt/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The SDK's version; its major is the ABI major (libmolt-sdk.so.<major>). */
#define MOLT_SDK_VERSION_MAJOR MOLT_MODULE_ABI_MAJOR
#define MOLT_SDK_VERSION_MINOR MOLT_MODULE_ABI_MINOR

/* The version of the libmolt-sdk the module runs with ("1.1"), static. */
const char *molt_sdk_version(void);

/* What an SDK function that failed says: the code it returned and a message naming the file or
 * key and the reason. Every SDK function taking one accepts NULL. */
#define MOLT_SDK_ERROR_MSG_MAX 512
struct molt_sdk_error {
    int code;                           /* 0 or a negative MOLT_E* code */
    char msg[MOLT_SDK_ERROR_MSG_MAX];
};

/* Fill err (may be NULL) with code and a printf-style message naming what failed; returns code,
 * so that a module's own helpers can `return molt_sdk_err_set(err, MOLT_EINVAL, "...", ...)`. */
int molt_sdk_err_set(struct molt_sdk_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The same for a failed operating-system call: the message is the printf-style one followed by
 * ": <strerror(errno_value)>", and the code is the one molt gives errno_value: MOLT_ESPACE for
 * ENOSPC and EDQUOT (a full disk or quota), MOLT_ENOMEM for ENOMEM, MOLT_EIO for any other.
 * `return molt_sdk_err_errno(err, errno, "cannot open %s", path);` */
int molt_sdk_err_errno(struct molt_sdk_error *err, int errno_value, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Hand an SDK failure to the host as the current call's error message (host->error) and return
 * its code, so that a state function can `return molt_sdk_fail(host, &err);`. */
int molt_sdk_fail(const struct molt_host_api *host, const struct molt_sdk_error *err);

/* Logging through the host: "module <name>: <message>" in molt's log and the deployment log. */
#define molt_sdk_log_error(host, ...) ((host)->log((host), MOLT_MODULE_LOG_ERROR, __VA_ARGS__))
#define molt_sdk_log_warning(host, ...) ((host)->log((host), MOLT_MODULE_LOG_WARNING, __VA_ARGS__))
#define molt_sdk_log_info(host, ...) ((host)->log((host), MOLT_MODULE_LOG_INFO, __VA_ARGS__))
#define molt_sdk_log_debug(host, ...) ((host)->log((host), MOLT_MODULE_LOG_DEBUG, __VA_ARGS__))

#ifdef __cplusplus
}
#endif

#include <molt/fileops.h>
#include <molt/json.h>

#endif
