/*
 * main.c - gateway: config → migrations → [--create-api-key] → bootstrap key → HTTP → SIGTERM →
 * drain.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/client.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/service.h"
#include "parley/uuid.h"
#include "svc.h"

#define URL_VAR(name, field, def)                                                                \
    { name, PL_CFG_STR, offsetof(struct gw_cfg, field), def, 0, 0, false, false }

static const struct pl_cfg_var gw_vars[] = {
    PL_CFG_COMMON_VARS(offsetof(struct gw_cfg, c), "8000"),
    { "PARLEY_BOOTSTRAP_API_KEY", PL_CFG_STR, offsetof(struct gw_cfg, bootstrap_key),
      "dev-api-key", 0, 0, false, true },
    { "PARLEY_RATE_LIMIT_RPS", PL_CFG_INT, offsetof(struct gw_cfg, rate_rps), "100", 1, 1000000,
      false, false },
    { "PARLEY_RATE_LIMIT_BURST", PL_CFG_INT, offsetof(struct gw_cfg, rate_burst), "200", 1,
      1000000, false, false },
    { "PARLEY_UPSTREAM_TIMEOUT_MS", PL_CFG_INT, offsetof(struct gw_cfg, upstream_timeout_ms),
      "10000", 100, 600000, false, false },
    URL_VAR("PARLEY_CUSTOMER_URL", customer_url, "http://127.0.0.1:8001"),
    URL_VAR("PARLEY_CONVERSATION_URL", conversation_url, "http://127.0.0.1:8002"),
    URL_VAR("PARLEY_MESSAGING_URL", messaging_url, "http://127.0.0.1:8003"),
    URL_VAR("PARLEY_MEDIA_URL", media_url, "http://127.0.0.1:8004"),
    { "PARLEY_MEDIA_URL_SECRET", PL_CFG_STR, offsetof(struct gw_cfg, media_url_secret),
      "dev-media-url-secret", 0, 0, false, true },
    { "PARLEY_MEDIA_MAX_BYTES", PL_CFG_SIZE, offsetof(struct gw_cfg, media_max_bytes), "25M", 1,
      4LL << 30, false, false },
    URL_VAR("PARLEY_INBOUND_URL", inbound_url, "http://127.0.0.1:8005"),
    { "PARLEY_CORS_ORIGINS", PL_CFG_STR, offsetof(struct gw_cfg, cors_origins), "", 0, 0, false,
      false },
    { "PARLEY_SSE_PING_MS", PL_CFG_INT, offsetof(struct gw_cfg, sse_ping_ms), "15000", 50,
      3600000, false, false },
    { "PARLEY_LOG_RETENTION_DAYS", PL_CFG_INT, offsetof(struct gw_cfg, log_retention_days), "30",
      1, 3650, false, false },
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

/* Stores a key under name (scopes "read,write,admin"-style) and prints its secret once. */
static int
create_key_cli(struct pl_db *db, const char *name, const char *scopes)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_arena *a = pl_arena_new(1024);
    PGconn *c = pl_db_conn(db, &err);
    char key[52], hash[65];
    const char *json = NULL;
    int rc = 1;

    gw_key_generate(key);
    gw_key_hash(key, hash);
    if (c != NULL && gw_db_key_create(c, a, name, hash, scopes, &json, &err) == PL_DB_ROW) {
        printf("%s\nkey: %s\n", json, key);
        rc = 0;
    } else {
        fprintf(stderr, "could not create the API key: %s\n", err.msg);
    }
    pl_arena_free(a);
    return rc;
}

/* The bootstrap key of PARLEY_BOOTSTRAP_API_KEY exists (as its hash) with every scope. */
static void
ensure_bootstrap(struct pl_db *db, const char *key)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err);
    char hash[65];

    gw_key_hash(key, hash);
    if (c == NULL || gw_db_key_ensure(c, "bootstrap", hash, &err) != PL_OK)
        pl_fatal("could not store the bootstrap API key: %s", err.msg);
    pl_db_thread_close();
}

int
main(int argc, char **argv)
{
    static struct gw_cfg cfg;
    struct svc_ctx ctx = { &cfg, NULL, NULL, NULL, 0, NULL };
    struct pl_err err = PL_ERR_INIT;
    struct pl_service svc;

    pl_service_init(&svc, GW_SERVICE, gw_vars, &cfg, &cfg.c, argc, argv);
    if (argc > 2 && strcmp(argv[1], "--create-api-key") == 0) {
        struct pl_db *db = pl_db_new(cfg.c.database_url);
        const char *scopes = argc > 4 && strcmp(argv[3], "--scopes") == 0 ? argv[4] : "read,write";
        int rc = create_key_cli(db, argv[2], scopes);

        pl_db_thread_close();
        pl_db_free(db);
        return rc;
    }
    if (gw_cors_check(cfg.cors_origins, &err) != PL_OK)
        pl_fatal("config: %s", err.msg);
    /*
     * Proxied calls wait on no pool thread (proxy.c), so the pool is sized for the handlers that
     * still block (details, health, media streams, key and log queries).  Sixteen threads, the
     * count from when every call held a thread, measured 3.2-3.5 context switches per proxied
     * request against 1.5-2.4 with two to four.
     */
    if (cfg.c.http_threads == 0)
        cfg.c.http_threads = 4;
    if (cfg.c.max_body < GW_WEBHOOK_BODY_MAX)
        cfg.c.max_body = GW_WEBHOOK_BODY_MAX; /* API routes are held to 1 MiB by proxy.c */
    ctx.keys = gw_keys_new(cfg.rate_rps, cfg.rate_burst);
    ctx.started_us = pl_time_mono_us();
    svc.on_done = gw_log_request; /* every request into api_logs, off the request path */
    svc.decorate = gw_cors_decorate; /* CORS headers on every answer, when origins are listed */
    svc.keep_response = GW_LOG_BODY_MAX;
    ctx.hub = gw_hub_start(&cfg); /* event streams: before the first request can ask for one */
    pl_service_start(&svc, gw_routes, &ctx);
    ctx.db = svc.db;
    ensure_bootstrap(svc.db, cfg.bootstrap_key);
    ctx.log = gw_log_start(svc.db, cfg.log_retention_days);
    pl_service_wait(&svc);
    pl_client_async_shutdown(); /* after the drain: no request waits on an upstream call */
    gw_hub_stop(ctx.hub); /* after the drain, which ended every stream */
    gw_log_stop(ctx.log); /* after the drain: the last requests are written */
    pl_service_close(&svc);
    gw_keys_free(ctx.keys);
    return 0;
}
