/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON helpers (core/util/json.h). molt_json_dump_sorted must make the bytes of jansson's
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY), which every store record was
 * written with before it: checked on the store corpus (tests/fuzz/corpus/store), on values that
 * take every escape, UTF-8 of each length, reals, the integers' ends, empty and large objects
 * and deep nesting, and on random documents from a fixed seed; then its refusals (a string that
 * is not UTF-8, a text longer than max) and the room left before the text. molt_json_loadb
 * must give what json_loadb(JSON_REJECT_DUPLICATES) gives, value or refusal, on the same
 * documents, on texts that break each rule of the grammar, and on random mutations of them. */
#include "fixture.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

/* v dumped both ways must give the same bytes; room bytes before the text are left alone. */
static void same_as_jansson(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_non_null(want);
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(molt_json_dump_sorted(v, 7, (size_t)-1 / 8, &got, &len), 0);
    if (len != strlen(want) || memcmp(got + 7, want, len) != 0)
        fail_msg("dump differs:\n got %.*s\nwant %s", (int)len, got + 7, want);
    assert_int_equal(got[7 + len], '\0');
    free(got);
    free(want);
}

/* fn on each file of the store's fuzz corpus (tests/fuzz/corpus/store); the count. */
static int each_corpus_file(void (*fn)(const char *text, size_t len))
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/store", fx_src_dir());
    DIR *d = opendir(dir);
    assert_non_null(d);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *text = fx_read(path, &len);
        fn(text, len);
        free(text);
        seen++;
    }
    closedir(d);
    return seen;
}

static void dumps_as_jansson(const char *text, size_t len)
{
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (v)   /* the corpus also holds inputs that are not JSON */
        same_as_jansson(v);
    json_decref(v);
}

static void test_store_corpus(void **state)
{
    (void)state;
    assert_true(each_corpus_file(dumps_as_jansson) >= 10);
}

static void test_values(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{}", "[]", "\"\"", "null", "true", "false", "0", "-1",
        "9223372036854775807", "-9223372036854775808",
        "0.5", "-1.25e-300", "1e300", "3.0", "123456789.123456789", "[1.0,2.5e10,-0.0]",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\\u0020\\u007f\"",
        "\"\\u00e9 \\u20ac \\ud83d\\ude00 caf\\u00e9\"",
        "{\"b\":1,\"a\":2,\"\\u00e9\":3,\"A\":4,\"a\\n\":5,\"\":6,\"ab\":7,\"a b\":8}",
        "{\"x\":{\"z\":[],\"y\":{}},\"w\":[{\"b\":null,\"a\":[true,false]}]}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"deep\"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_error_t jerr;
        json_t *v = json_loads(texts[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!v)
            fail_msg("%s: %s", texts[i], jerr.text);
        same_as_jansson(v);
        json_decref(v);
    }
    /* An object of more keys than the sorter keeps on its stack, inserted in reverse. */
    json_t *o = json_object();
    for (int i = 200; i > 0; i--) {
        char key[16];
        snprintf(key, sizeof key, "k%03d", i * 7 % 211);
        json_object_set_new(o, key, json_integer(i));
    }
    same_as_jansson(o);
    json_decref(o);
    /* Every byte below 0x80 in a string and in a key. */
    char all[128];
    for (int i = 0; i < 127; i++)
        all[i] = (char)(i + 1);
    all[127] = '\0';
    json_t *s = json_pack("{s:s}", all, all);
    assert_non_null(s);
    same_as_jansson(s);
    json_decref(s);
}

static json_t *random_string(void)
{
    static const char *const pieces[] = {"a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01",
                                         "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80", "name", "0"};
    char buf[64] = "";
    int n = (int)(fx_rng() % 8);
    for (int i = 0; i < n; i++)
        strcat(buf, pieces[fx_rng() % (sizeof pieces / sizeof pieces[0])]);
    return json_string(buf);
}

static json_t *random_value(int depth)
{
    switch (fx_rng() % (depth > 4 ? 6 : 8)) {
    case 0: return json_null();
    case 1: return json_boolean(fx_rng() % 2);
    case 2: return json_integer((json_int_t)fx_rng());
    case 3: return json_real((double)(int64_t)fx_rng() / (double)(1 + fx_rng() % 100000));
    case 4:
    case 5: return random_string();
    case 6: {
        json_t *a = json_array();
        for (int n = (int)(fx_rng() % 5); n > 0; n--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (int n = (int)(fx_rng() % 6); n > 0; n--) {
            json_t *k = random_string();
            json_object_set_new(o, json_string_value(k), random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void test_random_documents(void **state)
{
    (void)state;
    for (int i = 0; i < 2000; i++) {
        json_t *v = random_value(0);
        assert_non_null(v);
        same_as_jansson(v);
        json_decref(v);
    }
}

static void test_refusals_and_room(void **state)
{
    (void)state;
    char *got = (char *)"untouched";
    size_t len = 99;
    /* Not UTF-8 (jansson's checked constructors refuse it; the unchecked one lets it in). */
    static const char *const bad[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "ab\xc3", "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_pack("{s:[o]}", "k", json_string_nocheck(bad[i]));
        assert_non_null(v);
        assert_null(json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS));
        assert_int_equal(molt_json_dump_sorted(v, 0, 1024, &got, &len), MOLT_EINVAL);
        json_decref(v);
    }
    /* max counts the text alone: exactly max bytes pass, one more does not. */
    json_t *v = json_pack("{s:s}", "key", "0123456789");   /* {"key":"0123456789"}: 20 bytes */
    assert_int_equal(molt_json_dump_sorted(v, 0, 19, &got, &len), MOLT_ELIMIT);
    assert_int_equal(molt_json_dump_sorted(v, 100, 19, &got, &len), MOLT_ELIMIT);
    assert_string_equal(got, "untouched");
    assert_int_equal(len, 99);
    assert_int_equal(molt_json_dump_sorted(v, 100, 20, &got, &len), 0);
    assert_int_equal(len, 20);
    assert_string_equal(got + 100, "{\"key\":\"0123456789\"}");
    free(got);
    /* A text far longer than the first buffer: grown. */
    json_t *a = json_array();
    for (int i = 0; i < 5000; i++)
        json_array_append(a, v);
    same_as_jansson(a);
    json_decref(a);
    json_decref(v);
}

/* text parsed both ways: both refused, or the same value. */
static void loads_as_jansson(const char *text, size_t len)
{
    json_t *want = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    json_error_t jerr;
    json_t *got = molt_json_loadb(text, len, &jerr);
    if (!want != !got || (want && !json_equal(want, got)))
        fail_msg("molt_json_loadb %s what jansson %s: %.*s", got ? "accepts" : "refuses",
                 want ? "accepts" : "refuses", (int)len, text);
    if (!got)
        assert_true(jerr.text[0] != '\0');   /* jansson's message */
    json_decref(got);
    json_decref(want);
}

static void test_load_rules(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{}", "[]", " \t\r\n{ } \n", "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1,\"b\":1}}",
        "[0]", "[-0]", "[01]", "[-]", "[+1]", "[1.]", "[.5]", "[1.5]", "[1e5]", "[1E+5]",
        "[-1e-5]", "[9223372036854775807]", "[9223372036854775808]", "[-9223372036854775808]",
        "[-9223372036854775809]", "[99999999999999999999999]", "[1x]", "[1 2]",
        "[\"\\u0000\"]", "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]",
        "[\"\\ud83d\\ude00\"]", "[\"\\u00E9\\u20AC\"]", "[\"\\u12\"]", "[\"\\u12G4\"]",
        "[\"\\x\"]", "[\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"]", "[\"\x01\"]", "[\"\x7f\"]",
        "[\"\xc3\xa9\"]", "[\"\xc0\x80\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]",
        "[\"\xe2\x82\"]", "[\"abc", "[\"abc\\", "[tru]", "[true", "[truex]", "[nul]",
        "[null,false,true]", "{\"a\" 1}", "{\"a\":1,}", "{,}", "{\"a\"}", "{1:2}", "[1,]",
        "[,1]", "[] x", "[]]", "1", "\"s\"", "null", "", "   ", "{\"\\u0000\":1}",
        "{\"\xc3\xa9\":\"\xc3\xa9\"}", "[\"a\\u0000b\"]", "{\"a\":[{\"b\":[]}],\"c\":{}}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        loads_as_jansson(texts[i], strlen(texts[i]));
    loads_as_jansson("[\"a\0b\"]", 7);
    loads_as_jansson("[1]\0", 4);
    /* Nesting: deeper than molt's own parser takes (jansson's verdict), and than jansson's. */
    static const size_t depths[] = {1000, 1025, 2047, 2048, 2049, 3000};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        char *deep = malloc(2 * depths[i]);
        assert_non_null(deep);
        memset(deep, '[', depths[i]);
        memset(deep + depths[i], ']', depths[i]);
        loads_as_jansson(deep, 2 * depths[i]);
        free(deep);
    }
}

static void test_load_documents(void **state)
{
    (void)state;
    each_corpus_file(loads_as_jansson);
    /* Random documents, written compact, indented and as ASCII (\u escapes, surrogate pairs),
     * then each mutated: a byte replaced by one that matters to the grammar, or cut short. */
    static const char tricky[] = "\"\\u0D8,:}] {[\x00\x1f\x80\xc3\xed\xff-.eE+1x";
    static const size_t flags[] = {JSON_COMPACT, JSON_INDENT(2), JSON_ENSURE_ASCII};
    for (int i = 0; i < 3000; i++) {
        json_t *v = json_pack("{s:o}", "k", random_value(0));
        assert_non_null(v);
        char *text = json_dumps(v, flags[i % 3] | JSON_SORT_KEYS);
        assert_non_null(text);
        size_t len = strlen(text);
        loads_as_jansson(text, len);
        for (int m = 0; m < 8; m++) {
            char *t = strdup(text);
            assert_non_null(t);
            size_t at = (size_t)(fx_rng() % len), n = len;
            if (m == 0)
                n = at;
            else
                t[at] = tricky[fx_rng() % (sizeof tricky - 1)];
            loads_as_jansson(t, n);
            free(t);
        }
        json_decref(v);
        free(text);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_corpus),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_random_documents),
        cmocka_unit_test(test_refusals_and_room),
        cmocka_unit_test(test_load_rules),
        cmocka_unit_test(test_load_documents),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
