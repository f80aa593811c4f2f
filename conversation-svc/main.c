/*
 * main.c - conversation-svc: config → migrations → database → HTTP → outbox relay → message-event
 * consumer → SIGTERM → drain.
 */
#include <stddef.h>

#include "parley/consumer.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/service.h"
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
    struct pl_consumer *consumer;
    struct pl_err err = PL_ERR_INIT;
    struct pl_service svc;

    pl_service_init(&svc, CONV_SERVICE, conv_vars, &cfg, &cfg.c, argc, argv);
    pl_service_start(&svc, conv_routes, &ctx);
    ctx.db = svc.db;
    if ((consumer = conv_message_events_start(&ctx, &err)) == NULL)
        pl_fatal("%s", err.msg);
    pl_service_wait(&svc);
    pl_consumer_stop(consumer);
    pl_service_close(&svc);
    return 0;
}
