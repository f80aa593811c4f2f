/*
 * http.c - the HTTP server of every Parley binary, over libmicrohttpd.
 *
 * MHD calls the access handler several times per request: once when the headers are in, once per
 * body chunk, and once more when the body is complete.  MHD accepts a reply only on the first or
 * the last call, and a reply on the first call closes the connection (0.9.75), so only rejections
 * (a declared body over the limit) are answered early; everything else is answered on the last call.
 * Body chunks are copied into one buffer sized from Content-Length and bounded by max_body before
 * anything is allocated, so a client cannot make the server allocate past the limit.  A streaming
 * route (PL_ROUTE_STREAM) is dispatched on the first call instead and its chunks go straight to the
 * handler's callbacks, so an upload of any size costs no memory here.
 *
 * Every request gets an arena, freed by the completion callback, which also writes the access line
 * and records the request in the per-route metrics.
 */
#include "parley/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sched.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_int.h"
#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/metrics.h"
#include "parley/uuid.h"

#define STATUS_SLOTS 12
#define NBUCKETS 12
#define DEFER_GRACE_US 1000000 /* after the drain deadline, for woken deferred requests */

static const double bucket_le[NBUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,   0.1,   0.25,   0.5,   1.0,  2.5 };

struct status_slot {
    _Atomic unsigned status;
    _Atomic unsigned long long count;
    _Atomic unsigned long long sum_us;
    _Atomic unsigned long long bucket[NBUCKETS];
};

struct route_stats {
    struct status_slot slot[STATUS_SLOTS];
};

/*
 * The link between a deferred request and whoever finishes its work.  References: the request's
 * (until its continuation runs or it completes) and the waker's (until pl_wake_fire), so the
 * waker may fire after the request, or even the server, is gone.  waiting turns false once the
 * request no longer waits; fired says the connection was resumed already, so it is resumed at
 * most once, and never after the request is over.  Lock order: the server's defer_mu, then mu.
 */
struct pl_wake {
    pthread_mutex_t mu;
    atomic_int refs;
    struct pl_wake *next, *prev; /* in the server's ring while the request waits */
    struct MHD_Connection *conn;
    bool waiting; /* the request still waits (it has not been resumed and not completed) */
    bool fired;
    bool abandoned; /* resumed by the drain, not by the work */
};

struct header {
    struct header *next;
    const char *name;
    const char *value;
};

struct pl_server {
    struct MHD_Daemon *daemon;
    int listen_fd;
    pthread_t acceptor;
    struct pl_server_opts opts;
    struct pl_router router;
    struct route_stats *stats; /* router.n + 1 entries; the last one counts unmatched requests */
    unsigned char token_hash[SHA256_DIGEST_LENGTH];
    atomic_int inflight;
    atomic_bool draining;
    pthread_mutex_t push_mu;     /* guards pushes */
    struct pl_push_link pushes; /* answered push streams (a ring), ended by the drain */
    pthread_mutex_t defer_mu;    /* guards deferred */
    struct pl_wake deferred;     /* wakes of suspended deferred requests (a ring) */
};

struct pl_req {
    struct pl_server *srv;
    struct MHD_Connection *conn;
    struct pl_arena *arena;
    const char *method;
    const char *path;
    const char *request_id;
    struct pl_match match;
    enum pl_route_result found;
    char allow[64];
    char *body;
    size_t body_len;
    size_t body_cap;
    size_t max_body; /* the route's body limit */
    bool too_large;
    pl_chunk_fn *chunk; /* set by pl_req_stream(): body_len then counts streamed bytes */
    pl_end_fn *end;
    void *stream_arg;
    size_t stream_max;
    bool stream_failed; /* chunk() said stop: discard the rest */
    json_t *json;
    struct header *reply_headers;
    unsigned status;
    size_t bytes;
    int64_t start_us;
    int64_t duration_us;
    const char *kept;   /* first keep_response bytes of the reply, for on_done */
    const void *note;   /* left by the handler for on_done */
    size_t kept_len;
    struct pl_wake *wake; /* set while a deferred reply is awaited (pl_req_defer) */
    pl_resume_fn *resume;
    void *resume_arg;
};

static enum MHD_Result h_healthz(struct pl_req *req);
static enum MHD_Result h_readyz(struct pl_req *req);
static enum MHD_Result h_metrics(struct pl_req *req);

static const struct pl_route builtin_routes[] = {
    { "GET", "/healthz", h_healthz, PL_ROUTE_PUBLIC },
    { "GET", "/readyz", h_readyz, PL_ROUTE_PUBLIC },
    { "GET", "/metrics", h_metrics, PL_ROUTE_PUBLIC },
    { NULL, NULL, NULL, 0 },
};

/* ---- accessors ---- */

struct pl_arena *
pl_req_arena(const struct pl_req *req)
{
    return req->arena;
}

void *
pl_req_ctx(const struct pl_req *req)
{
    return req->srv->opts.ctx;
}

const char *
pl_req_method(const struct pl_req *req)
{
    return req->method;
}

const char *
pl_req_path(const struct pl_req *req)
{
    return req->path;
}

const char *
pl_req_id(const struct pl_req *req)
{
    return req->request_id;
}

json_t *
pl_req_json(const struct pl_req *req)
{
    return req->json;
}

const char *
pl_req_body(const struct pl_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body;
}

const char *
pl_req_param(const struct pl_req *req, const char *name)
{
    size_t n = strlen(name);

    for (int i = 0; i < req->match.nparams; i++)
        if (req->match.name_len[i] == n && memcmp(req->match.name[i], name, n) == 0)
            return pl_arena_strndup(req->arena, req->match.value[i], req->match.value_len[i]);
    return NULL;
}

const char *
pl_req_query(const struct pl_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
pl_req_header(const struct pl_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

PGconn *
pl_req_db(struct pl_req *req, enum MHD_Result *rc)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = NULL;

    if (req->srv->opts.db == NULL)
        pl_err_set(&err, 500, "internal", "this binary has no database");
    else
        c = pl_db_conn(req->srv->opts.db, &err);
    if (c == NULL)
        *rc = pl_reply_err(req, &err);
    return c;
}

void
pl_req_set_note(struct pl_req *req, const void *note)
{
    req->note = note;
}

const void *
pl_req_note(const struct pl_req *req)
{
    return req->note;
}

unsigned
pl_req_status(const struct pl_req *req)
{
    return req->status;
}

long long
pl_req_duration_us(const struct pl_req *req)
{
    return req->duration_us;
}

const char *
pl_req_route(const struct pl_req *req)
{
    return req->match.index >= 0 ? req->srv->router.routes[req->match.index].route->pattern
                                 : "unmatched";
}

const char *
pl_req_client_ip(const struct pl_req *req, char buf[64])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    buf[0] = '\0';
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, 64);
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf, 64);
    return buf;
}

const char *
pl_req_reply_body(const struct pl_req *req, size_t *len)
{
    *len = req->kept_len;
    return req->kept;
}

struct MHD_Connection *
pl_req_connection(const struct pl_req *req)
{
    return req->conn;
}

void
pl_req_reply_header(struct pl_req *req, const char *name, const char *value)
{
    struct header *h = pl_arena_alloc(req->arena, sizeof(*h));

    h->name = pl_arena_strdup(req->arena, name);
    h->value = pl_arena_strdup(req->arena, value);
    h->next = req->reply_headers;
    req->reply_headers = h;
}

struct pl_server *
pl_req_server(const struct pl_req *req)
{
    return req->srv;
}

bool
pl_server_draining(const struct pl_server *srv)
{
    return atomic_load(&srv->draining);
}

void
pl_server_push_link(struct pl_server *srv, struct pl_push_link *l, bool add)
{
    pthread_mutex_lock(&srv->push_mu);
    if (add) {
        l->next = srv->pushes.next;
        l->prev = &srv->pushes;
        l->next->prev = l;
        srv->pushes.next = l;
    } else {
        l->prev->next = l->next;
        l->next->prev = l->prev;
        l->next = l->prev = l;
    }
    pthread_mutex_unlock(&srv->push_mu);
}

/* Ends every answered push stream; each unlinks itself once its connection is closed. */
static void
push_end_all(struct pl_server *srv)
{
    pthread_mutex_lock(&srv->push_mu);
    for (struct pl_push_link *l = srv->pushes.next; l != &srv->pushes; l = l->next)
        pl_push_end(l->push);
    pthread_mutex_unlock(&srv->push_mu);
}

/* ---- deferred replies ---- */

static void
wake_unref(struct pl_wake *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Takes w out of the server's ring, if it is still in. */
static void
wake_unlink(struct pl_server *srv, struct pl_wake *w)
{
    pthread_mutex_lock(&srv->defer_mu);
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = w;
    pthread_mutex_unlock(&srv->defer_mu);
}

struct pl_wake *
pl_req_defer(struct pl_req *req, pl_resume_fn *fn, void *arg)
{
    struct pl_server *srv = req->srv;
    struct pl_wake *w = calloc(1, sizeof(*w));

    PL_ASSERT(w != NULL && req->wake == NULL);
    pthread_mutex_init(&w->mu, NULL);
    atomic_init(&w->refs, 2); /* the request's and the waker's */
    w->conn = req->conn;
    w->waiting = true;
    req->wake = w;
    req->resume = fn;
    req->resume_arg = arg;
    MHD_suspend_connection(req->conn); /* before anyone can fire w */
    pthread_mutex_lock(&srv->defer_mu);
    w->next = srv->deferred.next;
    w->prev = &srv->deferred;
    w->next->prev = w;
    srv->deferred.next = w;
    pthread_mutex_unlock(&srv->defer_mu);
    return w;
}

/* Resumes the connection unless it was resumed already or the request is over.  Holds w->mu. */
static void
wake_locked(struct pl_wake *w, bool abandoned)
{
    if (w->waiting && !w->fired) {
        w->fired = true;
        w->abandoned = abandoned;
        MHD_resume_connection(w->conn);
    }
}

void
pl_wake_fire(struct pl_wake *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    wake_locked(w, false);
    pthread_mutex_unlock(&w->mu);
    wake_unref(w);
}

/* The request stops waiting: it was resumed, or it is over.  Returns whether the drain woke it. */
static bool
wake_detach(struct pl_req *req)
{
    struct pl_wake *w = req->wake;
    bool abandoned;

    wake_unlink(req->srv, w);
    pthread_mutex_lock(&w->mu);
    w->waiting = false;
    abandoned = w->abandoned;
    pthread_mutex_unlock(&w->mu);
    req->wake = NULL;
    wake_unref(w);
    return abandoned;
}

/* The call MHD makes after a resume: the handler's continuation replies. */
static enum MHD_Result
resume_deferred(struct pl_req *req)
{
    pl_resume_fn *fn = req->resume;
    bool abandoned = wake_detach(req);

    req->resume = NULL;
    return fn(req, req->resume_arg, abandoned);
}

/* Drain deadline: wakes every request still waiting, its continuation answers 503. */
static void
wake_all_deferred(struct pl_server *srv)
{
    pthread_mutex_lock(&srv->defer_mu);
    for (struct pl_wake *w = srv->deferred.next; w != &srv->deferred; w = w->next) {
        pthread_mutex_lock(&w->mu);
        wake_locked(w, true);
        pthread_mutex_unlock(&w->mu);
    }
    pthread_mutex_unlock(&srv->defer_mu);
}

/* ---- replies ---- */

enum MHD_Result
pl_reply_response(struct pl_req *req, unsigned status, struct MHD_Response *resp, size_t bytes)
{
    enum MHD_Result rc;

    if (req->request_id != NULL)
        MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    for (struct header *h = req->reply_headers; h != NULL; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    if (atomic_load(&req->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (req->srv->opts.decorate != NULL)
        req->srv->opts.decorate(req, resp, req->srv->opts.ctx);
    req->status = status;
    req->bytes = bytes;
    rc = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Queues body (malloc'd, taken) with status and the standard headers. */
static enum MHD_Result
reply_take(struct pl_req *req, unsigned status, char *body, size_t n, const char *ctype)
{
    struct MHD_Response *resp;
    size_t keep = req->srv->opts.keep_response;

    if (keep > 0 && body != NULL) {
        req->kept_len = n < keep ? n : keep;
        req->kept = pl_arena_strndup(req->arena, body, req->kept_len);
    }
    resp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    return pl_reply_response(req, status, resp, n);
}

enum MHD_Result
pl_reply_json(struct pl_req *req, unsigned status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

    json_decref(j);
    if (text == NULL)
        return pl_reply_error(req, 500, "internal", "could not serialize the response");
    return reply_take(req, status, text, strlen(text), "application/json");
}

enum MHD_Result
pl_reply_text(struct pl_req *req, unsigned status, const char *ctype, const char *text, size_t n)
{
    char *copy = malloc(n + 1);

    PL_ASSERT(copy != NULL);
    memcpy(copy, text, n);
    copy[n] = '\0';
    return reply_take(req, status, copy, n, ctype);
}

enum MHD_Result
pl_reply_json_text(struct pl_req *req, unsigned status, const char *text, size_t n)
{
    return pl_reply_text(req, status, "application/json", text, n);
}

json_t *
pl_error_body(const char *code, const char *message, json_t *errors)
{
    json_t *j = json_object();

    json_object_set_new(j, "error", json_string(code));
    json_object_set_new(j, "message", json_string(message));
    if (errors != NULL)
        json_object_set_new(j, "errors", errors);
    return j;
}

/* Logs a 4xx at info with its code, a 5xx at error. */
static void
log_error_reply(unsigned status, const char *code, const char *msg)
{
    if (status >= 500)
        pl_log_error("request failed: %s: %s", code, msg);
    else
        pl_log_info("request rejected: %u %s: %s", status, code, msg);
}

enum MHD_Result
pl_reply_error(struct pl_req *req, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_error_reply(status, code, msg);
    return pl_reply_json(req, status, pl_error_body(code, msg, NULL));
}

json_t *
pl_invalid_body(json_t *errors)
{
    return pl_error_body("validation_failed", "The given data was invalid.", errors);
}

json_t *
pl_err_body(const struct pl_err *err, unsigned *status)
{
    json_t *errors = NULL;

    if (err->status == 422 && err->field[0] != '\0') {
        pl_json_error_add(&errors, err->field, "%s", err->msg);
        *status = 422;
        return pl_invalid_body(errors);
    }
    /*
     * A 500 never shows internal detail to the client: that went to the log.  502/503/504
     * carry our own fixed sentences about an upstream (database, service), never its text.
     */
    if (err->status == 500 || err->status > 504) {
        *status = 500;
        return pl_error_body("internal", "internal error", NULL);
    }
    *status = (unsigned)err->status;
    return pl_error_body(err->code, err->msg, NULL);
}

enum MHD_Result
pl_reply_err(struct pl_req *req, const struct pl_err *err)
{
    unsigned status;
    json_t *body = pl_err_body(err, &status);

    log_error_reply(status, json_string_value(json_object_get(body, "error")),
                    json_string_value(json_object_get(body, "message")));
    return pl_reply_json(req, status, body);
}

enum MHD_Result
pl_reply_row(struct pl_req *req, int rc, unsigned status, const char *json,
             const struct pl_err *err, const char *code, const char *msg)
{
    if (rc > 0) /* PL_DB_ROW */
        return pl_reply_json_text(req, status, json, strlen(json));
    if (rc == 0) /* PL_DB_NONE */
        return pl_reply_error(req, 404, code, "%s", msg);
    return pl_reply_err(req, err);
}

enum MHD_Result
pl_reply_invalid(struct pl_req *req, json_t *errors)
{
    log_error_reply(422, "validation_failed", "the given data was invalid");
    return pl_reply_json(req, 422, pl_invalid_body(errors));
}

/* ---- built-in routes ---- */

static enum MHD_Result
h_healthz(struct pl_req *req)
{
    static const char ok[] = "{\"status\":\"ok\"}";

    return pl_reply_json_text(req, 200, ok, sizeof(ok) - 1);
}

static enum MHD_Result
h_readyz(struct pl_req *req)
{
    static const char ok[] = "{\"status\":\"ready\"}";
    const struct pl_server *srv = req->srv;

    bool ready = srv->opts.ready != NULL ? srv->opts.ready(srv->opts.ctx)
                 : srv->opts.db == NULL || pl_db_ready(srv->opts.db);

    if (!ready)
        return pl_reply_error(req, 503, "not_ready", "database not reachable or not migrated");
    return pl_reply_json_text(req, 200, ok, sizeof(ok) - 1);
}

/* Writes the request counter and latency histogram of every route and status seen. */
static void
http_metrics(struct pl_buf *out, void *arg)
{
    const struct pl_server *srv = arg;
    const char *svc = srv->opts.service;

    pl_buf_puts(out, "# TYPE parley_http_requests_total counter\n"
                     "# TYPE parley_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= srv->router.n; r++) {
        const char *route = r < srv->router.n ? srv->router.routes[r].route->pattern : "unmatched";
        const char *method = r < srv->router.n ? srv->router.routes[r].route->method : "any";

        for (int s = 0; s < STATUS_SLOTS; s++) {
            const struct status_slot *sl = &srv->stats[r].slot[s];
            unsigned status = atomic_load(&sl->status);
            unsigned long long cum = 0;
            char labels[256];

            if (status == 0)
                continue;
            snprintf(labels, sizeof(labels), "service=\"%s\",method=\"%s\",route=\"%s\",status=\"%u\"",
                     svc, method, route, status);
            pl_buf_printf(out, "parley_http_requests_total{%s} %llu\n", labels,
                          atomic_load(&sl->count));
            for (int b = 0; b < NBUCKETS; b++) {
                cum += atomic_load(&sl->bucket[b]);
                pl_buf_printf(out, "parley_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                              labels, bucket_le[b], cum);
            }
            pl_buf_printf(out, "parley_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n"
                               "parley_http_request_duration_seconds_sum{%s} %.6f\n"
                               "parley_http_request_duration_seconds_count{%s} %llu\n",
                          labels, atomic_load(&sl->count), labels,
                          (double)atomic_load(&sl->sum_us) / 1e6, labels, atomic_load(&sl->count));
        }
    }
    pl_buf_printf(out, "# TYPE parley_http_inflight gauge\nparley_http_inflight{service=\"%s\"} %d\n",
                  svc, atomic_load(&srv->inflight));
}

static enum MHD_Result
h_metrics(struct pl_req *req)
{
    struct pl_buf out = PL_BUF_INIT;

    pl_metrics_collect(&out);
    if (out.data == NULL)
        pl_buf_puts(&out, "");
    return reply_take(req, 200, out.data, out.len, "text/plain; version=0.0.4");
}

/* ---- request life cycle ---- */

static void
record(struct pl_server *srv, int route, unsigned status, long long us)
{
    struct route_stats *rs = &srv->stats[route < 0 ? srv->router.n : route];
    struct status_slot *sl = NULL;
    int b = 0;

    for (int s = 0; s < STATUS_SLOTS && sl == NULL; s++) {
        unsigned cur = atomic_load(&rs->slot[s].status), zero = 0;

        if (cur == status || (cur == 0 && (atomic_compare_exchange_strong(&rs->slot[s].status,
                                                                          &zero, status) ||
                                           zero == status)))
            sl = &rs->slot[s];
    }
    if (sl == NULL)
        return; /* more distinct statuses than slots on one route: not worth a lock */
    while (b < NBUCKETS && (double)us / 1e6 > bucket_le[b])
        b++;
    atomic_fetch_add(&sl->count, 1);
    atomic_fetch_add(&sl->sum_us, (unsigned long long)us);
    if (b < NBUCKETS)
        atomic_fetch_add(&sl->bucket[b], 1);
}

/* Frees the body buffer through its owner's pointer, so it may be reallocated freely. */
static void
body_free(void *p)
{
    free(*(char **)p);
}

/* Whether the request matched a route with flag. */
static bool
route_has(const struct pl_req *req, unsigned flag)
{
    return req->found == PL_MATCH_FOUND &&
           (req->srv->router.routes[req->match.index].route->flags & flag);
}

static struct pl_req *
req_new(struct pl_server *srv, struct MHD_Connection *conn, const char *method, const char *url)
{
    struct pl_arena *a = pl_arena_new(4096);
    struct pl_req *req = pl_arena_alloc(a, sizeof(*req));
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");

    memset(req, 0, sizeof(*req));
    req->srv = srv;
    req->conn = conn;
    req->arena = a;
    req->method = method;
    req->path = pl_arena_strdup(a, url);
    req->start_us = pl_time_mono_us();
    if (pl_request_id_valid(rid)) {
        req->request_id = pl_arena_strdup(a, rid);
    } else {
        char *id = pl_arena_alloc(a, PL_UUID_STRLEN + 1);

        pl_uuid_v7_fast(id);
        req->request_id = id;
    }
    req->found = pl_router_match(&srv->router, method, req->path, &req->match, req->allow,
                                 sizeof(req->allow));
    req->max_body = srv->opts.max_body;
    if (route_has(req, PL_ROUTE_BIG_BODY) && srv->opts.big_body > req->max_body)
        req->max_body = srv->opts.big_body;
    atomic_fetch_add(&srv->inflight, 1);
    return req;
}

/* Grows the body buffer to hold want bytes; want never exceeds the route's body limit. */
static void
body_reserve(struct pl_req *req, size_t want)
{
    size_t cap = req->body_cap ? req->body_cap : 4096;

    if (want <= req->body_cap)
        return;
    while (cap < want)
        cap *= 2;
    if (cap > req->max_body)
        cap = req->max_body;
    if (req->body == NULL)
        pl_arena_defer(req->arena, body_free, &req->body);
    req->body = realloc(req->body, cap);
    PL_ASSERT(req->body != NULL);
    req->body_cap = cap;
}

/* Copies one body chunk, refusing to grow past the route's body limit. */
static void
body_append(struct pl_req *req, const char *data, size_t n)
{
    if (req->too_large)
        return;
    if (n > req->max_body - req->body_len) {
        req->too_large = true;
        return;
    }
    body_reserve(req, req->body_len + n);
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
}

/* Constant-time service token check: compares SHA-256 digests so lengths leak nothing. */
static bool
token_ok(const struct pl_server *srv, const char *given)
{
    unsigned char h[SHA256_DIGEST_LENGTH];

    if (srv->opts.service_token == NULL)
        return true;
    if (given == NULL)
        return false;
    SHA256((const unsigned char *)given, strlen(given), h);
    return CRYPTO_memcmp(h, srv->token_hash, sizeof(h)) == 0;
}

/* Parses the body of a JSON route once; replies and returns false on failure. */
static bool
parse_body(struct pl_req *req, enum MHD_Result *rc)
{
    json_error_t jerr;

    if (!pl_content_type_is_json(pl_req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        *rc = pl_reply_error(req, 415, "unsupported_media_type",
                             "request body must be application/json");
        return false;
    }
    req->json = json_loadb(req->body ? req->body : "", req->body_len,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (req->json == NULL) {
        *rc = pl_reply_error(req, 400, "invalid_json", "request body is not valid JSON: %s",
                             jerr.text);
        return false;
    }
    pl_json_keep(req->arena, req->json);
    return true;
}

static enum MHD_Result
dispatch(struct pl_req *req)
{
    const struct pl_route *route;
    enum MHD_Result rc;
    struct pl_err err = PL_ERR_INIT;

    if (req->too_large) {
        pl_body_check(req->max_body, (uint64_t)req->max_body + 1, &err);
        return pl_reply_err(req, &err);
    }
    if (strcmp(req->method, "OPTIONS") == 0 && req->found != PL_MATCH_NO_PATH) {
        pl_req_reply_header(req, MHD_HTTP_HEADER_ALLOW, req->allow[0] ? req->allow : "OPTIONS");
        return reply_take(req, 204, NULL, 0, "application/json");
    }
    if (req->found == PL_MATCH_NO_PATH)
        return pl_reply_error(req, 404, "Not found", "no route for \"%s\"", req->path);
    if (req->found == PL_MATCH_NO_METHOD) {
        pl_req_reply_header(req, MHD_HTTP_HEADER_ALLOW, req->allow);
        return pl_reply_error(req, 405, "method_not_allowed", "method %s is not allowed here; allowed: %s",
                              req->method, req->allow);
    }
    route = req->srv->router.routes[req->match.index].route;
    if (!(route->flags & PL_ROUTE_PUBLIC) &&
        !token_ok(req->srv, pl_req_header(req, "X-Service-Token")))
        return pl_reply_error(req, 401, "Unauthorized", "Valid authentication required.");
    if ((route->flags & PL_ROUTE_JSON) && !parse_body(req, &rc))
        return rc;
    return route->fn(req);
}

enum MHD_Result
pl_req_stream(struct pl_req *req, size_t max, pl_chunk_fn *chunk, pl_end_fn *end, void *arg)
{
    req->chunk = chunk;
    req->end = end;
    req->stream_arg = arg;
    req->stream_max = max;
    return MHD_YES;
}

static bool
is_stream_route(const struct pl_req *req)
{
    return route_has(req, PL_ROUTE_STREAM);
}

/* First call of a streaming route: the handler rejects (a reply) or accepts (pl_req_stream). */
static enum MHD_Result
stream_start(struct pl_req *req, unsigned long long declared)
{
    struct pl_err err = PL_ERR_INIT;
    enum MHD_Result rc;

    pl_log_set_request_id(req->request_id);
    rc = dispatch(req);
    pl_log_set_request_id(NULL);
    if (req->status != 0)
        return rc; /* rejected early: MHD closes the connection after it */
    PL_ASSERT(req->end != NULL);
    if (pl_body_check(req->stream_max, declared, &err) != PL_OK)
        return pl_reply_err(req, &err);
    return MHD_YES;
}

/* Hands one chunk to the handler, or discards it once the body failed or is too large. */
static void
stream_append(struct pl_req *req, const char *data, size_t n)
{
    if (req->too_large || req->stream_failed)
        return;
    if (n > req->stream_max - req->body_len) {
        req->too_large = true;
        return;
    }
    req->body_len += n;
    pl_log_set_request_id(req->request_id);
    if (req->chunk(req, req->stream_arg, data, n) != PL_OK)
        req->stream_failed = true;
    pl_log_set_request_id(NULL);
}

/* Last call of a streaming route: 413 from here, anything else from the handler. */
static enum MHD_Result
stream_end(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;

    if (req->too_large) {
        pl_body_check(req->stream_max, (uint64_t)req->stream_max + 1, &err);
        return pl_reply_err(req, &err);
    }
    return req->end(req, req->stream_arg);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    struct pl_server *srv = cls;
    struct pl_req *req = *req_cls;
    enum MHD_Result rc;

    (void)version;
    if (req == NULL) { /* 1st call: headers only */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        struct pl_err err = PL_ERR_INIT;
        unsigned long long len = cl != NULL ? strtoull(cl, NULL, 10) : 0;

        *req_cls = req = req_new(srv, conn, method, url);
        if (is_stream_route(req))
            return stream_start(req, len);
        if (pl_body_check(req->max_body, len, &err) != PL_OK)
            return pl_reply_err(req, &err); /* early: MHD closes the connection after it */
        if (len > 0)
            body_reserve(req, (size_t)len); /* one allocation for a declared length */
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a chunk: replies are refused here */
        if (req->end != NULL)
            stream_append(req, upload, *upload_size);
        else
            body_append(req, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    pl_log_set_request_id(req->request_id);
    if (req->wake != NULL)
        rc = resume_deferred(req);
    else
        rc = req->end != NULL ? stream_end(req) : dispatch(req);
    pl_log_set_request_id(NULL);
    return rc;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct pl_server *srv = cls;
    struct pl_req *req = *req_cls;
    long long us;
    const char *route;

    (void)conn;
    if (req == NULL)
        return;
    if (req->wake != NULL)
        wake_detach(req); /* closed while it waited (the daemon stopping) */
    us = (long long)(pl_time_mono_us() - req->start_us);
    if (req->status == 0)
        req->status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 200 : 499;
    req->duration_us = us;
    route = pl_req_route(req);
    record(srv, req->match.index, req->status, us);
    pl_log_access(req->request_id, req->method, route, req->status, req->bytes, us);
    if (srv->opts.on_done != NULL)
        srv->opts.on_done(req, srv->opts.ctx);
    pl_arena_free(req->arena);
    *req_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}

/*
 * One pool thread per CPU the process may run on.  A thread runs requests start to finish; with
 * one per core, a thread that finishes a request usually finds the next one ready and does not
 * sleep in between, which measured ~25% more GET throughput than eight threads on two cores.
 */
static unsigned
default_threads(void)
{
    cpu_set_t set;
    int n = 2;

    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    return n < 2 ? 2 : (unsigned)n;
}

/* Opens the listening socket on port (0 = any free one) and reads back the port chosen. */
static int
listen_on(uint16_t port, uint16_t *bound, struct pl_err *err)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;

    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        pl_err_set(err, 500, "listen_failed", "could not listen on port %u: %s", port,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *bound = ntohs(sa.sin_port);
    return fd;
}

/*
 * Accepts connections and hands each to MHD, which places an added connection on pool worker
 * (fd % pool size): consecutive connections alternate between threads.  Left to MHD's own
 * listening socket, whichever worker woke first took connections, and a benchmark's eight
 * connections sometimes all landed on one thread of two, cutting throughput by two thirds.
 */
static void *
acceptor_main(void *arg)
{
    struct pl_server *srv = arg;

    for (;;) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof(addr);
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC);

        if (fd >= 0) {
            int one = 1;

            /* Replies can leave in more than one write (a resumed connection, a stream); without
             * this, Nagle holds the later part until the client's delayed ACK, tens of ms. */
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            MHD_add_connection(srv->daemon, fd, (struct sockaddr *)&addr, len); /* closes on error */
            continue;
        }
        if (atomic_load(&srv->draining))
            return NULL;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            usleep(10000); /* out of descriptors: let connections close before retrying */
    }
}

static void
server_free(struct pl_server *srv)
{
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    pl_router_cleanup(&srv->router);
    pthread_mutex_destroy(&srv->push_mu);
    pthread_mutex_destroy(&srv->defer_mu);
    free(srv->stats);
    free(srv);
}

/*
 * MHD's own messages, as JSON log lines like every other.  Most are about clients that went
 * away mid-response (common with event streams), so they are logged at info.
 */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    pl_log_info("libmicrohttpd: %s", msg);
}

struct pl_server *
pl_server_start(const struct pl_server_opts *opts, struct pl_err *err)
{
    struct pl_server *srv = calloc(1, sizeof(*srv));
    const struct pl_route *tables[] = { opts->routes, builtin_routes, NULL };

    PL_ASSERT(srv != NULL);
    pthread_mutex_init(&srv->push_mu, NULL);
    pthread_mutex_init(&srv->defer_mu, NULL);
    srv->deferred.next = srv->deferred.prev = &srv->deferred;
    srv->pushes.next = srv->pushes.prev = &srv->pushes;
    srv->opts = *opts;
    if (srv->opts.threads == 0)
        srv->opts.threads = default_threads();
    pl_router_init(&srv->router, tables);
    srv->stats = calloc((size_t)srv->router.n + 1, sizeof(*srv->stats));
    PL_ASSERT(srv->stats != NULL);
    if (opts->service_token != NULL)
        SHA256((const unsigned char *)opts->service_token, strlen(opts->service_token),
               srv->token_hash);
    srv->listen_fd = listen_on(opts->port, &srv->opts.port, err);
    if (srv->listen_fd < 0) {
        server_free(srv);
        return NULL;
    }
    srv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET |
            MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, srv, MHD_OPTION_THREAD_POOL_SIZE, srv->opts.threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, srv, MHD_OPTION_END);
    if (srv->daemon == NULL ||
        pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0) {
        if (srv->daemon != NULL)
            MHD_stop_daemon(srv->daemon);
        server_free(srv);
        pl_err_set(err, 500, "listen_failed", "could not start the HTTP server on port %u",
                   opts->port);
        return NULL;
    }
    pl_metrics_register(http_metrics, srv);
    return srv;
}

uint16_t
pl_server_port(const struct pl_server *srv)
{
    return srv->opts.port;
}

void
pl_server_drain_and_free(struct pl_server *srv, int timeout_ms)
{
    int64_t deadline;

    if (srv == NULL)
        return;
    /* Stop accepting: shutdown() wakes the blocked accept4() with an error. */
    atomic_store(&srv->draining, true);
    shutdown(srv->listen_fd, SHUT_RDWR);
    pthread_join(srv->acceptor, NULL);
    push_end_all(srv); /* endless streams would hold the drain to its deadline */
    deadline = pl_time_mono_us() + (int64_t)timeout_ms * 1000;
    while (atomic_load(&srv->inflight) > 0 && pl_time_mono_us() < deadline)
        usleep(10000);
    if (atomic_load(&srv->inflight) > 0)
        pl_log_warn("drain deadline passed with %d requests in flight", atomic_load(&srv->inflight));
    /* MHD must not stop with suspended connections: deferred ones are woken to answer now. */
    wake_all_deferred(srv);
    deadline = pl_time_mono_us() + DEFER_GRACE_US;
    while (atomic_load(&srv->inflight) > 0 && pl_time_mono_us() < deadline)
        usleep(10000);
    MHD_stop_daemon(srv->daemon);
    pl_metrics_unregister(http_metrics, srv);
    server_free(srv);
}
