/*
 * cors.c - Cross-Origin Resource Sharing for browser clients, off unless PARLEY_CORS_ORIGINS
 * lists origins.
 *
 * The allowlist is exact: an Origin header is allowed only when it equals, byte for byte, one
 * comma-separated entry ("https://app.example.com"), and the reply then names that origin, never
 * "*": the gateway's callers authenticate with headers, and a wildcard would let any page drive a
 * browser that holds a key.  "*" is refused at start for the same reason.  Because the reply
 * depends on Origin whenever CORS is on, every reply then carries "Vary: Origin" so a shared cache
 * never hands one origin's answer to another.
 *
 * gw_cors_decorate runs as the server's decorate hook, just before any reply is queued: the
 * handlers' replies, and the ones the server makes itself (401 of the token check, 404, 405, 413
 * and the 204 it answers OPTIONS with).  So a preflight is the server's 204 plus the
 * Access-Control-Allow-* headers added here; an unlisted origin gets the 204 without them, which a
 * browser reads as a refusal.  The list is scanned in place: nothing is allocated but the headers.
 */
#include <stdbool.h>
#include <string.h>

#include "parley/err.h"
#include "svc.h"

#define ALLOW_METHODS "GET, POST, PUT, PATCH, DELETE, OPTIONS"
#define ALLOW_HEADERS "X-API-Key, Authorization, Content-Type, Idempotency-Key, X-Request-Id"
#define EXPOSE_HEADERS                                                                           \
    "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After"
#define MAX_AGE "600" /* seconds a browser may cache a preflight answer */

/* The next entry of a comma-separated list, spaces trimmed: *s and *n; false past the end. */
static bool
next_entry(const char **p, const char **s, size_t *n)
{
    const char *end;

    if (**p == '\0')
        return false;
    while (**p == ' ' || **p == '\t')
        (*p)++;
    end = strchr(*p, ',');
    if (end == NULL)
        end = *p + strlen(*p);
    *s = *p;
    *n = (size_t)(end - *p);
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
    *p = *end == ',' ? end + 1 : end;
    return true;
}

static bool
origin_allowed(const char *list, const char *origin)
{
    size_t len = strlen(origin), n;
    const char *s;

    while (next_entry(&list, &s, &n))
        if (n == len && n > 0 && memcmp(s, origin, n) == 0)
            return true;
    return false;
}

/* "scheme://host[:port]" with no path, query or wildcard. */
static bool
origin_valid(const char *s, size_t n)
{
    size_t skip = 0;

    if (n > 7 && memcmp(s, "http://", 7) == 0)
        skip = 7;
    else if (n > 8 && memcmp(s, "https://", 8) == 0)
        skip = 8;
    if (skip == 0)
        return false;
    for (size_t i = skip; i < n; i++)
        if (s[i] == '/' || s[i] == '*' || s[i] == '?' || s[i] == '#' || s[i] == ' ')
            return false;
    return true;
}

int
gw_cors_check(const char *origins, struct pl_err *err)
{
    const char *p = origins, *s;
    size_t n;

    if (origins == NULL || origins[0] == '\0')
        return PL_OK; /* off */
    while (next_entry(&p, &s, &n)) {
        if (n == 1 && s[0] == '*')
            return pl_err_set(err, 500, "config",
                              "PARLEY_CORS_ORIGINS: \"*\" is not allowed; list the origins");
        if (!origin_valid(s, n))
            return pl_err_set(err, 500, "config",
                              "PARLEY_CORS_ORIGINS: \"%.*s\" is not an origin "
                              "(scheme://host[:port], no path)",
                              (int)(n < 100 ? n : 100), s);
    }
    return PL_OK;
}

void
gw_cors_decorate(const struct pl_req *req, struct MHD_Response *resp, void *ctx)
{
    const struct svc_ctx *c = ctx;
    const char *list = c->cfg->cors_origins;
    const char *origin;

    if (list == NULL || list[0] == '\0')
        return;
    MHD_add_response_header(resp, "Vary", "Origin");
    origin = pl_req_header(req, "Origin");
    if (origin == NULL || !origin_allowed(list, origin))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
    /* A preflight: OPTIONS naming the method the browser wants to send. */
    if (strcmp(pl_req_method(req), "OPTIONS") == 0 &&
        pl_req_header(req, "Access-Control-Request-Method") != NULL) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", ALLOW_METHODS);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", ALLOW_HEADERS);
        MHD_add_response_header(resp, "Access-Control-Max-Age", MAX_AGE);
    }
}
