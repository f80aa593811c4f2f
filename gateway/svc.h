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
    const char *media_url_secret; /* PARLEY_MEDIA_URL_SECRET: HMAC key of signed download URLs */
    size_t media_max_bytes;       /* PARLEY_MEDIA_MAX_BYTES: largest file an upload may carry */
    const char *inbound_url;
    long log_retention_days;
    const char *cors_origins; /* PARLEY_CORS_ORIGINS: exact origins, comma-separated; "" = off */
    long sse_ping_ms;         /* PARLEY_SSE_PING_MS: ": ping" period of the event streams */
};

struct gw_keys; /* the key cache with its rate-limit buckets */
struct gw_log;  /* the api_logs queue and its writer */
struct gw_hub;  /* the event streams' subscriptions (stream_hub.c) */

#define GW_LOG_BODY_MAX 4096 /* bytes of each body kept in api_logs */
#define GW_JSON_BODY_MAX (1 << 20)    /* API bodies (SPEC 2) */
#define GW_WEBHOOK_BODY_MAX (3 << 20) /* webhook deliveries (SPEC 2): the server's limit */

/* One api_logs row: one block with its short strings, the bodies malloc'd apart (free with
 * gw_log_row_free). */
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
    struct gw_hub *hub;
};

/* The caller, once authenticated. */
struct gw_caller {
    char key_id[37];
    unsigned scopes;
};

extern const struct pl_route gw_routes[];
extern const struct pl_cfg_var gw_vars[]; /* config.c */

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
/* The 503 of a call the breaker denied, with Retry-After: the seconds until it lets one through. */
enum MHD_Result gw_breaker_refuse(struct pl_req *req, struct gw_breaker *b);
/* A blocking GET of url (under base) through base's breaker: as pl_client_call, or PL_ERR with a
 * 503 in err at once while the breaker is open. */
struct pl_client_resp;
int gw_breaker_get(struct pl_arena *a, const char *base, const char *url, long timeout_ms,
                   struct pl_client_resp *resp, struct pl_err *err);
/* pl_client_get_many through each call's breaker (bases[i]: the upstream of gets[i]); a call
 * whose breaker is open fails at once with a 503 and is not made. */
#define GW_GET_MANY_MAX 8
struct pl_client_get;
void gw_breaker_get_many(struct pl_arena *a, struct pl_client_get *gets, const char *const *bases,
                         int n, long timeout_ms);

/*
 * CORS (cors.c).  gw_cors_check validates PARLEY_CORS_ORIGINS at start (no "*", no empty entry,
 * each "scheme://host[:port]"); PL_ERR with err filled otherwise.  gw_cors_decorate is the
 * server's decorate hook (ctx is the struct svc_ctx): for an allowed Origin it adds the CORS
 * headers to the reply about to be queued, and the preflight headers to an OPTIONS reply.
 */
int gw_cors_check(const char *origins, struct pl_err *err);
void gw_cors_decorate(const struct pl_req *req, struct MHD_Response *resp, void *ctx);

/*
 * Event streams (stream.c, stream_hub.c, stream_kafka.c).  The hub keeps, per conversation, the
 * subscribers of GET /api/v1/conversations/{id}/stream, and fans out the message events its one
 * Kafka consumer reads.  A subscriber joins in backlog mode: live events are held while its
 * handler sends the backlog (gw_sub_backlog), then gw_sub_live sends the held ones that are still
 * news and goes live.  Everything is thread-safe; frames are "id: <version>", "event: <name>",
 * "data: <message JSON>".  A subscriber belongs to its handler until gw_sub_live or gw_sub_leave
 * returns, then to the hub, which forgets it when its stream is over.
 */
#define GW_STREAM_QUEUE_MAX (256 * 1024) /* bytes queued per client before it is dropped */
struct gw_sub;
struct gw_hub *gw_hub_start(const struct gw_cfg *cfg);
void gw_hub_stop(struct gw_hub *h);
/* True once the consumer reads from the end of every partition (nothing is missed). */
bool gw_hub_ready(struct gw_hub *h);
void gw_hub_set_ready(struct gw_hub *h, bool ready);
/* Joins conversation_id with push p (takes the caller's reference); since = the client's Last-Event-ID or 0. */
struct gw_sub *gw_sub_join(struct gw_hub *h, const char *conversation_id, struct pl_push *p,
                           long long since);
/* Queues one backlog message (a message object).  PL_RETRY when it does not fit the queue. */
int gw_sub_backlog(struct gw_hub *h, struct gw_sub *s, const json_t *msg);
/* Ends the backlog: the held live events go out, then the subscriber is live.  PL_RETRY when
 * the held events overflowed (the subscriber is gone then, as after gw_sub_leave). */
int gw_sub_live(struct gw_hub *h, struct gw_sub *s);
void gw_sub_leave(struct gw_hub *h, struct gw_sub *s);
/* Fans one message out to the conversation's subscribers under event name (message JSON). */
void gw_hub_publish(struct gw_hub *h, const char *event, const json_t *msg);
/* The highest version the hub has seen for conversation_id (0: none), and whether anyone
 * listens to it. */
bool gw_hub_watched(struct gw_hub *h, const char *conversation_id, long long *last_version);
/* The SSE event name for a message fetched in its current state (stream_hub.c). */
const char *gw_stream_event_of(const json_t *msg);
/* The Kafka side: reads the message topics from their ends and publishes into h. */
struct gw_stream_kafka;
struct gw_stream_kafka *gw_stream_kafka_start(struct gw_hub *h, const struct gw_cfg *cfg);
void gw_stream_kafka_stop(struct gw_stream_kafka *k);

/*
 * Media (media.c).  Uploads and content stream through without being held whole.  An upload may
 * carry the multipart framing and small fields beside a file of PARLEY_MEDIA_MAX_BYTES: the same
 * slack media-svc allows.
 */
#define GW_FORM_SLACK (64u * 1024u)
enum MHD_Result gw_media_upload(struct pl_req *req);
enum MHD_Result gw_media_content(struct pl_req *req);
/*
 * Authorizes a media content request whose URL carried no valid signature: as gw_authorize with
 * read scope, except that a caller without a valid key gets 403 (the link is invalid or expired)
 * when bad_signature, else the usual 401.
 */
bool gw_authorize_media(struct pl_req *req, bool bad_signature, struct gw_caller *caller,
                        enum MHD_Result *rc);
/*
 * A download through a valid signed link: takes a token from the client address's bucket (the
 * key rate and burst) and sets the RateLimit headers.  False with a 429 queued when none is left.
 */
bool gw_limit_signed(struct pl_req *req, enum MHD_Result *rc);

/*
 * Idempotency-Key of forwarded POSTs (idem.c).  gw_idem_begin: NULL with *answered false when the
 * request has no key (go on as usual); NULL with *answered true when it answered itself (the
 * replay, 409 while the first request runs, 422 for a bad key or a different request, 503 without
 * the database; *rc); else the claim: forward the request, then gw_idem_finish with the service's
 * answer (status 0: none), which keeps it for replays or lets the key go.  A claim its request
 * never settles is let go when the request ends.
 *
 * A streamed body (the media upload) is hashed as it passes (gw_idem_digest_*), without its
 * multipart boundary.
 * gw_idem_begin_stream claims before the body is read; when the key already has an answer it
 * returns NULL with *answered false and stored->done: the caller reads the body only to hash it,
 * then answers with gw_idem_replay (the replay, or 422 for a different body).  gw_idem_finish
 * then takes the body's hash.
 */
#define GW_IDEM_KEY_MAX 255
struct gw_idem_key {
    const char *key_id, *key;
    char hash[65];    /* the request's hash, or a streamed claim's own mark */
    struct pl_db *db;
    bool settled;
};
struct gw_idem_row {
    bool claimed, done; /* the key is ours now; else whether its answer is stored */
    const char *hash, *content_type, *body;
    size_t len;
    unsigned status;
};
struct gw_idem_key *gw_idem_begin(struct pl_req *req, const char *key_id, bool *answered,
                                  enum MHD_Result *rc);
struct gw_idem_key *gw_idem_begin_stream(struct pl_req *req, const char *key_id,
                                         struct gw_idem_row *stored, bool *answered,
                                         enum MHD_Result *rc);
enum MHD_Result gw_idem_replay(struct pl_req *req, const struct gw_idem_row *row,
                               const char *hash);
/* hash: the request's, when it was not known at the claim (NULL: k's). */
void gw_idem_finish(struct pl_req *req, struct gw_idem_key *k, const char *hash, unsigned status,
                    const char *ctype, const char *body, size_t len);
struct gw_idem_digest; /* idem_digest.h */
struct gw_idem_digest *gw_idem_digest_start(struct pl_req *req); /* freed with the request */

/* Proxy helpers (proxy.c): "Name: value" of a header the caller sent (arena), or NULL; and a
 * 10-50 ms pause before a retry, different per thread and call. */
const char *gw_pass_header(struct pl_req *req, const char *name);
void gw_jitter(void);
long gw_jitter_ms(void); /* the same pause, in milliseconds, for a delayed start */

/* Handlers. */
enum MHD_Result gw_to_media(struct pl_req *req);
enum MHD_Result gw_stream(struct pl_req *req);
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
int gw_db_idem_claim(PGconn *db, struct pl_arena *a, const struct gw_idem_key *k, long stale_s,
                     struct gw_idem_row *row, struct pl_err *err);
int gw_db_idem_store(PGconn *db, const struct gw_idem_key *k, const char *hash, unsigned status,
                     const char *ctype, const char *body, struct pl_err *err);
int gw_db_idem_release(PGconn *db, const struct gw_idem_key *k, struct pl_err *err);
int gw_db_idem_purge(PGconn *db, struct pl_err *err);
/* Makes sure a key with this hash exists (bootstrap); scopes read, write, admin. */
int gw_db_key_ensure(PGconn *db, const char *name, const char *hash, struct pl_err *err);

/* Key material: a new random key "pk_<hex>" and the hex SHA-256 of any key. */
void gw_key_generate(char out[52]);
void gw_key_hash(const char *key, char out[65]);
/* gateway --create-api-key: stores a key under name with scopes, prints its secret once; exit code. */
int gw_key_create_cli(struct pl_db *db, const char *name, const char *scopes);
/* The bootstrap key (PARLEY_BOOTSTRAP_API_KEY) exists, as its hash, with every scope; fatal if not. */
void gw_key_ensure_bootstrap(struct pl_db *db, const char *key);

#endif
