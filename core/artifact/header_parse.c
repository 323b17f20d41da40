/* SPDX-License-Identifier: Apache-2.0 */
/* header.tar of a Mender Artifact v3: entry order, size limits and strict JSON for header-info,
 * type-info and meta-data, plus the state scripts. Runs on a header whose checksum matched. */
#include "artifact/header_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "artifact/tar_in.h"
#include "util/json.h"

/* Position in the mandatory entry order. */
enum stage {
    WANT_HEADER_INFO,   /* nothing read yet */
    WANT_TYPE_INFO,     /* after header-info: scripts or type-info */
    WANT_META_DATA,     /* after type-info: meta-data or the end */
    WANT_END,           /* after meta-data */
};

static bool text_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

bool molt_header_script_name_ok(const char *name)
{
    static const char *const states[] = { "ArtifactInstall", "ArtifactReboot", "ArtifactCommit",
                                          "ArtifactRollback", "ArtifactRollbackReboot",
                                          "ArtifactFailure" };
    static const char *const actions[] = { "_Enter_", "_Leave_", "_Error_" };
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        size_t sl = strlen(states[i]);
        if (strncmp(name, states[i], sl) != 0 || name[sl] != '_')
            continue;
        for (size_t j = 0; j < sizeof actions / sizeof actions[0]; j++) {
            const char *p = name + sl;
            if (strncmp(p, actions[j], 7) != 0)
                continue;
            p += 7;
            if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
                return false;
            p += 2;
            if (*p == '\0')
                return true;
            if (*p != '_' || p[1] == '\0')
                return false;
            for (p++; *p; p++) {
                unsigned char ch = (unsigned char)*p;
                if (ch <= 0x20 || ch == 0x7f || ch == '/')
                    return false;
            }
            return true;
        }
    }
    return false;
}

static int load_object(const unsigned char *buf, size_t len, const char *member,
                       const char *entry, json_t **ret, molt_err *err)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: invalid JSON at line %d, column %d: %s",
                            member, entry, je.line, je.column, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: expected a JSON object", member, entry);
    }
    *ret = j;
    return 0;
}

/* Refuse keys other than allowed (NULL-terminated); mender-artifact's reader does too. */
static int check_keys(json_t *obj, const char *const *allowed, const char *member,
                      const char *what, molt_err *err)
{
    const char *key = molt_json_unknown_key(obj, allowed);
    if (key) {
        char shown[64];
        molt_tar_in_printable(key, shown, sizeof shown);
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: unknown key \"%s\"", member, what,
                            shown);
    }
    return 0;
}

/* A required object member of obj (what names it in messages). */
static int get_object(json_t *obj, const char *key, const char *member, const char *what,
                      json_t **ret, molt_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: %s is missing", member, what, key);
    if (!json_is_object(v))
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: %s must be an object", member, what,
                            key);
    *ret = v;
    return 0;
}

/* An optional string member; *ret is NULL when absent, null or "". */
static int get_text(json_t *obj, const char *key, const char *member, const char *what,
                    const char **ret, molt_err *err)
{
    json_t *v = json_object_get(obj, key);
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: %s must be a string", member, what, key);
    if (!text_ok(json_string_value(v)))
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: %s contains control characters",
                            member, what, key);
    if (*json_string_value(v))
        *ret = json_string_value(v);
    return 0;
}

/* A list of non-empty strings; absent or null gives NULL (an error when required, as is an
 * empty list). *ret holds a new reference. */
static int get_string_list(json_t *obj, const char *key, bool required, const char *member,
                           const char *what, json_t **ret, molt_err *err)
{
    json_t *v = json_object_get(obj, key);
    size_t i;
    json_t *item;
    if (!v || json_is_null(v)) {
        if (required)
            return molt_err_set(err, MOLT_EFORMAT, "%s: %s: %s is missing", member, what, key);
        *ret = NULL;
        return 0;
    }
    if (!json_is_array(v))
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: %s must be a list of strings", member,
                            what, key);
    if (required && json_array_size(v) == 0)
        return molt_err_set(err, MOLT_EFORMAT, "%s: %s: %s must not be empty", member, what,
                            key);
    json_array_foreach(v, i, item) {
        if (!json_is_string(item) || !*json_string_value(item) ||
            !text_ok(json_string_value(item)))
            return molt_err_set(err, MOLT_EFORMAT,
                                "%s: %s: %s[%zu] must be a non-empty string without control "
                                "characters", member, what, key, i);
    }
    *ret = json_incref(v);
    return 0;
}

/* type-info provides/depends: an object of string values (the C++ client accepts nothing
 * else). Absent or null gives a new empty object. *ret holds a new reference. */
static int get_string_map(json_t *obj, const char *key, const char *member, json_t **ret,
                          molt_err *err)
{
    json_t *v = json_object_get(obj, key);
    const char *k;
    json_t *item;
    char shown[64];
    if (!v || json_is_null(v)) {
        *ret = json_object();
        return *ret ? 0 : molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", member);
    }
    if (!json_is_object(v))
        return molt_err_set(err, MOLT_EFORMAT, "%s: type-info: %s must be an object", member,
                            key);
    json_object_foreach(v, k, item) {
        molt_tar_in_printable(k, shown, sizeof shown);
        if (!*k || !text_ok(k))
            return molt_err_set(err, MOLT_EFORMAT, "%s: type-info: %s has an invalid key \"%s\"",
                                member, key, shown);
        if (!json_is_string(item))
            return molt_err_set(err, MOLT_EFORMAT,
                                "%s: type-info: %s.%s must be a string (only string values are "
                                "supported)", member, key, shown);
        if (!text_ok(json_string_value(item)))
            return molt_err_set(err, MOLT_EFORMAT,
                                "%s: type-info: %s.%s contains control characters", member, key,
                                shown);
    }
    *ret = json_incref(v);
    return 0;
}

/* A payload type names a module file; keep it a plain file name. */
static bool payload_type_ok(const char *t)
{
    size_t len = strlen(t);
    return len > 0 && len <= MOLT_ARTIFACT_MAX_NAME && text_ok(t) && !strchr(t, '/') &&
           strcmp(t, ".") != 0 && strcmp(t, "..") != 0;
}

static int parse_header_info(const unsigned char *buf, size_t len, const char *member,
                             molt_artifact_info *info, molt_err *err)
{
    static const char *const top_keys[] = { "payloads", "artifact_provides",
                                            "artifact_depends", NULL };
    static const char *const payload_keys[] = { "type", NULL };
    static const char *const provides_keys[] = { "artifact_name", "artifact_group", NULL };
    static const char *const depends_keys[] = { "artifact_name", "device_type",
                                                "artifact_group", NULL };
    const char *what = "header-info";
    json_t *hi = NULL, *payloads = NULL, *p0 = NULL, *type = NULL, *provides = NULL, *depends = NULL;
    const char *name = NULL, *group = NULL;
    int rc;

    rc = load_object(buf, len, member, what, &hi, err);
    if (rc < 0)
        return rc;
    info->header_info = hi;
    rc = check_keys(hi, top_keys, member, what, err);
    if (rc < 0)
        return rc;

    payloads = json_object_get(hi, "payloads");
    if (!json_is_array(payloads))
        return molt_err_set(err, MOLT_EFORMAT, "%s: header-info: payloads must be a list",
                            member);
    if (json_array_size(payloads) == 0)
        return molt_err_set(err, MOLT_EFORMAT,
                            "%s: header-info: payloads is empty; an artifact has one payload",
                            member);
    if (json_array_size(payloads) > 1)
        return molt_err_set(err, MOLT_EUNSUPPORTED,
                            "%s: header-info lists %zu payloads; molt supports exactly one",
                            member, json_array_size(payloads));
    p0 = json_array_get(payloads, 0);
    if (!json_is_object(p0))
        return molt_err_set(err, MOLT_EFORMAT, "%s: header-info: payloads[0] must be an object",
                            member);
    rc = check_keys(p0, payload_keys, member, "header-info payloads[0]", err);
    if (rc < 0)
        return rc;
    type = json_object_get(p0, "type");
    if (!type)
        return molt_err_set(err, MOLT_EFORMAT, "%s: header-info: payloads[0].type is missing",
                            member);
    if (json_is_string(type)) {
        if (!payload_type_ok(json_string_value(type)))
            return molt_err_set(err, MOLT_EFORMAT,
                                "%s: header-info: payload type must be a non-empty name without "
                                "'/' or control characters", member);
        info->payload_type = strdup(json_string_value(type));
        if (!info->payload_type)
            return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", member);
    } else if (!json_is_null(type)) {
        return molt_err_set(err, MOLT_EFORMAT,
                            "%s: header-info: payloads[0].type must be a string or null",
                            member);
    }

    rc = get_object(hi, "artifact_provides", member, what, &provides, err);
    if (rc < 0)
        return rc;
    rc = check_keys(provides, provides_keys, member, "header-info artifact_provides", err);
    if (rc < 0)
        return rc;
    rc = get_text(provides, "artifact_name", member, "header-info artifact_provides", &name,
                  err);
    if (rc < 0)
        return rc;
    if (!name)
        return molt_err_set(err, MOLT_EFORMAT,
                            "%s: header-info: artifact_provides.artifact_name is missing or "
                            "empty", member);
    rc = get_text(provides, "artifact_group", member, "header-info artifact_provides", &group,
                  err);
    if (rc < 0)
        return rc;
    info->name = strdup(name);
    info->group = group ? strdup(group) : NULL;
    if (!info->name || (group && !info->group))
        return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", member);

    rc = get_object(hi, "artifact_depends", member, what, &depends, err);
    if (rc < 0)
        return rc;
    what = "header-info artifact_depends";
    rc = check_keys(depends, depends_keys, member, what, err);
    if (rc < 0)
        return rc;
    rc = get_string_list(depends, "device_type", true, member, what,
                         &info->depends_device_types, err);
    if (rc < 0)
        return rc;
    rc = get_string_list(depends, "artifact_name", false, member, what, &info->depends_names,
                         err);
    if (rc < 0)
        return rc;
    return get_string_list(depends, "artifact_group", false, member, what,
                           &info->depends_groups, err);
}

static int parse_type_info(const unsigned char *buf, size_t len, const char *member,
                           molt_artifact_info *info, molt_err *err)
{
    static const char *const keys[] = { "type", "artifact_provides", "artifact_depends",
                                        "clears_artifact_provides", NULL };
    const char *entry = "headers/0000/type-info";
    json_t *ti, *type;
    int rc;

    rc = load_object(buf, len, member, entry, &ti, err);
    if (rc < 0)
        return rc;
    info->type_info = ti;
    rc = check_keys(ti, keys, member, "type-info", err);
    if (rc < 0)
        return rc;

    /* mender-artifact < 4.4 writes "" for rootfs-image and bootstrap writes null: for those
     * header-info is the truth. A type that is given must agree with it. */
    type = json_object_get(ti, "type");
    if (type && !json_is_null(type)) {
        if (!json_is_string(type))
            return molt_err_set(err, MOLT_EFORMAT, "%s: type-info: type must be a string or null",
                                member);
        const char *t = json_string_value(type);
        if (*t && (!info->payload_type || strcmp(t, info->payload_type) != 0)) {
            char shown[64];
            molt_tar_in_printable(t, shown, sizeof shown);
            return molt_err_set(err, MOLT_EFORMAT,
                                "%s: type-info type \"%s\" does not match header-info payload "
                                "type %s%s%s", member, shown, info->payload_type ? "\"" : "",
                                info->payload_type ? info->payload_type : "null",
                                info->payload_type ? "\"" : "");
        }
    }
    rc = get_string_map(ti, "artifact_provides", member, &info->type_provides, err);
    if (rc < 0)
        return rc;
    rc = get_string_map(ti, "artifact_depends", member, &info->type_depends, err);
    if (rc < 0)
        return rc;
    json_t *clears = json_object_get(ti, "clears_artifact_provides");
    if (clears && !json_is_null(clears)) {
        size_t i;
        json_t *item;
        if (!json_is_array(clears))
            return molt_err_set(err, MOLT_EFORMAT,
                                "%s: type-info: clears_artifact_provides must be a list", member);
        json_array_foreach(clears, i, item) {
            if (!json_is_string(item) || !text_ok(json_string_value(item)))
                return molt_err_set(err, MOLT_EFORMAT,
                                    "%s: type-info: clears_artifact_provides[%zu] must be a "
                                    "string without control characters", member, i);
        }
        info->clears = json_incref(clears);
    }
    return 0;
}

static int add_script(const char *name, unsigned char *data, size_t size, const char *member,
                      molt_artifact_info *info, molt_err *err)
{
    char shown[MOLT_ARTIFACT_MAX_NAME + 1];
    molt_tar_in_printable(name, shown, sizeof shown);
    if (!molt_header_script_name_ok(name))
        return molt_err_set(err, MOLT_EFORMAT,
                            "%s: scripts/%s: not a state script name (expected "
                            "Artifact<State>_<Enter|Leave|Error>_NN[_description])", member,
                            shown);
    for (size_t i = 0; i < info->n_scripts; i++) {
        if (strcmp(info->scripts[i].name, name) == 0)
            return molt_err_set(err, MOLT_EFORMAT, "%s: scripts/%s appears twice", member, shown);
    }
    if (info->n_scripts >= MOLT_ARTIFACT_MAX_SCRIPTS)
        return molt_err_set(err, MOLT_ELIMIT, "%s: more than %d state scripts", member,
                            MOLT_ARTIFACT_MAX_SCRIPTS);
    molt_artifact_script *grown =
        realloc(info->scripts, (info->n_scripts + 1) * sizeof *info->scripts);
    if (!grown)
        return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", member);
    info->scripts = grown;
    char *copy = strdup(name);
    if (!copy)
        return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", member);
    grown[info->n_scripts].name = copy;
    grown[info->n_scripts].data = data;
    grown[info->n_scripts].size = size;
    info->n_scripts++;
    return 0;
}

/* Read the current entry (size already checked against the limits) into a new buffer with a
 * terminating NUL. */
static int read_entry(struct archive *a, size_t size, const char *member, const char *entry,
                      unsigned char **ret, molt_err *err)
{
    unsigned char *buf = malloc(size + 1);
    size_t got = 0;
    if (!buf)
        return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", member);
    while (got < size) {
        la_ssize_t n = archive_read_data(a, buf + got, size - got);
        if (n <= 0) {
            free(buf);
            return molt_err_set(err, MOLT_EFORMAT, "%s: reading %s: %s", member, entry,
                                n < 0 ? archive_error_string(a) : "entry is truncated");
        }
        got += (size_t)n;
    }
    buf[size] = '\0';
    *ret = buf;
    return 0;
}

int molt_header_parse(const void *data, size_t len, molt_compression c, const char *member,
                      molt_artifact_info *info, molt_err *err)
{
    struct archive *a = NULL;
    unsigned char *buf = NULL;
    enum stage stage = WANT_HEADER_INFO;
    uint64_t total = 0;
    char shown[MOLT_ARTIFACT_MAX_NAME + 1];
    int rc;

    rc = molt_tar_in_check_magic(c, data, len, member, err);
    if (rc < 0)
        return rc;
    rc = molt_tar_in_new(&a, c, false, member, err);
    if (rc < 0)
        return rc;
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        rc = molt_err_set(err, MOLT_EFORMAT, "%s: %s", member, archive_error_string(a));
        goto out;
    }
    rc = molt_tar_in_check_filter(a, c, member, err);
    if (rc < 0)
        goto out;

    for (;;) {
        struct archive_entry *e;
        const char *name;
        int ar = archive_read_next_header(a, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar != ARCHIVE_OK) {
            rc = molt_err_set(err, MOLT_EFORMAT, "%s: %s", member, archive_error_string(a));
            goto out;
        }
        rc = molt_tar_in_check_entry(e, member, &name, err);
        if (rc < 0)
            goto out;
        molt_tar_in_printable(name, shown, sizeof shown);
        int64_t size = archive_entry_size(e);

        bool is_script = strncmp(name, "scripts/", 8) == 0;
        if (stage == WANT_HEADER_INFO && strcmp(name, "header-info") != 0) {
            rc = molt_err_set(err, MOLT_EFORMAT,
                              "%s: header-info must be the first entry; found %s", member,
                              shown);
            goto out;
        }
        if (strcmp(name, "header-info") == 0) {
            if (stage != WANT_HEADER_INFO) {
                rc = molt_err_set(err, MOLT_EFORMAT, "%s: header-info appears twice", member);
                goto out;
            }
        } else if (is_script) {
            if (stage != WANT_TYPE_INFO) {
                rc = molt_err_set(err, MOLT_EFORMAT,
                                  "%s: %s comes after headers/0000/type-info; scripts must "
                                  "come before it", member, shown);
                goto out;
            }
        } else if (strcmp(name, "headers/0000/type-info") == 0) {
            if (stage != WANT_TYPE_INFO) {
                rc = molt_err_set(err, MOLT_EFORMAT, "%s: headers/0000/type-info appears twice",
                                  member);
                goto out;
            }
        } else if (strcmp(name, "headers/0000/meta-data") == 0) {
            if (stage != WANT_META_DATA) {
                rc = molt_err_set(err, MOLT_EFORMAT, "%s: headers/0000/meta-data %s", member,
                                  stage == WANT_TYPE_INFO ? "comes before headers/0000/type-info"
                                                          : "appears twice");
                goto out;
            }
        } else if (strncmp(name, "headers/", 8) == 0 && strncmp(name, "headers/0000/", 13) != 0) {
            rc = molt_err_set(err, MOLT_EUNSUPPORTED,
                              "%s: %s: artifacts with more than one payload are not supported",
                              member, shown);
            goto out;
        } else {
            rc = molt_err_set(err, MOLT_EFORMAT, "%s: unexpected entry %s", member, shown);
            goto out;
        }

        /* Limits come from the tar header, before a byte is decompressed or allocated. */
        if (size > (int64_t)MOLT_ARTIFACT_MAX_HEADER_MEMBER) {
            rc = molt_err_set(err, MOLT_ELIMIT, "%s: %s is %lld bytes; the limit is %u", member,
                              shown, (long long)size, MOLT_ARTIFACT_MAX_HEADER_MEMBER);
            goto out;
        }
        total += (uint64_t)size;
        if (total > MOLT_ARTIFACT_MAX_HEADER_TOTAL) {
            rc = molt_err_set(err, MOLT_ELIMIT,
                              "%s: the uncompressed header exceeds the limit of %u bytes (at %s)",
                              member, MOLT_ARTIFACT_MAX_HEADER_TOTAL, shown);
            goto out;
        }
        rc = read_entry(a, (size_t)size, member, shown, &buf, err);
        if (rc < 0)
            goto out;

        switch (stage) {
        case WANT_HEADER_INFO:
            rc = parse_header_info(buf, (size_t)size, member, info, err);
            stage = WANT_TYPE_INFO;
            break;
        case WANT_TYPE_INFO:
            if (is_script) {
                rc = add_script(name + 8, buf, (size_t)size, member, info, err);
                if (rc == 0)
                    buf = NULL;  /* owned by info now */
            } else {
                rc = parse_type_info(buf, (size_t)size, member, info, err);
                stage = WANT_META_DATA;
            }
            break;
        case WANT_META_DATA:
            /* rootfs-image artifacts carry a 0-byte meta-data member: same as none. */
            if (size > 0)
                rc = load_object(buf, (size_t)size, member, "headers/0000/meta-data",
                                 &info->meta_data, err);
            stage = WANT_END;
            break;
        case WANT_END:
            break;
        }
        free(buf);
        buf = NULL;
        if (rc < 0)
            goto out;
    }
    if (stage == WANT_HEADER_INFO)
        rc = molt_err_set(err, MOLT_EFORMAT, "%s: header-info is missing", member);
    else if (stage == WANT_TYPE_INFO)
        rc = molt_err_set(err, MOLT_EFORMAT, "%s: headers/0000/type-info is missing", member);
out:
    free(buf);
    archive_read_free(a);
    return rc;
}
