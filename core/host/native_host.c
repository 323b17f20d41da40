/* SPDX-License-Identifier: Apache-2.0 */
/* The native module host: dlopen, the ABI checks of <molt/module.h>, the host function table, and
 * the molt_module wrapper the state machine drives (in-process, or each call in a forked child). */
#include "host/native_host.h"
#include "host/stage.h"
#include "host/worktree.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util/encoding.h"
#include "util/proc.h"
#include "util/fs.h"
#include "util/log.h"

#define ABI_STR_(x) #x
#define ABI_STR(x) ABI_STR_(x)
#define HOST_ABI_STR ABI_STR(MOLT_MODULE_ABI_MAJOR) "." ABI_STR(MOLT_MODULE_ABI_MINOR)
/* The header JSON documents of a deployment; the reader's own limits are smaller. */
#define HEADER_JSON_MAX (16u * 1024 * 1024)
#define KV_KEY_MAX 64
#define KV_VALUE_MAX 65536
/* The deployment values as JSON (key: hex) between an isolated child and molt. */
#define DEP_JSON_MAX (4 * MOLT_DEP_VALUES_MAX)
#define TYPE_MAX 128
#define NAME_MAX_LEN 255
/* Isolated download: bytes per data frame and the child's read_block buffer. */
#define CHILD_BUF_SIZE (64 * 1024)

/* The layouts of each minor, frozen here as numbers (in pointer units, so that LP64 and ILP32
 * both hold): a change of module.h that moves or resizes what a minor defined breaks every module
 * built before it, and these asserts stop the build instead. A new minor adds its row. */
#define ABI_P sizeof(void *)
/* struct_size of a descriptor: the header (8 bytes), name, version, payload_types,
 * capabilities (padded to a pointer), 14 functions, reserved[8]: the same in 1.0 and 1.1. */
#define DESC_SIZE_1_0 (8 + 3 * ABI_P + (ABI_P > 4 ? 8 : 4) + 22 * ABI_P)
/* The host table: the header, 19 functions and reserved[8] in 1.0; 1.1 gave reserved[0] to
 * set_sink (20 functions, reserved[7]), 1.2 the next four to dep_get, dep_set, dep_delete and
 * keeps_state (24 functions, reserved[3]): the same size. */
#define HOST_SIZE_1_0 (8 + 27 * ABI_P)
_Static_assert(sizeof(struct molt_module_desc) == DESC_SIZE_1_0,
               "struct molt_module_desc changed size: a minor may only give reserved slots a meaning");
_Static_assert(offsetof(struct molt_module_desc, cleanup) ==
                   8 + 3 * ABI_P + (ABI_P > 4 ? 8 : 4) + 13 * ABI_P,
               "a function of struct molt_module_desc moved");
_Static_assert(sizeof(struct molt_host_api) == HOST_SIZE_1_0,
               "struct molt_host_api changed size: a minor may only give reserved slots a meaning");
_Static_assert(offsetof(struct molt_host_api, config_get) == 8 + 18 * ABI_P,
               "a 1.0 function of struct molt_host_api moved");
_Static_assert(offsetof(struct molt_host_api, set_sink) == 8 + 19 * ABI_P,
               "set_sink (1.1) is no longer reserved[0] of 1.0");
_Static_assert(offsetof(struct molt_host_api, dep_get) == 8 + 20 * ABI_P &&
                   offsetof(struct molt_host_api, keeps_state) == 8 + 23 * ABI_P,
               "dep_get..keeps_state (1.2) are no longer reserved[0..3] of 1.1");

/* struct_size a descriptor of each minor has at least (index = minor). */
static const size_t desc_size_for_minor[] = {
    DESC_SIZE_1_0,   /* 1.0 */
    DESC_SIZE_1_0,   /* 1.1: the host table gave a reserved slot to set_sink, not this */
    DESC_SIZE_1_0,   /* 1.2: capability bits (MOLT_CAP_LAZY_DOWNLOAD, _COMMIT), host functions */
};
_Static_assert(sizeof desc_size_for_minor / sizeof desc_size_for_minor[0] ==
                   MOLT_MODULE_ABI_MINOR + 1,
               "a new ABI minor needs its row in desc_size_for_minor (and its frozen sizes)");

struct molt_native {
    void *dl;
    char *path;
    const struct molt_module_desc *desc;
};

/* molt_native_keep_mapped: modules are left mapped at molt_native_free (one-shot processes). */
static bool keep_mapped;
/* molt_native_host_minor: the ABI minor whose host this process plays (the kit's --host-minor). */
static unsigned host_minor = MOLT_MODULE_ABI_MINOR;

/* ---- loading and the ABI checks ------------------------------------------------------------ */

static bool valid_word(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

/* Everything about the descriptor except the dlopen. */
static int check_desc(const char *path, const struct molt_module_desc *d, molt_err *err)
{
    if (d->abi_major != MOLT_MODULE_ABI_MAJOR)
        return molt_err_set(err, MOLT_EUNSUPPORTED,
                            "module %s: ABI %u.%u is not supported by this molt (ABI %s): rebuild "
                            "it against molt-sdk %d",
                            path, d->abi_major, d->abi_minor, HOST_ABI_STR, MOLT_MODULE_ABI_MAJOR);
    if (d->abi_minor > MOLT_MODULE_ABI_MINOR)
        return molt_err_set(err, MOLT_EUNSUPPORTED,
                            "module %s: ABI %u.%u is newer than this molt (ABI %s): rebuild it "
                            "against molt-sdk %s or update molt",
                            path, d->abi_major, d->abi_minor, HOST_ABI_STR, HOST_ABI_STR);
    size_t need = desc_size_for_minor[d->abi_minor];
    if (d->struct_size < need)
        return molt_err_set(err, MOLT_EUNSUPPORTED,
                            "module %s: descriptor struct_size %u is smaller than the %zu bytes of "
                            "ABI %u.%u: rebuild it against molt-sdk %d",
                            path, d->struct_size, need, d->abi_major, d->abi_minor,
                            MOLT_MODULE_ABI_MAJOR);
    if (!valid_word(d->name, TYPE_MAX))
        return molt_err_set(err, MOLT_EFORMAT,
                            "module %s: descriptor name must be 1 to %d characters of "
                            "[A-Za-z0-9._+-], got %s%s%s",
                            path, TYPE_MAX, d->name ? "\"" : "", d->name ? d->name : "NULL",
                            d->name ? "\"" : "");
    if (!d->version || !*d->version)
        return molt_err_set(err, MOLT_EFORMAT, "module %s: descriptor has no version", path);
    if (!d->payload_types || !d->payload_types[0])
        return molt_err_set(err, MOLT_EFORMAT, "module %s: descriptor claims no payload type",
                            path);
    for (size_t i = 0; d->payload_types[i]; i++) {
        if (i >= 64)
            return molt_err_set(err, MOLT_ELIMIT, "module %s: more than 64 payload types", path);
        if (!valid_word(d->payload_types[i], TYPE_MAX))
            return molt_err_set(err, MOLT_EFORMAT,
                                "module %s: payload type \"%s\" is not 1 to %d characters of "
                                "[A-Za-z0-9._+-]",
                                path, d->payload_types[i], TYPE_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(d->payload_types[i], d->payload_types[j]) == 0)
                return molt_err_set(err, MOLT_EFORMAT, "module %s: payload type %s listed twice",
                                    path, d->payload_types[i]);
    }
    const char *missing = !d->init                ? "init"
                          : !d->download          ? "download"
                          : !d->artifact_install  ? "artifact_install"
                          : ((d->capabilities & MOLT_CAP_ROLLBACK) && !d->artifact_rollback)
                              ? "artifact_rollback (MOLT_CAP_ROLLBACK is set)"
                              : NULL;
    if (missing)
        return molt_err_set(err, MOLT_EUNSUPPORTED,
                            "module %s: mandatory function %s is missing (NULL)", path, missing);
    return 0;
}

int molt_native_load(molt_native **ret, const char *path, molt_err *err)
{
    molt_native *n = calloc(1, sizeof *n);
    if (!n || !(n->path = strdup(path))) {
        free(n);
        return molt_err_set(err, MOLT_ENOMEM, "out of memory loading module %s", path);
    }
    int r;
    dlerror();
    n->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!n->dl) {
        const char *why = dlerror();
        r = molt_err_set(err, MOLT_EIO, "module %s: cannot load: %s", path, why ? why : "?");
        goto fail;
    }
    union {
        void *sym;
        molt_module_entry_fn fn;
    } entry;
    entry.sym = dlsym(n->dl, MOLT_MODULE_ENTRY_SYMBOL);
    if (!entry.sym) {
        r = molt_err_set(err, MOLT_EFORMAT,
                         "module %s: no symbol %s: not a molt native module", path,
                         MOLT_MODULE_ENTRY_SYMBOL);
        goto fail;
    }
    n->desc = entry.fn();
    if (!n->desc) {
        r = molt_err_set(err, MOLT_EUNSUPPORTED, "module %s: %s returned NULL (it refused to load)",
                         path, MOLT_MODULE_ENTRY_SYMBOL);
        goto fail;
    }
    if ((r = check_desc(path, n->desc, err)) < 0)
        goto fail;
    *ret = n;
    return 0;
fail:
    /* What was refused is unloaded now, whatever keep_mapped says: its image is not used again. */
    if (n->dl)
        dlclose(n->dl);
    n->dl = NULL;
    molt_native_free(n);
    return r;
}

uint32_t molt_native_caps(const struct molt_module_desc *d)
{
    uint32_t caps = d->capabilities;
    if (d->abi_minor < 2 || host_minor < 2)
        caps &= ~(MOLT_CAP_LAZY_DOWNLOAD | MOLT_CAP_LAZY_COMMIT);
    return caps;
}

const struct molt_module_desc *molt_native_desc(const molt_native *n)
{
    return n->desc;
}

const char *molt_native_path(const molt_native *n)
{
    return n->path;
}

bool molt_native_claims(const molt_native *n, const char *type)
{
    for (size_t i = 0; type && n->desc->payload_types[i]; i++)
        if (strcmp(n->desc->payload_types[i], type) == 0)
            return true;
    return false;
}

void molt_native_keep_mapped(void)
{
    keep_mapped = true;
}

void molt_native_host_minor(unsigned minor)
{
    host_minor = minor < MOLT_MODULE_ABI_MINOR ? minor : MOLT_MODULE_ABI_MINOR;
}

/* The host table as a host of ABI 1.host_minor fills it: the slots of later minors' functions
 * NULL, as that host kept them reserved; struct_size is the same in every minor. */
static void api_as_host_minor(struct molt_host_api *api)
{
    api->abi_minor = (uint16_t)host_minor;
    if (host_minor < 2) {
        api->dep_get = NULL;
        api->dep_set = NULL;
        api->dep_delete = NULL;
        api->keeps_state = NULL;
    }
    if (host_minor < 1)
        api->set_sink = NULL;
}

void molt_native_free(molt_native *n)
{
    if (!n)
        return;
    if (n->dl && !keep_mapped)
        dlclose(n->dl);
    free(n->path);
    free(n);
}

/* ---- the module handle and the host function table ----------------------------------------- */

/* The outcome of one module call, carried over a pipe in isolated mode. */
typedef struct call_result {
    int32_t rc;            /* what the function returned */
    int32_t in_init;       /* 1: init failed, the function was not called */
    int32_t values_len;    /* isolated: the bytes of the changed deployment values (JSON) that
                            * follow on the pipe; -1: unchanged */
    char msg[MOLT_ERR_MSG_MAX];   /* host->error() text, "" if none */
} call_result;

/* Isolated download: frames on the socket, parent to child. */
enum { FR_FILE = 'F', FR_DATA = 'D', FR_END = 'E', FR_DONE = 'Z', FR_ERROR = 'X' };
typedef struct frame {
    uint8_t kind;
    uint8_t pad[3];
    uint32_t n;       /* FR_FILE: name length */
    int64_t v;        /* FR_FILE: size; FR_DATA: byte count; FR_END/FR_ERROR: code */
} frame;

typedef struct native_mod {
    molt_module base;
    struct molt_host_api api;
    molt_native *nat;
    const struct molt_module_desc *d;
    char *type, *tree_dir, *tmp_dir, *files_dir, *work_dir, *kv_dir;
    char *header_info, *type_info, *meta_data, *art_name, *art_group;
    molt_module_config settings;   /* copy of molt.yaml's modules: <name>: (config_get) */
    bool isolated;
    int timeout;
    void *state;
    bool inited;
    bool tmp_made;             /* tmp/ made by this process (host_tmp_dir) */
    bool tmp_durable;          /* tmp/ and the tree fsync'd (host_tmp_dir) */
    json_t *values;            /* the deployment values (dep_*): key -> hex; NULL: none */
    bool values_changed;       /* by the current call (sent back by an isolated child) */
    bool record_synced;        /* the record's sync ran in this Download or ArtifactCommit */
    molt_module_record rec;    /* values (unused: copied into values), sync and its ctx */
    molt_call cur_call;        /* the call running now, or the last one */
    call_result *cur;          /* the call running now (host->error writes here) */
    time_t last_progress_log;
    /* download, in-process: */
    bool in_download;
    molt_artifact_reader *reader;   /* NULL when files were staged (no streaming) */
    bool have_file;
    molt_err read_err;              /* the reader's error, reported instead of the module's */
    /* the module's payload sink (host->set_sink) for the current file; sink_code: its failure */
    int (*sink)(void *ctx, const void *buf, size_t len);
    void *sink_ctx;
    int sink_code;
    bool file_read;                 /* read/read_block called for the current file */
    /* download, in the isolated child: */
    bool in_child;
    int data_fd;
    int64_t remaining;         /* bytes left in the current FR_DATA frame */
    bool file_done;
    int file_status;
    char *child_name;
    char *child_buf;
} native_mod;

static native_mod *from_api(const struct molt_host_api *api)
{
    return (native_mod *)(void *)((char *)api - offsetof(native_mod, api));
}

static molt_log_level log_level_of(int level)
{
    switch (level) {
    case MOLT_MODULE_LOG_ERROR:
        return MOLT_LOG_ERROR;
    case MOLT_MODULE_LOG_WARNING:
        return MOLT_LOG_WARNING;
    case MOLT_MODULE_LOG_DEBUG:
        return MOLT_LOG_DEBUG;
    default:
        return MOLT_LOG_INFO;
    }
}

static void host_log(const struct molt_host_api *api, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void host_error(const struct molt_host_api *api, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void host_log(const struct molt_host_api *api, int level, const char *fmt, ...)
{
    native_mod *nm = from_api(api);
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    molt_log(log_level_of(level), "module %s: %s", nm->d->name, text);
    free(text);
}

static void host_error(const struct molt_host_api *api, const char *fmt, ...)
{
    native_mod *nm = from_api(api);
    if (!nm->cur)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(nm->cur->msg, sizeof nm->cur->msg, fmt, ap);
    va_end(ap);
}

static void host_progress(const struct molt_host_api *api, uint64_t done, uint64_t total)
{
    native_mod *nm = from_api(api);
    time_t now = time(NULL);
    if (now == nm->last_progress_log && done != total)
        return;
    nm->last_progress_log = now;
    molt_log_debug("module %s: progress %llu of %llu", nm->d->name, (unsigned long long)done,
                   (unsigned long long)total);
}

/* Isolated child: read exactly len bytes from the parent; MOLT_EIO if it went away. */
static int child_recv(native_mod *nm, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t got = read(nm->data_fd, p, len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return MOLT_EIO;
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

/* Isolated child: move to the next FR_DATA or FR_END of the current file. */
static int child_next_data(native_mod *nm)
{
    while (nm->remaining == 0 && !nm->file_done) {
        frame f;
        if (child_recv(nm, &f, sizeof f) < 0)
            return MOLT_EIO;
        if (f.kind == FR_DATA) {
            nm->remaining = f.v;
        } else if (f.kind == FR_END) {
            nm->file_done = true;
            nm->file_status = (int)f.v;
        } else {
            return MOLT_EPROTOCOL;
        }
    }
    return 0;
}

/* The reader's sink (on its hashing thread): the module's, with its failure kept. */
static int reader_sink(void *ctx, const void *buf, size_t len)
{
    native_mod *nm = ctx;
    int rc = nm->sink(nm->sink_ctx, buf, len);
    if (rc < 0)
        nm->sink_code = rc;
    return rc;
}

/* What read/read_block return in-process: a failed sink's code replaces the reader's error
 * (the module reports its own message). */
static int64_t read_result(native_mod *nm, int64_t n)
{
    if (n < 0 && nm->sink_code < 0) {
        molt_err_clear(&nm->read_err);
        return nm->sink_code;
    }
    return n;
}

/* Isolated child: the next n bytes of the current file into buf, through the sink if set. */
static int64_t child_read(native_mod *nm, void *buf, size_t len)
{
    if (nm->sink_code < 0)
        return nm->sink_code;
    int r = child_next_data(nm);
    if (r < 0)
        return r;
    if (nm->file_done)
        return nm->file_status;
    size_t n = nm->remaining < (int64_t)len ? (size_t)nm->remaining : len;
    if (child_recv(nm, buf, n) < 0)
        return MOLT_EIO;
    nm->remaining -= (int64_t)n;
    if (nm->sink && (r = nm->sink(nm->sink_ctx, buf, n)) < 0) {
        nm->sink = NULL;
        return nm->sink_code = r;
    }
    return (int64_t)n;
}

static int child_next_file(native_mod *nm, const char **ret_name, int64_t *ret_size)
{
    char skip[4096];
    while (nm->have_file && !nm->file_done) {   /* the rest of the current file (to its sink) */
        int64_t r = child_read(nm, skip, sizeof skip);
        if (r < 0)
            return (int)r;
    }
    if (nm->have_file && nm->file_status < 0)
        return nm->file_status;
    nm->have_file = false;
    frame f;
    if (child_recv(nm, &f, sizeof f) < 0)
        return MOLT_EIO;
    if (f.kind == FR_DONE)
        return 0;
    if (f.kind == FR_ERROR)
        return (int)f.v;
    if (f.kind != FR_FILE || f.n == 0 || f.n > 4096)
        return MOLT_EPROTOCOL;
    free(nm->child_name);
    nm->child_name = malloc(f.n + 1);
    if (!nm->child_name)
        return MOLT_ENOMEM;
    if (child_recv(nm, nm->child_name, f.n) < 0)
        return MOLT_EIO;
    nm->child_name[f.n] = '\0';
    nm->have_file = true;
    nm->file_done = false;
    nm->file_status = 0;
    nm->remaining = 0;
    *ret_name = nm->child_name;
    *ret_size = f.v;
    return 1;
}

static int host_next_file(const struct molt_host_api *api, const char **ret_name,
                          int64_t *ret_size)
{
    native_mod *nm = from_api(api);
    if (!nm->in_download || !ret_name || !ret_size)
        return MOLT_ESTATE;
    int r;
    if (nm->in_child) {
        r = child_next_file(nm, ret_name, ret_size);
    } else if (!nm->reader) {
        r = 0;   /* the files were staged in files_dir() */
    } else {
        const char *name;
        int64_t size;
        /* the rest of the current file still goes to its sink */
        r = (int)read_result(nm, molt_artifact_reader_next(nm->reader, &name, &size,
                                                          &nm->read_err));
        nm->have_file = r == 1;
        if (r == 1) {
            *ret_name = name;
            *ret_size = size;
        }
    }
    nm->sink = NULL;
    nm->sink_code = 0;
    nm->file_read = false;
    return r;
}

static int64_t host_read_block(const struct molt_host_api *api, const void **ret_buf)
{
    native_mod *nm = from_api(api);
    if (!nm->in_download || !nm->have_file || !ret_buf)
        return MOLT_ESTATE;
    nm->file_read = true;
    if (!nm->in_child)
        return read_result(nm, molt_artifact_reader_read_block(nm->reader, ret_buf,
                                                               &nm->read_err));
    *ret_buf = nm->child_buf;
    return child_read(nm, nm->child_buf, CHILD_BUF_SIZE);
}

static int64_t host_read(const struct molt_host_api *api, void *buf, size_t len)
{
    native_mod *nm = from_api(api);
    if (!nm->in_download || !nm->have_file || !buf)
        return MOLT_ESTATE;
    nm->file_read = true;
    if (!nm->in_child)
        return read_result(nm, molt_artifact_reader_read(nm->reader, buf, len, &nm->read_err));
    return child_read(nm, buf, len);
}

static int host_set_sink(const struct molt_host_api *api,
                         int (*sink)(void *ctx, const void *buf, size_t len), void *ctx)
{
    native_mod *nm = from_api(api);
    if (!nm->in_download || !nm->have_file || nm->file_read || !sink)
        return MOLT_ESTATE;
    nm->sink = sink;
    nm->sink_ctx = ctx;
    nm->sink_code = 0;
    if (nm->in_child)
        return 0;
    molt_err e = {0};
    int r = molt_artifact_reader_set_sink(nm->reader, reader_sink, nm, &e);
    if (r < 0)
        nm->sink = NULL;
    return r;
}

static const char *host_header_info(const struct molt_host_api *api)
{
    return from_api(api)->header_info;
}

static const char *host_type_info(const struct molt_host_api *api)
{
    return from_api(api)->type_info;
}

static const char *host_meta_data(const struct molt_host_api *api)
{
    return from_api(api)->meta_data;
}

static const char *host_artifact_name(const struct molt_host_api *api)
{
    return from_api(api)->art_name;
}

static const char *host_artifact_group(const struct molt_host_api *api)
{
    return from_api(api)->art_group;
}

static const char *host_payload_type(const struct molt_host_api *api)
{
    return from_api(api)->type;
}

static const char *host_work_dir(const struct molt_host_api *api)
{
    return from_api(api)->work_dir;
}

/* The record of state Download or ArtifactCommit may have been saved lazily
 * (MOLT_CAP_LAZY_DOWNLOAD, MOLT_CAP_LAZY_COMMIT): make it durable before the module names
 * something in Download that cleanup must find, or makes something durable in ArtifactCommit
 * that a lost record would leave behind. Once per call; the other states are recorded
 * durably. */
static int sync_record(native_mod *nm, molt_err *err)
{
    if ((nm->cur_call != MOLT_CALL_DOWNLOAD && nm->cur_call != MOLT_CALL_ARTIFACT_COMMIT) ||
        nm->record_synced || !nm->rec.sync)
        return 0;
    int r = nm->rec.sync(nm->rec.ctx, err);
    if (r == 0)
        nm->record_synced = true;
    return r;
}

/* sync_record for a host function that cannot fail: a failure is logged (the record stays
 * lazy: a cut then loses the deployment, and what the module named stays behind). */
static void sync_record_or_log(native_mod *nm)
{
    molt_err e = {0};
    if (sync_record(nm, &e) < 0)
        molt_log_warning("module %s: %s", nm->d->name, e.msg);
}

/* The tree is made when the module first asks for tmp_dir() or files_dir() (or the host stages
 * payload files for a module without streaming), without fsyncs (host/worktree.h), after the
 * record of state Download is made durable (sync_record): a module that never asks (the file
 * module's single file) costs no folder at all. tmp/'s name, and the tree's, are made durable
 * when the module first asks for the folder in Download or ArtifactInstall (the states that
 * stage, where a module keeps what its rollback needs), not in later states, where what a module
 * puts there need not survive a cut. A failure is logged (the module's own use of the folder
 * then fails, naming it). */
static const char *host_tmp_dir(const struct molt_host_api *api)
{
    native_mod *nm = from_api(api);
    molt_err e = {0};
    sync_record_or_log(nm);
    if (!nm->tmp_made) {
        if (molt_mkdir_p(nm->tmp_dir, 0755, &e) < 0)
            molt_log_warning("module %s: %s", nm->d->name, e.msg);
        else
            nm->tmp_made = true;
    }
    if (nm->tmp_made && !nm->tmp_durable &&
        (nm->cur_call == MOLT_CALL_DOWNLOAD || nm->cur_call == MOLT_CALL_ARTIFACT_INSTALL)) {
        if (molt_fsync_dir(nm->tree_dir, &e) < 0 || molt_fsync_parent(nm->tree_dir, &e) < 0)
            molt_log_warning("module %s: %s", nm->d->name, e.msg);
        nm->tmp_durable = true;
    }
    return nm->tmp_dir;
}

/* files/ itself is made by the host where it stages (files mode); the tree around it here, so
 * that a module may make it too. */
static const char *host_files_dir(const struct molt_host_api *api)
{
    native_mod *nm = from_api(api);
    molt_err e = {0};
    sync_record_or_log(nm);
    if (!nm->tmp_made && molt_mkdir_p(nm->tree_dir, 0755, &e) < 0)
        molt_log_warning("module %s: %s", nm->d->name, e.msg);
    return nm->files_dir;
}

/* A key of the kv store and of the deployment values: 1 to 64 of [A-Za-z0-9._-]. */
static bool valid_key(const char *key)
{
    return key && strlen(key) <= KV_KEY_MAX && valid_word(key, KV_KEY_MAX) && !strchr(key, '+');
}

static char *kv_path(native_mod *nm, const char *key)
{
    return valid_key(key) ? molt_path_join(nm->kv_dir, key) : NULL;
}

/* A value (data, len; freed here) as kv_get and dep_get return it: into buf when it fits in cap
 * bytes, *ret_len its length either way (MOLT_ELIMIT when it does not fit). */
static int copy_out(void *data, size_t len, void *buf, size_t cap, size_t *ret_len)
{
    int r = 0;
    *ret_len = len;
    if (len > cap)
        r = MOLT_ELIMIT;
    else if (len)
        memcpy(buf, data, len);
    free(data);
    return r;
}

static int host_kv_get(const struct molt_host_api *api, const char *key, void *buf, size_t cap,
                       size_t *ret_len)
{
    native_mod *nm = from_api(api);
    char *path = kv_path(nm, key), *data = NULL;
    size_t len = 0;
    if (!path || !ret_len || (!buf && cap)) {
        free(path);
        return MOLT_EINVAL;
    }
    molt_err e = {0};
    int r = molt_read_file(path, KV_VALUE_MAX, &data, &len, &e);
    free(path);
    if (r < 0) {
        if (r != MOLT_ENOTFOUND)
            molt_log_warning("module %s: key-value store: %s", nm->d->name, e.msg);
        return r;
    }
    return copy_out(data, len, buf, cap, ret_len);
}

static int host_kv_set(const struct molt_host_api *api, const char *key, const void *value,
                       size_t len)
{
    native_mod *nm = from_api(api);
    if (len > KV_VALUE_MAX || (!value && len))
        return MOLT_ELIMIT;
    char *path = kv_path(nm, key);
    if (!path)
        return MOLT_EINVAL;
    molt_err e = {0};
    int r = sync_record(nm, &e);
    if (r == 0)
        r = molt_write_file_atomic(path, value ? value : "", len, 0600, &e);
    if (r < 0)
        molt_log_warning("module %s: key-value store: %s", nm->d->name, e.msg);
    free(path);
    return r;
}

static int host_kv_delete(const struct molt_host_api *api, const char *key)
{
    native_mod *nm = from_api(api);
    char *path = kv_path(nm, key);
    if (!path)
        return MOLT_EINVAL;
    int r = 0;
    molt_err e = {0};
    /* A missing key changes nothing: no record sync, no fsync. */
    if (access(path, F_OK) == 0)
        r = sync_record(nm, &e);
    if (r == 0 && unlink(path) < 0) {
        if (errno != ENOENT)
            r = molt_err_errno(&e, MOLT_EIO, errno, "cannot remove %s", path);
    } else if (r == 0) {
        r = molt_fsync_dir(nm->kv_dir, &e);
    }
    if (r < 0)
        molt_log_warning("module %s: key-value store: %s", nm->d->name, e.msg);
    free(path);
    return r;
}

/* What the values take against MOLT_DEP_VALUES_MAX, without key skip (NULL: none). */
static size_t values_size(const json_t *values, const char *skip)
{
    size_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)values, k, v)
        if (!skip || strcmp(k, skip) != 0)
            total += strlen(k) + strlen(json_string_value(v)) / 2;
    return total;
}

static int host_dep_get(const struct molt_host_api *api, const char *key, void *buf, size_t cap,
                        size_t *ret_len)
{
    native_mod *nm = from_api(api);
    if (!valid_key(key) || !ret_len || (!buf && cap))
        return MOLT_EINVAL;
    const char *text = json_string_value(json_object_get(nm->values, key));
    if (!text)
        return MOLT_ENOTFOUND;
    size_t len = strlen(text) / 2;
    unsigned char *data = malloc(len + 1);
    if (!data)
        return MOLT_ENOMEM;
    int r = molt_hex_decode(text, strlen(text), data, len);
    if (r < 0) {
        free(data);
        return r;
    }
    return copy_out(data, len, buf, cap, ret_len);
}

static int host_dep_set(const struct molt_host_api *api, const char *key, const void *value,
                        size_t len)
{
    native_mod *nm = from_api(api);
    if (!valid_key(key) || (!value && len))
        return MOLT_EINVAL;
    if (len > MOLT_DEP_VALUES_MAX || strlen(key) + len + values_size(nm->values, key) >
                                         MOLT_DEP_VALUES_MAX)
        return MOLT_ELIMIT;
    /* Hex, not base64: molt's base64 is libcrypto's, which a small update never loads. */
    char *text = malloc(2 * len + 1);
    if (!text)
        return MOLT_ENOMEM;
    molt_hex_encode(value ? value : (const void *)"", len, text);
    if (!nm->values)
        nm->values = json_object();
    json_t *v = json_string(text);
    free(text);
    if (!nm->values || !v || json_object_set_new(nm->values, key, v) < 0)
        return MOLT_ENOMEM;
    nm->values_changed = true;
    return 0;
}

static int host_dep_delete(const struct molt_host_api *api, const char *key)
{
    native_mod *nm = from_api(api);
    if (!valid_key(key))
        return MOLT_EINVAL;
    if (json_object_del(nm->values, key) == 0)
        nm->values_changed = true;
    return 0;
}

static int host_keeps_state(const struct molt_host_api *api)
{
    return from_api(api)->isolated ? 0 : 1;
}

static const char *host_config_get(const struct molt_host_api *api, const char *key)
{
    const molt_module_config *mc = &from_api(api)->settings;
    for (size_t i = 0; key && i < mc->n; i++)
        if (strcmp(mc->keys[i], key) == 0)
            return mc->values[i];
    return NULL;
}

static const struct molt_host_api host_api_template = {
    .struct_size = sizeof(struct molt_host_api),
    .abi_major = MOLT_MODULE_ABI_MAJOR,
    .abi_minor = MOLT_MODULE_ABI_MINOR,
    .log = host_log,
    .error = host_error,
    .progress = host_progress,
    .next_file = host_next_file,
    .read = host_read,
    .read_block = host_read_block,
    .header_info = host_header_info,
    .type_info = host_type_info,
    .meta_data = host_meta_data,
    .artifact_name = host_artifact_name,
    .artifact_group = host_artifact_group,
    .payload_type = host_payload_type,
    .work_dir = host_work_dir,
    .tmp_dir = host_tmp_dir,
    .files_dir = host_files_dir,
    .kv_get = host_kv_get,
    .kv_set = host_kv_set,
    .kv_delete = host_kv_delete,
    .config_get = host_config_get,
    .set_sink = host_set_sink,
    .dep_get = host_dep_get,
    .dep_set = host_dep_set,
    .dep_delete = host_dep_delete,
    .keeps_state = host_keeps_state,
};

/* ---- calling the module ---------------------------------------------------------------------- */

typedef int (*state_fn)(void *state);

static state_fn fn_for(const struct molt_module_desc *d, molt_call call)
{
    switch (call) {
    case MOLT_CALL_DOWNLOAD:
        return d->download;
    case MOLT_CALL_ARTIFACT_INSTALL:
        return d->artifact_install;
    case MOLT_CALL_NEEDS_ARTIFACT_REBOOT:
        return d->needs_artifact_reboot;
    case MOLT_CALL_ARTIFACT_REBOOT:
        return d->artifact_reboot;
    case MOLT_CALL_ARTIFACT_VERIFY_REBOOT:
        return d->artifact_verify_reboot;
    case MOLT_CALL_ARTIFACT_COMMIT:
        return d->artifact_commit;
    case MOLT_CALL_SUPPORTS_ROLLBACK:
        return d->supports_rollback;
    case MOLT_CALL_ARTIFACT_ROLLBACK:
        return d->artifact_rollback;
    case MOLT_CALL_ARTIFACT_ROLLBACK_REBOOT:
        return d->artifact_rollback_reboot;
    case MOLT_CALL_ARTIFACT_VERIFY_ROLLBACK_REBOOT:
        return d->artifact_verify_rollback_reboot;
    case MOLT_CALL_ARTIFACT_FAILURE:
        return d->artifact_failure;
    case MOLT_CALL_CLEANUP:
        return d->cleanup;
    default:
        return NULL;
    }
}

/* What a NULL function means: success for a state, the capability bit for a query. */
static int default_rc(const native_mod *nm, molt_call call)
{
    if (call == MOLT_CALL_NEEDS_ARTIFACT_REBOOT)
        return (nm->d->capabilities & MOLT_CAP_REBOOT) ? MOLT_MODULE_REBOOT_YES
                                                       : MOLT_MODULE_REBOOT_NO;
    if (call == MOLT_CALL_SUPPORTS_ROLLBACK)
        return (nm->d->capabilities & MOLT_CAP_ROLLBACK) ? 1 : 0;
    return 0;
}

static int ensure_dirs(native_mod *nm, molt_err *err)
{
    int r = molt_mkdir_p(nm->work_dir, 0700, err);
    if (r == 0)
        r = molt_mkdir_p(nm->kv_dir, 0700, err);
    return r;
}

/* Run init (once) and the call in this process; res gets the outcome. */
static void do_call(native_mod *nm, molt_call call, call_result *res)
{
    memset(res, 0, sizeof *res);
    res->values_len = -1;
    nm->cur = res;
    nm->cur_call = call;
    nm->values_changed = false;
    if (!nm->inited) {
        molt_err e = {0};
        void *state = NULL;
        int r = ensure_dirs(nm, &e);
        if (r < 0) {
            snprintf(res->msg, sizeof res->msg, "%s", e.msg);
        } else {
            r = nm->d->init(&nm->api, &state);
        }
        if (r != 0) {
            res->rc = r;
            res->in_init = 1;
            nm->cur = NULL;
            return;
        }
        nm->state = state;
        nm->inited = true;
    }
    state_fn fn = fn_for(nm->d, call);
    res->rc = fn ? fn(nm->state) : default_rc(nm, call);
    nm->cur = NULL;
}

/* Turn a call's outcome into 0 / an answer / an error naming the module and the state. */
static int interpret(native_mod *nm, molt_call call, const call_result *res, molt_answer *ret,
                     molt_err *err)
{
    const char *state = molt_call_name(call);
    int rc = res->rc;
    /* A payload that failed its checksum fails Download even if the module ignored the error. */
    if (!res->in_init && nm->read_err.code)
        return molt_err_set(err, nm->read_err.code, "%s", nm->read_err.msg);
    if (res->in_init || rc < 0) {
        int code = rc < 0 && rc > MOLT_E_END ? rc : MOLT_EMODULE;
        return molt_err_set(err, code, "module %s (%s): %s%s failed: %s", nm->d->name,
                            nm->base.path, res->in_init ? "init for " : "", state,
                            res->msg[0] ? res->msg : molt_strerror(rc < 0 ? rc : MOLT_EMODULE));
    }
    if (call == MOLT_CALL_NEEDS_ARTIFACT_REBOOT || call == MOLT_CALL_SUPPORTS_ROLLBACK) {
        int max = call == MOLT_CALL_NEEDS_ARTIFACT_REBOOT ? MOLT_MODULE_REBOOT_AUTOMATIC : 1;
        if (rc > max)
            return molt_err_set(err, MOLT_EPROTOCOL,
                                "module %s (%s): %s returned %d, expected 0 to %d or a negative "
                                "code",
                                nm->d->name, nm->base.path, state, rc, max);
        if (ret)
            *ret = rc == 0 ? MOLT_ANSWER_NO
                   : call == MOLT_CALL_NEEDS_ARTIFACT_REBOOT && rc == MOLT_MODULE_REBOOT_AUTOMATIC
                       ? MOLT_ANSWER_AUTOMATIC
                       : MOLT_ANSWER_YES;
        return 0;
    }
    if (rc > 0)
        return molt_err_set(err, MOLT_EPROTOCOL,
                            "module %s (%s): %s returned %d, expected 0 or a negative code",
                            nm->d->name, nm->base.path, state, rc);
    return 0;
}

/* ---- isolated calls (a forked child per call) ------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events; MOLT_ETIMEOUT at deadline (ms, CLOCK_MONOTONIC). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return MOLT_ETIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return MOLT_EIO;
    }
}

/* Parent: send all of buf to the child. 1 if the child closed its end (stopped reading). */
static int send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
    const char *p = buf;
    while (len > 0) {
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r < 0)
            return r;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return errno == EPIPE || errno == ECONNRESET ? 1 : MOLT_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Parent: push the payload files of nm->reader to the child as frames. A reader failure is
 * sent to the child and kept in nm->read_err. */
static int push_payload(native_mod *nm, int fd, int64_t deadline)
{
    int r = 0;
    while (nm->reader) {
        const char *name;
        int64_t size;
        int got = molt_artifact_reader_next(nm->reader, &name, &size, &nm->read_err);
        frame f = {.kind = got == 1 ? FR_FILE : got == 0 ? FR_DONE : FR_ERROR};
        if (got < 0)
            f.v = got;
        if (got == 1) {
            f.n = (uint32_t)strlen(name);
            f.v = size;
        }
        if ((r = send_all(fd, &f, sizeof f, deadline)) != 0 ||
            (got == 1 && (r = send_all(fd, name, f.n, deadline)) != 0) || got != 1)
            return r;
        for (;;) {
            const void *buf;
            ssize_t n = molt_artifact_reader_read_block(nm->reader, &buf, &nm->read_err);
            frame d = {.kind = n > 0 ? FR_DATA : FR_END, .v = n};
            if ((r = send_all(fd, &d, sizeof d, deadline)) != 0 ||
                (n > 0 && (r = send_all(fd, buf, (size_t)n, deadline)) != 0))
                return r;
            if (n < 0)
                return 0;   /* the child sees the code; the machine reports read_err */
            if (n == 0)
                break;
        }
    }
    frame z = {.kind = FR_DONE};
    return send_all(fd, &z, sizeof z, deadline) < 0 ? MOLT_EIO : 0;
}

/* Parent: read up to len bytes of fd before deadline; the count read (short: closed, an error
 * or the deadline, *r then MOLT_ETIMEOUT or MOLT_EIO). */
static size_t read_full(int fd, void *buf, size_t len, int64_t deadline, int *r)
{
    size_t got = 0;
    while (*r == 0 && got < len) {
        if ((*r = wait_fd(fd, POLLIN, deadline)) < 0)
            break;
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* Parent: the values an isolated call changed (JSON of len bytes on fd) replace nm's. */
static int take_values(native_mod *nm, int fd, size_t len, int64_t deadline, molt_err *err)
{
    char *text = len <= DEP_JSON_MAX ? malloc(len + 1) : NULL;
    int r = 0;
    if (!text)
        return molt_err_set(err, MOLT_EPROTOCOL, "module %s: deployment values of %zu bytes",
                            nm->d->name, len);
    size_t got = read_full(fd, text, len, deadline, &r);
    json_t *v = got == len ? json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(text);
    if (!json_is_object(v)) {
        json_decref(v);
        return molt_err_set(err, r == MOLT_ETIMEOUT ? r : MOLT_EMODULE,
                            "module %s: the deployment values of the call did not come back",
                            nm->d->name);
    }
    json_decref(nm->values);
    nm->values = v;
    return 0;
}

static void child_run(native_mod *nm, molt_call call, int res_fd, int data_fd)
{
    call_result res;
    nm->in_child = true;
    nm->data_fd = data_fd;
    nm->child_buf = data_fd >= 0 ? malloc(CHILD_BUF_SIZE) : NULL;
    do_call(nm, call, &res);
    if (nm->inited && nm->d->fini)
        nm->d->fini(nm->state);
    /* The values the call changed go back to molt with the result. */
    char *values = NULL;
    if (nm->values_changed) {
        values = nm->values ? json_dumps(nm->values, JSON_COMPACT) : strdup("{}");
        if (!values || strlen(values) > DEP_JSON_MAX) {
            res.rc = MOLT_ENOMEM;
            snprintf(res.msg, sizeof res.msg, "deployment values: out of memory");
        } else {
            res.values_len = (int32_t)strlen(values);
        }
    }
    if (molt_write_all(res_fd, &res, sizeof res, NULL, "result") == 0 && res.values_len > 0)
        molt_write_all(res_fd, values, (size_t)res.values_len, NULL, "values");
    _exit(0);
}

static int run_isolated(native_mod *nm, molt_call call, call_result *res, molt_err *err)
{
    int res_pipe[2] = {-1, -1}, sv[2] = {-1, -1}, r = 0;
    bool download = call == MOLT_CALL_DOWNLOAD;
    const char *state = molt_call_name(call);
    if (pipe2(res_pipe, O_CLOEXEC) < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "module %s: pipe", nm->d->name);
    if (download && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "module %s: socketpair", nm->d->name);
        goto out;
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "module %s: fork", nm->d->name);
        goto out;
    }
    if (pid == 0) {
        if (molt_proc_die_with_parent(parent) != 0)
            _exit(1);
        close(res_pipe[0]);
        if (download)
            close(sv[0]);
        child_run(nm, call, res_pipe[1], download ? sv[1] : -1);
    }
    molt_proc_watch(pid);
    close(res_pipe[1]);
    res_pipe[1] = -1;
    int64_t deadline = now_ms() + (int64_t)nm->timeout * 1000;
    if (download) {
        close(sv[1]);
        sv[1] = -1;
        r = push_payload(nm, sv[0], deadline);
        if (r > 0)
            r = 0;   /* the child stopped reading: the machine verifies the rest */
        close(sv[0]);
        sv[0] = -1;
    }
    size_t got = read_full(res_pipe[0], res, sizeof *res, deadline, &r);
    molt_err verr = {0};
    int vr = 0;
    if (got == sizeof *res && res->values_len >= 0)
        vr = take_values(nm, res_pipe[0], (size_t)res->values_len, deadline, &verr);
    if (vr == MOLT_ETIMEOUT)
        r = vr;
    if (r == MOLT_ETIMEOUT)
        kill(pid, SIGKILL);
    molt_proc_unwatch(pid);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (r == MOLT_ETIMEOUT) {
        r = molt_err_set(err, MOLT_ETIMEOUT, "module %s (%s): %s took more than %d s: killed",
                         nm->d->name, nm->base.path, state, nm->timeout);
    } else if (WIFSIGNALED(status)) {
        r = molt_err_set(err, MOLT_EMODULE, "module %s (%s): %s crashed: killed by signal %d (%s)",
                         nm->d->name, nm->base.path, state, WTERMSIG(status),
                         strsignal(WTERMSIG(status)));
    } else if (got != sizeof *res) {
        r = molt_err_set(err, MOLT_EMODULE,
                         "module %s (%s): %s ended without a result (exit status %d)",
                         nm->d->name, nm->base.path, state,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else if (vr < 0) {
        r = molt_err_set(err, vr, "%s", verr.msg);
    } else {
        res->msg[sizeof res->msg - 1] = '\0';
        r = 0;
    }
out:
    for (int i = 0; i < 2; i++) {
        if (res_pipe[i] >= 0)
            close(res_pipe[i]);
        if (sv[i] >= 0)
            close(sv[i]);
    }
    return r;
}

static int run_call(native_mod *nm, molt_call call, molt_answer *ret, molt_err *err)
{
    call_result res;
    if (nm->isolated) {
        int r = run_isolated(nm, call, &res, err);
        if (r < 0)
            return r;
    } else {
        do_call(nm, call, &res);
    }
    return interpret(nm, call, &res, ret, err);
}

/* ---- the molt_module operations ---------------------------------------------------------------- */

/* Files mode (no MOLT_CAP_STREAMING): every payload file to files_dir()/<name>, fsync'd, each
 * checked against the free space and its declared size (host/stage.c). */
static int stage_files(native_mod *nm, molt_artifact_reader *r, molt_err *err)
{
    int rc = molt_mkdir_p(nm->files_dir, 0755, err);
    if (rc == 0)
        rc = molt_stage_private(nm->files_dir, true, err);   /* until every file verified */
    while (rc == 0) {
        const char *name;
        int64_t size;
        if ((rc = molt_artifact_reader_next(r, &name, &size, err)) <= 0)
            break;
        rc = 0;
        if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            rc = molt_err_set(err, MOLT_EFORMAT, "payload file name \"%s\" is not a plain name",
                              name);
            break;
        }
        rc = molt_stage_reader_file(r, nm->files_dir, name, size, err);
    }
    if (rc == 0)
        rc = molt_stage_private(nm->files_dir, false, err);
    return rc < 0 ? rc : molt_fsync_dir(nm->files_dir, err);
}

static int op_download(molt_module *m, molt_artifact_reader *r, molt_err *err)
{
    native_mod *nm = (native_mod *)m;
    int rc;
    molt_err_clear(&nm->read_err);
    nm->record_synced = false;
    nm->cur_call = MOLT_CALL_DOWNLOAD;
    if (!(nm->d->capabilities & MOLT_CAP_STREAMING)) {
        /* files_dir() gets the payload: named things cleanup must find. */
        if ((rc = sync_record(nm, err)) < 0 || (rc = stage_files(nm, r, err)) < 0)
            return rc;
        r = NULL;
    }
    nm->reader = r;
    nm->have_file = false;
    nm->in_download = true;
    rc = run_call(nm, MOLT_CALL_DOWNLOAD, NULL, err);
    /* A module that returned in the middle of a file with a sink set: the host reads the rest
     * of the artifact after this, never into the module's sink again. */
    if (r && nm->sink)
        molt_artifact_reader_clear_sink(r);
    nm->sink = NULL;
    nm->in_download = false;
    nm->have_file = false;
    nm->reader = NULL;
    return rc;
}

static int op_call(molt_module *m, molt_call call, molt_err *err)
{
    native_mod *nm = (native_mod *)m;
    if (call == MOLT_CALL_NEEDS_ARTIFACT_REBOOT || call == MOLT_CALL_SUPPORTS_ROLLBACK ||
        call < MOLT_CALL_ARTIFACT_INSTALL || call >= MOLT_CALL_COUNT)
        return molt_err_set(err, MOLT_EINVAL, "module %s: %s is not a state call", nm->d->name,
                            molt_call_name(call) ? molt_call_name(call) : "?");
    molt_err_clear(&nm->read_err);
    nm->record_synced = false;
    return run_call(nm, call, NULL, err);
}

static int op_query(molt_module *m, molt_call call, molt_answer *ret, molt_err *err)
{
    native_mod *nm = (native_mod *)m;
    if (call != MOLT_CALL_NEEDS_ARTIFACT_REBOOT && call != MOLT_CALL_SUPPORTS_ROLLBACK)
        return molt_err_set(err, MOLT_EINVAL, "module %s: %s is not a query", nm->d->name,
                            molt_call_name(call) ? molt_call_name(call) : "?");
    molt_err_clear(&nm->read_err);
    molt_answer answer;
    int r = run_call(nm, call, &answer, err);
    if (r == 0)
        *ret = answer;
    return r;
}

static void op_free(molt_module *m)
{
    native_mod *nm = (native_mod *)m;
    if (!nm)
        return;
    if (nm->inited && nm->d->fini && !nm->isolated)
        nm->d->fini(nm->state);
    molt_native_free(nm->nat);
    char **strs[] = {&nm->type,        &nm->tree_dir,  &nm->tmp_dir,   &nm->files_dir,
                     &nm->work_dir,    &nm->kv_dir,    &nm->header_info, &nm->type_info,
                     &nm->meta_data,   &nm->art_name,  &nm->art_group, &nm->child_name,
                     &nm->child_buf,   (char **)&nm->base.path};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    for (size_t i = 0; i < nm->settings.n; i++) {
        free(nm->settings.keys[i]);
        free(nm->settings.values[i]);
    }
    free(nm->settings.keys);
    free(nm->settings.values);
    json_decref(nm->values);
    free(nm);
}

static const json_t *op_values(molt_module *m)
{
    return ((native_mod *)m)->values;
}

static const molt_module_ops native_ops = {
    .download = op_download,
    .call = op_call,
    .query = op_query,
    .free = op_free,
    .values = op_values,
};

/* header/<name> of the work tree, trailing newlines dropped; fallback when missing. */
static int read_header(const char *tree_dir, const char *name, const char *fallback,
                       char **ret, molt_err *err)
{
    char *dir = molt_path_join(tree_dir, "header"), *path = dir ? molt_path_join(dir, name) : NULL;
    char *data = NULL;
    size_t len = 0;
    free(dir);
    if (!path)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int r = molt_read_file(path, HEADER_JSON_MAX, &data, &len, err);
    free(path);
    if (r == MOLT_ENOTFOUND) {
        molt_err_clear(err);
        data = strdup(fallback);
        if (!data)
            return molt_err_set(err, MOLT_ENOMEM, "out of memory");
        r = 0;
    } else if (r == 0) {
        while (len > 0 && data[len - 1] == '\n')
            data[--len] = '\0';
    }
    if (r == 0)
        *ret = data;
    return r;
}

/* The header values from the deployment record's "artifact" object. */
static int record_header(const json_t *art, native_mod *nm, molt_err *err)
{
    const char *name = json_string_value(json_object_get(art, "name"));
    const char *group = json_string_value(json_object_get(art, "group"));
    nm->header_info = molt_worktree_header_json(json_object_get(art, "header_info"));
    nm->type_info = molt_worktree_header_json(json_object_get(art, "type_info"));
    nm->meta_data = molt_worktree_header_json(json_object_get(art, "meta_data"));
    nm->art_name = strdup(name ? name : "");
    nm->art_group = strdup(group ? group : "");
    if (!nm->header_info || !nm->type_info || !nm->meta_data || !nm->art_name || !nm->art_group)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    return 0;
}

/* Copy the settings of module name (if any) from cfg into nm->settings. */
static int copy_settings(native_mod *nm, const molt_config *cfg, const char *name)
{
    const molt_module_config *mc = NULL;
    for (size_t i = 0; cfg && i < cfg->n_modules && !mc; i++)
        if (strcmp(cfg->modules[i].name, name) == 0)
            mc = &cfg->modules[i];
    if (!mc || mc->n == 0)
        return 0;
    nm->settings.keys = calloc(mc->n, sizeof(char *));
    nm->settings.values = calloc(mc->n, sizeof(char *));
    if (!nm->settings.keys || !nm->settings.values)
        return MOLT_ENOMEM;
    for (size_t i = 0; i < mc->n; i++) {
        nm->settings.keys[i] = strdup(mc->keys[i]);
        nm->settings.values[i] = strdup(mc->values[i]);
        nm->settings.n = i + 1;
        if (!nm->settings.keys[i] || !nm->settings.values[i])
            return MOLT_ENOMEM;
    }
    return 0;
}

int molt_native_module_new(molt_module **ret, const char *path, const char *type,
                           const molt_native_opts *opts, molt_err *err)
{
    if (opts->isolated && opts->timeout <= 0)   /* molt.yaml's module_timeout, never a default here */
        return molt_err_set(err, MOLT_EINVAL, "module %s: isolated without a timeout", path);
    native_mod *nm = calloc(1, sizeof *nm);
    if (!nm)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    int r = molt_native_load(&nm->nat, path, err);
    if (r < 0)
        goto fail;
    nm->d = molt_native_desc(nm->nat);
    if (!molt_native_claims(nm->nat, type)) {
        r = molt_err_set(err, MOLT_ENOTFOUND, "module %s (%s) does not claim payload type %s",
                         nm->d->name, path, type);
        goto fail;
    }
    nm->base.ops = &native_ops;
    nm->base.caps = molt_native_caps(nm->d);
    nm->api = host_api_template;
    api_as_host_minor(&nm->api);
    nm->isolated = opts->isolated;
    nm->timeout = opts->timeout;
    if (opts->record) {
        nm->rec = *opts->record;
        nm->rec.values = NULL;
        if (opts->record->values && json_object_size(opts->record->values) > 0 &&
            !(nm->values = json_deep_copy(opts->record->values))) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
            goto fail;
        }
    }
    nm->data_fd = -1;
    char *mods = molt_path_join(opts->data_dir, "native");
    char *own = mods ? molt_path_join(mods, nm->d->name) : NULL;
    free(mods);
    nm->base.path = strdup(path);
    nm->base.name = nm->type = strdup(type);
    nm->tree_dir = strdup(opts->tree_dir);
    nm->tmp_dir = molt_path_join(opts->tree_dir, "tmp");
    nm->files_dir = molt_path_join(opts->tree_dir, "files");
    nm->work_dir = own ? molt_path_join(own, "work") : NULL;
    nm->kv_dir = own ? molt_path_join(own, "kv") : NULL;
    free(own);
    if (!nm->base.path || !nm->type || !nm->tree_dir || !nm->tmp_dir || !nm->files_dir ||
        !nm->work_dir || !nm->kv_dir || copy_settings(nm, opts->cfg, nm->d->name) < 0) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto fail;
    }
    if (opts->artifact) {
        if ((r = record_header(opts->artifact, nm, err)) < 0)
            goto fail;
    } else if ((r = read_header(opts->tree_dir, "header-info", "null", &nm->header_info, err)) < 0 ||
               (r = read_header(opts->tree_dir, "type-info", "null", &nm->type_info, err)) < 0 ||
               (r = read_header(opts->tree_dir, "meta-data", "null", &nm->meta_data, err)) < 0 ||
               (r = read_header(opts->tree_dir, "artifact_name", "", &nm->art_name, err)) < 0 ||
               (r = read_header(opts->tree_dir, "artifact_group", "", &nm->art_group, err)) < 0)
        goto fail;
    *ret = &nm->base;
    return 0;
fail:
    op_free(&nm->base);
    return r;
}
