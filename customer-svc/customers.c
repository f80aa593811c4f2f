/*
 * customers.c - HTTP handlers of the customer resource (SPEC 4.1): parse, call one SQL function,
 * reply.  Shapes are checked by the field tables below; meaning (id formats, filters) by hand.
 */
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/page.h"
#include "parley/uuid.h"
#include "svc.h"

static const struct pl_field create_fields[] = {
    { "external_type", PL_F_STRING, true, false, 64, 1 },
    { "external_id", PL_F_STRING, true, false, 255, 1 },
    { "name", PL_F_STRING, false, true, 255, 0 },
    { "metadata", PL_F_OBJECT, false, true, PL_METADATA_MAX, 0 },
    { NULL, 0, false, false, 0, 0 },
};

static const struct pl_field patch_fields[] = {
    { "name", PL_F_STRING, false, true, 255, 0 },
    { "metadata", PL_F_OBJECT, false, true, PL_METADATA_MAX, 0 },
    { NULL, 0, false, false, 0, 0 },
};

/* A query's outcome as a reply; 404 names the resource. */
#define reply_customer(req, rc, status, json, err) \
    pl_reply_row(req, rc, status, json, err, "Customer not found", "no customer with that id")

/* Reads name and metadata of a create or patch body into in. */
static void
read_input(struct pl_req *req, const json_t *body, struct customer_input *in)
{
    const json_t *name = json_object_get(body, "name");
    const json_t *meta = json_object_get(body, "metadata");

    in->has_name = name != NULL;
    in->name = json_is_string(name) ? json_string_value(name) : NULL;
    in->metadata = json_is_object(meta) ? pl_json_dump(pl_req_arena(req), meta) : NULL;
}

enum MHD_Result
cust_customers_create(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const json_t *body = pl_req_json(req);
    struct customer_input in;
    json_t *errors;
    const char *json = NULL;
    bool created = false;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_json_check(body, create_fields, &errors))
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    in.external_type = json_string_value(json_object_get(body, "external_type"));
    in.external_id = json_string_value(json_object_get(body, "external_id"));
    read_input(req, body, &in);
    r = cust_db_customer_upsert(db, pl_req_arena(req), &in, &json, &created, &err);
    return reply_customer(req, r, created ? 201 : 200, json, &err);
}

enum MHD_Result
cust_customers_get(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return reply_customer(req, PL_DB_NONE, 0, NULL, &err);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = cust_db_customer_get(db, pl_req_arena(req), id, &json, &err);
    return reply_customer(req, r, 200, json, &err);
}

enum MHD_Result
cust_customers_get_external(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *type = pl_req_param(req, "type"), *ext = pl_req_param(req, "external_id");
    const char *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = cust_db_customer_get_external(db, pl_req_arena(req), type, ext, &json, &err);
    return reply_customer(req, r, 200, json, &err);
}

enum MHD_Result
cust_customers_update(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    const json_t *body = pl_req_json(req);
    struct customer_input in = { 0 };
    json_t *errors;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return reply_customer(req, PL_DB_NONE, 0, NULL, &err);
    if (!pl_json_check(body, patch_fields, &errors))
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    read_input(req, body, &in);
    r = cust_db_customer_patch(db, pl_req_arena(req), id, &in, &json, &err);
    return reply_customer(req, r, 200, json, &err);
}

/* Turns "a,b,c" into the uuid[] literal "{a,b,c}"; every id must be a UUID.  NULL on error. */
static const char *
ids_literal(struct pl_req *req, const char *ids, json_t **errors)
{
    struct pl_buf b = PL_BUF_INIT;
    const char *p = ids, *lit = NULL;
    int n = 0;

    pl_buf_puts(&b, "{");
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char id[PL_UUID_STRLEN + 1] = "";

        if (len == PL_UUID_STRLEN)
            memcpy(id, p, len);
        if (!pl_uuid_valid(id) || ++n > CUST_IDS_MAX) {
            pl_json_error_add(errors, "ids", n > CUST_IDS_MAX ? "at most %d ids" : "must be "
                              "comma-separated UUIDs", CUST_IDS_MAX);
            goto out;
        }
        pl_buf_printf(&b, "%s%s", n > 1 ? "," : "", id);
        p += len + (p[len] == ',');
    }
    pl_buf_puts(&b, "}");
    lit = pl_arena_strdup(pl_req_arena(req), b.data);
out:
    pl_buf_cleanup(&b);
    return lit;
}

/* An empty query value counts as absent. */
static const char *
filter_arg(const struct pl_req *req, const char *name)
{
    const char *v = pl_req_query(req, name);

    return v != NULL && *v != '\0' ? v : NULL;
}

enum MHD_Result
cust_customers_list(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    struct customer_filter f = { 0 };
    struct pl_page pg;
    const char *ids = filter_arg(req, "ids");
    const char **items = NULL;
    json_t *errors = NULL;
    long long total = 0;
    enum MHD_Result rc;
    PGconn *db;
    int n = 0;

    pl_page_parse(req, CUST_PER_PAGE_DEFAULT, &pg, &errors);
    if (ids != NULL)
        f.ids = ids_literal(req, ids, &errors);
    if (errors != NULL)
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    f.external_type = filter_arg(req, "external_type");
    f.external_id = filter_arg(req, "external_id");
    f.q = filter_arg(req, "q");
    f.limit = pg.per_page;
    f.offset = pl_page_offset(&pg);
    if (cust_db_customer_list(db, pl_req_arena(req), &f, &items, &n, &total, &err) < 0)
        return pl_reply_err(req, &err);
    return pl_reply_page(req, ctx->cfg->c.public_url, &pg, total, items, n);
}
