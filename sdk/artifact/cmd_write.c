/* SPDX-License-Identifier: Apache-2.0 */
/* molt-artifact write module-image|rootfs-image|bootstrap-artifact: the flags of
 * mender-artifact, its default provides and clears (docs/reference §1.5), then molt_artifact_write. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact/writer.h"
#include "tool.h"
#include "util/encoding.h"
#include "util/fs.h"

enum kind { MODULE = 1, ROOTFS = 2, BOOTSTRAP = 4 };
#define ALL (MODULE | ROOTFS | BOOTSTRAP)

enum {
    O_CLEARS = 256, O_SW_NAME, O_SW_VERSION, O_SW_FS, O_NO_DEF_VERSION, O_NO_DEF_CLEARS,
    O_NO_CHECKSUM, O_LEGACY_CHECKSUM, O_COMPRESSION, O_NO_PROGRESS
};

static const struct option long_opts[] = {
    {"type", required_argument, NULL, 'T'},
    {"artifact-name", required_argument, NULL, 'n'},
    {"device-type", required_argument, NULL, 't'},
    {"file", required_argument, NULL, 'f'},
    {"output-path", required_argument, NULL, 'o'},
    {"meta-data", required_argument, NULL, 'm'},
    {"script", required_argument, NULL, 's'},
    {"provides", required_argument, NULL, 'p'},
    {"depends", required_argument, NULL, 'd'},
    {"artifact-name-depends", required_argument, NULL, 'N'},
    {"provides-group", required_argument, NULL, 'g'},
    {"depends-groups", required_argument, NULL, 'G'},
    {"clears-provides", required_argument, NULL, O_CLEARS},
    {"software-name", required_argument, NULL, O_SW_NAME},
    {"software-version", required_argument, NULL, O_SW_VERSION},
    {"software-filesystem", required_argument, NULL, O_SW_FS},
    {"no-default-software-version", no_argument, NULL, O_NO_DEF_VERSION},
    {"no-default-clears-provides", no_argument, NULL, O_NO_DEF_CLEARS},
    {"no-checksum-provide", no_argument, NULL, O_NO_CHECKSUM},
    {"legacy-rootfs-image-checksum", no_argument, NULL, O_LEGACY_CHECKSUM},
    {"compression", required_argument, NULL, O_COMPRESSION},
    {"key", required_argument, NULL, 'k'},
    {"version", required_argument, NULL, 'v'},
    {"no-progress", no_argument, NULL, O_NO_PROGRESS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* "-T/--type" for messages. */
static void option_name(int opt, char *out, size_t len)
{
    for (const struct option *o = long_opts; o->name; o++) {
        if (o->val != opt)
            continue;
        if (opt < 256)
            snprintf(out, len, "-%c/--%s", opt, o->name);
        else
            snprintf(out, len, "--%s", o->name);
        return;
    }
    snprintf(out, len, "?");
}

/* Which kinds accept an option (by its getopt value). */
static int allowed_kinds(int opt)
{
    switch (opt) {
    case 'T': case 'm': return MODULE;
    case 'f': case 's': case O_SW_NAME: case O_SW_VERSION: case O_SW_FS: case O_NO_DEF_VERSION:
    case O_NO_DEF_CLEARS:
        return MODULE | ROOTFS;
    case O_NO_CHECKSUM: case O_LEGACY_CHECKSUM: return ROOTFS;
    default: return ALL;
    }
}

static const char common_help[] =
    "  -n, --artifact-name NAME          artifact_provides.artifact_name (required)\n"
    "  -t, --device-type TYPE            compatible device type (required, repeatable)\n"
    "  -o, --output-path OUT             the artifact to write (required)\n"
    "  -p, --provides KEY:VALUE          type-info artifact_provides entry (repeatable)\n"
    "  -d, --depends KEY:VALUE           type-info artifact_depends entry (repeatable)\n"
    "  -N, --artifact-name-depends NAME  depend on one of these installed artifacts (repeatable)\n"
    "  -g, --provides-group GROUP        artifact_provides.artifact_group\n"
    "  -G, --depends-groups GROUP        depend on one of these groups (repeatable)\n"
    "      --clears-provides GLOB        clears_artifact_provides pattern (repeatable)\n"
    "      --compression none|gzip|xz|lzma|zstd  (default gzip; lzma means xz)\n"
    "  -k, --key PRIVATE_KEY             sign with this PEM key (RSA, or EC P-256)\n"
    "  -h, --help                        show this help\n";

static const char exit_help[] =
    "\nExit codes: 0 written, 1 failed (message on stderr), 2 usage error.\n";

static void print_help(enum kind k)
{
    if (k == MODULE) {
        fputs("Usage: molt-artifact write module-image -T TYPE -n NAME -t DEVICE_TYPE... "
              "-o OUT [-f FILE]... [options]\n\n"
              "Write an artifact whose payload is handled by the update module TYPE.\n"
              "By default it provides rootfs-image.TYPE.version = NAME and clears\n"
              "rootfs-image.TYPE.*, as mender-artifact does.\n\nOptions:\n"
              "  -T, --type TYPE                   payload type = update module name (required)\n"
              "  -f, --file FILE                   payload file, stored by base name (repeatable)\n"
              "  -m, --meta-data FILE              JSON object stored as headers/0000/meta-data\n"
              "  -s, --script FILE                 state script Artifact<State>_<Action>_NN "
              "(repeatable)\n"
              "      --software-name NAME          provide rootfs-image.NAME.version instead\n"
              "      --software-version VERSION    value of the version provide (default NAME)\n"
              "      --software-filesystem FS      use FS instead of rootfs-image in those keys\n"
              "      --no-default-software-version do not add the version provide and its clears\n"
              "      --no-default-clears-provides  do not add the default clears\n",
              stdout);
    } else if (k == ROOTFS) {
        fputs("Usage: molt-artifact write rootfs-image -f IMAGE -n NAME -t DEVICE_TYPE... "
              "-o OUT [options]\n\n"
              "Write a full root filesystem image artifact. By default it provides\n"
              "rootfs-image.checksum = sha256 of IMAGE and rootfs-image.version = NAME, and\n"
              "clears artifact_group, rootfs_image_checksum and rootfs-image.*.\n\nOptions:\n"
              "  -f, --file IMAGE                  the filesystem image (required)\n"
              "  -s, --script FILE                 state script (repeatable)\n"
              "      --software-name NAME          provide rootfs-image.NAME.version instead\n"
              "      --software-version VERSION    value of the version provide (default NAME)\n"
              "      --software-filesystem FS      use FS instead of rootfs-image in those keys\n"
              "      --no-default-software-version do not add the version provide and its clears\n"
              "      --no-default-clears-provides  do not add the default clears\n"
              "      --no-checksum-provide         do not add rootfs-image.checksum\n"
              "      --legacy-rootfs-image-checksum  provide rootfs_image_checksum instead\n",
              stdout);
    } else {
        fputs("Usage: molt-artifact write bootstrap-artifact -n NAME -t DEVICE_TYPE... -o OUT "
              "[options]\n\n"
              "Write an artifact with an empty payload: installing it only records its\n"
              "provides (used to bootstrap a device's provides).\n\nOptions:\n",
              stdout);
    }
    fputs(common_help, stdout);
    fputs(exit_help, stdout);
}

static const char write_help[] =
    "Usage: molt-artifact write module-image|rootfs-image|rootfs-delta|bootstrap-artifact "
    "[options]\n"
    "Run 'molt-artifact write KIND --help' for the options.\n";

/* Split KEY:VALUE at the first colon into obj (the last one given wins, as in mender-artifact). */
static int add_key_value(json_t *obj, const char *arg, const char *cmd, const char *flag)
{
    const char *colon = strchr(arg, ':');
    if (!colon || colon == arg)
        return tool_usage(cmd, "%s expects KEY:VALUE, got \"%s\"", flag, arg);
    char *key = strndup(arg, (size_t)(colon - arg));
    json_t *val = json_string(colon + 1);
    int r = key && val && json_object_set_new(obj, key, val) == 0 ? 0 : -1;
    if (r < 0 && !key)
        json_decref(val);
    free(key);
    if (r < 0)
        return tool_usage(cmd, "%s value \"%s\" is not valid UTF-8", flag, arg);
    return 0;
}

/* Load -m: a JSON object; numbers are read as float64 like mender-artifact's Go decoder. */
static int load_meta_data(const char *path, json_t **ret)
{
    char *text = NULL;
    size_t len = 0;
    molt_err err = {0};
    if (molt_read_file(path, MOLT_ARTIFACT_MAX_HEADER_MEMBER, &text, &len, &err) < 0)
        return tool_fail(&err);
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    free(text);
    if (!j) {
        tool_error("meta-data %s: invalid JSON at line %d column %d: %s", path, jerr.line,
                   jerr.column, jerr.text);
        return TOOL_EXIT_FAILED;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        tool_error("meta-data %s: the top level must be a JSON object", path);
        return TOOL_EXIT_FAILED;
    }
    *ret = j;
    return 0;
}

typedef struct write_args {
    const char *type, *name, *out, *meta_path, *group, *sw_name, *sw_version, *sw_fs, *key;
    const char *compression;
    tool_strv device_types, files, scripts, depends_names, depends_groups, clears;
    bool no_def_version, no_def_clears, no_checksum, legacy_checksum;
    json_t *provides, *depends;
} write_args;

/* mender-artifact's default provides and clears for the kind (docs/reference §1.5). */
static int add_defaults(enum kind k, const write_args *a, json_t *provides, json_t *clears,
                        molt_err *err)
{
    if (k == BOOTSTRAP)
        return 0;
    if (k == ROOTFS && !a->no_checksum) {
        unsigned char sha[32];
        char hex[65];
        int r = molt_artifact_file_sha256(a->files.v[0], sha, err);
        if (r < 0)
            return r;
        molt_hex_encode(sha, sizeof sha, hex);
        json_object_set_new(provides, a->legacy_checksum ? "rootfs_image_checksum"
                                                         : "rootfs-image.checksum",
                            json_string(hex));
    }
    if (a->no_def_version)
        return 0;
    /* the provide prefix: FS[.NAME] for rootfs-image, FS.(NAME|TYPE) for module-image */
    const char *fs = a->sw_fs ? a->sw_fs : "rootfs-image";
    const char *sub = a->sw_name ? a->sw_name : (k == MODULE ? a->type : NULL);
    char prefix[1024], key[1100];
    snprintf(prefix, sizeof prefix, sub ? "%s.%s" : "%s", fs, sub ? sub : "");
    snprintf(key, sizeof key, "%s.version", prefix);
    json_object_set_new(provides, key, json_string(a->sw_version ? a->sw_version : a->name));
    if (a->no_def_clears)
        return 0;
    if (strcmp(prefix, "rootfs-image") == 0) {
        json_array_append_new(clears, json_string("artifact_group"));
        json_array_append_new(clears, json_string("rootfs_image_checksum"));
        json_array_append_new(clears, json_string("rootfs-image.*"));
    } else {
        snprintf(key, sizeof key, "%s.*", prefix);
        json_array_append_new(clears, json_string(key));
    }
    return 0;
}

int tool_write_spec(molt_artifact_spec *spec, const char *compression, const char *out,
                    const char *cmd)
{
    molt_err err = {0};
    if (molt_compression_parse(compression, &spec->compression) < 0)
        return tool_usage(cmd, "unknown compression \"%s\" (expected none, gzip, xz, lzma or "
                          "zstd)", compression);
    if (molt_artifact_write(spec, out, &err) < 0) {
        molt_err_prefix(&err, "writing %s: ", out);
        return tool_fail(&err);
    }
    return TOOL_EXIT_OK;
}

static int run_write(enum kind k, write_args *a, const char *cmd)
{
    molt_err err = {0};
    json_t *provides = json_object(), *clears = json_array(), *meta = NULL;
    int rc = TOOL_EXIT_FAILED;
    molt_artifact_spec spec = {0};
    if (!provides || !clears) {
        tool_error("out of memory");
        goto out;
    }
    if (a->meta_path && (rc = load_meta_data(a->meta_path, &meta)) != 0)
        goto out;
    rc = TOOL_EXIT_FAILED;
    for (size_t i = 0; i < a->clears.n; i++)
        json_array_append_new(clears, json_string(a->clears.v[i]));
    if (add_defaults(k, a, provides, clears, &err) < 0) {
        rc = tool_fail(&err);
        goto out;
    }
    /* -p given by the user wins over a default of the same key */
    if (json_object_update(provides, a->provides) != 0) {
        tool_error("out of memory");
        goto out;
    }
    if (k == MODULE)
        spec.payload_type = a->type;
    else if (k == ROOTFS)
        spec.payload_type = "rootfs-image";
    spec.name = a->name;
    spec.group = a->group;
    spec.device_types = a->device_types.v;
    spec.n_device_types = a->device_types.n;
    spec.depends_names = a->depends_names.v;
    spec.n_depends_names = a->depends_names.n;
    spec.depends_groups = a->depends_groups.v;
    spec.n_depends_groups = a->depends_groups.n;
    spec.provides = provides;
    spec.depends = a->depends;
    spec.clears = json_array_size(clears) ? clears : NULL;
    spec.meta_data = meta;
    spec.empty_meta_data = k == ROOTFS;
    spec.files = a->files.v;
    spec.n_files = a->files.n;
    spec.scripts = a->scripts.v;
    spec.n_scripts = a->scripts.n;
    spec.signing_key = a->key;
    rc = tool_write_spec(&spec, a->compression ? a->compression : "gzip", a->out, cmd);
out:
    json_decref(provides);
    json_decref(clears);
    json_decref(meta);
    return rc;
}

int tool_cmd_write(int argc, char **argv, const char *global_compression)
{
    if (argc < 2) {
        fprintf(stderr, "molt-artifact: write needs an artifact kind\n%s", write_help);
        return TOOL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(write_help, stdout);
        return TOOL_EXIT_OK;
    }
    if (strcmp(argv[1], "rootfs-delta") == 0)
        return tool_cmd_write_delta(argc - 1, argv + 1, global_compression);
    enum kind k;
    const char *cmd;
    if (strcmp(argv[1], "module-image") == 0) {
        k = MODULE;
        cmd = "write module-image";
    } else if (strcmp(argv[1], "rootfs-image") == 0) {
        k = ROOTFS;
        cmd = "write rootfs-image";
    } else if (strcmp(argv[1], "bootstrap-artifact") == 0) {
        k = BOOTSTRAP;
        cmd = "write bootstrap-artifact";
    } else {
        fprintf(stderr, "molt-artifact: unknown artifact kind \"%s\"\n%s", argv[1], write_help);
        return TOOL_EXIT_USAGE;
    }
    write_args a = {.compression = global_compression, .provides = json_object(),
                    .depends = json_object()};
    int rc = TOOL_EXIT_USAGE;
    if (!a.provides || !a.depends) {
        tool_error("out of memory");
        rc = TOOL_EXIT_FAILED;
        goto out;
    }
    char **av = argv + 1; /* getopt sees "KIND options..." */
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, av, ":T:n:t:f:o:m:s:p:d:N:g:G:k:v:h", long_opts,
                            NULL)) != -1) {
        if (c == '?' || c == ':') {
            rc = tool_bad_option(cmd, c, av);
            goto out;
        }
        if (!(allowed_kinds(c) & (int)k)) {
            char name[64];
            option_name(c, name, sizeof name);
            rc = tool_usage(cmd, "option %s does not apply to %s", name, argv[1]);
            goto out;
        }
        switch (c) {
        case 'h':
            print_help(k);
            rc = TOOL_EXIT_OK;
            goto out;
        case 'T': a.type = optarg; break;
        case 'n': a.name = optarg; break;
        case 't': tool_strv_add(&a.device_types, optarg); break;
        case 'f': tool_strv_add(&a.files, optarg); break;
        case 'o': a.out = optarg; break;
        case 'm': a.meta_path = optarg; break;
        case 's': tool_strv_add(&a.scripts, optarg); break;
        case 'p':
            if (add_key_value(a.provides, optarg, cmd, "-p/--provides") != 0)
                goto out;
            break;
        case 'd':
            if (add_key_value(a.depends, optarg, cmd, "-d/--depends") != 0)
                goto out;
            break;
        case 'N': tool_strv_add(&a.depends_names, optarg); break;
        case 'g': a.group = *optarg ? optarg : NULL; break; /* "" = none, as mender-artifact */
        case 'G': tool_strv_add(&a.depends_groups, optarg); break;
        case 'k': a.key = optarg; break;
        case 'v':
            if (strcmp(optarg, "3") != 0) {
                rc = tool_usage(cmd, "only artifact format version 3 can be written");
                goto out;
            }
            break;
        case O_CLEARS: tool_strv_add(&a.clears, optarg); break;
        case O_SW_NAME: a.sw_name = optarg; break;
        case O_SW_VERSION: a.sw_version = optarg; break;
        case O_SW_FS: a.sw_fs = optarg; break;
        case O_NO_DEF_VERSION: a.no_def_version = true; break;
        case O_NO_DEF_CLEARS: a.no_def_clears = true; break;
        case O_NO_CHECKSUM: a.no_checksum = true; break;
        case O_LEGACY_CHECKSUM: a.legacy_checksum = true; break;
        case O_COMPRESSION: a.compression = optarg; break;
        case O_NO_PROGRESS: break;
        default:
            rc = tool_usage(cmd, "unexpected option");
            goto out;
        }
    }
    if (optind < argc - 1) {
        rc = tool_usage(cmd, "unexpected argument \"%s\"", av[optind]);
        goto out;
    }
    if (k == MODULE && !a.type) {
        rc = tool_usage(cmd, "-T/--type is required");
        goto out;
    }
    if (!a.name) {
        rc = tool_usage(cmd, "-n/--artifact-name is required");
        goto out;
    }
    if (a.device_types.n == 0) {
        rc = tool_usage(cmd, "at least one -t/--device-type is required");
        goto out;
    }
    if (!a.out) {
        rc = tool_usage(cmd, "-o/--output-path is required");
        goto out;
    }
    if (k == ROOTFS && a.files.n != 1) {
        rc = tool_usage(cmd, "exactly one -f/--file IMAGE is required");
        goto out;
    }
    rc = run_write(k, &a, cmd);
out:
    json_decref(a.provides);
    json_decref(a.depends);
    tool_strv_free(&a.device_types);
    tool_strv_free(&a.files);
    tool_strv_free(&a.scripts);
    tool_strv_free(&a.depends_names);
    tool_strv_free(&a.depends_groups);
    tool_strv_free(&a.clears);
    return rc;
}
