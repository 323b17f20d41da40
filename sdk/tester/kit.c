/* SPDX-License-Identifier: Apache-2.0 */
/* The conformance kit's checks and its program, molt-module-test: the happy path, the query
 * answers, the download mode, a failure injected after each state, a kill -9 in each state then
 * `resume`, an explicit rollback, ArtifactRollback / Cleanup run twice, a checksum mismatch at
 * the end of the stream, and, with the module's probe, the effects of each case on the state the
 * module manages (effect-<check>). Each check is one report line, PASS <check> or
 * FAIL <check>: <reason>. */
#include "kit.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <molt/module.h>

#include "host/module_manifest.h"
#include "host/native_host.h"
#include "state/store.h"
#include "util/durable.h"
#include "util/fs.h"
#include "util/slots.h"

#define NAME_MAX_LEN 600

static void report_line(kit *k, const char *line)
{
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    if (k->report) {
        fputs(line, k->report);
        fputc('\n', k->report);
        fflush(k->report);
    }
}

static void report_v(kit *k, const char *word, const char *check, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void report_v(kit *k, const char *word, const char *check, const char *fmt, va_list ap)
{
    char reason[2048], line[2400];
    vsnprintf(reason, sizeof reason, fmt, ap);
    /* One line per check, whatever the module printed. */
    for (char *p = reason; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    snprintf(line, sizeof line, "%s %s: %s", word, check, reason);
    report_line(k, line);
}

void kit_pass(kit *k, const char *check)
{
    char line[256];
    snprintf(line, sizeof line, "PASS %s", check);
    report_line(k, line);
    k->n_pass++;
}

void kit_fail(kit *k, const char *check, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_v(k, "FAIL", check, fmt, ap);
    va_end(ap);
    k->n_fail++;
}

void kit_skip(kit *k, const char *check, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_v(k, "SKIP", check, fmt, ap);
    va_end(ap);
    k->n_skip++;
}

void kit_info(kit *k, const char *fmt, ...)
{
    char text[2048], line[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* One line each (a probe of several lines, say): a newline shows as \n. */
    char flat[2100];
    size_t o = 0;
    for (const char *p = text; *p && o + 3 < sizeof flat; p++) {
        if (*p == '\n') {
            flat[o++] = '\\';
            flat[o++] = 'n';
        } else {
            flat[o++] = *p;
        }
    }
    flat[o] = '\0';
    snprintf(line, sizeof line, "# %s", flat);
    report_line(k, line);
}

/* ---- what the module said -------------------------------------------------------------------- */

static bool is_query(const char *call)
{
    return strcmp(call, "NeedsArtifactReboot") == 0 || strcmp(call, "SupportsRollback") == 0 ||
           strcmp(call, "ProvidePayloadFileSizes") == 0;
}

/* What the happy path taught: the answers and the calls made. */
typedef struct learnt {
    bool rollback;             /* SupportsRollback: Yes */
    bool reboot;               /* NeedsArtifactReboot: Yes or Automatic */
    bool streaming;            /* the module read the payload while it arrived */
    char calls[32][64];        /* the state calls of the happy path, first occurrence each */
    int n_calls;
} learnt;

/* The calls of this case as "A B C" for a report line. */
static void calls_text(const kit *k, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < k->n_events && used + 1 < cap; i++) {
        const kit_event *ev = &k->events[i];
        int n = snprintf(buf + used, cap - used, "%s%s%s", used ? " " : "", ev->call,
                         ev->simulated ? "(simulated)" : "");
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (used >= cap)
        buf[cap - 1] = '\0';
}

/* The first module call that failed by itself (not a failure the kit injected), or NULL. */
static const kit_event *module_failure(const kit *k)
{
    for (int i = 0; i < k->n_events && !k->download_may_fail; i++) {
        const kit_event *ev = &k->events[i];
        if (ev->rc == -1000)
            continue;   /* killed inside it */
        if (is_query(ev->call) ? ev->rc < 0 || (!k->native && ev->rc != 0) : ev->rc != 0)
            return ev;
    }
    return NULL;
}

static int count_calls(const kit *k, const char *call, bool *all_ok)
{
    int n = 0;
    *all_ok = true;
    for (int i = 0; i < k->n_events; i++) {
        if (strcmp(k->events[i].call, call) == 0) {
            n++;
            if (k->events[i].rc != 0)
                *all_ok = false;
        }
    }
    return n;
}

/* A query answer is valid when, without one trailing newline, it is exactly one of the words
 * (exec), or one of the enum values (native). Fills why otherwise. */
static bool answer_valid(const kit *k, const char *call, const char *data, size_t len,
                         char *why, size_t cap)
{
    if (k->native) {
        long v = strtol(data, NULL, 10);
        long max = strcmp(call, "NeedsArtifactReboot") == 0 ? 2 : 1;
        if (v < 0 || v > max) {
            snprintf(why, cap, "returned %ld, expected 0..%ld", v, max);
            return false;
        }
        return true;
    }
    size_t n = len;
    if (n > 0 && data[n - 1] == '\n')
        n--;
    static const char *const words[] = {"Yes", "No", "Automatic", ""};
    size_t n_words = strcmp(call, "NeedsArtifactReboot") == 0 ? 4 : 3;
    for (size_t i = 0; i < 4; i++) {
        if ((i < n_words - 1 || i == 3) && strlen(words[i]) == n &&
            memcmp(words[i], data, n) == 0)
            return true;
    }
    char shown[200];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < sizeof shown; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\n')
            o += (size_t)snprintf(shown + o, sizeof shown - o, "\\n");
        else if (c < 32 || c > 126)
            o += (size_t)snprintf(shown + o, sizeof shown - o, "\\x%02x", c);
        else
            shown[o++] = (char)c;
    }
    shown[o] = '\0';
    snprintf(why, cap, "answered \"%s\", expected exactly one line: %s", shown,
             strcmp(call, "NeedsArtifactReboot") == 0 ? "Yes, No, Automatic or nothing"
                                                      : "Yes, No or nothing");
    return false;
}

/* ---- sequences --------------------------------------------------------------------------------- */

typedef struct seq {
    molt_outcome final;
    bool killed;
    bool lost;
    char msg[1100];
    char trail[256];          /* the commands run: "install commit" */
    bool have_installed;      /* the probe ran when the install awaited its commit */
    char installed[65];       /* its digest */
    char probe_err[600];      /* why the probe failed there, or "" */
} seq;

/* Run install, then what the outcome asks for (a reboot: resume; awaiting commit: await_cmd),
 * until the deployment ends. With kill_call, kill molt once in that call, then resume. */
static void run_sequence(kit *k, const char *kill_call, const char *await_cmd, seq *s)
{
    const char *cmd = "install";
    kit_result r;
    memset(s, 0, sizeof *s);
    s->final = MOLT_OUTCOME_FAILED;
    for (int step = 0; step < 8; step++) {
        kit_run(k, cmd, s->killed ? NULL : kill_call, &r);
        size_t used = strlen(s->trail);
        snprintf(s->trail + used, sizeof s->trail - used, "%s%s%s", used ? " " : "", cmd,
                 r.killed ? "(killed)" : "");
        if (r.killed) {
            s->killed = true;
            kit_knobs_clear(k, "fail_");
            cmd = "resume";
            if (kit_reboot(k, s->msg, sizeof s->msg) < 0) {   /* power back on */
                s->lost = true;
                return;
            }
            continue;
        }
        if (r.lost) {
            s->lost = true;
            snprintf(s->msg, sizeof s->msg, "%s", r.msg);
            return;
        }
        snprintf(s->msg, sizeof s->msg, "%s", r.msg);
        if (r.outcome == MOLT_OUTCOME_REBOOT) {
            cmd = "resume";   /* the kit "reboots": the hook, if any, then molt again */
            if (kit_reboot(k, s->msg, sizeof s->msg) < 0) {
                s->lost = true;
                return;
            }
        } else if (r.outcome == MOLT_OUTCOME_AWAIT_COMMIT) {
            cmd = await_cmd;
            if (k->probe && !s->have_installed && !s->probe_err[0]) {
                if (kit_probe(k, "install", s->installed, s->probe_err, sizeof s->probe_err) == 0)
                    s->have_installed = true;
            }
        } else {
            s->final = r.outcome;
            return;
        }
    }
    s->lost = true;
    snprintf(s->msg, sizeof s->msg, "the deployment did not end after 8 commands (%s)", s->trail);
}

static const char *outcome_word(molt_outcome o)
{
    switch (o) {
    case MOLT_OUTCOME_DONE: return "success";
    case MOLT_OUTCOME_FAILED: return "failure";
    case MOLT_OUTCOME_AWAIT_COMMIT: return "awaiting commit";
    case MOLT_OUTCOME_REBOOT: return "reboot required";
    case MOLT_OUTCOME_NOTHING: return "nothing in progress";
    }
    return "?";
}

/* Check how a case ended: the outcome, the artifact name, state idle, no tree left, and that no
 * module call failed by itself. want_name NULL: any. Returns true when all hold (else reports). */
static bool check_end(kit *k, const char *check, const seq *s, molt_outcome want,
                      const char *want_name)
{
    char calls[1024];
    calls_text(k, calls, sizeof calls);
    if (s->lost) {
        kit_fail(k, check, "%s (commands: %s; calls: %s; log: %s/%s.log)", s->msg, s->trail,
                 calls, k->logs, k->case_name);
        return false;
    }
    const kit_event *bad = module_failure(k);
    if (bad) {
        kit_fail(k, check, "the module's %s failed (%s %d) (commands: %s; calls: %s; molt: %s)",
                 bad->call, k->native ? "returned" : "exit", bad->rc, s->trail, calls, s->msg);
        return false;
    }
    if (s->final != want) {
        kit_fail(k, check, "the deployment ended in %s, expected %s (commands: %s; calls: %s; molt: %s)",
                 outcome_word(s->final), outcome_word(want), s->trail, calls,
                 s->msg[0] ? s->msg : "no error");
        return false;
    }
    char *state = kit_state(k);
    bool idle = strcmp(state, "idle") == 0;
    if (!idle) {
        kit_fail(k, check, "state at the end is \"%s\", expected idle (commands: %s; calls: %s)",
                 state, s->trail, calls);
        free(state);
        return false;
    }
    free(state);
    if (kit_tree_left(k)) {
        kit_fail(k, check, "a module work tree is left in %s/data", k->root);
        return false;
    }
    if (want_name) {
        char *name = kit_artifact_name(k);
        bool same = strcmp(name, want_name) == 0;
        if (!same)
            kit_fail(k, check, "artifact_name is \"%s\", expected \"%s\" (commands: %s; calls: %s; molt: %s)",
                     name, want_name, s->trail, calls, s->msg);
        free(name);
        if (!same)
            return false;
    }
    return true;
}

static bool has_call(const kit *k, const char *call)
{
    bool ok;
    return count_calls(k, call, &ok) > 0;
}

typedef enum stage { ST_DOWNLOAD, ST_INSTALL, ST_REBOOT, ST_AFTER, ST_RECOVERY } stage;

static stage stage_of(const char *call)
{
    if (strncmp(call, "Download", 8) == 0)
        return ST_DOWNLOAD;
    if (strcmp(call, "ArtifactReboot") == 0)
        return ST_REBOOT;
    if (strcmp(call, "Cleanup") == 0)
        return ST_AFTER;
    if (strcmp(call, "ArtifactRollback") == 0 || strcmp(call, "ArtifactFailure") == 0 ||
        strcmp(call, "ArtifactRollbackReboot") == 0 ||
        strcmp(call, "ArtifactVerifyRollbackReboot") == 0)
        return ST_RECOVERY;
    return ST_INSTALL;   /* ArtifactInstall, ArtifactVerifyReboot, ArtifactCommit */
}

/* ---- effects ----------------------------------------------------------------------------------
 * With a probe (module.yaml's probe:, or --probe), every case takes the digest of the state the
 * module manages before it starts and when it ends, and the happy path also when the install
 * awaits its commit. */

typedef enum end_state { END_BEFORE, END_INSTALLED, END_ANY } end_state;

/* The digest at the start of a case into before ("" without a probe or when it failed). */
static void effect_before(kit *k, char *before)
{
    char msg[600];
    before[0] = '\0';
    if (k->probe && kit_probe(k, "before", before, msg, sizeof msg) < 0) {
        kit_fail(k, "effect-probe", "%s (case %s)", msg, k->case_name);
        before[0] = '\0';
    }
    if (before[0] && !k->pristine[0])
        snprintf(k->pristine, sizeof k->pristine, "%s", before);
}

/* A case that must start from the state the kit found (before any install) but does not: an
 * earlier case left the device changed (and failed for it); checking again would only repeat
 * that failure or pass for the wrong reason. */
static bool effect_drifted(kit *k, const char *name, const char *before)
{
    if (strcmp(before, k->pristine) == 0)
        return false;
    kit_skip(k, name, "the state did not start as the kit found it (probe digest %.16s, first "
             "%.16s): an earlier case left the device changed", before, k->pristine);
    return true;
}

/* The state at the end of case check against what it must be; what says how the case ended.
 * Fills after (65 bytes) when not NULL. */
static void effect_end(kit *k, const char *check, const char *before, end_state want,
                       const char *what, const seq *s)
{
    char after[65], msg[600], name[160], diff[700];
    if (!k->probe || !before[0] || want == END_ANY)
        return;
    snprintf(name, sizeof name, "effect-%s", check);
    if (want == END_BEFORE && effect_drifted(k, name, before))
        return;
    if (kit_probe(k, "after", after, msg, sizeof msg) < 0) {
        kit_fail(k, name, "%s", msg);
        return;
    }
    /* Installed: as this case's install left it when it awaited the commit (an A/B module
     * installs into the other slot each time). A module without rollback is committed at once:
     * its state after a second install is its own business (a script that appends, say). */
    const char *installed = s && s->have_installed ? s->installed : NULL;
    if (want == END_BEFORE && strcmp(after, before) != 0) {
        kit_probe_diff(k, "before", "after", diff, sizeof diff);
        kit_fail(k, name, "%s, the state is not the one before the install (probe digest %.16s, "
                 "before %.16s; %s)", what, after, before, diff);
    } else if (want == END_INSTALLED && installed && strcmp(after, installed) != 0) {
        kit_fail(k, name, "%s, the state is not the one the install made (probe digest %.16s, "
                 "after the install %.16s)", what, after, installed);
    } else {
        kit_pass(k, name);
    }
}

/* The install must have changed the state (to --expect-state when given): installed is the
 * digest after the install, before the one before it. */
static bool effect_install(kit *k, const char *check, const char *before, const char *installed,
                           const char *label)
{
    char name[160], diff[700];
    snprintf(name, sizeof name, "effect-%s", check);
    if (effect_drifted(k, name, before))
        return false;
    if (k->expect_state && strcmp(installed, k->expect_state) != 0) {
        kit_fail(k, name, "ArtifactInstall succeeded but the state is not the expected one "
                 "(probe digest %s, --expect-state %s)", installed, k->expect_state);
        return false;
    }
    if (strcmp(installed, before) == 0) {
        kit_fail(k, name, "ArtifactInstall succeeded but the state did not change (probe digest "
                 "%.16s before and after; if the device already held what the artifact installs "
                 "when the kit started, start it from the state before)", installed);
        return false;
    }
    kit_probe_diff(k, "before", label, diff, sizeof diff);
    kit_info(k, "install changed the state: %.16s -> %.16s (%s)", before, installed, diff);
    kit_pass(k, name);
    return true;
}

/* ---- the checks ------------------------------------------------------------------------------ */

/* The calls of this case that are not queries, first occurrence each, into l->calls; without
 * the recovery calls when the case was rolled back (ArtifactCommit then stands where the
 * commit would be: before Cleanup). */
static void learn_calls(kit *k, learnt *l, bool rolled_back)
{
    static const char *const recovery[] = {"ArtifactRollback", "ArtifactRollbackReboot",
                                           "ArtifactVerifyRollbackReboot", "ArtifactFailure"};
    l->n_calls = 0;
    for (int i = 0; i < k->n_events && l->n_calls < 31; i++) {
        const char *c = k->events[i].call;
        bool skip = is_query(c);
        for (int j = 0; j < l->n_calls; j++)
            skip = skip || strcmp(l->calls[j], c) == 0;
        for (size_t j = 0; rolled_back && j < 4; j++)
            skip = skip || strcmp(recovery[j], c) == 0;
        if (skip)
            continue;
        if (rolled_back && strcmp(c, "Cleanup") == 0 &&
            (!k->native || strstr(k->implemented, " ArtifactCommit ")))
            snprintf(l->calls[l->n_calls++], sizeof l->calls[0], "ArtifactCommit");
        snprintf(l->calls[l->n_calls++], sizeof l->calls[0], "%s", c);
    }
}

/* The first case: install, then `molt rollback` when the module awaits its commit (it supports
 * rollback: that is the rollback check, and the state must be back), or molt commits at once (no
 * rollback: that is the happy path). It teaches the kit the answers and the calls. Returns true
 * when the deployment was rolled back (the happy path with its commit is still to run). */
static bool check_first(kit *k, learnt *l, const char *base)
{
    seq s;
    char before[65], calls[1024];
    kit_case_start(k, "first");
    effect_before(k, before);
    run_sequence(k, NULL, "rollback", &s);
    bool rolled_back = strstr(s.trail, "rollback") != NULL;
    const char *check = rolled_back ? "rollback" : "happy-path";
    calls_text(k, calls, sizeof calls);
    if (check_end(k, check, &s, MOLT_OUTCOME_DONE, rolled_back ? base : k->artifact_name)) {
        kit_info(k, "%s: %s -> %s", rolled_back ? "install, then rollback" : "happy path",
                 s.trail, calls);
        if (rolled_back && !has_call(k, "ArtifactRollback"))
            kit_fail(k, check, "molt rollback did not call ArtifactRollback");
        else
            kit_pass(k, check);
        if (k->probe && before[0]) {
            if (s.probe_err[0])
                kit_fail(k, "effect-probe", "%s (after the install)", s.probe_err);
            if (rolled_back && s.have_installed) {
                effect_install(k, "install", before, s.installed, "install");
                effect_end(k, "rollback", before, END_BEFORE,
                           "after ArtifactRollback succeeded", NULL);
            } else if (!rolled_back) {
                char after[65] = "";
                char msg[600];
                if (kit_probe(k, "after", after, msg, sizeof msg) < 0)
                    kit_fail(k, "effect-probe", "%s", msg);
                else if (effect_install(k, "install", before, after, "after")) {
                    snprintf(k->installed, sizeof k->installed, "%s", after);
                    k->have_installed = true;
                }
            }
        }
    }
    learn_calls(k, l, rolled_back);

    /* The query answers, as the module gave them. */
    static const char *const queries[] = {"ProvidePayloadFileSizes", "NeedsArtifactReboot",
                                          "SupportsRollback"};
    for (size_t i = k->native ? 1 : 0; i < 3; i++) {   /* native modules have no file sizes */
        char qcheck[96], why[400];
        size_t len = 0;
        snprintf(qcheck, sizeof qcheck, "answer-%s", queries[i]);
        char *ans = kit_answer(k, queries[i], &len);
        if (!ans) {
            if (k->native)
                kit_skip(k, qcheck, "not implemented: the host answers from the capability bits");
            else
                kit_skip(k, qcheck, "not called by molt on this path");
            continue;
        }
        if (answer_valid(k, queries[i], ans, len, why, sizeof why))
            kit_pass(k, qcheck);
        else
            kit_fail(k, qcheck, "%s", why);
        if (strcmp(queries[i], "NeedsArtifactReboot") == 0)
            l->reboot = k->native ? atoi(ans) >= 1
                                  : (len >= 3 && (memcmp(ans, "Yes", 3) == 0 ||
                                                  (len >= 9 && memcmp(ans, "Automatic", 9) == 0)));
        if (strcmp(queries[i], "SupportsRollback") == 0)
            l->rollback = k->native ? atoi(ans) == 1 : (len >= 3 && memcmp(ans, "Yes", 3) == 0);
        free(ans);
    }
    if (k->native && !has_call(k, "SupportsRollback"))
        l->rollback = (k->caps & MOLT_CAP_ROLLBACK) != 0;
    if (k->native && !has_call(k, "NeedsArtifactReboot"))
        l->reboot = (k->caps & MOLT_CAP_REBOOT) != 0;
    kit_info(k, "rollback supported: %s", l->rollback ? "yes" : "no");

    /* Download mode: the module streamed, or molt fell back to files/ for it. */
    const char *mode = k->native ? (k->caps & MOLT_CAP_STREAMING ? "streaming" : "files")
                                 : (kit_log_has(k, "did not read stream-next") ? "files" : "streaming");
    char dcheck[64];
    l->streaming = strcmp(mode, "streaming") == 0;
    snprintf(dcheck, sizeof dcheck, "download-%s", mode);
    if (s.lost || s.final != MOLT_OUTCOME_DONE)
        kit_fail(k, dcheck, "the install in %s mode did not succeed (see %s)", mode, check);
    else
        kit_pass(k, dcheck);
    return rolled_back;
}

/* The happy path with its commit, after the rollback case: install changes the state, commit
 * keeps it. */
static void check_happy(kit *k)
{
    seq s;
    char before[65], after[65] = "", calls[1024];
    kit_case_start(k, "happy-path");
    effect_before(k, before);
    run_sequence(k, NULL, "commit", &s);
    calls_text(k, calls, sizeof calls);
    if (!check_end(k, "happy-path", &s, MOLT_OUTCOME_DONE, k->artifact_name))
        return;
    kit_info(k, "happy path: %s -> %s", s.trail, calls);
    kit_pass(k, "happy-path");
    if (!k->probe || !before[0])
        return;
    if (!s.have_installed) {
        kit_fail(k, "effect-probe", "%s", s.probe_err[0] ? s.probe_err : "no digest after the install");
        return;
    }
    effect_install(k, "happy-path-install", before, s.installed, "install");
    char msg[600], diff[700];
    if (kit_probe(k, "after", after, msg, sizeof msg) < 0) {
        kit_fail(k, "effect-probe", "%s", msg);
    } else if (strcmp(after, s.installed) != 0) {
        kit_probe_diff(k, "install", "after", diff, sizeof diff);
        kit_fail(k, "effect-commit", "the state after ArtifactCommit and Cleanup is not the one "
                 "the install made (probe digest %.16s, after the install %.16s; %s)", after,
                 s.installed, diff);
    } else {
        kit_pass(k, "effect-commit");
    }
    snprintf(k->installed, sizeof k->installed, "%s", s.installed);
    k->have_installed = true;
}

/* A checksum mismatch at the end of the stream (the last payload file's manifest entry changed):
 * the deployment fails in Download and nothing changed. */
static void check_checksum_end(kit *k, const char *base)
{
    char corrupt[4096], msg[1024], saved[4096], before[65];
    kit_case_start(k, "checksum-end");
    if (kit_corrupt_artifact(k, corrupt, sizeof corrupt, msg, sizeof msg) < 0) {
        kit_fail(k, "checksum-end", "%s", msg);
        return;
    }
    effect_before(k, before);
    snprintf(saved, sizeof saved, "%s", k->artifact_abs);
    snprintf(k->artifact_abs, sizeof k->artifact_abs, "%s", corrupt);
    k->download_may_fail = true;
    seq s;
    run_sequence(k, NULL, "commit", &s);
    snprintf(k->artifact_abs, sizeof k->artifact_abs, "%s", saved);
    bool ok = check_end(k, "checksum-end", &s, MOLT_OUTCOME_FAILED, base);
    k->download_may_fail = false;
    if (!ok)
        return;
    if (!strstr(s.msg, "checksum")) {
        kit_fail(k, "checksum-end", "the deployment failed, but not on the checksum: %s", s.msg);
        return;
    }
    kit_pass(k, "checksum-end");
    effect_end(k, "checksum-end", before, END_BEFORE,
               "after a checksum mismatch at the end of the payload", NULL);
}

/* An exec module must ignore a call it does not know: no output, exit 0 (docs/reference §2.1). */
static void check_unknown_call(kit *k)
{
    char tree[8400], out[8400];
    snprintf(tree, sizeof tree, "%s/unknown-tree", k->root);
    snprintf(out, sizeof out, "%s/unknown.out", k->root);
    if (molt_mkdir_p(tree, 0755, NULL) < 0) {
        kit_fail(k, "unknown-call", "cannot create %s", tree);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(out, "w", stdout);
        FILE *g = freopen("/dev/null", "w", stderr);
        if (!f || !g || chdir(tree) < 0)
            _exit(127);
        execl(k->module_abs, k->module_abs, "MoltKitUnknownCall", tree, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        kit_fail(k, "unknown-call", "cannot run %s", k->module_abs);
        return;
    }
    char *data = NULL;
    size_t len = 0;
    molt_read_file(out, 4096, &data, &len, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        kit_fail(k, "unknown-call", "exit %d for an unknown call, expected 0",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    else if (len > 0)
        kit_fail(k, "unknown-call", "printed %zu bytes for an unknown call, expected nothing", len);
    else
        kit_pass(k, "unknown-call");
    free(data);
}

/* Where the state must be when a failure was injected after call (kill false) or molt was killed
 * in it (kill true) and the deployment then ended. */
static end_state end_of(const learnt *l, const char *call, bool kill)
{
    stage st = stage_of(call);
    if (st == ST_DOWNLOAD)
        return END_BEFORE;
    if (st == ST_AFTER || (kill && st == ST_REBOOT))
        return END_INSTALLED;
    return l->rollback ? END_BEFORE : END_ANY;
}

/* A failure after call (the module succeeded, the state fails): the failure path of docs/reference §2.8. */
static void check_fail(kit *k, const learnt *l, const char *base, const char *inc,
                       const char *call)
{
    char check[96], before[65], what[300];
    seq s;
    snprintf(check, sizeof check, "fail-%.63s", call);
    kit_case_start(k, check);
    effect_before(k, before);
    stage st = stage_of(call);
    if (st == ST_RECOVERY)
        kit_knob(k, "fail_", "ArtifactInstall");   /* to get onto the rollback path */
    kit_knob(k, "fail_", call);
    run_sequence(k, NULL, "commit", &s);
    const char *want = st == ST_DOWNLOAD ? base
                       : st == ST_AFTER ? inc
                       : st == ST_RECOVERY ? (strcmp(call, "ArtifactFailure") == 0 && l->rollback ? NULL : inc)
                       : l->rollback ? base : inc;
    if (!check_end(k, check, &s, MOLT_OUTCOME_FAILED, want))
        return;
    if (!has_call(k, "Cleanup") && st != ST_AFTER) {
        kit_fail(k, check, "Cleanup was not called after the failure");
        return;
    }
    if ((st == ST_INSTALL || st == ST_REBOOT) && l->rollback && !has_call(k, "ArtifactRollback")) {
        kit_fail(k, check, "ArtifactRollback was not called although SupportsRollback said Yes");
        return;
    }
    kit_pass(k, check);
    snprintf(what, sizeof what, "after a failure injected in %.63s%s", call,
             st == ST_RECOVERY ? " (on the rollback path of a failed ArtifactInstall)" : "");
    effect_end(k, check, before, end_of(l, call, false), what, &s);
}

/* kill -9 in call, then resume: the path of docs/reference §2.8 "spontaneous reboot". */
static void check_kill(kit *k, const learnt *l, const char *base, const char *inc,
                       const char *call)
{
    char check[96], before[65], what[300];
    seq s;
    snprintf(check, sizeof check, "kill-%.63s", call);
    kit_case_start(k, check);
    effect_before(k, before);
    stage st = stage_of(call);
    bool rollback_reboot = strcmp(call, "ArtifactVerifyRollbackReboot") == 0;
    if (st == ST_RECOVERY)   /* onto the rollback path: after the reboot for a rollback reboot */
        kit_knob(k, "fail_", rollback_reboot ? "ArtifactVerifyReboot" : "ArtifactInstall");
    run_sequence(k, call, "commit", &s);
    if (!s.killed && !s.lost) {
        char calls[1024];
        calls_text(k, calls, sizeof calls);
        if (rollback_reboot)
            kit_skip(k, check, "no rollback reboot after a failed ArtifactVerifyReboot (NeedsArtifactReboot said No on the rollback path; calls: %s)", calls);
        else
            kit_fail(k, check, "never reached %s (commands: %s; calls: %s)", call, s.trail, calls);
        return;
    }
    /* A call cut short is made again: it must succeed the second time (idempotency). */
    if (s.killed && (strcmp(call, "ArtifactRollback") == 0 || strcmp(call, "Cleanup") == 0)) {
        char idem[96];
        bool all_ok;
        int n = count_calls(k, call, &all_ok);
        snprintf(idem, sizeof idem, "%.63s-twice", call);
        if (n < 2)
            kit_fail(k, idem, "%s ran %d time(s) after a kill inside it, expected twice", call, n);
        else if (!all_ok)
            kit_fail(k, idem, "%s failed when called again after a kill inside it", call);
        else
            kit_pass(k, idem);
    }
    bool ok;
    if (st == ST_DOWNLOAD)
        ok = check_end(k, check, &s, MOLT_OUTCOME_FAILED, base);
    else if (st == ST_REBOOT || st == ST_AFTER)
        ok = check_end(k, check, &s, MOLT_OUTCOME_DONE, k->artifact_name);
    else
        ok = check_end(k, check, &s, MOLT_OUTCOME_FAILED, l->rollback ? base : inc);
    if (!ok)
        return;
    kit_pass(k, check);
    snprintf(what, sizeof what, "after a power cut right after %.63s returned and `molt resume`%s",
             call, strcmp(call, "ArtifactCommit") == 0
                       ? " (molt rolls back: backups may be dropped only in Cleanup)" : "");
    effect_end(k, check, before, end_of(l, call, true), what, &s);
}

/* molt's command killed right after call returned, as a power cut that loses the store's newest
 * record when that is still lazy (written without fdatasync, not made durable since): the store
 * put back as saved (len bytes; NULL: no store), then the device reboots. True when so; else
 * the case is reported: a FAIL, or a SKIP (durable_why says what made the record durable) when
 * it was durable at the cut, molt then resumed. */
static bool cut_losing_record(kit *k, const char *check, const char *command, const char *call,
                              const char *saved, size_t len, const char *durable_why)
{
    char store[4300], msg[1100] = "", *rec = NULL;
    size_t rec_len = 0;
    snprintf(store, sizeof store, "%s/data/store.slots", k->root);
    kit_result r;
    kit_run(k, command, call, &r);
    molt_slots_read_info info = {0};
    bool lazy = molt_slots_read(store, 64u << 20, &rec, &rec_len, &info, NULL) == 0 && info.lazy;
    free(rec);
    if (!r.killed) {
        kit_fail(k, check, "molt was not killed after %s (%s)", call, r.msg);
    } else if (!lazy) {
        kit_skip(k, check, "the record of state %s was durable at the cut: %s", call, durable_why);
        kit_run(k, "resume", NULL, &r);
    } else if (saved ? molt_write_file_atomic(store, saved, len, 0600, NULL) < 0
                     : unlink(store) != 0) {
        kit_fail(k, check, "cannot put the store %s back as before the %s", store, command);
    } else if (kit_reboot(k, msg, sizeof msg) < 0) {
        kit_fail(k, check, "%s", msg);
    } else {
        return true;
    }
    return false;
}

/* Whether check, which needs the lazy-record capability cap, is skipped (and said so): an exec
 * module, a native one without the bit, or a host (--host-minor) older than the bit's minor. */
static bool lazy_skipped(kit *k, const char *check, uint32_t cap, const char *name)
{
    if (k->native && (k->caps & cap))
        return false;
    if (k->native && k->host_minor >= 0 && k->host_minor < 2)
        kit_skip(k, check, "a host of ABI 1.%d does not honour %s", k->host_minor, name);
    else
        kit_skip(k, check, "the module does not declare %s", name);
    return true;
}

/* MOLT_CAP_LAZY_DOWNLOAD: molt records state Download without fdatasync for such a module, so a
 * power cut during Download may lose that record, and the device must then be as before the
 * install (the deployment never existed, Cleanup is not called). The kit kills molt right after
 * download returned and, when the store's newest record is still lazy (the module named
 * nothing that made the host write it durably: kv_set, tmp_dir()), puts the store back as it
 * was before the install: the cut lost the record. Then molt must have nothing to resume, be
 * idle, and the probe must find the state before the install. */
static void check_lazy_download(kit *k)
{
    const char *check = "lazy-download-lost";
    char before[65], store[4300];
    if (lazy_skipped(k, check, MOLT_CAP_LAZY_DOWNLOAD, "MOLT_CAP_LAZY_DOWNLOAD"))
        return;
    if (kit_case_start(k, check) < 0)
        return;
    effect_before(k, before);
    /* A store that exists, as on a device after its first command (a fresh device's first
     * record is written durably with the file): the empty record. */
    snprintf(store, sizeof store, "%s/data/store", k->root);
    json_t *empty = json_object();
    int had = empty ? molt_store_save(store, empty, 0, NULL) : MOLT_ENOMEM;
    json_decref(empty);
    snprintf(store, sizeof store, "%s/data/store.slots", k->root);
    char *saved = NULL;
    size_t len = 0;
    if (had == 0)
        had = molt_read_file(store, 64u << 20, &saved, &len, NULL);
    if (cut_losing_record(k, check, "install", "Download", had == 0 ? saved : NULL, len,
                          "the module named something in this Download (kv_set, tmp_dir())")) {
        kit_result r;
        kit_run(k, "resume", NULL, &r);
        char *state = kit_state(k);
        if (r.outcome != MOLT_OUTCOME_NOTHING)
            kit_fail(k, check, "after losing the record of state Download, molt resume found "
                     "%s, expected nothing in progress (%s)", outcome_word(r.outcome), r.msg);
        else if (strcmp(state, "idle") != 0)
            kit_fail(k, check, "after losing the record of state Download, the state is \"%s\", "
                     "expected idle", state);
        else
            kit_pass(k, check);
        free(state);
        effect_end(k, check, before, END_BEFORE,
                   "after a power cut during Download that lost molt's record of it", NULL);
    }
    free(saved);
}

/* After a cut that lost the record of state ArtifactCommit (check_lazy_commit): awaiting the
 * commit, the state the install made (installed: its digest, "" without a probe), then a commit
 * that succeeds and keeps that state. */
static void commit_after_lost(kit *k, const char *check, const char *installed)
{
    const char *effect = "effect-lazy-commit-lost";
    char lost[65] = "", after[65] = "", msg[1100] = "", diff[700] = "";
    char *state = kit_state(k);
    bool awaiting = strcmp(state, "awaiting-commit") == 0;
    if (installed[0] && kit_probe(k, "lost", lost, msg, sizeof msg) < 0)
        kit_fail(k, "effect-probe", "%s (case %s)", msg, check);
    else if (installed[0] && strcmp(lost, installed) != 0)
        kit_probe_diff(k, "install", "lost", diff, sizeof diff);
    kit_result r;
    kit_run(k, "commit", NULL, &r);
    char *end = kit_state(k), *name = kit_artifact_name(k);
    if (!awaiting)
        kit_fail(k, check, "after losing the record of state ArtifactCommit, the state is "
                 "\"%s\", expected awaiting-commit", state);
    else if (r.lost || r.outcome != MOLT_OUTCOME_DONE)
        kit_fail(k, check, "after losing the record of state ArtifactCommit, molt commit ended "
                 "in %s, expected success (%s)", outcome_word(r.outcome), r.msg);
    else if (strcmp(end, "idle") != 0 || strcmp(name, k->artifact_name) != 0)
        kit_fail(k, check, "after losing the record of state ArtifactCommit and a commit, the "
                 "state is \"%s\" with artifact_name \"%s\", expected idle with \"%s\"", end,
                 name, k->artifact_name);
    else
        kit_pass(k, check);
    free(state);
    free(end);
    free(name);
    if (!lost[0])
        return;
    if (strcmp(lost, installed) != 0)
        kit_fail(k, effect, "after a power cut right after ArtifactCommit returned that lost "
                 "molt's record of it, the state is not the one the install made (probe digest "
                 "%.16s, after the install %.16s; %s)", lost, installed, diff);
    else if (kit_probe(k, "after", after, msg, sizeof msg) < 0)
        kit_fail(k, "effect-probe", "%s (case %s)", msg, check);
    else if (strcmp(after, installed) != 0)
        kit_fail(k, effect, "after a power cut that lost molt's record of state ArtifactCommit "
                 "and a commit, the state is not the one the install made (probe digest %.16s, "
                 "after the install %.16s)", after, installed);
    else
        kit_pass(k, effect);
}

/* MOLT_CAP_LAZY_COMMIT: molt records state ArtifactCommit without fdatasync for such a module,
 * so a power cut during or right after artifact_commit may lose that record, and the update must
 * then await its commit with the state as the install left it (artifact_commit changed nothing
 * outside the deployment values, which are lost with the record), and a commit must then
 * succeed. The kit installs, keeps the store as the install left it, kills molt right after
 * artifact_commit returned and, when the store's newest record is still lazy (the module made
 * nothing durable that made the host write it durably: kv_set, tmp_dir()), puts the store back:
 * the cut lost the record. It runs after the happy path: it ends with the update committed. */
static void check_lazy_commit(kit *k, const learnt *l)
{
    const char *check = "lazy-commit-lost";
    char before[65], installed[65] = "", store[4300], msg[1100] = "";
    if (lazy_skipped(k, check, MOLT_CAP_LAZY_COMMIT, "MOLT_CAP_LAZY_COMMIT"))
        return;
    if (!l->rollback) {
        kit_skip(k, check, "the module does not support rollback: molt commits within the "
                 "install, after a durable record of state ArtifactInstall");
        return;
    }
    if (!strstr(k->implemented, " ArtifactCommit ")) {
        kit_skip(k, check, "ArtifactCommit is not implemented by the module (a NULL function "
                 "succeeds): nothing to cut after");
        return;
    }
    if (kit_case_start(k, check) < 0)
        return;
    effect_before(k, before);
    kit_result r;
    kit_run(k, "install", NULL, &r);
    for (int i = 0; i < 4 && r.outcome == MOLT_OUTCOME_REBOOT && !r.lost; i++) {
        if (kit_reboot(k, msg, sizeof msg) < 0) {
            kit_fail(k, check, "%s", msg);
            return;
        }
        kit_run(k, "resume", NULL, &r);
    }
    if (r.lost || r.outcome != MOLT_OUTCOME_AWAIT_COMMIT) {
        kit_fail(k, check, "the install ended in %s, expected awaiting commit (%s)",
                 outcome_word(r.outcome), r.msg);
        return;
    }
    if (k->probe && before[0] && kit_probe(k, "install", installed, msg, sizeof msg) < 0) {
        kit_fail(k, "effect-probe", "%s (case %s)", msg, check);
        installed[0] = '\0';
    }
    snprintf(store, sizeof store, "%s/data/store.slots", k->root);
    char *saved = NULL;
    size_t len = 0;
    if (molt_read_file(store, 64u << 20, &saved, &len, NULL) < 0) {
        kit_fail(k, check, "cannot read the store %s after the install", store);
        return;
    }
    if (cut_losing_record(k, check, "commit", "ArtifactCommit", saved, len,
                          "the module made something durable in this ArtifactCommit (kv_set, "
                          "tmp_dir())"))
        commit_after_lost(k, check, installed);
    free(saved);
}

/* The manifest's capabilities must say what the module does. */
static void check_manifest(kit *k, const learnt *l)
{
    molt_module_manifest *mf = NULL;
    molt_err e = {0};
    int r = k->manifest ? molt_module_manifest_read(k->manifest, &mf, &e)
                        : molt_module_manifest_load(k->module_abs, &mf, &e);
    if (r == MOLT_ENOTFOUND && !k->manifest) {
        kit_skip(k, "manifest", "no <module>.yaml beside the module (give one with --manifest)");
        return;
    }
    if (r < 0) {
        kit_fail(k, "manifest", "%s", e.msg);
        return;
    }
    bool streaming = k->native ? (k->caps & MOLT_CAP_STREAMING) != 0 : l->streaming;
    bool rollback = k->native ? (k->caps & MOLT_CAP_ROLLBACK) != 0 : l->rollback;
    bool reboot = k->native ? (k->caps & MOLT_CAP_REBOOT) != 0 : l->reboot;
    const char *src = k->native ? "the descriptor's capability bits" : "the module's answers and download";
    char why[600] = "";
    const struct { const char *key; int said; bool does; } caps[] = {
        {"streaming", mf->streaming, streaming},
        {"rollback", mf->rollback, rollback},
        {"reboot", mf->reboot, reboot},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t used = strlen(why);
        if (caps[i].said < 0)
            snprintf(why + used, sizeof why - used, "%scapabilities.%s is missing", used ? "; " : "",
                     caps[i].key);
        else if ((caps[i].said == 1) != caps[i].does)
            snprintf(why + used, sizeof why - used, "%scapabilities.%s is %s but %s say %s",
                     used ? "; " : "", caps[i].key, caps[i].said ? "true" : "false", src,
                     caps[i].does ? "true" : "false");
    }
    if (why[0])
        kit_fail(k, "manifest", "%s", why);
    else
        kit_pass(k, "manifest");
    kit_info(k, "manifest: version %s", mf->version ? mf->version : "(none)");
    molt_module_manifest_free(mf);
}

void kit_run_checks(kit *k)
{
    learnt l = {0};
    char base[NAME_MAX_LEN], inc[NAME_MAX_LEN];
    kit_case_start(k, "base");
    char *b = kit_artifact_name(k);
    snprintf(base, sizeof base, "%s", b);
    free(b);
    snprintf(inc, sizeof inc, "%s_INCONSISTENT", k->artifact_name);
    if (k->probe)
        kit_info(k, "probe: %s", k->probe);
    else
        kit_skip(k, "effects", "EFFECTS NOT VERIFIED: the module declares no probe (module.yaml "
                 "probe:, or --probe): the kit checks molt's bookkeeping only, not what the "
                 "module does to the device");
    /* Order: the cases that must leave the state as it was before (the device never holds the
     * update then), then the happy path with its commit, then the cases that end installed. */
    check_checksum_end(k, base);
    bool rolled_back = check_first(k, &l, base);
    if (!l.rollback)
        kit_skip(k, "rollback", "the module does not support rollback");
    if (!k->native)
        check_unknown_call(k);
    check_manifest(k, &l);

    /* The states of the happy path, then the recovery states. */
    char states[40][64];
    int n = 0;
    for (int i = 0; i < l.n_calls; i++)
        snprintf(states[n++], sizeof states[0], "%s", l.calls[i]);
    /* A native module's NULL function is not called: nothing to fail or kill in it. */
    static const char *const recovery[] = {"ArtifactRollback", "ArtifactFailure",
                                           "ArtifactVerifyRollbackReboot"};
    for (size_t i = 0; i < 3; i++) {
        char word[80];
        snprintf(word, sizeof word, " %s ", recovery[i]);
        if ((i == 0 && !l.rollback) || (i == 2 && !(l.rollback && l.reboot)))
            continue;
        if (k->native && !strstr(k->implemented, word)) {
            char check[96];
            snprintf(check, sizeof check, "kill-%s", recovery[i]);
            kit_skip(k, check, "not implemented by the module (a NULL function succeeds)");
            continue;
        }
        snprintf(states[n++], sizeof states[0], "%s", recovery[i]);
    }
    check_lazy_download(k);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && rolled_back)
            check_happy(k);
        if (pass == 1)
            check_lazy_commit(k, &l);
        for (int i = 0; i < n; i++)
            if ((end_of(&l, states[i], true) == END_BEFORE) == (pass == 0))
                check_kill(k, &l, base, inc, states[i]);
        for (int i = 0; i < n; i++) {
            /* ArtifactReboot is simulated: nothing to fail after; a failed rollback-reboot verify
             * repeats the reboot up to the loop guard, a path of molt's, not of the module. */
            if (strcmp(states[i], "ArtifactReboot") != 0 &&
                strcmp(states[i], "ArtifactVerifyRollbackReboot") != 0 &&
                (end_of(&l, states[i], false) == END_BEFORE) == (pass == 0))
                check_fail(k, &l, base, inc, states[i]);
        }
    }
    if (!l.rollback)
        kit_skip(k, "ArtifactRollback-twice", "the module does not support rollback");
}

/* ---- the program ----------------------------------------------------------------------------- */

/* The probe: --probe, else the manifest's probe: (--manifest, else <module>.yaml beside it). */
static int load_probe(kit *k, char *msg, size_t cap)
{
    if (k->expect_state && (strlen(k->expect_state) != 64 ||
                            strspn(k->expect_state, "0123456789abcdef") != 64)) {
        snprintf(msg, cap, "--expect-state: expected a SHA-256 in lower-case hex (64 digits), got \"%s\"",
                 k->expect_state);
        return -1;
    }
    if (k->probe_opt) {
        k->probe = strdup(k->probe_opt);
        return k->probe ? 0 : -1;
    }
    molt_module_manifest *mf = NULL;
    molt_err e = {0};
    int r = k->manifest ? molt_module_manifest_read(k->manifest, &mf, &e)
                        : molt_module_manifest_load(k->module_abs, &mf, &e);
    if (r == 0 && mf->probe && mf->probe[0])
        k->probe = strdup(mf->probe);
    molt_module_manifest_free(mf);
    if (k->expect_state && !k->probe) {
        snprintf(msg, cap, "--expect-state needs a probe (--probe, or probe: in the manifest)");
        return -1;
    }
    return 0;   /* a manifest that does not load is the manifest check's to report */
}

#define KIT_STR_(x) #x
#define KIT_STR(x) KIT_STR_(x)
static const char usage_text[] =
    "Usage: molt-module-test [--report FILE] [--manifest FILE] [--config FILE] [--reboot-hook CMD]\n"
    "                        [--probe CMD] [--expect-state SHA256] [--isolated]\n"
    "                        [--host-minor N] [--keep] MODULE ARTIFACT\n"
    "\n"
    "The conformance kit: drives an update module (a native .so, or an executable Update Module\n"
    "v3) through molt's state machine on a scratch device with ARTIFACT (whose payload type the\n"
    "module must handle), and prints one line per check: PASS <check>, FAIL <check>: <reason>\n"
    "or SKIP <check>: <reason>; lines starting with # are information.\n"
    "\n"
    "  --report FILE   also write the report to FILE\n"
    "  --manifest FILE the module's module.yaml (default: <module>.yaml beside it, if any): its\n"
    "                  capabilities must match what the module does\n"
    "  --config FILE   YAML appended to the scratch device's molt.yaml: the module's settings\n"
    "                  (modules: <name>: ...)\n"
    "  --reboot-hook CMD  a shell command the kit runs where the device would reboot (after a\n"
    "                  reboot is asked for, in a simulated ArtifactReboot, after each kill):\n"
    "                  e.g. a simulated bootloader; without it a reboot changes nothing\n"
    "  --probe CMD     the module's effect probe (default: probe: of its manifest): a shell\n"
    "                  command printing the state the module manages (file trees, package\n"
    "                  list, container IDs, ...), the same text for the same state. The kit runs\n"
    "                  it (sh -c, in the scratch device, with MOLT_KIT_ROOT, MOLT_KIT_CONFIG,\n"
    "                  MOLT_KIT_DATA_DIR, MOLT_KIT_ARTIFACT, MOLT_KIT_PAYLOAD_TYPE,\n"
    "                  MOLT_KIT_META_DATA (JSON), MOLT_KIT_PAYLOAD_DIR (the payload files of\n"
    "                  up to 1 MiB, e.g. dest_dir) and MOLT_KIT_SETTING_<key> (the module's\n"
    "                  settings in --config) in its environment)\n"
    "                  before and after every case, and requires: the install changes the state,\n"
    "                  the commit keeps it, a rollback, every injected failure, every kill and\n"
    "                  resume before the commit (ArtifactCommit included: backups may be dropped\n"
    "                  only in Cleanup) and a checksum mismatch at the end of the payload leave\n"
    "                  it exactly as it was (effect-<check> lines); for a native module with\n"
    "                  MOLT_CAP_LAZY_DOWNLOAD, also a kill right after Download that loses\n"
    "                  molt's record of state Download (lazy-download-lost), and with\n"
    "                  MOLT_CAP_LAZY_COMMIT a kill right after ArtifactCommit that loses\n"
    "                  molt's record of it: the update awaits its commit, the state as the\n"
    "                  install left it (lazy-commit-lost). Without a probe: one SKIP effects\n"
    "                  line, effects not verified\n"
    "  --expect-state SHA256  the SHA-256 of the probe's output after the install\n"
    "  --isolated      a native module's calls each run in a forked child (the config's\n"
    "                  native_isolated_modules)\n"
    "  --host-minor N  molt plays a host of native module ABI 1.N (N from 0 to "
    KIT_STR(MOLT_MODULE_ABI_MINOR) "): the\n"
    "                  host functions of later minors are NULL and their capability bits are\n"
    "                  not honoured, as where an older molt loads the module (its fallbacks)\n"
    "  --keep          keep the scratch device (its path is printed): molt's log of each\n"
    "                  check in logs/, the probe's outputs in probe/\n"
    "\n"
    "Exit codes: 0 every check passed, 1 a check failed, 2 usage or setup error.\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"report", required_argument, NULL, 'r'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"manifest", required_argument, NULL, 'm'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"reboot-hook", required_argument, NULL, 'b'},
                                         {"isolated", no_argument, NULL, 'i'},
                                         {"host-minor", required_argument, NULL, 'H'},
                                         {"probe", required_argument, NULL, 'p'},
                                         {"expect-state", required_argument, NULL, 'e'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    kit k = {0};
    k.host_minor = -1;
    bool keep = false;
    const char *report = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "r:m:c:b:p:e:H:ikh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': report = optarg; break;
        case 'k': keep = true; break;
        case 'm': k.manifest = optarg; break;
        case 'c': k.extra_config = optarg; break;
        case 'b': k.reboot_hook = optarg; break;
        case 'i': k.isolated = true; break;
        case 'H': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 0 || v > MOLT_MODULE_ABI_MINOR) {
                fprintf(stderr, "molt-module-test: --host-minor: expected 0 to %d, got '%s'\n",
                        MOLT_MODULE_ABI_MINOR, optarg);
                return 2;
            }
            k.host_minor = (int)v;
            break;
        }
        case 'p': k.probe_opt = optarg; break;
        case 'e': k.expect_state = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (argc - optind != 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    k.module = argv[optind];
    k.artifact = argv[optind + 1];
    if (report && !(k.report = fopen(report, "w"))) {
        fprintf(stderr, "molt-module-test: %s: %s\n", report, strerror(errno));
        return 2;
    }
    /* Orphans of a killed run (an isolated module's child, say) come to the kit, which reaps
     * them before the next command: a power cut leaves nothing running. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (k.host_minor >= 0) {
        molt_native_host_minor((unsigned)k.host_minor);
        kit_info(&k, "host: molt as a host of ABI 1.%d (the host functions and capability bits "
                 "of later minors left out)", k.host_minor);
    }
    char msg[2048];
    int code;
    if (kit_device_setup(&k, msg, sizeof msg) < 0) {
        kit_fail(&k, "setup", "%s", msg);
        code = 2;
    } else if (load_probe(&k, msg, sizeof msg) < 0) {
        kit_fail(&k, "setup", "%s", msg);
        code = 2;
    } else {
        kit_run_checks(&k);
        char line[256];
        snprintf(line, sizeof line, "summary: %d checks, %d passed, %d failed, %d skipped",
                 k.n_pass + k.n_fail + k.n_skip, k.n_pass, k.n_fail, k.n_skip);
        report_line(&k, line);
        code = k.n_fail ? 1 : 0;
    }
    if (keep && k.root[0])
        kit_info(&k, "scratch device kept: %s (molt's output per check in logs/)", k.root);
    else
        kit_device_remove(&k);
    if (k.report)
        fclose(k.report);
    free(k.probe);
    free(k.payload_type);
    free(k.artifact_name);
    free(k.device_type);
    free(k.meta_data);
    return code;
}
