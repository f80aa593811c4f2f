/*
 * idem_db.c - all SQL of the Idempotency-Key store (idem.c).
 *
 * A claim is one statement: a new key is inserted; a row older than 24 hours, or a claim whose
 * request has been running longer than any request can (stale_s: its gateway died), is taken
 * over; otherwise the row that holds the key is returned.  A row inserted by a concurrent
 * request that committed after this statement's snapshot is locked but not visible: no row comes
 * back, which the caller treats as "still running".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "svc.h"

static const struct pl_stmt claim = {
    "gw_idem_claim",
    "WITH c AS ("
    " INSERT INTO idempotency AS i (key_id, key, request_hash) VALUES ($1::uuid, $2, $3)"
    " ON CONFLICT (key_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
    "  status = NULL, content_type = NULL, body = NULL, created_at = now()"
    " WHERE i.created_at < now() - interval '24 hours'"
    "  OR (i.status IS NULL AND i.created_at < now() - make_interval(secs => $4::int))"
    " RETURNING 1)"
    " SELECT true, NULL, NULL, NULL, NULL FROM c"
    " UNION ALL"
    " SELECT false, request_hash, status, content_type, body FROM idempotency"
    " WHERE key_id = $1::uuid AND key = $2 AND NOT EXISTS (SELECT 1 FROM c)",
    4,
};

static const struct pl_stmt store = {
    "gw_idem_store",
    "UPDATE idempotency SET status = $4::int, content_type = $5, body = $6, request_hash = $7"
    " WHERE key_id = $1::uuid AND key = $2 AND request_hash = $3 AND status IS NULL",
    7,
};

static const struct pl_stmt release = {
    "gw_idem_release",
    "DELETE FROM idempotency"
    " WHERE key_id = $1::uuid AND key = $2 AND request_hash = $3 AND status IS NULL",
    3,
};

static const struct pl_stmt purge = {
    "gw_idem_purge", "DELETE FROM idempotency WHERE created_at < now() - interval '24 hours'", 0,
};

int
gw_db_idem_claim(PGconn *db, struct pl_arena *a, const struct gw_idem_key *k, long stale_s,
                 struct gw_idem_row *row, struct pl_err *err)
{
    char stale[24];
    const char *params[] = { k->key_id, k->key, k->hash, stale };
    PGresult *res = NULL;
    int rc;

    snprintf(stale, sizeof(stale), "%ld", stale_s);
    *row = (struct gw_idem_row){ 0 };
    if ((rc = pl_db_query(db, &claim, params, &res, err)) == PL_DB_ROW) {
        row->claimed = PQgetvalue(res, 0, 0)[0] == 't';
        row->hash = pl_arena_strdup(a, PQgetvalue(res, 0, 1));
        row->done = !PQgetisnull(res, 0, 2);
        row->status = (unsigned)atoi(PQgetvalue(res, 0, 2));
        row->content_type = pl_arena_strdup(a, PQgetvalue(res, 0, 3));
        row->len = (size_t)PQgetlength(res, 0, 4);
        row->body = pl_arena_strndup(a, PQgetvalue(res, 0, 4), row->len);
    }
    PQclear(res);
    return rc;
}

int
gw_db_idem_store(PGconn *db, const struct gw_idem_key *k, const char *hash, unsigned status,
                 const char *ctype, const char *body, struct pl_err *err)
{
    char st[16];
    const char *params[] = { k->key_id, k->key, k->hash, st, ctype, body, hash };
    PGresult *res = NULL;
    int rc;

    snprintf(st, sizeof(st), "%u", status);
    rc = pl_db_query(db, &store, params, &res, err);
    PQclear(res);
    return rc;
}

int
gw_db_idem_release(PGconn *db, const struct gw_idem_key *k, struct pl_err *err)
{
    const char *params[] = { k->key_id, k->key, k->hash };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &release, params, &res, err);

    PQclear(res);
    return rc;
}

int
gw_db_idem_purge(PGconn *db, struct pl_err *err)
{
    PGresult *res = NULL;
    int rc = pl_db_query(db, &purge, NULL, &res, err);

    PQclear(res);
    return rc;
}
