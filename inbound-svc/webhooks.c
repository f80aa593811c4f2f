/*
 * webhooks.c - HTTP handlers of the webhook resource (SPEC 5): verify, store, answer at once.
 *
 * Order matters and is the contract: the signature (or secret token) is checked first over the
 * exact bytes received, so a forged request learns nothing and stores nothing (401); then a body
 * that is not JSON is 400 and not stored; then the delivery is stored with its event id and the
 * database decides whether it is new (201) or a redelivery (200).  The row is written by the store
 * batcher (store.c) with the deliveries of the other handlers waiting at that moment, and the
 * answer goes out only after its commit.  Processing happens later, in the workers, which are
 * woken here.  Headers are stored without secrets or signatures.
 */
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/page.h"
#include "parley/uuid.h"
#include "signature.h"
#include "svc.h"

/* Headers never stored: they carry secrets or prove possession of one. */
static const char *const secret_headers[] = { "X-Hub-Signature-256", "X-Hub-Signature",
                                              "X-Telegram-Bot-Api-Secret-Token",
                                              "X-Service-Token", "Authorization", "Cookie",
                                              NULL };

static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    for (int i = 0; secret_headers[i] != NULL; i++)
        if (strcasecmp(key, secret_headers[i]) == 0)
            return MHD_YES;
    if (value != NULL && pl_utf8_valid(value, strlen(value)))
        json_object_set_new(cls, key, json_string(value));
    return MHD_YES;
}

/* The request's headers as a JSON object text, secrets removed. */
static const char *
headers_json(struct pl_req *req)
{
    json_t *h = pl_json_keep(pl_req_arena(req), json_object());

    MHD_get_connection_values(pl_req_connection(req), MHD_HEADER_KIND, add_header, h);
    return pl_json_dump(pl_req_arena(req), h);
}

/* Parses the raw body; replies 400 and returns NULL when it is not a JSON object. */
static json_t *
parse_delivery(struct pl_req *req, const char *body, size_t n, enum MHD_Result *rc)
{
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", n, 0, &jerr);

    if (root == NULL) {
        *rc = pl_reply_error(req, 400, "invalid_json", "request body is not valid JSON: %s",
                             jerr.text);
        return NULL;
    }
    pl_json_keep(pl_req_arena(req), root);
    if (!json_is_object(root)) {
        *rc = pl_reply_error(req, 400, "invalid_json", "request body must be a JSON object");
        return NULL;
    }
    return root;
}

/* Stores a verified, parsed delivery and answers 201 or 200. */
static enum MHD_Result
store(struct pl_req *req, const char *provider, const char *event_id, const char *body, size_t n)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    struct webhook_input in = { provider, event_id, pl_arena_strndup(pl_req_arena(req), body, n),
                                n, headers_json(req), pl_req_id(req) };
    static const char received[] = "{\"status\":\"received\"}";
    static const char duplicate[] = "{\"status\":\"ignored_duplicate\"}";

    switch (inb_store_put(ctx->store, &in, &err)) { /* returns once committed */
    case PL_DB_ROW:
        inb_workers_wake(ctx->workers);
        return pl_reply_json_text(req, 201, received, sizeof(received) - 1);
    case PL_DB_NONE:
        pl_log_info("duplicate %s delivery ignored", provider);
        return pl_reply_json_text(req, 200, duplicate, sizeof(duplicate) - 1);
    default:
        return pl_reply_err(req, &err);
    }
}

enum MHD_Result
inb_whatsapp_verify(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *mode = pl_req_query(req, "hub.mode");
    const char *token = pl_req_query(req, "hub.verify_token");
    const char *challenge = pl_req_query(req, "hub.challenge");

    if (mode == NULL || strcmp(mode, "subscribe") != 0 || challenge == NULL ||
        !inb_token_equal(token, ctx->cfg->whatsapp_verify_token))
        return pl_reply_error(req, 403, "Forbidden", "verification token does not match");
    return pl_reply_text(req, 200, "text/plain", challenge, strlen(challenge));
}

enum MHD_Result
inb_whatsapp_receive(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *sig = pl_req_header(req, "X-Hub-Signature-256");
    size_t n = 0;
    const char *body = pl_req_body(req, &n);
    char event_id[65];
    enum MHD_Result rc;

    if (!inb_sig_check(ctx->cfg->whatsapp_secret, body, n, sig)) {
        pl_log_info("whatsapp delivery refused: %s signature", sig ? "wrong" : "missing");
        return pl_reply_error(req, 401, "invalid_signature",
                              "X-Hub-Signature-256 is missing or does not match the body");
    }
    if (parse_delivery(req, body, n, &rc) == NULL)
        return rc;
    inb_sha256_hex(body, n, event_id); /* an exact redelivery is a duplicate */
    return store(req, "whatsapp", event_id, body, n);
}

enum MHD_Result
inb_telegram_receive(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *token = pl_req_header(req, "X-Telegram-Bot-Api-Secret-Token");
    size_t n = 0;
    const char *body = pl_req_body(req, &n);
    const json_t *root, *update_id;
    enum MHD_Result rc;

    if (!inb_token_equal(token, ctx->cfg->telegram_secret)) {
        pl_log_info("telegram delivery refused: %s secret token", token ? "wrong" : "missing");
        return pl_reply_error(req, 401, "invalid_secret_token",
                              "X-Telegram-Bot-Api-Secret-Token is missing or wrong");
    }
    if ((root = parse_delivery(req, body, n, &rc)) == NULL)
        return rc;
    update_id = json_object_get(root, "update_id");
    if (!json_is_integer(update_id))
        return pl_reply_error(req, 400, "invalid_update", "update_id must be an integer");
    return store(req, "telegram",
                 pl_arena_printf(pl_req_arena(req), "%s:%lld", ctx->cfg->bot_id,
                                 (long long)json_integer_value(update_id)),
                 body, n);
}

enum MHD_Result
inb_webhooks_dead(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    const char **items = NULL;
    json_t *errors = NULL;
    long long total = 0;
    struct pl_page pg;
    enum MHD_Result rc;
    PGconn *db;
    int n = 0;

    if (!pl_page_parse(req, INB_DEAD_PER_PAGE, &pg, &errors))
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    if (inb_db_webhook_dead(db, pl_req_arena(req), pg.per_page, pl_page_offset(&pg), &items, &n,
                            &total, &err) < 0)
        return pl_reply_err(req, &err);
    return pl_reply_page(req, ctx->cfg->c.public_url, &pg, total, items, n);
}

enum MHD_Result
inb_webhooks_replay(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    enum MHD_Result rc;
    PGconn *db;

    if (!pl_uuid_valid(id))
        return pl_reply_error(req, 404, "Not found", "no webhook with that id");
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    switch (inb_db_webhook_replay(db, pl_req_arena(req), id, &json, &err)) {
    case PL_DB_ROW:
        inb_workers_wake(ctx->workers);
        return pl_reply_json_text(req, 202, json, strlen(json));
    case PL_DB_NONE:
        return pl_reply_error(req, 404, "Not found", "no webhook with that id");
    default:
        return pl_reply_err(req, &err);
    }
}
