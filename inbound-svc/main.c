/*
 * main.c - inbound-svc: config → migrations → workers → store batcher → database → HTTP
 * (webhooks) → outbox relay → SIGTERM → drain → store stop → outbound delivery stop → workers
 * stop → close.  Outbound delivery (outbound.c) starts with the workers, before HTTP, as its
 * metrics must be registered first.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "parley/db.h"
#include "parley/log.h"
#include "parley/service.h"
#include "outbound.h"
#include "svc.h"

#define V(name, type, field, def, min, max, secret)                                               \
    { name, type, offsetof(struct inb_cfg, field), def, min, max, false, secret }

static const struct pl_cfg_var inb_vars[] = {
    PL_CFG_COMMON_VARS(offsetof(struct inb_cfg, c), "8005"),
    V("PARLEY_WHATSAPP_APP_SECRET", PL_CFG_STR, whatsapp_secret, "dev-whatsapp-secret", 0, 0, true),
    V("PARLEY_WHATSAPP_VERIFY_TOKEN", PL_CFG_STR, whatsapp_verify_token, "dev-verify-token", 0, 0,
      true),
    V("PARLEY_TELEGRAM_SECRET_TOKEN", PL_CFG_STR, telegram_secret, "dev-telegram-secret", 0, 0,
      true),
    V("PARLEY_TELEGRAM_BOT_TOKEN", PL_CFG_STR, telegram_bot_token, "123456:dev-telegram-token", 0,
      0, true),
    V("PARLEY_INBOUND_MAX_ATTEMPTS", PL_CFG_INT, max_attempts, "5", 1, 1000, false),
    V("PARLEY_INBOUND_WORKERS", PL_CFG_INT, workers, "4", 1, 64, false),
    V("PARLEY_INBOUND_RETENTION_DAYS", PL_CFG_INT, retention_days, "30", 8, 36500, false),
    V("PARLEY_INBOUND_STORE_THREADS", PL_CFG_INT, store_threads, "2", 1, 64, false),
    V("PARLEY_CUSTOMER_URL", PL_CFG_STR, customer_url, "http://127.0.0.1:8001", 0, 0, false),
    V("PARLEY_CONVERSATION_URL", PL_CFG_STR, conversation_url, "http://127.0.0.1:8002", 0, 0,
      false),
    V("PARLEY_MESSAGING_URL", PL_CFG_STR, messaging_url, "http://127.0.0.1:8003", 0, 0, false),
    V("PARLEY_MEDIA_URL", PL_CFG_STR, media_url, "http://127.0.0.1:8004", 0, 0, false),
    /* Outbound delivery (the local stack points the API bases at the tests' fake provider). */
    V("PARLEY_WHATSAPP_API_BASE", PL_CFG_STR, whatsapp_api_base, "https://graph.facebook.com/v21.0",
      0, 0, false),
    V("PARLEY_WHATSAPP_ACCESS_TOKEN", PL_CFG_STR, whatsapp_access_token, "dev-whatsapp-token", 0,
      0, true),
    V("PARLEY_WHATSAPP_PHONE_NUMBER_ID", PL_CFG_STR, whatsapp_phone_number_id, "", 0, 0, false),
    V("PARLEY_TELEGRAM_API_BASE", PL_CFG_STR, telegram_api_base, "https://api.telegram.org", 0, 0,
      false),
    V("PARLEY_OUTBOUND_MAX_ATTEMPTS", PL_CFG_INT, outbound_max_attempts, "8", 1, 100, false),
    V("PARLEY_OUTBOUND_BACKOFF_BASE_MS", PL_CFG_INT, outbound_backoff_base_ms, "1000", 1,
      3600000, false),
    V("PARLEY_OUTBOUND_BACKOFF_CAP_MS", PL_CFG_INT, outbound_backoff_cap_ms, "300000", 1,
      86400000, false),
    V("PARLEY_OUTBOUND_TIMEOUT_MS", PL_CFG_INT, outbound_timeout_ms, "15000", 100, 120000, false),
    V("PARLEY_OUTBOUND_SENDERS", PL_CFG_INT, outbound_senders, "2", 1, 64, false),
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

int
main(int argc, char **argv)
{
    static struct inb_cfg cfg;
    struct svc_ctx ctx = { &cfg, NULL, NULL };
    struct pl_service svc;
    struct pl_db *workers_db;
    struct inb_outbound *outbound;
    size_t n;

    pl_service_init(&svc, INB_SERVICE, inb_vars, &cfg, &cfg.c, argc, argv);
    n = strcspn(cfg.telegram_bot_token, ":");
    if (n == 0 || n >= sizeof(cfg.bot_id) || cfg.telegram_bot_token[n] != ':')
        pl_fatal("config: PARLEY_TELEGRAM_BOT_TOKEN: expected \"<bot id>:<secret>\"");
    snprintf(cfg.bot_id, sizeof(cfg.bot_id), "%.*s", (int)n, cfg.telegram_bot_token);
    /* deliveries up to 3 MiB (SPEC 2) */
    svc.big_body = INB_WEBHOOK_BODY_MAX;
    if (cfg.c.http_threads == 0)
        cfg.c.http_threads = INB_HTTP_THREADS; /* handlers mostly wait for their store batch */
    /* Workers first, with their own connection factory: handlers find them ready. */
    workers_db = pl_db_new(cfg.c.database_url);
    ctx.workers = inb_workers_start(&cfg, workers_db, (int)cfg.workers);
    outbound = inb_outbound_start(&cfg, workers_db); /* consumer and senders (outbound.c) */
    ctx.store = inb_store_start(workers_db, (int)cfg.store_threads);
    pl_service_start(&svc, inb_routes, &ctx);
    pl_service_wait(&svc);
    inb_store_stop(ctx.store); /* after the drain: the last handlers wait on it */
    inb_outbound_stop(outbound);
    inb_workers_stop(ctx.workers);
    pl_db_free(workers_db);
    pl_service_close(&svc);
    return 0;
}
