/*
 * fuzz_telegram.c - libFuzzer target for inbound-svc/telegram.h, the normaliser of Telegram Bot
 * API updates (untrusted JSON posted to /api/webhooks/telegram).
 *
 * Any input that parses as JSON is normalised as one Update; every item must then be what the
 * workers can send on without further checks: a message or an edit has its
 * "<chat_id>:<message_id>" (or "callback:<id>") external id, a telegram customer, the bot as the
 * business account, a content type from the SPEC 10 vocabulary, a body, and object metadata
 * within 16 KiB; a skip has its reason.  Every string an item hands on must be valid UTF-8,
 * since the workers put it into JSON (jansson refuses anything else).  An update yields at least
 * one item, whatever its kind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../inbound-svc/telegram.h"
#include "parley/json.h"

#define BOT_ID "123456"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = { "text",     "image",       "audio",  "voice",
                                             "video",    "document",    "sticker", "location",
                                             "contacts", "interactive", "button", "reaction",
                                             "order",    "system",      "unsupported", NULL };

/* True for NULL (absent) or a valid UTF-8 string. */
static bool
utf8_or_null(const char *s)
{
    return s == NULL || pl_utf8_valid(s, strlen(s));
}

static bool
known_content_type(const char *ct)
{
    for (int i = 0; ct != NULL && content_types[i] != NULL; i++)
        if (strcmp(ct, content_types[i]) == 0)
            return true;
    return false;
}

/* A message or an edit, as the workers read it. */
static void
check_message(const struct inb_item *it)
{
    if (!known_content_type(it->content_type) || it->external_message_id == NULL ||
        it->customer_ext == NULL || it->body == NULL || it->direction == NULL ||
        strcmp(it->direction, "inbound") != 0)
        abort();
    if (it->customer_type == NULL || strcmp(it->customer_type, "telegram") != 0 ||
        it->business_type == NULL || strcmp(it->business_type, "telegram_bot") != 0 ||
        it->business_ext == NULL || strcmp(it->business_ext, BOT_ID) != 0)
        abort();
    if (!json_is_object(it->metadata) || inb_json_size(it->metadata) > PL_METADATA_MAX)
        abort();
    if (it->customer_metadata != NULL && !json_is_object(it->customer_metadata))
        abort();
    if (!utf8_or_null(it->external_message_id) || !utf8_or_null(it->customer_ext) ||
        !utf8_or_null(it->customer_name) || !utf8_or_null(it->body) ||
        !utf8_or_null(it->chat_id) || !utf8_or_null(it->chat_title))
        abort();
    /* A Message id is unique only in its chat: "<chat_id>:<message_id>" or "callback:<id>". */
    if (strchr(it->external_message_id, ':') == NULL)
        abort();
}

static void
check_item(const struct inb_item *it)
{
    switch (it->kind) {
    case INB_ITEM_MESSAGE:
    case INB_ITEM_EDIT:
        check_message(it);
        break;
    case INB_ITEM_SKIP:
        if (it->reason == NULL)
            abort();
        break;
    case INB_ITEM_STATUS: /* Telegram has no statuses */
        abort();
    default: /* the kinds that change a chat or a customer only */
        if (!utf8_or_null(it->external_message_id) || !utf8_or_null(it->customer_ext) ||
            !utf8_or_null(it->customer_name) || !utf8_or_null(it->chat_id) ||
            !utf8_or_null(it->chat_title) || !utf8_or_null(it->to_chat_id))
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inb_items items = INB_ITEMS_INIT;
    json_t *root = json_loadb((const char *)data, size, 0, NULL);

    if (root == NULL)
        return 0;
    inb_tg_normalise(root, BOT_ID, &items);
    if (items.n == 0) /* even an unknown kind is accounted for, as a skip */
        abort();
    for (size_t i = 0; i < items.n; i++)
        check_item(&items.v[i]);
    inb_items_cleanup(&items);
    json_decref(root);
    return 0;
}
