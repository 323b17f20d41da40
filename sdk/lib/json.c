/* SPDX-License-Identifier: Apache-2.0 */
/* libmolt-sdk: JSON Pointer (RFC 6901) accessors over the JSON text the host hands a module. */
#include "sdk_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Header documents are small; this bounds what a module parses by accident. */
#define JSON_TEXT_MAX (16u * 1024 * 1024)

/* Parse json and walk pointer; *ret_root is the document (json_decref), *ret_value borrowed. */
static int resolve(const char *json, const char *pointer, json_t **ret_root, json_t **ret_value,
                   struct molt_sdk_error *err)
{
    if (!json || !pointer || (pointer[0] && pointer[0] != '/'))
        return molt_sdk_err_set(err, MOLT_EINVAL, "JSON pointer \"%s\" must be empty or start "
                                "with '/'", pointer ? pointer : "(null)");
    if (strlen(json) > JSON_TEXT_MAX)
        return molt_sdk_err_set(err, MOLT_ELIMIT, "JSON text over %u bytes", JSON_TEXT_MAX);
    json_error_t je;
    json_t *root = json_loads(json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return molt_sdk_err_set(err, MOLT_EFORMAT, "JSON text: %s at line %d", je.text, je.line);
    json_t *v = root;
    const char *p = pointer;
    char token[1024];
    while (*p) {
        p++;   /* the '/' */
        size_t n = 0;
        while (*p && *p != '/') {
            char c = *p++;
            if (c == '~') {
                if (*p != '0' && *p != '1') {
                    json_decref(root);
                    return molt_sdk_err_set(err, MOLT_EINVAL, "JSON pointer \"%s\": bad escape",
                                            pointer);
                }
                c = *p++ == '0' ? '~' : '/';
            }
            if (n + 1 >= sizeof token) {
                json_decref(root);
                return molt_sdk_err_set(err, MOLT_ELIMIT, "JSON pointer \"%s\": token too long",
                                        pointer);
            }
            token[n++] = c;
        }
        token[n] = '\0';
        json_t *next = NULL;
        if (json_is_object(v)) {
            next = json_object_get(v, token);
        } else if (json_is_array(v)) {
            char *end;
            unsigned long i = strtoul(token, &end, 10);
            if (n > 0 && !*end && (token[0] != '0' || n == 1))
                next = json_array_get(v, i);
        }
        if (!next) {
            json_decref(root);
            return molt_sdk_err_set(err, MOLT_ENOTFOUND, "JSON pointer \"%s\": nothing at \"%s\"",
                                    pointer, token);
        }
        v = next;
    }
    if (json_is_null(v) && v == root) {
        json_decref(root);
        return molt_sdk_err_set(err, MOLT_ENOTFOUND, "JSON pointer \"%s\": the document is null",
                                pointer);
    }
    *ret_root = root;
    *ret_value = v;
    return 0;
}

/* resolve, then check the value's kind with is (NULL: any); want names it for the message. */
static int resolve_as(const char *json, const char *pointer, int (*is)(const json_t *),
                      const char *want, json_t **ret_root, json_t **ret_value,
                      struct molt_sdk_error *err)
{
    int r = resolve(json, pointer, ret_root, ret_value, err);
    if (r == 0 && is && !is(*ret_value)) {
        json_decref(*ret_root);
        return molt_sdk_err_set(err, MOLT_EFORMAT, "JSON pointer \"%s\": not %s", pointer, want);
    }
    return r;
}

/* jansson's type tests are macros; these give resolve_as functions. */
static int is_string(const json_t *v)
{
    return json_is_string(v);
}

static int is_integer(const json_t *v)
{
    return json_is_integer(v);
}

static int is_boolean(const json_t *v)
{
    return json_is_boolean(v);
}

static int is_container(const json_t *v)
{
    return json_is_array(v) || json_is_object(v);
}

int molt_sdk_json_string(const char *json, const char *pointer, char **ret,
                         struct molt_sdk_error *err)
{
    json_t *root, *v;
    int r = resolve_as(json, pointer, is_string, "a string", &root, &v, err);
    if (r < 0)
        return r;
    char *s = strndup(json_string_value(v), json_string_length(v));
    json_decref(root);
    if (!s)
        return molt_sdk_err_set(err, MOLT_ENOMEM, "out of memory");
    *ret = s;
    return 0;
}

int molt_sdk_json_int(const char *json, const char *pointer, int64_t *ret,
                      struct molt_sdk_error *err)
{
    json_t *root, *v;
    int r = resolve_as(json, pointer, is_integer, "an integer", &root, &v, err);
    if (r == 0) {
        *ret = (int64_t)json_integer_value(v);
        json_decref(root);
    }
    return r;
}

int molt_sdk_json_bool(const char *json, const char *pointer, int *ret,
                       struct molt_sdk_error *err)
{
    json_t *root, *v;
    int r = resolve_as(json, pointer, is_boolean, "true or false", &root, &v, err);
    if (r == 0) {
        *ret = json_is_true(v) ? 1 : 0;
        json_decref(root);
    }
    return r;
}

int molt_sdk_json_text(const char *json, const char *pointer, char **ret,
                       struct molt_sdk_error *err)
{
    json_t *root, *v;
    int r = resolve_as(json, pointer, NULL, NULL, &root, &v, err);
    if (r < 0)
        return r;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(root);
    if (!s)
        return molt_sdk_err_set(err, MOLT_ENOMEM, "out of memory");
    *ret = s;
    return 0;
}

int molt_sdk_json_count(const char *json, const char *pointer, size_t *ret,
                        struct molt_sdk_error *err)
{
    json_t *root, *v;
    int r = resolve_as(json, pointer, is_container, "an array or an object", &root, &v, err);
    if (r == 0) {
        *ret = json_is_array(v) ? json_array_size(v) : json_object_size(v);
        json_decref(root);
    }
    return r;
}
