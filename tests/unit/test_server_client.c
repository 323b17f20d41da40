/* SPDX-License-Identifier: Apache-2.0 */
/* The device API client against a scripted loopback HTTP server (a thread here): the exact
 * auth body bytes and headers of docs/reference §3.1, 401 while pending, the token in later calls,
 * re-authentication once on 401, the v2 -> v1 fallback with the query encoded, 204, Retry-After
 * in seconds and as an HTTP date, 409 -> MOLT_ECANCELED, 413 -> MOLT_ELIMIT, a token that is
 * not printable text refused. */
#include "fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "server/client.h"
#include "trust/device_key.h"
#include "util/fs.h"

#define MAX_EXCHANGES 16

typedef struct exchange {
    const char *answer;        /* the whole response, verbatim (Connection: close added) */
    char request[8192];        /* what came: request line, headers, body */
} exchange;

typedef struct server {
    int fd;
    int port;
    exchange ex[MAX_EXCHANGES];
    int n, done;
    pthread_t thread;
} server;

/* One request per connection: read headers and Content-Length bytes, answer, close. */
static void *serve(void *arg)
{
    server *sv = arg;
    while (sv->done < sv->n) {
        int c = accept(sv->fd, NULL, NULL);
        if (c < 0)
            break;
        exchange *x = &sv->ex[sv->done];
        size_t got = 0;
        char *end = NULL;
        while (got < sizeof x->request - 1) {
            ssize_t r = read(c, x->request + got, sizeof x->request - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            x->request[got] = '\0';
            end = strstr(x->request, "\r\n\r\n");
            if (end) {
                const char *cl = strcasestr(x->request, "Content-Length:");
                size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
                if (got >= (size_t)(end + 4 - x->request) + want)
                    break;
            }
        }
        char resp[4096];
        const char *head_end = strstr(x->answer, "\r\n");
        snprintf(resp, sizeof resp, "%.*s\r\nConnection: close%s", (int)(head_end - x->answer),
                 x->answer, head_end);
        if (write(c, resp, strlen(resp)) < 0)
            break;
        close(c);
        sv->done++;
    }
    return NULL;
}

static void start(server *sv, const char *const *answers, int n)
{
    memset(sv, 0, sizeof *sv);
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(sv->fd, (struct sockaddr *)&a, &len), 0);
    sv->port = ntohs(a.sin_port);
    assert_int_equal(listen(sv->fd, 8), 0);
    for (int i = 0; i < n; i++)
        sv->ex[i].answer = answers[i];
    sv->n = n;
    assert_int_equal(pthread_create(&sv->thread, NULL, serve, sv), 0);
}

static void stop(server *sv)
{
    shutdown(sv->fd, SHUT_RDWR);
    close(sv->fd);
    pthread_join(sv->thread, NULL);
}

static const char *body_of(const exchange *x)
{
    const char *b = strstr(x->request, "\r\n\r\n");
    return b ? b + 4 : "";
}

typedef struct fixture {
    char dir[64];
    molt_device_key *key;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char path[128];
    assert_non_null(f);
    strcpy(f->dir, "/tmp/molt-client-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof path, "%s/key.pem", f->dir);
    assert_int_equal(molt_device_key_load(&f->key, path, MOLT_KEY_ED25519, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    molt_device_key_free(f->key);
    molt_rm_rf(f->dir, NULL);
    free(f);
    return 0;
}

static molt_server *client(fixture *f, const server *sv, const char *tenant)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", sv->port);
    molt_server_opts o = {.url = url, .tenant_token = tenant,
                          .identity_json = "{\"mac\":\"52:54:00:12:34:56\"}", .key = f->key};
    molt_server *s = NULL;
    assert_int_equal(molt_server_new(&s, &o, NULL), 0);
    return s;
}

static const char ok_token[] = "HTTP/1.1 200 OK\r\nContent-Type: application/jwt\r\n"
                               "Content-Length: 9\r\n\r\ntoken-abc";
static const char no_content[] = "HTTP/1.1 204 No Content\r\n\r\n";

static void test_auth_body(void **state)
{
    fixture *f = *state;
    server sv;
    const char *answers[] = {
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 21\r\n\r\n{\"error\":\"pending x\"}",
        ok_token,
        no_content,
    };
    start(&sv, answers, 3);
    molt_server *s = client(f, &sv, NULL);
    molt_err err = {0};
    assert_int_equal(molt_server_authenticate(s, &err), MOLT_ESTATE);
    assert_non_null(strstr(err.msg, "pending x"));
    assert_false(molt_server_authenticated(s));
    assert_int_equal(molt_server_authenticate(s, &err), 0);
    assert_true(molt_server_authenticated(s));
    assert_int_equal(molt_server_status(s, "dep-1", "downloading", &err), 0);
    molt_server_free(s);
    stop(&sv);

    char *pem = NULL, *want = NULL;
    assert_int_equal(molt_device_key_public_pem(f->key, &pem, NULL), 0);
    /* The exact bytes: keys sorted, no spaces, id_data a JSON string, no tenant_token. */
    json_t *pj = json_string(pem);
    char *pem_json = json_dumps(pj, JSON_ENCODE_ANY);
    assert_true(asprintf(&want, "{\"id_data\":\"{\\\"mac\\\":\\\"52:54:00:12:34:56\\\"}\","
                                "\"pubkey\":%s}", pem_json) > 0);
    assert_string_equal(body_of(&sv.ex[0]), want);
    assert_string_equal(body_of(&sv.ex[1]), want);
    assert_true(strncmp(sv.ex[0].request, "POST /api/devices/v1/authentication/auth_requests "
                        "HTTP/1.1\r\n", 59) == 0);
    assert_non_null(strcasestr(sv.ex[0].request, "\r\nX-MEN-Signature: "));
    assert_non_null(strcasestr(sv.ex[0].request, "\r\nContent-Type: application/json\r\n"));
    assert_null(strcasestr(sv.ex[0].request, "\r\nAuthorization:"));
    /* Later calls: the token, and the status body exactly. */
    assert_true(strncmp(sv.ex[2].request, "PUT /api/devices/v1/deployments/device/deployments/"
                        "dep-1/status HTTP/1.1\r\n", 69) == 0);
    assert_non_null(strcasestr(sv.ex[2].request, "\r\nAuthorization: Bearer token-abc\r\n"));
    assert_string_equal(body_of(&sv.ex[2]), "{\"status\":\"downloading\"}");
    free(want);
    free(pem_json);
    json_decref(pj);
    free(pem);
}

static void test_tenant_and_reauth(void **state)
{
    fixture *f = *state;
    server sv;
    const char *answers[] = {
        ok_token,
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ntoken-new",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    };
    start(&sv, answers, 4);
    molt_server *s = client(f, &sv, "tenant-1");
    molt_err err = {0};
    json_t *attrs = json_pack("[{s:s, s:s}]", "name", "a", "value", "b");
    assert_int_equal(molt_server_inventory(s, attrs, &err), 0);
    json_decref(attrs);
    assert_int_equal(molt_server_auth_count(s), 2);
    molt_server_free(s);
    stop(&sv);
    assert_non_null(strstr(body_of(&sv.ex[0]), ",\"tenant_token\":\"tenant-1\"}"));
    assert_non_null(strcasestr(sv.ex[1].request, "Authorization: Bearer token-abc\r\n"));
    assert_true(strncmp(sv.ex[2].request, "POST /api/devices/v1/authentication/", 36) == 0);
    assert_non_null(strcasestr(sv.ex[3].request, "Authorization: Bearer token-new\r\n"));
    assert_string_equal(body_of(&sv.ex[3]), "[{\"name\":\"a\",\"value\":\"b\"}]");
}

static void test_next(void **state)
{
    fixture *f = *state;
    server sv;
    const char *answers[] = {
        ok_token,
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 82\r\n\r\n"
        "{\"id\":\"d-9\",\"artifact\":{\"artifact_name\":\"r 2\",\"source\":{\"uri\":\"https://s/x?a=1\"}}}",
        "HTTP/1.1 204 No Content\r\n\r\n",
    };
    start(&sv, answers, 4);
    molt_server *s = client(f, &sv, NULL);
    molt_err err = {0};
    json_t *prov = json_pack("{s:s, s:s}", "artifact_name", "a&b c", "device_type", "dev/x");
    molt_server_deployment *d = NULL;
    assert_int_equal(molt_server_next(s, prov, &d, &err), 0);
    assert_non_null(d);
    assert_string_equal(d->id, "d-9");
    assert_string_equal(d->uri, "https://s/x?a=1");
    assert_string_equal(d->artifact_name, "r 2");
    molt_server_deployment_free(d);
    d = (molt_server_deployment *)1;
    json_decref(prov);
    prov = json_pack("{s:s, s:s}", "artifact_name", "n", "device_type", "t");
    /* v2 again: 204 straight away */
    assert_int_equal(molt_server_next(s, prov, &d, &err), 0);
    assert_null(d);
    json_decref(prov);
    molt_server_free(s);
    stop(&sv);
    assert_true(strncmp(sv.ex[1].request,
                        "POST /api/devices/v2/deployments/device/deployments/next HTTP/1.1", 65) == 0);
    assert_string_equal(body_of(&sv.ex[1]),
                        "{\"device_provides\":{\"artifact_name\":\"a&b c\",\"device_type\":\"dev/x\"}}");
    assert_true(strncmp(sv.ex[2].request, "GET /api/devices/v1/deployments/device/deployments/"
                        "next?artifact_name=a%26b%20c&device_type=dev%2Fx HTTP/1.1", 101) == 0);
}

static void test_errors(void **state)
{
    fixture *f = *state;
    server sv;
    char date_answer[256];
    char date[64];
    time_t later = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&later, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(date_answer, sizeof date_answer,
             "HTTP/1.1 503 Unavailable\r\nRetry-After: %s\r\nContent-Length: 0\r\n\r\n", date);
    const char *answers[] = {
        ok_token,
        "HTTP/1.1 429 Too Many\r\nRetry-After: 17\r\nContent-Length: 0\r\n\r\n",
        date_answer,
        "HTTP/1.1 409 Conflict\r\nContent-Length: 22\r\n\r\n{\"error\":\"was aborted\"}",
        "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    };
    start(&sv, answers, 6);
    molt_server *s = client(f, &sv, NULL);
    molt_err err = {0};
    assert_int_equal(molt_server_status(s, "d", "installing", &err), MOLT_ENET);
    assert_int_equal(molt_server_retry_after(s), 17);
    assert_int_equal(molt_server_status(s, "d", "installing", &err), MOLT_ENET);
    assert_in_range(molt_server_retry_after(s), 110, 121);
    assert_int_equal(molt_server_status(s, "d", "installing", &err), MOLT_ECANCELED);
    assert_non_null(strstr(err.msg, "aborted"));
    assert_int_equal(molt_server_log(s, "d", "{\"messages\":[]}", 15, &err), MOLT_ELIMIT);
    /* a 200 to a status PUT is taken (some servers), 204 is the documented one */
    assert_int_equal(molt_server_status(s, "d", "success", &err), 0);
    molt_server_free(s);
    stop(&sv);
}

static void test_bad_token(void **state)
{
    fixture *f = *state;
    server sv;
    const char *answers[] = {"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nab\x01" "cdef"};
    start(&sv, answers, 1);
    molt_server *s = client(f, &sv, NULL);
    molt_err err = {0};
    assert_int_equal(molt_server_authenticate(s, &err), MOLT_EPROTOCOL);
    assert_false(molt_server_authenticated(s));
    molt_server_free(s);
    stop(&sv);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_and_reauth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_token, setup, teardown),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
