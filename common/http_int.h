/*
 * http_int.h - pure parts of the HTTP server, private to common/ and reachable by unit tests:
 * route matching, request-id validation, body and content-type checks.
 */
#ifndef PARLEY_HTTP_INT_H
#define PARLEY_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/http.h"

struct pl_err;

#define PL_ROUTE_MAX_SEGS 12

/* A route split into segments once, at start. */
struct pl_croute {
    const struct pl_route *route;
    int nsegs;
    const char *seg[PL_ROUTE_MAX_SEGS]; /* points into a private copy of the pattern */
    unsigned short seglen[PL_ROUTE_MAX_SEGS];
    bool is_param[PL_ROUTE_MAX_SEGS];
    char *copy;
};

struct pl_router {
    struct pl_croute *routes;
    int n;
};

struct pl_match {
    int index; /* into router->routes, or -1 */
    int nparams;
    const char *name[PL_MAX_PARAMS];
    unsigned short name_len[PL_MAX_PARAMS];
    const char *value[PL_MAX_PARAMS]; /* points into the matched path */
    unsigned short value_len[PL_MAX_PARAMS];
};

enum pl_route_result { PL_MATCH_FOUND, PL_MATCH_NO_PATH, PL_MATCH_NO_METHOD };

/* Compiles the tables (each zero-terminated, NULL-terminated list).  Aborts on a bad pattern. */
void pl_router_init(struct pl_router *rt, const struct pl_route *const *tables);
void pl_router_cleanup(struct pl_router *rt);
/*
 * Finds the route for method and path.  On PL_MATCH_NO_METHOD writes the allowed methods
 * ("GET, HEAD, POST") into allow.  OPTIONS never matches a route: the caller answers it from
 * allow.  HEAD matches the GET route (RFC 9110: a server that has GET has HEAD); MHD sends the
 * headers of its answer without the body.
 */
enum pl_route_result pl_router_match(const struct pl_router *rt, const char *method,
                                     const char *path, struct pl_match *m, char *allow,
                                     size_t allow_len);

/*
 * Push streams (http_push.c) and the server: the server keeps a ring of the answered ones so
 * that its drain can end them (pl_push_end) instead of waiting for endless bodies.
 */
struct pl_push_link {
    struct pl_push_link *next, *prev;
    struct pl_push *push;
};
struct pl_server *pl_req_server(const struct pl_req *req);
bool pl_server_draining(const struct pl_server *srv);
/* Adds l to (add) or removes it from the server's ring; thread-safe. */
void pl_server_push_link(struct pl_server *srv, struct pl_push_link *l, bool add);

/* 413 check of a declared length against the limit; returns PL_OK or PL_ERR with err filled. */
int pl_body_check(size_t max, uint64_t length, struct pl_err *err);
/* True when a Content-Type header names JSON (absent counts as JSON). */
bool pl_content_type_is_json(const char *ct);

#endif
