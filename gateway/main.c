/*
 * main.c - gateway: config → migrations → [--create-api-key] → bootstrap key → HTTP → SIGTERM →
 * drain.
 */
#include <string.h>

#include "parley/client.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/service.h"
#include "parley/uuid.h"
#include "svc.h"

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
        int rc = gw_key_create_cli(db, argv[2], scopes);

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
    /* webhook deliveries up to 3 MiB (SPEC 2); API bodies are held to PARLEY_MAX_BODY_BYTES */
    svc.big_body = GW_WEBHOOK_BODY_MAX;
    ctx.keys = gw_keys_new(cfg.rate_rps, cfg.rate_burst);
    ctx.started_us = pl_time_mono_us();
    svc.on_done = gw_log_request; /* every request into api_logs, off the request path */
    svc.decorate = gw_cors_decorate; /* CORS headers on every answer, when origins are listed */
    svc.keep_response = GW_LOG_BODY_MAX;
    ctx.hub = gw_hub_start(&cfg); /* event streams: before the first request can ask for one */
    pl_service_start(&svc, gw_routes, &ctx);
    ctx.db = svc.db;
    gw_key_ensure_bootstrap(svc.db, cfg.bootstrap_key);
    ctx.log = gw_log_start(svc.db, cfg.log_retention_days);
    pl_service_wait(&svc);
    pl_client_async_shutdown(); /* after the drain: no request waits on an upstream call */
    gw_hub_stop(ctx.hub); /* after the drain, which ended every stream */
    gw_log_stop(ctx.log); /* after the drain: the last requests are written */
    pl_service_close(&svc);
    gw_keys_free(ctx.keys);
    return 0;
}
