/*
 * main.c - media-svc: config → migrations → storage directory → database → HTTP → outbox relay →
 * SIGTERM → drain.
 */
#include <stddef.h>

#include "parley/err.h"
#include "parley/log.h"
#include "parley/service.h"
#include "svc.h"

static const struct pl_cfg_var media_vars[] = {
    PL_CFG_COMMON_VARS(offsetof(struct media_cfg, c), "8004"),
    { "PARLEY_MEDIA_DIR", PL_CFG_STR, offsetof(struct media_cfg, dir), ".run/media", 0, 0, false,
      false },
    { "PARLEY_MEDIA_MAX_BYTES", PL_CFG_SIZE, offsetof(struct media_cfg, max_bytes), "25M", 1,
      4LL << 30, false, false },
    { "PARLEY_MEDIA_URL_SECRET", PL_CFG_STR, offsetof(struct media_cfg, url_secret),
      "dev-media-url-secret", 0, 0, false, true },
    { "PARLEY_MEDIA_URL_TTL", PL_CFG_INT, offsetof(struct media_cfg, url_ttl), "3600", 1,
      7 * 24 * 3600, false, false },
    { "PARLEY_CLAMD_SOCKET", PL_CFG_STR, offsetof(struct media_cfg, clamd), "", 0, 0, false,
      false },
    { "PARLEY_WHATSAPP_API_BASE", PL_CFG_STR, offsetof(struct media_cfg, whatsapp_base),
      "https://graph.facebook.com/v21.0", 0, 0, false, false },
    { "PARLEY_WHATSAPP_ACCESS_TOKEN", PL_CFG_STR, offsetof(struct media_cfg, whatsapp_token),
      "dev-whatsapp-token", 0, 0, false, true },
    { "PARLEY_TELEGRAM_API_BASE", PL_CFG_STR, offsetof(struct media_cfg, telegram_base),
      "https://api.telegram.org", 0, 0, false, false },
    { "PARLEY_TELEGRAM_BOT_TOKEN", PL_CFG_STR, offsetof(struct media_cfg, telegram_token),
      "123456:dev-telegram-token", 0, 0, false, true },
    { "PARLEY_MEDIA_FETCH_TIMEOUT_MS", PL_CFG_INT, offsetof(struct media_cfg, fetch_timeout_ms),
      "30000", 100, 600000, false, false },
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

int
main(int argc, char **argv)
{
    static struct media_cfg cfg;
    struct svc_ctx ctx = { &cfg };
    struct pl_err err = PL_ERR_INIT;
    struct pl_service svc;

    pl_service_init(&svc, MEDIA_SERVICE, media_vars, &cfg, &cfg.c, argc, argv);
    if (media_store_init(cfg.dir, &err) != PL_OK)
        pl_fatal("PARLEY_MEDIA_DIR=\"%s\": %s", cfg.dir, err.msg);
    pl_log_info("storing under \"%s\", %s", cfg.dir,
                cfg.clamd[0] != '\0' ? "scanning with clamd" : "no virus scanning");
    pl_service_start(&svc, media_routes, &ctx);
    pl_service_wait(&svc);
    pl_service_close(&svc);
    return 0;
}
