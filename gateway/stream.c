/*
 * stream.c - GET /api/v1/conversations/{id}/stream: Server-Sent Events of a conversation's
 * message changes (SPEC 3, 4.3 and 10).
 *
 * The handler authenticates (read scope), asks conversation-svc whether the conversation exists,
 * then joins the hub before anything else, so that every live event from then on is either sent
 * or held.  With a Last-Event-ID (header, or ?last_event_id= for clients that cannot set headers)
 * it then sends the backlog: every message changed since that version, from messaging-svc's
 * changed_since list, paged, each in its current state in version order.  The held live events
 * that are still news follow, and the stream is live.
 *
 * Each frame is "id: <version>", "event: message.created|message.updated|message.status.updated",
 * "data: <message JSON>".  A backlog message is named after its latest change (see
 * gw_stream_event_of).  A backlog larger than the client's queue is cut at a message boundary and
 * the stream ends there: the client reconnects with the last id it got and receives the rest, so
 * nothing is lost and memory stays bounded.
 */
#include <stdio.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/client.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

#define BACKLOG_PAGE 200
/* Sent first: how soon a client reconnects after a cut backlog or a restart (ms). */
static const char hello[] = "retry: 1000\n\n";

/* Parses Last-Event-ID: up to 18 digits.  Returns false for anything else; absent is 0. */
static bool
parse_since(const char *s, long long *since)
{
    long long v = 0;
    size_t n = 0;

    *since = 0;
    if (s == NULL || *s == '\0')
        return true;
    for (; s[n] != '\0'; n++) {
        if (s[n] < '0' || s[n] > '9' || n == 18)
            return false;
        v = v * 10 + (s[n] - '0');
    }
    *since = v;
    return true;
}

/* Whether the conversation exists: PL_DB_ROW, PL_DB_NONE, or PL_DB_FAIL with err filled. */
static int
conversation_exists(struct pl_req *req, const char *id, struct pl_err *err)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_client_resp resp;
    const char *url = pl_arena_printf(pl_req_arena(req), "%s/api/conversations/%s",
                                      ctx->cfg->conversation_url, id);

    if (gw_breaker_get(pl_req_arena(req), ctx->cfg->conversation_url, url,
                       ctx->cfg->upstream_timeout_ms, &resp, err) != PL_OK)
        return PL_DB_FAIL;
    if (resp.status == 200)
        return PL_DB_ROW;
    if (resp.status == 404)
        return PL_DB_NONE;
    pl_err_set(err, 502, "upstream_bad_response", "the conversation service answered %ld",
               resp.status);
    return PL_DB_FAIL;
}

/* One backlog page after *since into s; advances *since.  PL_OK, PL_RETRY when the queue is full
 * (or the page was the last: *more), PL_ERR with err. */
static int
backlog_page(struct pl_req *req, struct gw_sub *s, const char *id, long long *since, bool *more,
             struct pl_err *err)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_arena *a = pl_arena_new(16384); /* per page: the request's arena lives on */
    struct pl_client_resp resp;
    const json_t *data, *m;
    int rc = PL_ERR;
    size_t i;
    const char *url = pl_arena_printf(a, "%s/api/conversations/%s/messages?changed_since=%lld"
                                      "&limit=%d", ctx->cfg->messaging_url, id, *since,
                                      BACKLOG_PAGE);

    *more = false;
    if (gw_breaker_get(a, ctx->cfg->messaging_url, url, ctx->cfg->upstream_timeout_ms, &resp,
                       err) != PL_OK)
        goto out;
    data = json_object_get(resp.json, "data");
    if (resp.status != 200 || !json_is_array(data)) {
        pl_err_set(err, 502, "upstream_bad_response", "the messaging service answered %ld",
                   resp.status);
        goto out;
    }
    rc = PL_OK;
    json_array_foreach(data, i, m) {
        if (gw_sub_backlog(ctx->hub, s, m) != PL_OK) {
            rc = PL_RETRY;
            goto out;
        }
        *since = json_integer_value(json_object_get(m, "version"));
    }
    *more = json_is_true(json_object_get(resp.json, "has_more")) && i > 0;
out:
    pl_arena_free(a);
    return rc;
}

/* Sends every change after since.  PL_OK, PL_RETRY when cut (queue full), PL_ERR with err. */
static int
backlog(struct pl_req *req, struct gw_sub *s, const char *id, long long since, struct pl_err *err)
{
    bool more = true;
    int rc = PL_OK;

    while (rc == PL_OK && more)
        rc = backlog_page(req, s, id, &since, &more, err);
    return rc;
}

/* Joins, sends the backlog, goes live; then answers with the stream.  Takes p. */
static enum MHD_Result
start_stream(struct pl_req *req, const char *id, long long since, struct pl_push *p)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    struct gw_sub *s;
    enum MHD_Result rc;
    int brc = PL_OK;

    pl_push_write(p, hello, sizeof(hello) - 1);
    s = gw_sub_join(ctx->hub, id, p, since); /* takes our reference to p */
    if (since > 0)
        brc = backlog(req, s, id, since, &err);
    if (brc == PL_ERR) {
        gw_sub_leave(ctx->hub, s);
        return pl_reply_err(req, &err);
    }
    pl_req_reply_header(req, "Cache-Control", "no-cache");
    pl_req_reply_header(req, "X-Accel-Buffering", "no");
    rc = pl_reply_push(req, p, "text/event-stream");
    if (brc == PL_RETRY || gw_sub_live(ctx->hub, s) != PL_OK) {
        pl_log_info("stream of conversation %s: backlog cut at the queue limit", id);
        pl_push_end(p); /* the client resumes from the last id it got */
        if (brc == PL_RETRY)
            gw_sub_leave(ctx->hub, s);
    }
    return rc;
}

enum MHD_Result
gw_stream(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *id = pl_req_param(req, "id");
    const char *last = pl_req_header(req, "Last-Event-ID");
    struct pl_err err = PL_ERR_INIT;
    struct gw_caller caller;
    enum MHD_Result rc;
    json_t *errors = NULL;
    long long since;

    if (!gw_authorize(req, GW_READ, &caller, &rc))
        return rc;
    if (!pl_uuid_valid(id))
        return pl_reply_error(req, 404, "Not found", "conversation not found");
    if (last == NULL || *last == '\0')
        last = pl_req_query(req, "last_event_id");
    if (!parse_since(last, &since)) {
        pl_json_error_add(&errors, "last_event_id", "must be a version: up to 18 digits");
        return pl_reply_invalid(req, errors);
    }
    if (!gw_hub_ready(ctx->hub)) {
        pl_req_reply_header(req, "Retry-After", "2");
        return pl_reply_error(req, 503, "stream_unavailable",
                              "the event stream is starting; retry shortly");
    }
    switch (conversation_exists(req, id, &err)) {
    case PL_DB_ROW:
        return start_stream(req, id, since, pl_push_new(req, GW_STREAM_QUEUE_MAX));
    case PL_DB_NONE:
        return pl_reply_error(req, 404, "Not found", "conversation not found");
    default:
        return pl_reply_err(req, &err);
    }
}
