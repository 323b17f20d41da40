/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON helpers (core/util/json.h). molt_json_dump_sorted must make the bytes of jansson's
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY), which every store record was
 * written with before it: checked on the store corpus (tests/fuzz/corpus/store), on values that
 * take every escape, UTF-8 of each length, reals, the integers' ends, empty and large objects
 * and deep nesting, and on random documents from a fixed seed; then its refusals (a string that
 * is not UTF-8, a text longer than max) and the room left before the text. */
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

static void test_store_corpus(void **state)
{
    (void)state;
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
        json_t *v = json_load_file(path, JSON_DECODE_ANY, NULL);
        if (!v)
            continue;   /* the corpus also holds inputs that are not JSON */
        same_as_jansson(v);
        json_decref(v);
        seen++;
    }
    closedir(d);
    assert_true(seen >= 10);
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

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_corpus),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_random_documents),
        cmocka_unit_test(test_refusals_and_room),
    };
    return fx_run_group_tests(argc, argv, tests, NULL, NULL);
}
