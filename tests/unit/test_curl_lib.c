/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl loaded on demand (core/transport/curl_lib.h): a process that has not used HTTP has
 * no libcurl mapped; the first molt_curl_get maps it and the table works (version, escaping,
 * setopt with a long, a string and an off_t, getinfo, getdate); a missing library is one clear
 * MOLT_EUNSUPPORTED naming it, returned by molt_http_source_new and molt_server_new too (the
 * library named by molt_curl_set_soname, a test hook; no environment variable picks it). Each
 * case runs in a forked child so the load-once state starts empty. */
#include "fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "server/client.h"
#include "transport/curl_lib.h"
#include "transport/http_source.h"

/* True if a mapping of the process names libcurl. */
static bool libcurl_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    bool found = false;
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strstr(line, "/libcurl"))
            found = true;
    fclose(f);
    return found;
}

/* Run fn in a child that loads soname (NULL: the default, libcurl.so.4) on first use; the
 * child's assertions decide its exit status. */
static void in_child(void (*fn)(void), const char *soname)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        molt_curl_set_soname(soname);
        fn();
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void child_loads(void)
{
    if (libcurl_mapped())
        _exit(10);   /* mapped before anything asked for it */
    const molt_curl_lib *c = NULL;
    molt_err e = {0};
    if (molt_curl_get(&c, &e) != 0 || !c || !libcurl_mapped())
        _exit(11);
    const molt_curl_lib *again = NULL;
    if (molt_curl_get(&again, &e) != 0 || again != c)
        _exit(12);
    curl_version_info_data *v = c->version_info(CURLVERSION_NOW);
    if (!v || v->version_num < 0x075300)
        _exit(13);
    CURL *h = c->easy_init();
    char *esc = h ? c->easy_escape(h, "a b/c", 0) : NULL;
    if (!esc || strcmp(esc, "a%20b%2Fc") != 0)
        _exit(14);
    c->free(esc);
    /* setopt with a long, a string and an off_t option, and getinfo */
    if (c->easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        c->easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:1/") != CURLE_OK ||
        c->easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)1 << 40) != CURLE_OK ||
        c->easy_setopt(h, (CURLoption)(CURLOPTTYPE_LONG + 9999), 1L) != CURLE_UNKNOWN_OPTION)
        _exit(15);
    char *url = NULL;
    if (c->easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || !url ||
        strcmp(url, "http://127.0.0.1:1/") != 0)
        _exit(16);
    if (c->getdate("Sun, 06 Nov 1994 08:49:37 GMT", NULL) != 784111777)
        _exit(17);
    c->easy_cleanup(h);
}

static void test_loaded_on_first_use(void **state)
{
    (void)state;
    in_child(child_loads, NULL);
}

static void child_missing(void)
{
    const molt_curl_lib *c = NULL;
    molt_err e = {0};
    if (molt_curl_get(&c, &e) != MOLT_EUNSUPPORTED || c)
        _exit(20);
    if (!strstr(e.msg, "libcurl") || !strstr(e.msg, "libmolt-no-such-curl.so.9"))
        _exit(21);
    molt_source *src = NULL;
    molt_err e2 = {0};
    if (molt_http_source_new(&src, "http://127.0.0.1:1/a.mender", NULL, &e2) !=
            MOLT_EUNSUPPORTED || src || strcmp(e.msg, e2.msg) != 0)
        _exit(22);
    /* the server client gets the same error (the key is only stored, never used here) */
    static const char not_a_key;
    molt_server_opts so = {.url = "https://127.0.0.1:1", .identity_json = "{}",
                           .key = (const molt_device_key *)(const void *)&not_a_key};
    molt_server *srv = NULL;
    molt_err e3 = {0};
    if (molt_server_new(&srv, &so, &e3) != MOLT_EUNSUPPORTED || srv || strcmp(e.msg, e3.msg) != 0)
        _exit(23);
    if (libcurl_mapped())
        _exit(24);
}

static void test_missing_library(void **state)
{
    (void)state;
    in_child(child_missing, "libmolt-no-such-curl.so.9");
}

/* The environment does not pick the library (MOLT_LIBCURL did, before): libcurl.so.4 is
 * loaded whatever it says. */
static void child_env_ignored(void)
{
    setenv("MOLT_LIBCURL", "libmolt-no-such-curl.so.9", 1);
    const molt_curl_lib *c = NULL;
    molt_err e = {0};
    if (molt_curl_get(&c, &e) != 0 || !c || !libcurl_mapped())
        _exit(40);
}

static void test_environment_does_not_pick(void **state)
{
    (void)state;
    in_child(child_env_ignored, NULL);
}

/* Not an http(s) URL: refused before libcurl is loaded. */
static void child_not_http(void)
{
    molt_source *src = NULL;
    molt_err e = {0};
    if (molt_http_source_new(&src, "file:///etc/passwd", NULL, &e) != MOLT_EINVAL ||
        libcurl_mapped())
        _exit(30);
}

static void test_not_http_does_not_load(void **state)
{
    (void)state;
    in_child(child_not_http, NULL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded_on_first_use),
        cmocka_unit_test(test_missing_library),
        cmocka_unit_test(test_not_http_does_not_load),
        cmocka_unit_test(test_environment_does_not_pick),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
