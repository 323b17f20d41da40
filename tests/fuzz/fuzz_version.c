/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the version schemes of the downgrade policy (core/state/version.c), whose
 * input is an artifact's provide: untrusted when no verification key is configured. The input is
 * two versions separated by the first newline; for each scheme both are checked and, when both
 * are valid, compared both ways: the comparison must be antisymmetric and reflexive, or the
 * target aborts. Runs under libFuzzer (MOLT_FUZZ) and over the committed corpus as a test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *b = strchr(buf, '\n');
    if (b)
        *b++ = '\0';
    else
        b = buf + strlen(buf);
    static const molt_version_scheme schemes[] = {MOLT_VERSION_INTEGER, MOLT_VERSION_SEMVER,
                                                  MOLT_VERSION_DEBIAN};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        molt_err e = {0};
        int ab = 7, ba = 7, aa = 7;
        int va = molt_version_check(schemes[i], buf, &e) == 0;
        int vb = molt_version_check(schemes[i], b, &e) == 0;
        int r1 = molt_version_compare(schemes[i], buf, b, &ab, &e);
        int r2 = molt_version_compare(schemes[i], b, buf, &ba, &e);
        if ((r1 == 0) != (va && vb) || (r2 == 0) != (va && vb))
            abort();   /* compare must accept exactly what check accepts */
        if (r1 == 0 && sign(ab) != -sign(ba))
            abort();
        if (va && (molt_version_compare(schemes[i], buf, buf, &aa, &e) != 0 || aa != 0))
            abort();
    }
    free(buf);
    return 0;
}
