/* SPDX-License-Identifier: Apache-2.0 */
/* The `molt` program: argument parsing and output only; the work is in core/state/machine.c.
 * Exit codes as Mender's standalone CLI: 0 ok, 1 failure, 2 nothing in progress, 4 reboot
 * required (with --reboot-exit-code). */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "config/config.h"
#include "fleet.h"
#include "host/module_manifest.h"
#include "host/native_host.h"
#include "host/registry.h"
#include "progress.h"
#include "state/machine.h"
#include "transport/http_source.h"
#include "util/json.h"
#include "util/fs.h"
#include "util/log.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_NOTHING 2
#define EXIT_REBOOT 4

typedef struct cli {
    const char *config_path;
    int verbosity;             /* -1 quiet, 0 normal, 1 verbose */
    bool reboot_exit_code;
    bool allow_downgrade;
    bool json;
    bool check;                /* daemon --check */
    const char *command;
    const char *arg;
} cli;

static const char usage_text[] =
    "Usage: molt [--config FILE] [-v|--verbose] [-q|--quiet] COMMAND [ARGS]\n"
    "\n"
    "Install updates through update modules (Mender Artifact v3, Update Module v3).\n"
    "\n"
    "Commands:\n"
    "  install FILE|URL [--reboot-exit-code] [--allow-downgrade]\n"
    "                                          install an artifact (a file, - for stdin, or an\n"
    "                                          http(s) URL); waits for commit when the module\n"
    "                                          supports rollback, commits at once otherwise\n"
    "  commit [--reboot-exit-code]             commit the installed update\n"
    "  rollback [--reboot-exit-code]           roll the installed update back\n"
    "  resume [--reboot-exit-code]             continue after a reboot or an interruption\n"
    "  show-artifact                           print the installed artifact's name\n"
    "  show-provides                           print the device's provides (key=value)\n"
    "  status [--json]                         state, deployment, progress, last error\n"
    "  modules                                 installed update modules and their payload types\n"
    "  daemon [--check]                        run the client of a Mender server (docs/fleet.md);\n"
    "                                          --check: only say whether the configuration\n"
    "                                          names a server (exit 0) or not (exit 1)\n"
    "  check-update                            make the running daemon check for an update now\n"
    "  send-inventory                          make the running daemon send the inventory now\n"
    "  version                                 print molt's version\n"
    "  help                                    this text\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration file (default " MOLT_DEFAULT_CONFIG ")\n"
    "  -v, --verbose         log debug messages\n"
    "  -q, --quiet           log errors only, no progress\n"
    "  --reboot-exit-code    exit with 4 when a reboot is required\n"
    "  --allow-downgrade     install: install an artifact the downgrade policy refuses\n"
    "                        (molt.yaml downgrade:, docs/configuration.md)\n"
    "  -h, --help            help\n"
    "\n"
    "Exit codes: 0 success, 1 failure, 2 no update in progress (commit, rollback, resume),\n"
    "4 reboot required (only with --reboot-exit-code).\n";

static void usage(FILE *out)
{
    fputs(usage_text, out);
}

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "molt: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'molt --help' for usage.\n");
    va_end(ap);
    return EXIT_FAIL;
}

static bool known_command(const char *c)
{
    static const char *const cmds[] = {"install", "commit", "rollback", "resume",
                                       "show-artifact", "show-provides", "status", "modules",
                                       "version", "help"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(c, cmds[i]) == 0)
            return true;
    return molt_cli_fleet_command(c);
}

/* Parse argv into c. Returns -1 to go on, else an exit code (help printed, or bad usage). */
static int parse(int argc, char **argv, cli *c)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (++i >= argc)
                return bad_usage("%s needs a file", a);
            c->config_path = argv[i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            c->config_path = a + 9;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            c->verbosity = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            c->verbosity = -1;
        } else if (strcmp(a, "--reboot-exit-code") == 0) {
            c->reboot_exit_code = true;
        } else if (strcmp(a, "--allow-downgrade") == 0) {
            c->allow_downgrade = true;
        } else if (strcmp(a, "--json") == 0) {
            c->json = true;
        } else if (strcmp(a, "--check") == 0) {
            c->check = true;
        } else if (strcmp(a, "--version") == 0) {
            c->command = "version";
        } else if (a[0] == '-' && a[1] != '\0') {
            return bad_usage("unknown option %s", a);
        } else if (!c->command) {
            if (!known_command(a))
                return bad_usage("unknown command '%s'", a);
            c->command = a;
        } else if (!c->arg && strcmp(c->command, "install") == 0) {
            c->arg = a;
        } else {
            return bad_usage("unexpected argument '%s'", a);
        }
    }
    if (!c->command)
        return bad_usage("%s", "no command given");
    if (strcmp(c->command, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(c->command, "install") == 0 && !c->arg)
        return bad_usage("%s", "install needs an artifact file or URL");
    if (c->allow_downgrade && strcmp(c->command, "install") != 0)
        return bad_usage("%s", "--allow-downgrade is an option of install");
    if (c->json && strcmp(c->command, "status") != 0)
        return bad_usage("%s", "--json is an option of status");
    if (c->check && strcmp(c->command, "daemon") != 0)
        return bad_usage("%s", "--check is an option of daemon");
    if (c->reboot_exit_code && strcmp(c->command, "install") != 0 &&
        strcmp(c->command, "resume") != 0 && strcmp(c->command, "commit") != 0 &&
        strcmp(c->command, "rollback") != 0)
        return bad_usage("%s", "--reboot-exit-code is an option of install, resume, commit, "
                               "rollback");
    return -1;
}

/* ---- commands ----------------------------------------------------------------------------- */

static int exit_for(const cli *c, molt_outcome o, int r, const molt_err *err, const char *cmd)
{
    switch (o) {
    case MOLT_OUTCOME_DONE:
        return EXIT_OK;
    case MOLT_OUTCOME_AWAIT_COMMIT:
        printf("Use 'molt commit' to update, or 'molt rollback' to roll back the update.\n");
        return EXIT_OK;
    case MOLT_OUTCOME_REBOOT:
        printf("A reboot is required: reboot the device, then run 'molt resume'.\n");
        return c->reboot_exit_code ? EXIT_REBOOT : EXIT_OK;
    case MOLT_OUTCOME_NOTHING:
        fprintf(stderr, "molt %s: %s\n", cmd, err->msg);
        return EXIT_NOTHING;
    case MOLT_OUTCOME_FAILED:
    default:
        fprintf(stderr, "molt %s: %s\n", cmd, r < 0 && err->msg[0] ? err->msg : "failed");
        return EXIT_FAIL;
    }
}

/* One line on stdout saying what `molt resume` did, once the deployment is over: the artifact
 * it committed, or the one the device is back on. A failure that left the device inconsistent
 * gets no line here: the error on stderr says it. */
static void resume_summary(molt_machine *m, molt_outcome o, const char *id)
{
    const molt_last_deployment *last = molt_machine_last(m);
    if (!id || (o != MOLT_OUTCOME_DONE && o != MOLT_OUTCOME_FAILED) || molt_machine_deployment(m) ||
        !last || strcmp(last->id, id) != 0)
        return;
    if (last->result == MOLT_RESULT_SUCCESS)
        printf("Committed %s.\n", last->artifact_name);
    else if (last->rolled_back)
        printf("Rolled back to %s.\n", molt_machine_artifact_name(m));
}

static int cmd_deployment(const cli *c, molt_machine *m)
{
    molt_err err = {0};
    molt_outcome o = MOLT_OUTCOME_FAILED;
    int r;
    const char *cmd = c->command;
    if (strcmp(cmd, "install") == 0) {
        bool show = c->verbosity >= 0;
        molt_progress *p = show ? molt_progress_new(stderr, isatty(STDERR_FILENO)) : NULL;
        if (p)
            molt_machine_set_progress(m, molt_progress_update, p);
        if (show) {
            char *shown = molt_http_redact_url(c->arg);
            printf("Installing artifact %s...\n", shown ? shown : "");
            free(shown);
        }
        fflush(stdout);
        molt_machine_set_allow_downgrade(m, c->allow_downgrade);
        r = molt_machine_install(m, c->arg, &o, &err);
        molt_progress_free(p);
        if (r == 0 && o == MOLT_OUTCOME_DONE)
            printf("Installed and committed.\n");
    } else if (strcmp(cmd, "commit") == 0) {
        r = molt_machine_commit(m, &o, &err);
        if (r == 0 && o == MOLT_OUTCOME_DONE)
            printf("Committed.\n");
    } else if (strcmp(cmd, "rollback") == 0) {
        r = molt_machine_rollback(m, &o, &err);
        if (r == 0 && o == MOLT_OUTCOME_DONE)
            printf("Rolled back.\n");
    } else {
        /* The deployment this resume is about, to say what became of it. */
        const molt_deployment *before = molt_machine_deployment(m);
        char *id = before ? strdup(before->id) : NULL;
        r = molt_machine_resume(m, &o, &err);
        if (o == MOLT_OUTCOME_NOTHING) {
            free(id);
            printf("Nothing to do: no update in progress.\n");
            return EXIT_NOTHING;
        }
        resume_summary(m, o, id);
        free(id);
    }
    return exit_for(c, o, r, &err, cmd);
}

/* Keys sorted the way `mender show-provides` prints them. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmd_show(const cli *c, molt_machine *m)
{
    molt_err err = {0};
    json_t *prov = NULL;
    if (molt_machine_provides(m, &prov, &err) < 0) {
        fprintf(stderr, "molt %s: %s\n", c->command, err.msg);
        return EXIT_FAIL;
    }
    if (strcmp(c->command, "show-artifact") == 0) {
        printf("%s\n", json_string_value(json_object_get(prov, "artifact_name")));
        json_decref(prov);
        return EXIT_OK;
    }
    size_t n = json_object_size(prov), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) {
        json_decref(prov);
        fprintf(stderr, "molt: out of memory\n");
        return EXIT_FAIL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(prov, key, value)
        keys[i++] = key;
    qsort(keys, n, sizeof *keys, cmp_str);
    for (i = 0; i < n; i++)
        printf("%s=%s\n", keys[i], json_string_value(json_object_get(prov, keys[i])));
    free(keys);
    json_decref(prov);
    return EXIT_OK;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int cmd_status(const cli *c, molt_machine *m)
{
    molt_err err = {0};
    json_t *st = NULL;
    if (molt_machine_status(m, &st, &err) < 0) {
        fprintf(stderr, "molt status: %s\n", err.msg);
        return EXIT_FAIL;
    }
    if (c->json) {
        char *text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(st);
        return text ? EXIT_OK : EXIT_FAIL;
    }
    printf("state:         %s\n", jstr(st, "state"));
    printf("artifact:      %s\n", jstr(st, "artifact_name"));
    const json_t *d = json_object_get(st, "deployment");
    if (json_is_object(d)) {
        printf("deployment:    %s\n", jstr(d, "id"));
        printf("  artifact:    %s (payload type %s)\n", jstr(d, "artifact_name"),
               jstr(d, "payload_type"));
        printf("  started:     %s\n", jstr(d, "started"));
        printf("  state:       %s%s\n", jstr(d, "state"),
               json_is_true(json_object_get(d, "running")) ? " (molt is working on it)"
               : jstr(d, "pending")                         ? ""
                                                            : " (interrupted: run molt resume)");
        if (jstr(d, "rollback_error"))
            printf("  rollback:    pending, run molt resume once this has passed: %s\n",
                   jstr(d, "rollback_error"));
        const json_t *p = json_object_get(d, "progress");
        json_int_t bytes = json_integer_value(json_object_get(p, "bytes"));
        json_int_t total = json_integer_value(json_object_get(p, "total"));
        if (total > 0)
            printf("  progress:    %lld of %lld bytes (%lld%%)\n", (long long)bytes,
                   (long long)total, (long long)(bytes * 100 / total));
        else if (bytes > 0)
            printf("  progress:    %lld bytes\n", (long long)bytes);
    }
    if (jstr(st, "last_error"))
        printf("last error:    %s\n", jstr(st, "last_error"));
    const json_t *log = json_object_get(st, "log");
    if (json_array_size(log) > 0) {
        printf("log:\n");
        size_t i;
        json_t *e;
        json_array_foreach(log, i, e)
            printf("  %s %-7s %s\n", jstr(e, "timestamp"), jstr(e, "level"), jstr(e, "message"));
    }
    json_decref(st);
    return EXIT_OK;
}

/* A second line for a module with a manifest beside it (<name>.yaml, docs/modules.md): its
 * version, capabilities and description. */
static void print_manifest(const char *module_path)
{
    molt_module_manifest *mf = NULL;
    molt_err err = {0};
    int r = molt_module_manifest_load(module_path, &mf, &err);
    if (r == MOLT_ENOTFOUND)
        return;
    if (r < 0) {
        printf("%-31s manifest: %s\n", "", err.msg);
        return;
    }
    printf("%-31s version %s, capabilities:%s%s%s%s%s%s\n", "", mf->version ? mf->version : "?",
           mf->streaming == 1 ? " streaming" : "", mf->rollback == 1 ? " rollback" : "",
           mf->reboot == 1 ? " reboot" : "",
           mf->streaming != 1 && mf->rollback != 1 && mf->reboot != 1 ? " none" : "",
           mf->description ? ": " : "", mf->description ? mf->description : "");
    molt_module_manifest_free(mf);
}

/* The registry's view: native modules (with name, version, or why they were refused), then exec
 * modules; a type claimed earlier hides later ones, as lookup does. */
static int cmd_modules(const molt_config *cfg)
{
    molt_err err = {0};
    molt_registry *reg = NULL;
    if (molt_registry_load(&reg, cfg, &err) < 0) {
        fprintf(stderr, "molt: %s\n", err.msg);
        return EXIT_FAIL;
    }
    printf("%-24s %-6s %s\n", "PAYLOAD TYPE", "KIND", "PATH");
    for (size_t i = 0; i < reg->n_items; i++) {
        const molt_registry_item *it = &reg->items[i];
        if (it->refused)
            printf("%-24s %-6s %s (refused: %s)\n", "-", "native", it->path, it->refused);
        else if (it->kind == MOLT_MODULE_NATIVE)
            printf("%-24s %-6s %s (%s %s%s)\n", it->type, "native", it->path, it->name,
                   it->version, it->isolated ? ", isolated" : "");
        else
            printf("%-24s %-6s %s\n", it->type, "exec", it->path);
        if (!it->refused)
            print_manifest(it->path);
    }
    molt_registry_free(reg);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    cli c = {0};
    int code = parse(argc, argv, &c);
    if (code >= 0)
        return code;
    if (strcmp(c.command, "version") == 0) {
        printf("molt %s\n", MOLT_VERSION);
        return EXIT_OK;
    }

    molt_json_seed();
    molt_err err = {0};
    molt_config *cfg = NULL;
    molt_machine *m = NULL;
    if (molt_config_load(&cfg, c.config_path, &err) < 0) {
        fprintf(stderr, "molt: %s\n", err.msg);
        return EXIT_FAIL;
    }
    molt_log_level level = MOLT_LOG_INFO;
    if (cfg->log_level)
        molt_log_level_parse(cfg->log_level, &level);
    if (c.verbosity > 0)
        level = MOLT_LOG_DEBUG;
    else if (c.verbosity < 0)
        level = MOLT_LOG_ERROR;
    molt_log_set_level(level);

    if (strcmp(c.command, "modules") == 0) {
        code = cmd_modules(cfg);
        goto out;
    }
    if (molt_cli_fleet_command(c.command)) {
        code = molt_cli_fleet(c.command, cfg, c.check);
        goto out;
    }
    /* One machine and at most one module load, then exit: unmapping the module is left to the
     * exit (the daemon's jobs unload theirs, molt_cli_fleet above). */
    molt_native_keep_mapped();
    if (molt_machine_open(&m, cfg, &err) < 0) {
        fprintf(stderr, "molt: %s\n", err.msg);
        code = EXIT_FAIL;
        goto out;
    }
    if (strcmp(c.command, "status") == 0)
        code = cmd_status(&c, m);
    else if (strncmp(c.command, "show-", 5) == 0)
        code = cmd_show(&c, m);
    else
        code = cmd_deployment(&c, m);
out:
    molt_machine_free(m);
    molt_config_free(cfg);
    return code;
}
