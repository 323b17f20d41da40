/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for core/state/machine.c on a scratch device with a real shell update module:
 * recovery from a recorded state, the loop guard, refusals, and the status document. The
 * complete call sequences are checked end to end by tests/integration. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "state/machine.h"
#include "state/store.h"
#include "util/fs.h"
#include "util/log.h"

typedef struct fixture {
    char dir[64];
    char path[256];        /* scratch for building paths */
    char store[128];
    char calls[128];       /* the module's call log */
    char tree[160];
    molt_config *cfg;
} fixture;

static int setup(void **state)
{
    fixture *f = fx_fixture_new(state, fixture, "machine-test");
    snprintf(f->store, sizeof f->store, "%s/data/store", f->dir);
    snprintf(f->calls, sizeof f->calls, "%s/calls", f->dir);
    snprintf(f->tree, sizeof f->tree, "%s/data/modules/v3/payloads/0000/tree", f->dir);
    snprintf(f->path, sizeof f->path, "%s/modules", f->dir);
    assert_int_equal(molt_mkdir_p(f->path, 0755, NULL), 0);
    snprintf(f->path, sizeof f->path, "%s/data", f->dir);
    assert_int_equal(molt_mkdir_p(f->path, 0755, NULL), 0);

    /* A module that logs its calls, answers No to the queries and succeeds. */
    char script[512];
    snprintf(script, sizeof script, "#!/bin/sh\necho \"$1\" >> %s\nexit 0\n", f->calls);
    snprintf(f->path, sizeof f->path, "%s/modules/test-type", f->dir);
    fx_write_text(f->path, script, 0755);

    snprintf(f->path, sizeof f->path, "%s/data/device_type", f->dir);
    fx_write_text(f->path, "device_type=dev-a\n", 0644);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "data_dir: %s/data\ndevice_type_file: %s/data/device_type\nmodule_dirs:\n"
             "  - %s/modules\nscripts_dir: %s/scripts\nmodule_timeout: 20\n",
             f->dir, f->dir, f->dir, f->dir);
    snprintf(f->path, sizeof f->path, "%s/molt.yaml", f->dir);
    fx_write_text(f->path, yaml, 0644);
    molt_err err;
    if (molt_config_load(&f->cfg, f->path, &err) < 0)
        fail_msg("config: %s", err.msg);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    molt_config_free(f->cfg);
    return fx_fixture_free(state);
}

/* A store with base-1 installed and a deployment of new-1 recorded in state (pending may be
 * NULL), having entered count states; a module tree exists. */
static void put_deployment(fixture *f, const char *state, const char *pending, int count)
{
    json_t *doc = json_pack(
        "{s:s, s:{s:s}, s:{s:s, s:s, s:s, s:s, s:s?, s:i, s:b, s:b, s:b, s:b, "
        "s:{s:s, s:s, s:{s:s}, s:[s], s:{s:[s]}}, s:{s:s, s:s, s:s}}}",
        "artifact_name", "base-1", "artifact_provides", "rootfs-image.test-type.version",
        "base-1", "deployment", "id", "0a6f9d2e-1111-4222-8333-444455556666", "started",
        "2026-01-01T00:00:00Z", "source", "new-1.mender", "state", state, "pending", pending,
        "state_count", count, "failed", 0, "rolled_back", 0, "rollback_failed", 0,
        "user_rollback", 0, "artifact", "name", "new-1", "payload_type", "test-type",
        "provides", "rootfs-image.test-type.version", "new-1", "clears",
        "rootfs-image.test-type.*", "depends", "device_type", "dev-a", "module", "type",
        "test-type", "path", "", "tree", f->tree);
    assert_non_null(doc);
    snprintf(f->path, sizeof f->path, "%s/modules/test-type", f->dir);
    json_object_set_new(json_object_get(json_object_get(doc, "deployment"), "module"), "path",
                        json_string(f->path));
    assert_int_equal(molt_store_save(f->store, doc, 0, NULL), 0);
    json_decref(doc);
    assert_int_equal(molt_mkdir_p(f->tree, 0700, NULL), 0);
}

/* The module's calls, one per line ("" when none). */
static char *calls(fixture *f)
{
    char *text = NULL;
    size_t len;
    if (molt_read_file(f->calls, 1 << 16, &text, &len, NULL) < 0)
        return strdup("");
    return text;
}

static json_t *load_store(fixture *f)
{
    json_t *doc = NULL;
    assert_int_equal(molt_store_load(f->store, &doc, NULL), 0);
    return doc;
}

static void test_nothing_in_progress(void **state)
{
    fixture *f = *state;
    molt_machine *m = NULL;
    molt_outcome o;
    molt_err err;
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), 0);
    assert_int_equal(molt_machine_commit(m, &o, &err), MOLT_ESTATE);
    assert_int_equal(o, MOLT_OUTCOME_NOTHING);
    molt_machine_free(m);
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), 0);
    assert_int_equal(molt_machine_rollback(m, &o, &err), MOLT_ESTATE);
    assert_int_equal(o, MOLT_OUTCOME_NOTHING);
    molt_machine_free(m);
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), 0);
    assert_int_equal(molt_machine_resume(m, &o, &err), MOLT_ESTATE);
    assert_int_equal(o, MOLT_OUTCOME_NOTHING);
    json_t *st = NULL;
    assert_int_equal(molt_machine_status(m, &st, &err), 0);
    assert_string_equal(json_string_value(json_object_get(st, "state")), "idle");
    assert_string_equal(json_string_value(json_object_get(st, "artifact_name")), "unknown");
    assert_true(json_is_null(json_object_get(st, "deployment")));
    json_decref(st);
    molt_machine_free(m);
    char *c = calls(f);
    assert_string_equal(c, "");
    free(c);
}

static void test_corrupt_deployment_record(void **state)
{
    fixture *f = *state;
    json_t *doc = json_pack("{s:s, s:i}", "artifact_name", "x", "deployment", 5);
    assert_int_equal(molt_store_save(f->store, doc, 0, NULL), 0);
    json_decref(doc);
    molt_machine *m = NULL;
    molt_err err;
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), MOLT_ECORRUPT);
    assert_null(m);
    assert_non_null(strstr(err.msg, "deployment"));
}

static void test_interrupted_download_cleans_up(void **state)
{
    fixture *f = *state;
    put_deployment(f, "Download", NULL, 1);
    molt_machine *m = NULL;
    molt_outcome o;
    molt_err err;
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), 0);
    json_t *st = NULL;
    assert_int_equal(molt_machine_status(m, &st, &err), 0);
    assert_string_equal(json_string_value(json_object_get(st, "state")), "Download");
    assert_true(json_is_false(json_object_get(json_object_get(st, "deployment"), "running")));
    json_decref(st);
    assert_true(molt_machine_resume(m, &o, &err) < 0);
    assert_int_equal(o, MOLT_OUTCOME_FAILED);
    molt_machine_free(m);
    char *c = calls(f);
    assert_string_equal(c, "Cleanup\n");
    free(c);
    json_t *doc = load_store(f);
    assert_null(json_object_get(doc, "deployment"));
    assert_string_equal(json_string_value(json_object_get(doc, "artifact_name")), "base-1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            doc, "artifact_provides"), "rootfs-image.test-type.version")),
                        "base-1");
    json_decref(doc);
    assert_false(molt_path_exists(f->tree));
}

static void test_interrupted_install_rolls_back_path(void **state)
{
    fixture *f = *state;
    put_deployment(f, "ArtifactInstall", NULL, 2);
    molt_machine *m = NULL;
    molt_outcome o;
    molt_err err;
    /* commit is refused and points at resume; nothing runs */
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), 0);
    assert_int_equal(molt_machine_commit(m, &o, &err), MOLT_ESTATE);
    assert_non_null(strstr(err.msg, "resume"));
    molt_machine_free(m);
    char *c = calls(f);
    assert_string_equal(c, "");
    free(c);
    /* resume: SupportsRollback says No -> ArtifactFailure, Cleanup, _INCONSISTENT */
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), 0);
    assert_true(molt_machine_resume(m, &o, &err) < 0);
    assert_int_equal(o, MOLT_OUTCOME_FAILED);
    assert_non_null(strstr(err.msg, "interrupted"));
    molt_machine_free(m);
    c = calls(f);
    assert_string_equal(c, "SupportsRollback\nArtifactFailure\nCleanup\n");
    free(c);
    json_t *doc = load_store(f);
    assert_string_equal(json_string_value(json_object_get(doc, "artifact_name")),
                        "new-1_INCONSISTENT");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            doc, "artifact_provides"), "rootfs-image.test-type.version")),
                        "base-1");
    assert_non_null(json_string_value(json_object_get(doc, "last_error")));
    json_decref(doc);
}

static void test_awaiting_commit_commits(void **state)
{
    fixture *f = *state;
    put_deployment(f, "ArtifactCommit", "commit", 3);
    molt_machine *m = NULL;
    molt_outcome o;
    molt_err err;
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), 0);
    json_t *st = NULL;
    assert_int_equal(molt_machine_status(m, &st, &err), 0);
    assert_string_equal(json_string_value(json_object_get(st, "state")), "awaiting-commit");
    json_decref(st);
    assert_int_equal(molt_machine_commit(m, &o, &err), 0);
    assert_int_equal(o, MOLT_OUTCOME_DONE);
    molt_machine_free(m);
    char *c = calls(f);
    assert_string_equal(c, "ArtifactCommit\nCleanup\n");
    free(c);
    json_t *doc = load_store(f);
    assert_string_equal(json_string_value(json_object_get(doc, "artifact_name")), "new-1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            doc, "artifact_provides"), "rootfs-image.test-type.version")),
                        "new-1");
    assert_null(json_object_get(doc, "last_error"));
    json_decref(doc);
}

static void test_loop_guard(void **state)
{
    fixture *f = *state;
    /* 28 states entered already: the next one trips the guard. */
    put_deployment(f, "ArtifactCommit", "commit", 28);
    molt_machine *m = NULL;
    molt_outcome o;
    molt_err err;
    assert_int_equal(molt_machine_open(&m, f->cfg, &err), 0);
    assert_true(molt_machine_commit(m, &o, &err) < 0);
    assert_int_equal(o, MOLT_OUTCOME_FAILED);
    assert_non_null(strstr(err.msg, "loop"));
    molt_machine_free(m);
    char *c = calls(f);
    assert_string_equal(c, "Cleanup\n");
    free(c);
    json_t *doc = load_store(f);
    assert_null(json_object_get(doc, "deployment"));
    assert_string_equal(json_string_value(json_object_get(doc, "artifact_name")),
                        "new-1_INCONSISTENT");
    json_decref(doc);
}

int main(int argc, char **argv)
{
    molt_log_set_level(MOLT_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_in_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_deployment_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_download_cleans_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted_install_rolls_back_path, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_awaiting_commit_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_guard, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
