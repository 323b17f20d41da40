/* SPDX-License-Identifier: Apache-2.0 */
/* molt-artifact sign -k KEY [-o OUT] FILE: add or replace manifest.sig (molt_artifact_sign). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "artifact/writer.h"
#include "tool.h"

static const char sign_help[] =
    "Usage: molt-artifact sign -k PRIVATE_KEY [-o OUT] FILE\n\n"
    "Sign the artifact's manifest: manifest.sig is added after manifest, or replaced if the\n"
    "artifact is already signed. Every other member is copied byte for byte.\n\n"
    "Options:\n"
    "  -k, --key PRIVATE_KEY   PEM private key: RSA (PKCS#1 or PKCS#8) or EC P-256 (required)\n"
    "  -o, --output-path OUT   write the signed artifact here (default: replace FILE)\n"
    "  -f, --force             accepted for mender-artifact compatibility (an existing\n"
    "                          signature is always replaced)\n"
    "  -h, --help              show this help\n\n"
    "Exit codes: 0 signed, 1 failed (message on stderr), 2 usage error.\n";

static const struct option long_opts[] = {
    {"key", required_argument, NULL, 'k'},
    {"output-path", required_argument, NULL, 'o'},
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int tool_cmd_sign(int argc, char **argv)
{
    const char *key = NULL, *out = NULL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":k:o:fh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'o': out = optarg; break;
        case 'f': break;
        case 'h':
            fputs(sign_help, stdout);
            return TOOL_EXIT_OK;
        default:
            return tool_bad_option("sign", c, argv);
        }
    }
    if (!key)
        return tool_usage("sign", "-k/--key is required");
    if (argc - optind != 1)
        return tool_usage("sign", "expected one artifact file");
    const char *in = argv[optind];
    molt_err err = {0};
    if (molt_artifact_sign(in, out ? out : in, key, &err) < 0)
        return tool_fail(&err);
    return TOOL_EXIT_OK;
}
