/*
 * claim_db.c - the batch SQL of the inbound_webhooks table: claim several due rows in one
 * statement, mark many done in one statement, give back the ones not started.
 *
 * The claim is webhooks_db.c's single-row claim with a LIMIT: the due rows are picked with FOR
 * UPDATE SKIP LOCKED in a CTE (evaluated once), then marked processing with a lease.  A worker
 * that dies leaves its rows to become due again when the lease ends; attempts counts claims, so
 * a row that keeps crashing workers still reaches dead.  The batch costs one round trip and one
 * commit where single claims cost one per row, and so does marking the processed rows done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim_db.h"
#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "svc.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static const struct pl_stmt claim_batch = {
    "inb_claim_batch",
    /* the comment tells pl_db that the announce trigger may write outbox rows */
    "/* outbox: inbound_webhook_announce */ WITH due AS ("
    " SELECT id FROM inbound_webhooks"
    " WHERE status IN ('pending', 'processing') AND next_attempt_at <= now()"
    " ORDER BY next_attempt_at LIMIT $1::int FOR UPDATE SKIP LOCKED),"
    "up AS ("
    " UPDATE inbound_webhooks w SET status = 'processing', attempts = w.attempts + 1,"
    "  next_attempt_at = now() + interval '" STR(INB_LEASE_S) " seconds'"
    " FROM due WHERE w.id = due.id"
    " RETURNING w.id, w.provider, w.body, COALESCE(w.request_id, '') AS rid, w.attempts,"
    "  w.received_at)"
    "SELECT id, provider, body, rid, attempts FROM up ORDER BY received_at, id",
    1,
};

static const struct pl_stmt done_batch = {
    "inb_done_batch",
    "UPDATE inbound_webhooks SET status = 'done', last_error = NULL, processed_at = now()"
    " WHERE id = ANY($1::uuid[])",
    1,
};

/* Only rows still processing: a row replayed or settled meanwhile is left as it is. */
static const struct pl_stmt release = {
    "inb_release",
    "UPDATE inbound_webhooks SET status = 'pending', next_attempt_at = now(),"
    " attempts = greatest(attempts - 1, 0)"
    " WHERE id = ANY($1::uuid[]) AND status = 'processing'",
    1,
};

int
inb_db_webhook_claim_batch(PGconn *db, struct pl_arena *a, int max, struct webhook_row *rows,
                           int *n, struct pl_err *err)
{
    char lim[16];
    const char *params[] = { lim };
    PGresult *res = NULL;
    int rc;

    *n = 0;
    snprintf(lim, sizeof(lim), "%d", max);
    rc = pl_db_query(db, &claim_batch, params, &res, err);
    for (int i = 0; rc == PL_DB_ROW && i < PQntuples(res) && i < max; i++) {
        struct webhook_row *r = &rows[(*n)++];

        r->id = pl_arena_strdup(a, PQgetvalue(res, i, 0));
        r->provider = pl_arena_strdup(a, PQgetvalue(res, i, 1));
        r->body = pl_arena_strndup(a, PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2));
        r->request_id = pl_arena_strdup(a, PQgetvalue(res, i, 3));
        r->attempts = strtol(PQgetvalue(res, i, 4), NULL, 10);
    }
    PQclear(res);
    return rc;
}

/* Runs st over the id array of ids[0..n). */
static int
by_ids(PGconn *db, struct pl_arena *a, const struct pl_stmt *st, const char *const *ids, int n,
       struct pl_err *err)
{
    const char *params[] = { NULL };
    PGresult *res = NULL;
    int rc;

    if (n == 0)
        return PL_DB_NONE;
    params[0] = pl_buf_array_literal(a, ids, n);
    rc = pl_db_query(db, st, params, &res, err);
    PQclear(res);
    return rc;
}

int
inb_db_webhook_done_batch(PGconn *db, struct pl_arena *a, const char *const *ids, int n,
                          struct pl_err *err)
{
    return by_ids(db, a, &done_batch, ids, n, err);
}

int
inb_db_webhook_release(PGconn *db, struct pl_arena *a, const char *const *ids, int n,
                       struct pl_err *err)
{
    return by_ids(db, a, &release, ids, n, err);
}
