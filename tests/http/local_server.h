/*
 * local_server.h - what the client tests share: a libparley server of the test's routes on a
 * free loopback port, with the service token the clients present.
 */
#ifndef TESTS_HTTP_LOCAL_SERVER_H
#define TESTS_HTTP_LOCAL_SERVER_H

#include <stdio.h>

#include "parley/err.h"
#include "parley/http.h"

/* Starts routes with threads threads under name and token; base gets its URL.  NULL on failure. */
static inline struct pl_server *
local_server_start(const char *name, const char *token, const struct pl_route *routes,
                   unsigned threads, char base[64])
{
    struct pl_server_opts opts = { .service = name, .threads = threads, .max_body = 4096,
                                   .service_token = token, .routes = routes };
    struct pl_err err = PL_ERR_INIT;
    struct pl_server *s = pl_server_start(&opts, &err);

    if (s != NULL)
        snprintf(base, 64, "http://127.0.0.1:%u", (unsigned)pl_server_port(s));
    return s;
}

#endif
