/*
 * client_stream.c - streamed service calls (see client.h): the request body pushed in pieces,
 * the answer pulled in pieces.
 *
 * libcurl pulls a request body through a read callback and pushes the answer through a write
 * callback, both inside its own perform loop.  A proxy has it the other way round: its bytes
 * arrive piece by piece from its own client, and leave when its client can take them.  So each
 * stream runs its transfer on a private multi handle that moves only while one of the calls below
 * waits on it.  The read callback hands libcurl the piece being sent, or pauses the upload when
 * there is none; the write callback appends to a fixed buffer, or pauses the download when it is
 * full.  Each call unpauses the direction it needs and runs the transfer until it has what it
 * waits for, so neither direction ever holds more than one buffer, and a slow side slows the
 * other instead of filling memory (back-pressure).
 *
 * A body is announced with "Expect: 100-continue": a service that refuses on the headers alone
 * (415, 413, 401) answers before any byte is sent, and the caller can relay that answer at once
 * instead of pushing megabytes into a closed connection.
 */
#include "parley/client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_int.h"
#include "parley/err.h"
#include "parley/uuid.h"

#define MAX_HEADERS 32
#define HEADER_SPACE 8192

struct pl_client_stream {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *req_headers;
    char *url;
    long timeout_ms;
    const char *src; /* the piece of body being sent, borrowed for one pl_client_stream_send */
    size_t src_len;
    bool body_end;   /* no more body: the read callback says end of data */
    bool wants_body; /* libcurl asked for body bytes: the service said continue */
    bool send_paused, recv_paused;
    bool headers_done; /* the final answer's headers are in */
    int status;        /* from the latest status line */
    int nheaders;
    size_t header_used;
    char *header[MAX_HEADERS]; /* "Name: value" lines of the final answer, in header_space */
    char header_space[HEADER_SPACE];
    bool done; /* the transfer is over (or abandoned after a timeout) */
    CURLcode result;
    size_t off, len; /* answer bytes not read yet: buf[off, off + len) */
    char buf[PL_CLIENT_STREAM_BUF];
};

typedef bool until_fn(const struct pl_client_stream *s);

/* ---- libcurl callbacks ---- */

/* The status code of a status line "HTTP/1.1 200 OK", or 0. */
static int
status_of(const char *line, size_t n)
{
    const char *sp = memchr(line, ' ', n);
    int code = 0;

    for (size_t i = sp != NULL ? (size_t)(sp - line) + 1 : n; i < n && code < 1000; i++) {
        if (line[i] < '0' || line[i] > '9')
            break;
        code = code * 10 + (line[i] - '0');
    }
    return code;
}

/*
 * Each header line of the answer.  A status line starts a new block (a "100 Continue" block comes
 * before the final one); the empty line ends one.  Lines past the limits are dropped: only the few
 * headers a proxy relays matter, and libcurl bounds the whole header size itself.
 */
static size_t
on_header(char *line, size_t size, size_t n, void *arg)
{
    struct pl_client_stream *s = arg;
    size_t len = size * n, k = len;

    if (s->headers_done)
        return len; /* trailers */
    while (k > 0 && (line[k - 1] == '\r' || line[k - 1] == '\n'))
        k--;
    if (k >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        s->status = status_of(line, k);
        s->nheaders = 0;
        s->header_used = 0;
    } else if (k == 0) {
        s->headers_done = s->status >= 200;
    } else if (s->nheaders < MAX_HEADERS && k < HEADER_SPACE - s->header_used) {
        char *h = s->header_space + s->header_used;

        memcpy(h, line, k);
        h[k] = '\0';
        s->header_used += k + 1;
        s->header[s->nheaders++] = h;
    }
    return len;
}

/* Answer bytes: into the buffer, or pause the download until the reader made room. */
static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct pl_client_stream *s = arg;
    size_t len = size * n;

    if (len > sizeof(s->buf))
        return 0; /* cannot happen (libcurl hands at most CURL_MAX_WRITE_SIZE); fail, not hang */
    if (len > sizeof(s->buf) - s->off - s->len && s->off > 0) {
        memmove(s->buf, s->buf + s->off, s->len);
        s->off = 0;
    }
    if (len > sizeof(s->buf) - s->off - s->len) {
        s->recv_paused = true;
        return CURL_WRITEFUNC_PAUSE; /* libcurl keeps these bytes and hands them again later */
    }
    memcpy(s->buf + s->off + s->len, p, len);
    s->len += len;
    return len;
}

/* Body bytes for libcurl: from the piece being sent, or pause the upload until the next one. */
static size_t
on_read(char *dst, size_t size, size_t n, void *arg)
{
    struct pl_client_stream *s = arg;
    size_t k = size * n;

    s->wants_body = true;
    if (s->src_len == 0) {
        if (s->body_end)
            return 0;
        s->send_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    if (k > s->src_len)
        k = s->src_len;
    memcpy(dst, s->src, k);
    s->src += k;
    s->src_len -= k;
    return k;
}

/* ---- driving the transfer ---- */

static bool
ready_for_body(const struct pl_client_stream *s)
{
    return s->wants_body || s->headers_done;
}

static bool
answered(const struct pl_client_stream *s)
{
    return s->headers_done;
}

static bool
piece_taken(const struct pl_client_stream *s)
{
    return s->src_len == 0 || s->headers_done;
}

static bool
body_or_end(const struct pl_client_stream *s)
{
    return s->len > 0 || s->done;
}

/* Lifts the pauses of the directions asked for, keeping the others. */
static void
resume(struct pl_client_stream *s, bool send, bool recv)
{
    if (send)
        s->send_paused = false;
    if (recv)
        s->recv_paused = false;
    curl_easy_pause(s->easy, (s->send_paused ? CURLPAUSE_SEND : 0) |
                                 (s->recv_paused ? CURLPAUSE_RECV : 0));
}

static void
collect(struct pl_client_stream *s)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE) {
            s->done = true;
            s->result = m->data.result;
        }
    }
}

/*
 * Runs the transfer until until(s) holds: PL_OK.  Otherwise PL_ERR with err: the transfer failed
 * (mapped as every call's failures are), ended without it (502), or timeout_ms passed (504; the
 * transfer is then abandoned, and the stream fails from now on).
 */
static int
run(struct pl_client_stream *s, until_fn *until, struct pl_err *err)
{
    int64_t deadline = pl_time_mono_us() + (int64_t)s->timeout_ms * 1000;

    for (;;) {
        int running = 0;
        int64_t left;

        if (!s->done && curl_multi_perform(s->multi, &running) != CURLM_OK) {
            s->done = true;
            s->result = CURLE_COULDNT_CONNECT;
        }
        collect(s);
        if (until(s))
            return PL_OK;
        if (s->done && s->result != CURLE_OK)
            return pl_client_map_error(s->result, s->url, err);
        if (s->done)
            return pl_err_set(err, 502, "upstream_bad_response",
                              "a service ended its answer early");
        left = (deadline - pl_time_mono_us()) / 1000;
        if (left <= 0) {
            s->done = true;
            s->result = CURLE_OPERATION_TIMEDOUT;
            return pl_client_map_error(s->result, s->url, err);
        }
        curl_multi_poll(s->multi, NULL, 0, left < 1000 ? (int)left : 1000, NULL);
    }
}

/* ---- the calls ---- */

static struct curl_slist *
request_headers(const struct pl_client_opts *o, long long body_len)
{
    struct pl_client_opts plain = *o;
    struct curl_slist *h;

    plain.body = NULL; /* the caller types its body itself */
    h = pl_client_headers(&plain);
    if (body_len != 0)
        h = curl_slist_append(h, "Expect: 100-continue");
    if (body_len < 0)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    return h;
}

static void
setup(struct pl_client_stream *s, const char *method, long long body_len)
{
    CURL *e = s->easy;

    pl_client_easy_target(e, s->url, s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->req_headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    /* A server that ignores Expect gets the body after this long, as libcurl does by default. */
    curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS,
                     s->timeout_ms < 1000 ? s->timeout_ms : 1000L);
    if (body_len != 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, s);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(body_len < 0 ? -1 : body_len));
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
}

struct pl_client_stream *
pl_client_stream_open(const char *method, const char *url, const struct pl_client_opts *o,
                      long long body_len, struct pl_err *err)
{
    struct pl_client_stream *s = calloc(1, sizeof(*s));

    PL_ASSERT(s != NULL);
    s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    s->url = strdup(url);
    s->multi = curl_multi_init();
    s->easy = curl_easy_init();
    PL_ASSERT(s->url != NULL);
    if (s->multi == NULL || s->easy == NULL) {
        pl_client_stream_free(s);
        pl_err_set(err, 500, "internal", "could not create an HTTP client");
        return NULL;
    }
    s->req_headers = request_headers(o, body_len);
    setup(s, method, body_len);
    curl_multi_add_handle(s->multi, s->easy);
    if (run(s, body_len != 0 ? ready_for_body : answered, err) != PL_OK) {
        pl_client_stream_free(s);
        return NULL;
    }
    return s;
}

int
pl_client_stream_send(struct pl_client_stream *s, const char *data, size_t n, struct pl_err *err)
{
    int rc;

    if (s->done || s->headers_done)
        return PL_ERR; /* answered or failed already: the rest is not wanted */
    if (n == 0)
        return PL_OK;
    s->src = data;
    s->src_len = n;
    resume(s, true, false);
    rc = run(s, piece_taken, err);
    if (s->src_len > 0)
        rc = PL_ERR; /* answered before taking it all */
    s->src = NULL; /* data is the caller's: never touched after this returns */
    s->src_len = 0;
    return rc;
}

int
pl_client_stream_wait(struct pl_client_stream *s, struct pl_err *err)
{
    if (!s->body_end) {
        s->body_end = true;
        if (s->send_paused)
            resume(s, true, false); /* the read callback now says end of data */
    }
    if (run(s, answered, err) != PL_OK)
        return PL_ERR;
    return s->status;
}

bool
pl_client_stream_answered(const struct pl_client_stream *s)
{
    return s->headers_done;
}

const char *
pl_client_stream_header(const struct pl_client_stream *s, const char *name)
{
    size_t n = strlen(name);

    for (int i = 0; i < s->nheaders; i++) {
        const char *h = s->header[i];

        if (strncasecmp(h, name, n) == 0 && h[n] == ':')
            return h + n + 1 + strspn(h + n + 1, " \t");
    }
    return NULL;
}

long long
pl_client_stream_length(const struct pl_client_stream *s)
{
    curl_off_t n = -1;

    if (curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &n) != CURLE_OK)
        return -1;
    return n;
}

long
pl_client_stream_read(struct pl_client_stream *s, char *buf, size_t cap, struct pl_err *err)
{
    size_t k;

    if (s->len == 0 && !s->done) {
        if (s->recv_paused)
            resume(s, false, true);
        if (run(s, body_or_end, err) != PL_OK)
            return PL_ERR;
    }
    if (s->len == 0)
        return s->result == CURLE_OK ? 0 : pl_client_map_error(s->result, s->url, err);
    k = s->len < cap ? s->len : cap;
    memcpy(buf, s->buf + s->off, k);
    s->off += k;
    s->len -= k;
    if (s->len == 0)
        s->off = 0;
    return (long)k;
}

void
pl_client_stream_free(struct pl_client_stream *s)
{
    if (s == NULL)
        return;
    if (s->multi != NULL && s->easy != NULL)
        curl_multi_remove_handle(s->multi, s->easy);
    curl_easy_cleanup(s->easy);
    curl_multi_cleanup(s->multi);
    curl_slist_free_all(s->req_headers);
    free(s->url);
    free(s);
}
