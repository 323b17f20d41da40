/* SPDX-License-Identifier: Apache-2.0 */
/* molt-artifact read [--json] [-k PUBKEY]... FILE and validate [-k PUBKEY]... FILE: both stream
 * the whole artifact through the reader; read also shows what is in it. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static const char read_help[] =
    "Usage: molt-artifact read [--json] [-k PUBLIC_KEY]... FILE\n\n"
    "Read the whole artifact, checking every checksum as it streams (the payload is never\n"
    "held in memory), and show everything in it: format, compression, signature, name,\n"
    "group, payload type, depends, provides, clears, meta-data, state scripts and each\n"
    "payload file with its size and sha256. FILE \"-\" reads standard input.\n\n"
    "Options:\n"
    "  -j, --json              print one JSON document (keys in docs/molt-artifact.md)\n"
    "  -k, --key PUBLIC_KEY    verify the signature with this PEM key; may be repeated (tried\n"
    "                          in order); with a key an unsigned artifact is refused\n"
    "  -h, --help              show this help\n\n"
    "Exit codes: 0 the artifact is valid, 1 it is not (message on stderr), 2 usage error.\n";

static const char validate_help[] =
    "Usage: molt-artifact validate [-k PUBLIC_KEY]... FILE\n\n"
    "Check the whole artifact: layout, version, manifest, every checksum, header JSON and,\n"
    "when keys are given, the signature (an unsigned artifact is then refused).\n\n"
    "Options:\n"
    "  -k, --key PUBLIC_KEY    PEM public key (RSA or EC P-256); may be repeated\n"
    "  -h, --help              show this help\n\n"
    "Exit codes: 0 the artifact is valid, 1 it is not (message on stderr), 2 usage error.\n";

static const struct option long_opts[] = {
    {"json", no_argument, NULL, 'j'},
    {"key", required_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parse the shared options; returns -1 to go on, or an exit code. */
static int parse(int argc, char **argv, bool is_read, bool *json, tool_strv *keys,
                 const char **file)
{
    const char *cmd = is_read ? "read" : "validate";
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, is_read ? ":jk:h" : ":k:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            if (!is_read)
                return tool_usage(cmd, "--json applies to read");
            *json = true;
            break;
        case 'k':
            tool_strv_add(keys, optarg);
            break;
        case 'h':
            fputs(is_read ? read_help : validate_help, stdout);
            return TOOL_EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    if (argc - optind == 0)
        return tool_usage(cmd, "no artifact file given");
    if (argc - optind != 1)
        return tool_usage(cmd, "expected one artifact file, got %d arguments", argc - optind);
    *file = argv[optind];
    return -1;
}

/* read and validate: the same checks, then the description or one line. */
static int run(int argc, char **argv, bool is_read)
{
    bool json = false;
    tool_strv keys = {0};
    const char *file = NULL;
    json_t *doc = NULL;
    molt_err err = {0};
    int rc = parse(argc, argv, is_read, &json, &keys, &file);
    if (rc >= 0)
        goto out;
    if (tool_inspect(file, keys.v, keys.n, &doc, &err) < 0) {
        rc = tool_fail(&err);
        goto out;
    }
    if (!is_read) {
        const char *by = json_string_value(json_object_get(doc, "verified_by"));
        if (by)
            printf("%s: valid, signature verified with %s\n", file, by);
        else
            printf("%s: valid\n", file);
    } else if (!json) {
        tool_print_human(doc, stdout);
    } else if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0) {
        fputc('\n', stdout);
    }
    rc = fflush(stdout) == 0 && !ferror(stdout) ? TOOL_EXIT_OK : TOOL_EXIT_FAILED;
    if (rc != TOOL_EXIT_OK)
        tool_error("cannot write to standard output");
out:
    json_decref(doc);
    tool_strv_free(&keys);
    return rc;
}

int tool_cmd_read(int argc, char **argv)
{
    return run(argc, argv, true);
}

int tool_cmd_validate(int argc, char **argv)
{
    return run(argc, argv, false);
}
