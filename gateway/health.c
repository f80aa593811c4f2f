/*
 * health.c - GET /api/v1/services/health[/{service}]: every service's /healthz asked at once
 * (pl_client_get_many, HEALTH_TIMEOUT_MS in all), answered in the Kobliat shape:
 * {"services": {"<key>": {"name","key","status","port","response_time","version","uptime",
 * "last_checked"}}, "checked_at"}.  A service that answers 200 is healthy, another status is
 * unhealthy, no answer in time is offline.  The gateway reports itself too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/uuid.h"
#include "svc.h"

#define HEALTH_TIMEOUT_MS 1500L
#define NSERVICES 6

struct check {
    const char *key;
    const char *name;
    const char *base; /* NULL for the gateway itself */
    const char *status;
    double ms;
};

static void
fill_checks(const struct gw_cfg *cfg, struct check c[NSERVICES])
{
    const struct check all[NSERVICES] = {
        { "api-gateway", "API Gateway", NULL, "healthy", 0 },
        { "customer-service", "Customer Service", cfg->customer_url, NULL, 0 },
        { "conversation-service", "Conversation Service", cfg->conversation_url, NULL, 0 },
        { "messaging-service", "Messaging Service", cfg->messaging_url, NULL, 0 },
        { "media-service", "Media Service", cfg->media_url, NULL, 0 },
        { "inbound-gateway", "Inbound Gateway", cfg->inbound_url, NULL, 0 },
    };

    memcpy(c, all, sizeof(all));
}

/* Runs every check at once; fills status and ms. */
static void
run_checks(struct pl_arena *a, struct check c[NSERVICES])
{
    struct pl_client_get gets[NSERVICES];
    int map[NSERVICES], n = 0;

    for (int i = 0; i < NSERVICES; i++) {
        if (c[i].base == NULL)
            continue;
        gets[n] = (struct pl_client_get){ .url = pl_arena_printf(a, "%s/healthz", c[i].base) };
        map[n++] = i;
    }
    pl_client_get_many(a, gets, n, HEALTH_TIMEOUT_MS);
    for (int k = 0; k < n; k++) {
        struct check *ck = &c[map[k]];

        ck->ms = gets[k].resp.ms;
        ck->status = gets[k].rc != PL_OK          ? "offline"
                     : gets[k].resp.status == 200 ? "healthy"
                                                  : "unhealthy";
    }
}

static json_t *
entry(const struct svc_ctx *ctx, const struct check *c, const char *now)
{
    const char *colon = c->base ? strrchr(c->base, ':') : NULL;
    long port = c->base == NULL ? ctx->cfg->c.port : colon ? strtol(colon + 1, NULL, 10) : 80;
    json_t *uptime = c->base == NULL ? json_integer((pl_time_mono_us() - ctx->started_us) / 1000000)
                                     : json_null();

    return json_pack("{s:s, s:s, s:s, s:i, s:f, s:s, s:o, s:s}", "name", c->name, "key", c->key,
                     "status", c->status ? c->status : "offline", "port", (json_int_t)port,
                     "response_time", c->ms, "version", "1.0.0", "uptime", uptime,
                     "last_checked", now);
}

/* Checks everything; returns the "services" object (new reference) and the time checked. */
static json_t *
check_all(struct pl_req *req, char now[28])
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct check c[NSERVICES];
    json_t *services = json_object();

    fill_checks(ctx->cfg, c);
    run_checks(pl_req_arena(req), c);
    pl_time_rfc3339(now, pl_time_now_us());
    for (int i = 0; i < NSERVICES; i++)
        json_object_set_new(services, c[i].key, entry(ctx, &c[i], now));
    return services;
}

enum MHD_Result
gw_health_all(struct pl_req *req)
{
    struct gw_caller caller;
    enum MHD_Result rc;
    char now[28];
    json_t *services;

    if (!gw_authorize(req, GW_READ, &caller, &rc))
        return rc;
    services = check_all(req, now);
    return pl_reply_json(req, 200, json_pack("{s:o, s:s}", "services", services, "checked_at",
                                             now));
}

enum MHD_Result
gw_health_one(struct pl_req *req)
{
    const char *key = pl_req_param(req, "service");
    struct gw_caller caller;
    enum MHD_Result rc;
    char now[28];
    json_t *services, *one;

    if (!gw_authorize(req, GW_READ, &caller, &rc))
        return rc;
    services = pl_json_keep(pl_req_arena(req), check_all(req, now));
    one = json_object_get(services, key);
    if (one == NULL)
        return pl_reply_error(req, 404, "Not found", "no service \"%s\"", key);
    return pl_reply_json(req, 200, json_incref(one));
}

/* Alerts derived from health: one per service not healthy, or one "System Healthy". */
enum MHD_Result
gw_notifications(struct pl_req *req)
{
    struct gw_caller caller;
    enum MHD_Result rc;
    char now[28];
    json_t *services, *list = json_array(), *s;
    const char *key;

    if (!gw_authorize(req, GW_READ, &caller, &rc)) {
        json_decref(list);
        return rc;
    }
    services = pl_json_keep(pl_req_arena(req), check_all(req, now));
    json_object_foreach(services, key, s) {
        const char *status = json_string_value(json_object_get(s, "status"));
        const char *name = json_string_value(json_object_get(s, "name"));

        if (strcmp(status, "healthy") == 0)
            continue;
        json_array_append_new(list, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s}", "id", key, "type", "error", "title",
            pl_arena_printf(pl_req_arena(req), "%s is %s", name, status), "message",
            pl_arena_printf(pl_req_arena(req), "%s did not answer its health check", name),
            "service", key, "created_at", now));
    }
    if (json_array_size(list) == 0)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", "system-healthy",
                                              "type", "success", "title", "System Healthy",
                                              "message", "All services are operating normally",
                                              "created_at", now));
    return pl_reply_json(req, 200, list);
}
