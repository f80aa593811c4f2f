/*
 * webhooks_db.c - all SQL of the inbound_webhooks table.
 *
 * Store is one statement for a batch of deliveries (store.c gathers them): INSERT ... SELECT FROM
 * unnest(arrays) ON CONFLICT DO NOTHING on (provider, provider_event_id), so a duplicate (even two
 * identical deliveries at the same moment, in one batch or in two: the second waits on the unique
 * index, then inserts nothing) stores nothing; the ids it returns tell which deliveries were new.
 * It writes no event: an outbox row would make the commit NOTIFY, and PostgreSQL commits
 * notifying transactions one at a time (a database-wide lock held across the WAL flush), so
 * acknowledged deliveries could not share a flush.
 *
 * Claim is one statement too: the oldest due row is picked with FOR UPDATE SKIP LOCKED (so
 * workers and replicas never wait on each other or take the same row) and marked processing with
 * a lease in next_attempt_at; a worker that dies leaves a row that becomes due again when the
 * lease ends.  attempts counts claims, so a row that crashes its worker still reaches dead.  The
 * first claim of a row (this one or claim_db.c's batch) also writes webhook.inbound.received:
 * the trigger of sql/005_webhook_announced.sql does it in the claim's transaction, once per row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/uuid.h"
#include "svc.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Several deliveries in one statement: one round trip and one commit (store.c batches them). */
static const struct pl_stmt store_many = {
    "inb_store_many",
    "INSERT INTO inbound_webhooks (id, provider, provider_event_id, body, headers, request_id)"
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[],"
    " $6::text[])"
    " ON CONFLICT (provider, provider_event_id) DO NOTHING RETURNING id",
    6,
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

/* Marks stored[i] for every input whose id came back from the insert. */
static void
mark_stored(const PGresult *res, char (*ids)[PL_UUID_STRLEN + 1], int n, bool *stored)
{
    for (int i = 0; i < n; i++)
        stored[i] = false;
    for (int r = 0; r < PQntuples(res); r++)
        for (int i = 0; i < n; i++)
            if (strcmp(PQgetvalue(res, r, 0), ids[i]) == 0)
                stored[i] = true;
}

int
inb_db_webhook_store_many(PGconn *db, const struct webhook_input *const *in, int n,
                          bool *stored, struct pl_err *err)
{
    char ids[INB_STORE_BATCH_MAX][PL_UUID_STRLEN + 1];
    struct pl_buf lit[6];
    const char *params[6];
    PGresult *res = NULL;
    int rc;

    PL_ASSERT(n > 0 && n <= INB_STORE_BATCH_MAX);
    for (int f = 0; f < 6; f++) {
        lit[f] = (struct pl_buf)PL_BUF_INIT;
        pl_buf_puts(&lit[f], "{");
    }
    for (int i = 0; i < n; i++) { /* one array per column, in the order of the statement */
        pl_uuid_v7(ids[i]);
        pl_buf_array_elem(&lit[0], ids[i]);
        pl_buf_array_elem(&lit[1], in[i]->provider);
        pl_buf_array_elem(&lit[2], in[i]->event_id);
        pl_buf_array_elem(&lit[3], in[i]->body);
        pl_buf_array_elem(&lit[4], in[i]->headers);
        pl_buf_array_elem(&lit[5], in[i]->request_id);
    }
    for (int f = 0; f < 6; f++) {
        pl_buf_puts(&lit[f], "}");
        params[f] = lit[f].data;
    }
    rc = pl_db_query(db, &store_many, params, &res, err);
    if (rc >= 0)
        mark_stored(res, ids, n, stored);
    PQclear(res);
    for (int f = 0; f < 6; f++)
        pl_buf_cleanup(&lit[f]);
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
