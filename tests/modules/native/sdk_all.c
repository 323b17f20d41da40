/* SPDX-License-Identifier: Apache-2.0 */
/* A native test module that calls every function libmolt-sdk exports (tests/integration/
 * test_sdk_abi.sh checks with nm that none is missing), loaded and run by molt: payload type
 * "sdk-all". Download stages each payload file in tmp_dir() (the first one read by the module
 * itself, the others with molt_sdk_copy_payload); ArtifactInstall copies payload.bin to the folder
 * of the meta-data {"dest": ...} with the other file helpers and writes <dest>/sdk-all.txt, what
 * the functions gave. It declares ABI minor 0 (MOLT_MODULE_V1_MINOR(0)) and sets its own payload
 * sink on the first file only when the host has set_sink (MOLT_HOST_HAS): "sink: used" or "sink:
 * none" in sdk-all.txt tells which, so that the same binary is shown to run on a 1.0 host
 * (tests/unit/test_abi_minor.c) and on this one. */
#include <molt/sdk.h>
#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct state {
    const struct molt_host_api *host;
} state;

static long sink_bytes;

static int count_sink(void *ctx, const void *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    sink_bytes += (long)len;
    return 0;
}

static int init(const struct molt_host_api *host, void **ret_state)
{
    state *s = calloc(1, sizeof *s);
    if (!s)
        return MOLT_ENOMEM;
    s->host = host;
    *ret_state = s;
    return 0;
}

static void fini(void *st)
{
    free(st);
}

/* The first payload file: through our own counting sink when the host has set_sink (ABI 1.1),
 * read with host->read and written here; the others with molt_sdk_copy_payload (which sets its
 * own sink when it can). Each goes to tmp_dir()/<name>. */
static int download(void *st)
{
    state *s = st;
    const struct molt_host_api *h = s->host;
    struct molt_sdk_error err = {0};
    const char *name;
    int64_t size;
    int r, index = 0;
    while ((r = h->next_file(h, &name, &size)) == 1) {
        char *path = NULL, *tmp = NULL;
        int fd;
        if (index == 0 && MOLT_HOST_HAS(h, set_sink) && (r = h->set_sink(h, count_sink, NULL)) < 0)
            return r;
        if ((r = molt_sdk_path_join(h->tmp_dir(h), name, &path, &err)) < 0 ||
            (r = molt_sdk_atomic_open(path, 0644, &fd, &tmp, &err)) < 0) {
            free(path);
            return molt_sdk_fail(h, &err);
        }
        int64_t got = 0;
        if (index++ == 0) {
            char buf[65536];
            int64_t n;
            while ((n = h->read(h, buf, sizeof buf)) > 0 && got >= 0)
                got = molt_sdk_write_all(fd, buf, (size_t)n, tmp, &err) == 0 ? got + n : err.code;
            if (n < 0 && got >= 0)
                got = molt_sdk_err_set(&err, (int)n, "reading %s failed", name);
        } else {
            got = molt_sdk_copy_payload(h, fd, size, &err);
        }
        if (got < 0) {
            molt_sdk_atomic_abort(fd, tmp);
            free(path);
            return molt_sdk_fail(h, &err);
        }
        r = molt_sdk_atomic_commit(fd, tmp, path, &err);
        free(path);
        if (r < 0)
            return molt_sdk_fail(h, &err);
    }
    if (r == 0 && h->kv_set(h, "sink", sink_bytes > 0 ? "used" : "none", 4) < 0)
        return MOLT_EIO;
    return r;
}

static int artifact_install(void *st)
{
    state *s = st;
    const struct molt_host_api *h = s->host;
    struct molt_sdk_error err = {0};
    char *dest = NULL, *text = NULL, *out = NULL, *src = NULL, *dst = NULL, report[2048];
    int64_t n = 0;
    int flag = 0;
    size_t count = 0, len = 0;
    char sink[8] = "";
    const char *meta = h->meta_data(h);
    int r;
    if ((r = molt_sdk_json_string(meta, "/dest", &dest, &err)) < 0)
        goto done;
    if (access(dest, W_OK) != 0) {   /* molt_sdk_err_errno: "destination <dest>: <strerror>" */
        r = molt_sdk_err_errno(&err, errno, "destination %s", dest);
        goto done;
    }
    if ((r = molt_sdk_json_int(meta, "/number", &n, &err)) < 0 ||
        (r = molt_sdk_json_bool(meta, "/flag", &flag, &err)) < 0 ||
        (r = molt_sdk_json_text(meta, "/list", &text, &err)) < 0 ||
        (r = molt_sdk_json_count(meta, "/list", &count, &err)) < 0 ||
        (r = molt_sdk_path_join(h->tmp_dir(h), "payload.bin", &src, &err)) < 0 ||
        (r = molt_sdk_path_join(dest, "payload.bin", &dst, &err)) < 0 ||
        (r = molt_sdk_copy_file(src, dst, 0644, NULL, NULL, &err)) < 0 ||
        (r = molt_sdk_rm_rf(src, &err)) < 0 ||   /* the staged copy is not needed any more */
        (r = molt_sdk_path_join(dest, "sdk-all.txt", &out, &err)) < 0)
        goto done;
    if (h->kv_get(h, "sink", sink, sizeof sink - 1, &len) == 0)
        sink[len] = '\0';
    snprintf(report, sizeof report,
             "version: %s\nstrerror: %s\njson: %lld %d %s %zu\nsink: %s\n", molt_sdk_version(),
             molt_strerror(MOLT_ECHECKSUM), (long long)n, flag, text, count, sink);
    if ((r = molt_sdk_write_file_atomic(out, report, strlen(report), 0644, &err)) < 0 ||
        (r = molt_sdk_fsync_dir(dest, &err)) < 0)
        goto done;
    /* molt_sdk_err_set and molt_sdk_fail with a message: the path of a failure, taken for a
     * meta-data {"fail": true}. */
    if (molt_sdk_json_bool(meta, "/fail", &flag, NULL) == 0 && flag)
        r = molt_sdk_err_set(&err, MOLT_EMODULE, "asked to fail by the meta-data");
done:
    free(dest);
    free(text);
    free(out);
    free(src);
    free(dst);
    return r < 0 ? molt_sdk_fail(h, &err) : 0;
}

static const char *const types[] = {"sdk-all", NULL};

static const struct molt_module_desc desc = {
    MOLT_MODULE_V1_MINOR(0),
    .name = "sdk-all",
    .version = "1.0.0",
    .payload_types = types,
    .capabilities = MOLT_CAP_STREAMING,
    .init = init,
    .fini = fini,
    .download = download,
    .artifact_install = artifact_install,
};

MOLT_MODULE_EXPORT const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
