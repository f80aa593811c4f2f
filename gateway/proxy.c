/*
 * proxy.c - forwarding public /api/v1 requests to the service that owns them.
 *
 * The path loses its "/v1", the query is passed on re-encoded, the body goes byte for byte.
 * Only the headers a service needs cross: Content-Type, Idempotency-Key, X-Request-Id (from the
 * thread's request id), the service token and the caller's key id — never the caller's key,
 * cookies or Host.  The service's status and body come back unchanged; its paginator URLs are
 * already public ones (PARLEY_PUBLIC_URL).
 *
 * Upstream calls hold no thread: the request is suspended while the client's event loop runs the
 * call (pl_client_job_*), and resumed to relay the answer.
 *
 * A POST with an Idempotency-Key is claimed first and its answer kept for replays (idem.c).
 *
 * Resilience: an idempotent call whose connection failed is retried once after 10-50 ms, and each
 * upstream has a circuit breaker (breaker.c) that answers 503 at once while the service is down.
 *
 * Bodies here are held whole (at most PARLEY_MAX_BODY_BYTES, 1 MiB by default; 3 MiB for the
 * webhooks, whose routes take PL_ROUTE_BIG_BODY); media uploads and content, which may be tens of
 * megabytes, stream through media.c instead.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/uuid.h"
#include "svc.h"

static enum MHD_Result
add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct pl_buf *url = cls;

    (void)kind;
    pl_buf_puts(url, url->data[url->len - 1] == '?' ? "" : "&");
    pl_buf_urlencode(url, key);
    if (value != NULL) {
        pl_buf_puts(url, "=");
        pl_buf_urlencode(url, value);
    }
    return MHD_YES;
}

/*
 * base + "/api" + the path after "/api/v1" + "?" + the query, in the arena.  The path arrives
 * decoded, so it is encoded again: an id holding "?" or "#" (sent as %3F, %23) must stay part of
 * its segment, not end the path and add query parameters of the caller's choosing.
 */
static const char *
upstream_url(struct pl_req *req, const char *base)
{
    struct pl_buf url = PL_BUF_INIT;
    const char *path = pl_req_path(req), *out;

    pl_buf_puts(&url, base);
    pl_buf_puts(&url, "/api");
    pl_buf_pathencode(&url, path + strlen("/api/v1"));
    pl_buf_puts(&url, "?");
    MHD_get_connection_values(pl_req_connection(req), MHD_GET_ARGUMENT_KIND, add_arg, &url);
    if (url.data[url.len - 1] == '?')
        url.data[--url.len] = '\0';
    out = pl_arena_strdup(pl_req_arena(req), url.data);
    pl_buf_cleanup(&url);
    return out;
}

/* a b c in the arena, NUL-terminated. */
static const char *
concat3(struct pl_arena *arena, const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *out = pl_arena_alloc(arena, na + nb + nc + 1);

    memcpy(out, a, na);
    memcpy(out + na, b, nb);
    memcpy(out + na + nb, c, nc + 1);
    return out;
}

/* "Name: value" for a header the caller sent, or NULL. */
const char *
gw_pass_header(struct pl_req *req, const char *name)
{
    const char *v = pl_req_header(req, name);

    return v ? concat3(pl_req_arena(req), name, ": ", v) : NULL;
}

/* GET, PUT and DELETE may be sent twice: the second send cannot change the outcome. */
static bool
idempotent(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "DELETE") == 0;
}

/* The method sent upstream: a HEAD goes as GET (the server drops the body of its answer). */
static const char *
upstream_method(const struct pl_req *req)
{
    const char *m = pl_req_method(req);

    return strcmp(m, "HEAD") == 0 ? "GET" : m;
}

/* 10-50 ms, different per thread and call, so retries from many threads do not align. */
long
gw_jitter_ms(void)
{
    static _Thread_local unsigned seed;

    if (seed == 0)
        seed = (unsigned)pl_time_mono_us() ^ (unsigned)(uintptr_t)&seed;
    return 10 + rand_r(&seed) % 41;
}

void
gw_jitter(void)
{
    struct timespec ts = { 0, gw_jitter_ms() * 1000000L };

    nanosleep(&ts, NULL);
}

/*
 * One upstream call in flight.  The request waits suspended (pl_req_defer) while the client's
 * loop thread runs the call; the call's end wakes it and resume() relays the answer.  A call
 * whose connection failed (503 upstream_unavailable) is started once more after a short jitter
 * when the method is idempotent; never after a timeout: the service may be working on it, and a
 * second try would double the caller's wait.  This record belongs to the call (freed by its last
 * done), since the request may be gone before the call ends; the request keeps its own reference
 * to the job, released with its arena.
 */
struct relay {
    struct pl_wake *wake;
    struct gw_breaker *breaker;
    enum gw_pass pass;
    bool retry; /* one retry left */
};

static void
job_release(void *job)
{
    pl_client_job_release(job);
}

/* On the loop thread: a retry, or the breaker's verdict and the request's wake-up. */
static void
relay_done(struct pl_client_job *job, void *arg)
{
    struct relay *r = arg;
    struct pl_client_resp resp;
    struct pl_err err = PL_ERR_INIT;
    bool ok = pl_client_job_result(job, NULL, &resp, &err) == PL_OK && resp.status < 500;

    if (!ok && err.status == 503 && r->retry) {
        r->retry = false;
        pl_client_job_start(job, gw_jitter_ms(), relay_done, r);
        return;
    }
    gw_breaker_leave(r->breaker, r->pass, ok);
    pl_wake_fire(r->wake);
    free(r);
}

/* What a suspended request waits for: its call, and its Idempotency-Key claim (or NULL). */
struct waiting {
    struct pl_client_job *job;
    struct gw_idem_key *idem;
};

/* Back on a pool thread once the call is over: its answer, or its error. */
static enum MHD_Result
resume(struct pl_req *req, void *arg, bool abandoned)
{
    struct waiting *w = arg;
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_resp resp = { 0 };
    int rc = abandoned ? PL_ERR : pl_client_job_result(w->job, pl_req_arena(req), &resp, &err);

    if (w->idem != NULL)
        gw_idem_finish(req, w->idem, NULL, rc == PL_OK ? (unsigned)resp.status : 0,
                       resp.content_type, resp.body, resp.len);
    if (abandoned)
        return pl_reply_error(req, 503, "upstream_unavailable",
                              "the gateway is shutting down; retry later");
    if (rc != PL_OK)
        return pl_reply_err(req, &err);
    return pl_reply_text(req, (unsigned)resp.status, resp.content_type, resp.body, resp.len);
}

/*
 * Sends the request on to base with the given headers and relays the answer, through the
 * upstream's circuit breaker: refused at once while it is open.  idem: the request's
 * Idempotency-Key claim, settled with the answer (or NULL).
 */
static enum MHD_Result
relay(struct pl_req *req, const char *base, const char *const *headers,
      struct gw_idem_key *idem)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *method = upstream_method(req);
    struct pl_client_opts o = { headers, NULL, 0, ctx->cfg->upstream_timeout_ms };
    struct gw_breaker *b = gw_breaker_for(base);
    enum gw_pass pass = gw_breaker_enter(b);
    struct waiting *w;
    struct relay *r;

    if (pass == GW_DENY) {
        if (idem != NULL)
            gw_idem_finish(req, idem, NULL, 0, NULL, NULL, 0);
        return gw_breaker_refuse(req, b);
    }
    o.body = pl_req_body(req, &o.body_len);
    if (o.body == NULL && strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0)
        o.body = ""; /* an empty body is still a body: the service answers it */
    w = pl_arena_alloc(pl_req_arena(req), sizeof(*w));
    w->job = pl_client_job_new(method, upstream_url(req, base), &o);
    w->idem = idem;
    pl_arena_defer(pl_req_arena(req), job_release, w->job);
    r = malloc(sizeof(*r));
    PL_ASSERT(r != NULL);
    *r = (struct relay){ NULL, b, pass, idempotent(method) };
    r->wake = pl_req_defer(req, resume, w);
    pl_client_job_start(w->job, 0, relay_done, r);
    return MHD_YES;
}

static enum MHD_Result
forward(struct pl_req *req, const char *base, unsigned need)
{
    const char *headers[4] = { NULL };
    struct gw_idem_key *idem = NULL;
    struct gw_caller caller;
    bool answered = false;
    enum MHD_Result rc;
    int n = 0;

    if (!gw_authorize(req, need, &caller, &rc))
        return rc;
    if (strcmp(pl_req_method(req), "POST") == 0) {
        idem = gw_idem_begin(req, caller.key_id, &answered, &rc);
        if (answered)
            return rc;
    }
    headers[n++] = concat3(pl_req_arena(req), "X-Parley-Key-Id", ": ", caller.key_id);
    if ((headers[n] = gw_pass_header(req, "Idempotency-Key")) != NULL)
        n++;
    if ((headers[n] = gw_pass_header(req, "Content-Type")) != NULL)
        n++;
    return relay(req, base, headers, idem);
}

/*
 * Webhooks: no API key (the channel signs its deliveries), the body byte for byte and the
 * channel's signature headers untouched, since the signature covers exactly those bytes.
 */
enum MHD_Result
gw_to_inbound(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *headers[4] = { NULL };
    int n = 0;

    if ((headers[n] = gw_pass_header(req, "Content-Type")) != NULL)
        n++;
    if ((headers[n] = gw_pass_header(req, "X-Hub-Signature-256")) != NULL)
        n++;
    if ((headers[n] = gw_pass_header(req, "X-Telegram-Bot-Api-Secret-Token")) != NULL)
        n++;
    return relay(req, ctx->cfg->inbound_url, headers, NULL);
}

/* Reads (GET, HEAD) need read scope; everything else write (SPEC 10). */
static unsigned
scope_of(const struct pl_req *req)
{
    return strcmp(upstream_method(req), "GET") == 0 ? GW_READ : GW_WRITE;
}

enum MHD_Result
gw_to_customer(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);

    return forward(req, ctx->cfg->customer_url, scope_of(req));
}

enum MHD_Result
gw_to_conversation(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);

    return forward(req, ctx->cfg->conversation_url, scope_of(req));
}

enum MHD_Result
gw_to_messaging(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);

    return forward(req, ctx->cfg->messaging_url, scope_of(req));
}

/* Media metadata and download URLs; uploads and content stream through media.c instead. */
enum MHD_Result
gw_to_media(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);

    return forward(req, ctx->cfg->media_url, scope_of(req));
}

/* Dead deliveries and their replay: admin scope, forwarded like any API call. */
enum MHD_Result
gw_webhooks_admin(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);

    return forward(req, ctx->cfg->inbound_url, GW_ADMIN);
}
