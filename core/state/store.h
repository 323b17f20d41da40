/* SPDX-License-Identifier: Apache-2.0 */
/* The persistent store: one JSON document, the typed record below (molt_record), which one
 * strict, versioned load/save pair owns.
 * It lives in <data_dir>/store.slots, a two-slot record file (util/slots.h): each save writes
 * the next record in place into the slot not holding the newest, with one fdatasync. A slot cut
 * by a power loss fails its CRC and the other slot's record (the save before) is read; a file
 * whose slots both fail is refused, never silently trusted.
 * <data_dir>/store is the legacy file (format 1: one record replaced atomically, with a SHA-256),
 * which molt up to this release reads and writes. It is read when there is no slots file yet,
 * and when it was written after the slots file's newest record (each record names the legacy
 * file's identity as it was then, its stat and the SHA-256 its header holds: a copied file has
 * another stat but the same sum): by an earlier release after an A/B rollback to it. Before a
 * reboot (MOLT_STORE_HANDOVER) it is written too, so that an earlier release booted by a
 * rollback finds the deployment where it is. docs/configuration.md ("The store"). */
#ifndef MOLT_STATE_STORE_H
#define MOLT_STATE_STORE_H

#include <stdbool.h>
#include <jansson.h>
#include "host/module.h"
#include "util/err.h"
#include "util/slots.h"

#define MOLT_STORE_FORMAT 1
#define MOLT_STORE_LEGACY_ID_MAX 128   /* the legacy file's identity in a record, with its NUL */

/* What a load found beside the document. */
typedef struct molt_store_info {
    bool legacy;  /* read from the legacy file (path itself) */
    int damaged;  /* -1, or the slot of the slots file that failed its check while the other
                   * held the record: a save cut by a power loss (or a save seen while it ran,
                   * by a reader without the lock), else damage: worth a warning */
    char why[160];
    char legacy_id[MOLT_STORE_LEGACY_ID_MAX];   /* the legacy file's identity as the load
                                                 * found it, for the writer; "" if not taken */
    bool slots_read;             /* the slots file was read (with a valid record): slots holds
                                  * what the read found, for molt_store_writer_known */
    molt_slots_read_info slots;
} molt_store_info;

/* Load the document of the store at path (the legacy file's path; the slots file is path with
 * ".slots"). Missing files give an empty object (fresh device). A store that fails its checks,
 * has another format or is not JSON gives MOLT_ECORRUPT with the reason. *ret is a new
 * reference owned by the caller; info may be NULL. */
int molt_store_load(const char *path, json_t **ret, molt_err *err);
int molt_store_load_info(const char *path, json_t **ret, molt_store_info *info, molt_err *err);

/* Flags of a save. */
#define MOLT_STORE_LAZY 1u     /* no fdatasync: a power cut may lose this save (the save before
                                * is read); only for a record whose loss redoes idempotent work */
#define MOLT_STORE_HANDOVER 2u /* also replace the legacy file (durably), before the slots */

/* Save the document (object) as the next record of the slots file, durably unless lazy. */
int molt_store_save(const char *path, const json_t *doc, unsigned flags, molt_err *err);

/* Make the record saved last durable when it was saved lazily (molt_slots_sync): from then on a
 * power cut leaves it, and the next save goes to the other slot. 0 when it already was. */
int molt_store_sync(const char *path, molt_err *err);

/* The saves of one process that holds <data_dir>/lock from before its first save to after
 * molt_store_writer_free: the slots file is read once, at the first save, and kept open
 * (util/slots.h molt_slots_writer), and the legacy file is stat'd once (and again after a save
 * that writes it): while the lock is held no other process writes either. molt_store_save is
 * one writer's one save. */
typedef struct molt_store_writer molt_store_writer;
int molt_store_writer_new(const char *path, molt_store_writer **ret, molt_err *err);
void molt_store_writer_free(molt_store_writer *w);   /* NULL accepted */
int molt_store_write(molt_store_writer *w, const json_t *doc, unsigned flags, molt_err *err);
/* What the load found in the slots file (info of molt_store_load_info or molt_record_load),
 * given to a writer before its first save: that save then checks the file's size and slot
 * headers against the load's instead of reading the file again (util/slots.h
 * molt_slots_writer_known). Nothing when the load read no slots file. */
void molt_store_writer_known(molt_store_writer *w, const molt_store_info *info);

/* ---- the typed record ------------------------------------------------------------------------
 * The document's schema, key by key, is in docs/configuration.md ("The store"). The deployment
 * object carries "version" (MOLT_DEPLOYMENT_VERSION); a record without it is version 1, written
 * by molt up to 9f1b70b, which did not record the module's kind. */

#define MOLT_DEPLOYMENT_VERSION 2

/* The state whose work started last (written before the work begins). */
typedef enum molt_dep_state {
    MOLT_DS_DOWNLOAD,
    MOLT_DS_ARTIFACT_INSTALL,
    MOLT_DS_ARTIFACT_REBOOT,
    MOLT_DS_ARTIFACT_VERIFY_REBOOT,
    MOLT_DS_ARTIFACT_COMMIT,
    MOLT_DS_ARTIFACT_COMMIT_LEAVE,
    MOLT_DS_ARTIFACT_ROLLBACK,
    MOLT_DS_ARTIFACT_ROLLBACK_REBOOT,
    MOLT_DS_ARTIFACT_VERIFY_ROLLBACK_REBOOT,
    MOLT_DS_ARTIFACT_FAILURE,
    MOLT_DS_CLEANUP,
    MOLT_DS_COUNT
} molt_dep_state;

/* Why molt stopped on purpose: nothing (it works, or it was interrupted), waiting for commit or
 * rollback, for a reboot and `molt resume`, for a reboot that finishes the rollback, or a
 * rollback that could not run yet (MOLT_ETEMP) and waits to be retried. */
typedef enum molt_pending {
    MOLT_PENDING_NONE,
    MOLT_PENDING_COMMIT,
    MOLT_PENDING_REBOOT,
    MOLT_PENDING_ROLLBACK_REBOOT,
    MOLT_PENDING_ROLLBACK,
    MOLT_PENDING_COUNT
} molt_pending;

/* A module's answer to a query, as recorded: UNSET until the query was asked. */
typedef enum molt_rec_answer {
    MOLT_REC_UNSET,
    MOLT_REC_NO,
    MOLT_REC_YES,
    MOLT_REC_AUTOMATIC,
    MOLT_REC_COUNT
} molt_rec_answer;

/* How a deployment ended. */
typedef enum molt_result {
    MOLT_RESULT_SUCCESS,       /* installed and committed */
    MOLT_RESULT_FAILURE,       /* failed (rolled back, or marked _INCONSISTENT) */
    MOLT_RESULT_ROLLED_BACK,   /* `molt rollback` finished: the previous software is back */
    MOLT_RESULT_COUNT
} molt_result;

/* The names in the store: "ArtifactInstall"; "commit" (NULL for MOLT_PENDING_NONE);
 * "yes"/"no"/"automatic" (NULL for MOLT_REC_UNSET); "success"/"failure"/"rolled-back";
 * "native"/"exec". NULL for an out-of-range value. */
const char *molt_dep_state_name(molt_dep_state s);
const char *molt_pending_name(molt_pending p);
const char *molt_rec_answer_name(molt_rec_answer a);
const char *molt_result_name(molt_result r);
const char *molt_module_kind_name(molt_module_kind k);

/* The status a server gets for a deployment that ended with r (Mender's device API: "success"
 * or "failure"; a rollback asked for on the device is a failure of the deployment). */
const char *molt_result_server_status(molt_result r);

/* The artifact's header data a deployment needs after a restart. The JSON values are the
 * artifact's own (opaque here), owned by the record. */
typedef struct molt_dep_artifact {
    char *name;
    char *group;            /* NULL: none */
    char *payload_type;
    json_t *provides;       /* object: type-info artifact_provides */
    json_t *clears;         /* array, or NULL when the artifact has none */
    json_t *depends;        /* object: device_type, artifact_name, artifact_group, type_info */
    json_t *type_info;      /* object or NULL */
    json_t *header_info;    /* object or NULL */
    json_t *meta_data;      /* object or NULL */
} molt_dep_artifact;

/* The deployment in progress. Strings and JSON are owned by the record. */
typedef struct molt_deployment {
    char *id;               /* also the deployment log's id */
    char *started;          /* RFC 3339 UTC */
    char *source;           /* file or URL (credentials redacted) */
    molt_dep_state state;
    molt_pending pending;
    int state_count;        /* states entered: the loop guard (max_state_loops) */
    int rollback_retries;   /* how often the rollback could not run yet */
    char *rollback_error;   /* why, the last time; NULL: never */
    molt_dep_artifact artifact;
    molt_module_kind module_kind;
    char *module_type;      /* the payload type it handles */
    char *module_path;
    char *module_tree;
    molt_rec_answer reboot;           /* NeedsArtifactReboot after ArtifactInstall */
    molt_rec_answer rollback;         /* SupportsRollback */
    molt_rec_answer rollback_reboot;  /* NeedsArtifactReboot on the rollback path */
    bool failed;            /* the deployment failed */
    bool rolled_back;       /* the old software is back (or was never replaced) */
    bool rollback_failed;   /* the rollback or failure path failed: the device is inconsistent */
    bool user_rollback;     /* `molt rollback` asked for the rollback */
    char *error;            /* the first error of the deployment; NULL: none */
    json_t *module_values;  /* the module's deployment values (dep_set): an object of key:
                             * hex value; NULL or empty: none (the key is then not written) */
} molt_deployment;

/* The last deployment that ended. */
typedef struct molt_last_deployment {
    char *id;
    char *artifact_name;
    molt_result result;
    bool rolled_back;       /* the device is on the software it had before the deployment */
    char *finished;         /* RFC 3339 UTC */
} molt_last_deployment;

/* The whole store. */
typedef struct molt_record {
    /* The installed software, the one part kept as JSON because state/provides.c works on it:
     * "artifact_name", "artifact_group" (strings) and "artifact_provides" (object of strings),
     * each absent on a fresh device. Never NULL. */
    json_t *device;
    char *last_error;               /* the last failed command or deployment; NULL: none */
    molt_last_deployment *last;     /* NULL: no deployment ended yet */
    molt_deployment *dep;           /* NULL: no deployment in progress */
} molt_record;

/* The installed artifact's name and group from rec->device; NULL when none (a fresh device). */
const char *molt_record_artifact_name(const molt_record *rec);
const char *molt_record_artifact_group(const molt_record *rec);

/* The kind of the module at path, for a version 1 deployment record that did not record it. */
typedef molt_module_kind (*molt_kind_of_fn)(void *ctx, const char *module_path);

/* Load and check the store at path (molt_store_load, then the schema): a missing store is an
 * empty record. Every key is checked: an unknown key, a value of the wrong type, a missing
 * required key, a name that is not one of the enum's, or a deployment record newer than
 * MOLT_DEPLOYMENT_VERSION is MOLT_ECORRUPT with a message naming the store, the key and what
 * was expected. kind_of infers the module kind of a version 1 deployment (MOLT_EINVAL when
 * needed and NULL). *ret owned by the caller (molt_record_free); untouched on failure. */
int molt_record_load(const char *path, molt_kind_of_fn kind_of, void *kind_ctx, molt_record **ret,
                     molt_store_info *info, molt_err *err);

/* Save rec (molt_store_save with flags), the deployment as version MOLT_DEPLOYMENT_VERSION.
 * Every key the molt of 9f1b70b requires is written, so that release still reads a legacy file
 * written with MOLT_STORE_HANDOVER. */
int molt_record_save(const char *path, const molt_record *rec, unsigned flags, molt_err *err);
/* The same through a writer (molt_store_write). */
int molt_record_write(molt_store_writer *w, const molt_record *rec, unsigned flags, molt_err *err);

/* The two halves of load and save, without the file: the record of a store document (path only
 * names it in messages), and the document of a record (new reference, its text parsed; NULL
 * when out of memory or the record cannot be written).
 * For the fuzz target: whatever loads must save into a document that loads back the same. */
int molt_record_from_json(const char *path, const json_t *doc, molt_kind_of_fn kind_of,
                          void *kind_ctx, molt_record **ret, molt_err *err);
json_t *molt_record_to_json(const molt_record *rec);
/* The document's text as the store writes it (compact JSON, every object's keys in byte order:
 * the bytes of jansson's JSON_COMPACT | JSON_SORT_KEYS dump of molt_record_to_json, which is
 * this text parsed); made without the JSON values. *ret malloc'd; MOLT_ENOMEM, MOLT_ELIMIT, or
 * MOLT_EINVAL for a string that is not UTF-8 or a value out of its enum's range. */
int molt_record_to_text(const molt_record *rec, char **ret, size_t *ret_len);

/* An empty record (a fresh device). *ret owned by the caller. */
int molt_record_new(molt_record **ret, molt_err *err);
void molt_record_free(molt_record *rec);
void molt_deployment_free(molt_deployment *dep);
void molt_last_deployment_free(molt_last_deployment *last);

/* The artifact as one JSON object (the keys of the store's "deployment.artifact"), for the
 * native host, which reads the header from it. New reference; NULL when out of memory. */
json_t *molt_dep_artifact_json(const molt_dep_artifact *a);

#endif
