/* SPDX-License-Identifier: Apache-2.0 */
/* JSON helpers the parsers of untrusted and stored documents share (jansson). */
#ifndef MOLT_UTIL_JSON_H
#define MOLT_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "util/err.h"

/* The first key of the object obj that is not in allowed (a NULL-terminated list), or NULL when
 * every key is allowed (or obj is not an object). The key is borrowed from obj. */
const char *molt_json_unknown_key(const json_t *obj, const char *const *allowed);

/* Seed jansson's hash function (against collisions chosen by whoever wrote a document) from
 * getrandom(2), once, before the process makes its first JSON value: jansson would otherwise
 * open and read /dev/urandom for it. Nothing when getrandom fails (jansson then seeds itself). */
void molt_json_seed(void);

/* json_loadb(text, len, JSON_REJECT_DUPLICATES, error): an object or array, no duplicate keys,
 * strict RFC 8259, the same value. A parser of molt's own takes the text first (about four times
 * faster on a store record: jansson reads a character at a time through a stream); anything it
 * does not accept, it leaves to jansson, whose verdict and message are then the answer. It
 * accepts only what jansson accepts (tests/unit/test_json.c compares the two). error may be
 * NULL; it is written only when the text is refused. */
json_t *molt_json_loadb(const char *text, size_t len, json_error_t *error);

/* v as compact JSON text, the keys of every object in byte order: the bytes
 * json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) makes (the same escapes, reals
 * formatted by jansson itself; object keys are taken to hold no NUL byte, as no parsed key does), at a fraction of its cost on the store's records (jansson walks
 * every string a code point at a time through a callback: about 9 us for a 1.5 KiB record
 * against 1.5 us here). The text starts room bytes into *ret, which are left for a header the
 * caller puts right before it, and is followed by a '\0' (not counted in *ret_len). *ret is
 * malloc'd, the caller frees it; untouched on failure. MOLT_ELIMIT when the text would be
 * longer than max bytes, MOLT_EINVAL for a string that is not UTF-8 or a value nested deeper
 * than 2048 levels (a loop: a document loaded by jansson is never that deep), MOLT_ENOMEM. */
int molt_json_dump_sorted(const json_t *v, size_t room, size_t max, char **ret, size_t *ret_len);

/* Compact JSON text written a piece at a time, with molt_json_dump_sorted's escapes, room and
 * limit: for a writer that knows its keys (the store's record, state/store.c) and puts them in
 * byte order itself. After init, each call appends; the first failure (MOLT_ELIMIT, MOLT_EINVAL,
 * MOLT_ENOMEM) is kept and later calls do nothing; finish returns it, or hands over the text
 * as molt_json_dump_sorted does. A NULL string or value is written as null. */
typedef struct molt_json_text {
    char *buf;
    size_t len, cap, max; /* len and cap count from buf; max counts the text alone */
    size_t room;
    int r;                /* the first failure, 0 while none */
} molt_json_text;
void molt_json_text_init(molt_json_text *t, size_t room, size_t max);
void molt_json_text_raw(molt_json_text *t, const char *s);   /* as it is: "{", "}" */
void molt_json_text_key(molt_json_text *t, const char *key);   /* [,]"key": (no comma after {) */
void molt_json_text_string(molt_json_text *t, const char *s);
void molt_json_text_int(molt_json_text *t, long long i);
void molt_json_text_bool(molt_json_text *t, bool b);
void molt_json_text_value(molt_json_text *t, const json_t *v);   /* keys sorted */
void molt_json_text_fail(molt_json_text *t, int r);   /* keeps r unless a failure is kept */
int molt_json_text_finish(molt_json_text *t, char **ret, size_t *ret_len);

#endif
