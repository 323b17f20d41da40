/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the daemon's control line (core/state/control.c): the bytes any local process
 * may send to the control socket before its credentials are checked. The input is the line as
 * read (at most MOLT_CONTROL_MAX bytes, as molt_control_serve reads); it is parsed in a buffer of
 * exactly its size (ASan catches a read past it) and the answer must be one of the three lines.
 * Runs under libFuzzer (MOLT_FUZZ) and over the committed corpus as a test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MOLT_CONTROL_MAX)
        size = MOLT_CONTROL_MAX;
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    molt_control_cmd c = molt_control_parse(buf, size);
    if (c != MOLT_CONTROL_UNKNOWN && c != MOLT_CONTROL_CHECK_UPDATE &&
        c != MOLT_CONTROL_SEND_INVENTORY)
        abort();
    /* A known command is exactly its word, then the end or a line break. */
    size_t n = strlen(c == MOLT_CONTROL_CHECK_UPDATE ? "check-update" : "send-inventory");
    if (c != MOLT_CONTROL_UNKNOWN && (size < n || (size > n && buf[n] != '\r' && buf[n] != '\n')))
        abort();
    const char *a = molt_control_answer(c, 0);
    if (strcmp(a, "ok\n") != 0 && strcmp(a, "error unknown command\n") != 0)
        abort();
    free(buf);
    return 0;
}
