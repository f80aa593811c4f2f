/*
 * customers_db.c - all SQL of the customer resource.
 *
 * Every write is one statement (one round trip, atomic on its own): the row change and its outbox
 * event are written together, the event built from the same customer_json() the API returns.  An
 * upsert or patch that would change nothing updates no row and emits no event; the statement then
 * returns nothing and the current row is read instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

static const struct pl_stmt upsert = {
    "cust_upsert",
    "WITH up AS ("
    " INSERT INTO customers AS c (id, external_type, external_id, name, metadata)"
    " VALUES ($1::uuid, $2, $3, $4, pl_jsonb_merge('{}', $5::jsonb))"
    " ON CONFLICT (external_type, external_id) DO UPDATE"
    "  SET name = COALESCE(EXCLUDED.name, c.name),"
    "      metadata = pl_jsonb_merge(c.metadata, $5::jsonb), updated_at = now()"
    "  WHERE (COALESCE(EXCLUDED.name, c.name), pl_jsonb_merge(c.metadata, $5::jsonb))"
    "        IS DISTINCT FROM (c.name, c.metadata)"
    " RETURNING c.id, (c.xmax = 0) AS created, customer_json(c) AS body)"
    "SELECT up.created, up.body,"
    " outbox_add($6::uuid, CASE WHEN up.created THEN 'customer.created'"
    "            ELSE 'customer.updated' END, up.id::text, '" CUST_SERVICE "', $7, up.body)"
    " FROM up",
    7,
};

static const struct pl_stmt by_identity = {
    "cust_by_identity",
    "SELECT customer_json(c) FROM customers c WHERE external_type = $1 AND external_id = $2",
    2,
};

static const struct pl_stmt by_id = {
    "cust_by_id",
    "SELECT customer_json(c) FROM customers c WHERE id = $1::uuid",
    1,
};

static const struct pl_stmt patch = {
    "cust_patch",
    "WITH up AS ("
    " UPDATE customers c SET"
    "  name = CASE WHEN $2::boolean THEN $3 ELSE c.name END,"
    "  metadata = pl_jsonb_merge(c.metadata, $4::jsonb), updated_at = now()"
    " WHERE c.id = $1::uuid"
    "  AND (CASE WHEN $2::boolean THEN $3 ELSE c.name END, pl_jsonb_merge(c.metadata, $4::jsonb))"
    "      IS DISTINCT FROM (c.name, c.metadata)"
    " RETURNING c.id, customer_json(c) AS body)"
    "SELECT up.body, outbox_add($5::uuid, 'customer.updated', up.id::text, '" CUST_SERVICE "',"
    " $6, up.body) FROM up",
    6,
};

static const struct pl_stmt list = {
    "cust_list",
    "SELECT customer_json(c) FROM customers c"
    " WHERE ($1::text IS NULL OR c.external_type = $1)"
    "   AND ($2::text IS NULL OR c.external_id = $2)"
    "   AND ($3::text IS NULL OR starts_with(lower(c.name), lower($3)))"
    "   AND ($4::uuid[] IS NULL OR c.id = ANY($4::uuid[]))"
    " ORDER BY c.id DESC LIMIT $5::bigint OFFSET $6::bigint",
    6,
};

static const struct pl_stmt count = {
    "cust_count",
    "SELECT count(*) FROM customers c"
    " WHERE ($1::text IS NULL OR c.external_type = $1)"
    "   AND ($2::text IS NULL OR c.external_id = $2)"
    "   AND ($3::text IS NULL OR starts_with(lower(c.name), lower($3)))"
    "   AND ($4::uuid[] IS NULL OR c.id = ANY($4::uuid[]))",
    4,
};

int
cust_db_customer_upsert(PGconn *db, struct pl_arena *a, const struct customer_input *in,
                        const char **json, bool *created, struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1], event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    const char *params[] = { id, in->external_type, in->external_id, in->name, in->metadata,
                             event_id, trace ? trace : "" };
    const char *ident[] = { in->external_type, in->external_id };
    PGresult *res = NULL;
    int rc;

    pl_uuid_v7(id);
    pl_uuid_v7(event_id);
    rc = pl_db_query(db, &upsert, params, &res, err);
    if (rc == PL_DB_ROW) {
        *created = PQgetvalue(res, 0, 0)[0] == 't';
        *json = pl_arena_strndup(a, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
    }
    PQclear(res);
    if (rc != PL_DB_NONE)
        return rc;
    /*
     * Nothing changed, so the statement returned nothing: the row exists, perhaps committed by a
     * concurrent upsert after this statement's snapshot.  A new statement sees it.
     */
    *created = false;
    rc = pl_db_query_text(db, a, &by_identity, ident, json, err);
    if (rc == PL_DB_NONE) { /* cannot happen: customers are never deleted */
        pl_err_set(err, 500, "internal", "customer vanished during upsert");
        rc = PL_DB_FAIL;
    }
    return rc;
}

int
cust_db_customer_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                     struct pl_err *err)
{
    const char *params[] = { id };

    return pl_db_query_text(db, a, &by_id, params, json, err);
}

int
cust_db_customer_get_external(PGconn *db, struct pl_arena *a, const char *type,
                              const char *external_id, const char **json, struct pl_err *err)
{
    const char *params[] = { type, external_id };

    return pl_db_query_text(db, a, &by_identity, params, json, err);
}

int
cust_db_customer_patch(PGconn *db, struct pl_arena *a, const char *id,
                       const struct customer_input *in, const char **json, struct pl_err *err)
{
    char event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    const char *params[] = { id, in->has_name ? "true" : "false", in->name, in->metadata,
                             event_id, trace ? trace : "" };
    int rc;

    pl_uuid_v7(event_id);
    rc = pl_db_query_text(db, a, &patch, params, json, err);
    if (rc != PL_DB_NONE)
        return rc;
    return cust_db_customer_get(db, a, id, json, err); /* unchanged, or unknown */
}

int
cust_db_customer_list(PGconn *db, struct pl_arena *a, const struct customer_filter *f,
                      const char ***items, int *n, long long *total, struct pl_err *err)
{
    char limit[24], offset[24];
    const char *params[] = { f->external_type, f->external_id, f->q, f->ids, limit, offset };
    PGresult *res = NULL;
    int rc;

    snprintf(limit, sizeof(limit), "%lld", f->limit);
    snprintf(offset, sizeof(offset), "%lld", f->offset);
    rc = pl_db_query(db, &list, params, &res, err);
    if (rc < 0)
        return rc;
    *n = PQntuples(res);
    *items = pl_arena_alloc(a, sizeof(**items) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++)
        (*items)[i] = pl_arena_strndup(a, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    PQclear(res);
    /*
     * A short page that is not past the end is the last one: the total is known without
     * counting.  Otherwise count apart, without building JSON for every matching row.
     */
    if (*n < f->limit && (*n > 0 || f->offset == 0)) {
        *total = f->offset + *n;
        return PL_DB_ROW;
    }
    rc = pl_db_query(db, &count, params, &res, err);
    if (rc == PL_DB_ROW)
        *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (rc < 0)
        return rc;
    return PL_DB_ROW;
}
