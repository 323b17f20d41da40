/* SPDX-License-Identifier: Apache-2.0 */
/* JSON helpers the parsers of untrusted and stored documents share (jansson). */
#ifndef MOLT_UTIL_JSON_H
#define MOLT_UTIL_JSON_H

#include <jansson.h>

/* The first key of the object obj that is not in allowed (a NULL-terminated list), or NULL when
 * every key is allowed (or obj is not an object). The key is borrowed from obj. */
const char *molt_json_unknown_key(const json_t *obj, const char *const *allowed);

/* Seed jansson's hash function (against collisions chosen by whoever wrote a document) from
 * getrandom(2), once, before the process makes its first JSON value: jansson would otherwise
 * open and read /dev/urandom for it. Nothing when getrandom fails (jansson then seeds itself). */
void molt_json_seed(void);

#endif
