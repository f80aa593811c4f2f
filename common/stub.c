/*
 * stub.c - placeholder main for binaries whose service is still to come.
 */
#include "parley/stub.h"

#include <stddef.h>

#include "parley/config.h"
#include "parley/err.h"
#include "parley/http.h"
#include "parley/log.h"
#include "parley/proc.h"

struct stub_cfg {
    long port;
    const char *log_level;
};

static const struct pl_route no_routes[] = { { NULL, NULL, NULL, 0 } };

int
pl_stub_main(const char *service, const char *default_port)
{
    const struct pl_cfg_var vars[] = {
        { "PORT", PL_CFG_INT, offsetof(struct stub_cfg, port), default_port, 1, 65535, false,
          false },
        { "PARLEY_LOG_LEVEL", PL_CFG_STR, offsetof(struct stub_cfg, log_level), "info", 0, 0,
          false, false },
        { NULL, 0, 0, NULL, 0, 0, false, false },
    };
    struct stub_cfg cfg = { 0, NULL };
    struct pl_err err = PL_ERR_INIT;
    struct pl_server *srv;
    int level;

    pl_proc_block_signals();
    pl_log_init(service, PL_LOG_INFO);
    if (pl_cfg_load(vars, &cfg) != PL_OK || (level = pl_log_level_parse(cfg.log_level)) < 0)
        pl_fatal("invalid configuration (see the lines above)");
    pl_log_init(service, (enum pl_log_level)level);
    srv = pl_server_start(&(struct pl_server_opts){ .service = service, .port = (uint16_t)cfg.port,
                                                    .threads = 2, .max_body = 1 << 20,
                                                    .routes = no_routes },
                          &err);
    if (srv == NULL)
        pl_fatal("%s", err.msg);
    pl_log_info("listening on port %u (placeholder: health endpoints only)", pl_server_port(srv));
    pl_proc_wait_signal();
    pl_server_drain_and_free(srv, 5000);
    pl_log_flush();
    return 0;
}
