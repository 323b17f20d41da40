/* SPDX-License-Identifier: Apache-2.0 */
/* Download progress for `molt install`: a redrawn bar (bytes, rate, time left) on a terminal,
 * plain lines every 10% otherwise. */
#ifndef MOLT_CLI_PROGRESS_H
#define MOLT_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct molt_progress molt_progress;

/* Report to out (borrowed); tty selects the bar. NULL when out of memory. */
molt_progress *molt_progress_new(FILE *out, bool tty);

/* A molt_progress_fn (state/machine.h): ctx is the molt_progress. */
void molt_progress_update(void *ctx, int64_t bytes, int64_t total);

/* Finish the bar's line (if one was drawn). Accepts NULL. */
void molt_progress_free(molt_progress *p);

#endif
