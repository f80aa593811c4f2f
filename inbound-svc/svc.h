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

#define INB_SERVICE "inbound-svc"
#define INB_WEBHOOK_BODY_MAX (3 << 20) /* SPEC 2: webhooks up to 3 MiB */
#define INB_BACKOFF_CAP_S 60
#define INB_LEASE_S 120        /* a claimed row is retaken after this (its worker died) */
#define INB_CALL_TIMEOUT_MS 10000
#define INB_DEAD_PER_PAGE 50
#define INB_MEDIA_TIMEOUT_MS 60000 /* media-svc fetches from the provider (its own limit: 30 s) */

struct inb_cfg {
    struct pl_cfg_common c;
    const char *whatsapp_secret;       /* PARLEY_WHATSAPP_APP_SECRET */
    const char *whatsapp_verify_token; /* PARLEY_WHATSAPP_VERIFY_TOKEN */
    const char *telegram_secret;       /* PARLEY_TELEGRAM_SECRET_TOKEN */
    const char *telegram_bot_token;    /* PARLEY_TELEGRAM_BOT_TOKEN */
    long max_attempts;                 /* PARLEY_INBOUND_MAX_ATTEMPTS */
    long workers;                      /* PARLEY_INBOUND_WORKERS */
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
};

/* A delivery to store. */
struct webhook_input {
    const char *provider;
    const char *event_id;
    const char *body;    /* NUL-terminated copy of the raw bytes */
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
void inb_workers_wake(struct inb_workers *w);
void inb_workers_stop(struct inb_workers *w);

/*
 * SQL.  Each returns PL_DB_ROW, PL_DB_NONE or a failure code with err filled.  The store writes
 * webhook.inbound.received through the outbox in the same statement.
 */
/* PL_DB_ROW: stored; PL_DB_NONE: (provider, event id) already there. */
int inb_db_webhook_store(PGconn *db, const struct webhook_input *in, struct pl_err *err);
/* Claims one due row (status processing, attempts + 1, a lease) into out. */
int inb_db_webhook_claim(PGconn *db, struct pl_arena *a, struct webhook_row *out,
                         struct pl_err *err);
/* Marks a processed row done. */
int inb_db_webhook_done(PGconn *db, const char *id, struct pl_err *err);
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
