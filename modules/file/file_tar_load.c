/* SPDX-License-Identifier: Apache-2.0 */
/* Loading the file module's tar support (file-tar.so, file_module.h) on the first tree: found in
 * the folder of this file.so, whatever that folder is (the build tree, a device's
 * native_module_dir, a copy a test or a benchmark made). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "file_module.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loaded once per process and never unloaded (a later tree, even after file.so was unloaded
 * and loaded again, finds it in place). */
static const fm_tar *loaded;

/* The path of FM_TAR_SO beside the file.so holding this code (malloc'd), or NULL. */
static char *tar_path(void)
{
    Dl_info info;
    char *path = NULL;
    if (dladdr(&loaded, &info) == 0 || !info.dli_fname)
        return NULL;
    const char *slash = strrchr(info.dli_fname, '/');
    int dir_len = slash ? (int)(slash - info.dli_fname) : 1;
    const char *dir = slash ? info.dli_fname : ".";
    if (asprintf(&path, "%.*s/" FM_TAR_DIR "/" FM_TAR_SO, dir_len, dir) < 0)
        return NULL;
    return path;
}

int fm_tar_load(const fm_tar **ret, struct molt_sdk_error *err)
{
    if (loaded) {
        *ret = loaded;
        return 0;
    }
    char *path = tar_path();
    if (!path)
        return fm_err(err, MOLT_EUNSUPPORTED, "trees need the file module's tar support (%s/%s "
                      "beside file.so), but the folder of file.so is unknown (dladdr)",
                      FM_TAR_DIR, FM_TAR_SO);
    int r = 0;
    dlerror();
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    fm_tar_entry_fn entry = NULL;
    const fm_tar *t = NULL;
    if (!dl) {
        const char *why = dlerror();
        r = fm_err(err, MOLT_EUNSUPPORTED, "the file module's tar support %s (for payload type "
                   "directory and tree entries) cannot be loaded: %s (it is installed with "
                   "file.so, from the same build)", path, why ? why : "?");
        goto out;
    }
    void *sym = dlsym(dl, FM_TAR_ENTRY);
    /* POSIX: a function pointer round-trips through void *; copied by bytes so the compiler
     * does not warn about the conversion. */
    if (sym)
        memcpy(&entry, &sym, sizeof entry);
    t = entry ? entry() : NULL;
    if (!t || t->size < sizeof *t || t->version != FM_TAR_VERSION || t->fm_size != sizeof(fm)) {
        if (!t)
            r = fm_err(err, MOLT_EUNSUPPORTED, "the file module's tar support %s is not one: it "
                       "has no %s (install file.so and file-tar.so from one build)", path,
                       FM_TAR_ENTRY);
        else
            r = fm_err(err, MOLT_EUNSUPPORTED, "the file module's tar support %s is of another "
                       "build: version %u, %u-byte state; this file.so needs version %u, %zu "
                       "bytes (install both from one build)", path, (unsigned)t->version,
                       t->size >= sizeof *t ? (unsigned)t->fm_size : 0u,
                       (unsigned)FM_TAR_VERSION, sizeof(fm));
        dlclose(dl);
        goto out;
    }
    loaded = t;
    *ret = t;
out:
    free(path);
    return r;
}
