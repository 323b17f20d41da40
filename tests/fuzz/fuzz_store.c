/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the store's typed record (core/state/store.c): the input is the store's JSON
 * data (the part after the checksummed header). A document the record accepts must save into one
 * that loads back, with the same document again: a store molt writes must be one it can read
 * after a power cut. Anything refused must be refused as MOLT_ECORRUPT naming the store. The
 * record's text (molt_record_to_text, what the store saves) must be the bytes of jansson's sorted
 * dump of its document, and so must util/json.h's dump of it. The
 * target aborts otherwise. Runs under libFuzzer (MOLT_FUZZ) and over the committed corpus (the
 * stores of tests/store-9f1b70b, and version 2 records) as a test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/store.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static molt_module_kind kind_of(void *ctx, const char *path)
{
    (void)ctx;
    size_t n = strlen(path);
    return n > 3 && strcmp(path + n - 3, ".so") == 0 ? MOLT_MODULE_NATIVE : MOLT_MODULE_EXEC;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!doc)
        return 0;
    molt_record *rec = NULL, *back = NULL;
    molt_err e = {0};
    if (molt_record_from_json("fuzz", doc, kind_of, NULL, &rec, &e) != 0) {
        if (e.code != MOLT_ECORRUPT || strncmp(e.msg, "store fuzz: ", 12) != 0)
            abort();
        json_decref(doc);
        return 0;
    }
    json_t *saved = molt_record_to_json(rec);
    if (!saved)
        abort();
    /* Saved, the deployment is of the current version: no kind to infer any more. */
    if (molt_record_from_json("fuzz", saved, NULL, NULL, &back, &e) != 0)
        abort();
    json_t *again = molt_record_to_json(back);
    if (!again || !json_equal(saved, again))
        abort();
    /* The store writes its own dump of the document: the bytes jansson's sorted dump made. */
    char *want = json_dumps(saved, JSON_COMPACT | JSON_SORT_KEYS), *got = NULL;
    size_t len = 0;
    if (!want || molt_json_dump_sorted(saved, 0, 65536 * 8, &got, &len) != 0 ||
        len != strlen(want) || memcmp(got, want, len) != 0)
        abort();
    free(got);
    /* The record's own text is that dump: keys in byte order, compact, jansson's escapes. */
    if (molt_record_to_text(rec, &got, &len) != 0 || len != strlen(want) ||
        memcmp(got, want, len) != 0)
        abort();
    free(got);
    free(want);
    json_decref(again);
    json_decref(saved);
    molt_record_free(back);
    molt_record_free(rec);
    json_decref(doc);
    return 0;
}
