/*
 * fuzz_whatsapp.c - libFuzzer target for inbound-svc/whatsapp.h, the normaliser of WhatsApp
 * webhook deliveries (untrusted JSON), and for the X-Hub-Signature-256 parser of signature.h.
 *
 * Any input that parses as JSON is normalised; every item must then be well formed (a message has
 * its ids, a content type from the vocabulary, a body, object metadata within 16 KiB; a status a
 * known status).  The input is also tried as a signature header, which must never verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../inbound-svc/signature.h"
#include "../../inbound-svc/whatsapp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = { "text",     "image",       "audio",  "voice",
                                             "video",    "document",    "sticker", "location",
                                             "contacts", "interactive", "button", "reaction",
                                             "order",    "system",      "unsupported", NULL };

static void
check_item(const struct inb_item *it)
{
    bool known = false;

    switch (it->kind) {
    case INB_ITEM_MESSAGE:
        for (int i = 0; content_types[i] != NULL; i++)
            known = known || strcmp(it->content_type, content_types[i]) == 0;
        if (!known || it->external_message_id == NULL || it->customer_ext == NULL ||
            it->business_ext == NULL || it->body == NULL || !json_is_object(it->metadata) ||
            inb_json_size(it->metadata) > PL_METADATA_MAX || it->direction == NULL)
            abort();
        break;
    case INB_ITEM_STATUS:
        if (it->external_message_id == NULL || it->status == NULL ||
            (strcmp(it->status, "failed") == 0) != (it->error != NULL))
            abort();
        break;
    case INB_ITEM_EDIT: /* the target and its new body */
        if (it->external_message_id == NULL || it->body == NULL)
            abort();
        break;
    case INB_ITEM_REVOKE:
        if (it->external_message_id == NULL)
            abort();
        break;
    case INB_ITEM_SKIP:
        if (it->reason == NULL)
            abort();
        break;
    default:
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inb_items items = INB_ITEMS_INIT;
    unsigned char sig[INB_SIG_LEN];
    json_t *root = json_loadb((const char *)data, size, 0, NULL);
    char *header;

    if (root != NULL) {
        inb_wa_normalise(root, &items);
        for (size_t i = 0; i < items.n; i++)
            check_item(&items.v[i]);
        inb_items_cleanup(&items);
        json_decref(root);
    }
    header = malloc(size + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, size);
    header[size] = '\0';
    (void)inb_sig_parse(header, sig);
    if (inb_sig_check("fuzz-secret", data, size, header))
        abort(); /* would mean the fuzzer forged an HMAC */
    free(header);
    return 0;
}
