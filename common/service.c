/*
 * service.c - the shared life cycle of a service binary (see service.h): the order of start-up
 * and shutdown lives here once, so every service starts and stops the same way.
 */
#include "parley/service.h"

#include <stdlib.h>
#include <string.h>

#include "parley/client.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/outbox.h"
#include "parley/proc.h"

#define DRAIN_MS 10000
#define FLUSH_MS 5000

void
pl_service_init(struct pl_service *svc, const char *name, const struct pl_cfg_var *vars,
                void *cfg, const struct pl_cfg_common *common, int argc, char **argv)
{
    struct pl_err err = PL_ERR_INIT;
    int level;

    memset(svc, 0, sizeof(*svc));
    svc->name = name;
    svc->cfg = common;
    pl_proc_block_signals();
    pl_log_init(name, PL_LOG_INFO);
    if (pl_cfg_load(vars, cfg) != PL_OK || (level = pl_log_level_parse(common->log_level)) < 0)
        pl_fatal("invalid configuration (see the lines above)");
    pl_log_init(name, (enum pl_log_level)level);
    if (pl_db_migrate(common->database_url, pl_svc_migrations, pl_svc_migrations_count, &err) !=
        PL_OK)
        pl_fatal("could not migrate the database: %s", err.msg);
    if (argc > 1 && strcmp(argv[1], "--migrate-only") == 0) {
        pl_log_flush();
        exit(0);
    }
    pl_client_global_init(common->service_token); /* curl_global_init: before any thread */
}

void
pl_service_start(struct pl_service *svc, const struct pl_route *routes, void *ctx)
{
    const struct pl_cfg_common *c = svc->cfg;
    struct pl_err err = PL_ERR_INIT;

    svc->db = pl_db_new(c->database_url);
    svc->server = pl_server_start(&(struct pl_server_opts){ .service = svc->name,
                                                            .port = (uint16_t)c->port,
                                                            .threads = (unsigned)c->http_threads,
                                                            .max_body = c->max_body,
                                                            .big_body = svc->big_body,
                                                            .service_token = c->service_token,
                                                            .routes = routes, .ctx = ctx,
                                                            .db = svc->db,
                                                            .on_done = svc->on_done,
                                                            .decorate = svc->decorate,
                                                            .keep_response = svc->keep_response },
                                  &err);
    if (svc->server == NULL)
        pl_fatal("%s", err.msg);
    pl_outbox_set_source(svc->name);
    if ((svc->outbox = pl_outbox_start(svc->db, c->kafka_brokers, &err)) == NULL)
        pl_fatal("%s", err.msg);
    pl_log_info("listening on port %u", pl_server_port(svc->server));
}

void
pl_service_wait(struct pl_service *svc)
{
    int sig = pl_proc_wait_signal(); /* not inside pl_log_info: its arguments may go unevaluated */

    pl_log_info("received signal %d, draining", sig);
    pl_server_drain_and_free(svc->server, DRAIN_MS);
    svc->server = NULL;
}

void
pl_service_close(struct pl_service *svc)
{
    pl_outbox_stop(svc->outbox, FLUSH_MS);
    pl_db_free(svc->db);
    pl_log_info("stopped");
    pl_log_flush();
}
