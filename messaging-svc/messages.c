/*
 * messages.c - HTTP handlers of the message resource (SPEC 4.3): parse, call one SQL function,
 * reply.  Shapes are checked by the field tables below; meaning (vocabularies, the status rules,
 * cursors) by status.h and cursor.h.
 *
 * Idempotency-Key (SPEC 2) is scoped per caller: the gateway passes the caller's API key id in
 * X-Parley-Key-Id, and the stored key is "<key id>:<key>" (":<key>" for a service calling
 * directly), so two API keys never see each other's responses.  The request is identified by the
 * SHA-256 of its body in canonical JSON (sorted keys, compact), so formatting differences between
 * two sends of the same request do not count as a different body.
 */
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/page.h"
#include "parley/uuid.h"
#include "parley/hex.h"
#include "svc.h"

/* Expired Idempotency-Keys are deleted once every this many keyed creates. */
#define IDEM_EXPIRE_EVERY 256

static const struct pl_field create_fields[] = {
    { "conversation_id", PL_F_UUID, true, false, 0, 0 },
    { "sender_customer_id", PL_F_UUID, true, false, 0, 0 },
    { "direction", PL_F_STRING, true, false, 0, 0 },
    { "body", PL_F_STRING, false, false, MSG_BODY_MAX, 0 },
    { "content_type", PL_F_STRING, false, true, 64, 1 },
    { "channel", PL_F_STRING, false, true, 64, 1 },
    { "media_id", PL_F_UUID, false, true, 0, 0 },
    { "external_message_id", PL_F_STRING, false, true, 255, 1 },
    { "metadata", PL_F_OBJECT, false, true, PL_METADATA_MAX, 0 },
    { NULL, 0, false, false, 0, 0 },
};

static const struct pl_field update_fields[] = {
    { "body", PL_F_STRING, false, false, MSG_BODY_MAX, 0 },
    { "status", PL_F_STRING, false, false, 0, 0 },
    { "edited_by", PL_F_UUID, false, true, 0, 0 },
    { "error", PL_F_OBJECT, false, true, PL_METADATA_MAX, 0 },
    { "external_message_id", PL_F_STRING, false, true, 255, 1 },
    { "channel", PL_F_STRING, false, true, 64, 1 },
    { "deleted", PL_F_BOOL, false, false, 0, 0 },
    { NULL, 0, false, false, 0, 0 },
};

static atomic_uint keyed_creates;

/* A query's outcome as a reply; 404 names the resource. */
#define reply_message(req, rc, status, json, err) \
    pl_reply_row(req, rc, status, json, err, "Message not found", "no message with that id")

static const char *
str_field(const json_t *body, const char *name)
{
    return json_string_value(json_object_get(body, name));
}

/* Field table, then the vocabularies.  Returns the errors object, or NULL when valid. */
json_t *
msg_check_create(const json_t *body)
{
    json_t *errors = NULL;
    const char *dir, *ct;

    if (!pl_json_check(body, create_fields, &errors) && !json_is_object(body))
        return errors;
    dir = str_field(body, "direction");
    ct = str_field(body, "content_type");
    if (dir != NULL && msg_direction_parse(dir) == MSG_DIR_INVALID)
        pl_json_error_add(&errors, "direction", "must be inbound, outbound or system");
    if (ct != NULL && !msg_content_type_valid(ct))
        pl_json_error_add(&errors, "content_type", "is not a known content type");
    return errors;
}

void
msg_read_create(struct pl_arena *a, const json_t *body, struct message_input *in)
{
    const json_t *meta = json_object_get(body, "metadata");

    in->conversation_id = str_field(body, "conversation_id");
    in->sender_customer_id = str_field(body, "sender_customer_id");
    in->direction = str_field(body, "direction");
    in->body = str_field(body, "body") ? str_field(body, "body") : "";
    in->content_type = str_field(body, "content_type") ? str_field(body, "content_type") : "text";
    in->channel = str_field(body, "channel");
    in->media_id = str_field(body, "media_id");
    in->external_message_id = str_field(body, "external_message_id");
    in->metadata = json_is_object(meta) ? pl_json_dump(a, meta) : NULL;
    in->status = msg_status_name(msg_status_initial(msg_direction_parse(in->direction)));
}

/* "<caller key id>:<key>"; a key id that is not a plain token is treated as absent. */
static const char *
scoped_key(const struct pl_req *req, const char *key)
{
    const char *owner = pl_req_header(req, "X-Parley-Key-Id");
    size_t n = owner ? strspn(owner, "0123456789abcdefABCDEF-") : 0;

    if (owner == NULL || n == 0 || n > 64 || owner[n] != '\0')
        owner = "";
    return pl_arena_printf(pl_req_arena(req), "%s:%s", owner, key);
}

/*
 * Reads the Idempotency-Key header into idem.  Returns idem, or NULL when there is none or it is
 * malformed (then *errors says so).
 */
static const struct idem *
read_idem(const struct pl_req *req, const json_t *body, struct idem *idem, json_t **errors)
{
    const char *key = pl_req_header(req, "Idempotency-Key");
    size_t n = key ? strlen(key) : 0;
    char *canon;

    if (key == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            n = 0; /* control characters, spaces and non-ASCII are refused */
    if (n == 0 || n > MSG_IDEM_KEY_MAX) {
        pl_json_error_add(errors, "Idempotency-Key", "must be 1 to %d visible ASCII characters",
                          MSG_IDEM_KEY_MAX);
        return NULL;
    }
    canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    PL_ASSERT(canon != NULL);
    pl_sha256_hex(canon, strlen(canon), idem->hash);
    free(canon);
    idem->key = scoped_key(req, key);
    return idem;
}

/* When idem's key already has a stored response: replies with it (or 422) and returns true. */
static bool
replayed(struct pl_req *req, PGconn *db, const struct idem *idem, enum MHD_Result *rc)
{
    struct pl_err err = PL_ERR_INIT;
    const char *hash = NULL, *body = NULL;
    unsigned status = 0;
    int r = msg_db_idem_get(db, pl_req_arena(req), idem->key, &hash, &status, &body, &err);

    if (r == PL_DB_NONE)
        return false;
    if (r == PL_DB_ROW && strcmp(hash, idem->hash) != 0) {
        pl_err_set(&err, 422, "validation_failed", "was already used with a different request");
        snprintf(err.field, sizeof(err.field), "Idempotency-Key");
        r = PL_DB_FAIL;
    }
    if (r == PL_DB_ROW)
        pl_req_reply_header(req, "Idempotent-Replayed", "true");
    *rc = reply_message(req, r, status, body, &err);
    return true;
}

enum MHD_Result
msg_messages_create(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    const json_t *body = pl_req_json(req);
    json_t *errors = msg_check_create(body);
    const struct idem *idem = NULL;
    struct message_input in;
    struct idem key;
    const char *json = NULL;
    unsigned status = 0;
    bool replay = false;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (errors == NULL)
        idem = read_idem(req, body, &key, &errors);
    if (errors != NULL)
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    if (idem != NULL && replayed(req, db, idem, &rc))
        return rc;
    msg_read_create(pl_req_arena(req), body, &in);
    if (msg_participant_check(ctx, pl_req_arena(req), in.conversation_id, in.sender_customer_id,
                              &err) != PL_OK)
        return pl_reply_err(req, &err);
    r = msg_db_message_create(db, pl_req_arena(req), &in, idem, &json, &status, &replay, &err);
    if (idem != NULL && atomic_fetch_add(&keyed_creates, 1) % IDEM_EXPIRE_EVERY == 0)
        msg_db_idem_expire(db);
    if (replay && r == PL_DB_ROW)
        pl_req_reply_header(req, "Idempotent-Replayed", "true");
    return reply_message(req, r, status, json, &err);
}

enum MHD_Result
msg_messages_get(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return reply_message(req, PL_DB_NONE, 0, NULL, &err);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = msg_db_message_get(db, pl_req_arena(req), id, &json, &err);
    return reply_message(req, r, 200, json, &err);
}

/* Checks a PUT body into u (the target is set by the caller).  Returns the errors, or NULL. */
static json_t *
read_update(struct pl_req *req, const json_t *body, struct message_update *u)
{
    const char *status = str_field(body, "status");
    const json_t *error = json_object_get(body, "error");
    json_t *errors = NULL;

    if (!pl_json_check(body, update_fields, &errors) && !json_is_object(body))
        return errors;
    u->has_body = json_is_string(json_object_get(body, "body"));
    u->body = u->has_body ? str_field(body, "body") : NULL;
    u->edited_by = u->has_body ? str_field(body, "edited_by") : NULL;
    u->status = status ? msg_status_parse(status) : MSG_ST_INVALID;
    u->error = json_is_object(error) ? pl_json_dump(pl_req_arena(req), error) : NULL;
    u->new_external_id = str_field(body, "external_message_id");
    u->new_channel = u->new_external_id ? str_field(body, "channel") : NULL;
    /* A channel revoke (WhatsApp): the body is emptied (kept in history), metadata.deleted set. */
    u->deleted = json_is_true(json_object_get(body, "deleted"));
    if (u->deleted) {
        u->has_body = true;
        u->body = "";
    }
    if (status != NULL && u->status == MSG_ST_INVALID)
        pl_json_error_add(&errors, "status", "is not a known status");
    if (json_object_get(body, "status") == NULL && json_object_get(body, "body") == NULL &&
        u->new_external_id == NULL && !u->deleted)
        pl_json_error_add(&errors, "status", "body or status is required");
    if (u->status == MSG_ST_FAILED && u->error == NULL)
        pl_json_error_add(&errors, "error", "is required when status is failed");
    return errors;
}

/* Runs a checked update and replies. */
static enum MHD_Result
update_and_reply(struct pl_req *req, const struct message_update *u)
{
    struct pl_err err = PL_ERR_INIT;
    const char *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = msg_db_message_update(db, pl_req_arena(req), u, &json, &err);
    return reply_message(req, r, 200, json, &err);
}

enum MHD_Result
msg_messages_update(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    struct message_update u = { 0 };
    json_t *errors;

    u.id = pl_req_param(req, "id");
    if (!pl_uuid_valid(u.id))
        return reply_message(req, PL_DB_NONE, 0, NULL, &err);
    if ((errors = read_update(req, pl_req_json(req), &u)) != NULL)
        return pl_reply_invalid(req, errors);
    return update_and_reply(req, &u);
}

enum MHD_Result
msg_messages_update_external(struct pl_req *req)
{
    struct message_update u = { 0 };
    json_t *errors;

    u.channel = pl_req_param(req, "channel");
    u.external_message_id = pl_req_param(req, "external_message_id");
    /* Body and/or status, as by id: channel edits (Telegram edited_message) come this way. */
    if ((errors = read_update(req, pl_req_json(req), &u)) != NULL)
        return pl_reply_invalid(req, errors);
    return update_and_reply(req, &u);
}

enum MHD_Result
msg_messages_history(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return reply_message(req, PL_DB_NONE, 0, NULL, &err);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = msg_db_message_history(db, pl_req_arena(req), id, &json, &err);
    return reply_message(req, r, 200, json, &err);
}

/* The paginator of SPEC 2, newest first by seq. */
static enum MHD_Result
list_page(struct pl_req *req, PGconn *db, const char *conversation_id)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    const char **items = NULL;
    json_t *errors = NULL;
    long long total = 0;
    struct pl_page pg;
    int n = 0;

    if (!pl_page_parse(req, MSG_PER_PAGE_DEFAULT, &pg, &errors))
        return pl_reply_invalid(req, errors);
    if (msg_db_message_page(db, pl_req_arena(req), conversation_id, pg.per_page,
                            pl_page_offset(&pg), &items, &n, &total, &err) < 0)
        return pl_reply_err(req, &err);
    return pl_reply_page(req, ctx->cfg->c.public_url, &pg, total, items, n);
}

/* {"data": [...], "has_more", "next_cursor"}: next_cursor is the last row's seq or version. */
static enum MHD_Result
list_keyset(struct pl_req *req, PGconn *db, const char *conversation_id,
            const struct msg_cursor *c)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_buf out = PL_BUF_INIT;
    struct message_row *rows = NULL;
    enum MHD_Result rc;
    bool more;
    int n = 0;

    if (msg_db_message_keyset(db, pl_req_arena(req), conversation_id, c, &rows, &n, &err) < 0)
        return pl_reply_err(req, &err);
    more = n > c->limit;
    if (more)
        n = (int)c->limit;
    pl_buf_puts(&out, "{\"data\":[");
    for (int i = 0; i < n; i++) {
        pl_buf_puts(&out, i > 0 ? "," : "");
        pl_buf_puts(&out, rows[i].json);
    }
    pl_buf_printf(&out, "],\"has_more\":%s,\"next_cursor\":", more ? "true" : "false");
    if (n > 0)
        pl_buf_printf(&out, "%lld}", rows[n - 1].cursor);
    else
        pl_buf_puts(&out, "null}");
    rc = pl_reply_json_text(req, 200, out.data, out.len);
    pl_buf_cleanup(&out);
    return rc;
}

enum MHD_Result
msg_conversation_messages(struct pl_req *req)
{
    const char *id = pl_req_param(req, "id"), *field = NULL, *why;
    struct msg_cursor c;
    json_t *errors = NULL;
    enum MHD_Result rc;
    PGconn *db;

    if (!pl_uuid_valid(id))
        return pl_reply_error(req, 404, "Not found", "no conversation with that id");
    why = msg_cursor_parse(pl_req_query(req, "after_seq"), pl_req_query(req, "before_seq"),
                           pl_req_query(req, "changed_since"), pl_req_query(req, "limit"), &c,
                           &field);
    if (why != NULL) {
        pl_json_error_add(&errors, field, "%s", why);
        return pl_reply_invalid(req, errors);
    }
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    if (c.mode == MSG_LIST_PAGE)
        return list_page(req, db, id);
    return list_keyset(req, db, id, &c);
}
