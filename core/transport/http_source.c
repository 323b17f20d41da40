/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP(S) artifact source: libcurl's multi interface driven from read(), so the artifact
 * reader pulls bytes straight from the network; broken connections resume with Range. */
#include "transport/http_source.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "transport/curl_lib.h"
#include "transport/curl_policy.h"
#include "util/log.h"

/* Bytes buffered between the network and the reader. The write callback pauses the transfer
 * when a chunk does not fit, so this is the most we hold whatever the server sends. */
#define BUF_SIZE (1024 * 1024)
/* libcurl hands at most CURLOPT_BUFFERSIZE bytes per write call; should a bigger chunk arrive
 * into an empty buffer we grow once, but never past this. */
#define BUF_MAX (16 * 1024 * 1024)
#define CURL_RECV_SIZE (128 * 1024)
#define MAX_REDIRECTS 5L
#define VALIDATOR_MAX 256
/* How long one curl_multi_poll may sleep; curl's own timeouts bound the total. */
#define POLL_MS 1000

enum {
    DEFAULT_RETRY_COUNT = 10,
    DEFAULT_RETRY_INITIAL = 1,
    DEFAULT_RETRY_MAX = 300,
};

/* What the end of one request means for the download. */
enum outcome { OUTCOME_EOF, OUTCOME_RETRY };

typedef struct http_source {
    molt_source base;            /* first member: molt_source_free() frees through it */
    const molt_curl_lib *c;      /* libcurl, loaded on first use */
    CURLM *multi;
    CURL *easy;
    char *url;                   /* full URL, never printed: the query may hold credentials */
    molt_http_opts opts;

    unsigned char *buf;          /* bytes received and not yet handed out */
    size_t cap, len;
    bool paused;                 /* the easy handle is paused (by us or by the write callback) */
    bool handed_out;             /* buf was returned by read(): the caller is done with it at
                                  * the next call */
    bool attached;               /* the easy handle is in the multi handle */

    /* The download as a whole. */
    int64_t received;            /* resource offset of the next byte the network delivers */
    char etag[VALIDATOR_MAX];    /* validators of the first response ("" = absent) */
    char last_modified[VALIDATOR_MAX];
    int attempts;                /* retries since the last byte arrived */
    int64_t last_data_ms;        /* when the last body byte came, or read() was called again */
    int64_t interval_ms;         /* wait before the next retry */
    int64_t initial_interval_ms;
    bool eof;
    molt_err fatal;              /* sticky: once set, every read returns it */

    /* The current request. */
    bool is_resume;              /* sent with a Range header */
    bool checked;                /* headers of the final response checked */
    bool location_seen;          /* the response being parsed carries a Location */
    bool done;                   /* curl finished the transfer */
    CURLcode result;
    int64_t skip;                /* body bytes to drop (a 200 answering a Range request) */
    molt_err req_err;            /* why this request's response was refused */
    bool req_err_retryable;
    char range[64];
    char errbuf[CURL_ERROR_SIZE];
} http_source;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *molt_http_redact_url(const char *url)
{
    size_t cut = strcspn(url, "?#");
    const char *sep = strstr(url, "://");
    const char *host = sep && (size_t)(sep - url) < cut ? sep + 3 : url;
    const char *host_end = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *p = host; p < host_end; p++)
        if (*p == '@')
            at = p;
    const char *rest = at ? at + 1 : host;
    size_t out_len = (size_t)(host - url) + 4 + (size_t)(url + cut - rest) + 12;
    char *out = malloc(out_len);
    if (!out)
        return NULL;
    snprintf(out, out_len, "%.*s%s%.*s%s", (int)(host - url), url, at ? "***@" : "",
             (int)(url + cut - rest), rest, url[cut] == '?' ? "?<redacted>" : "");
    return out;
}

/* Copy the value of header name of the last response into out ("" when absent). */
static void get_header(http_source *s, const char *name, char *out, size_t out_size)
{
    struct curl_header *h = NULL;
    out[0] = '\0';
    if (s->c->easy_header(s->easy, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h && h->value)
        snprintf(out, out_size, "%s", h->value);
}

/* Parse "bytes START-END/TOTAL" strictly. */
static bool parse_content_range(const char *v, int64_t *start, int64_t *end, int64_t *total)
{
    if (strncasecmp(v, "bytes ", 6) != 0)
        return false;
    const char *p = v + 6;
    int64_t nums[3];
    for (int i = 0; i < 3; i++) {
        if (!isdigit((unsigned char)*p))
            return false;
        char *endp;
        errno = 0;
        long long n = strtoll(p, &endp, 10);
        if (errno)
            return false;
        nums[i] = n;
        p = endp;
        if (i < 2 && *p++ != (i == 0 ? '-' : '/'))
            return false;
    }
    if (*p != '\0' || nums[0] > nums[1] || nums[1] >= nums[2])
        return false;
    *start = nums[0];
    *end = nums[1];
    *total = nums[2];
    return true;
}

static bool status_is_transient(long code)
{
    return code >= 500 || code == 408 || code == 429;
}

/* Refuse the current response: non-retryable errors end the download. */
#define refuse(s, retryable, ...) \
    ((s)->req_err_retryable = (retryable), molt_err_set(&(s)->req_err, MOLT_ENET, __VA_ARGS__))

/* The validators of a 200 answering a Range request prove the resource unchanged when at least
 * one is present on both responses and none differs. */
static bool validators_match(const http_source *s, const char *etag, const char *lm)
{
    bool etag_both = s->etag[0] && etag[0];
    bool lm_both = s->last_modified[0] && lm[0];
    if (etag_both && strcmp(s->etag, etag) != 0)
        return false;
    if (lm_both && strcmp(s->last_modified, lm) != 0)
        return false;
    /* A weak ETag ("W/") alone does not promise identical bytes. */
    bool strong_etag = etag_both && strncmp(etag, "W/", 2) != 0;
    return strong_etag || lm_both;
}

/* Check the final response of the current request once its headers are complete. */
static int check_response(http_source *s)
{
    long code = 0;
    curl_off_t clen = -1;
    char etag[VALIDATOR_MAX], lm[VALIDATOR_MAX], crange[128];
    s->checked = true;
    s->last_data_ms = now_ms();
    s->c->easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    s->c->easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
    get_header(s, "ETag", etag, sizeof etag);
    get_header(s, "Last-Modified", lm, sizeof lm);

    if (!s->is_resume) {
        if (code != 200)
            return refuse(s, false, "GET %s: HTTP status %ld, expected 200", s->base.name, code);
        s->base.total = clen >= 0 ? (int64_t)clen : -1;
        memcpy(s->etag, etag, sizeof etag);
        memcpy(s->last_modified, lm, sizeof lm);
        return 0;
    }

    if (code == 206) {
        int64_t start, end, total;
        get_header(s, "Content-Range", crange, sizeof crange);
        if (!parse_content_range(crange, &start, &end, &total) || start != s->received ||
            total != s->base.total)
            return refuse(s, false,
                          "resuming %s at byte %" PRId64 ": server answered 206 with "
                          "Content-Range '%s', expected 'bytes %" PRId64 "-%" PRId64 "/%" PRId64
                          "'", s->base.name, s->received, crange, s->received,
                          s->base.total - 1, s->base.total);
        if (s->etag[0] && etag[0] && strcmp(s->etag, etag) != 0)
            return refuse(s, false, "resuming %s: the artifact changed on the server (ETag %s, "
                          "was %s)", s->base.name, etag, s->etag);
        return 0;
    }
    if (code == 200) {
        /* The server ignores Range and sends everything again. The reader has consumed the
         * first bytes already, so drop them from the new body, but only when the validators
         * show it is the same resource. */
        if (clen != (curl_off_t)s->base.total || !validators_match(s, etag, lm))
            return refuse(s, false,
                          "resuming %s at byte %" PRId64 ": the server ignored the Range request "
                          "(status 200) and its ETag/Last-Modified do not show the artifact "
                          "unchanged, so the download cannot continue", s->base.name,
                          s->received);
        molt_log_warning("%s: the server does not support Range requests; downloading again "
                         "and skipping the first %" PRId64 " bytes", s->base.name, s->received);
        s->skip = s->received;
        return 0;
    }
    return refuse(s, status_is_transient(code),
                  "resuming %s at byte %" PRId64 ": HTTP status %ld, expected 206", s->base.name,
                  s->received, code);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    http_source *s = userdata;
    size_t len = size * nmemb;
    if (len >= 5 && strncasecmp(line, "HTTP/", 5) == 0) {
        s->location_seen = false;
    } else if (len >= 9 && strncasecmp(line, "Location:", 9) == 0) {
        s->location_seen = true;
    } else if ((len == 2 && line[0] == '\r') || (len == 1 && line[0] == '\n')) {
        long code = 0;
        s->c->easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
        /* Interim responses, redirects that curl follows and a proxy's answer to CONNECT
         * (the server's code is still 0 then) are not the answer. */
        if (code == 0 || code / 100 == 1 || (code / 100 == 3 && s->location_seen) || s->checked)
            return len;
        if (check_response(s) < 0)
            return 0;   /* aborts the transfer before any body byte */
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_source *s = userdata;
    size_t n = size * nmemb;
    if (!s->checked && check_response(s) < 0)
        return 0;
    if (s->req_err.code)
        return 0;
    size_t drop = s->skip > 0 ? (s->skip < (int64_t)n ? (size_t)s->skip : n) : 0;
    size_t keep = n - drop;
    if (keep > s->cap - s->len) {
        if (s->len > 0) {
            /* curl keeps the whole chunk and delivers it again after unpausing, so nothing of
             * it (not even the skipped part) counts as consumed. */
            s->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
        unsigned char *bigger = keep <= BUF_MAX ? realloc(s->buf, keep) : NULL;
        if (!bigger) {
            molt_err_set(&s->req_err, MOLT_ENOMEM, "GET %s: cannot buffer a chunk of %zu bytes",
                         s->base.name, keep);
            s->req_err_retryable = false;
            return 0;
        }
        s->buf = bigger;
        s->cap = keep;
    }
    if (s->base.total >= 0 && s->received + (int64_t)keep > s->base.total) {
        refuse(s, false, "GET %s: the server sent more than the %" PRId64 " bytes it announced",
               s->base.name, s->base.total);
        return 0;
    }
    s->skip -= (int64_t)drop;
    memcpy(s->buf + s->len, data + drop, keep);
    s->len += keep;
    s->received += (int64_t)keep;
    if (n > 0)
        s->last_data_ms = now_ms();
    if (keep > 0) {
        s->attempts = 0;
        s->interval_ms = s->initial_interval_ms;
    }
    return n;
}

/* curl's message for the last transfer, with the detail from the error buffer when there is one. */
static const char *curl_message(http_source *s, CURLcode rc, char *out, size_t out_size)
{
    if (s->errbuf[0])
        snprintf(out, out_size, "%s", s->errbuf);
    else
        snprintf(out, out_size, "%s", s->c->easy_strerror(rc));
    return out;
}

/* Start a request for the bytes from s->received on (the whole resource when not resuming). */
static int start_request(http_source *s, bool resume, molt_err *err)
{
    if (s->attached)
        s->c->multi_remove_handle(s->multi, s->easy);
    s->attached = false;
    s->is_resume = resume;
    s->checked = false;
    s->location_seen = false;
    s->done = false;
    s->result = CURLE_OK;
    s->skip = 0;
    s->paused = false;
    molt_err_clear(&s->req_err);
    s->req_err_retryable = false;
    s->errbuf[0] = '\0';
    if (resume) {
        snprintf(s->range, sizeof s->range, "%" PRId64 "-%" PRId64, s->received,
                 s->base.total - 1);
        s->c->easy_setopt(s->easy, CURLOPT_RANGE, s->range);
    }
    CURLMcode mc = s->c->multi_add_handle(s->multi, s->easy);
    if (mc != CURLM_OK)
        return molt_err_set(err, MOLT_ENET, "GET %s: %s", s->base.name, s->c->multi_strerror(mc));
    s->attached = true;
    return 0;
}

/* Run curl once, and wait for socket activity when that produced nothing for the caller:
 * no data, no end of transfer and, with want_headers, no checked response. */
static int drive(http_source *s, bool want_headers, molt_err *err)
{
    int running = 0;
    CURLMcode mc = s->c->multi_perform(s->multi, &running);
    if (mc != CURLM_OK)
        return molt_err_set(err, MOLT_ENET, "GET %s: %s", s->base.name, s->c->multi_strerror(mc));
    CURLMsg *msg;
    int queued;
    while ((msg = s->c->multi_info_read(s->multi, &queued))) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == s->easy) {
            s->done = true;
            s->result = msg->data.result;
        }
    }
    if (s->done || s->len > 0 || (want_headers && s->checked))
        return 0;
    int timeout = POLL_MS;
    if (s->checked && !s->req_err.code) {
        /* curl's low-speed check averages over several seconds; a body that stops for
         * low_speed_time seconds is dead now. Time with the caller holding a chunk (and the
         * transfer paused) does not count: read() restarts the clock. */
        int64_t left = s->last_data_ms + (int64_t)s->opts.low_speed_time * 1000 - now_ms();
        if (left <= 0) {
            snprintf(s->errbuf, sizeof s->errbuf, "no data for %d s", s->opts.low_speed_time);
            s->done = true;
            s->result = CURLE_OPERATION_TIMEDOUT;
            return 0;
        }
        if (left < timeout)
            timeout = (int)left;
    }
    mc = s->c->multi_poll(s->multi, NULL, 0, timeout, NULL);
    if (mc != CURLM_OK)
        return molt_err_set(err, MOLT_ENET, "GET %s: %s", s->base.name, s->c->multi_strerror(mc));
    return 0;
}

/* Decide what the finished request means: the end of the download, a broken connection to
 * retry (OUTCOME_RETRY, with the reason in s->req_err), or an error. */
static int finish_request(http_source *s, molt_err *err)
{
    char detail[CURL_ERROR_SIZE + 64];
    if (s->req_err.code) {
        if (!s->req_err_retryable) {
            *err = s->req_err;
            return err->code;
        }
        return OUTCOME_RETRY;
    }
    if (s->result != CURLE_OK) {
        curl_message(s, s->result, detail, sizeof detail);
        if (molt_curl_tls_refused(s->result))
            return molt_err_set(err, MOLT_ETLS, "GET %s: TLS verification failed: %s",
                                s->base.name, detail);
        if (!s->is_resume && s->result == CURLE_SSL_CONNECT_ERROR)
            return molt_err_set(err, MOLT_ETLS, "GET %s: TLS handshake failed: %s",
                                s->base.name, detail);
        if (!s->is_resume && !s->checked)
            return molt_err_set(err, MOLT_ENET, "GET %s: %s", s->base.name, detail);
        refuse(s, true, "%s", detail);
        return OUTCOME_RETRY;
    }
    if (!s->checked && check_response(s) < 0)
        return finish_request(s, err);
    if (s->base.total >= 0 && s->received < s->base.total) {
        refuse(s, true, "connection closed early");
        return OUTCOME_RETRY;
    }
    return OUTCOME_EOF;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* After a broken connection: wait with backoff and ask for the rest. */
static int resume(http_source *s, molt_err *err)
{
    if (s->base.total < 0)
        return molt_err_set(err, MOLT_ENET,
                            "GET %s: connection broken at byte %" PRId64 " (%s) and the server "
                            "sent no Content-Length, so the download cannot resume",
                            s->base.name, s->received, s->req_err.msg);
    if (s->attempts >= s->opts.retry_count)
        return molt_err_set(err, MOLT_ENET,
                            "GET %s: download failed after %d retries at byte %" PRId64 " of %"
                            PRId64 ": %s", s->base.name, s->attempts, s->received,
                            s->base.total, s->req_err.msg);
    s->attempts++;
    molt_log_warning("GET %s: broken at byte %" PRId64 " of %" PRId64 " (%s); resuming in %.1f s "
                     "(retry %d of %d)", s->base.name, s->received, s->base.total,
                     s->req_err.msg, (double)s->interval_ms / 1000, s->attempts,
                     s->opts.retry_count);
    sleep_ms(s->interval_ms);
    s->interval_ms *= 2;
    if (s->interval_ms > (int64_t)s->opts.retry_max_interval * 1000)
        s->interval_ms = (int64_t)s->opts.retry_max_interval * 1000;
    return start_request(s, true, err);
}

static ssize_t http_read(molt_source *src, const void **ret_buf, molt_err *err)
{
    http_source *s = (http_source *)src;
    int rc = 0;
    if (s->fatal.code) {
        if (err)
            *err = s->fatal;
        return s->fatal.code;
    }
    if (s->handed_out) {
        s->len = 0;   /* the caller is done with the previous chunk */
        s->handed_out = false;
    }
    s->last_data_ms = now_ms();
    for (;;) {
        if (s->paused && !s->done) {
            s->paused = false;
            s->c->easy_pause(s->easy, CURLPAUSE_CONT);   /* may deliver held data at once */
        }
        if (s->len > 0)
            break;
        if (s->eof)
            return 0;
        if (s->done) {
            rc = finish_request(s, &s->fatal);
            if (rc == OUTCOME_EOF) {
                s->eof = true;
                return 0;
            }
            if (rc == OUTCOME_RETRY)
                rc = resume(s, &s->fatal);
            if (rc < 0)
                goto fail;
            continue;
        }
        rc = drive(s, false, &s->fatal);
        if (rc < 0)
            goto fail;
    }
    /* Hold the transfer while the caller works, so a slow consumer is backpressure, not a
     * stalled download that trips the low-speed limit. */
    if (!s->done && !s->paused) {
        s->c->easy_pause(s->easy, CURLPAUSE_RECV);
        s->paused = true;
    }
    *ret_buf = s->buf;
    s->handed_out = true;
    s->base.offset += (int64_t)s->len;
    return (ssize_t)s->len;

fail:
    s->fatal.code = rc;
    if (err)
        *err = s->fatal;
    return rc;
}

static void http_free(molt_source *src)
{
    http_source *s = (http_source *)src;
    if (!s)
        return;
    if (s->attached)
        s->c->multi_remove_handle(s->multi, s->easy);
    if (s->easy)
        s->c->easy_cleanup(s->easy);
    if (s->multi)
        s->c->multi_cleanup(s->multi);
    free(s->buf);
    free(s->url);
    free((char *)s->base.name);
    free(s);
}

static int opt_or(int value, int fallback)
{
    return value > 0 ? value : fallback;
}

static int setup_easy(http_source *s, const molt_http_opts *opts, molt_err *err)
{
    CURL *e = s->easy;
    const molt_curl_policy policy = {
        .ca_file = opts->ca_file,
        .proxy = opts->proxy,
        .connect_timeout = opts->connect_timeout,
        .low_speed_time = s->opts.low_speed_time,
    };
    int r = molt_curl_policy_apply(s->c, e, &policy, s->base.name, err);
    if (r < 0)
        return r;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    do { if (rc == CURLE_OK) rc = s->c->easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, s->url);
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_BUFFERSIZE, (long)CURL_RECV_SIZE);
    SET(CURLOPT_ERRORBUFFER, s->errbuf);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, s);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, s);
#undef SET
    if (rc != CURLE_OK)
        return molt_err_set(err, MOLT_ENET, "GET %s: setting up libcurl: %s", s->base.name,
                            s->c->easy_strerror(rc));
    return 0;
}

int molt_http_source_new(molt_source **ret, const char *url, const molt_http_opts *opts,
                         molt_err *err)
{
    static const molt_http_opts defaults = { 0 };
    http_source *s = NULL;
    int rc = 0;

    if (!ret || !url)
        return molt_err_set(err, MOLT_EINVAL, "http source: no URL");
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return molt_err_set(err, MOLT_EINVAL, "'%.*s' is not an http:// or https:// URL",
                            (int)strcspn(url, "?#"), url);
    const molt_curl_lib *c;
    rc = molt_curl_get(&c, err);
    if (rc < 0)
        return rc;
    if (!opts)
        opts = &defaults;

    s = calloc(1, sizeof *s);
    if (!s)
        return molt_err_set(err, MOLT_ENOMEM, "http source: out of memory");
    s->c = c;
    s->base.read = http_read;
    s->base.free = http_free;
    s->base.offset = 0;
    s->base.total = -1;
    s->opts.retry_count = opt_or(opts->retry_count, DEFAULT_RETRY_COUNT);
    s->opts.retry_initial_interval = opt_or(opts->retry_initial_interval, DEFAULT_RETRY_INITIAL);
    s->opts.retry_max_interval = opt_or(opts->retry_max_interval, DEFAULT_RETRY_MAX);
    s->opts.low_speed_time = opt_or(opts->low_speed_time, MOLT_CURL_LOW_SPEED_TIME);
    s->initial_interval_ms = opts->retry_initial_interval_ms > 0
                                 ? opts->retry_initial_interval_ms
                                 : (int64_t)s->opts.retry_initial_interval * 1000;
    if (s->initial_interval_ms > (int64_t)s->opts.retry_max_interval * 1000)
        s->initial_interval_ms = (int64_t)s->opts.retry_max_interval * 1000;
    s->interval_ms = s->initial_interval_ms;
    s->url = strdup(url);
    s->base.name = molt_http_redact_url(url);
    s->cap = BUF_SIZE;
    s->buf = malloc(s->cap);
    s->multi = s->c->multi_init();
    s->easy = s->c->easy_init();
    if (!s->url || !s->base.name || !s->buf || !s->multi || !s->easy) {
        rc = molt_err_set(err, MOLT_ENOMEM, "http source: out of memory");
        goto out;
    }
    rc = setup_easy(s, opts, err);   /* curl copies the strings: the CA path, the proxy */
    if (rc < 0)
        goto out;
    rc = start_request(s, false, err);
    if (rc < 0)
        goto out;

    /* Wait for the answer's headers, so a bad URL, status or certificate fails here. */
    while (!s->checked && !s->done) {
        rc = drive(s, true, err);
        if (rc < 0)
            goto out;
    }
    if (s->req_err.code || s->done) {
        /* A refused answer or a failed connection ends here; a transfer that ended or broke
         * after a good answer is for read() to deliver or resume. */
        rc = finish_request(s, err);
        if (rc < 0)
            goto out;
        rc = 0;
    }
    if (!s->done && !s->paused) {
        s->c->easy_pause(s->easy, CURLPAUSE_RECV);
        s->paused = true;
    }
    *ret = &s->base;
    s = NULL;
out:
    http_free(s ? &s->base : NULL);
    return rc;
}
