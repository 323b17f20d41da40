/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP(S) artifact source: libcurl's multi interface runs on a download thread that fills a
 * bounded ring, and read() hands the reader the ring's bytes in place, so the socket reads run
 * beside decompression and hashing; broken connections resume with Range. */
#include "transport/http_source.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "transport/curl_lib.h"
#include "transport/curl_policy.h"
#include "util/log.h"

/* The ring between the download thread and the reader: the most we hold whatever the server
 * sends. When it is full the write callback waits for the reader to release a chunk, so a
 * slow consumer is backpressure on the TCP connection. */
#define RING_SIZE (1024 * 1024)
/* The most read() hands out at once: the reader releases the ring in steps of this, so the
 * download thread refills while the reader decompresses. */
#define READ_MAX (256 * 1024)
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
    bool attached;               /* the easy handle is in the multi handle */
    char *url;                   /* full URL, never printed: the query may hold credentials */
    molt_http_opts opts;

    /* Shared by the download thread and the reader, under lock. After the thread has started
     * only the thread touches curl, and the fields below "The download as a whole". */
    pthread_t thread;
    bool thread_running;         /* started and not joined */
    pid_t pid;                   /* the process that owns the thread */
    pthread_mutex_t lock;
    pthread_cond_t data_cv;      /* the reader waits: bytes, the end, or the first verdict */
    pthread_cond_t space_cv;     /* the thread waits: space in the ring, or quit */
    bool reader_waiting, thread_waiting;
    unsigned char *ring;         /* RING_SIZE bytes */
    uint64_t head, tail;         /* bytes written into / released from the ring so far */
    size_t handed;               /* the chunk read() returned last; released at the next call */
    bool quit;                   /* the reader is gone: the thread stops */
    bool answered;               /* the first response's verdict is in (start_err) */
    bool answer_sent;            /* the thread's copy of answered: no lock needed */
    molt_err start_err;
    bool ended;                  /* the thread is done: end_err, or code 0 for the end */
    molt_err end_err;
    molt_err fatal;              /* the reader's sticky error */

    /* The download as a whole (the thread's). */
    int64_t received;            /* resource offset of the next byte the network delivers */
    char etag[VALIDATOR_MAX];    /* validators of the first response ("" = absent) */
    char last_modified[VALIDATOR_MAX];
    int attempts;                /* retries since the last byte arrived */
    int64_t last_data_ms;        /* when the last body byte came, or the reader made room */
    int64_t interval_ms;         /* wait before the next retry */
    int64_t initial_interval_ms;
    uint64_t body_calls;         /* write callbacks so far: drive() polls only when idle */

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

static void answer(http_source *s, const molt_err *err);

/* Publish n bytes written at the ring's head, then wait until the ring has room or the reader
 * quits: the free space, or 0 on quit. The only place the download thread blocks on the reader;
 * the wait is not a stall of the connection, so it restarts the clock of the low-speed check. */
static size_t ring_commit(http_source *s, size_t n)
{
    pthread_mutex_lock(&s->lock);
    s->head += n;
    if (n > 0 && s->reader_waiting)
        pthread_cond_signal(&s->data_cv);
    bool waited = false;
    while (!s->quit && s->head - s->tail == RING_SIZE) {
        s->thread_waiting = true;
        waited = true;
        pthread_cond_wait(&s->space_cv, &s->lock);
    }
    s->thread_waiting = false;
    size_t space = s->quit ? 0 : RING_SIZE - (size_t)(s->head - s->tail);
    pthread_mutex_unlock(&s->lock);
    if (waited)
        s->last_data_ms = now_ms();
    return space;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_source *s = userdata;
    size_t n = size * nmemb;
    s->body_calls++;
    if (!s->checked && check_response(s) < 0)
        return 0;
    if (s->req_err.code)
        return 0;
    size_t drop = s->skip > 0 ? (s->skip < (int64_t)n ? (size_t)s->skip : n) : 0;
    size_t keep = n - drop;
    if (s->base.total >= 0 && s->received + (int64_t)keep > s->base.total) {
        refuse(s, false, "GET %s: the server sent more than the %" PRId64 " bytes it announced",
               s->base.name, s->base.total);
        return 0;
    }
    s->skip -= (int64_t)drop;
    /* A body byte means the first response was good: molt_http_source_new may return (before
     * the ring fills, which would wait for a reader that does not exist yet). */
    static const molt_err ok = { 0 };
    answer(s, &ok);
    if (n > 0)
        s->last_data_ms = now_ms();
    if (keep > 0) {
        s->attempts = 0;
        s->interval_ms = s->initial_interval_ms;
    }
    /* Copy into the ring, in pieces when it wraps or is nearly full. The head moves only here
     * and the reader never goes past it, so the space seen stays free until we fill it. */
    const char *p = data + drop;
    size_t space = ring_commit(s, 0);
    while (keep > 0) {
        if (space == 0)
            return 0;   /* the reader is gone: abort the transfer */
        size_t at = (size_t)(s->head % RING_SIZE);
        size_t piece = keep < space ? keep : space;
        if (piece > RING_SIZE - at)
            piece = RING_SIZE - at;
        memcpy(s->ring + at, p, piece);
        p += piece;
        keep -= piece;
        s->received += (int64_t)piece;
        space = ring_commit(s, piece);
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

/* Run curl once, and wait for socket activity when that produced nothing: no body bytes, no
 * end of transfer and, with want_headers, no checked response. */
static int drive(http_source *s, bool want_headers, molt_err *err)
{
    int running = 0;
    uint64_t calls = s->body_calls;
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
    if (s->done || s->body_calls != calls || (want_headers && s->checked))
        return 0;
    int timeout = POLL_MS;
    if (s->checked && !s->req_err.code) {
        /* curl's low-speed check averages over several seconds; a body that stops for
         * low_speed_time seconds is dead now. Time spent waiting for the reader to make room
         * in the ring does not count (ring_commit restarts the clock). */
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
    /* The reader's quit wakes this with curl_multi_wakeup. */
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

/* Wait ms milliseconds, or less when the reader quits: false on quit. */
static bool wait_unless_quit(http_source *s, int64_t ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->quit && pthread_cond_timedwait(&s->space_cv, &s->lock, &deadline) != ETIMEDOUT)
        ;
    bool quit = s->quit;
    pthread_mutex_unlock(&s->lock);
    return !quit;
}

/* After a broken connection: wait with backoff and ask for the rest. 1 when the reader quit
 * during the wait. */
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
    if (!wait_unless_quit(s, s->interval_ms))
        return 1;
    s->interval_ms *= 2;
    if (s->interval_ms > (int64_t)s->opts.retry_max_interval * 1000)
        s->interval_ms = (int64_t)s->opts.retry_max_interval * 1000;
    return start_request(s, true, err);
}

static bool quitting(http_source *s)
{
    pthread_mutex_lock(&s->lock);
    bool quit = s->quit;
    pthread_mutex_unlock(&s->lock);
    return quit;
}

/* The first response's verdict, for molt_http_source_new: err code 0 means go on. */
static void answer(http_source *s, const molt_err *err)
{
    if (s->answer_sent)
        return;
    s->answer_sent = true;
    pthread_mutex_lock(&s->lock);
    s->answered = true;
    s->start_err = *err;
    pthread_cond_signal(&s->data_cv);
    pthread_mutex_unlock(&s->lock);
}

/* The end of the download: err code 0 for all bytes delivered, else why it failed. */
static void end(http_source *s, const molt_err *err)
{
    pthread_mutex_lock(&s->lock);
    s->ended = true;
    s->end_err = *err;
    pthread_cond_signal(&s->data_cv);
    pthread_mutex_unlock(&s->lock);
}

/* The download thread: the first response (answered to molt_http_source_new), then the body
 * into the ring, with resumes, until the end, an error or the reader's quit. Only this thread
 * calls curl while it runs. */
static void *download(void *arg)
{
    http_source *s = arg;
    molt_err err = { 0 };
    int rc;

    /* Wait for the answer's headers, so a bad URL, status or certificate fails at the start. */
    while (!s->checked && !s->done) {
        if (quitting(s))
            goto out;
        if ((rc = drive(s, true, &err)) < 0)
            break;
    }
    /* A refused answer or a failed connection ends here; a transfer that ended or broke after
     * a good answer is for the loop below to deliver or resume. */
    if (!err.code && (s->req_err.code || s->done)) {
        rc = finish_request(s, &err);
        if (rc >= 0)
            molt_err_clear(&err);
    }
    answer(s, &err);   /* unless a body byte answered already: then err is for the reader */
    if (err.code)
        goto fail;

    for (;;) {
        if (quitting(s))
            goto out;
        if (s->done) {
            rc = finish_request(s, &err);
            if (rc == OUTCOME_EOF)
                break;
            if (rc == OUTCOME_RETRY)
                rc = resume(s, &err);
            if (rc < 0)
                break;
            continue;   /* the next request, or the quit seen during the wait */
        }
        if ((rc = drive(s, false, &err)) < 0)
            break;
    }
fail:
    end(s, &err);
out:
    return NULL;
}

static ssize_t http_read(molt_source *src, const void **ret_buf, molt_err *err)
{
    http_source *s = (http_source *)src;
    if (!s->fatal.code && getpid() != s->pid)
        molt_err_set(&s->fatal, MOLT_EINVAL, "GET %s: read in a forked child; the download "
                     "runs in process %ld", s->base.name, (long)s->pid);
    if (s->fatal.code) {
        if (err)
            *err = s->fatal;
        return s->fatal.code;
    }
    pthread_mutex_lock(&s->lock);
    s->tail += s->handed;   /* the caller is done with the previous chunk */
    s->handed = 0;
    if (s->thread_waiting)
        pthread_cond_signal(&s->space_cv);
    while (s->head == s->tail && !s->ended) {
        s->reader_waiting = true;
        pthread_cond_wait(&s->data_cv, &s->lock);
    }
    s->reader_waiting = false;
    size_t n = (size_t)(s->head - s->tail);
    if (n == 0) {
        /* Every byte before the end or the error is delivered first. */
        s->fatal = s->end_err;
        pthread_mutex_unlock(&s->lock);
        if (s->fatal.code && err)
            *err = s->fatal;
        return s->fatal.code;
    }
    size_t at = (size_t)(s->tail % RING_SIZE);
    if (n > RING_SIZE - at)
        n = RING_SIZE - at;
    if (n > READ_MAX)
        n = READ_MAX;
    s->handed = n;
    pthread_mutex_unlock(&s->lock);
    *ret_buf = s->ring + at;
    s->base.offset += (int64_t)n;
    return (ssize_t)n;
}

/* Stop the download thread and wait for it. */
static void stop(http_source *s)
{
    if (!s->thread_running)
        return;
    pthread_mutex_lock(&s->lock);
    s->quit = true;
    pthread_cond_broadcast(&s->space_cv);
    pthread_mutex_unlock(&s->lock);
    s->c->multi_wakeup(s->multi);   /* out of curl_multi_poll */
    pthread_join(s->thread, NULL);
    s->thread_running = false;
}

static void http_free(molt_source *src)
{
    http_source *s = (http_source *)src;
    if (!s)
        return;
    /* A forked child has no download thread and may hold curl in any state: it leaves all
     * to the process that owns them. */
    if (getpid() != s->pid)
        return;
    stop(s);
    if (s->attached)
        s->c->multi_remove_handle(s->multi, s->easy);
    if (s->easy)
        s->c->easy_cleanup(s->easy);
    if (s->multi)
        s->c->multi_cleanup(s->multi);
    pthread_cond_destroy(&s->data_cv);
    pthread_cond_destroy(&s->space_cv);
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
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
    s->pid = getpid();
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->data_cv, NULL);
    pthread_condattr_t attr;   /* the retry wait times out on the monotonic clock */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->space_cv, &attr);
    pthread_condattr_destroy(&attr);
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
    s->ring = malloc(RING_SIZE);
    s->multi = s->c->multi_init();
    s->easy = s->c->easy_init();
    if (!s->url || !s->base.name || !s->ring || !s->multi || !s->easy) {
        rc = molt_err_set(err, MOLT_ENOMEM, "http source: out of memory");
        goto out;
    }
    rc = setup_easy(s, opts, err);   /* curl copies the strings: the CA path, the proxy */
    if (rc < 0)
        goto out;
    rc = start_request(s, false, err);
    if (rc < 0)
        goto out;

    /* The download thread takes curl from here. Signals stay with the caller's thread: the
     * thread starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&s->thread, NULL, download, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        rc = molt_err_errno(err, MOLT_ENOMEM, prc, "GET %s: cannot start the download thread",
                            s->base.name);
        goto out;
    }
    s->thread_running = true;

    /* Wait for the first response's verdict: a bad URL, status or certificate fails here. */
    pthread_mutex_lock(&s->lock);
    while (!s->answered)
        pthread_cond_wait(&s->data_cv, &s->lock);
    pthread_mutex_unlock(&s->lock);
    if (s->start_err.code) {
        if (err)
            *err = s->start_err;
        rc = s->start_err.code;
        goto out;
    }
    *ret = &s->base;
    s = NULL;
out:
    http_free(s ? &s->base : NULL);
    return rc;
}
