/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the HTTP(S) artifact source against the loopback test server (tests/server): plain
 * downloads, resume with Range after a dropped connection, servers without Range support, TLS
 * verification, HTTP errors, a server that dies for good (also while the reader holds a chunk)
 * a reader that stops in the middle and a forked child that tries to read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "artifact/reader.h"
#include "transport/http_source.h"
#include "util/encoding.h"
#include "util/fs.h"
#include "util/log.h"

#define FILE_SIZE (8 * 1024 * 1024)
#define MIB 1048576
#define PAYLOAD_SIZE (4 * MIB)

/* Made once for all tests: two CAs and an artifact-sized random file. */
static struct {
    char dir[256];
    char ca[PATH_MAX];          /* signs the server certificate */
    char other_ca[PATH_MAX];    /* a second CA that signed nothing the server uses */
    char cert[PATH_MAX], key[PATH_MAX], files[PATH_MAX];
    char pubkey[PATH_MAX];      /* verifies files/signed.mender (mender-artifact, signed) */
    unsigned char *data;
    char sha[65];
} F;

typedef struct server {
    pid_t pid;
    int port;
    char log[PATH_MAX];
} server;

typedef struct result {
    int rc;
    molt_err err;
    unsigned char *buf;
    size_t len;
    int64_t total;
    double seconds;
} result;

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    molt_sha256(data, len, md);
    molt_hex_encode(md, sizeof md, out);
}

/* The certificates, the random file and the signed artifact (fx_cached: made once per build). */
static void build_files(const char *dir)
{
    const char *src = fx_src_dir();
    fx_sh("bash '%s/tests/server/make_test_ca.sh' '%s/ca' 'molt test' && "
          "bash '%s/tests/server/make_test_ca.sh' '%s/other' 'other' && mkdir '%s/files' && "
          "head -c %d /dev/urandom > '%s/files/artifact.mender'", src, dir, src, dir, dir,
          FILE_SIZE, dir);
    /* A real artifact: mender-artifact, signed, uncompressed, its payload the file's first
     * 4 MiB, so a drop at 1.5 MiB lands inside the payload. */
    fx_sh("cd '%s' && head -c %d files/artifact.mender > payload.bin && "
          "openssl genrsa -traditional -out artifact-key.pem 2048 2>/dev/null && "
          "openssl rsa -in artifact-key.pem -pubout -out artifact-key.pub 2>/dev/null && "
          "mender-artifact --compression none write module-image -T single-file -n http-1 "
          "-t test-device -f payload.bin -k artifact-key.pem -o files/signed.mender "
          ">/dev/null", dir, PAYLOAD_SIZE);
}

static int group_setup(void **state)
{
    /* Loopback requests must not go to a proxy from the environment. */
    const char *proxies[] = { "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                              "all_proxy", "ALL_PROXY" };
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    /* MOLT_TEST_VERBOSE=1 shows the retry warnings and every download's outcome. */
    molt_log_set_level(getenv("MOLT_TEST_VERBOSE") ? MOLT_LOG_DEBUG : MOLT_LOG_ERROR);

    fx_scratch(F.dir, sizeof F.dir, "http-test");
    fx_cached("test_http_source", F.dir, build_files);
    fx_path(F.ca, sizeof F.ca, "%s/ca/ca.crt", F.dir);
    fx_path(F.cert, sizeof F.cert, "%s/ca/server.crt", F.dir);
    fx_path(F.key, sizeof F.key, "%s/ca/server.key", F.dir);
    fx_path(F.other_ca, sizeof F.other_ca, "%s/other/ca.crt", F.dir);
    fx_path(F.files, sizeof F.files, "%s/files", F.dir);
    fx_path(F.pubkey, sizeof F.pubkey, "%s/artifact-key.pub", F.dir);
    char path[PATH_MAX + 32];
    size_t len;
    fx_path(path, sizeof path, "%s/artifact.mender", F.files);
    F.data = (unsigned char *)fx_read(path, &len);
    assert_int_equal(len, FILE_SIZE);
    sha256_hex(F.data, FILE_SIZE, F.sha);
    (void)state;
    return 0;
}

static int group_teardown(void **state)
{
    free(F.data);
    fx_scratch_remove(F.dir);
    (void)state;
    return 0;
}

/* Start the test server with the given extra arguments (NULL-terminated); tls or plain HTTP. */
static void server_start(server *srv, bool tls, const char *const *extra)
{
    static int serial;
    char port_file[PATH_MAX + 32], script[PATH_MAX];
    const char *argv[32];
    int argc = 0;

    snprintf(port_file, sizeof port_file, "%s/port.%d", F.dir, ++serial);
    snprintf(srv->log, sizeof srv->log, "%s/requests.%d.log", F.dir, serial);
    snprintf(script, sizeof script, "%s/tests/server/molt_test_server.py", getenv("MOLT_SRC_DIR"));
    argv[argc++] = "python3";
    argv[argc++] = script;
    argv[argc++] = "--port-file";
    argv[argc++] = port_file;
    argv[argc++] = "--files";
    argv[argc++] = F.files;
    argv[argc++] = "--log";
    argv[argc++] = srv->log;
    if (tls) {
        argv[argc++] = "--tls-cert";
        argv[argc++] = F.cert;
        argv[argc++] = "--tls-key";
        argv[argc++] = F.key;
    }
    for (; extra && *extra; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;

    srv->pid = fork();
    assert_true(srv->pid >= 0);
    if (srv->pid == 0) {
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    /* Until it wrote its port or exited, without a deadline: a busy machine may take long to
     * start python; a server that never starts is a hang ctest's TIMEOUT reports. */
    for (;;) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &srv->port);
            fclose(f);
            if (ok == 1)
                return;
        }
        int status;
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid)
            fail_msg("the test server exited at start-up (status %d)", status);
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* Stop the server (if still running) and check it exited cleanly. */
static void server_stop(server *srv)
{
    int status = 0;
    kill(srv->pid, SIGTERM);
    assert_int_equal(waitpid(srv->pid, &status, 0), srv->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static char *server_log(const server *srv)
{
    char *text = NULL;
    size_t len;
    molt_err err;
    if (molt_read_file(srv->log, 1 << 20, &text, &len, &err) != 0)
        fail_msg("%s", err.msg);
    return text;
}

/* How many lines of the log contain a (and b, unless NULL). */
static int log_count(const char *log, const char *a, const char *b)
{
    int n = 0;
    for (const char *line = log; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char copy[4096];
        snprintf(copy, sizeof copy, "%.*s", (int)len, line);
        if (strstr(copy, a) && (!b || strstr(copy, b)))
            n++;
        line += len + (end ? 1 : 0);
    }
    return n;
}

static int count_lines_with(const char *log, const char *needle)
{
    return log_count(log, needle, NULL);
}

static bool log_has(const char *log, const char *a, const char *b)
{
    return log_count(log, a, b) > 0;
}

static void make_url(char *out, size_t size, bool tls, const server *srv, const char *path)
{
    snprintf(out, size, "%s://127.0.0.1:%d/%s", tls ? "https" : "http", srv->port, path);
}

/* Read src to its end or its first error into r->buf (FILE_SIZE bytes), r->len bytes so far;
 * r->rc is 0 at the end, else the error (r->err). */
static void read_all(molt_source *src, result *r)
{
    for (;;) {
        const void *p = NULL;
        ssize_t n = molt_source_read(src, &p, &r->err);
        if (n <= 0) {
            r->rc = (int)n;
            return;
        }
        assert_true(r->len + (size_t)n <= FILE_SIZE);
        memcpy(r->buf + r->len, p, (size_t)n);
        r->len += (size_t)n;
        assert_int_equal(src->offset, (int64_t)r->len);
    }
}

/* Download url through the source, collecting every byte read. */
static void download(result *r, const char *url, const molt_http_opts *opts)
{
    struct timespec t0, t1;
    molt_source *src = NULL;
    memset(r, 0, sizeof *r);
    r->buf = malloc(FILE_SIZE);
    assert_non_null(r->buf);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r->rc = molt_http_source_new(&src, url, opts, &r->err);
    if (r->rc == 0) {
        r->total = src->total;
        assert_non_null(src->name);
        read_all(src, r);
        if (r->rc == 0) {   /* the end is sticky */
            const void *p;
            assert_int_equal(molt_source_read(src, &p, &r->err), 0);
        }
        molt_source_free(src);
    } else {
        assert_null(src);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (getenv("MOLT_TEST_VERBOSE"))
        fprintf(stderr, "download: rc %d after %zu bytes in %.2f s%s%s\n", r->rc, r->len,
                r->seconds, r->rc ? ": " : "", r->rc ? r->err.msg : "");
}

/* Start the test server (TLS or not, with args), download artifact.mender from it with opts
 * into r, and stop the server (its log stays readable with server_log). */
static void serve_and_download(server *srv, bool tls, const char *const *args,
                               const molt_http_opts *opts, result *r)
{
    char url[256];
    server_start(srv, tls, args);
    make_url(url, sizeof url, tls, srv, "artifact.mender");
    download(r, url, opts);
    server_stop(srv);
}


static void assert_complete(const result *r)
{
    char sha[65];
    if (r->rc != 0)
        fail_msg("download failed (%d): %s", r->rc, r->err.msg);
    assert_int_equal(r->total, FILE_SIZE);
    assert_int_equal(r->len, FILE_SIZE);
    sha256_hex(r->buf, r->len, sha);
    assert_string_equal(sha, F.sha);
}

static molt_http_opts test_opts(void)
{
    molt_http_opts o = { .ca_file = F.ca, .retry_count = 3, .retry_initial_interval_ms = 100,
                         .retry_max_interval = 2, .connect_timeout = 5, .low_speed_time = 5 };
    return o;
}

static void test_plain_https(void **state)
{
    server srv;
    result r;
    char url[256];
    molt_http_opts opts = test_opts();
    server_start(&srv, true, NULL);
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    download(&r, url, &opts);
    assert_complete(&r);
    server_stop(&srv);
    char *log = server_log(&srv);
    assert_int_equal(count_lines_with(log, "\"method\": \"GET\""), 1);
    assert_true(log_has(log, "\"range\": null", "\"status\": 200"));
    free(log);
    free(r.buf);
    (void)state;
}

static void test_plain_http(void **state)
{
    server srv;
    result r;
    char url[256];
    server_start(&srv, false, NULL);
    make_url(url, sizeof url, false, &srv, "artifact.mender");
    download(&r, url, NULL);   /* all defaults */
    assert_complete(&r);
    free(r.buf);

    /* https:// to a plain HTTP server: a TLS error at once, no retries. */
    molt_http_opts opts = test_opts();
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    download(&r, url, &opts);
    assert_int_equal(r.rc, MOLT_ETLS);
    assert_int_equal(r.len, 0);
    server_stop(&srv);
    free(r.buf);
    (void)state;
}

static void test_resume_after_drop(void **state)
{
    server srv;
    result r;
    molt_http_opts opts = test_opts();
    const char *args[] = { "--drop-after", "1048576", NULL };
    serve_and_download(&srv, true, args, &opts, &r);
    assert_complete(&r);
    char *log = server_log(&srv);
    assert_int_equal(count_lines_with(log, "\"method\": \"GET\""), 2);
    assert_true(log_has(log, "\"dropped\": true", "\"sent\": 1048576"));
    assert_true(log_has(log, "\"range\": \"bytes=1048576-8388607\"", "\"status\": 206"));
    free(log);
    free(r.buf);
    (void)state;
}

/* Redirects are followed, for the resumed request too (with its Range header). */
static void test_redirect_and_resume(void **state)
{
    server srv;
    result r;
    char url[256];
    molt_http_opts opts = test_opts();
    const char *args[] = { "--drop-after", "1048576", NULL };
    server_start(&srv, true, args);
    make_url(url, sizeof url, true, &srv, "_redirect/artifact.mender");
    download(&r, url, &opts);
    assert_complete(&r);
    server_stop(&srv);
    char *log = server_log(&srv);
    assert_int_equal(count_lines_with(log, "\"status\": 302"), 2);
    assert_true(log_has(log, "\"path\": \"/_redirect/artifact.mender\"",
                        "\"range\": \"bytes=1048576-8388607\""));
    assert_true(log_has(log, "\"path\": \"/artifact.mender\"",
                        "\"range\": \"bytes=1048576-8388607\", \"sent\": 7340032, \"status\": 206"));
    free(log);
    free(r.buf);
    (void)state;
}

/* Every request breaks after 3 MiB: each resume makes progress, which resets the retry count,
 * so even one allowed retry completes the download. */
static void test_resume_repeatedly(void **state)
{
    server srv;
    result r;
    molt_http_opts opts = test_opts();
    opts.retry_count = 1;
    const char *args[] = { "--drop-after", "3145728", "--drop-every", NULL };
    serve_and_download(&srv, true, args, &opts, &r);
    assert_complete(&r);
    char *log = server_log(&srv);
    assert_int_equal(count_lines_with(log, "\"method\": \"GET\""), 3);
    assert_true(log_has(log, "\"range\": \"bytes=3145728-8388607\"", "\"dropped\": true"));
    assert_true(log_has(log, "\"range\": \"bytes=6291456-8388607\"", "\"status\": 206"));
    free(log);
    free(r.buf);
    (void)state;
}

/* A server that goes silent with the connection open: the low-speed limit (1 byte/s for
 * low_speed_time) ends the stalled request and the download resumes. */
static void test_stalled_connection(void **state)
{
    server srv;
    result r;
    molt_http_opts opts = test_opts();
    opts.low_speed_time = 1;
    const char *args[] = { "--drop-after", "2097152", "--stall", NULL };
    serve_and_download(&srv, true, args, &opts, &r);
    assert_complete(&r);
    char *log = server_log(&srv);
    assert_true(log_has(log, "\"stalled\": true", "\"sent\": 2097152"));
    assert_true(log_has(log, "\"range\": \"bytes=2097152-8388607\"", "\"status\": 206"));
    free(log);
    free(r.buf);
    (void)state;
}

/* A consumer slower than low_speed_time between reads is backpressure, not a dead link: the
 * transfer is paused while the caller holds a chunk, so one request does it all. */
static void test_slow_consumer(void **state)
{
    server srv;
    char url[256];
    molt_http_opts opts = test_opts();
    opts.low_speed_time = 1;
    molt_source *src = NULL;
    molt_err err;
    unsigned char *buf = malloc(FILE_SIZE);
    size_t len = 0;
    assert_non_null(buf);
    server_start(&srv, true, NULL);
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    assert_int_equal(molt_http_source_new(&src, url, &opts, &err), 0);
    for (int i = 0;; i++) {
        const void *p;
        ssize_t n = molt_source_read(src, &p, &err);
        if (n < 0)
            fail_msg("read failed after %zu bytes: %s", len, err.msg);
        if (n == 0)
            break;
        memcpy(buf + len, p, (size_t)n);
        len += (size_t)n;
        if (i == 1) {
            struct timespec ts = { 1, 300 * 1000 * 1000 };   /* > low_speed_time */
            nanosleep(&ts, NULL);
        }
    }
    molt_source_free(src);
    assert_int_equal(len, FILE_SIZE);
    assert_memory_equal(buf, F.data, FILE_SIZE);
    server_stop(&srv);
    char *log = server_log(&srv);
    assert_int_equal(count_lines_with(log, "\"method\": \"GET\""), 1);
    free(log);
    free(buf);
    (void)state;
}

/* A server ignoring Range answers 200 with the whole file again; its ETag and Last-Modified
 * show it unchanged, so the source skips what it delivered already. */
static void test_no_range_support(void **state)
{
    server srv;
    result r;
    molt_http_opts opts = test_opts();
    const char *args[] = { "--drop-after", "1048576", "--no-range", NULL };
    serve_and_download(&srv, true, args, &opts, &r);
    assert_complete(&r);
    char *log = server_log(&srv);
    assert_int_equal(count_lines_with(log, "\"method\": \"GET\""), 2);
    assert_true(log_has(log, "\"range\": \"bytes=1048576-8388607\"", "\"status\": 200"));
    free(log);
    free(r.buf);
    (void)state;
}

/* Without validators nothing proves the new body is the same file: a clean error, and what
 * was delivered before is exactly the file's beginning. */
static void test_no_range_no_validators(void **state)
{
    server srv;
    result r;
    molt_http_opts opts = test_opts();
    const char *args[] = { "--drop-after", "1048576", "--no-range", "--no-validators", NULL };
    serve_and_download(&srv, true, args, &opts, &r);
    assert_int_equal(r.rc, MOLT_ENET);
    assert_non_null(strstr(r.err.msg, "ignored the Range request"));
    assert_int_equal(r.len, MIB);
    assert_memory_equal(r.buf, F.data, MIB);
    free(r.buf);
    (void)state;
}

/* A 206 whose Content-Range does not start where we asked is refused. */
static void test_wrong_content_range(void **state)
{
    server srv;
    result r;
    molt_http_opts opts = test_opts();
    const char *args[] = { "--drop-after", "1048576", "--range-shift", "100", NULL };
    serve_and_download(&srv, true, args, &opts, &r);
    assert_int_equal(r.rc, MOLT_ENET);
    assert_non_null(strstr(r.err.msg, "Content-Range 'bytes 1048676-8388607/8388608', expected "
                                      "'bytes 1048576-8388607/8388608'"));
    assert_int_equal(r.len, MIB);
    free(r.buf);
    (void)state;
}

static void test_wrong_ca(void **state)
{
    server srv;
    result r;
    char url[256];
    molt_http_opts opts = test_opts();
    opts.ca_file = F.other_ca;
    server_start(&srv, true, NULL);
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    download(&r, url, &opts);
    assert_int_equal(r.rc, MOLT_ETLS);
    assert_int_equal(r.len, 0);
    assert_non_null(strstr(r.err.msg, "certificate"));
    server_stop(&srv);
    char *log = server_log(&srv);
    assert_int_equal(count_lines_with(log, "\"method\""), 0);
    assert_int_equal(count_lines_with(log, "tls-handshake-failed"), 1);
    free(log);
    free(r.buf);
    (void)state;
}

static void test_http_404(void **state)
{
    server srv;
    result r;
    char url[256];
    molt_http_opts opts = test_opts();
    server_start(&srv, true, NULL);
    make_url(url, sizeof url, true, &srv, "missing.mender");
    download(&r, url, &opts);
    assert_int_equal(r.rc, MOLT_ENET);
    assert_non_null(strstr(r.err.msg, "HTTP status 404"));
    assert_non_null(strstr(r.err.msg, "/missing.mender"));
    server_stop(&srv);
    free(r.buf);
    (void)state;
}

/* A presigned URL's query (its credentials) never reaches a message. */
static void test_query_redacted(void **state)
{
    server srv;
    result r;
    char url[512];
    molt_http_opts opts = test_opts();
    const char *args[] = { "--status", "403", NULL };
    server_start(&srv, true, args);
    snprintf(url, sizeof url, "https://user:pw@127.0.0.1:%d/artifact.mender?X-Amz-Signature="
             "s3cr3t&X-Amz-Credential=k3y", srv.port);
    download(&r, url, &opts);
    assert_int_equal(r.rc, MOLT_ENET);
    assert_non_null(strstr(r.err.msg, "HTTP status 403"));
    assert_null(strstr(r.err.msg, "s3cr3t"));
    assert_null(strstr(r.err.msg, "k3y"));
    assert_null(strstr(r.err.msg, "pw@"));
    assert_non_null(strstr(r.err.msg, "/artifact.mender?<redacted>"));
    server_stop(&srv);
    char *log = server_log(&srv);   /* the query did reach the server */
    assert_int_equal(count_lines_with(log, "\"status\": 403"), 1);
    free(log);
    free(r.buf);
    (void)state;
}

/* The server goes away after 1 MiB and never comes back: the retries back off (0.1 s, then
 * 0.2 s) and give up with the position in the message. */
static void test_server_dies(void **state)
{
    server srv;
    result r;
    molt_http_opts opts = test_opts();
    opts.retry_count = 2;
    const char *args[] = { "--die-after", "1048576", NULL };
    serve_and_download(&srv, true, args, &opts, &r);
    assert_int_equal(r.rc, MOLT_ENET);
    assert_non_null(strstr(r.err.msg, "download failed after 2 retries at byte 1048576 of "
                                      "8388608"));
    assert_int_equal(r.len, MIB);
    assert_memory_equal(r.buf, F.data, MIB);
    assert_true(r.seconds >= 0.3);
    free(r.buf);
    (void)state;
}

/* The connection breaks for good while the reader is not reading (it holds its first chunk and
 * the download thread runs on: the drop, the failed retry): once it reads again it gets every
 * byte the server sent, exactly, then the error; nothing more. */
static void test_drop_while_reader_holds_a_chunk(void **state)
{
    server srv;
    char url[256];
    molt_http_opts opts = test_opts();
    opts.retry_count = 1;
    const char *args[] = { "--die-after", "524288", NULL };   /* less than the ring holds */
    molt_source *src = NULL;
    molt_err err;
    unsigned char *buf = malloc(FILE_SIZE);
    size_t len = 0;
    ssize_t n;
    assert_non_null(buf);
    server_start(&srv, true, args);
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    assert_int_equal(molt_http_source_new(&src, url, &opts, &err), 0);
    for (int i = 0;; i++) {
        const void *p;
        n = molt_source_read(src, &p, &err);
        if (n <= 0)
            break;
        assert_true(len + (size_t)n <= FILE_SIZE);
        memcpy(buf + len, p, (size_t)n);
        len += (size_t)n;
        if (i == 0) {
            /* Hold the first chunk until the server has gone. */
            int status;
            assert_int_equal(waitpid(srv.pid, &status, 0), srv.pid);
        }
    }
    assert_int_equal(n, MOLT_ENET);
    assert_non_null(strstr(err.msg, "download failed after 1 retries at byte 524288 of "
                                    "8388608"));
    assert_int_equal(len, MIB / 2);
    assert_memory_equal(buf, F.data, MIB / 2);
    const void *p;
    assert_int_equal(molt_source_read(src, &p, &err), MOLT_ENET);   /* sticky */
    molt_source_free(src);
    free(buf);
    (void)state;
}

/* The reader stops in the middle (an install refused after the first chunk): freeing the source
 * stops the download thread wherever it waits: for room in the ring, or before a retry. A
 * hang here is what ctest's TIMEOUT reports. */
static void test_free_mid_download(void **state)
{
    server srv;
    char url[256];
    molt_http_opts opts = test_opts();
    molt_source *src = NULL;
    molt_err err;
    const void *p;

    /* The ring is full and the thread waits for room. */
    server_start(&srv, true, NULL);
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    assert_int_equal(molt_http_source_new(&src, url, &opts, &err), 0);
    assert_true(molt_source_read(src, &p, &err) > 0);
    molt_source_free(src);
    server_stop(&srv);

    /* The connection broke and the thread waits 10 minutes before its retry. */
    opts.retry_initial_interval_ms = 600000;
    opts.retry_max_interval = 600;
    const char *args[] = { "--die-after", "1048576", NULL };
    char log_path[PATH_MAX + 32];   /* the retry's warning shows where the thread is */
    fx_path(log_path, sizeof log_path, "%s/free-mid-download.log", F.dir);
    assert_int_equal(molt_log_open_deployment(log_path, &err), 0);
    server_start(&srv, true, args);
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    assert_int_equal(molt_http_source_new(&src, url, &opts, &err), 0);
    size_t len = 0;
    while (len < MIB) {
        ssize_t n = molt_source_read(src, &p, &err);
        if (n <= 0)
            fail_msg("read %zd after %zu bytes: %s", n, len, err.msg);
        len += (size_t)n;
    }
    assert_int_equal(len, MIB);
    /* Until the thread has logged its retry (it waits right after), without a deadline. */
    for (;;) {
        char *text = NULL;
        size_t text_len;
        if (molt_read_file(log_path, 1 << 20, &text, &text_len, &err) == 0 &&
            strstr(text, "resuming in 600.0 s")) {
            free(text);
            break;
        }
        free(text);
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    molt_source_free(src);
    assert_int_equal(molt_log_open_deployment(NULL, &err), 0);
    int status;
    assert_int_equal(waitpid(srv.pid, &status, 0), srv.pid);
    (void)state;
}

/* The download thread stays in the process that made the source: a forked child's read fails
 * at once with a message (it neither hangs nor touches curl), and the parent reads on. */
static void test_read_in_forked_child(void **state)
{
    server srv;
    char url[256];
    molt_http_opts opts = test_opts();
    molt_source *src = NULL;
    result r = {0};
    const void *p;
    r.buf = malloc(FILE_SIZE);
    assert_non_null(r.buf);
    server_start(&srv, true, NULL);
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    assert_int_equal(molt_http_source_new(&src, url, &opts, &r.err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        molt_err cerr;
        ssize_t n = molt_source_read(src, &p, &cerr);
        bool ok = n == MOLT_EINVAL && strstr(cerr.msg, "read in a forked child") &&
                  molt_source_read(src, &p, &cerr) == MOLT_EINVAL;
        molt_source_free(src);   /* leaves the parent's thread and curl alone */
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    read_all(src, &r);
    if (r.rc != 0)
        fail_msg("read failed after %zu bytes: %s", r.len, r.err.msg);
    molt_source_free(src);
    assert_int_equal(r.len, FILE_SIZE);
    assert_memory_equal(r.buf, F.data, FILE_SIZE);
    server_stop(&srv);
    free(r.buf);
    (void)state;
}

static void test_refused_at_start(void **state)
{
    server srv;
    result r;
    char url[256];
    molt_http_opts opts = test_opts();
    /* No retries before the first answer: a retry would wait 10 minutes, a hang that ctest's
     * TIMEOUT reports (a bound on the time taken would fail on a busy machine). */
    opts.retry_initial_interval_ms = 600000;
    server_start(&srv, true, NULL);
    server_stop(&srv);   /* nothing listens on that port now */
    make_url(url, sizeof url, true, &srv, "artifact.mender");
    download(&r, url, &opts);
    assert_int_equal(r.rc, MOLT_ENET);
    free(r.buf);

    molt_source *src = NULL;
    molt_err err;
    assert_int_equal(molt_http_source_new(&src, "ftp://127.0.0.1/x", &opts, &err), MOLT_EINVAL);
    assert_null(src);
    (void)state;
}

/* A signed artifact made by mender-artifact, read and verified by the artifact reader straight
 * from the network, through a connection that breaks in the middle of the payload. */
static void test_reader_over_https(void **state)
{
    server srv;
    char url[256];
    molt_http_opts opts = test_opts();
    const char *args[] = { "--drop-after", "1572864", NULL };
    molt_source *src = NULL;
    molt_artifact_reader *reader = NULL;
    molt_err err;
    const char *keys[] = { F.pubkey };
    molt_artifact_opts aopts = { .verify_keys = keys, .n_verify_keys = 1 };
    const char *name;
    int64_t size;
    unsigned char *payload = malloc(PAYLOAD_SIZE);
    size_t len = 0;
    assert_non_null(payload);

    server_start(&srv, true, args);
    make_url(url, sizeof url, true, &srv, "signed.mender");
    if (molt_http_source_new(&src, url, &opts, &err) != 0 ||
        molt_artifact_reader_open(&reader, src, &aopts, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(molt_artifact_reader_info(reader)->name, "http-1");
    assert_int_equal(molt_artifact_reader_next(reader, &name, &size, &err), 1);
    assert_string_equal(name, "payload.bin");
    assert_int_equal(size, PAYLOAD_SIZE);
    for (;;) {
        const void *p;
        ssize_t n = molt_artifact_reader_read_block(reader, &p, &err);
        if (n < 0)
            fail_msg("reading the payload at byte %zu: %s", len, err.msg);
        if (n == 0)
            break;
        assert_true(len + (size_t)n <= PAYLOAD_SIZE);
        memcpy(payload + len, p, (size_t)n);
        len += (size_t)n;
    }
    assert_int_equal(len, PAYLOAD_SIZE);
    assert_memory_equal(payload, F.data, PAYLOAD_SIZE);
    if (molt_artifact_reader_next(reader, &name, &size, &err) != 0)
        fail_msg("after the payload: %s", err.msg);
    assert_int_equal(src->offset, src->total);
    molt_artifact_reader_free(reader);
    molt_source_free(src);
    server_stop(&srv);
    char *log = server_log(&srv);
    assert_true(log_has(log, "\"dropped\": true", "\"sent\": 1572864"));
    assert_true(log_has(log, "\"range\": \"bytes=1572864-", "\"status\": 206"));
    free(log);
    free(payload);
    (void)state;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_https),
        cmocka_unit_test(test_plain_http),
        cmocka_unit_test(test_resume_after_drop),
        cmocka_unit_test(test_resume_repeatedly),
        cmocka_unit_test(test_redirect_and_resume),
        cmocka_unit_test(test_stalled_connection),
        cmocka_unit_test(test_slow_consumer),
        cmocka_unit_test(test_no_range_support),
        cmocka_unit_test(test_no_range_no_validators),
        cmocka_unit_test(test_wrong_content_range),
        cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test(test_http_404),
        cmocka_unit_test(test_query_redacted),
        cmocka_unit_test(test_server_dies),
        cmocka_unit_test(test_drop_while_reader_holds_a_chunk),
        cmocka_unit_test(test_free_mid_download),
        cmocka_unit_test(test_read_in_forked_child),
        cmocka_unit_test(test_refused_at_start),
        cmocka_unit_test(test_reader_over_https),
    };
    return fx_run_group_tests(argc, argv, tests, group_setup, group_teardown);
}
