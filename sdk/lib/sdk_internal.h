/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the libmolt-sdk sources; not installed, not exported from the library. */
#ifndef MOLT_SDK_INTERNAL_H
#define MOLT_SDK_INTERNAL_H

/* libmolt-sdk is built with hidden visibility; what the public headers declare is exported
 * (and libmolt-sdk.sym lists exactly that, tests/integration/test_sdk_abi.sh compares). */
#pragma GCC visibility push(default)
#include <molt/sdk.h>
#pragma GCC visibility pop

#define MOLT_SDK_HIDDEN __attribute__((visibility("hidden")))

/* The same, appending ": <strerror(errno_value)>"; ENOSPC/EDQUOT give MOLT_ESPACE. */
MOLT_SDK_HIDDEN int molt_sdk_err_errno(struct molt_sdk_error *err, int errno_value,
                                       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
