/* SPDX-License-Identifier: Apache-2.0 */
/* Version comparison for the downgrade policy (docs/configuration.md, `downgrade:`): integers,
 * Semantic Versioning 2.0.0 precedence and Debian versions (deb-version(7), as dpkg compares
 * them). Pure functions over strings: no allocation, no I/O, no locale. */
#ifndef MOLT_STATE_VERSION_H
#define MOLT_STATE_VERSION_H

#include "config/config.h"
#include "util/err.h"

/* Compare versions a and b in scheme: *ret_cmp < 0 when a is older than b, 0 when they are
 * equal in precedence (semver build metadata and Debian's "1.0" vs "1.0-0" compare equal), > 0
 * when a is newer. A string that is not a valid version of the scheme is MOLT_EFORMAT with a
 * message quoting it and saying what is wrong; *ret_cmp is then untouched.
 *   integer: one or more ASCII digits, nothing else (leading zeros allowed, any length);
 *   semver:  MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] exactly as semver.org 2.0.0 writes it (no
 *            leading "v", no leading zeros in numeric identifiers);
 *   debian:  [EPOCH:]UPSTREAM[-REVISION]; UPSTREAM starts with a digit and holds
 *            [A-Za-z0-9.+~-:] (':' only with an epoch, '-' only with a revision); REVISION
 *            holds [A-Za-z0-9.+~]; '~' sorts before anything, even the end. */
int molt_version_compare(molt_version_scheme scheme, const char *a, const char *b, int *ret_cmp,
                         molt_err *err);

/* Whether s is a valid version of scheme (MOLT_EFORMAT with the reason otherwise). */
int molt_version_check(molt_version_scheme scheme, const char *s, molt_err *err);

#endif
