/*
 * conversations.c - HTTP handlers of the conversation resource (SPEC 4.2): parse, call one SQL
 * function, reply.  Shapes are checked by the field tables below; meaning (enums, the participant
 * list rules of each type, filters) by hand.  A create first asks customer-svc, in one call,
 * whether every participant exists; a direct one whose pair has an open conversation is answered
 * from that row alone.
 */
#include <ctype.h>
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
    { "type", PL_F_STRING, true, false, 0, 0 },
    { "participants", PL_F_ARRAY, true, false, CONV_PARTICIPANTS_MAX, 0 },
    { "subject", PL_F_STRING, false, true, 255, 0 },
    { "metadata", PL_F_OBJECT, false, true, PL_METADATA_MAX, 0 },
    { NULL, 0, false, false, 0, 0 },
};

static const struct pl_field patch_fields[] = {
    { "status", PL_F_STRING, false, false, 0, 0 },
    { "subject", PL_F_STRING, false, true, 255, 0 },
    { "metadata", PL_F_OBJECT, false, true, PL_METADATA_MAX, 0 },
    { NULL, 0, false, false, 0, 0 },
};

/* A query's outcome as a reply; 404 names the resource. */
#define reply_conversation(req, rc, status, json, err) \
    pl_reply_row(req, rc, status, json, err, "Not found", "conversation not found")

/*
 * Reads participants (an array, at most CONV_PARTICIPANTS_MAX long: checked by the field table)
 * into lowercase UUID strings in the arena (*n of them), adding to *errors as conv_input_read
 * says.
 */
static const char **
participants_read(struct pl_req *req, const json_t *list, const char *type, int *n,
                  json_t **errors)
{
    int count = (int)json_array_size(list), min, max;
    const char **ids = pl_arena_alloc(pl_req_arena(req), sizeof(*ids) * (size_t)(count + 1));

    *n = 0;
    for (int i = 0; i < count; i++) {
        const char *s = json_string_value(json_array_get(list, (size_t)i));
        char *id;

        if (!pl_uuid_valid(s)) {
            pl_json_error_add(errors, "participants", "item %d must be a customer id (UUID)", i);
            continue;
        }
        id = pl_arena_strdup(pl_req_arena(req), s);
        for (char *p = id; *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
        for (int k = 0; k < *n; k++) {
            if (strcmp(ids[k], id) == 0) {
                pl_json_error_add(errors, "participants", "\"%s\" is listed twice", id);
                id = NULL;
                break;
            }
        }
        if (id != NULL)
            ids[(*n)++] = id;
    }
    conv_participant_bounds(type, &min, &max);
    if (count < min || count > max) {
        if (min == max)
            pl_json_error_add(errors, "participants", "a %s conversation takes exactly %d", type,
                              min);
        else
            pl_json_error_add(errors, "participants", "a %s conversation takes %d to %d", type,
                              min, max);
    }
    return ids;
}

bool
conv_input_read(struct pl_req *req, const json_t *body, struct conversation_input *in,
                json_t **errors)
{
    const json_t *subject = json_object_get(body, "subject");
    const json_t *meta = json_object_get(body, "metadata");

    in->customers = participants_read(req, json_object_get(body, "participants"), in->type,
                                      &in->ncustomers, errors);
    in->subject = json_is_string(subject) ? json_string_value(subject) : NULL;
    in->metadata = json_is_object(meta) ? pl_json_dump(pl_req_arena(req), meta) : NULL;
    return *errors == NULL;
}

/* Checks the meaning of a create body whose shape passed; fills in.  False with *errors set. */
static bool
read_create(struct pl_req *req, const json_t *body, struct conversation_input *in,
            json_t **errors)
{
    in->type = json_string_value(json_object_get(body, "type"));
    if (!conv_in_set(in->type, conv_types)) {
        pl_json_error_add(errors, "type", "must be one of direct, group, channel");
        return false;
    }
    return conv_input_read(req, body, in, errors);
}

enum MHD_Result
conv_conversations_create(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const json_t *body = pl_req_json(req);
    struct conversation_input in = { 0 };
    json_t *errors = NULL;
    const char *json = NULL;
    bool created = false;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_json_check(body, create_fields, &errors) || !read_create(req, body, &in, &errors))
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    /*
     * The common case of a direct find-or-create: the pair's open conversation exists, so both
     * customers did when it was made (customers are never deleted) and customer-svc need not be
     * asked.  One read; otherwise the check and the create below, which settle any race.
     */
    r = conv_db_conversation_open_direct(db, pl_req_arena(req), &in, &json, &err);
    if (r != PL_DB_NONE)
        return reply_conversation(req, r, 200, json, &err);
    if (conv_customers_check(req, in.customers, in.ncustomers, "participants", &errors, &err) !=
        PL_OK)
        return errors != NULL ? pl_reply_invalid(req, errors) : pl_reply_err(req, &err);
    r = conv_db_conversation_create(db, pl_req_arena(req), &in, &json, &created, &err);
    return reply_conversation(req, r, created ? 201 : 200, json, &err);
}

enum MHD_Result
conv_conversations_get(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return reply_conversation(req, PL_DB_NONE, 0, NULL, &err);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = conv_db_conversation_get(db, pl_req_arena(req), id, &json, &err);
    return reply_conversation(req, r, 200, json, &err);
}

enum MHD_Result
conv_conversations_update(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    const json_t *body = pl_req_json(req);
    const json_t *subject = json_object_get(body, "subject"), *meta;
    struct conversation_patch in = { 0 };
    json_t *errors = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return reply_conversation(req, PL_DB_NONE, 0, NULL, &err);
    if (!pl_json_check(body, patch_fields, &errors))
        return pl_reply_invalid(req, errors);
    in.status = json_string_value(json_object_get(body, "status"));
    if (in.status != NULL && !conv_in_set(in.status, conv_statuses)) {
        pl_json_error_add(&errors, "status", "must be one of open, pending, closed");
        return pl_reply_invalid(req, errors);
    }
    in.has_subject = subject != NULL;
    in.subject = json_string_value(subject); /* NULL for JSON null */
    meta = json_object_get(body, "metadata");
    in.metadata = json_is_object(meta) ? pl_json_dump(pl_req_arena(req), meta) : NULL;
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = conv_db_conversation_patch(db, pl_req_arena(req), id, &in, &json, &err);
    return reply_conversation(req, r, 200, json, &err);
}

/* An empty query value counts as absent. */
static const char *
filter_arg(const struct pl_req *req, const char *name)
{
    const char *v = pl_req_query(req, name);

    return v != NULL && *v != '\0' ? v : NULL;
}

/* Reads the list filters; adds to *errors for values outside their vocabularies. */
static void
read_filter(const struct pl_req *req, struct conversation_filter *f, json_t **errors)
{
    f->status = filter_arg(req, "status");
    f->type = filter_arg(req, "type");
    f->customer_id = filter_arg(req, "customer_id");
    if (f->status != NULL && !conv_in_set(f->status, conv_statuses))
        pl_json_error_add(errors, "status", "must be one of open, pending, closed");
    if (f->type != NULL && !conv_in_set(f->type, conv_types))
        pl_json_error_add(errors, "type", "must be one of direct, group, channel");
    if (f->customer_id != NULL && !pl_uuid_valid(f->customer_id))
        pl_json_error_add(errors, "customer_id", "must be a UUID");
}

enum MHD_Result
conv_conversations_list(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    struct conversation_filter f = { 0 };
    struct pl_page pg;
    const char **items = NULL;
    json_t *errors = NULL;
    long long total = 0;
    enum MHD_Result rc;
    PGconn *db;
    int n = 0;

    pl_page_parse(req, CONV_PER_PAGE_DEFAULT, &pg, &errors);
    read_filter(req, &f, &errors);
    if (errors != NULL)
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    f.limit = pg.per_page;
    f.offset = pl_page_offset(&pg);
    if (conv_db_conversation_list(db, pl_req_arena(req), &f, &items, &n, &total, &err) < 0)
        return pl_reply_err(req, &err);
    return pl_reply_page(req, ctx->cfg->c.public_url, &pg, total, items, n);
}
