/* SPDX-License-Identifier: Apache-2.0 */
/* molt-artifact: shared declarations of the commands (one file each) and their helpers. */
#ifndef MOLT_ARTIFACT_TOOL_H
#define MOLT_ARTIFACT_TOOL_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>
#include "util/err.h"

/* Exit codes, documented in --help and docs/molt-artifact.md. */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAILED 1 /* the artifact is invalid, or the operation failed */
#define TOOL_EXIT_USAGE 2  /* bad command line */

/* "molt-artifact: <message>" on stderr. */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a usage error for cmd ("write module-image") and return TOOL_EXIT_USAGE. */
int tool_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After getopt returned ':' or '?' for argv: report the option at fault as a usage error. */
int tool_bad_option(const char *cmd, int c, char **argv);
/* Report err (with an optional "context: " prefix) and return TOOL_EXIT_FAILED. */
int tool_fail(const molt_err *err);

/* A growing list of borrowed strings (argv elements). */
typedef struct tool_strv {
    const char **v;
    size_t n;
} tool_strv;
/* Append s; exits the program when out of memory. */
void tool_strv_add(tool_strv *l, const char *s);
void tool_strv_free(tool_strv *l);

/* Parse compression into spec and write the artifact to out: TOOL_EXIT_OK, TOOL_EXIT_USAGE
 * (unknown compression, reported for cmd) or TOOL_EXIT_FAILED (reported). */
struct molt_artifact_spec;
int tool_write_spec(struct molt_artifact_spec *spec, const char *compression, const char *out,
                    const char *cmd);

/* The commands: argv[0] is the command word. global_compression is a --compression given
 * before the command (mender-artifact accepts it there), or NULL. */
int tool_cmd_write(int argc, char **argv, const char *global_compression);
/* write rootfs-delta (delta_write.c): argv[0] is "rootfs-delta". */
int tool_cmd_write_delta(int argc, char **argv, const char *global_compression);
int tool_cmd_read(int argc, char **argv);
int tool_cmd_validate(int argc, char **argv);
int tool_cmd_sign(int argc, char **argv);

/* Read and check the whole artifact at path (streamed; payloads never held) and describe it as
 * the JSON document of `read --json` (docs/molt-artifact.md). *ret is owned by the caller. */
int tool_inspect(const char *path, const char *const *keys, size_t n_keys, json_t **ret,
                 molt_err *err);

/* Print the document of tool_inspect for a person. */
void tool_print_human(const json_t *doc, FILE *out);

#endif
