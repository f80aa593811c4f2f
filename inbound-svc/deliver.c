/*
 * deliver.c - one normalised item (items.h) into calls to the other services (SPEC 5, 10).
 *
 * A message: the customer is upserted by identity, the business account too (unless the
 * process upserted that very name and metadata for the identity lately: idcache.h), then the
 * conversation is found or created (the direct one of the pair, or the group
 * conversation of the chat, keyed by the channel's chat id in conversation-svc), the media
 * fetched (media.c), and the message created with its provider id (a repeat answers 200 with
 * the first one).  An echo (the business wrote from its own WhatsApp app) is the same with the
 * business as the sender, then its status is moved to sent.  Statuses, edits and revokes go to
 * messaging-svc by the target's provider id: a 404 means the target is not known yet, and the
 * row is retried until it is (so a status, edit or revoke that overtook its message is applied
 * once the message exists).  A migration links the group chat's new id to its conversation; a
 * customer item only upserts the customer (its metadata merges), always, past the cache.
 *
 * Every step is idempotent on the other side (upsert by identity, find-or-create keyed by the
 * database, message unique by channel and provider id, statuses forward-only, an edit that
 * changes nothing writes nothing), so a row retried after a failure converges.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "deliver.h"
#include "idcache.h"
#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

void
inb_note(struct inb_run *r, enum inb_outcome o, const char *fmt, ...)
{
    va_list ap;

    if (o <= r->worst && r->error[0] != '\0')
        return;
    r->worst = o > r->worst ? o : r->worst;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

enum inb_outcome
inb_classify(long status)
{
    if (status >= 200 && status < 300)
        return INB_OK;
    if (status >= 500 || status == 429 || status == 409 || status == 408)
        return INB_RETRY;
    return INB_PERMANENT;
}

enum inb_outcome
inb_call(struct inb_run *r, const char *method, const char *url, json_t *body, const char *what,
         long timeout_ms, bool quiet, struct pl_client_resp *out)
{
    struct pl_err err = PL_ERR_INIT;
    const char *text = body ? pl_json_dump(r->a, pl_json_keep(r->a, body)) : NULL;
    enum inb_outcome o;

    memset(out, 0, sizeof(*out));
    if (pl_client_call(r->a, method, url, text, timeout_ms, out, &err) != PL_OK) {
        inb_note(r, INB_RETRY, "%s: %s", what, err.msg);
        return INB_RETRY;
    }
    o = inb_classify(out->status);
    if (o != INB_OK && !quiet)
        inb_note(r, o, "%s: HTTP %ld: %.200s", what, out->status, out->body ? out->body : "");
    return o;
}

const char *
inb_answer_id(struct inb_run *r, const struct pl_client_resp *resp, const char *what)
{
    const char *id = json_string_value(json_object_get(resp->json, "id"));

    if (id == NULL)
        inb_note(r, INB_RETRY, "%s: answer without an id", what);
    return id;
}

/* "<base><prefix><url-encoded a>[/<url-encoded b>][suffix]" in the run's arena. */
static const char *
url_of(struct inb_run *r, const char *base, const char *prefix, const char *a, const char *b,
       const char *suffix)
{
    struct pl_buf path = PL_BUF_INIT;
    const char *url;

    pl_buf_printf(&path, "%s%s", base, prefix);
    pl_buf_urlencode(&path, a);
    if (b != NULL) {
        pl_buf_puts(&path, "/");
        pl_buf_urlencode(&path, b);
    }
    pl_buf_puts(&path, suffix ? suffix : "");
    url = pl_arena_strndup(r->a, path.data, path.len);
    pl_buf_cleanup(&path);
    return url;
}

/* Upserts a customer by identity (metadata merges); returns its id or NULL. */
static const char *
upsert(struct inb_run *r, const char *type, const char *ext, const char *name, json_t *meta)
{
    struct pl_client_resp resp;
    json_t *body = json_pack("{s:s, s:s}", "external_type", type, "external_id", ext);
    const char *url = pl_arena_printf(r->a, "%s/api/customers", r->cfg->customer_url);

    if (name != NULL && *name != '\0')
        json_object_set_new(body, "name", json_string(name));
    if (meta != NULL && json_object_size(meta) > 0)
        json_object_set(body, "metadata", meta);
    if (inb_call(r, "POST", url, body, "customer upsert", INB_CALL_TIMEOUT_MS, false, &resp) !=
        INB_OK)
        return NULL;
    return inb_answer_id(r, &resp, "customer upsert");
}

/*
 * The customer's id: from the process's cache when this very name and metadata were upserted
 * for the identity within the TTL (the upsert would change nothing), else by an upsert, whose
 * answer is cached.  Without use_cache (an explicit change of the customer alone, such as a
 * Telegram block) the upsert always runs: a stale entry must never swallow such a change.
 */
static const char *
customer(struct inb_run *r, const char *type, const char *ext, const char *name, json_t *meta,
         bool use_cache)
{
    uint64_t fp = inb_idcache_fp(name, meta);
    char id[INB_IDCACHE_ID];
    const char *got;

    if (r->ids != NULL && use_cache &&
        inb_idcache_get(r->ids, type, ext, fp, pl_time_mono_us(), id))
        return pl_arena_strdup(r->a, id);
    got = upsert(r, type, ext, name, meta);
    if (got != NULL && r->ids != NULL)
        inb_idcache_put(r->ids, type, ext, fp, pl_time_mono_us(), got);
    return got;
}

/* The business account's customer id, remembered for the rest of the delivery. */
static const char *
business(struct inb_run *r, const struct inb_item *it)
{
    const char *key = pl_arena_printf(r->a, "%s/%s", it->business_type, it->business_ext);

    if (r->biz_key != NULL && strcmp(r->biz_key, key) == 0)
        return r->biz_id;
    r->biz_id = customer(r, it->business_type, it->business_ext, it->business_name, NULL, true);
    r->biz_key = r->biz_id ? key : NULL;
    return r->biz_id;
}

/* Finds or creates the open direct conversation of the pair; returns its id or NULL. */
static const char *
direct(struct inb_run *r, const char *customer_id, const char *business_id)
{
    const char *url = pl_arena_printf(r->a, "%s/api/conversations", r->cfg->conversation_url);
    struct pl_client_resp resp;

    if (inb_call(r, "POST", url,
                 json_pack("{s:s, s:[s,s]}", "type", "direct", "participants", customer_id,
                           business_id),
                 "conversation find-or-create", INB_CALL_TIMEOUT_MS, false, &resp) != INB_OK)
        return NULL;
    return inb_answer_id(r, &resp, "conversation find-or-create");
}

/*
 * Finds or creates the group conversation of the item's chat (SPEC 10), with the customer and
 * the business as participants: conversation-svc adds whichever is missing, so each sender of a
 * group joins it once.  Returns its id or NULL.
 */
static const char *
group(struct inb_run *r, const struct inb_item *it, const char *customer_id,
      const char *business_id)
{
    const char *url = url_of(r, r->cfg->conversation_url, "/api/conversations/by-chat/",
                             r->channel, it->chat_id, NULL);
    json_t *body = json_pack("{s:s, s:[s,s]}", "type", "group", "participants", business_id,
                             customer_id);
    struct pl_client_resp resp;

    if (it->chat_title != NULL && *it->chat_title != '\0')
        json_object_set_new(body, "subject", json_string(it->chat_title));
    if (inb_call(r, "PUT", url, body, "group conversation find-or-create", INB_CALL_TIMEOUT_MS,
                 false, &resp) != INB_OK)
        return NULL;
    return inb_answer_id(r, &resp, "group conversation find-or-create");
}

/* The conversation of the item (group or direct), remembered for the rest of the delivery. */
static const char *
conversation(struct inb_run *r, const struct inb_item *it, const char *cust, const char *biz)
{
    const char *key = pl_arena_printf(r->a, "%s/%s/%s", it->chat_id ? it->chat_id : "-", cust,
                                      biz);

    if (r->conv_key != NULL && strcmp(r->conv_key, key) == 0)
        return r->conv_id;
    r->conv_id = it->chat_id ? group(r, it, cust, biz) : direct(r, cust, biz);
    r->conv_key = r->conv_id ? key : NULL;
    return r->conv_id;
}

/* The customer, the business and the conversation of an item; false when one failed (noted). */
static bool
parties(struct inb_run *r, const struct inb_item *it, const char **cust, const char **biz,
        const char **conv)
{
    return (*cust = customer(r, it->customer_type, it->customer_ext, it->customer_name,
                             it->customer_metadata, true)) != NULL &&
           (*biz = business(r, it)) != NULL && (*conv = conversation(r, it, *cust, *biz)) != NULL;
}

/*
 * PUT body (taken) to the message with the item's provider id.  404: the message is not known
 * yet, so the row is tried again later (SPEC 5).  422: the change does not apply to that message
 * (a status of an inbound one, say); nothing will ever change that, so it is logged and dropped.
 */
static void
by_external(struct inb_run *r, const struct inb_item *it, json_t *body, const char *what)
{
    const char *url = url_of(r, r->cfg->messaging_url, "/api/messages/by-external/", r->channel,
                             it->external_message_id, NULL);
    struct pl_client_resp resp;

    if (inb_call(r, "PUT", url, body, what, INB_CALL_TIMEOUT_MS, true, &resp) == INB_OK ||
        resp.status == 0)
        return; /* done, or a transport failure (noted) */
    if (resp.status == 404)
        inb_note(r, INB_RETRY, "%s for message \"%.100s\" not known yet", what,
                 it->external_message_id);
    else if (resp.status == 422)
        pl_log_warn("%s for message %.100s refused (HTTP 422); ignored", what,
                    it->external_message_id);
    else
        inb_note(r, inb_classify(resp.status), "%s: HTTP %ld: %.200s", what, resp.status,
                 resp.body ? resp.body : "");
}

/* A message: its parties, its media, then the message (and the sent status of an echo). */
static void
deliver_message(struct inb_run *r, const struct inb_item *it)
{
    const char *cust, *biz, *conv, *media_id = NULL;
    json_t *meta = pl_json_keep(r->a, json_deep_copy(it->metadata));
    json_t *body;

    if (!parties(r, it, &cust, &biz, &conv) ||
        inb_media_attach(r, conv, meta, &media_id) != INB_OK)
        return;
    body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "conversation_id", conv,
                     "sender_customer_id", strcmp(it->direction, "outbound") == 0 ? biz : cust,
                     "direction", it->direction, "channel", r->channel, "external_message_id",
                     it->external_message_id, "content_type", it->content_type, "body", it->body,
                     "metadata", meta);
    if (body == NULL) { /* cannot happen: every member is set by the normaliser */
        inb_note(r, INB_PERMANENT, "message %s: could not build the request",
                 it->external_message_id);
        return;
    }
    if (media_id != NULL)
        json_object_set_new(body, "media_id", json_string(media_id));
    if (r->pending != NULL)
        inb_pending_add(r->pending, r, it, body);
    else
        inb_create_message(r, it, body);
}

void
inb_create_message(struct inb_run *r, const struct inb_item *it, json_t *body)
{
    const char *url = pl_arena_printf(r->a, "%s/api/messages", r->cfg->messaging_url);
    struct pl_client_resp resp;

    if (inb_call(r, "POST", url, body, "message create", INB_CALL_TIMEOUT_MS, false, &resp) ==
        INB_OK)
        inb_echo_status(r, it);
}

void
inb_echo_status(struct inb_run *r, const struct inb_item *it)
{
    if (it->status != NULL) /* an echo: sent already, so never sent again */
        by_external(r, it, json_pack("{s:s}", "status", it->status), "echo status");
}

/* A status of an outbound message, forward-only on messaging-svc's side. */
static void
deliver_status(struct inb_run *r, const struct inb_item *it)
{
    json_t *body = json_pack("{s:s}", "status", it->status);

    if (it->error != NULL)
        json_object_set(body, "error", it->error);
    by_external(r, it, body, pl_arena_printf(r->a, "status %s", it->status));
}

/* A migrated group: the old chat's conversation is found (or made) and gets the new id too. */
static void
deliver_migrate(struct inb_run *r, const struct inb_item *it)
{
    const char *cust, *biz, *conv;
    const char *url = url_of(r, r->cfg->conversation_url, "/api/conversations/by-chat/",
                             r->channel, it->chat_id, "/migrate");
    struct pl_client_resp resp;

    if (!parties(r, it, &cust, &biz, &conv))
        return;
    if (inb_call(r, "POST", url, json_pack("{s:s}", "to_chat_id", it->to_chat_id),
                 "group migration", INB_CALL_TIMEOUT_MS, true, &resp) == INB_OK ||
        resp.status == 0)
        return;
    if (resp.status == 409) /* the new chat got a conversation first: both stay as they are */
        pl_log_warn("chat %s moved to %s, which has a conversation already; not merged",
                    it->chat_id, it->to_chat_id);
    else
        inb_note(r, inb_classify(resp.status), "group migration: HTTP %ld: %.200s", resp.status,
                 resp.body ? resp.body : "");
}

void
inb_deliver(struct inb_run *r, const struct inb_item *it)
{
    if (it->kind != INB_ITEM_MESSAGE && it->kind != INB_ITEM_SKIP)
        inb_pending_flush(r->pending); /* what came before it takes effect first */
    switch (it->kind) {
    case INB_ITEM_MESSAGE:
        deliver_message(r, it);
        break;
    case INB_ITEM_STATUS:
        deliver_status(r, it);
        break;
    case INB_ITEM_EDIT: /* the new text; messaging-svc keeps the old one in history */
        by_external(r, it, json_pack("{s:s}", "body", it->body), "edit");
        break;
    case INB_ITEM_REVOKE:
        by_external(r, it, json_pack("{s:b}", "deleted", 1), "revoke");
        break;
    case INB_ITEM_MIGRATE:
        deliver_migrate(r, it);
        break;
    case INB_ITEM_CUSTOMER:
        (void)customer(r, it->customer_type, it->customer_ext, it->customer_name,
                       it->customer_metadata, false);
        break;
    case INB_ITEM_SKIP:
    default:
        pl_log_info("%s item %s skipped: %s", r->channel,
                    it->external_message_id ? it->external_message_id : "-", it->reason);
        break;
    }
}
