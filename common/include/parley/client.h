/*
 * client.h - service-to-service HTTP calls over libcurl.
 *
 * One easy handle per thread, kept between calls so connections to each service are reused
 * (keep-alive).  Every call carries X-Service-Token and the calling thread's request id as
 * X-Request-Id, and has a total timeout.  Call pl_client_global_init() once from main() before
 * any thread starts.
 */
#ifndef PARLEY_CLIENT_H
#define PARLEY_CLIENT_H

#include <jansson.h>
#include <stddef.h>

struct pl_arena;
struct pl_err;

struct pl_client_resp {
    long status;      /* HTTP status of the answer */
    const char *body; /* NUL-terminated, in the caller's arena */
    size_t len;
    json_t *json;     /* body parsed as JSON (kept alive by the arena), or NULL */
    double ms;        /* time the call took */
    const char *content_type; /* of the answer, or "application/json" when it named none */
};

/* One of several GETs made at once by pl_client_get_many. */
struct pl_client_get {
    const char *url;            /* in */
    int rc;                     /* out: PL_OK (resp filled) or PL_ERR (err filled) */
    struct pl_client_resp resp;
    struct pl_err *err;         /* in: where a failure goes (may be NULL) */
};

/* curl_global_init and the token every call sends (copied).  Not thread-safe: main() only. */
void pl_client_global_init(const char *service_token);

/* Options of one call; zero-initialise and set what applies. */
struct pl_client_opts {
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
    const char *body;           /* request body or NULL; sent with Content-Type application/json */
    size_t body_len;            /* bytes of body (it may hold anything) */
    long timeout_ms;            /* total time allowed; 0 = 10 s */
};

/* The general call: as pl_client_call, with extra headers and a body of any bytes. */
int pl_client_do(struct pl_arena *a, const char *method, const char *url,
                 const struct pl_client_opts *o, struct pl_client_resp *out, struct pl_err *err);

/*
 * Runs every GET of calls[0..n) at the same time (one curl multi), each with the service token
 * and the request id, and returns when all are done or timeout_ms passed.  Thread-safe.
 */
void pl_client_get_many(struct pl_arena *a, struct pl_client_get *calls, int n, long timeout_ms);

/*
 * Sends method url with body (NULL for none; sent as application/json) and waits at most
 * timeout_ms.  Returns PL_OK with *out filled whatever the HTTP status, or PL_ERR with err:
 * 503 "upstream_unavailable" when the service cannot be reached, 504 "upstream_timeout" on
 * timeout, 502 "upstream_bad_response" when the answer is larger than 8 MiB.  Thread-safe.
 */
int pl_client_call(struct pl_arena *a, const char *method, const char *url, const char *body,
                   long timeout_ms, struct pl_client_resp *out, struct pl_err *err);

#endif
