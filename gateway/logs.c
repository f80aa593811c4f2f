/*
 * logs.c - GET /api/v1/logs (paginator, newest first; filters method, status, path substring,
 * start_date, end_date), GET /api/v1/logs/{id}, and GET /api/v1/telemetry/metrics (a summary of
 * the last 24 hours computed from api_logs).
 */
#include <ctype.h>
#include <string.h>

#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/page.h"
#include "parley/uuid.h"
#include "svc.h"

#define LOGS_PER_PAGE 50
#define LETTERS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static const char *
arg(const struct pl_req *req, const char *name)
{
    const char *v = pl_req_query(req, name);

    return v != NULL && *v != '\0' ? v : NULL;
}

/* "2026-11-23", optionally followed by a time ("T10:00:00[.123][Z|+01:00]"). */
static bool
date_ok(const char *s)
{
    static const char shape[] = "dddd-dd-dd";

    for (int i = 0; i < 10; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != '-')
            return false;
    for (s += 10; *s; s++)
        if (!isdigit((unsigned char)*s) && !strchr("T :.+-Z", *s))
            return false;
    return true;
}

static void
read_filter(const struct pl_req *req, struct gw_log_filter *f, json_t **errors)
{
    const char *status;

    f->method = arg(req, "method");
    f->path = arg(req, "path");
    f->start = arg(req, "start_date");
    f->end = arg(req, "end_date");
    status = f->status = arg(req, "status");
    if (status != NULL && (strlen(status) != 3 || strspn(status, "0123456789") != 3))
        pl_json_error_add(errors, "status", "must be an HTTP status code");
    if (f->method != NULL && (strlen(f->method) > 10 || strspn(f->method, LETTERS) != strlen(f->method)))
        pl_json_error_add(errors, "method", "must be an HTTP method");
    if (f->start != NULL && !date_ok(f->start))
        pl_json_error_add(errors, "start_date", "must be a date such as 2026-11-23");
    if (f->end != NULL && !date_ok(f->end))
        pl_json_error_add(errors, "end_date", "must be a date such as 2026-11-23");
}

enum MHD_Result
gw_logs_list(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    struct gw_log_filter f = { 0 };
    struct gw_caller caller;
    struct pl_page pg;
    const char **items = NULL;
    json_t *errors = NULL;
    long long total = 0;
    enum MHD_Result rc;
    PGconn *db;
    int n = 0;

    if (!gw_authorize(req, GW_READ, &caller, &rc))
        return rc;
    pl_page_parse(req, LOGS_PER_PAGE, &pg, &errors);
    read_filter(req, &f, &errors);
    if (errors != NULL)
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    f.limit = pg.per_page;
    f.offset = pl_page_offset(&pg);
    if (gw_db_log_list(db, pl_req_arena(req), &f, &items, &n, &total, &err) < 0)
        return pl_reply_err(req, &err);
    return pl_reply_page(req, ctx->cfg->c.public_url, &pg, total, items, n);
}

enum MHD_Result
gw_logs_get(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    struct gw_caller caller;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!gw_authorize(req, GW_READ, &caller, &rc))
        return rc;
    if (!pl_uuid_valid(id))
        return pl_reply_error(req, 404, "Not found", "no log entry with that id");
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = gw_db_log_get(db, pl_req_arena(req), id, &json, &err);
    return pl_reply_row(req, r, 200, json, &err, "Not found", "no log entry with that id");
}

enum MHD_Result
gw_telemetry(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    struct gw_caller caller;
    const char *json = NULL;
    enum MHD_Result rc;
    PGconn *db;

    if (!gw_authorize(req, GW_READ, &caller, &rc))
        return rc;
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    if (gw_db_telemetry(db, pl_req_arena(req), &json, &err) < 0)
        return pl_reply_err(req, &err);
    return pl_reply_json_text(req, 200, json, strlen(json));
}
