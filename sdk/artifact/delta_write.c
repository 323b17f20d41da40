/* SPDX-License-Identifier: Apache-2.0 */
/* molt-artifact write rootfs-delta: a binary delta from one rootfs image to the next (zstd
 * patch-from: the old image is the compressor's prefix, long-distance matching with a window
 * covering both images), written as an ordinary Artifact v3 of payload type rootfs-delta that
 * depends on the old image's rootfs-image.checksum and provides what a full update of the new
 * image provides. docs/delta.md has the format and the measurements. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY   /* ZSTD_WINDOWLOG_MAX_64 */
#include <zstd.h>

#include "artifact/reader.h"
#include "artifact/writer.h"
#include "tool.h"
#include "util/compress_lib.h"
#include "util/encoding.h"
#include "util/fs.h"

#define CMD "write rootfs-delta"
#define DELTA_FILE "rootfs.delta"

enum { O_BASE = 256, O_TARGET, O_LEVEL, O_COMPRESSION, O_SW_VERSION, O_NO_PROGRESS };

static const struct option opts[] = {
    {"base", required_argument, NULL, O_BASE},
    {"target", required_argument, NULL, O_TARGET},
    {"artifact-name", required_argument, NULL, 'n'},
    {"device-type", required_argument, NULL, 't'},
    {"output-path", required_argument, NULL, 'o'},
    {"key", required_argument, NULL, 'k'},
    {"level", required_argument, NULL, O_LEVEL},
    {"software-version", required_argument, NULL, O_SW_VERSION},
    {"compression", required_argument, NULL, O_COMPRESSION},
    {"no-progress", no_argument, NULL, O_NO_PROGRESS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char help[] =
    "Usage: molt-artifact write rootfs-delta --base OLD --target NEW -o OUT [options]\n\n"
    "Write an artifact whose payload (type rootfs-delta) rebuilds the image NEW from the\n"
    "image OLD, which the device must be running (the rootfs-image module checks it).\n"
    "OLD and NEW are rootfs-image artifacts (as for Mender's delta generator) or raw images.\n"
    "It depends on rootfs-image.checksum = sha256 of OLD and provides what a full update of\n"
    "NEW provides: artifact_name, rootfs-image.checksum = sha256 of NEW and\n"
    "rootfs-image.version; it clears artifact_group, rootfs_image_checksum, rootfs-image.*.\n\n"
    "Options:\n"
    "      --base OLD                    the release the device runs (artifact or image)\n"
    "      --target NEW                  the release to install (artifact or image)\n"
    "  -n, --artifact-name NAME          artifact_name (default: NEW artifact's; required\n"
    "                                    when NEW is an image)\n"
    "  -t, --device-type TYPE            compatible device type (repeatable; default: NEW\n"
    "                                    artifact's; required when NEW is an image)\n"
    "  -o, --output-path OUT             the artifact to write (required)\n"
    "      --software-version VERSION    rootfs-image.version (default: NEW artifact's, or\n"
    "                                    NAME)\n"
    "      --level N                     zstd level 1..22 (default 19)\n"
    "      --compression none|gzip|xz|lzma|zstd  of the artifact's data (default none: the\n"
    "                                    delta is compressed already)\n"
    "  -k, --key PRIVATE_KEY             sign with this PEM key (RSA, or EC P-256)\n"
    "  -h, --help                        show this help\n"
    "\nExit codes: 0 written, 1 failed (message on stderr), 2 usage error.\n";

/* One release: the image (a temporary copy when it came from an artifact) mapped read-only,
 * its SHA-256, and what its artifact said. */
typedef struct release {
    const char *arg;
    char *image;          /* path of the image file */
    bool temp;            /* image is our temporary copy */
    unsigned char *map;
    size_t size;
    char sha[65];
    json_t *info;         /* from an artifact: {name, device_types, version}, else NULL */
} release;

/* Whether path is a Mender artifact: a tar whose first member is "version". */
static bool is_artifact(const char *path)
{
    unsigned char h[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    return n == (ssize_t)sizeof h && memcmp(h + 257, "ustar", 5) == 0 &&
           strncmp((const char *)h, "version", 100) == 0;
}

/* Copy the rootfs-image payload of the artifact at rel->arg into a temporary file. */
static int extract(release *rel, molt_err *err)
{
    molt_source *src = NULL;
    molt_artifact_reader *rd = NULL;
    int fd = -1, r;
    const char *tmp = getenv("TMPDIR");
    if (asprintf(&rel->image, "%s/molt-delta-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
        rel->image = NULL;
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    if ((fd = mkostemp(rel->image, O_CLOEXEC)) < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot create a temporary file %s",
                           rel->image);
        free(rel->image);
        rel->image = NULL;
        return r;
    }
    rel->temp = true;
    if ((r = molt_source_file_new(&src, rel->arg, err)) < 0)
        goto out;
    molt_artifact_opts o = {0};
    if ((r = molt_artifact_reader_open(&rd, src, &o, err)) < 0)
        goto out;
    const molt_artifact_info *info = molt_artifact_reader_info(rd);
    if (!info->payload_type || strcmp(info->payload_type, "rootfs-image") != 0) {
        r = molt_err_set(err, MOLT_EFORMAT, "its payload type is %s, expected rootfs-image",
                         info->payload_type ? info->payload_type : "none (empty payload)");
        goto out;
    }
    const char *name;
    int64_t size;
    if ((r = molt_artifact_reader_next(rd, &name, &size, err)) <= 0) {
        if (r == 0)
            r = molt_err_set(err, MOLT_EFORMAT, "its payload has no file (expected one image)");
        goto out;
    }
    for (;;) {
        const void *p;
        ssize_t n = molt_artifact_reader_read_block(rd, &p, err);
        if (n < 0) {
            r = (int)n;
            goto out;
        }
        if (n == 0)
            break;
        if ((r = molt_write_all(fd, p, (size_t)n, err, rel->image)) < 0)
            goto out;
    }
    if ((r = molt_artifact_reader_next(rd, &name, &size, err)) != 0) {
        if (r > 0)
            r = molt_err_set(err, MOLT_EFORMAT, "its payload has more than one file (%s)", name);
        goto out;
    }
    json_t *version = json_object_get(info->type_provides, "rootfs-image.version");
    rel->info = json_pack("{s:s, s:O, s:s}", "name", info->name, "device_types",
                          info->depends_device_types,
                          "version", json_is_string(version) ? json_string_value(version)
                                                             : info->name);
    r = rel->info ? 0 : molt_err_set(err, MOLT_ENOMEM, "out of memory");
out:
    molt_artifact_reader_free(rd);
    if (src)
        molt_source_free(src);
    close(fd);
    if (r < 0)
        molt_err_prefix(err, "%s: ", rel->arg);
    return r;
}

static int load(release *rel, molt_err *err)
{
    int r;
    if (is_artifact(rel->arg)) {
        if ((r = extract(rel, err)) < 0)
            return r;
    } else if (!(rel->image = strdup(rel->arg))) {
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    }
    int fd = open(rel->image, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "%s: cannot open it", rel->arg);
        if (fd >= 0)
            close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        return molt_err_set(err, MOLT_EFORMAT, "%s: expected a non-empty image file or a "
                            "rootfs-image artifact", rel->arg);
    }
    rel->size = (size_t)st.st_size;
    rel->map = mmap(NULL, rel->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (rel->map == MAP_FAILED) {
        rel->map = NULL;
        return molt_err_errno(err, MOLT_EIO, errno, "%s: cannot map it", rel->arg);
    }
    unsigned char sha[32];
    molt_sha256(rel->map, rel->size, sha);
    molt_hex_encode(sha, sizeof sha, rel->sha);
    return 0;
}

static void release_free(release *rel)
{
    if (rel->map)
        munmap(rel->map, rel->size);
    if (rel->temp)
        unlink(rel->image);
    free(rel->image);
    json_decref(rel->info);
}

/* The smallest window log covering base + target, so the last byte of the target still reaches
 * the first byte of the base (the decoder sees the prefix as the bytes before the output). */
static int window_log(size_t base, size_t target)
{
    unsigned long long need = (unsigned long long)base + target;
    int log = 10;
    while (log < ZSTD_WINDOWLOG_MAX_64 && (1ull << log) < need)
        log++;
    return log;
}

#define ZCHECK(call, what)                                                                    \
    do {                                                                                      \
        size_t zr_ = (call);                                                                  \
        if (z->ZSTD_isError(zr_)) {                                                           \
            r = molt_err_set(err, MOLT_EIO, "zstd: %s: %s", what, z->ZSTD_getErrorName(zr_)); \
            goto out;                                                                         \
        }                                                                                     \
    } while (0)

/* Compress target against base into the file at path; *ret_size the delta's length. */
static int make_delta(const release *base, const release *target, int level, const char *path,
                      size_t *ret_size, molt_err *err)
{
    const molt_zstd_lib *z = NULL;   /* libzstd is loaded on demand (util/compress_lib.h) */
    int r = molt_zstd_get(&z, err);
    if (r < 0)
        return r;
    ZSTD_CCtx *cc = z->ZSTD_createCCtx();
    size_t cap = z->ZSTD_compressBound(target->size), n = 0;
    unsigned char *dst = malloc(cap);
    if (!cc || !dst) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory for the delta (%zu bytes)", cap);
        goto out;
    }
    int wlog = window_log(base->size, target->size);
    ZCHECK(z->ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level), "level");
    ZCHECK(z->ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, wlog), "window log");
    ZCHECK(z->ZSTD_CCtx_setParameter(cc, ZSTD_c_enableLongDistanceMatching, 1), "long mode");
    ZCHECK(z->ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0), "checksum flag");
    ZCHECK(z->ZSTD_CCtx_setPledgedSrcSize(cc, target->size), "source size");
    ZCHECK(z->ZSTD_CCtx_refPrefix(cc, base->map, base->size), "reference");
    n = z->ZSTD_compress2(cc, dst, cap, target->map, target->size);
    ZCHECK(n, "compressing");
    r = molt_write_file_atomic(path, dst, n, 0644, err);
    if (r == 0)
        *ret_size = n;
out:
    z->ZSTD_freeCCtx(cc);
    free(dst);
    return r;
}

typedef struct delta_args {
    release base, target;
    const char *name, *out, *key, *compression, *sw_version;
    tool_strv device_types;
    int level;
} delta_args;

static int run(delta_args *a)
{
    molt_err err = {0};
    char *path = NULL;
    const char *tmp = getenv("TMPDIR");
    char *dirp = NULL;
    json_t *provides = NULL, *depends = NULL, *clears = NULL, *meta = NULL;
    int rc = TOOL_EXIT_FAILED;
    if (load(&a->base, &err) < 0 || load(&a->target, &err) < 0)
        return tool_fail(&err);
    const json_t *ti = a->target.info;
    const char *name = a->name ? a->name : ti ? json_string_value(json_object_get(ti, "name"))
                                              : NULL;
    if (!name)
        return tool_usage(CMD, "-n/--artifact-name is required when --target is an image");
    tool_strv types = a->device_types;
    if (types.n == 0 && ti) {
        const json_t *v;
        size_t i;
        json_array_foreach(json_object_get(ti, "device_types"), i, v)
            tool_strv_add(&types, json_string_value(v));
    }
    if (types.n == 0)
        return tool_usage(CMD, "at least one -t/--device-type is required when --target is an "
                          "image");
    const char *version = a->sw_version ? a->sw_version
                          : ti ? json_string_value(json_object_get(ti, "version")) : name;
    if (strcmp(a->base.sha, a->target.sha) == 0) {
        tool_error("%s and %s are the same image (sha256 %s): nothing to update", a->base.arg,
                   a->target.arg, a->base.sha);
        goto out;
    }
    if (asprintf(&dirp, "%s/molt-delta-out-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 ||
        !mkdtemp(dirp) || asprintf(&path, "%s/%s", dirp, DELTA_FILE) < 0) {
        tool_error("cannot create a temporary folder in %s: %s", tmp && *tmp ? tmp : "/tmp",
                   strerror(errno));
        goto out;
    }
    size_t delta_size = 0;
    if (make_delta(&a->base, &a->target, a->level, path, &delta_size, &err) < 0) {
        rc = tool_fail(&err);
        goto out;
    }
    provides = json_pack("{s:s, s:s}", "rootfs-image.checksum", a->target.sha,
                         "rootfs-image.version", version);
    depends = json_pack("{s:s}", "rootfs-image.checksum", a->base.sha);
    clears = json_pack("[s, s, s]", "artifact_group", "rootfs_image_checksum", "rootfs-image.*");
    meta = json_pack("{s:{s:s, s:I, s:I, s:I}}", "rootfs-delta", "format", "zstd-patch-from",
                     "base_size", (json_int_t)a->base.size, "target_size",
                     (json_int_t)a->target.size, "delta_size", (json_int_t)delta_size);
    if (!provides || !depends || !clears || !meta) {
        tool_error("out of memory");
        goto out;
    }
    const char *files[] = {path};
    molt_artifact_spec spec = {
        .payload_type = "rootfs-delta", .name = name, .device_types = types.v,
        .n_device_types = types.n, .provides = provides, .depends = depends, .clears = clears,
        .meta_data = meta, .files = files, .n_files = 1, .signing_key = a->key,
    };
    if ((rc = tool_write_spec(&spec, a->compression ? a->compression : "none", a->out, CMD)) !=
        TOOL_EXIT_OK)
        goto out;
    printf("%s: delta %s (%zu bytes) -> %s (%zu bytes): %zu bytes\n", a->out, a->base.sha,
           a->base.size, a->target.sha, a->target.size, delta_size);
    rc = TOOL_EXIT_OK;
out:
    if (path)
        unlink(path);
    if (dirp)
        rmdir(dirp);
    free(path);
    free(dirp);
    if (types.v != a->device_types.v)
        tool_strv_free(&types);
    json_decref(provides);
    json_decref(depends);
    json_decref(clears);
    json_decref(meta);
    return rc;
}

int tool_cmd_write_delta(int argc, char **argv, const char *global_compression)
{
    delta_args a = {.compression = global_compression, .level = 19};
    int rc = TOOL_EXIT_USAGE, c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:t:o:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(help, stdout);
            rc = TOOL_EXIT_OK;
            goto out;
        case O_BASE: a.base.arg = optarg; break;
        case O_TARGET: a.target.arg = optarg; break;
        case 'n': a.name = optarg; break;
        case 't': tool_strv_add(&a.device_types, optarg); break;
        case 'o': a.out = optarg; break;
        case 'k': a.key = optarg; break;
        case O_SW_VERSION: a.sw_version = optarg; break;
        case O_COMPRESSION: a.compression = optarg; break;
        case O_NO_PROGRESS: break;
        case O_LEVEL: {
            char *end = NULL;
            long l = strtol(optarg, &end, 10);
            const molt_zstd_lib *z = NULL;
            molt_err e = {0};
            if (molt_zstd_get(&z, &e) < 0) {
                rc = tool_fail(&e);
                goto out;
            }
            if (!*optarg || *end || l < 1 || l > z->ZSTD_maxCLevel()) {
                rc = tool_usage(CMD, "--level expects 1..%d, got \"%s\"", z->ZSTD_maxCLevel(),
                                optarg);
                goto out;
            }
            a.level = (int)l;
            break;
        }
        default:
            rc = tool_bad_option(CMD, c, argv);
            goto out;
        }
    }
    if (optind < argc) {
        rc = tool_usage(CMD, "unexpected argument \"%s\"", argv[optind]);
        goto out;
    }
    if (!a.base.arg || !a.target.arg) {
        rc = tool_usage(CMD, "--base OLD and --target NEW are required");
        goto out;
    }
    if (!a.out) {
        rc = tool_usage(CMD, "-o/--output-path is required");
        goto out;
    }
    rc = run(&a);
out:
    release_free(&a.base);
    release_free(&a.target);
    tool_strv_free(&a.device_types);
    return rc;
}
