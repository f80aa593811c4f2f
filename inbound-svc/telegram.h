/*
 * telegram.h - Telegram Bot API updates to normalised items (SPEC 5 and 10).
 *
 * Built from the documented Update object: exactly one optional member names the kind (message,
 * edited_message, channel_post, callback_query, ...).  message and channel_post become messages
 * (text, caption, photo, document, voice, audio, video, sticker, location, contact);
 * callback_query an interactive message whose body is its data; edited_message and
 * edited_channel_post an edit of the earlier message.  A message in a group, supergroup or channel
 * chat belongs to that chat's group conversation (chat_id, chat_title); a service message with
 * migrate_to_chat_id or migrate_from_chat_id says that a group continues as a supergroup with a
 * new id.  my_chat_member in a private chat says whether the user blocked the bot ("kicked") or
 * let it back ("member"): customer metadata.blocked.  Every other kind is skipped with a reason:
 * the row is stored and acknowledged (SPEC 5), nothing is created.
 *
 * Identities: the customer is from.id as a decimal string (sender_chat / chat when there is no
 * usable from); the business account is the bot (telegram_bot, the bot id).  A message id is
 * unique only within its chat, so external_message_id is "<chat_id>:<message_id>".
 *
 * Header-only so the unit tests reach it.
 */
#ifndef INBOUND_TELEGRAM_H
#define INBOUND_TELEGRAM_H

#include <stdio.h>

#include "items.h"

/* True when j is an integer; writes it as decimal into buf. */
static inline bool
inb_tg_int(const json_t *j, char *buf, size_t n)
{
    if (!json_is_integer(j))
        return false;
    snprintf(buf, n, "%lld", (long long)json_integer_value(j));
    return true;
}

/*
 * Cuts s, just written by a snprintf that may have truncated it, back to its last whole UTF-8
 * character (the input is valid UTF-8), so that it stays valid for the JSON the workers send.
 */
static inline void
inb_tg_utf8_cut(char *s)
{
    size_t n = strlen(s), i = n;
    unsigned char lead;

    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) /* continuation bytes */
        i--;
    if (i == 0 || (lead = (unsigned char)s[i - 1]) < 0xC0)
        return;
    if (n - (i - 1) < (size_t)(lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2))
        s[i - 1] = '\0';
}

/* The sender: from (unless it is the anonymous-admin bot), else sender_chat, else chat. */
static inline bool
inb_tg_sender(const json_t *msg, struct inb_item *it)
{
    const json_t *from = json_object_get(msg, "from");
    const json_t *chat = json_object_get(msg, "sender_chat");
    const char *first, *last;

    if (!json_is_object(chat))
        chat = json_object_get(msg, "chat");
    if (json_is_object(from) && json_object_get(msg, "sender_chat") == NULL &&
        inb_tg_int(json_object_get(from, "id"), it->ext_buf, sizeof(it->ext_buf))) {
        first = inb_str(from, "first_name");
        last = inb_str(from, "last_name");
        if (first != NULL || last != NULL) {
            snprintf(it->name_buf, sizeof(it->name_buf), "%s%s%s", first ? first : "",
                     first && last ? " " : "", last ? last : "");
            inb_tg_utf8_cut(it->name_buf);
            it->customer_name = it->name_buf;
        }
        it->customer_metadata = json_object();
        inb_copy(it->customer_metadata, "username", from, "username");
        inb_copy(it->customer_metadata, "language_code", from, "language_code");
    } else if (inb_tg_int(json_object_get(chat, "id"), it->ext_buf, sizeof(it->ext_buf))) {
        it->customer_name = inb_str(chat, "title");
    } else {
        return false;
    }
    it->customer_type = "telegram";
    it->customer_ext = it->ext_buf;
    return true;
}

/* metadata.media of a file object (file_id is the provider media id). */
static inline void
inb_tg_media(json_t *meta, const json_t *f)
{
    json_t *media = json_object();

    inb_copy(media, "provider_media_id", f, "file_id");
    inb_copy(media, "mime_type", f, "mime_type");
    inb_copy(media, "filename", f, "file_name");
    json_object_set_new(meta, "media", media);
}

/* content_type, body and content metadata of a Message. */
static inline void
inb_tg_content(struct inb_item *it, const json_t *msg)
{
    static const char *const files[][2] = { { "document", "document" }, { "voice", "voice" },
                                            { "audio", "audio" },       { "video", "video" },
                                            { "sticker", "sticker" },   { "animation", "video" },
                                            { "video_note", "video" } };
    const json_t *photo = json_object_get(msg, "photo"), *x;

    it->body = inb_str(msg, "text") ? inb_str(msg, "text") : inb_str0(msg, "caption");
    it->content_type = inb_str(msg, "text") ? "text" : "unsupported";
    if (json_array_size(photo) > 0) { /* sizes, smallest first: keep the largest */
        it->content_type = "image";
        inb_tg_media(it->metadata, json_array_get(photo, json_array_size(photo) - 1));
        return;
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (json_is_object(x = json_object_get(msg, files[i][0]))) {
            it->content_type = files[i][1];
            inb_tg_media(it->metadata, x);
            json_object_set_new(it->metadata, "channel_raw_type", json_string(files[i][0]));
            return;
        }
    }
    if (json_is_object(x = json_object_get(msg, "location"))) {
        json_t *loc = json_object();
        const json_t *venue = json_object_get(msg, "venue");

        it->content_type = "location";
        inb_copy(loc, "latitude", x, "latitude");
        inb_copy(loc, "longitude", x, "longitude");
        inb_copy(loc, "name", venue, "title");
        inb_copy(loc, "address", venue, "address");
        json_object_set_new(it->metadata, "location", loc);
    } else if (json_is_object(x = json_object_get(msg, "contact"))) {
        it->content_type = "contacts";
        json_object_set_new(it->metadata, "contacts", json_pack("[O]", x));
    }
}

/* Fills the parts every message item shares; false when it cannot be identified. */
static inline bool
inb_tg_common(struct inb_item *it, const json_t *msg, const json_t *chat, const char *bot_id)
{
    char chat_id[INB_ID_BUF], msg_id[INB_ID_BUF];

    if (!inb_tg_int(json_object_get(chat, "id"), chat_id, sizeof(chat_id)) ||
        !inb_tg_int(json_object_get(msg, "message_id"), msg_id, sizeof(msg_id)))
        return false;
    snprintf(it->msg_buf, sizeof(it->msg_buf), "%s:%s", chat_id, msg_id);
    it->external_message_id = it->msg_buf;
    it->business_type = "telegram_bot";
    it->business_ext = bot_id;
    it->direction = "inbound";
    it->metadata = json_object();
    return true;
}

/* True for the chat types that map to a group conversation (SPEC 10). */
static inline bool
inb_tg_group_chat(const json_t *chat)
{
    const char *type = inb_str(chat, "type");

    return type != NULL && (strcmp(type, "group") == 0 || strcmp(type, "supergroup") == 0 ||
                            strcmp(type, "channel") == 0);
}

/* Sets the item's group chat (id and title) when chat is a group, supergroup or channel. */
static inline void
inb_tg_chat(struct inb_item *it, const json_t *chat)
{
    if (!inb_tg_group_chat(chat) ||
        !inb_tg_int(json_object_get(chat, "id"), it->chat_buf, sizeof(it->chat_buf)))
        return;
    it->chat_id = it->chat_buf;
    it->chat_title = inb_str(chat, "title");
}

/*
 * A group's upgrade to a supergroup: the old chat's last message names the new id
 * (migrate_to_chat_id), the new chat's first one the old id (migrate_from_chat_id).  Either way
 * the item says "chat_id continues as to_chat_id".  False when msg is no such message.
 */
static inline bool
inb_tg_migration(struct inb_item *it, const json_t *msg)
{
    const json_t *to = json_object_get(msg, "migrate_to_chat_id");
    const json_t *from = json_object_get(msg, "migrate_from_chat_id");
    const json_t *chat = json_object_get(json_object_get(msg, "chat"), "id");

    if (!json_is_integer(to) && !json_is_integer(from))
        return false;
    if (!inb_tg_int(json_is_integer(to) ? chat : from, it->chat_buf, sizeof(it->chat_buf)) ||
        !inb_tg_int(json_is_integer(to) ? to : chat, it->to_chat_buf, sizeof(it->to_chat_buf)))
        return false;
    it->kind = INB_ITEM_MIGRATE;
    it->chat_id = it->chat_buf;
    it->to_chat_id = it->to_chat_buf;
    return true;
}

/* A message or channel_post. */
static inline void
inb_tg_message(struct inb_items *out, const json_t *msg, const char *bot_id)
{
    struct inb_item *it = inb_items_add(out, INB_ITEM_MESSAGE);
    const json_t *reply = json_object_get(msg, "reply_to_message");
    char chat_id[INB_ID_BUF], reply_id[INB_ID_BUF];

    if (!inb_tg_common(it, msg, json_object_get(msg, "chat"), bot_id) ||
        !inb_tg_sender(msg, it)) {
        it->kind = INB_ITEM_SKIP;
        it->reason = "message without chat, message id or sender";
        return;
    }
    if (inb_tg_migration(it, msg))
        return;
    inb_tg_chat(it, json_object_get(msg, "chat"));
    inb_tg_content(it, msg);
    if (inb_tg_int(json_object_get(json_object_get(msg, "chat"), "id"), chat_id, sizeof(chat_id)) &&
        inb_tg_int(json_object_get(reply, "message_id"), reply_id, sizeof(reply_id)))
        json_object_set_new(it->metadata, "reply_to_external_id",
                            json_sprintf("%s:%s", chat_id, reply_id));
    if (json_object_get(msg, "forward_origin") != NULL ||
        json_object_get(msg, "forward_date") != NULL)
        json_object_set_new(it->metadata, "forwarded", json_true());
    inb_metadata_fit(it->metadata);
}

/*
 * An edited_message or edited_channel_post: the message as it now reads.  It becomes an edit of
 * the earlier message with the same "<chat_id>:<message_id>" (SPEC 10), its new text or caption.
 */
static inline void
inb_tg_edit(struct inb_items *out, const json_t *msg, const char *bot_id)
{
    struct inb_item *it;

    inb_tg_message(out, msg, bot_id);
    it = &out->v[out->n - 1];
    if (it->kind == INB_ITEM_MESSAGE)
        it->kind = INB_ITEM_EDIT;
}

/* A callback_query: a press of an inline keyboard button, stored as interactive. */
static inline void
inb_tg_callback(struct inb_items *out, const json_t *cb, const char *bot_id)
{
    struct inb_item *it = inb_items_add(out, INB_ITEM_MESSAGE);
    const json_t *from = json_object_get(cb, "from");
    const char *id = inb_str(cb, "id");
    json_t *ia, *wrap;

    if (id == NULL || !inb_tg_int(json_object_get(from, "id"), it->ext_buf, sizeof(it->ext_buf))) {
        it->kind = INB_ITEM_SKIP;
        it->reason = "callback query without id or sender";
        return;
    }
    if (strlen(id) > sizeof(it->msg_buf) - sizeof("callback:")) { /* cut, two would collide */
        it->kind = INB_ITEM_SKIP;
        it->reason = "callback query id too long";
        return;
    }
    /* Its own id, since the message it belongs to already has one. */
    snprintf(it->msg_buf, sizeof(it->msg_buf), "callback:%s", id);
    it->external_message_id = it->msg_buf;
    wrap = json_pack("{s:O}", "from", from); /* the sender rules read a Message's members */
    (void)inb_tg_sender(wrap, it);
    json_decref(wrap);
    it->customer_type = "telegram";
    it->customer_ext = it->ext_buf;
    it->business_type = "telegram_bot";
    it->business_ext = bot_id;
    it->direction = "inbound";
    it->content_type = "interactive";
    it->body = inb_str0(cb, "data");
    it->metadata = json_object();
    inb_tg_chat(it, json_object_get(json_object_get(cb, "message"), "chat")); /* a group's button */
    ia = json_pack("{s:s, s:s}", "type", "callback_query", "id", id);
    if (inb_str(cb, "data") != NULL)
        json_object_set_new(ia, "title", json_string(inb_str(cb, "data")));
    json_object_set_new(it->metadata, "interactive", ia);
}

/*
 * my_chat_member: the bot's membership in a chat changed.  In a private chat "kicked" means the
 * user blocked the bot and "member" that they let it back: customer metadata.blocked.  In groups
 * it says who removed the bot from the group, which says nothing about that user: skipped.
 */
static inline void
inb_tg_member(struct inb_items *out, const json_t *upd, const char *bot_id)
{
    const char *status = inb_str(json_object_get(upd, "new_chat_member"), "status");
    const char *type = inb_str(json_object_get(upd, "chat"), "type");
    struct inb_item *it;
    bool blocked;

    if (status == NULL || type == NULL || strcmp(type, "private") != 0 ||
        (strcmp(status, "kicked") != 0 && strcmp(status, "member") != 0)) {
        inb_items_skip(out, NULL, "chat member change that does not concern a customer");
        return;
    }
    blocked = strcmp(status, "kicked") == 0;
    it = inb_items_add(out, INB_ITEM_CUSTOMER);
    if (!inb_tg_sender(upd, it)) {
        it->kind = INB_ITEM_SKIP;
        it->reason = "chat member change without a sender";
        return;
    }
    it->business_type = "telegram_bot";
    it->business_ext = bot_id;
    if (it->customer_metadata == NULL)
        it->customer_metadata = json_object();
    json_object_set_new(it->customer_metadata, "blocked", json_boolean(blocked));
}

/*
 * Appends the items of one Update (the parsed body) to out.  bot_id is the number before ':' in
 * the bot token (borrowed).  Unknown kinds yield one skipped item.
 */
static inline void
inb_tg_normalise(const json_t *root, const char *bot_id, struct inb_items *out)
{
    const json_t *x;

    if (json_is_object(x = json_object_get(root, "message")) ||
        json_is_object(x = json_object_get(root, "channel_post")))
        inb_tg_message(out, x, bot_id);
    else if (json_is_object(x = json_object_get(root, "callback_query")))
        inb_tg_callback(out, x, bot_id);
    else if (json_is_object(x = json_object_get(root, "edited_message")) ||
             json_is_object(x = json_object_get(root, "edited_channel_post")))
        inb_tg_edit(out, x, bot_id);
    else if (json_is_object(x = json_object_get(root, "my_chat_member")))
        inb_tg_member(out, x, bot_id);
    else
        inb_items_skip(out, NULL, "update kind not handled");
}

#endif
