/*
 * stats_db.c - SQL of the channel statistics.
 */
#include "parley/arena.h"
#include "parley/db.h"
#include "svc.h"

static const struct pl_stmt channels = {
    "cust_stats_channels",
    "SELECT COALESCE(json_agg(row_to_json(s) ORDER BY s.value DESC, s.name), '[]'::json)"
    " FROM (SELECT upper(left(external_type, 1)) || substr(external_type, 2) AS name,"
    "              count(*) AS value FROM customers GROUP BY external_type) s",
    0,
};

int
cust_db_stats_channels(PGconn *db, struct pl_arena *a, const char **json, struct pl_err *err)
{
    PGresult *res = NULL;
    int rc = pl_db_query(db, &channels, NULL, &res, err);

    if (rc == PL_DB_ROW)
        *json = pl_arena_strndup(a, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    PQclear(res);
    return rc;
}
