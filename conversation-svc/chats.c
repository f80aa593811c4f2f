/*
 * chats.c - HTTP handlers of channel chats (SPEC 10 "Channel identities"): the group
 * conversation of a WhatsApp group or a Telegram group, supergroup or channel, found by the
 * channel and the chat id.  Internal routes: inbound-svc calls them with the service token.
 *
 * PUT /api/conversations/by-chat/{channel}/{chat_id} {"type"?, "subject"?, "metadata"?,
 * "participants"} is a find-or-create: 201 with the new conversation, or 200 with the one the
 * chat already has; either way every listed customer is an active participant afterwards (so
 * each sender of a group is added once, idempotently).  Subject and metadata apply to a new
 * conversation only.  POST .../migrate {"to_chat_id"} records that the chat continues under a
 * new id (a Telegram group upgraded to a supergroup): 200 with the conversation, 404 when the
 * chat is unknown, 409 when the new id already has a conversation of its own.
 */
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "svc.h"

#define CHAT_ID_MAX 255
#define CHANNEL_MAX 64

static const struct pl_field put_fields[] = {
    { "type", PL_F_STRING, false, false, 0, 0 },
    { "participants", PL_F_ARRAY, true, false, CONV_PARTICIPANTS_MAX, 0 },
    { "subject", PL_F_STRING, false, true, 255, 0 },
    { "metadata", PL_F_OBJECT, false, true, PL_METADATA_MAX, 0 },
    { NULL, 0, false, false, 0, 0 },
};

static const struct pl_field migrate_fields[] = {
    { "to_chat_id", PL_F_STRING, true, false, CHAT_ID_MAX, 1 },
    { NULL, 0, false, false, 0, 0 },
};

/* A channel name: 1 to 64 of [a-z0-9_-], as the table's check constraint says. */
static bool
channel_valid(const char *s)
{
    size_t n = s ? strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") : 0;

    return n > 0 && n <= CHANNEL_MAX && s[n] == '\0';
}

/* A chat id: 1 to 255 bytes of UTF-8 (ids are ASCII in practice). */
static bool
chat_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    return n > 0 && n <= CHAT_ID_MAX && pl_utf8_valid(s, n);
}

/* The path's channel and chat id; false after adding to *errors. */
static bool
read_chat(const struct pl_req *req, const char **channel, const char **chat_id, json_t **errors)
{
    *channel = pl_req_param(req, "channel");
    *chat_id = pl_req_param(req, "chat_id");
    if (!channel_valid(*channel))
        pl_json_error_add(errors, "channel", "must be 1 to %d of a-z, 0-9, _ and -", CHANNEL_MAX);
    if (!chat_id_valid(*chat_id))
        pl_json_error_add(errors, "chat_id", "must be 1 to %d bytes", CHAT_ID_MAX);
    return *errors == NULL;
}

/* Checks a find-or-create body into in.  False with *errors set. */
static bool
read_put(struct pl_req *req, const json_t *body, struct conversation_input *in, json_t **errors)
{
    if (!pl_json_check(body, put_fields, errors))
        return false;
    in->type = json_string_value(json_object_get(body, "type"));
    if (in->type == NULL)
        in->type = "group";
    if (strcmp(in->type, "group") != 0 && strcmp(in->type, "channel") != 0) {
        pl_json_error_add(errors, "type", "must be group or channel");
        return false;
    }
    return conv_input_read(req, body, in, errors);
}

enum MHD_Result
conv_chats_put(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    struct conversation_input in = { 0 };
    const char *channel, *chat_id, *json = NULL;
    json_t *errors = NULL;
    bool created = false;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!read_chat(req, &channel, &chat_id, &errors) ||
        !read_put(req, pl_req_json(req), &in, &errors))
        return pl_reply_invalid(req, errors);
    if (conv_customers_check(req, in.customers, in.ncustomers, "participants", &errors, &err) !=
        PL_OK)
        return errors != NULL ? pl_reply_invalid(req, errors) : pl_reply_err(req, &err);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = conv_db_chat_find_or_create(db, pl_req_arena(req), channel, chat_id, &in, &json,
                                    &created, &err);
    return pl_reply_row(req, r, created ? 201 : 200, json, &err, "Not found",
                        "conversation not found");
}

enum MHD_Result
conv_chats_migrate(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const json_t *body = pl_req_json(req);
    const char *channel, *chat_id, *to, *json = NULL;
    json_t *errors = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!read_chat(req, &channel, &chat_id, &errors) ||
        !pl_json_check(body, migrate_fields, &errors))
        return pl_reply_invalid(req, errors);
    to = json_string_value(json_object_get(body, "to_chat_id"));
    if (!chat_id_valid(to)) {
        pl_json_error_add(&errors, "to_chat_id", "must be 1 to %d bytes", CHAT_ID_MAX);
        return pl_reply_invalid(req, errors);
    }
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = conv_db_chat_migrate(db, pl_req_arena(req), channel, chat_id, to, &json, &err);
    return pl_reply_row(req, r, 200, json, &err, "Not found", "no conversation for that chat");
}
