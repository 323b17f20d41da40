/* SPDX-License-Identifier: Apache-2.0 */
/* A library's functions resolved into a table (dl_lib.h). */
#include "util/dl_lib.h"

#include <dlfcn.h>
#include <string.h>

int molt_dl_lib_load(const char *soname, const molt_dl_fn *fns, size_t n, void *table,
                     const molt_dl_text *text, void **ret_handle, molt_err *err)
{
    dlerror();
    void *dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        return molt_err_set(err, MOLT_EUNSUPPORTED, "%s, which cannot be loaded (%s): %s; "
                            "install %s", text->need, soname, why ? why : "?", text->install);
    }
    for (size_t i = 0; i < n; i++) {
        dlerror();
        void *sym = dlsym(dl, fns[i].name);
        if (!sym) {
            dlclose(dl);
            return molt_err_set(err, MOLT_EUNSUPPORTED, "%s: %s has no function %s (%s)",
                                text->need, soname, fns[i].name, text->version);
        }
        /* POSIX: a function pointer round-trips through void *; copied by bytes so the
         * compiler does not warn about the conversion. */
        memcpy((char *)table + fns[i].offset, &sym, sizeof sym);
    }
    *ret_handle = dl;
    return 0;
}
