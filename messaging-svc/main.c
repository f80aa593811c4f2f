/*
 * main.c - messaging-svc: config → migrations → participant cache → database → HTTP → outbox
 * relay → SIGTERM → drain.
 */
#include <stddef.h>

#include "parley/service.h"
#include "svc.h"

static const struct pl_cfg_var msg_vars[] = {
    PL_CFG_COMMON_VARS(offsetof(struct msg_cfg, c), "8003"),
    { "PARLEY_CONVERSATION_URL", PL_CFG_STR, offsetof(struct msg_cfg, conversation_url),
      "http://127.0.0.1:8002", 0, 0, false, false },
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

int
main(int argc, char **argv)
{
    static struct msg_cfg cfg;
    struct svc_ctx ctx = { &cfg, NULL };
    struct pl_service svc;

    pl_service_init(&svc, MSG_SERVICE, msg_vars, &cfg, &cfg.c, argc, argv);
    ctx.parts = msg_part_cache_new();
    pl_service_start(&svc, msg_routes, &ctx);
    pl_service_wait(&svc);
    pl_service_close(&svc);
    msg_part_cache_free(ctx.parts);
    return 0;
}
