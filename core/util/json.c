/* SPDX-License-Identifier: Apache-2.0 */
#include "util/json.h"

#include <limits.h>
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

static void dump_fail(molt_json_text *d, int r)
{
    if (d->r == 0)
        d->r = r;
}

static bool dump_grow(molt_json_text *d, size_t more)
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

static inline void dump_put(molt_json_text *d, const char *s, size_t n)
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
static void dump_string(molt_json_text *d, const char *str, size_t n)
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

static void dump_value(molt_json_text *d, const json_t *v, int depth)
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

void molt_json_text_init(molt_json_text *t, size_t room, size_t max)
{
    *t = (molt_json_text){.max = max, .room = room};
    if (room > ((size_t)-1) / 4) {
        t->r = MOLT_ELIMIT;
        return;
    }
    /* One allocation for a record of a few KiB: the first guess is most often right. */
    t->cap = room + 4096;
    t->buf = malloc(t->cap);
    if (!t->buf)
        t->r = MOLT_ENOMEM;
    t->len = room;
}

void molt_json_text_raw(molt_json_text *t, const char *s)
{
    dump_put(t, s, strlen(s));
}

void molt_json_text_key(molt_json_text *t, const char *key)
{
    if (t->len > t->room && t->buf[t->len - 1] != '{')
        dump_put(t, ",", 1);
    dump_string(t, key, strlen(key));
    dump_put(t, ":", 1);
}

void molt_json_text_string(molt_json_text *t, const char *s)
{
    if (s)
        dump_string(t, s, strlen(s));
    else
        dump_put(t, "null", 4);
}

void molt_json_text_int(molt_json_text *t, long long i)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", i);
    dump_put(t, num, (size_t)n);
}

void molt_json_text_bool(molt_json_text *t, bool b)
{
    dump_put(t, b ? "true" : "false", b ? 4 : 5);
}

void molt_json_text_value(molt_json_text *t, const json_t *v)
{
    if (v)
        dump_value(t, v, 0);
    else
        dump_put(t, "null", 4);
}

void molt_json_text_fail(molt_json_text *t, int r)
{
    dump_fail(t, r);
}

int molt_json_text_finish(molt_json_text *t, char **ret, size_t *ret_len)
{
    if (t->r < 0) {
        free(t->buf);
        t->buf = NULL;
        return t->r;
    }
    t->buf[t->len] = '\0';
    *ret = t->buf;
    *ret_len = t->len - t->room;
    t->buf = NULL;
    return 0;
}

int molt_json_dump_sorted(const json_t *v, size_t room, size_t max, char **ret, size_t *ret_len)
{
    if (!v)
        return MOLT_EINVAL;
    molt_json_text t;
    molt_json_text_init(&t, room, max);
    molt_json_text_value(&t, v);
    return molt_json_text_finish(&t, ret, ret_len);
}

/* ---- molt_json_loadb ------------------------------------------------------------------------- */

/* The parser's depth limit, below jansson's (JSON_PARSER_MAX_DEPTH, 2048): deeper text is left
 * to jansson. */
#define LOAD_DEPTH_MAX 1024

typedef struct load {
    const unsigned char *p, *end;
    bool bad;   /* refused: jansson decides */
} load;

static void skip_space(load *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* A string after its opening quote: *ret (malloc'd, NUL-terminated, no NUL inside), *ret_len.
 * A plain run (no escape) is copied at once; escapes are decoded as jansson does, \u0000 and
 * unpaired surrogates refused. */
static char *load_string(load *l, size_t *ret_len)
{
    const unsigned char *start = l->p;
    bool escapes = false;
    while (l->p < l->end && *l->p != '"') {
        unsigned char c = *l->p;
        if (c < 0x20) {
            l->bad = true;
            return NULL;
        }
        if (c == '\\') {
            escapes = true;
            l->p += 2;
            continue;
        }
        if (c >= 0x80) {
            size_t k = molt_utf8_sequence(l->p, (size_t)(l->end - l->p));
            if (k == 0) {
                l->bad = true;
                return NULL;
            }
            l->p += k;
            continue;
        }
        l->p++;
    }
    if (l->p >= l->end) {
        l->bad = true;
        return NULL;
    }
    size_t n = (size_t)(l->p - start);
    l->p++;   /* the closing quote */
    char *out = malloc(n + 1), *o = out;
    if (!out) {
        l->bad = true;
        return NULL;
    }
    if (!escapes) {
        memcpy(out, start, n);
        out[n] = '\0';
        *ret_len = n;
        return out;
    }
    for (const unsigned char *q = start, *e = start + n; q < e;) {
        if (*q != '\\') {
            *o++ = (char)*q++;
            continue;
        }
        q++;
        unsigned char c = *q++;
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            int32_t cp = e - q >= 4 ? hex4(q) : -1;
            if (cp < 0)
                goto bad;
            q += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int32_t lo = e - q >= 6 && q[0] == '\\' && q[1] == 'u' ? hex4(q + 2) : -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    goto bad;
                q += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
                goto bad;
            }
            /* Never longer than the escape it comes from (6 or 12 bytes). */
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xc0 | cp >> 6);
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xe0 | cp >> 12);
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *o++ = (char)(0xf0 | cp >> 18);
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default:
            goto bad;
        }
    }
    *o = '\0';
    *ret_len = (size_t)(o - out);
    return out;
bad:
    free(out);
    l->bad = true;
    return NULL;
}

/* An integer as jansson reads one: -?(0|[1-9][0-9]*) within json_int_t. Anything else a number
 * may be (a fraction, an exponent: a real) is left to jansson. */
static json_t *load_number(load *l)
{
    const unsigned char *p = l->p;
    bool neg = p < l->end && *p == '-';
    if (neg)
        p++;
    const unsigned char *digits = p;
    unsigned long long v = 0;
    while (p < l->end && *p >= '0' && *p <= '9') {
        if (v > (ULLONG_MAX - 9) / 10) {
            l->bad = true;
            return NULL;
        }
        v = v * 10 + (unsigned)(*p++ - '0');
    }
    size_t n = (size_t)(p - digits);
    if (n == 0 || (n > 1 && *digits == '0') ||
        (p < l->end && (*p == '.' || *p == 'e' || *p == 'E')) ||
        v > (neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX)) {
        l->bad = true;
        return NULL;
    }
    l->p = p;
    json_int_t i = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(json_int_t)v)
                       : (json_int_t)v;
    return json_integer(i);
}

static bool load_word(load *l, const char *w, size_t n)
{
    if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n) != 0)
        return false;
    l->p += n;
    return true;
}

static json_t *load_value(load *l, int depth);

/* At the start of an object or an array (first, after its opening bracket) or after one of its
 * members: 1 when a member follows (after a ','; at the start, anything but the closing bracket),
 * 0 for the closing bracket (taken, as a ',' is), -1 for anything else. */
static int load_next(load *l, char close, bool first)
{
    skip_space(l);
    if (l->p < l->end && *l->p == close) {
        l->p++;
        return 0;
    }
    if (first)
        return 1;
    if (l->p < l->end && *l->p == ',') {
        l->p++;
        return 1;
    }
    return -1;
}

static json_t *load_object(load *l, int depth)
{
    json_t *o = json_object();
    int next = o ? load_next(l, '}', true) : -1;
    while (next > 0) {
        next = -1;
        skip_space(l);
        if (l->p >= l->end || *l->p != '"')
            break;
        l->p++;
        size_t klen = 0;
        char *key = load_string(l, &klen);
        if (!key)
            break;
        skip_space(l);
        json_t *v = NULL;
        if (l->p < l->end && *l->p == ':') {
            l->p++;
            skip_space(l);
            v = load_value(l, depth + 1);
        }
        /* A duplicate key is refused (JSON_REJECT_DUPLICATES). */
        if (v && json_object_getn(o, key, klen)) {
            json_decref(v);
            v = NULL;
        }
        /* json_object_setn_new_nocheck takes v, also when it fails. */
        int set = v ? json_object_setn_new_nocheck(o, key, klen, v) : -1;
        free(key);
        if (set == 0)
            next = load_next(l, '}', false);
    }
    if (next == 0)
        return o;
    l->bad = true;
    json_decref(o);
    return NULL;
}

static json_t *load_array(load *l, int depth)
{
    json_t *a = json_array();
    int next = a ? load_next(l, ']', true) : -1;
    while (next > 0) {
        skip_space(l);
        json_t *v = load_value(l, depth + 1);
        next = v && json_array_append_new(a, v) == 0 ? load_next(l, ']', false) : -1;
    }
    if (next == 0)
        return a;
    l->bad = true;
    json_decref(a);
    return NULL;
}

static json_t *load_value(load *l, int depth)
{
    if (depth > LOAD_DEPTH_MAX || l->p >= l->end) {
        l->bad = true;
        return NULL;
    }
    json_t *v = NULL;
    switch (*l->p) {
    case '{':
        l->p++;
        return load_object(l, depth);
    case '[':
        l->p++;
        return load_array(l, depth);
    case '"': {
        l->p++;
        size_t n = 0;
        char *s = load_string(l, &n);
        v = s ? json_stringn_nocheck(s, n) : NULL;
        free(s);
        break;
    }
    case 't':
        v = load_word(l, "true", 4) ? json_true() : NULL;
        break;
    case 'f':
        v = load_word(l, "false", 5) ? json_false() : NULL;
        break;
    case 'n':
        v = load_word(l, "null", 4) ? json_null() : NULL;
        break;
    default:
        v = load_number(l);
    }
    if (!v)
        l->bad = true;
    return v;
}

json_t *molt_json_loadb(const char *text, size_t len, json_error_t *error)
{
    load l = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len};
    skip_space(&l);
    json_t *v = NULL;
    if (l.p < l.end && (*l.p == '{' || *l.p == '['))
        v = load_value(&l, 1);
    skip_space(&l);
    if (v && !l.bad && l.p == l.end)
        return v;
    json_decref(v);
    return json_loadb(text, len, JSON_REJECT_DUPLICATES, error);
}
