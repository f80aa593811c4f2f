/*
 * http.h - the HTTP server every Parley binary runs, over libmicrohttpd.
 *
 * MHD runs an epoll thread pool; a pool thread runs one request from start to finish, blocking calls
 * included, unless its handler defers the reply (pl_req_defer).  The server owns routing (404, 405 with Allow, OPTIONS), body limits (413 before
 * buffering), JSON parsing (400 on bad JSON or UTF-8, 415 on a non-JSON content type), the service
 * token check, X-Request-Id, the access log, request metrics, and the built-in /healthz, /readyz and
 * /metrics.  A handler sees a request whose body, when its route takes one, is a parsed JSON value.
 *
 * Every reply function below queues the response and returns what MHD expects from the access
 * handler; a handler calls exactly one of them, once, and returns its result.
 */
#ifndef PARLEY_HTTP_H
#define PARLEY_HTTP_H

#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pl_arena;
struct pl_db;
struct pl_err;
struct pl_req;
struct pl_server;

typedef enum MHD_Result pl_handler(struct pl_req *req);
/* Readiness probe: returns true when the binary can serve (database reachable and migrated). */
typedef bool pl_ready_fn(void *ctx);
/* Called once per request when it is over (reply sent, or the client gone), on a pool thread. */
typedef void pl_done_fn(const struct pl_req *req, void *ctx);
/*
 * Called with every response just before it is queued, the server's own ones (404, 405, 413,
 * OPTIONS) included, to add headers (CORS, for one) with MHD_add_response_header.
 */
typedef void pl_decorate_fn(const struct pl_req *req, struct MHD_Response *resp, void *ctx);

enum pl_route_flags {
    PL_ROUTE_PUBLIC = 1 << 0, /* no X-Service-Token needed */
    PL_ROUTE_JSON = 1 << 1,   /* takes a JSON body, parsed before the handler runs */
    PL_ROUTE_STREAM = 1 << 2, /* streams its body: see pl_req_stream() */
    PL_ROUTE_BIG_BODY = 1 << 3, /* takes bodies up to pl_server_opts.big_body (webhooks) */
};

struct pl_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/api/customers/{id}": {name} matches one non-empty segment */
    pl_handler *fn;
    unsigned flags;
};

#define PL_MAX_PARAMS 4

struct pl_server_opts {
    const char *service;          /* name in logs and metrics */
    uint16_t port;                /* 0 picks a free port (tests) */
    unsigned threads;             /* MHD thread pool size; 0 = one per usable CPU (at least 2) */
    size_t max_body;              /* request body limit in bytes */
    size_t big_body;              /* the limit of PL_ROUTE_BIG_BODY routes, if above max_body */
    const char *service_token;    /* required on non-public routes; NULL disables the check */
    const struct pl_route *routes; /* terminated by a zero entry; must outlive the server */
    void *ctx;                    /* handed to handlers through pl_req_ctx() */
    pl_ready_fn *ready;           /* NULL: ready when db is (or always, without db) */
    struct pl_db *db;             /* the binary's database, for pl_req_db() and /readyz; or NULL */
    pl_done_fn *on_done;          /* per finished request (the gateway's api_logs); or NULL */
    pl_decorate_fn *decorate;     /* per response, before it is queued; or NULL */
    size_t keep_response;         /* bytes of each reply body kept for on_done */
};

/* Starts serving.  Returns NULL and fills err when the port cannot be bound. */
struct pl_server *pl_server_start(const struct pl_server_opts *opts, struct pl_err *err);
uint16_t pl_server_port(const struct pl_server *srv);
/*
 * Graceful stop: stops accepting, waits up to timeout_ms for in-flight requests to finish, then
 * stops the daemon and frees the server.  NULL-safe.
 */
void pl_server_drain_and_free(struct pl_server *srv, int timeout_ms);

/* Request accessors; strings are valid until the request completes. */
struct pl_arena *pl_req_arena(const struct pl_req *req);
void *pl_req_ctx(const struct pl_req *req);
const char *pl_req_method(const struct pl_req *req);
const char *pl_req_path(const struct pl_req *req);
const char *pl_req_id(const struct pl_req *req);
/* Parsed JSON body of a PL_ROUTE_JSON route (borrowed), else NULL. */
json_t *pl_req_json(const struct pl_req *req);
/* The raw request body as received (any route), and its length; NULL when there was none. */
const char *pl_req_body(const struct pl_req *req, size_t *len);
/* Value of {name} in the matched pattern, or NULL. */
const char *pl_req_param(const struct pl_req *req, const char *name);
/* Decoded query argument, or NULL. */
const char *pl_req_query(const struct pl_req *req, const char *name);
/*
 * The calling thread's connection to the server's database, or NULL after a 503 reply has been
 * queued, whose result is then in *rc for the handler to return.
 */
PGconn *pl_req_db(struct pl_req *req, enum MHD_Result *rc);
/* Request header (case-insensitive), or NULL. */
const char *pl_req_header(const struct pl_req *req, const char *name);

/* The MHD connection, for iterating values. */
struct MHD_Connection *pl_req_connection(const struct pl_req *req);

/* For on_done: the status answered, the time taken, the matched route pattern ("unmatched"),
 * the client's address (into buf), and the first keep_response bytes of the reply body. */
unsigned pl_req_status(const struct pl_req *req);
long long pl_req_duration_us(const struct pl_req *req);
const char *pl_req_route(const struct pl_req *req);
const char *pl_req_client_ip(const struct pl_req *req, char buf[64]);
/* True when id is an acceptable client X-Request-Id: 1..128 of [A-Za-z0-9._:-]. */
bool pl_request_id_valid(const char *id);
const char *pl_req_reply_body(const struct pl_req *req, size_t *len);

/* One pointer a handler may leave on its request for on_done (borrowed; arena memory is fine). */
void pl_req_set_note(struct pl_req *req, const void *note);
const void *pl_req_note(const struct pl_req *req);

/* Adds a header to the reply that follows (copied). */
void pl_req_reply_header(struct pl_req *req, const char *name, const char *value);

/* Replies with j serialized; takes the reference to j. */
enum MHD_Result pl_reply_json(struct pl_req *req, unsigned status, json_t *j);
/* Replies with ready JSON text (copied). */
enum MHD_Result pl_reply_json_text(struct pl_req *req, unsigned status, const char *text, size_t n);
/* Replies with text of the given content type (copied). */
enum MHD_Result pl_reply_text(struct pl_req *req, unsigned status, const char *ctype,
                              const char *text, size_t n);
/* Replies with the SPEC error envelope {"error": code, "message": ...}. */
enum MHD_Result pl_reply_error(struct pl_req *req, unsigned status, const char *code,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Same, from a filled struct pl_err. */
enum MHD_Result pl_reply_err(struct pl_req *req, const struct pl_err *err);
/*
 * Replies with the outcome of a query that yields one JSON document (PL_DB_* in rc): the
 * document with status on PL_DB_ROW, 404 {"error": code, "message": msg} on PL_DB_NONE, the
 * error in err otherwise.
 */
enum MHD_Result pl_reply_row(struct pl_req *req, int rc, unsigned status, const char *json,
                             const struct pl_err *err, const char *code, const char *msg);
/* 422 validation_failed with errors (taken) as the "errors" member. */
enum MHD_Result pl_reply_invalid(struct pl_req *req, json_t *errors);

/*
 * Replies with a response the caller built (a file, an empty 304); takes resp.  The headers set
 * with pl_req_reply_header() and X-Request-Id are added; bytes is the body size for the access log.
 */
enum MHD_Result pl_reply_response(struct pl_req *req, unsigned status, struct MHD_Response *resp,
                                  size_t bytes);

/*
 * Streamed request bodies.  The handler of a PL_ROUTE_STREAM route runs as soon as the headers are
 * in (after routing and the service token check), before any body byte, and either rejects the
 * request with a reply (MHD then closes the connection unread) or accepts the body by returning
 * pl_req_stream().  The body is then never buffered: chunk() gets each piece in order as it
 * arrives, and end() runs once the whole body is in and must reply.  When chunk() returns PL_ERR
 * the rest of the body is read and discarded and end() still runs.  A body over max bytes is
 * answered 413 by the server: at once when Content-Length declares it, else after draining, and
 * then end() does not run (clean up with pl_arena_defer(), which also covers aborted requests).
 * Both callbacks run on the request's thread with its request id set for logging.
 */
typedef int pl_chunk_fn(struct pl_req *req, void *arg, const char *data, size_t n);
typedef enum MHD_Result pl_end_fn(struct pl_req *req, void *arg);
enum MHD_Result pl_req_stream(struct pl_req *req, size_t max, pl_chunk_fn *chunk, pl_end_fn *end,
                              void *arg);

/*
 * Deferred replies: a handler whose answer comes from work done elsewhere (an upstream call on
 * an event loop) parks its request instead of a pool thread.  It calls pl_req_defer(), hands the
 * returned wake to the work, and returns MHD_YES without replying; the connection sleeps
 * (MHD_suspend_connection) until the work calls pl_wake_fire() from any thread, exactly once.
 * Then fn(req, arg, false) runs on a pool thread, with the request id set for logging, and must
 * reply (or defer again).  When the server drains past its deadline, waiting requests are woken
 * without the work: fn then runs with abandoned true and should answer 503.  A request whose
 * connection closes while it waits never runs fn; free what the work shares with it through
 * pl_arena_defer(), and let the work own what it still uses after the request is gone.
 * pl_wake_fire() after the request is over is harmless; it also releases the waker's reference.
 */
struct pl_wake;
typedef enum MHD_Result pl_resume_fn(struct pl_req *req, void *arg, bool abandoned);
struct pl_wake *pl_req_defer(struct pl_req *req, pl_resume_fn *fn, void *arg);
void pl_wake_fire(struct pl_wake *w);

/*
 * Push streams: an endless response (Server-Sent Events) fed by any thread.  A push stream is a
 * byte queue bounded by max bytes.  The handler makes one with pl_push_new(), may write to it at
 * once (the bytes wait), and answers with pl_reply_push(), after which MHD sends what is queued
 * and sleeps (MHD_suspend_connection) while the queue is empty, costing no thread; a write wakes
 * it.  A write that would overflow the queue drops the client: the queue is freed and the
 * connection closed, so a client that does not read costs at most max bytes.  The server's drain
 * ends every answered stream.
 *
 * References: pl_push_new() returns one, owned by the caller and given back with
 * pl_push_release(); the answered response holds its own until the connection is closed.  All
 * functions are thread-safe.  A client that disconnects while nothing is being sent is noticed at
 * the next write, so a producer should write something (an SSE comment) now and then.
 */
struct pl_push;
enum { PL_PUSH_QUEUE_DEFAULT = 256 * 1024 };
struct pl_push *pl_push_new(struct pl_req *req, size_t max);
/*
 * Answers req with status 200 and the endless body of p, of content type ctype, with the headers
 * set by pl_req_reply_header().  p stays the caller's (release it as usual).
 */
enum MHD_Result pl_reply_push(struct pl_req *req, struct pl_push *p, const char *ctype);
/*
 * Appends n bytes (copied).  PL_OK; PL_ERR when the stream is over (client gone, ended, dropped)
 * or when the bytes do not fit, which drops the client.
 */
int pl_push_write(struct pl_push *p, const char *data, size_t n);
/* Bytes that can be written now without dropping the client (0 once the stream is over). */
size_t pl_push_room(struct pl_push *p);
/* True until the stream is over. */
bool pl_push_alive(struct pl_push *p);
/* Ends the stream once the queued bytes are sent. */
void pl_push_end(struct pl_push *p);
/* Gives back the caller's reference; NULL-safe. */
void pl_push_release(struct pl_push *p);

/* Builds the error envelope (new reference); exposed for tests and for non-HTTP callers. */
json_t *pl_error_body(const char *code, const char *message, json_t *errors);
/* The envelope pl_reply_invalid sends, with errors (taken); a new reference. */
json_t *pl_invalid_body(json_t *errors);
/*
 * The envelope pl_reply_err sends for err (a new reference), and its HTTP status in *status: for
 * an answer inside another (one item of a batch) that must read exactly as a reply would.
 */
json_t *pl_err_body(const struct pl_err *err, unsigned *status);

#endif
