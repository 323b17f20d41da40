/* SPDX-License-Identifier: Apache-2.0 */
/* Device identity and inventory attributes from scripts in Mender's format (docs/reference §3.1,
 * §3.5): each prints `key=value` lines, split at the first '='; a key given more than once
 * becomes a list. */
#ifndef MOLT_SERVER_ATTRIBUTES_H
#define MOLT_SERVER_ATTRIBUTES_H

#include <stddef.h>
#include <jansson.h>
#include "util/err.h"

/* Most output read from one script, and most distinct keys / values per key kept. */
#define MOLT_ATTR_OUTPUT_MAX (256 * 1024)
#define MOLT_ATTR_KEYS_MAX 1024
#define MOLT_ATTR_VALUES_MAX 256

/* Add the key=value lines of text (len bytes) to attrs: an object of key -> array of strings.
 * Empty lines are skipped; a line without '=' or with an empty key is MOLT_EFORMAT naming the
 * line and source. */
int molt_attr_parse(json_t *attrs, const char *text, size_t len, const char *source,
                    molt_err *err);

/* Run script (no arguments, timeout_ms bounded) and add its lines to attrs; a script that
 * fails (exit code != 0) is MOLT_EIO naming it, and one with a bad line adds nothing. */
int molt_attr_run(json_t *attrs, const char *script, int timeout_ms, molt_err *err);

/* The identity of docs/reference §3.1: the first existing script of scripts run, its attributes
 * encoded with sorted keys, one value -> a string, several -> an array, no spaces. *ret_json
 * malloc'd, caller-owned. MOLT_ENOTFOUND when none of the scripts exists; MOLT_EFORMAT when
 * the script printed no attribute. */
int molt_identity_json(const char *const *scripts, size_t n, char **ret_json, molt_err *err);

/* The inventory: every executable regular file named mender-inventory-* or molt-inventory-*
 * in dirs (missing folders are skipped), run in name order, merged; a failing script is
 * logged and skipped. *ret is an object key -> array of strings (new reference). */
int molt_inventory_collect(const char *const *dirs, size_t n, json_t **ret, molt_err *err);

/* The PUT body of docs/reference §3.5 from attrs (key -> array of strings): an array
 * [{"name","value"}] sorted by name, value a string for one item and an array for more.
 * New reference owned by the caller. */
json_t *molt_inventory_body(const json_t *attrs);

/* Add value to key's list in attrs (no duplicates). */
int molt_attr_add(json_t *attrs, const char *key, const char *value, molt_err *err);

#endif
