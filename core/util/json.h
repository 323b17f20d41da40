/* SPDX-License-Identifier: Apache-2.0 */
/* JSON helpers the parsers of untrusted and stored documents share (jansson). */
#ifndef MOLT_UTIL_JSON_H
#define MOLT_UTIL_JSON_H

#include <jansson.h>

/* The first key of the object obj that is not in allowed (a NULL-terminated list), or NULL when
 * every key is allowed (or obj is not an object). The key is borrowed from obj. */
const char *molt_json_unknown_key(const json_t *obj, const char *const *allowed);

#endif
