/*
 * participants.c - HTTP handlers of a conversation's participants: add (after asking customer-svc
 * that the customer exists), remove (sets left_at), and the single-participant read that
 * messaging-svc uses to check a sender.
 *
 * Adding a customer who is already an active participant answers 200 with the existing
 * participant and emits nothing.  Adding one who left reactivates the same row (left_at cleared,
 * joined_at and role renewed) and emits conversation.participant.added again.  A direct
 * conversation keeps its two participants: adding or removing there is 409.
 */
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/uuid.h"
#include "svc.h"

static const struct pl_field add_fields[] = {
    { "customer_id", PL_F_UUID, true, false, 0, 0 },
    { "role", PL_F_STRING, false, false, 0, 0 },
    { NULL, 0, false, false, 0, 0 },
};

/* The 404s messaging-svc tells apart by message (CONV_MSG.md). */
static enum MHD_Result
not_found(struct pl_req *req, bool conversation)
{
    return pl_reply_error(req, 404, "Not found", conversation ? "conversation not found"
                                                             : "participant not found");
}

static enum MHD_Result
reply_participant(struct pl_req *req, int rc, unsigned status, const char *json,
                  const struct pl_err *err)
{
    switch (rc) {
    case CONV_PART_CHANGED:
    case CONV_PART_ALREADY_ACTIVE:
        return pl_reply_json_text(req, rc == CONV_PART_CHANGED ? status : 200, json,
                                  strlen(json));
    case CONV_PART_NO_CONVERSATION:
        return not_found(req, true);
    case CONV_PART_NOT_ACTIVE:
        return not_found(req, false);
    case CONV_PART_DIRECT:
        return pl_reply_error(req, 409, "conflict", "the participants of a direct conversation "
                              "cannot change; close it instead");
    default:
        return pl_reply_err(req, err);
    }
}

enum MHD_Result
conv_participants_add(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    const json_t *body = pl_req_json(req);
    const char *customer, *role;
    json_t *errors = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return not_found(req, true);
    if (!pl_json_check(body, add_fields, &errors))
        return pl_reply_invalid(req, errors);
    role = json_string_value(json_object_get(body, "role"));
    if (role != NULL && !conv_in_set(role, conv_roles)) {
        pl_json_error_add(&errors, "role", "must be one of member, admin, owner");
        return pl_reply_invalid(req, errors);
    }
    customer = json_string_value(json_object_get(body, "customer_id"));
    if (conv_customers_check(req, &customer, 1, "customer_id", &errors, &err) != PL_OK)
        return errors != NULL ? pl_reply_invalid(req, errors) : pl_reply_err(req, &err);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = conv_db_participant_add(db, pl_req_arena(req), id, customer, role ? role : "member", &json,
                                &err);
    return reply_participant(req, r, 201, json, &err);
}

enum MHD_Result
conv_participants_remove(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *customer = pl_req_param(req, "customer_id");
    const char *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return not_found(req, true);
    if (!pl_uuid_valid(customer))
        return not_found(req, false);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = conv_db_participant_remove(db, pl_req_arena(req), id, customer, &json, &err);
    return reply_participant(req, r, 200, json, &err);
}

enum MHD_Result
conv_participants_get(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *customer = pl_req_param(req, "customer_id");
    const char *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return not_found(req, true);
    if (!pl_uuid_valid(customer))
        return not_found(req, false);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = conv_db_participant_get(db, pl_req_arena(req), id, customer, &json, &err);
    if (r == PL_DB_ROW)
        return json != NULL ? pl_reply_json_text(req, 200, json, strlen(json))
                            : not_found(req, false);
    return r == PL_DB_NONE ? not_found(req, true) : pl_reply_err(req, &err);
}
