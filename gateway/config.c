/*
 * config.c - the gateway's configuration table (SPEC 8 and README): every variable, its default
 * and its bounds.
 */
#include <stddef.h>

#include "parley/config.h"
#include "svc.h"

#define URL_VAR(name, field, def)                                                                \
    { name, PL_CFG_STR, offsetof(struct gw_cfg, field), def, 0, 0, false, false }

const struct pl_cfg_var gw_vars[] = {
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
