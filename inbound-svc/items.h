/*
 * items.h - the normalised form of a channel delivery (SPEC 10), shared by whatsapp.h and
 * telegram.h, and what the workers turn into service calls.
 *
 * A delivery (one webhook body) becomes a list of items: a message to create, a status to apply,
 * an edit or revoke of an earlier message, a group chat's move to a new chat id, a change of the
 * customer alone (Telegram my_chat_member), or something skipped (with the reason, for the
 * log).  Strings are borrowed from the parsed delivery (keep its root alive while the items are
 * used) or held in the item's own buffers; metadata and error are new references owned by the
 * list.  Header-only (static inline) so the unit tests and the fuzzer reach it while linking only
 * libparley.  Not thread-safe per list.
 */
#ifndef INBOUND_ITEMS_H
#define INBOUND_ITEMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parley/err.h"
#include "parley/json.h"

#define INB_ID_BUF 64

enum inb_item_kind {
    INB_ITEM_MESSAGE,  /* create (direction inbound, system, or outbound for an echo) */
    INB_ITEM_STATUS,   /* status of the message external_message_id */
    INB_ITEM_EDIT,     /* new body of the message external_message_id */
    INB_ITEM_REVOKE,   /* the message external_message_id was deleted by its sender */
    INB_ITEM_MIGRATE,  /* the group chat chat_id now continues as to_chat_id */
    INB_ITEM_CUSTOMER, /* only the customer changes (customer_metadata) */
    INB_ITEM_SKIP
};

struct inb_item {
    enum inb_item_kind kind;
    const char *external_message_id; /* provider message id (message; target of the others) */
    /* The customer who sent it: external_type, external_id, name (NULL = leave unchanged). */
    const char *customer_type;
    const char *customer_ext;
    const char *customer_name;
    json_t *customer_metadata; /* object to merge, or NULL */
    /* The business account (whatsapp_business / telegram_bot). */
    const char *business_type;
    const char *business_ext;
    const char *business_name;
    /* The group chat it belongs to (NULL: the direct conversation), and the chat's title. */
    const char *chat_id;
    const char *chat_title;
    const char *to_chat_id; /* a migration's new chat id */
    /* A message (and the new content of an edit). */
    const char *direction;    /* "inbound", "system", or "outbound" (an echo) */
    const char *content_type; /* SPEC 10 vocabulary */
    const char *body;         /* never NULL for a message */
    json_t *metadata;         /* object, never NULL for a message */
    /* A status. */
    const char *status; /* sent | delivered | read | played | failed; "sent" for an echo */
    json_t *error;      /* with failed: {"provider","code","message","retryable"} */
    /* A skip. */
    const char *reason;
    /* Storage for ids the provider sends as numbers (Telegram). */
    char ext_buf[INB_ID_BUF];
    char msg_buf[2 * INB_ID_BUF];
    char name_buf[512];
    char chat_buf[INB_ID_BUF];
    char to_chat_buf[INB_ID_BUF];
};

struct inb_items {
    struct inb_item *v;
    size_t n, cap;
};

#define INB_ITEMS_INIT { NULL, 0, 0 }

/* Appends a zeroed item and returns it (the pointer is valid until the next append). */
static inline struct inb_item *
inb_items_add(struct inb_items *l, enum inb_item_kind kind)
{
    struct inb_item *it;

    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        PL_ASSERT(l->v != NULL);
    }
    it = &l->v[l->n++];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    return it;
}

/* Appends a skipped item with a static reason. */
static inline void
inb_items_skip(struct inb_items *l, const char *id, const char *reason)
{
    struct inb_item *it = inb_items_add(l, INB_ITEM_SKIP);

    it->external_message_id = id;
    it->reason = reason;
}

/* Releases the list's storage and references; NULL-safe, and the list may be reused. */
static inline void
inb_items_cleanup(struct inb_items *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        json_decref(l->v[i].customer_metadata);
        json_decref(l->v[i].metadata);
        json_decref(l->v[i].error);
    }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Number of items of a kind. */
static inline size_t
inb_items_count(const struct inb_items *l, enum inb_item_kind kind)
{
    size_t k = 0;

    for (size_t i = 0; i < l->n; i++)
        k += l->v[i].kind == kind;
    return k;
}

/* The string member name of obj, or NULL when absent or not a string. */
static inline const char *
inb_str(const json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

/* The string member, or "" when absent. */
static inline const char *
inb_str0(const json_t *obj, const char *name)
{
    const char *s = inb_str(obj, name);

    return s ? s : "";
}

/* Sets key of obj to a copy of the member name of src when that member is present. */
static inline void
inb_copy(json_t *obj, const char *key, const json_t *src, const char *name)
{
    json_t *v = json_object_get(src, name);

    if (v != NULL && !json_is_null(v))
        json_object_set(obj, key, v);
}

/* Serialized size of j in bytes (compact), as messaging-svc measures metadata. */
static inline size_t
inb_json_size(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    size_t n = s ? strlen(s) : 0;

    free(s);
    return n;
}

/*
 * Keeps metadata within the 16 KiB of SPEC 10: a contact card list too large loses cards from the
 * end (the rest of the message is kept rather than refused by messaging-svc).
 */
static inline void
inb_metadata_fit(json_t *meta)
{
    json_t *cards = json_object_get(meta, "contacts");

    while (inb_json_size(meta) > PL_METADATA_MAX && json_array_size(cards) > 0)
        json_array_remove(cards, json_array_size(cards) - 1);
    if (inb_json_size(meta) > PL_METADATA_MAX)
        json_object_clear(meta);
}

#endif
