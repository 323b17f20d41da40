/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the libmolt-sdk sources; not installed, not exported from the library. */
#ifndef MOLT_SDK_INTERNAL_H
#define MOLT_SDK_INTERNAL_H

/* libmolt-sdk is built with hidden visibility; what the public headers declare is exported
 * (and libmolt-sdk.sym lists exactly that, tests/integration/test_sdk_abi.sh compares). */
#pragma GCC visibility push(default)
#include <molt/sdk.h>
#pragma GCC visibility pop

#include "util/err.h"

#define MOLT_SDK_HIDDEN __attribute__((visibility("hidden")))

/* The SDK's helpers are the core's (util/durable.c, util/rmtree.c, util/err.c, compiled in):
 * they fill a molt_err, which this hands over (message cut to the SDK's size); returns its code. */
MOLT_SDK_HIDDEN int molt_sdk_err_from(struct molt_sdk_error *err, const molt_err *e);

#endif
