/* SPDX-License-Identifier: Apache-2.0 */
/* The exec module host: runs Update Module protocol v3 executables the way Mender's client does
 * (docs/reference §2.1-§2.7): lookup, the work tree, the stream-next/streams FIFO download with its
 * fallback to files/, query answers, a timeout per call, module output into the log. */
#include "host/exec_host.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util/proc.h"
#include "host/stage.h"
#include "util/fs.h"
#include "util/log.h"

/* A query answer is one word; anything longer than this is refused as a protocol error. */
#define QUERY_OUTPUT_MAX 4096
/* How long a module that stopped reading a stream gets to exit on its own before it is
 * terminated (its exit status makes the error message better). */
#define STOPPED_READING_GRACE_MS 2000
/* Polling interval cap while waiting for the module to open a FIFO. */
#define FIFO_OPEN_POLL_MAX_MS 25
/* The pipe size asked for the streams/<name> FIFOs: fewer wake-ups per byte. */
#define STREAM_PIPE_SIZE (1 << 20)

typedef struct exec_module {
    molt_module base;
    char *path;
    char *type;
    char *tree;
    int timeout;   /* seconds; <= 0 = none */
} exec_module;

/* ---- lookup ---- */

static int check_type(const char *type, molt_err *err)
{
    if (!type || !*type)
        return molt_err_set(err, MOLT_EINVAL, "empty payload type: no update module to look up");
    if (strchr(type, '/') || !strcmp(type, ".") || !strcmp(type, ".."))
        return molt_err_set(err, MOLT_EINVAL,
                            "payload type '%s' is not a plain file name: refused as a module name",
                            type);
    if (strlen(type) > NAME_MAX)
        return molt_err_set(err, MOLT_EINVAL, "payload type of %zu bytes is longer than %d",
                            strlen(type), NAME_MAX);
    return 0;
}

/* Whether resolved lies strictly inside the folder dir (both canonical). */
static bool is_inside(const char *dir, const char *resolved)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return resolved[0] == '/' && resolved[1] != '\0';
    return strncmp(dir, resolved, n) == 0 && resolved[n] == '/' && resolved[n + 1] != '\0';
}

/* Examine dir/type: 1 and *ret_path if usable, 0 if absent, negative if present but refused. */
static int find_in_dir(const char *dir, const char *type, char **ret_path, molt_err *err)
{
    int r = 0;
    char *cand = molt_path_join(dir, type), *rdir = NULL, *rcand = NULL;
    if (!cand)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory looking up module %s", type);
    struct stat st;
    if (lstat(cand, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            r = molt_err_errno(err, MOLT_EIO, errno, "cannot examine update module %s", cand);
        goto out;
    }
    rdir = realpath(dir, NULL);
    rcand = realpath(cand, NULL);
    if (!rdir || !rcand) {
        r = molt_err_errno(err, MOLT_EINVAL, errno, "cannot resolve update module %s", cand);
        goto out;
    }
    if (!is_inside(rdir, rcand)) {
        r = molt_err_set(err, MOLT_EINVAL,
                         "update module %s resolves to %s, outside the module folder %s: refused",
                         cand, rcand, rdir);
        goto out;
    }
    if (stat(rcand, &st) != 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot examine update module %s", rcand);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = molt_err_set(err, MOLT_EINVAL, "update module %s is not a regular file", cand);
        goto out;
    }
    if (!(st.st_mode & 0111) || access(rcand, X_OK) != 0) {
        r = molt_err_set(err, MOLT_EINVAL, "update module %s is not executable (mode %04o)",
                         cand, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    *ret_path = rcand;
    rcand = NULL;
    r = 1;
out:
    free(cand);
    free(rdir);
    free(rcand);
    return r;
}

int molt_exec_find(const char *const *dirs, size_t n_dirs, const char *type, char **ret_path,
                   molt_err *err)
{
    int r = check_type(type, err);
    if (r < 0)
        return r;
    /* The first folder holding an entry of that name decides: a broken entry there is an
     * error, not a reason to pick a module from a later folder. */
    for (size_t i = 0; i < n_dirs; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        r = find_in_dir(dirs[i], type, ret_path, err);
        if (r != 0)
            return r < 0 ? r : 0;
    }
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < n_dirs && used < sizeof list; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", dirs[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return molt_err_set(err, MOLT_ENOTFOUND, "Update Module not found for payload type '%s' in %s",
                        type, used ? list : "(no module folders)");
}

/* ---- files/ (payload files staged for the module) ---- */

static int make_dir(const char *parent, const char *name, char **ret, molt_err *err)
{
    char *path = molt_path_join(parent, name);
    if (!path)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory creating %s", name);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        free(path);
        return molt_err_errno(err, MOLT_EIO, e, "cannot create folder %s/%s", parent, name);
    }
    if (ret)
        *ret = path;
    else
        free(path);
    return 0;
}

/* ---- running calls ---- */

static int timeout_ms(const exec_module *m)
{
    if (m->timeout <= 0)
        return 0;
    return m->timeout > INT_MAX / 1000 ? INT_MAX : m->timeout * 1000;
}

static void call_opts(const exec_module *m, const char *call, bool capture, char *what,
                      size_t what_size, molt_proc_opts *o)
{
    snprintf(what, what_size, "update module %s (%s)", m->path, call);
    *o = (molt_proc_opts){
        .what = what,
        .cwd = m->tree,
        .timeout_ms = timeout_ms(m),
        .capture_stdout = capture,
        .capture_max = QUERY_OUTPUT_MAX,
        .stdout_level = MOLT_LOG_INFO,
        .stdout_prefix = "Update Module output (stdout): ",
        .stderr_level = MOLT_LOG_INFO,
        .stderr_prefix = "Update Module output (stderr): ",
    };
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int spawn_call(exec_module *m, molt_call call, bool capture, char *what, size_t what_size,
                      molt_proc_opts *o, molt_proc **ret, molt_err *err)
{
    const char *name = molt_call_name(call);
    const char *argv[] = { m->path, name, m->tree, NULL };
    call_opts(m, name, capture, what, what_size, o);
    molt_log_debug("Calling update module: %s %s %s", m->path, name, m->tree);
    return molt_proc_spawn(ret, argv, o, err);
}

/* An exec module's ArtifactRollback that exits with this code cannot run yet (an engine or a
 * lock unavailable): MOLT_ETEMP, and the rollback stays pending (docs/update-modules.md). The
 * code is the one Mender's state scripts use for "retry later"; for every other call it is a
 * failure like any non-zero code. */
#define EXEC_RETRY_LATER 21

static int status_error(const exec_module *m, const char *call, int status, molt_err *err)
{
    char how[96];
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXEC_RETRY_LATER &&
        strcmp(call, "ArtifactRollback") == 0)
        return molt_err_set(err, MOLT_ETEMP, "%s: update module %s exited with code %d (try "
                            "again later)", call, m->path, EXEC_RETRY_LATER);
    return molt_err_set(err, MOLT_EMODULE, "%s: update module %s %s", call, m->path,
                        molt_proc_status_str(status, how, sizeof how));
}

/* Run one call to its end. With capture, *ret_out gets the stdout (caller frees), *ret_len its
 * length and *ret_trunc whether it was longer than kept. */
static int run_call(exec_module *m, molt_call call, bool capture, char **ret_out, size_t *ret_len,
                    bool *ret_trunc, molt_err *err)
{
    const char *name = molt_call_name(call);
    char what[PATH_MAX + 64];
    molt_proc_opts o;
    molt_proc *p = NULL;
    int status = 0;
    int r = spawn_call(m, call, capture, what, sizeof what, &o, &p, err);
    if (r == 0)
        r = molt_proc_wait(p, &status, err);
    if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        r = status_error(m, name, status, err);
    if (r == 0 && capture) {
        size_t len;
        bool trunc;
        const char *out = molt_proc_output(p, &len, &trunc);
        char *copy = malloc(len + 1);
        if (!copy) {
            r = molt_err_set(err, MOLT_ENOMEM, "out of memory reading the answer to %s", name);
        } else {
            memcpy(copy, out, len + 1);
            *ret_out = copy;
            *ret_len = len;
            *ret_trunc = trunc;
        }
    }
    molt_proc_free(p);
    return r;
}

static int exec_call(molt_module *mm, molt_call call, molt_err *err)
{
    exec_module *m = (exec_module *)mm;
    const char *name = molt_call_name(call);
    if (!name || call == MOLT_CALL_DOWNLOAD || call == MOLT_CALL_DOWNLOAD_WITH_FILE_SIZES)
        return molt_err_set(err, MOLT_EINVAL, "update module call %d is not a plain call",
                            (int)call);
    if (!is_dir(m->tree)) {
        /* As the C++ client: the tree is removed after Cleanup, so a Cleanup repeated after a
         * restart finds nothing to clean. */
        if (call == MOLT_CALL_CLEANUP)
            return 0;
        return molt_err_set(err, MOLT_ENOTFOUND, "%s: file tree %s of update module %s does not exist",
                            name, m->tree, m->path);
    }
    int r = run_call(m, call, false, NULL, NULL, NULL, err);
    if (call == MOLT_CALL_CLEANUP) {
        molt_err rm_err;
        molt_err_clear(&rm_err);
        if (molt_rm_rf(m->tree, &rm_err) != 0) {
            if (r == 0) {
                if (err)
                    *err = rm_err;
                r = rm_err.code;
            } else {
                molt_log_error("Cleanup: %s", rm_err.msg);
            }
        }
    }
    return r;
}

/* Show up to 64 bytes of an answer, non-printable bytes as '?'. */
static const char *printable(const char *s, size_t len, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < size && i < 64; i++)
        buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (len > 64 && n + 4 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* docs/reference §2.4: the first line counts, its newline stripped, nothing trimmed; another
 * non-empty line is a protocol error. */
static int parse_answer(const exec_module *m, molt_call call, const char *out, size_t len,
                        bool truncated, molt_answer *ret, molt_err *err)
{
    const char *name = molt_call_name(call);
    char shown[80];
    if (truncated)
        return molt_err_set(err, MOLT_EPROTOCOL,
                            "answer of update module %s to %s is longer than %d bytes", m->path,
                            name, QUERY_OUTPUT_MAX);
    const char *nl = memchr(out, '\n', len);
    size_t first = nl ? (size_t)(nl - out) : len;
    if (nl) {
        const char *rest = nl + 1, *end = out + len;
        while (rest < end) {
            const char *e = memchr(rest, '\n', (size_t)(end - rest));
            size_t l = e ? (size_t)(e - rest) : (size_t)(end - rest);
            if (l > 0)
                return molt_err_set(err, MOLT_EPROTOCOL,
                                    "Too many lines when querying %s: update module %s also "
                                    "printed '%s'", name, m->path,
                                    printable(rest, l, shown, sizeof shown));
            rest += l + 1;
        }
    }
    molt_answer a;
    if (first == 0 || (first == 2 && !memcmp(out, "No", 2)))
        a = MOLT_ANSWER_NO;
    else if (first == 3 && !memcmp(out, "Yes", 3))
        a = MOLT_ANSWER_YES;
    else if (call == MOLT_CALL_NEEDS_ARTIFACT_REBOOT && first == 9 && !memcmp(out, "Automatic", 9))
        a = MOLT_ANSWER_AUTOMATIC;
    else
        return molt_err_set(err, MOLT_EPROTOCOL,
                            "unexpected answer '%s' of update module %s to %s; expected %s",
                            printable(out, first, shown, sizeof shown), m->path, name,
                            call == MOLT_CALL_NEEDS_ARTIFACT_REBOOT
                                ? "Yes, No, Automatic or nothing" : "Yes, No or nothing");
    *ret = a;
    return 0;
}

static int exec_query(molt_module *mm, molt_call call, molt_answer *ret, molt_err *err)
{
    exec_module *m = (exec_module *)mm;
    if (call != MOLT_CALL_PROVIDE_PAYLOAD_FILE_SIZES && call != MOLT_CALL_NEEDS_ARTIFACT_REBOOT &&
        call != MOLT_CALL_SUPPORTS_ROLLBACK)
        return molt_err_set(err, MOLT_EINVAL, "%s is not a query call",
                            molt_call_name(call) ? molt_call_name(call) : "(unknown call)");
    if (!is_dir(m->tree))
        return molt_err_set(err, MOLT_ENOTFOUND, "%s: file tree %s of update module %s does not exist",
                            molt_call_name(call), m->tree, m->path);
    char *out = NULL;
    size_t len = 0;
    bool trunc = false;
    int r = run_call(m, call, true, &out, &len, &trunc, err);
    if (r == 0)
        r = parse_answer(m, call, out, len, trunc, ret, err);
    free(out);
    return r;
}

/* ---- download ---- */

typedef struct download {
    exec_module *m;
    molt_artifact_reader *r;
    molt_proc *p;
    const char *call;        /* "Download" / "DownloadWithFileSizes" */
    bool sizes;
    char *stream_next;       /* <tree>/stream-next */
    char *streams_dir;       /* <tree>/streams */
    char name[NAME_MAX + 1]; /* current payload file */
    char last[NAME_MAX + 1]; /* the last one streamed, for messages */
    int64_t size;
    bool have_file;
    bool no_more;
    bool started;            /* the module opened stream-next at least once */
    bool finished;           /* the end marker was delivered */
} download;

static int check_payload_name(const char *name, molt_err *err)
{
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") ||
        strlen(name) > NAME_MAX)
        return molt_err_set(err, MOLT_EFORMAT, "payload file name '%s' is not a plain file name",
                            name);
    return 0;
}

/* Advance the reader to the next payload file unless one is pending. */
static int next_file(download *d, molt_err *err)
{
    if (d->have_file || d->no_more)
        return 0;
    const char *name;
    int64_t size;
    int r = molt_artifact_reader_next(d->r, &name, &size, err);
    if (r < 0)
        return r;
    if (r == 0) {
        d->no_more = true;
        return 0;
    }
    r = check_payload_name(name, err);
    if (r < 0)
        return r;
    memcpy(d->name, name, strlen(name) + 1);
    d->size = size;
    d->have_file = true;
    return 0;
}

/* Open a FIFO for writing once the module opened it for reading, without blocking: 1 with *ret_fd,
 * 0 if the module exited first, or a negative code (the timeout included). */
static int open_fifo(download *d, const char *path, int *ret_fd, molt_err *err)
{
    int delay = 1;
    for (;;) {
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            *ret_fd = fd;
            return 1;
        }
        if (errno == EINTR)
            continue;
        if (errno != ENXIO)
            return molt_err_errno(err, MOLT_EIO, errno, "cannot open %s for writing", path);
        if (molt_proc_exited(d->p))
            return 0;
        int r = molt_proc_pump(d->p, -1, 0, delay, NULL, err);
        if (r < 0)
            return r;
        if (delay < FIFO_OPEN_POLL_MAX_MS)
            delay = delay * 2 > FIFO_OPEN_POLL_MAX_MS ? FIFO_OPEN_POLL_MAX_MS : delay * 2;
    }
}

/* Write all of buf to a non-blocking FIFO while pumping the module's output. 0, 1 if the
 * module stopped reading (closed its end or exited), or a negative code. */
static int write_fifo(download *d, int fd, const void *buf, size_t len, molt_err *err)
{
    const char *b = buf;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n > 0) {
            b += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EPIPE)
            return 1;
        if (n < 0 && errno != EAGAIN)
            return molt_err_errno(err, MOLT_EIO, errno, "cannot write to the update module's FIFO");
        if (molt_proc_exited(d->p))
            return 1;   /* nobody left to drain the FIFO */
        short rev = 0;
        int r = molt_proc_pump(d->p, fd, POLLOUT, -1, &rev, err);
        if (r < 0)
            return r;
        if (r == 1 && (rev & (POLLERR | POLLHUP)) && !(rev & POLLOUT))
            return 1;
    }
    return 0;
}

/* Give a module that stopped reading a moment to exit, then make sure it is gone. */
static void let_module_end(download *d)
{
    molt_err ignored;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!molt_proc_exited(d->p)) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        int64_t waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (waited >= STOPPED_READING_GRACE_MS ||
            molt_proc_pump(d->p, -1, 0, (int)(STOPPED_READING_GRACE_MS - waited), NULL,
                           &ignored) < 0)
            break;
    }
    if (!molt_proc_exited(d->p))
        molt_proc_terminate(d->p);
}

/* The error for a module that stopped before the end of the protocol; its exit status (if it
 * failed) says more than our view of the FIFOs. */
static int stopped_error(download *d, const char *what_happened, molt_err *err)
{
    int status = 0;
    molt_err wait_err;
    let_module_end(d);
    if (molt_proc_wait(d->p, &status, &wait_err) == 0 &&
        !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char how[96];
        return molt_err_set(err, MOLT_EMODULE, "%s: update module %s %s (%s)", d->call,
                            d->m->path, molt_proc_status_str(status, how, sizeof how),
                            what_happened);
    }
    return molt_err_set(err, MOLT_EPROTOCOL, "%s: update module %s %s", d->call, d->m->path,
                        what_happened);
}

/* Stream the current payload file through streams/<name>. */
static int stream_file(download *d, molt_err *err)
{
    char *fifo = molt_path_join(d->streams_dir, d->name);
    char line[NAME_MAX + 64];
    int fd = -1, r;
    if (!fifo)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory streaming %s", d->name);
    if (mkfifo(fifo, 0600) != 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "cannot create FIFO %s", fifo);
        goto out;
    }
    /* stream-next: wait until the module opens it, one line, close. */
    r = open_fifo(d, d->stream_next, &fd, err);
    if (r <= 0)
        goto out;   /* 0: exited; the caller decides between files/ and failure */
    d->started = true;
    int n;
    if (d->sizes)
        n = snprintf(line, sizeof line, "streams/%s %" PRId64 "\n", d->name, d->size);
    else
        n = snprintf(line, sizeof line, "streams/%s\n", d->name);
    r = write_fifo(d, fd, line, (size_t)n, err);
    close(fd);
    fd = -1;
    if (r < 0)
        goto out;
    if (r == 1) {
        r = stopped_error(d, "closed stream-next before reading its line", err);
        goto out;
    }
    r = open_fifo(d, fifo, &fd, err);
    if (r < 0)
        goto out;
    if (r == 0) {
        r = stopped_error(d, "started downloading, but did not finish", err);
        goto out;
    }
    fcntl(fd, F_SETPIPE_SZ, STREAM_PIPE_SIZE);   /* best effort */
    int64_t done = 0;
    for (;;) {
        const void *buf;
        ssize_t got = molt_artifact_reader_read_block(d->r, &buf, err);
        if (got < 0) {
            molt_proc_terminate(d->p);
            r = (int)got;
            molt_err_prefix(err, "%s: streaming '%s' to update module %s: ", d->call, d->name,
                            d->m->path);
            goto out;
        }
        if (got == 0)
            break;
        r = write_fifo(d, fd, buf, (size_t)got, err);
        if (r < 0)
            goto out;
        if (r == 1) {
            char what[NAME_MAX + 128];
            snprintf(what, sizeof what, "stopped reading streams/%s after %" PRId64 " of %" PRId64
                     " bytes", d->name, done, d->size);
            r = stopped_error(d, what, err);
            goto out;
        }
        done += got;
    }
    d->have_file = false;
    memcpy(d->last, d->name, sizeof d->last);
    r = 1;
out:
    if (fd >= 0)
        close(fd);
    free(fifo);
    return r;   /* 1 streamed, 0 module exited before opening, < 0 error */
}

/* Deliver the end marker: open stream-next, close it without writing. */
static int end_streams(download *d, molt_err *err)
{
    int fd = -1;
    int r = open_fifo(d, d->stream_next, &fd, err);
    if (r <= 0)
        return r;
    d->started = true;
    d->finished = true;
    close(fd);
    return 1;
}

/* Files mode: write the current and every further payload file to files/<name>, fsync'd, each
 * checked against the free space and its declared size (host/stage.c). */
static int download_to_files(download *d, molt_err *err)
{
    char *files = NULL;
    int r = 0;
    for (;;) {
        r = next_file(d, err);
        if (r < 0 || !d->have_file)
            break;
        /* files/ stays 0700 until every payload file verified (their bytes are untrusted until
         * then: docs/modules.md), then 0755 for the module. */
        if (!files && ((r = make_dir(d->m->tree, "files", &files, err)) < 0 ||
                       (r = molt_stage_private(files, true, err)) < 0))
            break;
        if ((r = molt_stage_reader_file(d->r, files, d->name, d->size, err)) < 0) {
            molt_err_prefix(err, "%s: ", d->call);
            break;
        }
        d->have_file = false;
    }
    if (r == 0 && files && (r = molt_stage_private(files, false, err)) == 0)
        r = molt_fsync_dir(files, err);
    if (r == 0)
        r = molt_fsync_dir(d->m->tree, err);
    free(files);
    return r;
}

/* The Download call with the module running: streams, or files/ when it exits 0 without ever
 * opening stream-next (docs/reference §2.5). */
static int run_download(download *d, molt_err *err)
{
    int r;
    for (;;) {
        r = next_file(d, err);
        if (r < 0) {
            molt_proc_terminate(d->p);
            molt_err_prefix(err, "%s: ", d->call);
            return r;
        }
        r = d->have_file ? stream_file(d, err) : end_streams(d, err);
        if (r < 0)
            return r;
        if (r == 0 || d->finished)
            break;
    }
    int status = 0;
    r = molt_proc_wait(d->p, &status, err);
    if (r < 0)
        return r;
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        return status_error(d->m, d->call, status, err);
    if (d->finished)
        return 0;
    if (d->started)
        return molt_err_set(err, MOLT_EPROTOCOL,
                            "%s: update module %s started downloading, but did not finish%s%s%s",
                            d->call, d->m->path, d->last[0] ? " (it exited after streams/" : "",
                            d->last, d->last[0] ? " without reading stream-next again)" : "");
    /* Never opened stream-next: the module wants the files written for it. */
    molt_log_debug("Update module %s did not read stream-next: writing the payload to files/",
                   d->m->path);
    if (unlink(d->stream_next) != 0 && errno != ENOENT)
        return molt_err_errno(err, MOLT_EIO, errno, "cannot remove %s", d->stream_next);
    r = molt_rm_rf(d->streams_dir, err);
    if (r < 0)
        return r;
    return download_to_files(d, err);
}

static int exec_download(molt_module *mm, molt_artifact_reader *r, molt_err *err)
{
    exec_module *m = (exec_module *)mm;
    download d = { .m = m, .r = r };
    char what[PATH_MAX + 64];
    molt_proc_opts o;
    int rc;
    if (!is_dir(m->tree))
        return molt_err_set(err, MOLT_ENOTFOUND, "Download: file tree %s of update module %s does "
                            "not exist", m->tree, m->path);
    molt_answer sizes;
    rc = exec_query(mm, MOLT_CALL_PROVIDE_PAYLOAD_FILE_SIZES, &sizes, err);
    if (rc < 0)
        return rc;
    d.sizes = sizes == MOLT_ANSWER_YES;
    molt_call call = d.sizes ? MOLT_CALL_DOWNLOAD_WITH_FILE_SIZES : MOLT_CALL_DOWNLOAD;
    d.call = molt_call_name(call);

    d.stream_next = molt_path_join(m->tree, "stream-next");
    d.streams_dir = molt_path_join(m->tree, "streams");
    if (!d.stream_next || !d.streams_dir) {
        rc = molt_err_set(err, MOLT_ENOMEM, "out of memory starting %s", d.call);
        goto out;
    }
    /* Leftovers of an interrupted earlier attempt would make mkfifo fail. */
    char *files = molt_path_join(m->tree, "files");
    rc = files ? molt_rm_rf(files, err) : molt_err_set(err, MOLT_ENOMEM, "out of memory");
    free(files);
    if (rc == 0)
        rc = molt_rm_rf(d.streams_dir, err);
    if (rc == 0)
        rc = molt_rm_rf(d.stream_next, err);
    if (rc < 0)
        goto out;
    if (mkfifo(d.stream_next, 0600) != 0) {
        rc = molt_err_errno(err, MOLT_EIO, errno, "cannot create FIFO %s", d.stream_next);
        goto out;
    }
    if (mkdir(d.streams_dir, 0755) != 0) {
        rc = molt_err_errno(err, MOLT_EIO, errno, "cannot create folder %s", d.streams_dir);
        goto out;
    }

    /* A module closing a FIFO early must not kill us: SIGPIPE is blocked in this thread while
     * we write (EPIPE is handled), and a SIGPIPE raised meanwhile is consumed afterwards. */
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);

    rc = spawn_call(m, call, false, what, sizeof what, &o, &d.p, err);
    if (rc == 0)
        rc = run_download(&d, err);

    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !was_pending) {
        struct timespec zero = { 0, 0 };
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
out:
    molt_proc_free(d.p);
    free(d.stream_next);
    free(d.streams_dir);
    return rc;
}

/* ---- the handle ---- */

static void exec_free(molt_module *mm)
{
    exec_module *m = (exec_module *)mm;
    if (!m)
        return;
    free(m->path);
    free(m->type);
    free(m->tree);
    free(m);
}

static const molt_module_ops exec_ops = {
    .download = exec_download,
    .call = exec_call,
    .query = exec_query,
    .free = exec_free,
};

/* An absolute form of path (the module runs with cwd = tree, so relative paths would move). */
static char *absolute(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    return molt_path_join(cwd, path);
}

int molt_exec_module_new(molt_module **ret, const char *module_path, const char *type,
                         const char *tree_dir, int timeout, molt_err *err)
{
    if (!ret || !module_path || !*module_path || !type || !tree_dir || !*tree_dir)
        return molt_err_set(err, MOLT_EINVAL, "update module handle: missing argument");
    exec_module *m = calloc(1, sizeof *m);
    if (!m)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory for update module %s", module_path);
    m->path = absolute(module_path);
    m->type = strdup(type);
    m->tree = absolute(tree_dir);
    if (!m->path || !m->type || !m->tree) {
        exec_free(&m->base);
        return molt_err_set(err, MOLT_ENOMEM, "cannot set up update module %s", module_path);
    }
    m->timeout = timeout;
    m->base.ops = &exec_ops;
    m->base.name = m->type;
    m->base.path = m->path;
    *ret = &m->base;
    return 0;
}
