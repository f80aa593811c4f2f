/*
 * api_logs_db.c - all SQL of api_logs: the batch insert (arrays unnested into rows, one round
 * trip per batch, which also adds them to per-minute totals), retention, the filtered list, one
 * row, and the telemetry summary (from the per-minute totals).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "svc.h"

#define NCOLS 12
#define NMINCOLS 5 /* minute, requests, errors, server errors, duration sum */

/* One minute's totals of a batch. */
struct minute {
    char at[24]; /* "2026-11-23T21:30:00Z" */
    long long requests, errors, server_errors;
    double duration_ms;
};

/*
 * The rows, and their per-minute totals for the telemetry summary ($13-$17, summed here), in one
 * statement; the minutes in order, so two gateways' batches take their locks in the same order.
 */
static const struct pl_stmt insert = {
    "gw_log_insert",
    "WITH ins AS (INSERT INTO api_logs (id, method, path, route, status, duration_ms, client_ip,"
    "  api_key_id, request_id, request_body, response_body, created_at)"
    "  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],"
    "  $6::float8[], $7::text[], $8::uuid[], $9::text[], $10::text[], $11::text[],"
    "  $12::timestamptz[]))"
    " INSERT INTO api_log_minutes AS m (minute, requests, errors, server_errors, duration_ms_sum)"
    " SELECT * FROM unnest($13::timestamptz[], $14::bigint[], $15::bigint[], $16::bigint[],"
    "  $17::float8[]) ORDER BY 1"
    " ON CONFLICT (minute) DO UPDATE SET requests = m.requests + EXCLUDED.requests,"
    "  errors = m.errors + EXCLUDED.errors, server_errors = m.server_errors + EXCLUDED.server_errors,"
    "  duration_ms_sum = m.duration_ms_sum + EXCLUDED.duration_ms_sum",
    NCOLS + NMINCOLS,
};

static const struct pl_stmt purge = {
    "gw_log_purge",
    "WITH m AS (DELETE FROM api_log_minutes WHERE minute < now() - interval '2 days')"
    " DELETE FROM api_logs WHERE created_at < now() - make_interval(days => $1::int)",
    1,
};

#define LOG_WHERE                                                                                \
    " WHERE ($1::text IS NULL OR l.method = upper($1))"                                          \
    "   AND ($2::int IS NULL OR l.status = $2::int)"                                              \
    "   AND ($3::text IS NULL OR strpos(l.path, $3) > 0)"                                         \
    "   AND ($4::timestamptz IS NULL OR l.created_at >= $4::timestamptz)"                         \
    "   AND ($5::timestamptz IS NULL OR l.created_at <= $5::timestamptz)"

#define LOG_LIST(where)                                                                          \
    "SELECT api_log_json(l) FROM api_logs l" where                                                \
    " ORDER BY l.created_at DESC, l.id DESC LIMIT $6::bigint OFFSET $7::bigint"
#define LOG_COUNT(where) "SELECT count(*) FROM api_logs l" where

/* The same two with the error rows' partial index (api_logs_errors) in reach: a status filter of
 * 400 or more implies its predicate, which the planner must see written out to use it. */
#define ERRORS " AND l.status >= 400"

static const struct pl_stmt list = { "gw_log_list", LOG_LIST(LOG_WHERE), 7 };
static const struct pl_stmt count = { "gw_log_count", LOG_COUNT(LOG_WHERE), 5 };
static const struct pl_stmt list_errors = { "gw_log_list_errors", LOG_LIST(LOG_WHERE ERRORS), 7 };
static const struct pl_stmt count_errors = { "gw_log_count_errors", LOG_COUNT(LOG_WHERE ERRORS),
                                             5 };

static const struct pl_stmt by_id = {
    "gw_log_by_id", "SELECT api_log_json(l) FROM api_logs l WHERE l.id = $1::uuid", 1,
};

/* The last 24 hours, to the minute, from the per-minute totals. */
static const struct pl_stmt telemetry = {
    "gw_telemetry",
    "SELECT row_to_json(t) FROM (SELECT COALESCE(sum(requests), 0)::bigint AS total_requests,"
    " round(COALESCE(sum(duration_ms_sum) / NULLIF(sum(requests), 0), 0)::numeric, 3)"
    "  AS average_response_time,"
    " round(COALESCE(sum(errors) / NULLIF(sum(requests), 0), 0) * 100, 2) AS error_rate,"
    " COALESCE(sum(server_errors), 0)::bigint AS server_errors,"
    " pl_time(date_trunc('minute', now() - interval '24 hours')) AS since"
    " FROM api_log_minutes WHERE minute >= date_trunc('minute', now() - interval '24 hours')) t",
    0,
};

/* Adds a row (its minute from created_at, RFC 3339) to the batch's minutes m[0..*nm). */
static void
count_minute(struct minute *m, int *nm, const char *created_at, unsigned status, double ms)
{
    char at[24];
    int i;

    snprintf(at, sizeof(at), "%.16s:00Z", created_at);
    for (i = *nm - 1; i >= 0 && strcmp(m[i].at, at) != 0; i--)
        ;
    if (i < 0) {
        i = (*nm)++;
        m[i] = (struct minute){ .requests = 0 };
        memcpy(m[i].at, at, sizeof(at));
    }
    m[i].requests++;
    m[i].errors += status >= 400;
    m[i].server_errors += status >= 500;
    m[i].duration_ms += ms;
}

/* The minutes' five array literals into col[0..NMINCOLS). */
static void
minute_arrays(const struct minute *m, int nm, struct pl_buf *col)
{
    char num[4][32];

    for (int c = 0; c < NMINCOLS; c++)
        pl_buf_puts(&col[c], "{");
    for (int i = 0; i < nm; i++) {
        snprintf(num[0], sizeof(num[0]), "%lld", m[i].requests);
        snprintf(num[1], sizeof(num[1]), "%lld", m[i].errors);
        snprintf(num[2], sizeof(num[2]), "%lld", m[i].server_errors);
        snprintf(num[3], sizeof(num[3]), "%.3f", m[i].duration_ms);
        pl_buf_array_elem(&col[0], m[i].at);
        for (int c = 0; c < 4; c++)
            pl_buf_array_elem(&col[c + 1], num[c]);
    }
    for (int c = 0; c < NMINCOLS; c++)
        pl_buf_puts(&col[c], "}");
}

int
gw_db_log_insert(PGconn *db, struct gw_log_row *const *rows, int n, struct pl_err *err)
{
    struct pl_buf col[NCOLS + NMINCOLS];
    const char *params[NCOLS + NMINCOLS];
    struct minute *minutes = calloc((size_t)n + 1, sizeof(*minutes));
    PGresult *res = NULL;
    char num[2][32];
    int rc, nm = 0;

    PL_ASSERT(minutes != NULL);
    for (int c = 0; c < NCOLS + NMINCOLS; c++)
        col[c] = (struct pl_buf)PL_BUF_INIT;
    for (int c = 0; c < NCOLS; c++)
        pl_buf_puts(&col[c], "{");
    for (int i = 0; i < n; i++) {
        const struct gw_log_row *r = rows[i];

        snprintf(num[0], sizeof(num[0]), "%u", r->status);
        snprintf(num[1], sizeof(num[1]), "%.3f", r->duration_ms);
        pl_buf_array_elem(&col[0], r->id), pl_buf_array_elem(&col[1], r->method), pl_buf_array_elem(&col[2], r->path);
        pl_buf_array_elem(&col[3], r->route), pl_buf_array_elem(&col[4], num[0]), pl_buf_array_elem(&col[5], num[1]);
        pl_buf_array_elem(&col[6], r->client_ip), pl_buf_array_elem(&col[7], r->api_key_id), pl_buf_array_elem(&col[8], r->request_id);
        pl_buf_array_elem(&col[9], r->request_body), pl_buf_array_elem(&col[10], r->response_body);
        pl_buf_array_elem(&col[11], r->created_at);
        /* the duration as stored (3 decimals), so the minutes add up to the rows exactly */
        count_minute(minutes, &nm, r->created_at, r->status, strtod(num[1], NULL));
    }
    for (int c = 0; c < NCOLS; c++)
        pl_buf_puts(&col[c], "}");
    minute_arrays(minutes, nm, col + NCOLS);
    for (int c = 0; c < NCOLS + NMINCOLS; c++)
        params[c] = col[c].data;
    rc = pl_db_query(db, &insert, params, &res, err);
    PQclear(res);
    for (int c = 0; c < NCOLS + NMINCOLS; c++)
        pl_buf_cleanup(&col[c]);
    free(minutes);
    return rc;
}

int
gw_db_log_purge(PGconn *db, long days, struct pl_err *err)
{
    char d[24];
    const char *params[] = { d };
    PGresult *res = NULL;
    int rc;

    snprintf(d, sizeof(d), "%ld", days);
    rc = pl_db_query(db, &purge, params, &res, err);
    PQclear(res);
    return rc;
}

int
gw_db_log_list(PGconn *db, struct pl_arena *a, const struct gw_log_filter *f,
               const char ***items, int *n, long long *total, struct pl_err *err)
{
    char limit[24], offset[24];
    const char *params[] = { f->method, f->status, f->path, f->start, f->end, limit, offset };
    bool errors = f->status != NULL && atoi(f->status) >= 400;
    PGresult *res = NULL;
    int rc;

    snprintf(limit, sizeof(limit), "%lld", f->limit);
    snprintf(offset, sizeof(offset), "%lld", f->offset);
    if ((rc = pl_db_query(db, errors ? &list_errors : &list, params, &res, err)) < 0)
        return rc;
    *n = PQntuples(res);
    *items = pl_arena_alloc(a, sizeof(**items) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++)
        (*items)[i] = pl_arena_strndup(a, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    PQclear(res);
    if (*n < f->limit && (*n > 0 || f->offset == 0)) { /* the page tells the total */
        *total = f->offset + *n;
        return PL_DB_ROW;
    }
    if ((rc = pl_db_query(db, errors ? &count_errors : &count, params, &res, err)) == PL_DB_ROW)
        *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return rc < 0 ? rc : PL_DB_ROW;
}

int
gw_db_log_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
              struct pl_err *err)
{
    const char *params[] = { id };

    return pl_db_query_text(db, a, &by_id, params, json, err);
}

int
gw_db_telemetry(PGconn *db, struct pl_arena *a, const char **json, struct pl_err *err)
{
    return pl_db_query_text(db, a, &telemetry, NULL, json, err);
}
