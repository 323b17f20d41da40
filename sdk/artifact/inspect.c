/* SPDX-License-Identifier: Apache-2.0 */
/* Read a whole artifact through the streaming reader (every checksum and, with keys, the
 * signature checked) and describe it as the JSON document of `molt-artifact read --json`. */
#include <stdlib.h>
#include <string.h>

#include "artifact/reader.h"
#include "tool.h"
#include "util/encoding.h"

/* json_t from a possibly-NULL reference the reader owns: a new reference, or null. */
static json_t *copy_or_null(json_t *j)
{
    return j ? json_deep_copy(j) : json_null();
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static const molt_manifest_entry *manifest_entry(const molt_artifact_info *info,
                                                 const char *name)
{
    for (size_t i = 0; i < info->n_manifest; i++)
        if (strncmp(info->manifest[i].name, "data/0000/", 10) == 0 &&
            strcmp(info->manifest[i].name + 10, name) == 0)
            return &info->manifest[i];
    return NULL;
}

static json_t *describe_header(const molt_artifact_info *info)
{
    json_t *depends = json_object(), *scripts = json_array();
    json_object_set_new(depends, "device_type", copy_or_null(info->depends_device_types));
    if (info->depends_names)
        json_object_set_new(depends, "artifact_name", json_deep_copy(info->depends_names));
    if (info->depends_groups)
        json_object_set_new(depends, "artifact_group", json_deep_copy(info->depends_groups));
    if (info->type_depends)
        json_object_update(depends, info->type_depends);
    for (size_t i = 0; i < info->n_scripts; i++)
        json_array_append_new(scripts, json_string(info->scripts[i].name));
    return json_pack("{s:i, s:s, s:b, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "format_version", info->format_version,
                     "compression", molt_compression_name(info->compression),
                     "signed", info->is_signed,
                     "signature_verified", info->signature_verified,
                     "verified_by", string_or_null(info->verified_by),
                     "name", json_string(info->name),
                     "group", string_or_null(info->group),
                     "payload_type", string_or_null(info->payload_type),
                     "depends", depends,
                     "provides", info->type_provides ? json_deep_copy(info->type_provides)
                                                     : json_object(),
                     "clears", copy_or_null(info->clears),
                     "meta_data", copy_or_null(info->meta_data),
                     "scripts", scripts);
}

int tool_inspect(const char *path, const char *const *keys, size_t n_keys, json_t **ret,
                 molt_err *err)
{
    molt_source *src = NULL;
    molt_artifact_reader *rd = NULL;
    json_t *doc = NULL, *files = json_array();
    int r = molt_source_file_new(&src, path, err);
    if (r < 0)
        goto out;
    molt_artifact_opts opts = {.verify_keys = keys, .n_verify_keys = n_keys};
    if ((r = molt_artifact_reader_open(&rd, src, &opts, err)) < 0)
        goto out;
    const molt_artifact_info *info = molt_artifact_reader_info(rd);
    for (;;) {
        const char *name;
        int64_t size;
        r = molt_artifact_reader_next(rd, &name, &size, err);
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        char *file_name = strdup(name);
        if (!file_name) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
            goto out;
        }
        int64_t total = 0;
        for (;;) {
            const void *block;
            ssize_t n = molt_artifact_reader_read_block(rd, &block, err);
            if (n < 0) {
                free(file_name);
                r = (int)n;
                goto out;
            }
            if (n == 0)
                break;
            total += n;
        }
        /* the reader matched the content against this manifest entry at the end of the file */
        const molt_manifest_entry *e = manifest_entry(info, file_name);
        char hex[65] = "";
        if (e)
            molt_hex_encode(e->sha256, 32, hex);
        json_array_append_new(files, json_pack("{s:s, s:I, s:s}", "name", file_name, "size",
                                               (json_int_t)total, "sha256", hex));
        free(file_name);
    }
    doc = describe_header(info);
    if (!doc || json_object_set(doc, "files", files) != 0) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    *ret = doc;
    doc = NULL;
    r = 0;
out:
    if (r < 0 && err && !strstr(err->msg, path))
        molt_err_prefix(err, "%s: ", path);
    json_decref(doc);
    json_decref(files);
    molt_artifact_reader_free(rd);
    molt_source_free(src);
    return r;
}

static void print_strings(FILE *out, const json_t *arr)
{
    size_t i;
    json_t *v;
    fputc('[', out);
    json_array_foreach(arr, i, v) fprintf(out, "%s%s", i ? ", " : "", json_string_value(v));
    fputc(']', out);
}

static void print_map(FILE *out, const char *label, const json_t *obj)
{
    const char *k;
    json_t *v;
    if (!obj || !json_object_size(obj)) {
        fprintf(out, "    %s: Nothing\n", label);
        return;
    }
    fprintf(out, "    %s:\n", label);
    json_object_foreach((json_t *)obj, k, v) {
        if (json_is_string(v)) {
            fprintf(out, "      %s: %s\n", k, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(out, "      %s: %s\n", k, s ? s : "?");
            free(s);
        }
    }
}

/* A rootfs-delta payload: the image it applies to and the one it rebuilds. */
static void print_delta(FILE *out, json_t *d, json_t *meta)
{
    json_t *m = json_object_get(meta, "rootfs-delta");
    json_t *provides = json_object_get(d, "provides");
    const char *fmt = json_string_value(json_object_get(m, "format"));
    const char *base = json_string_value(json_object_get(json_object_get(d, "depends"),
                                                         "rootfs-image.checksum"));
    const char *target = json_string_value(json_object_get(provides, "rootfs-image.checksum"));
    const char *version = json_string_value(json_object_get(provides, "rootfs-image.version"));
    fprintf(out, "    Delta: %s\n", fmt ? fmt : "(no format in the meta-data)");
    fprintf(out, "      base:   %s (%lld bytes)\n", base ? base : "?",
            (long long)json_integer_value(json_object_get(m, "base_size")));
    fprintf(out, "      target: %s (%lld bytes), rootfs-image.version %s\n", target ? target : "?",
            (long long)json_integer_value(json_object_get(m, "target_size")),
            version ? version : "?");
}

void tool_print_human(const json_t *doc, FILE *out)
{
    json_t *d = (json_t *)doc; /* jansson's getters take non-const */
    const char *group = json_string_value(json_object_get(d, "group"));
    const char *type = json_string_value(json_object_get(d, "payload_type"));
    json_t *depends = json_object_get(d, "depends");
    const char *sig;
    if (!json_is_true(json_object_get(d, "signed")))
        sig = "no signature";
    else if (json_is_true(json_object_get(d, "signature_verified")))
        sig = "signed and verified correctly";
    else
        sig = "signed but no public key provided";

    fprintf(out, "Mender artifact:\n");
    fprintf(out, "  Name: %s\n", json_string_value(json_object_get(d, "name")));
    fprintf(out, "  Format: mender\n");
    fprintf(out, "  Version: %d\n", (int)json_integer_value(json_object_get(d, "format_version")));
    fprintf(out, "  Signature: %s\n", sig);
    fprintf(out, "  Compression: %s\n", json_string_value(json_object_get(d, "compression")));
    fprintf(out, "  Compatible devices: ");
    print_strings(out, json_object_get(depends, "device_type"));
    fprintf(out, "\n  Provides group: %s\n", group ? group : "");
    fprintf(out, "  Depends on one of artifact(s): ");
    print_strings(out, json_object_get(depends, "artifact_name"));
    fprintf(out, "\n  Depends on one of group(s): ");
    print_strings(out, json_object_get(depends, "artifact_group"));
    fprintf(out, "\n  State scripts:\n");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(d, "scripts"), i, v)
        fprintf(out, "    %s\n", json_string_value(v));

    fprintf(out, "\nUpdates:\n  - Type: %s\n", type ? type : "Empty type");
    print_map(out, "Provides", json_object_get(d, "provides"));
    /* type-info depends only: header-info depends are shown above */
    json_t *type_depends = json_deep_copy(depends);
    json_object_del(type_depends, "device_type");
    json_object_del(type_depends, "artifact_name");
    json_object_del(type_depends, "artifact_group");
    print_map(out, "Depends", type_depends);
    json_decref(type_depends);
    json_t *clears = json_object_get(d, "clears");
    if (json_is_array(clears)) {
        char *s = json_dumps(clears, JSON_COMPACT);
        fprintf(out, "    Clears Provides: %s\n", s ? s : "?");
        free(s);
    }
    json_t *meta = json_object_get(d, "meta_data");
    if (json_is_object(meta)) {
        char *s = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(out, "    Metadata: %s\n", s ? s : "?");
        free(s);
    } else {
        fprintf(out, "    Metadata: Nothing\n");
    }
    if (type && strcmp(type, "rootfs-delta") == 0)
        print_delta(out, d, meta);
    json_t *files = json_object_get(d, "files");
    if (!json_array_size(files)) {
        fprintf(out, "    Files: None\n");
        return;
    }
    fprintf(out, "    Files:\n");
    json_array_foreach(files, i, v) {
        fprintf(out, "      - name: %s\n", json_string_value(json_object_get(v, "name")));
        fprintf(out, "        size: %lld\n",
                (long long)json_integer_value(json_object_get(v, "size")));
        fprintf(out, "        checksum: %s\n", json_string_value(json_object_get(v, "sha256")));
    }
}
