/*
 * deliver.h - inbound-svc private: how the workers turn normalised items (items.h) into calls to
 * customer-, conversation-, messaging- and media-svc, and what one webhook row's run learned.
 *
 * One struct inb_run lives for one claimed row, on the worker's thread; nothing here is shared
 * between threads.  Every call is idempotent on the other side, so a row run again after a
 * failure or a crash creates nothing twice.
 */
#ifndef INBOUND_DELIVER_H
#define INBOUND_DELIVER_H

#include <jansson.h>
#include <libpq-fe.h>

#include "items.h"

struct pl_arena;
struct pl_client_resp;
struct inb_cfg;
struct inb_idcache;

/* An item's outcome, in rising order of gravity: a row takes the worst of its items. */
enum inb_outcome {
    INB_OK = 0,
    INB_RETRY = 1,     /* transport, 5xx, 429, a target not known yet: the row is retried */
    INB_PERMANENT = 2, /* a service refused it: the row goes dead after the other items ran */
};

struct inb_pending;

/* What one row's processing learned: the worst outcome and the first error text. */
struct inb_run {
    struct pl_arena *a;
    const struct inb_cfg *cfg;
    PGconn *db;          /* the worker's connection (inbound_media) */
    struct inb_idcache *ids; /* the process's customer ids (idcache.h), or NULL for none */
    const char *channel; /* the row's provider: "whatsapp" or "telegram" */
    enum inb_outcome worst;
    char error[300];
    /* The last identities resolved: most deliveries repeat the same ones. */
    const char *biz_key, *biz_id, *conv_key, *conv_id;
    /* Where message creates wait to go out together (pending.c), or NULL: each at once. */
    struct inb_pending *pending;
    const char *trace; /* the row's request id, which its messages' events carry */
};

/* What an HTTP status of a service means for an item. */
enum inb_outcome inb_classify(long status);

/* Records an item's outcome; the first error of the worst kind is kept. */
void inb_note(struct inb_run *r, enum inb_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Sends body (taken; NULL for none) to url with the service token and waits at most timeout_ms.
 * Returns the answer's outcome, noted with what as the error on failure; on INB_OK *out is the
 * parsed answer (kept by the run's arena).  With quiet, a failed answer is returned in *out but
 * not noted (the caller decides what it means); a transport failure is always noted, and leaves
 * out->status 0.
 */
enum inb_outcome inb_call(struct inb_run *r, const char *method, const char *url, json_t *body,
                          const char *what, long timeout_ms, bool quiet,
                          struct pl_client_resp *out);

/* The id member of a 2xx answer, or NULL (noted as a retry). */
const char *inb_answer_id(struct inb_run *r, const struct pl_client_resp *resp, const char *what);

/*
 * Runs one item (deliver.c).  Skipped items are logged.  With r->pending, a message create may
 * only be queued: its outcome reaches r when the queue is flushed.  Any other item flushes the
 * queue first, so the items of a delivery still take effect in their order.
 */
void inb_deliver(struct inb_run *r, const struct inb_item *it);

/* POST /api/messages with body (taken), then the sent status of an echo (deliver.c). */
void inb_create_message(struct inb_run *r, const struct inb_item *it, json_t *body);
/* After the message of echo it exists: its status moves to sent (deliver.c). */
void inb_echo_status(struct inb_run *r, const struct inb_item *it);

/*
 * Message creates of several rows, sent to messaging-svc as one batch (pending.c): one request
 * and one transaction instead of one each.  Belongs to one worker thread.
 */
struct inb_pending *inb_pending_new(struct pl_arena *a, const struct inb_cfg *cfg);
/* Queues body (taken) for r's item it, which must stay valid until the flush; may flush. */
void inb_pending_add(struct inb_pending *p, struct inb_run *r, const struct inb_item *it,
                     json_t *body);
/* Sends what is queued and gives each row its items' outcomes; NULL-safe. */
void inb_pending_flush(struct inb_pending *p);

/*
 * Media of a media message (media.c): when meta (the message's metadata, the caller's copy) has
 * media.provider_media_id, makes sure media-svc holds the file, fetching it once per provider
 * media id, and sets media.media_id and *media_id.  A fetch refused for good (404, 413, 415,
 * 422) sets media.fetch_error instead and returns INB_OK: the message is stored without its
 * file.  INB_RETRY (noted) when the file could not be fetched now: the message must wait.
 */
enum inb_outcome inb_media_attach(struct inb_run *r, const char *conversation_id, json_t *meta,
                                  const char **media_id);

#endif
