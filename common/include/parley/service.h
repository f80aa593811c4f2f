/*
 * service.h - the life cycle every Parley service shares, so each main.c reads as its own steps:
 *
 *     pl_service_init(&svc, name, vars, &cfg, &cfg.c, argc, argv);  signals, logs, config, migrations
 *     ... service-specific set-up (clients, caches) ...
 *     pl_service_start(&svc, routes, &ctx);                          database, HTTP, outbox relay
 *     ... consumers ...
 *     pl_service_wait(&svc);                                         SIGTERM, then drain HTTP
 *     ... stop consumers ...
 *     pl_service_close(&svc);                                        relay, database, logs
 *
 * Start-up failures are fatal (exit 2); `--migrate-only` exits 0 after the migrations.
 */
#ifndef PARLEY_SERVICE_H
#define PARLEY_SERVICE_H

#include "parley/config.h"
#include "parley/http.h"

struct pl_outbox;

struct pl_service {
    const char *name;
    const struct pl_cfg_common *cfg;
    struct pl_db *db;         /* the service's database, set by pl_service_start */
    struct pl_server *server;
    struct pl_outbox *outbox;
    pl_done_fn *on_done;  /* set before pl_service_start: see pl_server_opts */
    pl_decorate_fn *decorate;
    size_t keep_response;
    size_t big_body;      /* see pl_server_opts */
};

/*
 * Blocks signals, starts logging, loads vars into cfg (common is its embedded pl_cfg_common),
 * applies the binary's migrations, and exits 0 when argv asks for --migrate-only.  Also makes
 * the service-to-service client ready (before any thread exists).
 */
void pl_service_init(struct pl_service *svc, const char *name, const struct pl_cfg_var *vars,
                     void *cfg, const struct pl_cfg_common *common, int argc, char **argv);
/* Opens the database, serves routes with ctx, and starts the outbox relay. */
void pl_service_start(struct pl_service *svc, const struct pl_route *routes, void *ctx);
/* Waits for SIGTERM or SIGINT, then stops accepting and drains in-flight requests. */
void pl_service_wait(struct pl_service *svc);
/* Stops the relay (bounded flush), frees the database handle and flushes the logs. */
void pl_service_close(struct pl_service *svc);

#endif
