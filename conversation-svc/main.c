/*
 * main.c - conversation-svc: config → migrations → database → outbox relay → HTTP → message-event
 * consumer → SIGTERM → drain.
 */
#include <stddef.h>
#include <string.h>

#include "parley/client.h"
#include "parley/consumer.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/outbox.h"
#include "parley/proc.h"
#include "svc.h"

static const struct pl_cfg_var conv_vars[] = {
    PL_CFG_COMMON_VARS(offsetof(struct conv_cfg, c), "8002"),
    { "PARLEY_CUSTOMER_URL", PL_CFG_STR, offsetof(struct conv_cfg, customer_url),
      "http://127.0.0.1:8001", 0, 0, false, false },
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

int
main(int argc, char **argv)
{
    static struct conv_cfg cfg;
    struct svc_ctx ctx = { &cfg, NULL };
    struct pl_err err = PL_ERR_INIT;
    struct pl_consumer *consumer;
    struct pl_outbox *ob;
    struct pl_server *srv;
    int level, sig;

    pl_proc_block_signals();
    pl_log_init(CONV_SERVICE, PL_LOG_INFO);
    if (pl_cfg_load(conv_vars, &cfg) != PL_OK || (level = pl_log_level_parse(cfg.c.log_level)) < 0)
        pl_fatal("invalid configuration (see the lines above)");
    pl_log_init(CONV_SERVICE, (enum pl_log_level)level);
    if (pl_db_migrate(cfg.c.database_url, pl_svc_migrations, pl_svc_migrations_count, &err) !=
        PL_OK)
        pl_fatal("could not migrate the database: %s", err.msg);
    if (argc > 1 && strcmp(argv[1], "--migrate-only") == 0)
        return 0;
    pl_client_global_init(cfg.c.service_token); /* before any thread starts */
    ctx.db = pl_db_new(cfg.c.database_url);
    srv = pl_server_start(&(struct pl_server_opts){ .service = CONV_SERVICE,
                                                    .port = (uint16_t)cfg.c.port,
                                                    .threads = (unsigned)cfg.c.http_threads,
                                                    .max_body = cfg.c.max_body,
                                                    .service_token = cfg.c.service_token,
                                                    .routes = conv_routes, .ctx = &ctx, .db = ctx.db },
                          &err);
    if (srv == NULL)
        pl_fatal("%s", err.msg);
    pl_outbox_set_source(CONV_SERVICE);
    if ((ob = pl_outbox_start(ctx.db, cfg.c.kafka_brokers, &err)) == NULL)
        pl_fatal("%s", err.msg);
    if ((consumer = conv_message_events_start(&ctx, &err)) == NULL)
        pl_fatal("%s", err.msg);
    pl_log_info("listening on port %u", pl_server_port(srv));
    sig = pl_proc_wait_signal(); /* not inside pl_log_info: its arguments may go unevaluated */
    pl_log_info("received signal %d, draining", sig);
    pl_server_drain_and_free(srv, 10000);
    pl_consumer_stop(consumer);
    pl_outbox_stop(ob, 5000);
    pl_db_free(ctx.db);
    pl_log_info("stopped");
    pl_log_flush();
    return 0;
}
