/* SPDX-License-Identifier: Apache-2.0 */
/* molt-module-test, the conformance kit: a scratch device driven through molt's own state machine
 * (core/state), one forked process per molt command so that a command can be killed in any state
 * like a power cut. The module under test runs behind a wrapper (exec: a shell script, native:
 * the kit shim) that logs its calls and obeys knobs; see kit.c for the checks. */
#ifndef MOLT_TESTER_KIT_H
#define MOLT_TESTER_KIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "state/machine.h"

#define KIT_MAX_EVENTS 256

/* One module call seen by the wrapper: its name and exit code (or return value), -1000 when it
 * never returned (killed). */
typedef struct kit_event {
    char call[64];
    int rc;
    bool simulated;
} kit_event;

typedef struct kit {
    char root[4096];          /* the scratch device */
    char conf[4200];          /* its molt.yaml */
    char ctl[4200];           /* the wrapper's control folder */
    char logs[4200];          /* molt's output per case */
    bool native;
    const char *module;       /* the module under test, as given */
    char module_abs[4096];
    const char *artifact;
    const char *extra_config; /* --config FILE: YAML appended to the scratch molt.yaml */
    bool isolated;            /* --isolated: native calls each in a forked child */
    int host_minor;           /* --host-minor: the host's ABI minor played, -1 for molt's own */
    const char *reboot_hook;  /* --reboot-hook CMD: what a reboot of the device does, or NULL */
    const char *manifest;     /* --manifest FILE, or NULL: <module>.yaml beside it if any */
    const char *probe_opt;    /* --probe CMD, or NULL */
    char *probe;              /* the effect probe (--probe, else the manifest's), or NULL */
    const char *expect_state; /* --expect-state SHA256: the probe's digest after install */
    char module_name[128];
    bool download_may_fail;   /* the current case makes Download fail (a checksum mismatch) */
    bool have_installed;      /* installed: the digest of the state after the happy path */
    char installed[65];
    char pristine[65];        /* the digest before the first case: the state the kit found */    /* native: the descriptor's name; exec: the payload type */
    char artifact_abs[4096];
    char *payload_type;
    char *artifact_name;
    char *device_type;
    char *meta_data;          /* the payload's meta-data as JSON text ("{}" when none) */
    uint32_t caps;            /* native: the descriptor's capabilities */
    char implemented[512];    /* native: the state calls the module implements, " A B " */
    char case_name[128];      /* the current case: its log is logs/<case>.log */
    kit_event events[KIT_MAX_EVENTS];
    int n_events;
    FILE *report;             /* --report FILE, or NULL */
    int n_pass, n_fail, n_skip;
} kit;

/* The result of one molt command. */
typedef struct kit_result {
    molt_outcome outcome;
    int rc;
    bool killed;              /* stopped by the kit in the state asked for */
    bool lost;                /* the process died or hung on its own */
    char msg[1100];
} kit_result;

/* Set up the scratch device for module and artifact (reads the artifact's header, loads a native
 * module once to check it). Fills err text in msg on failure (returns -1). */
int kit_device_setup(kit *k, char *msg, size_t cap);
/* Remove the scratch device. */
void kit_device_remove(kit *k);
/* Back to a fresh device: empty data dir, no knobs, no calls. name names the case's log. */
int kit_case_start(kit *k, const char *name);
/* Set a knob of the wrapper (sleep_/fail_ + call); remove them all with kit_knobs_clear. */
void kit_knob(kit *k, const char *knob, const char *call);
void kit_knobs_clear(kit *k, const char *prefix);
/* Run molt's command (install|commit|rollback|resume) in a child; with kill_call, kill it (and
 * the module) once kill_call has returned inside the wrapper. */
void kit_run(kit *k, const char *command, const char *kill_call, kit_result *res);
/* The device reboots (a reboot asked for, or after a power cut): run the reboot hook, if any,
 * its output into the case's log. 0, or -1 when the hook failed (msg says how). */
int kit_reboot(kit *k, char *msg, size_t cap);
/* Reload the calls the wrapper saw in this case into k->events. */
void kit_load_events(kit *k);
/* The wrapper's raw record of a query answer (exec: the module's stdout; native: the number);
 * malloc'd or NULL. */
char *kit_answer(kit *k, const char *call, size_t *ret_len);
/* The device's artifact_name and its state ("idle" or a state); malloc'd, "" on error. */
char *kit_artifact_name(kit *k);
char *kit_state(kit *k);
/* True if a module work tree is left in the data dir. */
bool kit_tree_left(kit *k);
/* Whether the last case's molt log contains needle. */
bool kit_log_has(kit *k, const char *needle);

/* Effects: run the module's probe (sh -c, in the scratch device, with MOLT_KIT_* in its
 * environment); the SHA-256 of its output in ret (65 bytes, hex), the output kept as
 * <root>/probe/<case>.<label>.txt. 0, or -1 (msg says why). */
int kit_probe(kit *k, const char *label, char *ret, char *msg, size_t cap);
/* The first line where two probe outputs of the current case differ, as text ("" if none). */
void kit_probe_diff(kit *k, const char *label_a, const char *label_b, char *buf, size_t cap);
/* A copy of the artifact whose manifest has a wrong checksum for the last payload file (the
 * mismatch shows at the end of the stream), as <root>/corrupt.mender in ret_path. */
int kit_corrupt_artifact(kit *k, char *ret_path, size_t path_cap, char *msg, size_t cap);

/* Report lines. */
void kit_pass(kit *k, const char *check);
void kit_fail(kit *k, const char *check, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kit_skip(kit *k, const char *check, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kit_info(kit *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Every check, in order. */
void kit_run_checks(kit *k);

#endif
