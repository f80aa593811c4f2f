/*
 * webhooks_db.c - all SQL of the inbound_webhooks table.
 *
 * Store is one statement: INSERT ... ON CONFLICT DO NOTHING on (provider, provider_event_id) with
 * the webhook.inbound.received event written from the inserted row, so a duplicate (even two
 * identical deliveries at the same moment: the second waits on the unique index, then inserts
 * nothing) stores nothing and emits nothing.
 *
 * Claim is one statement too: the oldest due row is picked with FOR UPDATE SKIP LOCKED (so
 * workers and replicas never wait on each other or take the same row) and marked processing with
 * a lease in next_attempt_at; a worker that dies leaves a row that becomes due again when the
 * lease ends.  attempts counts claims, so a row that crashes its worker still reaches dead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/uuid.h"
#include "svc.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static const struct pl_stmt store = {
    "inb_store",
    "WITH ins AS ("
    " INSERT INTO inbound_webhooks (id, provider, provider_event_id, body, headers, request_id)"
    " VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6)"
    " ON CONFLICT (provider, provider_event_id) DO NOTHING"
    " RETURNING id, provider, provider_event_id, received_at)"
    "SELECT outbox_add($7::uuid, 'webhook.inbound.received', ins.provider_event_id,"
    " '" INB_SERVICE "', $6, json_build_object('id', ins.id, 'provider', ins.provider,"
    " 'provider_event_id', ins.provider_event_id, 'received_at', pl_time(ins.received_at)))"
    " FROM ins",
    7,
};

static const struct pl_stmt claim = {
    "inb_claim",
    "UPDATE inbound_webhooks w SET status = 'processing', attempts = w.attempts + 1,"
    " next_attempt_at = now() + interval '" STR(INB_LEASE_S) " seconds'"
    " WHERE w.id = (SELECT id FROM inbound_webhooks"
    "  WHERE status IN ('pending', 'processing') AND next_attempt_at <= now()"
    "  ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING w.id, w.provider, w.body, COALESCE(w.request_id, ''), w.attempts",
    0,
};

static const struct pl_stmt done = {
    "inb_done",
    "UPDATE inbound_webhooks SET status = 'done', last_error = NULL, processed_at = now()"
    " WHERE id = $1::uuid",
    1,
};

static const struct pl_stmt fail = {
    "inb_fail",
    "UPDATE inbound_webhooks SET"
    " status = CASE WHEN $2::boolean OR attempts >= $3::int THEN 'dead' ELSE 'pending' END,"
    " last_error = $4,"
    " next_attempt_at = now() + make_interval(secs => least(power(2, attempts),"
    "  " STR(INB_BACKOFF_CAP_S) "))"
    " WHERE id = $1::uuid",
    4,
};

static const struct pl_stmt dead = {
    "inb_dead",
    "SELECT inbound_webhook_json(w), count(*) OVER () FROM inbound_webhooks w"
    " WHERE status = 'dead' ORDER BY received_at DESC, id DESC"
    " LIMIT $1::bigint OFFSET $2::bigint",
    2,
};

static const struct pl_stmt dead_count = {
    "inb_dead_count",
    "SELECT count(*) FROM inbound_webhooks WHERE status = 'dead'",
    0,
};

static const struct pl_stmt replay = {
    "inb_replay",
    "UPDATE inbound_webhooks w SET status = 'pending', attempts = 0, last_error = NULL,"
    " next_attempt_at = now(), processed_at = NULL"
    " WHERE w.id = $1::uuid AND w.status <> 'processing'"
    " RETURNING inbound_webhook_json(w)",
    1,
};

static const struct pl_stmt exists = {
    "inb_exists",
    "SELECT status FROM inbound_webhooks WHERE id = $1::uuid",
    1,
};

int
inb_db_webhook_store(PGconn *db, const struct webhook_input *in, struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1], event_id[PL_UUID_STRLEN + 1];
    const char *params[] = { id, in->provider, in->event_id, in->body, in->headers,
                             in->request_id, event_id };
    PGresult *res = NULL;
    int rc;

    pl_uuid_v7(id);
    pl_uuid_v7(event_id);
    rc = pl_db_query(db, &store, params, &res, err);
    PQclear(res);
    return rc;
}

int
inb_db_webhook_claim(PGconn *db, struct pl_arena *a, struct webhook_row *out, struct pl_err *err)
{
    PGresult *res = NULL;
    int rc = pl_db_query(db, &claim, NULL, &res, err);

    if (rc == PL_DB_ROW) {
        out->id = pl_arena_strdup(a, PQgetvalue(res, 0, 0));
        out->provider = pl_arena_strdup(a, PQgetvalue(res, 0, 1));
        out->body = pl_arena_strndup(a, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
        out->request_id = pl_arena_strdup(a, PQgetvalue(res, 0, 3));
        out->attempts = strtol(PQgetvalue(res, 0, 4), NULL, 10);
    }
    PQclear(res);
    return rc;
}

int
inb_db_webhook_done(PGconn *db, const char *id, struct pl_err *err)
{
    const char *params[] = { id };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &done, params, &res, err);

    PQclear(res);
    return rc;
}

int
inb_db_webhook_fail(PGconn *db, const char *id, bool permanent, long max_attempts,
                    const char *error, struct pl_err *err)
{
    char max[24];
    const char *params[] = { id, permanent ? "true" : "false", max, error };
    PGresult *res = NULL;
    int rc;

    snprintf(max, sizeof(max), "%ld", max_attempts);
    rc = pl_db_query(db, &fail, params, &res, err);
    PQclear(res);
    return rc;
}

int
inb_db_webhook_dead(PGconn *db, struct pl_arena *a, long long limit, long long offset,
                    const char ***items, int *n, long long *total, struct pl_err *err)
{
    char lim[24], off[24];
    const char *params[] = { lim, off };
    PGresult *res = NULL;
    int rc;

    snprintf(lim, sizeof(lim), "%lld", limit);
    snprintf(off, sizeof(off), "%lld", offset);
    rc = pl_db_query(db, &dead, params, &res, err);
    if (rc < 0)
        return rc;
    *n = PQntuples(res);
    *items = pl_arena_alloc(a, sizeof(**items) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++)
        (*items)[i] = pl_arena_strndup(a, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    *total = *n > 0 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    if (*n > 0 || offset == 0)
        return PL_DB_ROW;
    /* A page past the end: the total comes from a count. */
    rc = pl_db_query(db, &dead_count, NULL, &res, err);
    if (rc == PL_DB_ROW)
        *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return rc < 0 ? rc : PL_DB_ROW;
}

int
inb_db_webhook_replay(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                      struct pl_err *err)
{
    const char *params[] = { id };
    const char *status = NULL;
    int rc = pl_db_query_text(db, a, &replay, params, json, err);

    if (rc != PL_DB_NONE)
        return rc;
    /* Unknown, or being processed right now (its worker decides its fate). */
    rc = pl_db_query_text(db, a, &exists, params, &status, err);
    if (rc == PL_DB_ROW) {
        pl_err_set(err, 409, "conflict", "the webhook is being processed; retry later");
        rc = PL_DB_FAIL;
    }
    return rc;
}
