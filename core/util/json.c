/* SPDX-License-Identifier: Apache-2.0 */
#include "util/json.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/encoding.h"


const char *molt_json_unknown_key(const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        const char *const *p = allowed;
        while (*p && strcmp(*p, key) != 0)
            p++;
        if (!*p)
            return key;
    }
    return NULL;
}

void molt_json_seed(void)
{
    uint32_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed && seed != 0)
        json_object_seed(seed);
}

/* ---- molt_json_dump_sorted ------------------------------------------------------------------- */

#define DUMP_DEPTH_MAX 2048
#define DUMP_KEYS_ON_STACK 32

typedef struct dump {
    char *buf;
    size_t len, cap, max; /* len and cap count from buf; max counts the text alone */
    size_t room;
    int r;                /* the first failure, 0 while none */
} dump;

static void dump_fail(dump *d, int r)
{
    if (d->r == 0)
        d->r = r;
}

static bool dump_grow(dump *d, size_t more)
{
    if (d->r < 0)
        return false;
    if (d->len - d->room + more > d->max) {
        dump_fail(d, MOLT_ELIMIT);
        return false;
    }
    if (d->len + more + 1 <= d->cap)
        return true;
    size_t cap = d->cap ? d->cap : 256;
    while (cap < d->len + more + 1)
        cap *= 2;
    char *b = realloc(d->buf, cap);
    if (!b) {
        dump_fail(d, MOLT_ENOMEM);
        return false;
    }
    d->buf = b;
    d->cap = cap;
    return true;
}

static inline void dump_put(dump *d, const char *s, size_t n)
{
    if (d->len + n + 1 <= d->cap && d->len - d->room + n <= d->max) {
        memcpy(d->buf + d->len, s, n);
        d->len += n;
    } else if (dump_grow(d, n)) {
        memcpy(d->buf + d->len, s, n);
        d->len += n;
    }
}

/* A string as jansson writes it: '"' and '\\' escaped, control characters as \b \f \n \r \t or
 * \u00XX (upper-case hex), everything else (UTF-8 included) as it is, in runs. */
static void dump_string(dump *d, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    dump_put(d, "\"", 1);
    while (i < n && d->r == 0) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = molt_utf8_sequence(s + i, n - i);
            if (k == 0)
                dump_fail(d, MOLT_EINVAL);
            i += k;
            continue;
        }
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default: len = 6;
        }
        dump_put(d, str + run, i - run);
        dump_put(d, esc, len);
        run = ++i;
    }
    dump_put(d, str + run, i - run);
    dump_put(d, "\"", 1);
}

/* An object's members in key order: insertion sort, for the dozen keys of a record's objects
 * (qsort's calls through a pointer cost more at that size). */
typedef struct member {
    const char *key;
    const json_t *value;
} member;

static int member_cmp(const void *a, const void *b)
{
    return strcmp(((const member *)a)->key, ((const member *)b)->key);
}

static void sort_members(member *m, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        member x = m[i];
        size_t j = i;
        while (j > 0 && strcmp(m[j - 1].key, x.key) > 0) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = x;
    }
}

static void dump_value(dump *d, const json_t *v, int depth)
{
    if (d->r < 0)
        return;
    if (depth > DUMP_DEPTH_MAX) {
        dump_fail(d, MOLT_EINVAL);
        return;
    }
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        member stack[DUMP_KEYS_ON_STACK];
        member *m = n <= DUMP_KEYS_ON_STACK ? stack : malloc(n * sizeof *m);
        if (!m) {
            dump_fail(d, MOLT_ENOMEM);
            return;
        }
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e) {
            m[i].key = key;
            m[i++].value = e;
        }
        if (n <= DUMP_KEYS_ON_STACK)
            sort_members(m, n);
        else
            qsort(m, n, sizeof *m, member_cmp);
        dump_put(d, "{", 1);
        for (i = 0; i < n && d->r == 0; i++) {
            if (i > 0)
                dump_put(d, ",", 1);
            dump_string(d, m[i].key, strlen(m[i].key));
            dump_put(d, ":", 1);
            dump_value(d, m[i].value, depth + 1);
        }
        dump_put(d, "}", 1);
        if (m != stack)
            free(m);
        return;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        dump_put(d, "[", 1);
        for (size_t i = 0; i < n && d->r == 0; i++) {
            if (i > 0)
                dump_put(d, ",", 1);
            dump_value(d, json_array_get(v, i), depth + 1);
        }
        dump_put(d, "]", 1);
        return;
    }
    case JSON_STRING:
        dump_string(d, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        dump_put(d, num, (size_t)n);
        return;
    }
    case JSON_REAL: {
        /* Rare in a record (only in an artifact's own meta-data): jansson's own formatting. */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
            dump_fail(d, MOLT_ENOMEM);
        else
            dump_put(d, s, strlen(s));
        free(s);
        return;
    }
    case JSON_TRUE:
        dump_put(d, "true", 4);
        return;
    case JSON_FALSE:
        dump_put(d, "false", 5);
        return;
    case JSON_NULL:
        dump_put(d, "null", 4);
        return;
    }
}

int molt_json_dump_sorted(const json_t *v, size_t room, size_t max, char **ret, size_t *ret_len)
{
    dump d = {.max = max, .room = room};
    if (!v)
        return MOLT_EINVAL;
    if (room > ((size_t)-1) / 4)
        return MOLT_ELIMIT;
    /* One allocation for a record of a few KiB: the first guess is most often right. */
    d.cap = room + 4096;
    d.buf = malloc(d.cap);
    if (!d.buf)
        return MOLT_ENOMEM;
    d.len = room;
    dump_value(&d, v, 0);
    if (d.r < 0) {
        free(d.buf);
        return d.r;
    }
    d.buf[d.len] = '\0';
    *ret = d.buf;
    *ret_len = d.len - room;
    return 0;
}
