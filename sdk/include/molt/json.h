/* SPDX-License-Identifier: Apache-2.0 */
/* libmolt-sdk accessors for the JSON text the host hands a module (header-info, type-info,
 * meta-data): one value addressed by a JSON Pointer (RFC 6901, "/a/b/0"; "" is the document). */
#ifndef MOLT_JSON_H
#define MOLT_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct molt_sdk_error;

/* The string at pointer in json. *ret malloc'd (free()). MOLT_EFORMAT if json does not parse or
 * the value is not a string, MOLT_ENOTFOUND if nothing is at pointer (or json is "null"). */
int molt_sdk_json_string(const char *json, const char *pointer, char **ret,
                         struct molt_sdk_error *err);

/* The integer at pointer (a JSON number without fraction, in int64 range). */
int molt_sdk_json_int(const char *json, const char *pointer, int64_t *ret,
                      struct molt_sdk_error *err);

/* The boolean at pointer (1 or 0 in *ret). */
int molt_sdk_json_bool(const char *json, const char *pointer, int *ret,
                       struct molt_sdk_error *err);

/* The value at pointer, re-encoded as compact JSON text (objects, arrays, anything). *ret
 * malloc'd. */
int molt_sdk_json_text(const char *json, const char *pointer, char **ret,
                       struct molt_sdk_error *err);

/* How many elements (array) or members (object) the value at pointer has. */
int molt_sdk_json_count(const char *json, const char *pointer, size_t *ret,
                        struct molt_sdk_error *err);

#ifdef __cplusplus
}
#endif
#endif
