/* SPDX-License-Identifier: Apache-2.0 */
/* The module registry: native modules first (native_module_dir), then exec modules (module_dirs);
 * the one lookup the state machine and `molt modules` use. */
#include "host/registry.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "host/exec_host.h"
#include "host/native_host.h"
#include "host/registry_cache.h"
#include "util/fs.h"
#include "util/strict.h"
#include "util/log.h"

/* More module files than this in one folder is a mistake, not a device. */
#define REGISTRY_MAX_ITEMS 4096

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int add_item(molt_registry *reg, const molt_registry_item *item, molt_err *err)
{
    if (reg->n_items >= REGISTRY_MAX_ITEMS)
        return molt_err_set(err, MOLT_ELIMIT, "more than %d update modules", REGISTRY_MAX_ITEMS);
    molt_registry_item *items = realloc(reg->items, (reg->n_items + 1) * sizeof *items);
    if (!items)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory listing modules");
    reg->items = items;
    molt_registry_item *it = &items[reg->n_items];
    *it = *item;
    it->type = item->type ? strdup(item->type) : NULL;
    it->path = strdup(item->path);
    it->name = item->name ? strdup(item->name) : NULL;
    it->version = item->version ? strdup(item->version) : NULL;
    it->refused = item->refused ? strdup(item->refused) : NULL;
    reg->n_items++;
    if ((item->type && !it->type) || !it->path || (item->name && !it->name) ||
        (item->version && !it->version) || (item->refused && !it->refused))
        return molt_err_set(err, MOLT_ENOMEM, "out of memory listing modules");
    return 0;
}

static bool not_hidden(void *ctx, int dir_fd, const char *name)
{
    (void)ctx;
    (void)dir_fd;
    return name[0] != '.';
}

/* The file names in a module folder, sorted; a missing folder has none. */
static int list_dir(const char *dir, char ***ret, size_t *ret_n, molt_err *err)
{
    int r = molt_dir_names(dir, "module folder", not_hidden, NULL, REGISTRY_MAX_ITEMS, ret, ret_n,
                           err);
    if (r == MOLT_ENOTFOUND) {
        molt_err_clear(err);
        *ret = NULL;
        *ret_n = 0;
        return 0;
    }
    return r;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static bool is_isolated(const molt_config *cfg, const char *path)
{
    for (size_t i = 0; i < cfg->n_native_isolated_modules; i++)
        if (strcmp(cfg->native_isolated_modules[i], path) == 0 ||
            same_file(cfg->native_isolated_modules[i], path))
            return true;
    return false;
}

/* The item of the native module claiming type, if any. */
static const molt_registry_item *native_claim(const molt_registry *reg, const char *type)
{
    for (size_t i = 0; i < reg->n_items; i++)
        if (reg->items[i].kind == MOLT_MODULE_NATIVE && reg->items[i].type &&
            strcmp(reg->items[i].type, type) == 0)
            return &reg->items[i];
    return NULL;
}

/* Add the rows of an accepted module file (from its descriptor, or from the cache): one per
 * payload type, or one refusal when a type is already claimed by an earlier file. */
static int add_native(molt_registry *reg, const molt_config *cfg, const char *path,
                      const char *name, const char *version, uint32_t capabilities,
                      const char *const *types, molt_err *err)
{
    molt_err e = {0};
    molt_registry_item item = {.kind = MOLT_MODULE_NATIVE, .path = (char *)path};
    /* A type already claimed refuses the whole file: half a module is worse. */
    for (size_t t = 0; types[t] && !item.refused; t++) {
        const molt_registry_item *owner = native_claim(reg, types[t]);
        if (owner) {
            molt_err_set(&e, MOLT_EUNSUPPORTED,
                         "module %s: payload type %s is already claimed by module %s", path,
                         types[t], owner->path);
            item.refused = e.msg;
        }
    }
    if (item.refused)
        return add_item(reg, &item, err);
    item.name = (char *)name;
    item.version = (char *)version;
    item.capabilities = capabilities;
    item.isolated = is_isolated(cfg, path);
    int r = 0;
    for (size_t t = 0; r == 0 && types[t]; t++) {
        item.type = (char *)types[t];
        r = add_item(reg, &item, err);
    }
    return r;
}

/* One native module file: its declarations from the cache when the file is unchanged, else
 * loaded and checked in a child process (molt_native_probe) and recorded in the cache when
 * accepted. */
static int scan_native_file(molt_registry *reg, const molt_config *cfg, molt_registry_cache *cache,
                            const char *path, const struct stat *st, molt_err *err)
{
    molt_err e = {0};
    /* Neither probed (loaded in a child) nor listed from the cache when another user could have
     * written it. */
    bool refused = molt_strict_check(path, "native module", &e) < 0;
    const molt_registry_cache_entry *ce = cache && !refused
                                              ? molt_registry_cache_lookup(cache, path, st)
                                              : NULL;
    if (ce)
        return add_native(reg, cfg, path, ce->name, ce->version, ce->capabilities,
                          (const char *const *)ce->types, err);
    molt_native_decl d;
    int r;
    if (refused || molt_native_probe(path, &d, &e) < 0) {
        molt_registry_item item = {.kind = MOLT_MODULE_NATIVE, .path = (char *)path,
                                   .refused = e.msg};
        return add_item(reg, &item, err);
    }
    r = add_native(reg, cfg, path, d.name, d.version, d.capabilities,
                   (const char *const *)d.types, err);
    if (r == 0 && cache)
        r = molt_registry_cache_put(cache, path, st, d.name, d.version, d.capabilities,
                                    (const char *const *)d.types, err);
    molt_native_decl_free(&d);
    return r;
}

static int scan_native(molt_registry *reg, const molt_config *cfg, molt_err *err)
{
    char **names = NULL;
    size_t n = 0;
    molt_registry_cache *cache = NULL;
    const char *dir = cfg->native_module_dir;
    int r = dir ? list_dir(dir, &names, &n, err) : 0;
    if (r == 0 && n > 0 && cfg->data_dir)
        r = molt_registry_cache_open(&cache, cfg->data_dir, err);
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct stat st;
        char *path = molt_path_join(dir, names[i]);
        if (!path) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
            break;
        }
        if (ends_with(names[i], ".so") && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            r = scan_native_file(reg, cfg, cache, path, &st, err);
        free(path);
    }
    if (r == 0 && cache) {
        molt_err e = {0};
        if (molt_registry_cache_save(cache, &e) < 0)
            molt_log_debug("module registry cache not written (modules are loaded at each "
                           "scan): %s", e.msg);
    }
    molt_registry_cache_free(cache);
    molt_names_free(names, n);
    return r;
}

/* Every executable file in the exec module dirs, for the payload type of its name; a type found
 * in an earlier folder, or claimed by a native module, hides later ones (as lookup does). */
static int scan_exec(molt_registry *reg, const molt_config *cfg, molt_err *err)
{
    int r = 0;
    for (size_t i = 0; r == 0 && i < cfg->n_module_dirs; i++) {
        char **names = NULL;
        size_t n = 0;
        if ((r = list_dir(cfg->module_dirs[i], &names, &n, err)) < 0)
            break;
        for (size_t j = 0; r == 0 && j < n; j++) {
            char *path = molt_path_join(cfg->module_dirs[i], names[j]);
            struct stat st;
            if (!path) {
                r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
                break;
            }
            if (!molt_registry_lookup(reg, names[j]) && stat(path, &st) == 0 &&
                S_ISREG(st.st_mode) && access(path, X_OK) == 0) {
                molt_err e = {0};
                bool refused = molt_strict_check(path, "update module", &e) < 0;
                molt_registry_item item = {.kind = MOLT_MODULE_EXEC,
                                           .type = names[j], .path = path,
                                           .refused = refused ? e.msg : NULL};
                r = add_item(reg, &item, err);
            }
            free(path);
        }
        molt_names_free(names, n);
    }
    return r;
}

int molt_registry_load(molt_registry **ret, const molt_config *cfg, molt_err *err)
{
    molt_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory listing modules");
    int r = scan_native(reg, cfg, err);
    if (r == 0)
        r = scan_exec(reg, cfg, err);
    if (r < 0) {
        molt_registry_free(reg);
        return r;
    }
    *ret = reg;
    return 0;
}

const molt_registry_item *molt_registry_lookup(const molt_registry *reg, const char *type)
{
    for (size_t i = 0; type && i < reg->n_items; i++)
        if (reg->items[i].type && !reg->items[i].refused && strcmp(reg->items[i].type, type) == 0)
            return &reg->items[i];
    return NULL;
}

void molt_registry_free(molt_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_items; i++) {
        molt_registry_item *it = &reg->items[i];
        free(it->type);
        free(it->path);
        free(it->name);
        free(it->version);
        free(it->refused);
    }
    free(reg->items);
    free(reg);
}

int molt_registry_find(const molt_config *cfg, const char *type, char **ret_path,
                       molt_module_kind *ret_kind, uint32_t *ret_caps, molt_err *err)
{
    molt_registry *reg = NULL;
    int r = molt_registry_load(&reg, cfg, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < reg->n_items; i++)
        if (reg->items[i].refused)
            molt_log_warning("%s", reg->items[i].refused);
    const molt_registry_item *it = native_claim(reg, type);
    if (it) {
        char *path = strdup(it->path);
        uint32_t caps = it->capabilities;
        molt_registry_free(reg);
        if (!path)
            return molt_err_set(err, MOLT_ENOMEM, "out of memory");
        *ret_path = path;
        *ret_kind = MOLT_MODULE_NATIVE;
        if (ret_caps)
            *ret_caps = caps;
        return 0;
    }
    molt_registry_free(reg);
    /* The exec lookup keeps its own rules (a type with '/' or escaping its folder is refused). */
    r = molt_exec_find((const char *const *)cfg->module_dirs, cfg->n_module_dirs, type, ret_path,
                       err);
    if (r == 0) {
        *ret_kind = MOLT_MODULE_EXEC;
        if (ret_caps)
            *ret_caps = 0;
    }
    if (r == MOLT_ENOTFOUND && cfg->native_module_dir && err) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof err->msg - len, " (and no native module in %s claims it)",
                 cfg->native_module_dir);
    }
    return r;
}

bool molt_registry_is_native(const molt_config *cfg, const char *path)
{
    if (!cfg->native_module_dir || !ends_with(path, ".so"))
        return false;
    const char *slash = strrchr(path, '/');
    if (!slash)
        return false;
    char *dir = strndup(path, (size_t)(slash - path));
    bool native = dir && (strcmp(dir, cfg->native_module_dir) == 0 ||
                          same_file(dir, cfg->native_module_dir));
    free(dir);
    return native;
}

int molt_registry_tree_create(molt_module_kind kind, const char *tree_dir,
                              const molt_artifact_info *info, const molt_exec_tree_info *cur,
                              molt_err *err)
{
    if (kind == MOLT_MODULE_NATIVE)
        return molt_worktree_create_native(tree_dir, err);
    return molt_worktree_create_exec(tree_dir, info, cur, err);
}

int molt_registry_module_new(const molt_config *cfg, molt_module **ret, molt_module_kind kind,
                             const char *path, const char *type, const char *tree_dir,
                             const json_t *artifact, const molt_module_record *record,
                             molt_err *err)
{
    bool native = kind == MOLT_MODULE_NATIVE;
    /* What runs as root: refused when another user could have written it (strict modes). */
    int r = molt_strict_check(path, native ? "native module" : "update module", err);
    if (r < 0)
        return r;
    if (!native)
        return molt_exec_module_new(ret, path, type, tree_dir, cfg->module_timeout, err);
    molt_native_opts opts = {
        .tree_dir = tree_dir,
        .artifact = artifact,
        .data_dir = cfg->data_dir,
        .isolated = is_isolated(cfg, path),
        .timeout = cfg->module_timeout,
        .cfg = cfg,
        .record = record,
    };
    return molt_native_module_new(ret, path, type, &opts, err);
}
