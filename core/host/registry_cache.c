/* SPDX-License-Identifier: Apache-2.0 */
/* The native module registry's cache (registry_cache.h): a JSON file of the accepted modules'
 * declarations, keyed by each file's identity and by the host. */
#include "host/registry_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <molt/module.h>

#include "util/fs.h"

#define STR_(x) #x
#define STR(x) STR_(x)
/* A cache written by another molt (or for another module ABI) is ignored as a whole. */
#define CACHE_HOST "molt " MOLT_VERSION " abi " STR(MOLT_MODULE_ABI_MAJOR) "." \
                   STR(MOLT_MODULE_ABI_MINOR)
#define CACHE_MAX_ENTRIES 4096

struct molt_registry_cache {
    char *file;              /* <data_dir>/native/registry.cache */
    molt_registry_cache_entry *entries;
    size_t n;
    bool changed;
};

static int64_t ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static bool key_matches(const molt_registry_cache_entry *e, const struct stat *st)
{
    return e->dev == (uint64_t)st->st_dev && e->ino == (uint64_t)st->st_ino &&
           e->size == (uint64_t)st->st_size && e->mtime_ns == ns(&st->st_mtim) &&
           e->ctime_ns == ns(&st->st_ctim);
}

static void entry_free(molt_registry_cache_entry *e)
{
    free(e->path);
    free(e->name);
    free(e->version);
    for (size_t i = 0; e->types && e->types[i]; i++)
        free(e->types[i]);
    free(e->types);
    memset(e, 0, sizeof *e);
}

/* Fill e from fields; false if one is missing, of the wrong type or out of bounds. */
static bool entry_fill(molt_registry_cache_entry *e, const char *path, uint64_t dev,
                       uint64_t ino, uint64_t size, int64_t mtime_ns, int64_t ctime_ns,
                       const char *name, const char *version, uint32_t caps,
                       const char *const *types, size_t n_types)
{
    memset(e, 0, sizeof *e);
    e->dev = dev;
    e->ino = ino;
    e->size = size;
    e->mtime_ns = mtime_ns;
    e->ctime_ns = ctime_ns;
    e->capabilities = caps;
    e->path = strdup(path);
    e->name = strdup(name);
    e->version = strdup(version);
    e->types = calloc(n_types + 1, sizeof *e->types);
    bool ok = e->path && e->name && e->version && e->types;
    for (size_t i = 0; ok && i < n_types; i++)
        ok = (e->types[i] = strdup(types[i])) != NULL;
    if (!ok)
        entry_free(e);
    return ok;
}

static bool json_u64(json_t *o, const char *key, uint64_t *ret)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *ret = (uint64_t)json_integer_value(v);
    return true;
}

/* Parse one entry object; false if malformed (the whole cache is then dropped). */
static bool parse_entry(json_t *o, molt_registry_cache_entry *e)
{
    uint64_t dev, ino, size, mtime, ctime, caps;
    const char *path = json_string_value(json_object_get(o, "path"));
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *version = json_string_value(json_object_get(o, "version"));
    json_t *types = json_object_get(o, "types");
    const char *tv[MOLT_REGISTRY_CACHE_MAX_TYPES];
    size_t nt = json_array_size(types);
    if (!path || !name || !version || !json_is_array(types) || nt == 0 ||
        nt > MOLT_REGISTRY_CACHE_MAX_TYPES || !json_u64(o, "dev", &dev) ||
        !json_u64(o, "ino", &ino) || !json_u64(o, "size", &size) ||
        !json_u64(o, "mtime_ns", &mtime) || !json_u64(o, "ctime_ns", &ctime) ||
        !json_u64(o, "capabilities", &caps) || caps > UINT32_MAX)
        return false;
    for (size_t i = 0; i < nt; i++)
        if (!(tv[i] = json_string_value(json_array_get(types, i))))
            return false;
    return entry_fill(e, path, dev, ino, size, (int64_t)mtime, (int64_t)ctime, name, version,
                      (uint32_t)caps, tv, nt);
}

/* Load the file's entries into c; anything wrong leaves c empty and marked changed. */
static void load_file(molt_registry_cache *c)
{
    char *data = NULL;
    size_t len = 0;
    if (molt_read_file(c->file, MOLT_REGISTRY_CACHE_MAX_BYTES, &data, &len, NULL) < 0) {
        c->changed = true;
        return;
    }
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    free(data);
    json_t *mods = json_object_get(root, "modules");
    const char *host = json_string_value(json_object_get(root, "host"));
    size_t n = json_array_size(mods);
    bool ok = host && strcmp(host, CACHE_HOST) == 0 && json_is_array(mods) &&
              n <= CACHE_MAX_ENTRIES;
    if (ok && n > 0)
        ok = (c->entries = calloc(n, sizeof *c->entries)) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = parse_entry(json_array_get(mods, i), &c->entries[i]);
        if (ok)
            c->n++;
    }
    json_decref(root);
    if (!ok) {
        for (size_t i = 0; i < c->n; i++)
            entry_free(&c->entries[i]);
        free(c->entries);
        c->entries = NULL;
        c->n = 0;
        c->changed = true;
    }
}

int molt_registry_cache_open(molt_registry_cache **ret, const char *data_dir, molt_err *err)
{
    molt_registry_cache *c = calloc(1, sizeof *c);
    char *native = c ? molt_path_join(data_dir, "native") : NULL;
    if (c)
        c->file = native ? molt_path_join(native, "registry.cache") : NULL;
    free(native);
    if (!c || !c->file) {
        free(c);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory reading the module registry cache");
    }
    load_file(c);
    *ret = c;
    return 0;
}

const molt_registry_cache_entry *molt_registry_cache_lookup(molt_registry_cache *c,
                                                            const char *path,
                                                            const struct stat *st)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].path, path) == 0) {
            if (!key_matches(&c->entries[i], st))
                return NULL;   /* stale: put() replaces it after the load */
            c->entries[i].used = true;
            return &c->entries[i];
        }
    return NULL;
}

int molt_registry_cache_put(molt_registry_cache *c, const char *path, const struct stat *st,
                            const char *name, const char *version, uint32_t capabilities,
                            const char *const *types, molt_err *err)
{
    size_t nt = 0;
    while (types[nt])
        nt++;
    if (nt == 0 || nt > MOLT_REGISTRY_CACHE_MAX_TYPES)
        return 0;   /* not cached: loaded again next time */
    molt_registry_cache_entry fresh;
    if (!entry_fill(&fresh, path, (uint64_t)st->st_dev, (uint64_t)st->st_ino,
                    (uint64_t)st->st_size, ns(&st->st_mtim), ns(&st->st_ctim), name, version,
                    capabilities, types, nt))
        return molt_err_set(err, MOLT_ENOMEM, "out of memory caching module %s", path);
    size_t at = c->n;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].path, path) == 0)
            at = i;
    if (at == c->n) {
        molt_registry_cache_entry *more =
            c->n < CACHE_MAX_ENTRIES ? realloc(c->entries, (c->n + 1) * sizeof *more) : NULL;
        if (!more) {
            entry_free(&fresh);
            return c->n < CACHE_MAX_ENTRIES
                       ? molt_err_set(err, MOLT_ENOMEM, "out of memory caching module %s", path)
                       : 0;
        }
        c->entries = more;
        memset(&c->entries[c->n++], 0, sizeof *more);
    }
    entry_free(&c->entries[at]);
    c->entries[at] = fresh;
    c->entries[at].used = true;
    c->changed = true;
    return 0;
}

int molt_registry_cache_save(molt_registry_cache *c, molt_err *err)
{
    for (size_t i = 0; i < c->n; i++)
        if (!c->entries[i].used)
            c->changed = true;
    if (!c->changed)
        return 0;
    int r = 0;
    char *text = NULL;
    json_t *mods = json_array();
    json_t *root = json_pack("{s:s, s:o}", "host", CACHE_HOST, "modules", mods);
    for (size_t i = 0; root && r == 0 && i < c->n; i++) {
        const molt_registry_cache_entry *e = &c->entries[i];
        if (!e->used)
            continue;
        json_t *types = json_array();
        for (size_t t = 0; types && e->types[t]; t++)
            if (json_array_append_new(types, json_string(e->types[t])) < 0)
                r = MOLT_ENOMEM;
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:I, s:o}",
                              "path", e->path, "dev", (json_int_t)e->dev, "ino",
                              (json_int_t)e->ino, "size", (json_int_t)e->size, "mtime_ns",
                              (json_int_t)e->mtime_ns, "ctime_ns", (json_int_t)e->ctime_ns,
                              "name", e->name, "version", e->version, "capabilities",
                              (json_int_t)e->capabilities, "types", types);
        if (!o || json_array_append_new(mods, o) < 0)
            r = MOLT_ENOMEM;
    }
    if (!root || r < 0 || !(text = json_dumps(root, JSON_INDENT(1)))) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory writing %s", c->file);
        goto out;
    }
    char *dir = strdup(c->file);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    r = dir ? molt_mkdir_p(dir, 0700, err) : molt_err_set(err, MOLT_ENOMEM, "out of memory");
    free(dir);
    if (r == 0)
        r = molt_write_file_atomic(c->file, text, strlen(text), 0600, err);
    if (r == 0)
        c->changed = false;
out:
    free(text);
    json_decref(root);
    return r;
}

void molt_registry_cache_free(molt_registry_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->entries[i]);
    free(c->entries);
    free(c->file);
    free(c);
}
