/*
 * outbound.h - inbound-svc's sending half (SPEC 6): the consumer of message.outbound.created,
 * the sender threads, the provider calls and the SQL of the deliveries table.
 *
 *   outbound.c       consumer (group "inbound-svc-outbound") and decision; sender threads
 *   outbound_send.c  one provider call per try and its classification (outbound_rules.h)
 *   outbound_media.c the signed link (and filename) of a media message, from media-svc
 *   outbound_db.c    all SQL of deliveries and delivery_attempts
 * The request bodies, text or media, are outbound_request.h.
 */
#ifndef INBOUND_OUTBOUND_H
#define INBOUND_OUTBOUND_H

#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "outbound_request.h"
#include "outbound_rules.h"

struct inb_cfg;
struct pl_arena;
struct pl_db;
struct pl_err;
struct inb_outbound;

#define OUTB_GROUP "inbound-svc-outbound"
#define OUTB_WRITEBACK_TIMEOUT_MS 10000
#define OUTB_WRITEBACK_RETRY_MS 5000
#define OUTB_LEASE_MARGIN_S 5 /* a claim outlives the provider timeout by this much */
#define OUTB_UPLOAD_MAX (50LL << 20) /* Telegram's upload limit for bots: 50 MB */
#define OUTB_PATH_MAX 256

/* A delivery to record (the consumer's decision).  Strings borrowed. */
struct outb_new {
    const char *message_id;
    const char *conversation_id;
    const char *seq;
    const struct outb_route *route;
    const char *body;
    const char *content_type; /* text, or a media kind of outbound_request.h */
    const char *media_id;     /* with a media kind, else NULL */
    const char *request_id; /* trace id of the event, or NULL */
    const char *error;      /* serialized error: recorded as failed at once, or NULL */
};

/* A claimed row.  Strings in the claimer's arena. */
struct outb_job {
    const char *message_id;
    const char *provider;
    const char *sender; /* NULL for Telegram */
    const char *recipient;
    bool group;
    const char *body;
    const char *content_type;        /* "text" or a media kind (outbound_request.h) */
    const char *media_id;            /* with a media kind, else NULL */
    const char *state;               /* "sending": try now; "sent"/"failed": write back only */
    const char *provider_message_id; /* with sent, else NULL */
    const char *last_error;          /* serialized, with failed, else NULL */
    const char *request_id;          /* "" when none */
    long attempts;                   /* tries including this one */
};

/*
 * Starts the consumer and cfg->outbound_senders sender threads, which open their connections
 * through db (borrowed; must outlive the result).  Fatal when the consumer cannot be created.
 */
struct inb_outbound *inb_outbound_start(const struct inb_cfg *cfg, struct pl_db *db);
/* Stops the consumer, then the senders (each finishes its current try); NULL-safe. */
void inb_outbound_stop(struct inb_outbound *o);

/*
 * One provider call for job with handle h (the calling thread's; reset here), classified into r.
 * Never sends the service token; logs neither the bot token nor the text.  Thread-safe per h.
 */
void inb_outbound_send(CURL *h, const struct inb_cfg *cfg, struct pl_arena *a,
                       const struct outb_job *job, struct outb_result *r);
/*
 * For a media job: asks media-svc (service token) for the signed download URL of job->media_id,
 * and for a document its filename and Content-Type too, into p->link, p->filename and
 * p->media_type (in the arena; the last two may be NULL).  Returns true when found; else false
 * with r filled: media_not_found (permanent) when media-svc does not know the media,
 * media_unavailable (retry) when it could not answer.  Thread-safe (the calling thread's
 * pl_client handle).
 */
bool inb_outbound_media_link(const struct inb_cfg *cfg, struct pl_arena *a,
                             const struct outb_job *job, struct outb_payload *p,
                             struct outb_result *r);
/*
 * Fills r for a media-svc call about job's media that failed, and returns false: status 0 (no
 * answer, why says what happened) and other statuses end the try as retryable
 * (media_unavailable); 404 fails the message for good (media_not_found).
 */
bool inb_outbound_media_failed(struct pl_arena *a, const struct outb_job *job, long status,
                               const char *why, struct outb_result *r);
/*
 * Copies job's media from media-svc (GET /api/media/{id}/content) into a new file under TMPDIR
 * whose path it writes to path, for an upload to the provider.  Returns true with the file made
 * (the caller removes it); else false with r filled as inb_outbound_media_link does, or
 * file_too_large (permanent) past OUTB_UPLOAD_MAX bytes.
 */
bool inb_outbound_media_file(const struct inb_cfg *cfg, struct pl_arena *a,
                             const struct outb_job *job, char path[OUTB_PATH_MAX],
                             struct outb_result *r);
/* The SPEC 10 error object of r as JSON text in the arena. */
const char *inb_outbound_error_json(struct pl_arena *a, const char *provider,
                                    const struct outb_result *r, bool retryable);

/*
 * SQL (outbound_db.c).  Each returns PL_DB_ROW, PL_DB_NONE or a failure code with err filled.
 */
/* Records a new delivery; PL_DB_NONE when the message has one already (a redelivered event). */
int inb_db_delivery_insert(PGconn *db, const struct outb_new *in, struct pl_err *err);
/*
 * Claims one due row with FOR UPDATE SKIP LOCKED: a try (state becomes sending, attempts + 1)
 * whose conversation has no earlier unfinished delivery, or an outcome not yet written back.
 * Either way the row is leased for lease_s seconds.
 */
int inb_db_delivery_claim(PGconn *db, struct pl_arena *a, long lease_s, struct outb_job *out,
                          struct pl_err *err);
/*
 * Records a try's outcome and its attempt row in one statement: state (sent, retrying or failed),
 * the provider's id (with sent), the error (serialized or NULL), the delay before the next try
 * (with retrying), and started_us, when the try began.  PL_DB_NONE: the row was not sending.
 */
int inb_db_delivery_finish(PGconn *db, const struct outb_job *job, const char *state,
                           const struct outb_result *r, const char *error, long delay_ms,
                           int64_t started_us, struct pl_err *err);
/* Marks the outcome written back (done), or leaves it due again after delay_ms. */
int inb_db_delivery_synced(PGconn *db, const char *message_id, bool done, long delay_ms,
                           struct pl_err *err);

#endif
