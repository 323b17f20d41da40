/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the two-slot record files' check (core/util/slots.c), which reads the store
 * (<data_dir>/store.slots) after a power cut or damage. The input is one slot's bytes. The
 * check must answer 1 (a record, wholly inside the slot), 0 (all-zero header) or -1 (with a
 * reason), the same each time; and a record it accepts, written by molt_slots_write into a new
 * file and read back, must come back byte for byte. The target aborts otherwise. Runs under
 * libFuzzer (MOLT_FUZZ) and over the committed corpus as a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/slots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1u << 20)
        return 0;
    unsigned long long seq = 0, seq2 = 0;
    const unsigned char *rec = NULL, *rec2 = NULL;
    size_t len = 0, len2 = 0;
    char why[160] = "", why2[160] = "";
    int r = molt_slots_check(data, size, &seq, &rec, &len, why, sizeof why);
    int r2 = molt_slots_check(data, size, &seq2, &rec2, &len2, why2, sizeof why2);
    if (r != r2 || strcmp(why, why2) != 0)
        abort();
    if (r == -1 && why[0] == '\0')
        abort();
    if (r == 0 && size >= MOLT_SLOTS_HEADER) {
        for (size_t i = 0; i < MOLT_SLOTS_HEADER; i++)
            if (data[i])
                abort();
    }
    if (r != 1)
        return 0;
    if (rec != data + MOLT_SLOTS_HEADER || len > size - MOLT_SLOTS_HEADER || seq != seq2 ||
        len != len2)
        abort();
    char path[] = "/tmp/fuzz-slots-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    close(fd);
    unlink(path); /* molt_slots_write makes a new file */
    molt_err e = {0};
    char *back = NULL;
    size_t back_len = 0;
    if (molt_slots_write(path, rec, len, false, &e) != 0 ||
        molt_slots_read(path, size, &back, &back_len, NULL, &e) != 0 || back_len != len ||
        memcmp(back, rec, len) != 0)
        abort();
    free(back);
    unlink(path);
    return 0;
}
