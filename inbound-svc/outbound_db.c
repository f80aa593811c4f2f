/*
 * outbound_db.c - all SQL of the deliveries and delivery_attempts tables (sql/002_deliveries.sql).
 *
 * Insert is ON CONFLICT (message_id) DO NOTHING: a redelivered event finds its row and records
 * nothing, whatever state the row is in, so a message is tried by one row only.
 *
 * Claim is one statement: the oldest due row is picked with FOR UPDATE SKIP LOCKED (several
 * sender threads and replicas never take the same row, nor wait on each other) and leased by
 * moving next_attempt_at past the longest try.  A row due for a try is skipped while an earlier
 * message of its conversation (by seq) is still queued, sending or retrying, so one conversation's
 * messages leave in order; the earlier row exists whatever its lock, so two claimers cannot take
 * neighbours at once.  A sending row whose lease ran out (its sender died) is due again.
 *
 * Finish is one statement too: the outcome and its attempt row are written together, and only
 * while the row is still sending, so a try is recorded once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound.h"
#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/uuid.h"

#define OPEN_STATES "('queued', 'sending', 'retrying')"

static const struct pl_stmt insert = {
    "outb_insert",
    "INSERT INTO deliveries (message_id, conversation_id, seq, provider, sender, recipient,"
    " is_group, body, request_id, state, last_error, content_type, media_id)"
    " VALUES ($1::uuid, $2::uuid, $3::bigint, $4, $5, $6, $7::boolean, $8, $9,"
    "  CASE WHEN $10::jsonb IS NULL THEN 'queued' ELSE 'failed' END, $10::jsonb, $11, $12::uuid)"
    " ON CONFLICT (message_id) DO NOTHING RETURNING 1",
    12,
};

static const struct pl_stmt claim = {
    "outb_claim",
    "UPDATE deliveries d SET"
    " state = CASE WHEN d.state IN " OPEN_STATES " THEN 'sending' ELSE d.state END,"
    " attempts = d.attempts + CASE WHEN d.state IN " OPEN_STATES " THEN 1 ELSE 0 END,"
    " next_attempt_at = now() + make_interval(secs => $1::int), updated_at = now()"
    " WHERE d.message_id = (SELECT x.message_id FROM deliveries x"
    "  WHERE x.next_attempt_at <= now()"
    "   AND (x.state IN " OPEN_STATES " OR NOT x.synced)"
    "   AND (x.state NOT IN " OPEN_STATES " OR NOT EXISTS (SELECT 1 FROM deliveries y"
    "    WHERE y.conversation_id = x.conversation_id AND y.seq < x.seq"
    "     AND y.state IN " OPEN_STATES "))"
    "  ORDER BY x.next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING d.message_id, d.provider, d.sender, d.recipient, d.is_group, d.body, d.state,"
    "  d.provider_message_id, d.last_error::text, COALESCE(d.request_id, ''), d.attempts,"
    "  d.content_type, d.media_id::text",
    1,
};

static const struct pl_stmt finish = {
    "outb_finish",
    "WITH d AS ("
    " UPDATE deliveries SET state = $2, provider_message_id = COALESCE($3, provider_message_id),"
    "  last_error = $4::jsonb, synced = false, updated_at = now(),"
    "  next_attempt_at = now() + make_interval(secs => $5::double precision / 1000),"
    "  sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END"
    " WHERE message_id = $1::uuid AND state = 'sending'"
    " RETURNING message_id, attempts)"
    "INSERT INTO delivery_attempts (message_id, attempt, started_at, outcome, http_status,"
    " provider_message_id, error)"
    " SELECT d.message_id, d.attempts, to_timestamp($6::double precision / 1000000),"
    "  CASE $2 WHEN 'retrying' THEN 'retry' ELSE $2 END, $7::int, $3, $4::jsonb FROM d"
    " RETURNING 1",
    7,
};

static const struct pl_stmt synced = {
    "outb_synced",
    "UPDATE deliveries SET synced = $2::boolean, updated_at = now(),"
    " next_attempt_at = now() + make_interval(secs => $3::double precision / 1000)"
    " WHERE message_id = $1::uuid AND state IN ('sent', 'failed')",
    3,
};

int
inb_db_delivery_insert(PGconn *db, const struct outb_new *in, struct pl_err *err)
{
    const struct outb_route *r = in->route;
    const char *params[] = { in->message_id, in->conversation_id, in->seq, r->provider,
                             r->sender, r->recipient, r->group ? "true" : "false", in->body,
                             in->request_id, in->error, in->content_type, in->media_id };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &insert, params, &res, err);

    PQclear(res);
    return rc;
}

/* A nullable text column copied into the arena, or NULL. */
static const char *
opt_value(struct pl_arena *a, const PGresult *res, int col)
{
    if (PQgetisnull(res, 0, col))
        return NULL;
    return pl_arena_strndup(a, PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col));
}

int
inb_db_delivery_claim(PGconn *db, struct pl_arena *a, long lease_s, struct outb_job *out,
                      struct pl_err *err)
{
    char lease[24];
    const char *params[] = { lease };
    PGresult *res = NULL;
    int rc;

    snprintf(lease, sizeof(lease), "%ld", lease_s);
    rc = pl_db_query(db, &claim, params, &res, err);
    if (rc == PL_DB_ROW) {
        out->message_id = opt_value(a, res, 0);
        out->provider = opt_value(a, res, 1);
        out->sender = opt_value(a, res, 2);
        out->recipient = opt_value(a, res, 3);
        out->group = PQgetvalue(res, 0, 4)[0] == 't';
        out->body = opt_value(a, res, 5);
        out->state = opt_value(a, res, 6);
        out->provider_message_id = opt_value(a, res, 7);
        out->last_error = opt_value(a, res, 8);
        out->request_id = opt_value(a, res, 9);
        out->attempts = strtol(PQgetvalue(res, 0, 10), NULL, 10);
        out->content_type = opt_value(a, res, 11);
        out->media_id = opt_value(a, res, 12);
    }
    PQclear(res);
    return rc;
}

int
inb_db_delivery_finish(PGconn *db, const struct outb_job *job, const char *state,
                       const struct outb_result *r, const char *error, long delay_ms,
                       int64_t started_us, struct pl_err *err)
{
    char delay[24], started[24], http[24];
    const char *params[] = { job->message_id,
                             state,
                             r->cls == OUTB_SENT ? r->provider_message_id : NULL,
                             error,
                             delay,
                             started,
                             r->http_status > 0 ? http : NULL };
    PGresult *res = NULL;
    int rc;

    snprintf(delay, sizeof(delay), "%ld", delay_ms);
    snprintf(started, sizeof(started), "%lld", (long long)started_us);
    snprintf(http, sizeof(http), "%ld", r->http_status);
    rc = pl_db_query(db, &finish, params, &res, err);
    PQclear(res);
    return rc;
}

int
inb_db_delivery_synced(PGconn *db, const char *message_id, bool done, long delay_ms,
                       struct pl_err *err)
{
    char delay[24];
    const char *params[] = { message_id, done ? "true" : "false", delay };
    PGresult *res = NULL;
    int rc;

    snprintf(delay, sizeof(delay), "%ld", done ? 0L : delay_ms);
    rc = pl_db_query(db, &synced, params, &res, err);
    PQclear(res);
    return rc;
}
