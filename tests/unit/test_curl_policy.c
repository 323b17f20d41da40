/* SPDX-License-Identifier: Apache-2.0 */
/* curl's policy (core/transport/curl_policy.c): which options it sets for a configuration, read
 * back through a recording easy_setopt that forwards each call to the real libcurl (so every
 * value is one libcurl accepts); a refused option stops it with an error naming the option;
 * which curl results count as a refused certificate. Then both users, for real: the artifact
 * download (molt_http_source_new) and the server client (molt_server_*) send their requests
 * through the configured proxy, a loopback listener here that records what it receives. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "server/client.h"
#include "transport/curl_lib.h"
#include "transport/curl_policy.h"
#include "transport/http_source.h"
#include "trust/device_key.h"
#include "util/fs.h"

/* ---- a recording easy_setopt ---- */

#define MAX_SET 64
typedef struct set_call {
    CURLoption opt;
    long num;            /* long options */
    char str[PATH_MAX];  /* string options (copied) */
} set_call;

static const molt_curl_lib *real;
static set_call calls[MAX_SET];
static size_t n_calls;
static CURLoption refuse_opt = (CURLoption)-1;

static bool is_string_opt(CURLoption opt)
{
    return opt == CURLOPT_PROTOCOLS_STR || opt == CURLOPT_CAINFO || opt == CURLOPT_SSLCERT ||
           opt == CURLOPT_SSLKEY || opt == CURLOPT_PROXY || opt == CURLOPT_USERAGENT;
}

static CURLcode recording_setopt(CURL *h, CURLoption opt, ...)
{
    va_list ap;
    va_start(ap, opt);
    set_call *c = &calls[n_calls < MAX_SET ? n_calls : MAX_SET - 1];
    memset(c, 0, sizeof *c);
    c->opt = opt;
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT) {
        c->num = va_arg(ap, long);
        rc = real->easy_setopt(h, opt, c->num);
    } else {
        const char *s = va_arg(ap, const char *);
        assert_true(is_string_opt(opt));   /* the policy sets no other pointer */
        snprintf(c->str, sizeof c->str, "%s", s);
        rc = real->easy_setopt(h, opt, s);
    }
    va_end(ap);
    n_calls++;
    if (opt == refuse_opt)
        return CURLE_UNKNOWN_OPTION;
    return rc;
}

static molt_curl_lib spy;
static CURL *handle;

static int group_setup(void **state)
{
    (void)state;
    if (molt_curl_get(&real, NULL) != 0)
        return -1;
    spy = *real;
    spy.easy_setopt = recording_setopt;
    handle = real->easy_init();
    return handle ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    real->easy_cleanup(handle);
    return 0;
}

static void apply(const molt_curl_policy *p)
{
    n_calls = 0;
    real->easy_reset(handle);
    molt_err err = {0};
    if (molt_curl_policy_apply(&spy, handle, p, "GET https://x/", &err) != 0)
        fail_msg("%s", err.msg);
}

static const set_call *find(CURLoption opt)
{
    const set_call *found = NULL;
    for (size_t i = 0; i < n_calls; i++)
        if (calls[i].opt == opt) {
            assert_null(found);   /* each option once */
            found = &calls[i];
        }
    return found;
}

static void assert_num(CURLoption opt, long want)
{
    const set_call *c = find(opt);
    if (!c)
        fail_msg("option %d not set", (int)opt);
    assert_int_equal(c->num, want);
}

static void assert_str(CURLoption opt, const char *want)
{
    const set_call *c = find(opt);
    if (!c)
        fail_msg("option %d not set", (int)opt);
    assert_string_equal(c->str, want);
}

/* What holds whatever the configuration says. */
static void assert_fixed(void)
{
    assert_num(CURLOPT_NOSIGNAL, 1);
    assert_str(CURLOPT_PROTOCOLS_STR, "http,https");
    assert_num(CURLOPT_SSL_VERIFYPEER, 1);
    assert_num(CURLOPT_SSL_VERIFYHOST, 2);
    assert_num(CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
    assert_num(CURLOPT_LOW_SPEED_LIMIT, 1);
    assert_num(CURLOPT_TCP_KEEPALIVE, 1);
    assert_str(CURLOPT_USERAGENT, "molt/" MOLT_VERSION);
}

/* Nothing configured: the defaults, no CA file, no client certificate, no proxy (libcurl's
 * environment variables then), no bound on the whole transfer. */
static void test_defaults(void **state)
{
    (void)state;
    molt_curl_policy p = {0};
    apply(&p);
    assert_fixed();
    assert_num(CURLOPT_CONNECTTIMEOUT, MOLT_CURL_CONNECT_TIMEOUT);
    assert_num(CURLOPT_LOW_SPEED_TIME, MOLT_CURL_LOW_SPEED_TIME);
    assert_int_equal(MOLT_CURL_CONNECT_TIMEOUT, 30);
    assert_int_equal(MOLT_CURL_LOW_SPEED_TIME, 60);
    assert_null(find(CURLOPT_CAINFO));
    assert_null(find(CURLOPT_SSLCERT));
    assert_null(find(CURLOPT_SSLKEY));
    assert_null(find(CURLOPT_PROXY));
    assert_null(find(CURLOPT_TIMEOUT));
    assert_int_equal(n_calls, 10);
}

/* Everything configured: each value reaches its option. */
static void test_configured(void **state)
{
    (void)state;
    molt_curl_policy p = {
        .ca_file = "/etc/molt/ca.pem",
        .client_cert = "/etc/molt/dev.crt",
        .client_key = "/etc/molt/dev.key",
        .proxy = "http://proxy.example:3128",
        .connect_timeout = 7,
        .low_speed_time = 9,
        .request_timeout = 11,
    };
    apply(&p);
    assert_fixed();
    assert_str(CURLOPT_CAINFO, "/etc/molt/ca.pem");
    assert_str(CURLOPT_SSLCERT, "/etc/molt/dev.crt");
    assert_str(CURLOPT_SSLKEY, "/etc/molt/dev.key");
    assert_str(CURLOPT_PROXY, "http://proxy.example:3128");
    assert_num(CURLOPT_CONNECTTIMEOUT, 7);
    assert_num(CURLOPT_LOW_SPEED_TIME, 9);
    assert_num(CURLOPT_TIMEOUT, 11);
    assert_int_equal(n_calls, 15);
}

/* An option libcurl refuses: MOLT_ENET naming it and the request, nothing set after it. */
static void test_refused_option(void **state)
{
    (void)state;
    molt_curl_policy p = {.proxy = "http://proxy.example:3128"};
    molt_err err = {0};
    n_calls = 0;
    refuse_opt = CURLOPT_PROXY;
    int r = molt_curl_policy_apply(&spy, handle, &p, "GET https://x/", &err);
    refuse_opt = (CURLoption)-1;
    assert_int_equal(r, MOLT_ENET);
    assert_non_null(strstr(err.msg, "GET https://x/: setting up libcurl: CURLOPT_PROXY: "));
    assert_int_equal(calls[n_calls - 1].opt, CURLOPT_PROXY);
    assert_null(find(CURLOPT_USERAGENT));
}

static void test_tls_refused(void **state)
{
    (void)state;
    assert_true(molt_curl_tls_refused(CURLE_PEER_FAILED_VERIFICATION));
    assert_true(molt_curl_tls_refused(CURLE_SSL_CACERT_BADFILE));
    assert_true(molt_curl_tls_refused(CURLE_SSL_CERTPROBLEM));
    assert_true(molt_curl_tls_refused(CURLE_SSL_ISSUER_ERROR));
    assert_false(molt_curl_tls_refused(CURLE_OK));
    assert_false(molt_curl_tls_refused(CURLE_COULDNT_CONNECT));
    assert_false(molt_curl_tls_refused(CURLE_OPERATION_TIMEDOUT));
    assert_false(molt_curl_tls_refused(CURLE_SSL_CONNECT_ERROR));   /* a handshake, not a refusal */
}

/* ---- both users send through the configured proxy ---- */

/* A loopback "proxy": accepts one connection, writes what it received (up to the end of the
 * headers) to the pipe, answers 404 and exits. Returns its port. */
static int proxy_start(pid_t *ret_pid, int *ret_fd)
{
    int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fds[2];
    assert_true(srv >= 0);
    assert_int_equal(bind(srv, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(srv, 4), 0);
    assert_int_equal(getsockname(srv, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        int c = accept(srv, NULL, NULL);
        char buf[8192];
        size_t got = 0;
        while (c >= 0 && got < sizeof buf - 1) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        if (write(fds[1], buf, got) != (ssize_t)got)
            _exit(1);
        static const char answer[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                     "Connection: close\r\n\r\n";
        if (c >= 0 && write(c, answer, sizeof answer - 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(srv);
    close(fds[1]);
    *ret_pid = pid;
    *ret_fd = fds[0];
    return ntohs(a.sin_port);
}

/* What the proxy received; reaps it. A request that never came to it would leave it waiting:
 * a connection of our own, with a marker, ends its wait (when it has served the request
 * already, it is gone or never accepts this one). */
static void proxy_seen(pid_t pid, int fd, int port, char *out, size_t size)
{
    size_t got = 0;
    ssize_t n;
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(c >= 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a) == 0) {
        static const char marker[] = "NOTHING CAME\r\n\r\n";
        if (write(c, marker, sizeof marker - 1) < 0)
            fail_msg("write to the proxy");
    }
    while (got < size - 1 && (n = read(fd, out + got, size - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fd);
    close(c);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void unset_proxy_env(void)
{
    const char *names[] = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                           "ALL_PROXY", "no_proxy", "NO_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

/* The artifact download: an absolute-form GET to the proxy, and the 404 it answered. */
static void test_http_source_uses_proxy(void **state)
{
    (void)state;
    unset_proxy_env();
    pid_t pid;
    int fd;
    char proxy[64], seen[8192];
    int port = proxy_start(&pid, &fd);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);
    molt_http_opts o = {.proxy = proxy, .retry_count = 1, .retry_initial_interval_ms = 1};
    molt_source *src = NULL;
    molt_err err = {0};
    int r = molt_http_source_new(&src, "http://artifacts.invalid/a.mender", &o, &err);
    proxy_seen(pid, fd, port, seen, sizeof seen);
    assert_true(r < 0);
    assert_null(src);
    assert_non_null(strstr(err.msg, "404"));
    assert_memory_equal(seen, "GET http://artifacts.invalid/a.mender HTTP/1.1\r\n", 48);
    assert_non_null(strstr(seen, "\r\nUser-Agent: molt/" MOLT_VERSION "\r\n"));
}

/* The server client: its authentication request goes to the proxy too. */
static void test_server_client_uses_proxy(void **state)
{
    (void)state;
    unset_proxy_env();
    char dir[] = "/tmp/molt-curl-policy-XXXXXX", key_path[64], proxy[64], seen[8192];
    assert_non_null(mkdtemp(dir));
    snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
    molt_device_key *key = NULL;
    assert_int_equal(molt_device_key_load(&key, key_path, MOLT_KEY_ED25519, NULL), 0);
    pid_t pid;
    int fd;
    int port = proxy_start(&pid, &fd);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);
    molt_server_opts o = {.url = "http://server.invalid", .identity_json = "{\"mac\":\"x\"}",
                          .key = key, .proxy = proxy};
    molt_server *s = NULL;
    molt_err err = {0};
    assert_int_equal(molt_server_new(&s, &o, &err), 0);
    int r = molt_server_authenticate(s, &err);
    proxy_seen(pid, fd, port, seen, sizeof seen);
    assert_true(r < 0);
    assert_int_equal(molt_server_last_status(s), 404);
    static const char line[] =
        "POST http://server.invalid/api/devices/v1/authentication/auth_requests HTTP/1.1\r\n";
    assert_memory_equal(seen, line, sizeof line - 1);
    assert_non_null(strstr(seen, "\r\nUser-Agent: molt/" MOLT_VERSION "\r\n"));
    molt_server_free(s);
    molt_device_key_free(key);
    molt_rm_rf(dir, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_configured),
        cmocka_unit_test(test_refused_option),
        cmocka_unit_test(test_tls_refused),
        cmocka_unit_test(test_http_source_uses_proxy),
        cmocka_unit_test(test_server_client_uses_proxy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
