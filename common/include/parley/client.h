/*
 * client.h - service-to-service HTTP calls over libcurl.
 *
 * One easy handle per thread, kept between calls so connections to each service are reused
 * (keep-alive).  Every call carries X-Service-Token and the calling thread's request id as
 * X-Request-Id, and has a total timeout.  Call pl_client_global_init() once from main() before
 * any thread starts.  Jobs (pl_client_job_*) are the same calls run on a shared event loop.
 */
#ifndef PARLEY_CLIENT_H
#define PARLEY_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct pl_arena;
struct pl_err;

struct pl_client_resp {
    long status;      /* HTTP status of the answer */
    const char *body; /* NUL-terminated, in the caller's arena */
    size_t len;
    json_t *json;     /* body parsed as JSON (kept alive by the arena), or NULL */
    double ms;        /* time the call took */
    const char *content_type; /* of the answer, or "application/json" when it named none */
};

/* One of several GETs made at once by pl_client_get_many. */
struct pl_client_get {
    const char *url;            /* in */
    int rc;                     /* out: PL_OK (resp filled) or PL_ERR (err filled) */
    struct pl_client_resp resp;
    struct pl_err *err;         /* in: where a failure goes (may be NULL) */
};

/* curl_global_init and the token every call sends (copied).  Not thread-safe: main() only. */
void pl_client_global_init(const char *service_token);

/* Options of one call; zero-initialise and set what applies. */
struct pl_client_opts {
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
    const char *body;           /* request body or NULL; sent with Content-Type application/json */
    size_t body_len;            /* bytes of body (it may hold anything) */
    long timeout_ms;            /* total time allowed; 0 = 10 s */
};

/* The general call: as pl_client_call, with extra headers and a body of any bytes. */
int pl_client_do(struct pl_arena *a, const char *method, const char *url,
                 const struct pl_client_opts *o, struct pl_client_resp *out, struct pl_err *err);

/*
 * Runs every GET of calls[0..n) at the same time (one curl multi), each with the service token
 * and the request id, and returns when all are done or timeout_ms passed.  Thread-safe.
 */
void pl_client_get_many(struct pl_arena *a, struct pl_client_get *calls, int n, long timeout_ms);

/*
 * Sends method url with body (NULL for none; sent as application/json) and waits at most
 * timeout_ms.  Returns PL_OK with *out filled whatever the HTTP status, or PL_ERR with err:
 * 503 "upstream_unavailable" when the service cannot be reached, 504 "upstream_timeout" on
 * timeout, 502 "upstream_bad_response" when the answer is larger than 8 MiB.  Thread-safe.
 */
int pl_client_call(struct pl_arena *a, const char *method, const char *url, const char *body,
                   long timeout_ms, struct pl_client_resp *out, struct pl_err *err);

/*
 * Calls that wait on no thread: one shared loop thread runs every started job over a curl multi
 * (connections reused per service), so a server can park the request (pl_req_defer) instead of a
 * pool thread.  A job copies its method, URL, headers (as pl_client_do's, with the creating
 * thread's X-Request-Id) and body, so nothing the creator owns needs to outlive it.
 */
struct pl_client_job;
/* Runs on the loop thread when the job is over; it may start the job again (a retry). */
typedef void pl_client_job_fn(struct pl_client_job *j, void *arg);
/* A job for method url with o (o->body sent like pl_client_do's).  Free with _release. */
struct pl_client_job *pl_client_job_new(const char *method, const char *url,
                                        const struct pl_client_opts *o);
/* Hands j to the loop, to start after delay_ms; done(j, arg) runs once it is over.  Thread-safe. */
void pl_client_job_start(struct pl_client_job *j, long delay_ms, pl_client_job_fn *done,
                         void *arg);
/*
 * The outcome of a finished job, as pl_client_do's (body and content type copied into a; json is
 * left NULL): PL_OK with *out filled whatever the HTTP status, or PL_ERR with err (503, 504, 502).
 * With a NULL, only the status (or the error's status, unlogged) for a quick verdict.
 */
int pl_client_job_result(const struct pl_client_job *j, struct pl_arena *a,
                         struct pl_client_resp *out, struct pl_err *err);
/* Gives back the creator's reference; the job is freed once the loop is done with it too. */
void pl_client_job_release(struct pl_client_job *j);
/* Ends the loop thread: jobs still running end as 503.  main() only, after the server stopped. */
void pl_client_async_shutdown(void);

/*
 * Streamed calls, for bodies too big to hold whole (media).  The request body is pushed piece by
 * piece with pl_client_stream_send, and the answer's body pulled with pl_client_stream_read, so
 * memory stays bounded by libcurl's buffers and PL_CLIENT_STREAM_BUF whatever the sizes.  There is
 * no total timeout (a big body takes as long as it takes): each wait for the service is bounded
 * by timeout_ms instead.  A stream has its own connection.  Not thread-safe: one thread at a time
 * uses a stream (it may move between calls).  Every call carries X-Service-Token and X-Request-Id.
 */
#define PL_CLIENT_STREAM_BUF (64u * 1024u)
struct pl_client_stream;

/*
 * Starts method url with the extra headers of o (o->body is ignored; name the body's type in
 * o->headers).  body_len is the length of the request body: 0 for none, -1 when unknown (sent
 * chunked).  A body is announced with "Expect: 100-continue", and this waits until the service
 * asks for it or answers without it (then pl_client_stream_wait has the answer).  Without a body
 * it waits for the answer's headers.  Returns NULL with err as pl_client_call on a failure.
 */
struct pl_client_stream *pl_client_stream_open(const char *method, const char *url,
                                               const struct pl_client_opts *o, long long body_len,
                                               struct pl_err *err);

/*
 * Sends the next n bytes of the body, waiting until libcurl has taken them all (back-pressure).
 * PL_OK; or PL_ERR when the call is over meanwhile: the service answered before the end of the
 * body (not wanted any more), or failed.  pl_client_stream_wait tells which.
 */
int pl_client_stream_send(struct pl_client_stream *s, const char *data, size_t n,
                          struct pl_err *err);

/*
 * Ends the request body, if any, and waits for the headers of the answer.  Returns its HTTP
 * status, or PL_ERR with err as pl_client_call (503, 504, 502).
 */
int pl_client_stream_wait(struct pl_client_stream *s, struct pl_err *err);

/* True once the headers of the answer are in (the service may answer before the body ends). */
bool pl_client_stream_answered(const struct pl_client_stream *s);

/* After pl_client_stream_wait: a header of the answer (name case-insensitive) or NULL, borrowed
 * from s; and the body's declared length, or -1 when the service did not declare one. */
const char *pl_client_stream_header(const struct pl_client_stream *s, const char *name);
long long pl_client_stream_length(const struct pl_client_stream *s);

/*
 * Reads up to cap bytes of the answer's body into buf, waiting for at least one.  Returns the
 * count, 0 at the end of the body, or PL_ERR with err (the service failed or went quiet).
 */
long pl_client_stream_read(struct pl_client_stream *s, char *buf, size_t cap, struct pl_err *err);

/* Ends the call (its connection is closed when unfinished) and frees s.  NULL-safe. */
void pl_client_stream_free(struct pl_client_stream *s);

#endif
