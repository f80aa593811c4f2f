/*
 * details.c - GET /api/v1/conversations/{id}/details: the conversation with its participants
 * enriched from customer-svc (one batch call for all of them), the first page of its messages
 * and message_count.  The conversation and the messages are fetched at once; the customers
 * follow, since their ids come with the conversation.  A part that fails degrades only its own
 * field (messages and message_count become null, participants keep their bare fields); only the
 * conversation itself is essential.  Each call passes its service's circuit breaker, so a part
 * whose service is down degrades at once instead of after the timeout.
 */
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

#define DETAILS_TIMEOUT_MS 3000L

/* Each part's time limit: DETAILS_TIMEOUT_MS, or the upstream timeout when that is shorter. */
static long
timeout_of(const struct gw_cfg *cfg)
{
    return cfg->upstream_timeout_ms < DETAILS_TIMEOUT_MS ? cfg->upstream_timeout_ms
                                                         : DETAILS_TIMEOUT_MS;
}

/* Adds name, external_id and external_type from customers (a paginator) to each participant. */
static void
enrich(json_t *participants, const json_t *customers)
{
    const json_t *data = json_object_get(customers, "data");
    json_t *p, *c;
    size_t i, k;

    json_array_foreach(participants, i, p) {
        const char *id = json_string_value(json_object_get(p, "customer_id"));

        json_array_foreach(data, k, c) {
            const char *cid = json_string_value(json_object_get(c, "id"));

            if (id == NULL || cid == NULL || strcmp(id, cid) != 0)
                continue;
            json_object_set(p, "name", json_object_get(c, "name"));
            json_object_set(p, "external_id", json_object_get(c, "external_id"));
            json_object_set(p, "external_type", json_object_get(c, "external_type"));
        }
    }
}

/* The customer-svc batch URL for every participant, or NULL when there are none. */
static const char *
customers_url(struct pl_req *req, const char *base, const json_t *participants)
{
    struct pl_buf b = PL_BUF_INIT;
    const char *url = NULL;
    json_t *p;
    size_t i;

    pl_buf_printf(&b, "%s/api/customers?per_page=200&ids=", base);
    json_array_foreach(participants, i, p) {
        const char *id = json_string_value(json_object_get(p, "customer_id"));

        if (pl_uuid_valid(id) && i < 200)
            pl_buf_printf(&b, "%s%s", i ? "," : "", id);
    }
    if (json_array_size(participants) > 0)
        url = pl_arena_strdup(pl_req_arena(req), b.data);
    pl_buf_cleanup(&b);
    return url;
}

/* Enriches conv's participants with one customer call; on failure leaves them bare. */
static void
add_customers(struct pl_req *req, const struct gw_cfg *cfg, json_t *conv)
{
    json_t *participants = json_object_get(conv, "participants");
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_get get = { .url = customers_url(req, cfg->customer_url, participants),
                                 .err = &err };

    json_t *p;
    size_t i;

    json_array_foreach(participants, i, p) { /* present even when the call fails */
        json_object_set_new(p, "name", json_null());
        json_object_set_new(p, "external_id", json_null());
        json_object_set_new(p, "external_type", json_null());
    }
    if (get.url == NULL)
        return;
    gw_breaker_get_many(pl_req_arena(req), &get, &cfg->customer_url, 1, timeout_of(cfg));
    if (get.rc == PL_OK && get.resp.status == 200)
        enrich(participants, get.resp.json);
    else
        pl_log_warn("details: participants not enriched (%s)", err.msg);
}

enum MHD_Result
gw_conversation_details(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *id = pl_req_param(req, "id");
    struct pl_err e1 = PL_ERR_INIT, e2 = PL_ERR_INIT;
    struct pl_client_get gets[2];
    struct gw_caller caller;
    enum MHD_Result rc;
    json_t *conv, *page;

    if (!gw_authorize(req, GW_READ, &caller, &rc))
        return rc;
    if (!pl_uuid_valid(id))
        return pl_reply_error(req, 404, "Not found", "conversation not found");
    gets[0] = (struct pl_client_get){
        .url = pl_arena_printf(pl_req_arena(req), "%s/api/conversations/%s",
                               ctx->cfg->conversation_url, id), .err = &e1 };
    gets[1] = (struct pl_client_get){
        .url = pl_arena_printf(pl_req_arena(req), "%s/api/conversations/%s/messages?per_page=50",
                               ctx->cfg->messaging_url, id), .err = &e2 };
    gw_breaker_get_many(pl_req_arena(req), gets,
                        (const char *const[]){ ctx->cfg->conversation_url, ctx->cfg->messaging_url },
                        2, timeout_of(ctx->cfg));
    if (gets[0].rc != PL_OK)
        return pl_reply_err(req, &e1);
    if (gets[0].resp.status != 200 || !json_is_object(gets[0].resp.json))
        return pl_reply_json_text(req, (unsigned)gets[0].resp.status, gets[0].resp.body,
                                  gets[0].resp.len);
    conv = gets[0].resp.json;
    add_customers(req, ctx->cfg, conv);
    page = gets[1].rc == PL_OK && gets[1].resp.status == 200 ? gets[1].resp.json : NULL;
    json_object_set(conv, "messages", page ? page : json_null());
    json_object_set(conv, "message_count", page ? json_object_get(page, "total") : json_null());
    return pl_reply_json(req, 200, json_incref(conv));
}
