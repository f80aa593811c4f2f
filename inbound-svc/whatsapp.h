/*
 * whatsapp.h - WhatsApp Cloud API webhook deliveries to normalised items (SPEC 5 and 10).
 *
 * Built from Meta's documented shape, not from a sample: {"object", "entry": [{"id", "changes":
 * [{"field", "value": {"metadata": {"display_phone_number", "phone_number_id"}, "contacts": [...],
 * "messages": [...], "statuses": [...]}}]}]}.  Every entry, change, message and status is visited;
 * anything missing or of the wrong type is treated as absent, never trusted.
 *
 * Besides plain messages (SPEC 10): an "edit" message (edit.original_message_id, edit.message as
 * the message now reads) becomes an edit of that message; a "revoke" (revoke.original_message_id)
 * a revoke of it; a message with group_id belongs to that group's conversation; a "system"
 * message about a changed number carries the new wa_id for the customer's metadata.  Changes of
 * field smb_message_echoes hold value.message_echoes[]: messages the business sent from its own
 * WhatsApp app (from = the business number, to = the customer), which become outbound messages
 * with status sent.  Changes of other fields (template updates, user preferences) produce nothing.
 *
 * Header-only so tests/unit/inbound-svc and tests/fuzz/fuzz_whatsapp.c reach it.
 */
#ifndef INBOUND_WHATSAPP_H
#define INBOUND_WHATSAPP_H

#include <stdio.h>

#include "items.h"

/* The value-level facts every message of one change shares. */
struct inb_wa_value {
    const char *phone_number_id;
    const char *display_phone_number;
    const json_t *contacts;
};

/* WhatsApp error codes that are worth retrying (SPEC 10). */
static inline bool
inb_wa_code_retryable(long long code)
{
    static const long long codes[] = { 4, 80007, 130429, 131048, 131056 };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (code == codes[i])
            return true;
    return false;
}

/* The contacts[] entry of the customer with that wa_id or business-scoped user id, or NULL. */
static inline const json_t *
inb_wa_contact(const struct inb_wa_value *v, const char *wa_id, const char *user_id)
{
    size_t i;
    const json_t *c;

    json_array_foreach(v->contacts, i, c) {
        const char *wa = inb_str(c, "wa_id"), *uid = inb_str(c, "user_id");

        if ((wa && wa_id && strcmp(wa, wa_id) == 0) ||
            (uid && user_id && strcmp(uid, user_id) == 0))
            return c;
    }
    return json_array_size(v->contacts) == 1 ? json_array_get(v->contacts, 0) : NULL;
}

/* The first of the candidate ids that is a non-empty string, or NULL. */
static inline const char *
inb_wa_first_id(const char *a, const char *b, const char *c, const char *d)
{
    const char *ids[] = { a, b, c, d };

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        if (ids[i] != NULL && *ids[i] != '\0')
            return ids[i];
    return NULL;
}

/*
 * Fills the customer and business of it.  The customer is the sender of a message (from,
 * from_user_id) or the recipient of an echo (to, to_user_id).  Returns false when the customer
 * cannot be identified.
 */
static inline bool
inb_wa_identity(const struct inb_wa_value *v, const json_t *msg, bool echo, struct inb_item *it)
{
    const char *wa = inb_str(msg, echo ? "to" : "from");
    const char *uid = inb_str(msg, echo ? "to_user_id" : "from_user_id");
    const json_t *c = inb_wa_contact(v, wa, uid);
    const char *id = inb_wa_first_id(inb_str(c, "wa_id"), wa, inb_str(c, "user_id"), uid);

    if (echo) /* contacts[] may describe someone else: trust only a matching entry */
        id = inb_wa_first_id(wa, uid, NULL, NULL);
    if (id == NULL || v->phone_number_id == NULL || *v->phone_number_id == '\0')
        return false;
    it->customer_type = "whatsapp";
    it->customer_ext = id;
    if (!echo || (wa && inb_str(c, "wa_id") && strcmp(inb_str(c, "wa_id"), wa) == 0))
        it->customer_name = inb_str(json_object_get(c, "profile"), "name");
    it->business_type = "whatsapp_business";
    it->business_ext = v->phone_number_id;
    it->business_name = v->display_phone_number;
    return true;
}

/* metadata.media from a media object (image, audio, video, document, sticker). */
static inline void
inb_wa_media(json_t *meta, const json_t *m)
{
    json_t *media = json_object();

    inb_copy(media, "provider_media_id", m, "id");
    inb_copy(media, "mime_type", m, "mime_type");
    inb_copy(media, "sha256", m, "sha256");
    inb_copy(media, "filename", m, "filename");
    json_object_set_new(meta, "media", media);
}

/* metadata.interactive {type, id, title}, and the title as the body. */
static inline void
inb_wa_choice(struct inb_item *it, const char *type, const char *id, const char *title)
{
    json_t *o = json_object();

    json_object_set_new(o, "type", json_string(type));
    if (id != NULL)
        json_object_set_new(o, "id", json_string(id));
    if (title != NULL)
        json_object_set_new(o, "title", json_string(title));
    json_object_set_new(it->metadata, "interactive", o);
    it->body = title ? title : "";
}

/* Content of an interactive reply: button_reply, list_reply (or a later kind, kept by name). */
static inline void
inb_wa_interactive(struct inb_item *it, const json_t *ia)
{
    const char *type = inb_str(ia, "type");
    const json_t *reply = type ? json_object_get(ia, type) : NULL;

    inb_wa_choice(it, type ? type : "unknown", inb_str(reply, "id"), inb_str(reply, "title"));
}

/*
 * A system message about a changed number names the new id (system.wa_id, or new_wa_id in older
 * API versions): it goes into the customer's metadata as new_wa_id (SPEC 10).
 */
static inline void
inb_wa_system(struct inb_item *it, const json_t *sys)
{
    const char *type = inb_str(sys, "type");
    const char *id = inb_wa_first_id(inb_str(sys, "wa_id"), inb_str(sys, "new_wa_id"), NULL, NULL);

    if (type == NULL || strstr(type, "changed_number") == NULL || id == NULL)
        return;
    it->customer_metadata = json_pack("{s:s}", "new_wa_id", id);
}

/* The content_type, body and content metadata of msg of the given raw type. */
static inline void
inb_wa_content(struct inb_item *it, const json_t *msg, const char *type)
{
    const json_t *c = json_object_get(msg, type);
    json_t *meta = it->metadata;

    it->content_type = "unsupported";
    if (strcmp(type, "text") == 0) {
        it->content_type = "text";
        it->body = inb_str0(c, "body");
    } else if (!strcmp(type, "image") || !strcmp(type, "video") || !strcmp(type, "document") ||
               !strcmp(type, "sticker") || !strcmp(type, "audio") || !strcmp(type, "voice")) {
        bool voice = !strcmp(type, "voice") || json_is_true(json_object_get(c, "voice"));

        it->content_type = voice ? "voice" : type;
        it->body = inb_str0(c, "caption");
        inb_wa_media(meta, c);
    } else if (strcmp(type, "location") == 0) {
        json_t *loc = json_object();

        it->content_type = "location";
        inb_copy(loc, "latitude", c, "latitude");
        inb_copy(loc, "longitude", c, "longitude");
        inb_copy(loc, "name", c, "name");
        inb_copy(loc, "address", c, "address");
        json_object_set_new(meta, "location", loc);
    } else if (strcmp(type, "contacts") == 0) {
        it->content_type = "contacts";
        json_object_set_new(meta, "contacts", json_is_array(c) ? json_deep_copy(c) : json_array());
    } else if (strcmp(type, "interactive") == 0) {
        it->content_type = "interactive";
        inb_wa_interactive(it, c);
    } else if (strcmp(type, "button") == 0) {
        it->content_type = "button";
        inb_wa_choice(it, "button", inb_str(c, "payload"), inb_str(c, "text"));
    } else if (strcmp(type, "reaction") == 0) {
        it->content_type = "reaction";
        it->body = inb_str0(c, "emoji"); /* a removed reaction has none */
        inb_copy(meta, "reaction_to_external_id", c, "message_id");
    } else if (strcmp(type, "order") == 0) {
        it->content_type = "order";
        it->body = inb_str0(c, "text");
    } else if (strcmp(type, "system") == 0) {
        it->content_type = "system";
        it->direction = "system";
        it->body = inb_str0(c, "body");
        inb_wa_system(it, c);
    }
    /* unsupported, and types this code does not know yet: stored as unsupported */
    if (strcmp(type, "unsupported") == 0 && inb_str(c, "type") != NULL)
        json_object_set_new(meta, "channel_raw_type", json_string(inb_str(c, "type")));
    else
        json_object_set_new(meta, "channel_raw_type", json_string(type));
}

/* reply_to_external_id and forwarded from the message's context. */
static inline void
inb_wa_context(json_t *meta, const json_t *msg)
{
    const json_t *ctx = json_object_get(msg, "context");

    if (!json_is_object(ctx))
        return;
    inb_copy(meta, "reply_to_external_id", ctx, "id");
    if (json_is_true(json_object_get(ctx, "forwarded")) ||
        json_is_true(json_object_get(ctx, "frequently_forwarded")))
        json_object_set_new(meta, "forwarded", json_true());
}

/*
 * An edit: the target is edit.original_message_id and the new content is edit.message, a message
 * object without id or from; its text or caption becomes the body.
 */
static inline void
inb_wa_edit(struct inb_items *out, const struct inb_wa_value *v, const json_t *msg, bool echo)
{
    const json_t *e = json_object_get(msg, "edit"), *now = json_object_get(e, "message");
    const char *target = inb_str(e, "original_message_id"), *type = inb_str(now, "type");
    struct inb_item *it;

    if (target == NULL || *target == '\0' || type == NULL) {
        inb_items_skip(out, inb_str(msg, "id"), "edit without original_message_id or message");
        return;
    }
    it = inb_items_add(out, INB_ITEM_EDIT);
    it->external_message_id = target;
    (void)inb_wa_identity(v, msg, echo, it);
    it->body = "";
    it->metadata = json_object();
    inb_wa_content(it, now, type);
}

/* A revoke: the sender deleted revoke.original_message_id. */
static inline void
inb_wa_revoke(struct inb_items *out, const struct inb_wa_value *v, const json_t *msg, bool echo)
{
    const char *target = inb_str(json_object_get(msg, "revoke"), "original_message_id");
    struct inb_item *it;

    if (target == NULL || *target == '\0') {
        inb_items_skip(out, inb_str(msg, "id"), "revoke without original_message_id");
        return;
    }
    it = inb_items_add(out, INB_ITEM_REVOKE);
    it->external_message_id = target;
    (void)inb_wa_identity(v, msg, echo, it);
}

/*
 * One element of value.messages, or of value.message_echoes when echo is set: then the business
 * sent it, so it is an outbound message already sent, to the customer named by "to".
 */
static inline void
inb_wa_message(struct inb_items *out, const struct inb_wa_value *v, const json_t *msg, bool echo)
{
    const char *id = inb_str(msg, "id"), *type = inb_str(msg, "type");
    struct inb_item *it;

    if (id == NULL || *id == '\0' || type == NULL) {
        inb_items_skip(out, id, "message without id or type");
        return;
    }
    if (strcmp(type, "edit") == 0 || strcmp(type, "revoke") == 0) {
        if (strcmp(type, "edit") == 0)
            inb_wa_edit(out, v, msg, echo);
        else
            inb_wa_revoke(out, v, msg, echo);
        return;
    }
    it = inb_items_add(out, INB_ITEM_MESSAGE);
    it->external_message_id = id;
    if (!inb_wa_identity(v, msg, echo, it)) {
        it->kind = INB_ITEM_SKIP;
        it->reason = "message without a customer or business phone number id";
        return;
    }
    it->chat_id = inb_wa_first_id(inb_str(msg, "group_id"), NULL, NULL, NULL);
    it->direction = "inbound";
    it->body = "";
    it->metadata = json_object();
    inb_wa_content(it, msg, type);
    if (echo) {
        it->direction = "outbound";
        it->status = "sent";
    }
    inb_wa_context(it->metadata, msg);
    inb_metadata_fit(it->metadata);
}

/* The SPEC 10 error object of a failed status (its first error, when any). */
static inline json_t *
inb_wa_status_error(const json_t *st)
{
    const json_t *e = json_array_get(json_object_get(st, "errors"), 0);
    const json_t *code = json_object_get(e, "code");
    const char *text = inb_str(e, "message") ? inb_str(e, "message") : inb_str(e, "title");
    char buf[32] = "unknown";

    if (json_is_integer(code))
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(code));
    else if (json_is_string(code))
        snprintf(buf, sizeof(buf), "%s", json_string_value(code));
    return json_pack("{s:s, s:s, s:s, s:b}", "provider", "whatsapp", "code", buf, "message",
                     text ? text : "failed", "retryable",
                     json_is_integer(code) && inb_wa_code_retryable(json_integer_value(code)));
}

/* One element of value.statuses. */
static inline void
inb_wa_status(struct inb_items *out, const json_t *st)
{
    static const char *const known[] = { "sent", "delivered", "read", "played", "failed", NULL };
    const char *id = inb_str(st, "id"), *status = inb_str(st, "status");
    struct inb_item *it;
    int k;

    for (k = 0; status != NULL && known[k] != NULL && strcmp(status, known[k]) != 0; k++)
        ;
    if (id == NULL || *id == '\0' || status == NULL || known[k] == NULL) {
        inb_items_skip(out, id, "status without id or of an unknown kind");
        return;
    }
    it = inb_items_add(out, INB_ITEM_STATUS);
    it->external_message_id = id;
    it->status = status;
    if (strcmp(status, "failed") == 0)
        it->error = inb_wa_status_error(st);
}

/* One change.value of field "messages" or "smb_message_echoes". */
static inline void
inb_wa_value(struct inb_items *out, const json_t *value)
{
    const json_t *meta = json_object_get(value, "metadata"), *x;
    struct inb_wa_value v = { inb_str(meta, "phone_number_id"),
                              inb_str(meta, "display_phone_number"),
                              json_object_get(value, "contacts") };
    size_t i;

    if (!json_is_array(v.contacts))
        v.contacts = NULL;
    json_array_foreach(json_object_get(value, "messages"), i, x)
        inb_wa_message(out, &v, x, false);
    json_array_foreach(json_object_get(value, "message_echoes"), i, x)
        inb_wa_message(out, &v, x, true);
    json_array_foreach(json_object_get(value, "statuses"), i, x)
        inb_wa_status(out, x);
}

/*
 * Appends the items of a whole delivery to out, in delivery order.  root is the parsed body (any
 * JSON value; a wrong shape yields no items).  Items borrow strings from root.
 */
static inline void
inb_wa_normalise(const json_t *root, struct inb_items *out)
{
    const json_t *entry, *change;
    size_t i, j;

    json_array_foreach(json_object_get(root, "entry"), i, entry) {
        json_array_foreach(json_object_get(entry, "changes"), j, change) {
            const char *field = inb_str(change, "field");

            if (field != NULL && strcmp(field, "messages") != 0 &&
                strcmp(field, "smb_message_echoes") != 0)
                continue; /* template, preferences changes: not messages */
            inb_wa_value(out, json_object_get(change, "value"));
        }
    }
}

#endif
