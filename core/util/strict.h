/* SPDX-License-Identifier: Apache-2.0 */
/* Strict modes, as sshd's StrictModes: the files that decide what molt runs as root (the
 * configuration, module files, state scripts) must not be writable by another user. */
#ifndef MOLT_UTIL_STRICT_H
#define MOLT_UTIL_STRICT_H

#include "util/err.h"

/* Test setting (docs/configuration.md "Strict modes"): MOLT_TEST_OWNER_UID=<uid> accepts files
 * and folders owned by that uid like root's, for a test suite run as root from a checkout or a
 * TMPDIR that a developer owns. It never relaxes the group- and world-writable checks. */
#define MOLT_STRICT_OWNER_ENV "MOLT_TEST_OWNER_UID"

/* Check path (what names it in the message: "configuration", "update module", "state script")
 * and every folder above it, both as written and resolved (symlinks followed), up to /:
 *  - the file: owned by root or by the user molt runs as, neither group- nor world-writable;
 *  - each folder: owned by root or by molt's user; group- or world-writable only if sticky
 *    (as /tmp: nobody can then rename or remove a file they do not own).
 * 0, or MOLT_ECONFIG with a message naming the file or folder, its mode and owner, and why;
 * MOLT_ENOTFOUND / MOLT_EIO when it cannot be examined. */
int molt_strict_check(const char *path, const char *what, molt_err *err);

#endif
