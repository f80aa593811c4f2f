/*
 * main.c - customer-svc: config → migrations → database → outbox relay → HTTP → SIGTERM → drain.
 */
#include <stddef.h>
#include <string.h>

#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/outbox.h"
#include "parley/proc.h"
#include "svc.h"

static const struct pl_cfg_var cust_vars[] = {
    PL_CFG_COMMON_VARS(offsetof(struct cust_cfg, c), "8001"),
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

int
main(int argc, char **argv)
{
    static struct cust_cfg cfg;
    struct svc_ctx ctx = { &cfg, NULL };
    struct pl_err err = PL_ERR_INIT;
    struct pl_outbox *ob;
    struct pl_server *srv;
    int level, sig;

    pl_proc_block_signals();
    pl_log_init(CUST_SERVICE, PL_LOG_INFO);
    if (pl_cfg_load(cust_vars, &cfg) != PL_OK || (level = pl_log_level_parse(cfg.c.log_level)) < 0)
        pl_fatal("invalid configuration (see the lines above)");
    pl_log_init(CUST_SERVICE, (enum pl_log_level)level);
    if (pl_db_migrate(cfg.c.database_url, pl_svc_migrations, pl_svc_migrations_count, &err) != PL_OK)
        pl_fatal("could not migrate the database: %s", err.msg);
    if (argc > 1 && strcmp(argv[1], "--migrate-only") == 0)
        return 0;
    ctx.db = pl_db_new(cfg.c.database_url);
    srv = pl_server_start(&(struct pl_server_opts){ .service = CUST_SERVICE,
                                                    .port = (uint16_t)cfg.c.port,
                                                    .threads = (unsigned)cfg.c.http_threads,
                                                    .max_body = cfg.c.max_body,
                                                    .service_token = cfg.c.service_token,
                                                    .routes = cust_routes, .ctx = &ctx, .db = ctx.db },
                          &err);
    if (srv == NULL)
        pl_fatal("%s", err.msg);
    pl_outbox_set_source(CUST_SERVICE);
    if ((ob = pl_outbox_start(ctx.db, cfg.c.kafka_brokers, &err)) == NULL)
        pl_fatal("%s", err.msg);
    pl_log_info("listening on port %u", pl_server_port(srv));
    sig = pl_proc_wait_signal(); /* not inside pl_log_info: its arguments may go unevaluated */
    pl_log_info("received signal %d, draining", sig);
    pl_server_drain_and_free(srv, 10000);
    pl_outbox_stop(ob, 5000);
    pl_db_free(ctx.db);
    pl_log_info("stopped");
    pl_log_flush();
    return 0;
}
