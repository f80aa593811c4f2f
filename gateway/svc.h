/*
 * svc.h - gateway private declarations: configuration, context, authentication, upstreams.
 */
#ifndef GATEWAY_SVC_H
#define GATEWAY_SVC_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "parley/config.h"
#include "parley/http.h"

struct pl_arena;
struct pl_db;
struct pl_err;

#define GW_SERVICE "gateway"
#define GW_KEY_CACHE_US (5LL * 1000000) /* a revoked key stops working within this */

enum gw_scope { GW_READ = 1, GW_WRITE = 2, GW_ADMIN = 4 };

struct gw_cfg {
    struct pl_cfg_common c;
    const char *bootstrap_key;
    long rate_rps;
    long rate_burst;
    long upstream_timeout_ms;
    const char *customer_url;
    const char *conversation_url;
    const char *messaging_url;
    const char *media_url;
    const char *inbound_url;
    long log_retention_days;
    const char *cors_origins; /* PARLEY_CORS_ORIGINS: exact origins, comma-separated; "" = off */
};

struct gw_keys; /* the key cache with its rate-limit buckets */
struct gw_log;  /* the api_logs queue and its writer */

#define GW_LOG_BODY_MAX 4096 /* bytes of each body kept in api_logs */
#define GW_JSON_BODY_MAX (1 << 20)    /* API bodies (SPEC 2) */
#define GW_WEBHOOK_BODY_MAX (3 << 20) /* webhook deliveries (SPEC 2): the server's limit */

/* One api_logs row; every string malloc'd (free with gw_log_row_free). */
struct gw_log_row {
    char id[37];
    char *created_at, *method, *path, *route, *client_ip, *api_key_id, *request_id;
    char *request_body, *response_body; /* NULL when empty */
    unsigned status;
    double duration_ms;
};

struct svc_ctx {
    const struct gw_cfg *cfg;
    struct pl_db *db;
    struct gw_keys *keys;
    struct gw_log *log;
    long long started_us;
};

/* The caller, once authenticated. */
struct gw_caller {
    char key_id[37];
    unsigned scopes;
};

extern const struct pl_route gw_routes[];

/*
 * Authenticates the request (X-API-Key or Authorization: Bearer), checks the scope the route
 * needs and the caller's rate limit.  Returns true with *caller filled; otherwise queues the
 * 401/403/429 reply in *rc and returns false.
 */
bool gw_authorize(struct pl_req *req, unsigned need, struct gw_caller *caller, enum MHD_Result *rc);
struct gw_keys *gw_keys_new(long rps, long burst);
void gw_keys_free(struct gw_keys *k);

/* api_logs: the server's completion hook queues a row; a writer thread stores batches. */
struct gw_log *gw_log_start(struct pl_db *db, long retention_days);
void gw_log_stop(struct gw_log *log);
void gw_log_request(const struct pl_req *req, void *ctx);
void gw_log_row_free(struct gw_log_row *r);

/*
 * Circuit breakers, one per upstream base URL (breaker.c).  gw_breaker_for finds or makes the
 * breaker of base (NULL when the fixed table is full: then every call passes); gw_breaker_enter
 * says whether a call may go now, and gw_breaker_leave, called once after every call that was not
 * denied, reports how it went (ok: an answer below 500).  Thread-safe; nothing is allocated.
 */
#define GW_BREAKER_FAILURES 5              /* consecutive failures that open a breaker */
#define GW_BREAKER_OPEN_US (10LL * 1000000) /* how long it stays open before one probe */
struct gw_breaker;
enum gw_pass { GW_DENY, GW_PASS, GW_PROBE };
struct gw_breaker *gw_breaker_for(const char *base);
enum gw_pass gw_breaker_enter(struct gw_breaker *b);
void gw_breaker_leave(struct gw_breaker *b, enum gw_pass pass, bool ok);

/*
 * CORS (cors.c).  gw_cors_check validates PARLEY_CORS_ORIGINS at start (no "*", no empty entry,
 * each "scheme://host[:port]"); PL_ERR with err filled otherwise.  gw_cors_decorate is the
 * server's decorate hook (ctx is the struct svc_ctx): for an allowed Origin it adds the CORS
 * headers to the reply about to be queued, and the preflight headers to an OPTIONS reply.
 */
int gw_cors_check(const char *origins, struct pl_err *err);
void gw_cors_decorate(const struct pl_req *req, struct MHD_Response *resp, void *ctx);

/* Handlers. */
enum MHD_Result gw_openapi(struct pl_req *req);
enum MHD_Result gw_to_customer(struct pl_req *req);
enum MHD_Result gw_to_conversation(struct pl_req *req);
enum MHD_Result gw_to_messaging(struct pl_req *req);
enum MHD_Result gw_to_inbound(struct pl_req *req);
enum MHD_Result gw_webhooks_admin(struct pl_req *req);
enum MHD_Result gw_api_keys_create(struct pl_req *req);
enum MHD_Result gw_api_keys_list(struct pl_req *req);
enum MHD_Result gw_api_keys_revoke(struct pl_req *req);
enum MHD_Result gw_health_all(struct pl_req *req);
enum MHD_Result gw_conversation_details(struct pl_req *req);
enum MHD_Result gw_logs_list(struct pl_req *req);
enum MHD_Result gw_logs_get(struct pl_req *req);
enum MHD_Result gw_telemetry(struct pl_req *req);
enum MHD_Result gw_notifications(struct pl_req *req);
enum MHD_Result gw_health_one(struct pl_req *req);

/* SQL. */
int gw_db_key_lookup(PGconn *db, const char *hash, char id[37], unsigned *scopes, bool *revoked,
                     struct pl_err *err);
int gw_db_key_create(PGconn *db, struct pl_arena *a, const char *name, const char *hash,
                     const char *scopes, const char **json, struct pl_err *err);
int gw_db_key_list(PGconn *db, struct pl_arena *a, const char **json, struct pl_err *err);
int gw_db_key_revoke(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                     struct pl_err *err);
int gw_db_log_insert(PGconn *db, struct gw_log_row *const *rows, int n, struct pl_err *err);
int gw_db_log_purge(PGconn *db, long days, struct pl_err *err);
struct gw_log_filter {
    const char *method, *status, *path, *start, *end; /* NULL = any */
    long long limit, offset;
};
int gw_db_log_list(PGconn *db, struct pl_arena *a, const struct gw_log_filter *f,
                   const char ***items, int *n, long long *total, struct pl_err *err);
int gw_db_log_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                  struct pl_err *err);
int gw_db_telemetry(PGconn *db, struct pl_arena *a, const char **json, struct pl_err *err);
/* Makes sure a key with this hash exists (bootstrap); scopes read, write, admin. */
int gw_db_key_ensure(PGconn *db, const char *name, const char *hash, struct pl_err *err);

/* Key material: a new random key "pk_<hex>" and the hex SHA-256 of any key. */
void gw_key_generate(char out[52]);
void gw_key_hash(const char *key, char out[65]);

#endif
