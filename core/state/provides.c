/* SPDX-License-Identifier: Apache-2.0 */
/* Provides and depends (docs/reference §2.10): the depends check before an install and the provides
 * update with clears globs on commit, as Mender's context.cpp does them. */
#include "state/provides.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/version.h"

bool molt_provides_glob_match(const char *pattern, const char *s)
{
    /* Greedy match with one backtrack point: the last '*' seen. Linear in practice, never
     * exponential, whatever the pattern. */
    const char *star = NULL, *star_s = NULL;
    while (*s) {
        if (*pattern == '*') {
            star = pattern++;
            star_s = s;
        } else if (*pattern == *s) {
            pattern++;
            s++;
        } else if (star) {
            pattern = star + 1;
            s = ++star_s;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

int molt_provides_current(const json_t *store, json_t **ret, molt_err *err)
{
    json_t *out = json_object();
    if (!out)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    const json_t *stored = json_object_get(store, "artifact_provides");
    if (stored && json_is_object(stored)) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)stored, key, value) {
            if (!json_is_string(value))
                continue;
            json_object_set(out, key, value);
        }
    }
    const char *name = json_string_value(json_object_get(store, "artifact_name"));
    json_object_set_new(out, "artifact_name",
                        json_string(name && *name ? name : MOLT_UNKNOWN_ARTIFACT));
    const char *group = json_string_value(json_object_get(store, "artifact_group"));
    if (group && *group)
        json_object_set_new(out, "artifact_group", json_string(group));
    else
        json_object_del(out, "artifact_group");
    *ret = out;
    return 0;
}

/* Whether the JSON array list holds the string value. */
static bool list_contains(const json_t *list, const char *value)
{
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        const char *s = json_string_value(item);
        if (s && strcmp(s, value) == 0)
            return true;
    }
    return false;
}

/* "[a, b]" of a JSON array for messages, truncated to fit. */
static void list_text(const json_t *list, char *buf, size_t size)
{
    char *flat = json_dumps(list, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, size, "%s", flat ? flat : "?");
    free(flat);
}

/* A depends list (artifact_name, artifact_group) against the provides value of key. */
static int check_list(const json_t *list, const char *key, const json_t *provides, molt_err *err)
{
    char text[256];
    if (!json_is_array(list))
        return molt_err_set(err, MOLT_EFORMAT, "artifact depends %s is not a list", key);
    list_text(list, text, sizeof text);
    const char *have = json_string_value(json_object_get(provides, key));
    if (!have)
        return molt_err_set(err, MOLT_EDEPENDS,
                            "artifact depends on %s %s, but the device provides no %s", key,
                            text, key);
    if (!list_contains(list, have))
        return molt_err_set(err, MOLT_EDEPENDS,
                            "artifact depends on %s %s, but the device has %s '%s'", key, text,
                            key, have);
    return 0;
}

int molt_depends_check(const molt_depends *dep, const char *device_type, const json_t *provides,
                       molt_err *err)
{
    char text[256];
    if (!dep || !json_is_array(dep->device_types) || json_array_size(dep->device_types) == 0)
        return molt_err_set(err, MOLT_EFORMAT, "artifact depends: device_type list missing");
    if (!device_type || !list_contains(dep->device_types, device_type)) {
        list_text(dep->device_types, text, sizeof text);
        return molt_err_set(err, MOLT_EDEPENDS,
                            "artifact is for device types %s, this device is '%s'", text,
                            device_type ? device_type : "(none)");
    }
    int r;
    if (dep->names && (r = check_list(dep->names, "artifact_name", provides, err)) < 0)
        return r;
    if (dep->groups && (r = check_list(dep->groups, "artifact_group", provides, err)) < 0)
        return r;
    if (dep->type_depends) {
        if (!json_is_object(dep->type_depends))
            return molt_err_set(err, MOLT_EFORMAT, "type-info artifact_depends is not an object");
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)dep->type_depends, key, value) {
            const char *want = json_string_value(value);
            if (!want)
                return molt_err_set(err, MOLT_EFORMAT,
                                    "type-info artifact_depends %s is not a string", key);
            const char *have = json_string_value(json_object_get(provides, key));
            if (!have)
                return molt_err_set(err, MOLT_EDEPENDS,
                                    "artifact depends on %s '%s', but the device provides no %s",
                                    key, want, key);
            if (strcmp(have, want) != 0)
                return molt_err_set(err, MOLT_EDEPENDS,
                                    "artifact depends on %s '%s', but the device has '%s'", key,
                                    want, have);
        }
    }
    return 0;
}

/* Whether key matches any glob in clears. */
static bool cleared(const json_t *clears, const char *key)
{
    size_t i;
    json_t *item;
    json_array_foreach(clears, i, item) {
        const char *glob = json_string_value(item);
        if (glob && molt_provides_glob_match(glob, key))
            return true;
    }
    return false;
}

/* Set artifact_name (with the suffix when inconsistent) and artifact_group of store. */
static int set_name_group(json_t *store, const char *name, const char *group, bool inconsistent)
{
    size_t len = strlen(name), slen = strlen(MOLT_INCONSISTENT_SUFFIX);
    char *full = malloc(len + slen + 1);
    if (!full)
        return MOLT_ENOMEM;
    memcpy(full, name, len + 1);
    if (inconsistent && !(len >= slen && strcmp(full + len - slen, MOLT_INCONSISTENT_SUFFIX) == 0))
        memcpy(full + len, MOLT_INCONSISTENT_SUFFIX, slen + 1);
    json_t *jname = json_string(full);
    json_t *jgroup = group && *group ? json_string(group) : NULL;
    free(full);
    if (!jname || (group && *group && !jgroup)) {
        json_decref(jname);
        json_decref(jgroup);
        return MOLT_ENOMEM;
    }
    json_object_set_new(store, "artifact_name", jname);
    if (jgroup)
        json_object_set_new(store, "artifact_group", jgroup);
    else
        json_object_del(store, "artifact_group");
    return 0;
}

int molt_provides_inconsistent(json_t *store, const char *name, const char *group,
                               molt_err *err)
{
    if (!json_is_object(store) || !name || !*name)
        return molt_err_set(err, MOLT_EINVAL, "provides: no store or artifact name");
    if (set_name_group(store, name, group, true) < 0)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory updating provides");
    return 0;
}

int molt_provides_commit(json_t *store, const molt_provides_new *art, molt_err *err)
{
    if (!json_is_object(store) || !art || !art->name || !*art->name)
        return molt_err_set(err, MOLT_EINVAL, "provides commit: no store or artifact name");
    if (art->provides && !json_is_object(art->provides))
        return molt_err_set(err, MOLT_EFORMAT, "artifact_provides is not an object");
    if (art->clears && !json_is_array(art->clears))
        return molt_err_set(err, MOLT_EFORMAT, "clears_artifact_provides is not a list");

    json_t *next = json_object();
    int r = MOLT_ENOMEM;
    if (!next)
        goto out;
    const json_t *stored = json_object_get(store, "artifact_provides");
    /* Absent clears mean "clear everything" (also with no provides at all); present clears
     * keep whatever no glob matches. */
    if (art->clears && json_is_object(stored)) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)stored, key, value) {
            if (!cleared(art->clears, key))
                json_object_set(next, key, value);
        }
    }
    if (art->provides) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)art->provides, key, value) {
            if (!json_is_string(value)) {
                r = molt_err_set(err, MOLT_EFORMAT, "artifact_provides %s is not a string", key);
                goto out;
            }
            /* name and group live in their own keys */
            if (strcmp(key, "artifact_name") == 0 || strcmp(key, "artifact_group") == 0)
                continue;
            json_object_set(next, key, value);
        }
    }
    if (set_name_group(store, art->name, art->group, false) < 0)
        goto out;
    json_object_set(store, "artifact_provides", next);
    r = 0;
out:
    if (r == MOLT_ENOMEM)
        molt_err_set(err, r, "out of memory updating provides");
    json_decref(next);
    return r;
}

int molt_downgrade_check(const molt_downgrade_policy *p, const char *artifact_name,
                         const json_t *type_provides, const json_t *device_provides,
                         molt_err *err)
{
    if (!p || !p->refuse)
        return 0;
    const char *scheme = molt_config_scheme_name(p->scheme);
    const char *want = strcmp(p->key, "artifact_name") == 0
                           ? artifact_name
                           : json_string_value(json_object_get(type_provides, p->key));
    if (!want)
        return molt_err_set(err, MOLT_EDEPENDS,
                            "downgrade policy: artifact '%s' provides no '%s', so its version "
                            "cannot be compared with the device's; refused (downgrade.policy "
                            "refuse, downgrade.key %s)", artifact_name, p->key, p->key);
    const char *have = json_string_value(json_object_get(device_provides, p->key));
    if (!have)
        return 1;
    molt_err e = {0};
    int cmp = 0;
    if (molt_version_check(p->scheme, want, &e) < 0)
        return molt_err_set(err, MOLT_EDEPENDS,
                            "downgrade policy: artifact '%s' has %s '%s', which the %s scheme "
                            "cannot compare: %s", artifact_name, p->key, want, scheme, e.msg);
    if (molt_version_compare(p->scheme, want, have, &cmp, &e) < 0)
        return molt_err_set(err, MOLT_EDEPENDS,
                            "downgrade policy: the device's %s '%s' cannot be compared in the "
                            "%s scheme (%s): install artifact '%s' with --allow-downgrade once",
                            p->key, have, scheme, e.msg, artifact_name);
    if (cmp < 0)
        return molt_err_set(err, MOLT_EDEPENDS,
                            "downgrade refused: artifact '%s' has %s '%s', older than the "
                            "device's '%s' (%s scheme); --allow-downgrade installs it anyway",
                            artifact_name, p->key, want, have, scheme);
    return 0;
}
