/* SPDX-License-Identifier: Apache-2.0 */
/* molt-artifact: write, read, validate and sign Mender Artifact v3 files. main() only picks
 * the command; each command parses its own arguments and calls the artifact library. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static const char usage_text[] =
    "Usage: molt-artifact [--compression none|gzip|xz|lzma|zstd] COMMAND [ARGS...]\n"
    "\n"
    "Write, read, validate and sign Mender Artifact v3 files (compatible with mender-artifact).\n"
    "\n"
    "Commands:\n"
    "  write module-image       an artifact for an update module (-T TYPE -f FILE...)\n"
    "  write rootfs-image       a full root filesystem image (-f IMAGE)\n"
    "  write rootfs-delta       a binary delta between two images (--base OLD --target NEW)\n"
    "  write bootstrap-artifact an artifact with an empty payload (provides only)\n"
    "  read [--json] [-k PUBKEY]... FILE\n"
    "                           check the whole artifact and show everything in it\n"
    "  validate [-k PUBKEY]... FILE\n"
    "                           check the whole artifact (and its signature with -k)\n"
    "  sign -k KEY [-o OUT] FILE\n"
    "                           add or replace the signature, leaving every other byte\n"
    "\n"
    "Run 'molt-artifact COMMAND --help' for the options of a command.\n"
    "\n"
    "Exit codes:\n"
    "  0  success (the artifact is valid)\n"
    "  1  the artifact is invalid, or the operation failed (message on stderr)\n"
    "  2  usage error (bad command line)\n";

void tool_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("molt-artifact: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int tool_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("molt-artifact: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'molt-artifact %s --help'.\n", cmd);
    va_end(ap);
    return TOOL_EXIT_USAGE;
}

int tool_bad_option(const char *cmd, int c, char **argv)
{
    char opt[8];
    const char *name = argv[optind - 1];
    if (optopt > 0 && optopt < 256) { /* a short option: argv may hold a cluster like -jz */
        snprintf(opt, sizeof opt, "-%c", optopt);
        name = opt;
    }
    if (c == ':')
        return tool_usage(cmd, "option %s needs a value", name);
    return tool_usage(cmd, "unknown option %s", name);
}

int tool_fail(const molt_err *err)
{
    tool_error("%s", err->msg[0] ? err->msg : molt_strerror(err->code));
    return TOOL_EXIT_FAILED;
}

void tool_strv_add(tool_strv *l, const char *s)
{
    const char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) {
        tool_error("out of memory");
        exit(TOOL_EXIT_FAILED);
    }
    v[l->n++] = s;
    l->v = v;
}

void tool_strv_free(tool_strv *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int main(int argc, char **argv)
{
    const char *compression = NULL;
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return TOOL_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("molt-artifact %s\n", MOLT_VERSION);
            return TOOL_EXIT_OK;
        }
        if (strcmp(argv[i], "--compression") == 0 && i + 1 < argc) {
            compression = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--compression=", 14) == 0) {
            compression = argv[i] + 14;
            i++;
        } else {
            fprintf(stderr, "molt-artifact: unknown option %s\n%s", argv[i], usage_text);
            return TOOL_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "molt-artifact: no command given\n%s", usage_text);
        return TOOL_EXIT_USAGE;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (strcmp(cmd, "write") == 0)
        return tool_cmd_write(sub_argc, sub_argv, compression);
    if (compression) {
        fprintf(stderr, "molt-artifact: --compression applies to write only\n");
        return TOOL_EXIT_USAGE;
    }
    if (strcmp(cmd, "read") == 0)
        return tool_cmd_read(sub_argc, sub_argv);
    if (strcmp(cmd, "validate") == 0)
        return tool_cmd_validate(sub_argc, sub_argv);
    if (strcmp(cmd, "sign") == 0)
        return tool_cmd_sign(sub_argc, sub_argv);
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return TOOL_EXIT_OK;
    }
    fprintf(stderr, "molt-artifact: unknown command \"%s\"\n%s", cmd, usage_text);
    return TOOL_EXIT_USAGE;
}
