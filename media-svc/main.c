/*
 * main.c - media-svc: config → migrations → storage directory → database → outbox relay → HTTP →
 * SIGTERM → drain.
 */
#include <stddef.h>
#include <string.h>

#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/outbox.h"
#include "parley/proc.h"
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
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

static bool
ready(void *arg)
{
    const struct svc_ctx *ctx = arg;

    return pl_db_ready(ctx->db);
}

int
main(int argc, char **argv)
{
    static struct media_cfg cfg;
    struct svc_ctx ctx = { &cfg, NULL };
    struct pl_err err = PL_ERR_INIT;
    struct pl_outbox *ob;
    struct pl_server *srv;
    int level, sig;

    pl_proc_block_signals();
    pl_log_init(MEDIA_SERVICE, PL_LOG_INFO);
    if (pl_cfg_load(media_vars, &cfg) != PL_OK || (level = pl_log_level_parse(cfg.c.log_level)) < 0)
        pl_fatal("invalid configuration (see the lines above)");
    pl_log_init(MEDIA_SERVICE, (enum pl_log_level)level);
    if (pl_db_migrate(cfg.c.database_url, pl_svc_migrations, pl_svc_migrations_count, &err) != PL_OK)
        pl_fatal("could not migrate the database: %s", err.msg);
    if (argc > 1 && strcmp(argv[1], "--migrate-only") == 0)
        return 0;
    if (media_store_init(cfg.dir, &err) != PL_OK)
        pl_fatal("PARLEY_MEDIA_DIR=\"%s\": %s", cfg.dir, err.msg);
    ctx.db = pl_db_new(cfg.c.database_url);
    srv = pl_server_start(&(struct pl_server_opts){ .service = MEDIA_SERVICE,
                                                    .port = (uint16_t)cfg.c.port,
                                                    .threads = (unsigned)cfg.c.http_threads,
                                                    .max_body = cfg.c.max_body,
                                                    .service_token = cfg.c.service_token,
                                                    .routes = media_routes, .ctx = &ctx,
                                                    .ready = ready },
                          &err);
    if (srv == NULL)
        pl_fatal("%s", err.msg);
    pl_outbox_set_source(MEDIA_SERVICE);
    if ((ob = pl_outbox_start(ctx.db, cfg.c.kafka_brokers, &err)) == NULL)
        pl_fatal("%s", err.msg);
    pl_log_info("listening on port %u, storing under \"%s\"", pl_server_port(srv), cfg.dir);
    sig = pl_proc_wait_signal(); /* not inside pl_log_info: its arguments may go unevaluated */
    pl_log_info("received signal %d, draining", sig);
    pl_server_drain_and_free(srv, 10000);
    pl_outbox_stop(ob, 5000);
    pl_db_free(ctx.db);
    pl_log_info("stopped");
    pl_log_flush();
    return 0;
}
