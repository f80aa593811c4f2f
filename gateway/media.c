/*
 * media.c - the media routes that carry bytes: the upload and the content, streamed through
 * without being held whole.  Metadata and download URLs go through proxy.c like any other call.
 *
 * Upload: the route streams (PL_ROUTE_STREAM), so the handler runs as soon as the headers are in.
 * It authorizes (write scope), refuses a declared body over PARLEY_MEDIA_MAX_BYTES plus the form's
 * slack (413), and opens the call to media-svc with the caller's Content-Type and length.  What
 * media-svc refuses on the headers alone (415, 413) is relayed at once.  Otherwise each chunk of
 * the body goes on as it arrives, and the next is taken only once media-svc has taken this one, so
 * a few buffers of the body are in memory at any time, whatever its size (back-pressure).
 *
 * Content: opened with an API key of read scope or with a signed URL, checked here (HMAC-SHA256 of
 * "{id}.{expires}" with PARLEY_MEDIA_URL_SECRET, compared in constant time, expiry not passed),
 * because media-svc trusts the service token the gateway sends: nothing unauthenticated may reach
 * it.  The caller's Range and conditional headers go upstream; the status and the headers that
 * describe the bytes come back, and the body is pulled from media-svc as the client takes it.
 *
 * Each call passes media-svc's circuit breaker; a call the client abandons counts as a success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/signed_url.h"
#include "parley/uuid.h"
#include "idem_digest.h"
#include "svc.h"

#define CONTENT_BLOCK (32u * 1024u)    /* bytes MHD asks the content reader for at a time */
#define LIMIT_FMT "file exceeds the limit of %zu bytes (%.1f MiB)"

/* One call to media-svc under its circuit breaker. */
struct call {
    struct pl_client_stream *s; /* NULL once a response owns it */
    struct gw_breaker *b;
    enum gw_pass pass;
    bool reported; /* the breaker was told how it went */
};

/* Answer headers that describe the bytes and cross to the caller (Content-Length is MHD's). */
static const char *const content_headers[] = {
    "ETag", "Content-Range", "Accept-Ranges", "Content-Disposition", "X-Content-Type-Options",
    "Cache-Control", "Last-Modified", NULL,
};

/* Caller headers that shape the answer and cross to media-svc. */
static const char *const condition_headers[] = { "Range", "If-Range", "If-None-Match", NULL };

/* ---- calls and their breaker ---- */

static void
report(struct call *c, bool ok)
{
    if (!c->reported)
        gw_breaker_leave(c->b, c->pass, ok);
    c->reported = true;
}

/* Arena cleanup: ends an unfinished call; one the client abandoned is not media-svc's fault. */
static void
call_cleanup(void *p)
{
    struct call *c = p;

    report(c, true);
    pl_client_stream_free(c->s);
    c->s = NULL;
}

/* A new call through the breaker, or NULL with the 503 queued in *rc while it is open. */
static struct call *
call_enter(struct pl_req *req, enum MHD_Result *rc)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct call *c = pl_arena_alloc(pl_req_arena(req), sizeof(*c));

    memset(c, 0, sizeof(*c));
    c->b = gw_breaker_for(ctx->cfg->media_url);
    c->pass = gw_breaker_enter(c->b);
    if (c->pass == GW_DENY) {
        *rc = gw_breaker_refuse(req, c->b);
        return NULL;
    }
    pl_arena_defer(pl_req_arena(req), call_cleanup, c);
    return c;
}

/* A failed call: the breaker hears of it, the caller gets 502/503/504 JSON. */
static enum MHD_Result
call_failed(struct pl_req *req, struct call *c, const struct pl_err *err)
{
    report(c, false);
    return pl_reply_err(req, err);
}

/* The headers of content_headers the answer has, for the reply (Content-Type too if asked). */
static void
pass_headers(struct pl_req *req, const struct pl_client_stream *s, bool with_type)
{
    const char *v;

    for (const char *const *h = content_headers; *h != NULL; h++)
        if ((v = pl_client_stream_header(s, *h)) != NULL)
            pl_req_reply_header(req, *h, v);
    if (with_type && (v = pl_client_stream_header(s, "Content-Type")) != NULL)
        pl_req_reply_header(req, "Content-Type", v);
}

/* An upload under way: its call, and with an Idempotency-Key its claim and the body's hash so
 * far.  Without a call the key already has an answer: the body is only hashed, then replayed. */
struct upload {
    struct call *c;
    struct gw_idem_key *idem;
    struct gw_idem_digest *digest;
    struct gw_idem_row stored;
};

/*
 * Relays an answer read whole (the upload's JSON, an error, a 416): status, type and body.  u:
 * a keyed upload whose answer is kept for replays (else NULL).
 */
static enum MHD_Result
relay_whole(struct pl_req *req, struct call *c, int status, struct upload *u)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_buf body = PL_BUF_INIT;
    const char *ct = pl_client_stream_header(c->s, "Content-Type");
    char piece[4096];
    enum MHD_Result rc;
    long n;

    while ((n = pl_client_stream_read(c->s, piece, sizeof(piece), &err)) > 0 &&
           body.len + (size_t)n <= GW_JSON_BODY_MAX)
        pl_buf_append(&body, piece, (size_t)n);
    if (n > 0)
        pl_err_set(&err, 502, "upstream_bad_response", "a service answered too much");
    if (n != 0) {
        rc = call_failed(req, c, &err);
    } else {
        report(c, status < 500);
        if (u != NULL && u->idem != NULL) {
            char hash[65];

            gw_digest_end(u->digest, hash);
            gw_idem_finish(req, u->idem, hash, (unsigned)status, ct, body.data ? body.data : "",
                           body.len);
        }
        pass_headers(req, c->s, false);
        rc = pl_reply_text(req, (unsigned)status, ct != NULL ? ct : "application/json",
                           body.data != NULL ? body.data : "", body.len);
    }
    pl_buf_cleanup(&body);
    return rc;
}

/* ---- upload ---- */

/* Declared Content-Length; -1 for a chunked body, 0 for none. */
static long long
declared_length(const struct pl_req *req)
{
    const char *cl = pl_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

    if (cl != NULL)
        return strtoll(cl, NULL, 10);
    return pl_req_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL ? -1 : 0;
}

static struct pl_client_stream *
open_upload(struct pl_req *req, const struct gw_caller *caller, long long len,
            struct pl_err *err)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_arena *a = pl_req_arena(req);
    const char *headers[4] = { NULL };
    struct pl_client_opts o = { headers, NULL, 0, ctx->cfg->upstream_timeout_ms };
    int n = 0;

    headers[n++] = pl_arena_printf(a, "X-Parley-Key-Id: %s", caller->key_id);
    if ((headers[n] = gw_pass_header(req, "Content-Type")) != NULL)
        n++;
    if ((headers[n] = gw_pass_header(req, "Idempotency-Key")) != NULL)
        n++;
    return pl_client_stream_open("POST", pl_arena_printf(a, "%s/api/media/upload",
                                                         ctx->cfg->media_url),
                                 &o, len, err);
}

/* One piece of the body: into the hash of a keyed upload, and on to media-svc, waiting until it
 * took it.  PL_ERR once it answered. */
static int
upload_chunk(struct pl_req *req, void *arg, const char *data, size_t n)
{
    struct upload *u = arg;
    struct pl_err err = PL_ERR_INIT;

    (void)req;
    if (u->digest != NULL)
        gw_digest_add(u->digest, data, n);
    return u->c == NULL ? PL_OK : pl_client_stream_send(u->c->s, data, n, &err);
}

static enum MHD_Result
upload_end(struct pl_req *req, void *arg)
{
    struct upload *u = arg;
    struct pl_err err = PL_ERR_INIT;
    char hash[65];
    int status;

    if (u->c == NULL) { /* the key's answer is kept: this body decides replay or 422 */
        gw_digest_end(u->digest, hash);
        return gw_idem_replay(req, &u->stored, hash);
    }
    status = pl_client_stream_wait(u->c->s, &err);
    return status < 0 ? call_failed(req, u->c, &err) : relay_whole(req, u->c, status, u);
}

enum MHD_Result
gw_media_upload(struct pl_req *req)
{
    const struct gw_cfg *cfg = ((const struct svc_ctx *)pl_req_ctx(req))->cfg;
    size_t max = cfg->media_max_bytes + GW_FORM_SLACK;
    long long len = declared_length(req);
    struct pl_err err = PL_ERR_INIT;
    struct upload *u = pl_arena_alloc(pl_req_arena(req), sizeof(*u));
    struct gw_caller caller;
    bool answered = false;
    enum MHD_Result rc;
    int status;

    memset(u, 0, sizeof(*u));
    if (!gw_authorize(req, GW_WRITE, &caller, &rc))
        return rc;
    if (len > (long long)max) /* refused before a byte of it is read */
        return pl_reply_error(req, 413, "body_too_large", LIMIT_FMT, cfg->media_max_bytes,
                              (double)cfg->media_max_bytes / (1 << 20));
    u->idem = gw_idem_begin_stream(req, caller.key_id, &u->stored, &answered, &rc);
    if (answered)
        return rc;
    if (u->idem != NULL || u->stored.done)
        u->digest = gw_idem_digest_start(req);
    if (u->stored.done)
        return pl_req_stream(req, max, upload_chunk, upload_end, u);
    if ((u->c = call_enter(req, &rc)) == NULL)
        return rc;
    if ((u->c->s = open_upload(req, &caller, len, &err)) == NULL)
        return call_failed(req, u->c, &err);
    if (pl_client_stream_answered(u->c->s)) { /* refused on the headers alone (415, 413) */
        status = pl_client_stream_wait(u->c->s, &err);
        return status < 0 ? call_failed(req, u->c, &err) : relay_whole(req, u->c, status, NULL);
    }
    return pl_req_stream(req, max, upload_chunk, upload_end, u);
}

/* ---- content ---- */

/*
 * A valid unexpired signature (within its client's rate limit), or else an API key of read scope.
 * False with the reply queued: 403 for a signature that fails without a valid key, 401 with
 * neither (SPEC 3 and 10), 429 over the rate limit.
 */
static bool
content_allowed(struct pl_req *req, const char *id, struct gw_caller *caller,
                enum MHD_Result *rc)
{
    const struct gw_cfg *cfg = ((const struct svc_ctx *)pl_req_ctx(req))->cfg;
    const char *exp = pl_req_query(req, "expires"), *sig = pl_req_query(req, "signature");
    bool signed_url = exp != NULL || sig != NULL;

    caller->key_id[0] = '\0';
    if (signed_url &&
        pl_signed_url_valid(cfg->media_url_secret, id, exp, sig, (long long)time(NULL)))
        return gw_limit_signed(req, rc);
    return gw_authorize_media(req, signed_url, caller, rc);
}

/* GET of the content with the caller's conditions; retried once when the connection failed. */
static struct pl_client_stream *
open_content(struct pl_req *req, const char *id, const struct gw_caller *caller,
             struct pl_err *err)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_arena *a = pl_req_arena(req);
    const char *headers[6] = { "Accept: */*", NULL };
    const char *url = pl_arena_printf(a, "%s/api/media/%s/content", ctx->cfg->media_url, id);
    struct pl_client_opts o = { headers, NULL, 0, ctx->cfg->upstream_timeout_ms };
    struct pl_client_stream *s;
    int n = 1;

    if (caller->key_id[0] != '\0')
        headers[n++] = pl_arena_printf(a, "X-Parley-Key-Id: %s", caller->key_id);
    for (const char *const *h = condition_headers; *h != NULL; h++)
        if ((headers[n] = gw_pass_header(req, *h)) != NULL)
            n++;
    s = pl_client_stream_open("GET", url, &o, 0, err);
    if (s == NULL && err->status == 503) {
        gw_jitter();
        *err = (struct pl_err)PL_ERR_INIT;
        s = pl_client_stream_open("GET", url, &o, 0, err);
    }
    return s;
}

/* MHD pulls the body through here as the client takes it. */
static ssize_t
content_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct pl_err err = PL_ERR_INIT;
    long n = pl_client_stream_read(cls, buf, max, &err);

    (void)pos;
    if (n > 0)
        return n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
content_free(void *cls)
{
    pl_client_stream_free(cls);
}

/* 200 and 206: the body streams; the response owns the call's stream from here on. */
static enum MHD_Result
relay_streamed(struct pl_req *req, struct call *c, int status)
{
    long long len = pl_client_stream_length(c->s);
    uint64_t size = len < 0 ? MHD_SIZE_UNKNOWN : (uint64_t)len;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(size, CONTENT_BLOCK, content_read, c->s, content_free);

    report(c, true);
    if (resp == NULL)
        return pl_reply_error(req, 500, "internal", "could not create the response");
    pass_headers(req, c->s, true);
    c->s = NULL;
    return pl_reply_response(req, (unsigned)status, resp, len < 0 ? 0 : (size_t)len);
}

/* 304: no body, the validators only. */
static enum MHD_Result
relay_not_modified(struct pl_req *req, struct call *c)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

    report(c, true);
    if (resp == NULL)
        return pl_reply_error(req, 500, "internal", "could not create the response");
    pass_headers(req, c->s, false);
    return pl_reply_response(req, 304, resp, 0);
}

enum MHD_Result
gw_media_content(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id");
    struct gw_caller caller;
    enum MHD_Result rc;
    struct call *c;
    int status;

    if (!content_allowed(req, id, &caller, &rc))
        return rc;
    if (!pl_uuid_valid(id))
        return pl_reply_error(req, 404, "Media not found", "no media with that id");
    if ((c = call_enter(req, &rc)) == NULL)
        return rc;
    if ((c->s = open_content(req, id, &caller, &err)) == NULL ||
        (status = pl_client_stream_wait(c->s, &err)) < 0)
        return call_failed(req, c, &err);
    if (status == 200 || status == 206)
        return relay_streamed(req, c, status);
    if (status == 304)
        return relay_not_modified(req, c);
    return relay_whole(req, c, status, NULL);
}
