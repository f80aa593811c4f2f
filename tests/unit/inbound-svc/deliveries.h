/*
 * deliveries.h - the harness the normaliser tests share: deliveries written from the documented
 * shapes (WhatsApp Cloud API webhook, Telegram Update) and parsing them into items.  Included by
 * test_normalise.c and test_channel_events.c after cmocka.h.
 */
#ifndef TESTS_INBOUND_DELIVERIES_H
#define TESTS_INBOUND_DELIVERIES_H

#include "../../../inbound-svc/telegram.h"
#include "../../../inbound-svc/whatsapp.h"

/* A WhatsApp delivery: one entry, one change of the given field, with the given value members. */
#define WA_FIELD(field, value)                                                                     \
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"WABA\",\"changes\":[{"        \
    "\"field\":\"" field "\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"         \
    "\"display_phone_number\":\"15550001111\",\"phone_number_id\":\"PNID\"}," value "}}]}]}"
#define WA(value) WA_FIELD("messages", value)
#define CONTACT "\"contacts\":[{\"profile\":{\"name\":\"Ana\"},\"wa_id\":\"4911\"}]"
#define MSG(id, type, rest)                                                                        \
    "{\"from\":\"4911\",\"id\":\"" id "\",\"timestamp\":\"1\",\"type\":\"" type "\"," rest "}"

/* A parsed delivery and its items; done() releases both. */
struct parsed {
    json_t *root;
    struct inb_items items;
};

static inline json_t *
parse(const char *text)
{
    json_error_t e;
    json_t *root = json_loads(text, 0, &e);

    if (root == NULL)
        fail_msg("bad test JSON: %s at %d: %s", e.text, e.position, text);
    return root;
}

static inline void
wa(struct parsed *p, const char *text)
{
    p->root = parse(text);
    p->items = (struct inb_items)INB_ITEMS_INIT;
    inb_wa_normalise(p->root, &p->items);
}

/* Bot id 123456. */
static inline void
tg(struct parsed *p, const char *text)
{
    p->root = parse(text);
    p->items = (struct inb_items)INB_ITEMS_INIT;
    inb_tg_normalise(p->root, "123456", &p->items);
}

static inline void
done(struct parsed *p)
{
    inb_items_cleanup(&p->items);
    json_decref(p->root);
}

#endif
