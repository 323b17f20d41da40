/* SPDX-License-Identifier: Apache-2.0 */
/* State scripts (docs/reference §2.9): <State>_<Enter|Leave|Error>_NN[_desc], run in lexical order,
 * no arguments; exit 21 = retry later (every retry_interval until retry_timeout); stderr logged. */
#ifndef MOLT_STATE_SCRIPTS_H
#define MOLT_STATE_SCRIPTS_H

#include <stdbool.h>
#include "artifact/artifact.h"
#include "util/err.h"

/* A script folder as read once: its script names (sorted) and "version", and the check of that
 * file. Owned by the caller; molt_scripts_listing_clear frees it and marks it unread. */
typedef struct molt_scripts_listing {
    bool read;      /* the fields below are the folder's */
    int code;       /* 0; MOLT_ENOTFOUND: no folder; else why its scripts cannot run (err) */
    molt_err err;
    char **names;
    size_t n;
} molt_scripts_listing;

void molt_scripts_listing_clear(molt_scripts_listing *l);   /* NULL accepted */

typedef struct molt_scripts_opts {
    const char *rootfs_dir;      /* Idle, Sync, Download scripts (config scripts_dir) */
    const char *artifact_dir;    /* Artifact* scripts extracted from the artifact */
    /* NULL, or the artifact folder's listing, read at its first use and reused by every run
     * after (only molt writes that folder, by molt_scripts_extract, which refreshes it). The
     * rootfs folder is read at every run: it is the system's, not molt's. */
    molt_scripts_listing *artifact_listing;
    int timeout;                 /* per script, seconds */
    int retry_interval;
    int retry_timeout;
} molt_scripts_opts;

/* Replace opts->artifact_dir with the artifact's scripts (mode 0700) and a "version" file
 * ("3"); opts->artifact_listing is cleared (or set, when the folder is kept as it was). */
int molt_scripts_extract(const molt_scripts_opts *opts, const molt_artifact_info *info,
                         molt_err *err);

/* Run every script of state ("ArtifactInstall", "Download", ...) and action ("Enter", "Leave",
 * "Error"). For Error all run even when one fails. 0 if all succeeded, else MOLT_EMODULE with
 * the script name and exit code. */
int molt_scripts_run(const molt_scripts_opts *opts, const char *state, const char *action,
                     molt_err *err);

/* True when state and action have no script to run (no folder, or no matching name) and the
 * folder's version is fine: molt_scripts_run would do nothing. False when in doubt. */
bool molt_scripts_none(const molt_scripts_opts *opts, const char *state, const char *action);

#endif
