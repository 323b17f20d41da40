/* SPDX-License-Identifier: Apache-2.0 */
/* The store's typed record (core/state/store.c): the stores written by molt 9f1b70b
 * (tests/store-9f1b70b) load with every field as that release meant it and save back with only
 * the new keys added; every unknown, mistyped or missing key is refused by name; Cleanup's
 * decision over every combination of its flags; the result a server is told. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "state/machine.h"
#include "state/store.h"
#include "util/fs.h"

typedef struct fixture {
    char dir[64];
    char path[128];       /* the store under test */
    char src[512];        /* tests/store-9f1b70b */
    int kind_calls;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/molt-record-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/store", f->dir);
    const char *src = getenv("MOLT_SRC_DIR");
    snprintf(f->src, sizeof f->src, "%s/tests/store-9f1b70b", src ? src : ".");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    assert_int_equal(molt_rm_rf(f->dir, NULL), 0);
    free(f);
    return 0;
}

/* The fixtures' native modules live in /tmp/molt-store-fixtures/native (make-fixtures.sh). */
static molt_module_kind kind_of(void *ctx, const char *path)
{
    fixture *f = ctx;
    f->kind_calls++;
    return strncmp(path, "/tmp/molt-store-fixtures/native/", 32) == 0 ? MOLT_MODULE_NATIVE
                                                                       : MOLT_MODULE_EXEC;
}

static void fixture_path(fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.store", f->src, name);
}

static molt_record *load_fixture(fixture *f, const char *name)
{
    char path[640];
    fixture_path(f, name, path, sizeof path);
    molt_record *rec = NULL;
    molt_err err = {0};
    if (molt_record_load(path, kind_of, f, &rec, NULL, &err) != 0)
        fail_msg("%s: %s", name, err.msg);
    return rec;
}

/* The JSON document of a store file. */
static json_t *doc_of(const char *path)
{
    json_t *doc = NULL;
    molt_err err = {0};
    if (molt_store_load(path, &doc, &err) != 0)
        fail_msg("%s: %s", path, err.msg);
    return doc;
}

/* What each fixture holds, as the release of 9f1b70b meant it. */
typedef struct expect {
    const char *name;
    bool dep;
    molt_dep_state state;
    molt_pending pending;
    int state_count;
    molt_rec_answer reboot, rollback, rollback_reboot;
    bool failed, rolled_back;
    int retries;
    bool has_error;
    molt_module_kind kind;
    const char *device_name;
    molt_result last;
    bool last_rolled_back;
    bool has_last_error;
} expect;

#define IDLE(n, dn, res, rb, le)                                                                  \
    {.name = n, .dep = false, .device_name = dn, .last = res, .last_rolled_back = rb,              \
     .has_last_error = le}
#define DEP(n, st, pe, cnt, rbt, rbk, rrb, fa, rolled, tries, er, k)                               \
    {.name = n, .dep = true, .state = st, .pending = pe, .state_count = cnt, .reboot = rbt,        \
     .rollback = rbk, .rollback_reboot = rrb, .failed = fa, .rolled_back = rolled,                \
     .retries = tries, .has_error = er, .kind = k, .device_name = "base-1",                        \
     .last = MOLT_RESULT_SUCCESS}

static const expect fixtures[] = {
    IDLE("idle-success", "base-1", MOLT_RESULT_SUCCESS, false, false),
    IDLE("idle-rolled-back", "base-1", MOLT_RESULT_ROLLED_BACK, true, false),
    IDLE("idle-failure", "new-1_INCONSISTENT", MOLT_RESULT_FAILURE, false, true),
    DEP("download", MOLT_DS_DOWNLOAD, MOLT_PENDING_NONE, 1, MOLT_REC_UNSET, MOLT_REC_UNSET,
        MOLT_REC_UNSET, false, false, 0, false, MOLT_MODULE_EXEC),
    DEP("install", MOLT_DS_ARTIFACT_INSTALL, MOLT_PENDING_NONE, 2, MOLT_REC_UNSET,
        MOLT_REC_UNSET, MOLT_REC_UNSET, false, false, 0, false, MOLT_MODULE_EXEC),
    DEP("awaiting-commit", MOLT_DS_ARTIFACT_COMMIT, MOLT_PENDING_COMMIT, 2, MOLT_REC_NO,
        MOLT_REC_YES, MOLT_REC_UNSET, false, false, 0, false, MOLT_MODULE_EXEC),
    DEP("awaiting-reboot", MOLT_DS_ARTIFACT_REBOOT, MOLT_PENDING_REBOOT, 3, MOLT_REC_AUTOMATIC,
        MOLT_REC_YES, MOLT_REC_UNSET, false, false, 0, false, MOLT_MODULE_EXEC),
    DEP("rollback-reboot", MOLT_DS_ARTIFACT_ROLLBACK_REBOOT, MOLT_PENDING_ROLLBACK_REBOOT, 6,
        MOLT_REC_AUTOMATIC, MOLT_REC_YES, MOLT_REC_AUTOMATIC, true, true, 0, true,
        MOLT_MODULE_EXEC),
    DEP("rollback", MOLT_DS_ARTIFACT_ROLLBACK, MOLT_PENDING_NONE, 3, MOLT_REC_UNSET, MOLT_REC_YES,
        MOLT_REC_UNSET, true, false, 0, true, MOLT_MODULE_EXEC),
    DEP("rollback-pending", MOLT_DS_ARTIFACT_ROLLBACK, MOLT_PENDING_ROLLBACK, 3, MOLT_REC_UNSET,
        MOLT_REC_YES, MOLT_REC_UNSET, true, false, 1, true, MOLT_MODULE_EXEC),
    DEP("failure", MOLT_DS_ARTIFACT_FAILURE, MOLT_PENDING_NONE, 3, MOLT_REC_UNSET, MOLT_REC_NO,
        MOLT_REC_UNSET, true, false, 0, true, MOLT_MODULE_EXEC),
    DEP("cleanup", MOLT_DS_CLEANUP, MOLT_PENDING_NONE, 4, MOLT_REC_NO, MOLT_REC_NO,
        MOLT_REC_UNSET, false, false, 0, false, MOLT_MODULE_EXEC),
    DEP("native-awaiting-commit", MOLT_DS_ARTIFACT_COMMIT, MOLT_PENDING_COMMIT, 2, MOLT_REC_NO,
        MOLT_REC_YES, MOLT_REC_UNSET, false, false, 0, false, MOLT_MODULE_NATIVE),
};

static void check_expect(const expect *x, const molt_record *rec)
{
    assert_string_equal(json_string_value(json_object_get(rec->device, "artifact_name")),
                        x->device_name);
    assert_string_equal(json_string_value(json_object_get(rec->device, "artifact_group")),
                        "group-a");
    assert_true(json_is_object(json_object_get(rec->device, "artifact_provides")));
    assert_non_null(rec->last);
    assert_int_equal(rec->last->result, x->last);
    assert_int_equal(rec->last->rolled_back, x->last_rolled_back);
    assert_non_null(rec->last->id);
    assert_non_null(rec->last->finished);
    assert_int_equal(rec->last_error != NULL, x->has_last_error);
    if (!x->dep) {
        assert_null(rec->dep);
        return;
    }
    const molt_deployment *d = rec->dep;
    assert_non_null(d);
    assert_int_equal(d->state, x->state);
    assert_int_equal(d->pending, x->pending);
    assert_int_equal(d->state_count, x->state_count);
    assert_int_equal(d->reboot, x->reboot);
    assert_int_equal(d->rollback, x->rollback);
    assert_int_equal(d->rollback_reboot, x->rollback_reboot);
    assert_int_equal(d->failed, x->failed);
    assert_int_equal(d->rolled_back, x->rolled_back);
    assert_false(d->rollback_failed);
    assert_false(d->user_rollback);
    assert_int_equal(d->rollback_retries, x->retries);
    assert_int_equal(d->rollback_error != NULL, x->retries > 0);
    assert_int_equal(d->error != NULL, x->has_error);
    assert_int_equal(d->module_kind, x->kind);
    assert_non_null(d->id);
    assert_non_null(d->started);
    assert_non_null(strstr(d->source, ".mender"));
    assert_string_equal(d->module_tree,
                        "/tmp/molt-store-fixtures/data/modules/v3/payloads/0000/tree");
    const char *type = x->kind == MOLT_MODULE_NATIVE ? "single-file" : "test-type";
    assert_string_equal(d->module_type, type);
    assert_string_equal(d->artifact.payload_type, type);
    assert_string_equal(d->artifact.name, x->kind == MOLT_MODULE_NATIVE ? "sf-1" : "new-1");
    if (x->kind == MOLT_MODULE_NATIVE)
        assert_null(d->artifact.group);   /* null in the file */
    else
        assert_string_equal(d->artifact.group, "group-a");
    assert_true(json_is_object(d->artifact.provides));
    assert_true(json_is_array(d->artifact.clears));
    assert_true(json_is_object(d->artifact.depends));
    assert_true(json_is_object(d->artifact.type_info));
    assert_true(json_is_object(d->artifact.header_info));
    assert_null(d->artifact.meta_data);   /* null in the file */
}

/* Every store the release of 9f1b70b wrote loads, typed as it was meant. */
static void test_release_stores_load(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        f->kind_calls = 0;
        molt_record *rec = load_fixture(f, fixtures[i].name);
        check_expect(&fixtures[i], rec);
        /* The kind is inferred once, for the version 1 deployment record only. */
        assert_int_equal(f->kind_calls, fixtures[i].dep ? 1 : 0);
        molt_record_free(rec);
    }
}

/* Saved again, a release store is the same document plus the new keys (deployment.version and
 * deployment.module.kind): the release of 9f1b70b, which ignores keys it does not know, still
 * reads it. Loaded again, it is the same record, and the kind is no longer inferred. */
static void test_release_stores_save_back(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        molt_record *rec = load_fixture(f, fixtures[i].name);
        molt_err err = {0};
        assert_int_equal(molt_record_save(f->path, rec, 0, &err), 0);
        molt_record_free(rec);

        char old_path[640];
        fixture_path(f, fixtures[i].name, old_path, sizeof old_path);
        json_t *old = doc_of(old_path), *now = doc_of(f->path);
        json_t *dep = json_object_get(now, "deployment");
        if (fixtures[i].dep) {
            assert_int_equal(json_integer_value(json_object_get(dep, "version")),
                             MOLT_DEPLOYMENT_VERSION);
            assert_string_equal(json_string_value(json_object_get(json_object_get(dep, "module"),
                                                                  "kind")),
                                molt_module_kind_name(fixtures[i].kind));
            json_object_del(dep, "version");
            json_object_del(json_object_get(dep, "module"), "kind");
        }
        if (!json_equal(old, now)) {
            char *a = json_dumps(old, JSON_SORT_KEYS), *b = json_dumps(now, JSON_SORT_KEYS);
            fail_msg("%s saved back differs:\n%s\n%s", fixtures[i].name, a, b);
        }
        json_decref(old);
        json_decref(now);

        f->kind_calls = 0;
        rec = NULL;
        assert_int_equal(molt_record_load(f->path, NULL, NULL, &rec, NULL, &err), 0);
        check_expect(&fixtures[i], rec);
        molt_record_free(rec);
    }
}

/* A missing store is a fresh device: an empty record. */
static void test_missing_store_is_empty(void **state)
{
    fixture *f = *state;
    molt_record *rec = NULL;
    molt_err err = {0};
    assert_int_equal(molt_record_load(f->path, NULL, NULL, &rec, NULL, &err), 0);
    assert_int_equal(json_object_size(rec->device), 0);
    assert_null(rec->dep);
    assert_null(rec->last);
    assert_null(rec->last_error);
    molt_record_free(rec);
}

/* One change to a fixture's document, and the words the refusal must contain. */
typedef struct damage {
    const char *fixture;
    const char *path;      /* "a.b.c": the key to change (created when missing) */
    const char *value;     /* JSON text; NULL: delete the key */
    const char *words;
} damage;

static const damage damages[] = {
    {"idle-success", "colour", "\"red\"", "colour is not a key molt knows"},
    {"idle-success", "artifact_name", "7", "artifact_name is an integer, expected a string"},
    {"idle-success", "artifact_provides.x", "1", "artifact_provides.x is an integer"},
    {"idle-success", "last_error", "null", "last_error is null"},
    {"idle-success", "last_deployment.result", "\"ok\"",
     "last_deployment.result is \"ok\", expected one of \"success\", \"failure\", "
     "\"rolled-back\""},
    {"idle-success", "last_deployment.id", NULL, "last_deployment.id is missing"},
    {"idle-success", "last_deployment.rolled_back", "0",
     "last_deployment.rolled_back is an integer, expected true or false"},
    {"idle-success", "deployment", "[]", "deployment is an array, expected an object"},
    {"awaiting-commit", "deployment.module_values", "[]",
     "deployment.module_values is an array, expected an object"},
    {"awaiting-commit", "deployment.module_values", "{\"plan\": 1}",
     "deployment.module_values.plan is an integer, expected a string (hex)"},
    {"awaiting-commit", "deployment.module_values", "{\"plan\": \"abc\"}",
     "deployment.module_values.plan is \"abc\", expected lower-case hex digits, an even count"},
    {"awaiting-commit", "deployment.stat", "\"Download\"",
     "deployment.stat is not a key molt knows"},
    {"awaiting-commit", "deployment.state", "\"ArtifactInstal\"",
     "deployment.state is \"ArtifactInstal\", expected one of \"Download\""},
    {"awaiting-commit", "deployment.state", "3", "deployment.state is an integer"},
    {"awaiting-commit", "deployment.state", NULL, "deployment.state is missing"},
    {"awaiting-commit", "deployment.pending", "\"comit\"",
     "deployment.pending is \"comit\", expected one of \"commit\", \"reboot\", "
     "\"rollback-reboot\", \"rollback\""},
    {"awaiting-commit", "deployment.pending", NULL, "deployment.pending is missing"},
    {"awaiting-commit", "deployment.failed", "\"no\"",
     "deployment.failed is a string, expected true or false"},
    {"awaiting-commit", "deployment.rolled_back", NULL, "deployment.rolled_back is missing"},
    {"awaiting-commit", "deployment.id", NULL, "deployment.id is missing"},
    {"awaiting-commit", "deployment.state_count", "-1", "deployment.state_count is out of range"},
    {"awaiting-commit", "deployment.reboot", "\"Yes\"", "deployment.reboot is \"Yes\""},
    {"awaiting-commit", "deployment.rollback_retries", "\"1\"",
     "deployment.rollback_retries is a string"},
    {"awaiting-commit", "deployment.artifact.name", NULL, "deployment.artifact.name is missing"},
    {"awaiting-commit", "deployment.artifact.provides", "[]",
     "deployment.artifact.provides is an array, expected an object"},
    {"awaiting-commit", "deployment.artifact.extra", "1",
     "deployment.artifact.extra is not a key molt knows"},
    {"awaiting-commit", "deployment.module.path", NULL, "deployment.module.path is missing"},
    {"awaiting-commit", "deployment.module.kind", "\"native\"",
     "deployment.module.kind is set in a version 1 record"},
    {"awaiting-commit", "deployment.version", "3",
     "deployment.version is 3: this molt reads deployment records of version 1 to 2"},
    {"awaiting-commit", "deployment.version", "\"2\"", "deployment.version is a string"},
    {"awaiting-commit", "deployment.module", "\"x\"", "deployment.module is a string"},
};

/* Set or delete the key at a dotted path of doc. */
static void apply(json_t *doc, const char *path, const char *value)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *o = doc;
    char *key = buf, *dot;
    while ((dot = strchr(key, '.'))) {
        *dot = '\0';
        o = json_object_get(o, key);
        assert_true(json_is_object(o));
        key = dot + 1;
    }
    if (!value) {
        assert_int_equal(json_object_del(o, key), 0);
        return;
    }
    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    assert_int_equal(json_object_set_new(o, key, v), 0);
}

/* Each damage is refused (MOLT_ECORRUPT) with a message naming the store and the key. */
static void test_damaged_records_refused(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof damages / sizeof damages[0]; i++) {
        const damage *x = &damages[i];
        char src[640];
        fixture_path(f, x->fixture, src, sizeof src);
        json_t *doc = doc_of(src);
        apply(doc, x->path, x->value);
        assert_int_equal(molt_store_save(f->path, doc, 0, NULL), 0);
        json_decref(doc);
        molt_record *rec = NULL;
        molt_err err = {0};
        int r = molt_record_load(f->path, kind_of, f, &rec, NULL, &err);
        if (r != MOLT_ECORRUPT || !strstr(err.msg, x->words) || !strstr(err.msg, f->path))
            fail_msg("%s %s=%s: got %d \"%s\", want MOLT_ECORRUPT naming %s and \"%s\"",
                     x->fixture, x->path, x->value ? x->value : "(deleted)", r, err.msg,
                     f->path, x->words);
        assert_null(rec);
    }
}

/* The module's deployment values (dep_set, ABI 1.2) round-trip through the store; none, the
 * key is not written (a record without it is one of a release before them, which loads). */
static void test_module_values(void **state)
{
    fixture *f = *state;
    molt_record *rec = load_fixture(f, "native-awaiting-commit");
    molt_err err = {0};
    assert_null(rec->dep->module_values);
    rec->dep->module_values = json_pack("{s:s, s:s}", "plan", "66202d31202f6574632f78", "e", "");
    assert_int_equal(molt_record_save(f->path, rec, 0, &err), 0);
    molt_record *back = NULL;
    assert_int_equal(molt_record_load(f->path, NULL, NULL, &back, NULL, &err), 0);
    assert_true(json_equal(back->dep->module_values, rec->dep->module_values));
    /* emptied: no key */
    json_object_clear(back->dep->module_values);
    assert_int_equal(molt_record_save(f->path, back, 0, &err), 0);
    json_t *doc = doc_of(f->path);
    assert_null(json_object_get(json_object_get(doc, "deployment"), "module_values"));
    json_decref(doc);
    molt_record_free(back);
    molt_record_free(rec);
}

/* A version 1 deployment without a way to infer its kind is refused, not guessed. */
static void test_legacy_kind_needed(void **state)
{
    fixture *f = *state;
    char src[640];
    fixture_path(f, "install", src, sizeof src);
    molt_record *rec = NULL;
    molt_err err = {0};
    assert_int_equal(molt_record_load(src, NULL, NULL, &rec, NULL, &err), MOLT_EINVAL);
    assert_non_null(strstr(err.msg, "version 1"));
    assert_null(rec);
}

/* Every enum value has its name, and the names are those of the store and of status --json. */
static void test_names(void **state)
{
    (void)state;
    const char *states[] = {"Download", "ArtifactInstall", "ArtifactReboot",
                            "ArtifactVerifyReboot", "ArtifactCommit", "ArtifactCommit_Leave",
                            "ArtifactRollback", "ArtifactRollbackReboot",
                            "ArtifactVerifyRollbackReboot", "ArtifactFailure", "Cleanup"};
    assert_int_equal(sizeof states / sizeof states[0], MOLT_DS_COUNT);
    for (int i = 0; i < MOLT_DS_COUNT; i++)
        assert_string_equal(molt_dep_state_name((molt_dep_state)i), states[i]);
    assert_null(molt_dep_state_name(MOLT_DS_COUNT));
    assert_null(molt_pending_name(MOLT_PENDING_NONE));
    assert_string_equal(molt_pending_name(MOLT_PENDING_COMMIT), "commit");
    assert_string_equal(molt_pending_name(MOLT_PENDING_REBOOT), "reboot");
    assert_string_equal(molt_pending_name(MOLT_PENDING_ROLLBACK_REBOOT), "rollback-reboot");
    assert_string_equal(molt_pending_name(MOLT_PENDING_ROLLBACK), "rollback");
    assert_null(molt_rec_answer_name(MOLT_REC_UNSET));
    assert_string_equal(molt_rec_answer_name(MOLT_REC_AUTOMATIC), "automatic");
    assert_string_equal(molt_result_name(MOLT_RESULT_ROLLED_BACK), "rolled-back");
    assert_null(molt_result_name(MOLT_RESULT_COUNT));
    assert_string_equal(molt_module_kind_name(MOLT_MODULE_NATIVE), "native");
    assert_string_equal(molt_module_kind_name(MOLT_MODULE_EXEC), "exec");
}

/* The server hears "success" for a committed deployment only (docs/cli.md). */
static void test_result_server_status(void **state)
{
    (void)state;
    assert_string_equal(molt_result_server_status(MOLT_RESULT_SUCCESS), "success");
    assert_string_equal(molt_result_server_status(MOLT_RESULT_FAILURE), "failure");
    assert_string_equal(molt_result_server_status(MOLT_RESULT_ROLLED_BACK), "failure");
}

/* Cleanup's decision for each of the 16 combinations of (failed, rolled_back, rollback_failed,
 * user_rollback), written out: a failed rollback fails the deployment and leaves the device
 * inconsistent (provides: name _INCONSISTENT) whatever else is set; rolled back without a
 * failed rollback keeps the provides; a failure that was not rolled back is inconsistent; a
 * user rollback is reported as such only when nothing failed. */
static void test_cleanup_decision_exhaustive(void **state)
{
    (void)state;
    enum { C = MOLT_PROVIDES_COMMIT, K = MOLT_PROVIDES_KEEP, I = MOLT_PROVIDES_INCONSISTENT };
    enum { S = MOLT_RESULT_SUCCESS, F = MOLT_RESULT_FAILURE, R = MOLT_RESULT_ROLLED_BACK };
    static const struct {
        bool failed, rolled_back, rollback_failed, user_rollback;
        bool want_failed;
        int want_result;
        bool want_rolled_back;
        int want_provides;
    } table[16] = {
        /* failed rolled_back rollback_failed user_rollback -> failed result rolled_back provides */
        {0, 0, 0, 0, 0, S, 0, C},
        {0, 0, 0, 1, 0, R, 0, C},
        {0, 0, 1, 0, 1, F, 0, I},
        {0, 0, 1, 1, 1, F, 0, I},
        {0, 1, 0, 0, 0, S, 1, K},
        {0, 1, 0, 1, 0, R, 1, K},
        {0, 1, 1, 0, 1, F, 0, I},
        {0, 1, 1, 1, 1, F, 0, I},
        {1, 0, 0, 0, 1, F, 0, I},
        {1, 0, 0, 1, 1, F, 0, I},
        {1, 0, 1, 0, 1, F, 0, I},
        {1, 0, 1, 1, 1, F, 0, I},
        {1, 1, 0, 0, 1, F, 1, K},
        {1, 1, 0, 1, 1, F, 1, K},
        {1, 1, 1, 0, 1, F, 0, I},
        {1, 1, 1, 1, 1, F, 0, I},
    };
    int seen = 0;
    for (int bits = 0; bits < 16; bits++) {
        bool failed = bits & 8, rolled_back = bits & 4, rollback_failed = bits & 2,
             user_rollback = bits & 1;
        for (int i = 0; i < 16; i++) {
            if (table[i].failed != failed || table[i].rolled_back != rolled_back ||
                table[i].rollback_failed != rollback_failed ||
                table[i].user_rollback != user_rollback)
                continue;
            seen++;
            molt_cleanup_decision d = molt_cleanup_decide(failed, rolled_back, rollback_failed,
                                                          user_rollback);
            if (d.failed != table[i].want_failed || (int)d.result != table[i].want_result ||
                d.rolled_back != table[i].want_rolled_back ||
                (int)d.provides != table[i].want_provides)
                fail_msg("flags failed=%d rolled_back=%d rollback_failed=%d user_rollback=%d: "
                         "got failed=%d result=%d rolled_back=%d provides=%d", failed,
                         rolled_back, rollback_failed, user_rollback, d.failed, d.result,
                         d.rolled_back, d.provides);
        }
    }
    assert_int_equal(seen, 16);
}

/* The daemon's answer (molt_machine_final) and `molt resume`'s (molt_machine_last) come from the
 * typed record. */
static void test_machine_final(void **state)
{
    fixture *f = *state;
    char yaml[256], conf[128], data[128];
    snprintf(data, sizeof data, "%s/data", f->dir);
    assert_int_equal(molt_mkdir_p(data, 0700, NULL), 0);
    snprintf(conf, sizeof conf, "%s/molt.yaml", f->dir);
    snprintf(yaml, sizeof yaml, "data_dir: %s\n", data);
    assert_int_equal(molt_write_file_atomic(conf, yaml, strlen(yaml), 0600, NULL), 0);
    molt_config *cfg = NULL;
    molt_err err = {0};
    if (molt_config_load(&cfg, conf, &err) < 0)
        fail_msg("config: %s", err.msg);
    static const struct {
        const char *fixture;
        const char *final_last;   /* for the last deployment's id */
    } cases[] = {
        {"idle-success", "success"},
        {"idle-rolled-back", "failure"},
        {"idle-failure", "failure"},
        {"awaiting-reboot", NULL},
    };
    char store[192];
    snprintf(store, sizeof store, "%s/store", data);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[640];
        fixture_path(f, cases[i].fixture, src, sizeof src);
        json_t *doc = doc_of(src);
        assert_int_equal(molt_store_save(store, doc, 0, NULL), 0);
        json_decref(doc);
        molt_machine *m = NULL;
        if (molt_machine_open(&m, cfg, &err) < 0)
            fail_msg("%s: %s", cases[i].fixture, err.msg);
        const molt_last_deployment *last = molt_machine_last(m);
        assert_non_null(last);
        const char *got = molt_machine_final(m, last->id);
        if (cases[i].final_last)
            assert_string_equal(got, cases[i].final_last);
        else
            assert_null(got);
        assert_int_equal(molt_machine_deployment(m) != NULL, cases[i].final_last == NULL);
        /* Another deployment's id: it never started here. */
        if (cases[i].final_last)
            assert_string_equal(molt_machine_final(m, "another-id"), "failure");
        molt_machine_free(m);
    }
    molt_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_release_stores_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_stores_save_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_store_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_records_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_kind_needed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_values, setup, teardown),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_result_server_status),
        cmocka_unit_test(test_cleanup_decision_exhaustive),
        cmocka_unit_test_setup_teardown(test_machine_final, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
