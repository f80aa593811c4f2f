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
};

struct gw_keys; /* the key cache with its rate-limit buckets */

struct svc_ctx {
    const struct gw_cfg *cfg;
    struct pl_db *db;
    struct gw_keys *keys;
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

/* Handlers. */
enum MHD_Result gw_to_customer(struct pl_req *req);
enum MHD_Result gw_to_conversation(struct pl_req *req);
enum MHD_Result gw_to_messaging(struct pl_req *req);
enum MHD_Result gw_api_keys_create(struct pl_req *req);
enum MHD_Result gw_api_keys_list(struct pl_req *req);
enum MHD_Result gw_api_keys_revoke(struct pl_req *req);
enum MHD_Result gw_health_all(struct pl_req *req);
enum MHD_Result gw_health_one(struct pl_req *req);

/* SQL. */
int gw_db_key_lookup(PGconn *db, const char *hash, char id[37], unsigned *scopes, bool *revoked,
                     struct pl_err *err);
int gw_db_key_create(PGconn *db, struct pl_arena *a, const char *name, const char *hash,
                     const char *scopes, const char **json, struct pl_err *err);
int gw_db_key_list(PGconn *db, struct pl_arena *a, const char **json, struct pl_err *err);
int gw_db_key_revoke(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                     struct pl_err *err);
/* Makes sure a key with this hash exists (bootstrap); scopes read, write, admin. */
int gw_db_key_ensure(PGconn *db, const char *name, const char *hash, struct pl_err *err);

/* Key material: a new random key "pk_<hex>" and the hex SHA-256 of any key. */
void gw_key_generate(char out[52]);
void gw_key_hash(const char *key, char out[65]);

#endif
