/* SPDX-License-Identifier: Apache-2.0 */
/* The deb module's internal interface: running dpkg and its tools as child processes, the
 * package database of the configured root, Debian version comparison and the dependency check. */
#ifndef MOLT_DEB_H
#define MOLT_DEB_H

#include <stdbool.h>
#include <stddef.h>
#include <molt/sdk.h>

/* Caps on what we read from children and keep in memory. */
#define DEB_OUT_MAX (16u << 20)   /* output of one command */
#define DEB_PKGS_MAX 256          /* .deb files in one payload */
#define DEB_FIELD_MAX 4096        /* one control field we keep */

typedef struct deb_ctx {
    const struct molt_host_api *host;
    char root[1024];       /* config "root" (default "/") */
    char admindir[1200];   /* <root>/var/lib/dpkg */
    bool chrootless;       /* config "script_chrootless": --force-script-chrootless */
} deb_ctx;

/* Output of a child, NUL-terminated; len excludes the NUL. */
typedef struct deb_buf {
    char *data;
    size_t len;
} deb_buf;

/* A package: from the status database (status = the three db:Status-Abbrev letters) or from a
 * .deb's control file (status ""). Strings malloc'd. */
typedef struct deb_pkg {
    char *name, *version, *arch, *status, *provides, *depends, *predepends, *conflicts;
    char *file;   /* the .deb (payload packages) */
} deb_pkg;

typedef struct deb_list {
    deb_pkg *v;
    size_t n;
} deb_list;

/* Run argv (argv[0] found in PATH; /usr/sbin and /sbin are added when missing, dpkg needs them)
 * in cwd (NULL: ours). Its stdout, and its stderr unless quiet_stderr, go to *out (may be NULL,
 * free with deb_buf_free) up to DEB_OUT_MAX bytes; every line of a non-quiet command is logged
 * at info level. Returns the exit status (>= 0, 128+signal when killed) or a negative code when
 * it could not run (message set with host->error). */
int deb_run(deb_ctx *d, const char *const argv[], const char *cwd, bool quiet_stderr,
            deb_buf *out);
void deb_buf_free(deb_buf *b);
/* The last lines of b (at most max bytes), for error messages. */
const char *deb_tail(const deb_buf *b, size_t max);

/* The packages in the status database of the root (every state dpkg-query lists). */
int deb_db_load(deb_ctx *d, deb_list *ret);
/* Package, Version, Architecture, Depends, Pre-Depends of a .deb file (file kept in ->file). */
int deb_control_load(deb_ctx *d, const char *file, deb_pkg *ret);
void deb_pkg_free(deb_pkg *p);
void deb_list_free(deb_list *l);
/* The entry named name, or NULL. */
deb_pkg *deb_list_find(const deb_list *l, const char *name);
/* True when the status letters say the package's files are on the system and configured
 * (installed, triggers-awaited or triggers-pending). */
bool deb_status_installed(const char *status);

/* The installed packages (not in payload) that a payload package's Conflicts names at a
 * matching version: dpkg removes them when the payload package also Replaces them. Appends
 * pointers into db to ret (cap entries), returns the count. */
size_t deb_conflicting(const deb_list *db, const deb_list *payload, const deb_pkg **ret,
                       size_t cap);

/* Debian version comparison (deb-version(7)): <0, 0, >0. */
int deb_version_cmp(const char *a, const char *b);

/* Every Depends and Pre-Depends of the payload packages is satisfied by the payload or by a
 * package installed in db (or what it Provides), and no installed package's dependency is broken
 * by the versions the payload brings. 0, or MOLT_EDEPENDS with the first unmet dependency in
 * msg. */
int deb_check_depends(const deb_list *db, const deb_list *payload, char *msg, size_t cap);

#endif
