/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for molt's JSON code (core/util/json.c), against jansson's: molt_json_loadb must
 * give what json_loadb(JSON_REJECT_DUPLICATES) gives, the same value or a refusal; whatever
 * loads, molt_json_dump_sorted must write as the bytes of jansson's sorted compact dump, and
 * that text must load back to the same value. The target aborts otherwise. Runs under
 * libFuzzer (MOLT_FUZZ) and over the committed corpus as a test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const char *text = (const char *)data;
    json_t *want = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *got = molt_json_loadb(text, size, NULL);
    if (!want != !got || (want && !json_equal(want, got)))
        abort();
    if (got) {
        char *jansson = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS), *mine = NULL;
        size_t len = 0;
        if (!jansson || molt_json_dump_sorted(got, 0, 8 * 65536, &mine, &len) != 0 ||
            len != strlen(jansson) || memcmp(mine, jansson, len) != 0)
            abort();
        json_t *back = molt_json_loadb(mine, len, NULL);
        if (!back || !json_equal(back, got))
            abort();
        json_decref(back);
        free(mine);
        free(jansson);
    }
    json_decref(got);
    json_decref(want);
    return 0;
}
