/*
 * svc.h - inbound-svc private declarations: configuration, context, handlers, workers, SQL.
 */
#ifndef INBOUND_SVC_H
#define INBOUND_SVC_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "parley/config.h"
#include "parley/http.h"

struct pl_arena;
struct pl_db;
struct pl_err;
struct inb_workers;
struct inb_store;

#define INB_SERVICE "inbound-svc"
#define INB_WEBHOOK_BODY_MAX (3 << 20) /* SPEC 2: webhooks up to 3 MiB */
#define INB_BACKOFF_CAP_S 60
#define INB_LEASE_S 120        /* a claimed row is retaken after this (its worker died) */
#define INB_CALL_TIMEOUT_MS 10000
#define INB_DEAD_PER_PAGE 50
#define INB_MEDIA_TIMEOUT_MS 60000 /* media-svc fetches from the provider (its own limit: 30 s) */
#define INB_STORE_BATCH_MAX 64          /* deliveries per store statement (store.c) */
#define INB_STORE_BATCH_BYTES (4 << 20) /* and their bodies' bytes, past the first delivery */
#define INB_HTTP_THREADS 32 /* PARLEY_HTTP_THREADS when unset: handlers wait for a store batch */

struct inb_cfg {
    struct pl_cfg_common c;
    const char *whatsapp_secret;       /* PARLEY_WHATSAPP_APP_SECRET */
    const char *whatsapp_verify_token; /* PARLEY_WHATSAPP_VERIFY_TOKEN */
    const char *telegram_secret;       /* PARLEY_TELEGRAM_SECRET_TOKEN */
    const char *telegram_bot_token;    /* PARLEY_TELEGRAM_BOT_TOKEN */
    long max_attempts;                 /* PARLEY_INBOUND_MAX_ATTEMPTS */
    long workers;                      /* PARLEY_INBOUND_WORKERS */
    long retention_days;               /* PARLEY_INBOUND_RETENTION_DAYS */
    long store_threads;                /* PARLEY_INBOUND_STORE_THREADS: store batchers */
    const char *customer_url;          /* PARLEY_CUSTOMER_URL */
    const char *conversation_url;      /* PARLEY_CONVERSATION_URL */
    const char *messaging_url;         /* PARLEY_MESSAGING_URL */
    const char *media_url;             /* PARLEY_MEDIA_URL */
    char bot_id[64];                   /* the number before ':' in the bot token */
    /* Outbound delivery (outbound.h). */
    const char *whatsapp_api_base;        /* PARLEY_WHATSAPP_API_BASE */
    const char *whatsapp_access_token;    /* PARLEY_WHATSAPP_ACCESS_TOKEN */
    const char *whatsapp_phone_number_id; /* PARLEY_WHATSAPP_PHONE_NUMBER_ID: default sender */
    const char *telegram_api_base;        /* PARLEY_TELEGRAM_API_BASE */
    long outbound_max_attempts;           /* PARLEY_OUTBOUND_MAX_ATTEMPTS */
    long outbound_backoff_base_ms;        /* PARLEY_OUTBOUND_BACKOFF_BASE_MS */
    long outbound_backoff_cap_ms;         /* PARLEY_OUTBOUND_BACKOFF_CAP_MS */
    long outbound_timeout_ms;             /* PARLEY_OUTBOUND_TIMEOUT_MS: one provider call */
    long outbound_senders;                /* PARLEY_OUTBOUND_SENDERS: sender threads */
};

struct svc_ctx {
    const struct inb_cfg *cfg;
    struct inb_workers *workers; /* woken after each stored delivery */
    struct inb_store *store;     /* writes deliveries in batches (store.c) */
};

/* A delivery to store. */
struct webhook_input {
    const char *provider;
    const char *event_id;
    const char *body;    /* NUL-terminated copy of the raw bytes */
    size_t body_len;     /* its length */
    const char *headers; /* serialized object */
    const char *request_id;
};

/* A claimed row. */
struct webhook_row {
    const char *id;
    const char *provider;
    const char *body;
    const char *request_id;
    long attempts; /* including this one */
};

extern const struct pl_route inb_routes[];

enum MHD_Result inb_whatsapp_verify(struct pl_req *req);
enum MHD_Result inb_whatsapp_receive(struct pl_req *req);
enum MHD_Result inb_telegram_receive(struct pl_req *req);
enum MHD_Result inb_webhooks_dead(struct pl_req *req);
enum MHD_Result inb_webhooks_replay(struct pl_req *req);

/*
 * Worker threads (worker.c): each claims due rows with FOR UPDATE SKIP LOCKED and processes them
 * through customer-, conversation- and messaging-svc.  inb_workers_start never fails (threads
 * that cannot reach the database retry); stop joins them.  wake is thread-safe.
 */
struct inb_workers *inb_workers_start(const struct inb_cfg *cfg, struct pl_db *db, int n);

/* One retention pass (retention_db.c): finished rows older than days are deleted. */
void inb_db_retention_run(PGconn *db, long days);
void inb_workers_wake(struct inb_workers *w);
void inb_workers_stop(struct inb_workers *w);

/*
 * The store batcher (store.c): a handler's delivery is written together with those of the other
 * handlers waiting at the same moment, in one statement and one commit, by one of n threads with
 * their own connections.  put blocks until the delivery is committed (or failed): PL_DB_ROW
 * stored, PL_DB_NONE (provider, event id) already there, else a failure with err filled.  It is
 * thread-safe and borrows in.  stop, called after the HTTP server drained, writes what is still
 * queued and joins the threads.
 */
struct inb_store *inb_store_start(struct pl_db *db, int n);
int inb_store_put(struct inb_store *s, const struct webhook_input *in, struct pl_err *err);
void inb_store_stop(struct inb_store *s);

/*
 * SQL.  Each returns PL_DB_ROW, PL_DB_NONE or a failure code with err filled.  The store writes
 * no event (its commit must not NOTIFY); a row's first claim writes webhook.inbound.received
 * (a trigger, sql/005_webhook_announced.sql: once per row, in the claim's transaction).
 */
/*
 * Stores n (1..INB_STORE_BATCH_MAX) deliveries in one statement; stored[i] tells whether in[i]
 * was new.  Two equal deliveries in one call store one row.  PL_DB_ROW or PL_DB_NONE (nothing
 * new), else a failure for all of them.
 */
int inb_db_webhook_store_many(PGconn *db, const struct webhook_input *const *in, int n,
                              bool *stored, struct pl_err *err);
/*
 * Records a failure: dead when permanent or at max_attempts, else pending again after
 * 2^attempts seconds (at most INB_BACKOFF_CAP_S).
 */
int inb_db_webhook_fail(PGconn *db, const char *id, bool permanent, long max_attempts,
                        const char *error, struct pl_err *err);
/* A page of dead rows, newest first, and their total. */
int inb_db_webhook_dead(PGconn *db, struct pl_arena *a, long long limit, long long offset,
                        const char ***items, int *n, long long *total, struct pl_err *err);
/* Sets a row back to pending with attempts 0; PL_DB_NONE when unknown. */
int inb_db_webhook_replay(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                          struct pl_err *err);

/*
 * Media fetched for inbound messages (media_db.c).  get: PL_DB_ROW with *media_id (in the arena)
 * when (provider, provider_media_id) was fetched before.  put: records media_id unless another
 * is recorded already; *media_id is then the one recorded (the first wins).
 */
int inb_db_media_get(PGconn *db, struct pl_arena *a, const char *provider,
                     const char *provider_media_id, const char **media_id, struct pl_err *err);
int inb_db_media_put(PGconn *db, struct pl_arena *a, const char *provider,
                     const char *provider_media_id, const char **media_id, struct pl_err *err);

#endif
