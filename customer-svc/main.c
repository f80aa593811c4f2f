/*
 * main.c - customer-svc: config → migrations → database → HTTP → outbox relay → SIGTERM → drain.
 */
#include <stddef.h>

#include "parley/service.h"
#include "svc.h"

static const struct pl_cfg_var cust_vars[] = {
    PL_CFG_COMMON_VARS(offsetof(struct cust_cfg, c), "8001"),
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

int
main(int argc, char **argv)
{
    static struct cust_cfg cfg;
    struct svc_ctx ctx = { &cfg };
    struct pl_service svc;

    pl_service_init(&svc, CUST_SERVICE, cust_vars, &cfg, &cfg.c, argc, argv);
    pl_service_start(&svc, cust_routes, &ctx);
    pl_service_wait(&svc);
    pl_service_close(&svc);
    return 0;
}
