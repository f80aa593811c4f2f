/*
 * test_normalise.c - inbound-svc/whatsapp.h, telegram.h and signature.h: deliveries written here
 * from the documented shapes (WhatsApp Cloud API webhooks, Telegram Update) become the items of
 * SPEC 10, and signatures hold only over the exact bytes (pure logic, no database).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../inbound-svc/signature.h"
#include "deliveries.h"

static const char *
meta_str(const struct inb_item *it, const char *obj, const char *key)
{
    const json_t *o = obj ? json_object_get(it->metadata, obj) : it->metadata;

    return json_string_value(json_object_get(o, key));
}

static void
test_wa_text_identity_and_business(void **state)
{
    struct parsed p;
    const struct inb_item *it;

    (void)state;
    wa(&p, WA(CONTACT ",\"messages\":[" MSG("wamid.1", "text", "\"text\":{\"body\":\"héllo 👋 שלום\"}") "]"));
    assert_int_equal(p.items.n, 1);
    it = &p.items.v[0];
    assert_int_equal(it->kind, INB_ITEM_MESSAGE);
    assert_string_equal(it->external_message_id, "wamid.1");
    assert_string_equal(it->customer_type, "whatsapp");
    assert_string_equal(it->customer_ext, "4911");
    assert_string_equal(it->customer_name, "Ana");
    assert_string_equal(it->business_type, "whatsapp_business");
    assert_string_equal(it->business_ext, "PNID");
    assert_string_equal(it->business_name, "15550001111");
    assert_string_equal(it->direction, "inbound");
    assert_string_equal(it->content_type, "text");
    assert_string_equal(it->body, "héllo 👋 שלום");
    assert_string_equal(meta_str(it, NULL, "channel_raw_type"), "text");
    done(&p);
}

static void
test_wa_every_entry_change_message_and_status(void **state)
{
    static const char text[] =
        "{\"entry\":["
        "{\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"P1\"},"
        "\"messages\":[" MSG("a", "text", "\"text\":{\"body\":\"1\"}") "," MSG("b", "text", "\"text\":{\"body\":\"2\"}") "],"
        "\"statuses\":[{\"id\":\"s1\",\"status\":\"delivered\"}]}},"
        "{\"field\":\"message_template_status_update\",\"value\":{\"event\":\"APPROVED\"}},"
        "{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"P1\"},"
        "\"messages\":[" MSG("c", "text", "\"text\":{\"body\":\"3\"}") "]}}]},"
        "{\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"P2\"},"
        "\"statuses\":[{\"id\":\"s2\",\"status\":\"read\"},{\"id\":\"s3\",\"status\":\"weird\"}]}}]}]}";
    struct parsed p;

    (void)state;
    wa(&p, text);
    assert_int_equal(inb_items_count(&p.items, INB_ITEM_MESSAGE), 3);
    assert_int_equal(inb_items_count(&p.items, INB_ITEM_STATUS), 2);
    assert_int_equal(inb_items_count(&p.items, INB_ITEM_SKIP), 1);
    assert_string_equal(p.items.v[0].external_message_id, "a");
    assert_string_equal(p.items.v[1].external_message_id, "b");
    assert_string_equal(p.items.v[2].status, "delivered");
    assert_string_equal(p.items.v[3].external_message_id, "c");
    /* no contacts: the sender is the message's from, with the name left unchanged */
    assert_string_equal(p.items.v[0].customer_ext, "4911");
    assert_null(p.items.v[0].customer_name);
    assert_string_equal(p.items.v[4].external_message_id, "s2");
    assert_string_equal(p.items.v[4].status, "read");
    done(&p);
}

static void
test_wa_media_types(void **state)
{
    static const char *const types[][2] = { { "image", "image" },       { "video", "video" },
                                            { "document", "document" }, { "sticker", "sticker" },
                                            { "audio", "audio" },       { "voice", "voice" } };
    char buf[1024];
    struct parsed p;

    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        snprintf(buf, sizeof(buf),
                 WA(CONTACT ",\"messages\":[{\"from\":\"4911\",\"id\":\"m\",\"type\":\"%s\",\"%s\":"
                            "{\"id\":\"MEDIA\",\"mime_type\":\"x/y\",\"sha256\":\"H\",\"caption\":"
                            "\"cap\",\"filename\":\"f.pdf\"}}]"),
                 types[i][0], types[i][0]);
        wa(&p, buf);
        assert_int_equal(p.items.n, 1);
        assert_string_equal(p.items.v[0].content_type, types[i][1]);
        assert_string_equal(p.items.v[0].body, "cap");
        assert_string_equal(meta_str(&p.items.v[0], "media", "provider_media_id"), "MEDIA");
        assert_string_equal(meta_str(&p.items.v[0], "media", "mime_type"), "x/y");
        assert_string_equal(meta_str(&p.items.v[0], "media", "sha256"), "H");
        done(&p);
    }
    /* a voice note is an audio message with voice: true */
    wa(&p, WA(CONTACT ",\"messages\":[" MSG("v", "audio", "\"audio\":{\"id\":\"A\",\"voice\":true}") "]"));
    assert_string_equal(p.items.v[0].content_type, "voice");
    assert_string_equal(p.items.v[0].body, "");
    done(&p);
}

static void
test_wa_location_contacts_interactive_button(void **state)
{
    struct parsed p;
    const struct inb_item *it;

    (void)state;
    wa(&p, WA(CONTACT ",\"messages\":["
              MSG("l", "location", "\"location\":{\"latitude\":1.5,\"longitude\":-2.25,\"name\":\"N\",\"address\":\"A\"}") ","
              MSG("c", "contacts", "\"contacts\":[{\"name\":{\"formatted_name\":\"X\"}},{\"name\":{\"formatted_name\":\"Y\"}}]") ","
              MSG("i", "interactive", "\"context\":{\"id\":\"wamid.orig\"},\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":\"row1\",\"title\":\"Row one\"}}") ","
              MSG("b", "button", "\"button\":{\"payload\":\"P\",\"text\":\"Yes\"}") "]"));
    assert_int_equal(p.items.n, 4);
    it = &p.items.v[0];
    assert_string_equal(it->content_type, "location");
    assert_true(json_real_value(json_object_get(json_object_get(it->metadata, "location"), "latitude")) == 1.5);
    assert_string_equal(meta_str(it, "location", "address"), "A");
    it = &p.items.v[1];
    assert_string_equal(it->content_type, "contacts");
    assert_int_equal(json_array_size(json_object_get(it->metadata, "contacts")), 2);
    it = &p.items.v[2];
    assert_string_equal(it->content_type, "interactive");
    assert_string_equal(it->body, "Row one");
    assert_string_equal(meta_str(it, "interactive", "type"), "list_reply");
    assert_string_equal(meta_str(it, "interactive", "id"), "row1");
    assert_string_equal(meta_str(it, NULL, "reply_to_external_id"), "wamid.orig");
    it = &p.items.v[3];
    assert_string_equal(it->content_type, "button");
    assert_string_equal(it->body, "Yes");
    assert_string_equal(meta_str(it, "interactive", "id"), "P");
    done(&p);
}

static void
test_wa_reaction_unsupported_system_forwarded(void **state)
{
    struct parsed p;

    (void)state;
    wa(&p, WA(CONTACT ",\"messages\":["
              MSG("r", "reaction", "\"reaction\":{\"message_id\":\"wamid.t\",\"emoji\":\"👍\"}") ","
              MSG("r0", "reaction", "\"reaction\":{\"message_id\":\"wamid.t\"}") ","
              MSG("u", "unsupported", "\"unsupported\":{\"type\":\"poll\"}") ","
              MSG("n", "brand_new_type", "\"context\":{\"forwarded\":true}") ","
              MSG("s", "system", "\"system\":{\"body\":\"changed number\",\"type\":\"user_changed_number\"}") ","
              MSG("e", "edit", "\"edit\":{}") "]"));
    assert_int_equal(p.items.n, 6);
    assert_string_equal(p.items.v[0].content_type, "reaction");
    assert_string_equal(p.items.v[0].body, "👍");
    assert_string_equal(meta_str(&p.items.v[0], NULL, "reaction_to_external_id"), "wamid.t");
    assert_string_equal(p.items.v[1].body, "");
    assert_string_equal(p.items.v[2].content_type, "unsupported");
    assert_string_equal(meta_str(&p.items.v[2], NULL, "channel_raw_type"), "poll");
    assert_string_equal(p.items.v[3].content_type, "unsupported");
    assert_string_equal(meta_str(&p.items.v[3], NULL, "channel_raw_type"), "brand_new_type");
    assert_true(json_is_true(json_object_get(p.items.v[3].metadata, "forwarded")));
    assert_string_equal(p.items.v[4].direction, "system");
    assert_string_equal(p.items.v[4].content_type, "system");
    assert_int_equal(p.items.v[5].kind, INB_ITEM_SKIP);
    done(&p);
}

static void
test_wa_failed_status_error(void **state)
{
    struct parsed p;
    const json_t *e;

    (void)state;
    wa(&p, WA("\"statuses\":[{\"id\":\"w1\",\"status\":\"failed\",\"errors\":[{\"code\":131026,"
              "\"title\":\"Undeliverable\",\"message\":\"Message undeliverable\"}]},"
              "{\"id\":\"w2\",\"status\":\"failed\",\"errors\":[{\"code\":130429,\"title\":\"Rate\"}]},"
              "{\"id\":\"w3\",\"status\":\"failed\"}]"));
    assert_int_equal(p.items.n, 3);
    e = p.items.v[0].error;
    assert_string_equal(json_string_value(json_object_get(e, "provider")), "whatsapp");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "131026");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "Message undeliverable");
    assert_true(json_is_false(json_object_get(e, "retryable")));
    assert_true(json_is_true(json_object_get(p.items.v[1].error, "retryable")));
    assert_string_equal(json_string_value(json_object_get(p.items.v[1].error, "message")), "Rate");
    assert_non_null(p.items.v[2].error);
    done(&p);
}

static void
test_wa_wrong_shapes_yield_nothing_or_skips(void **state)
{
    static const char *const bodies[] = {
        "[]", "{}", "{\"entry\":{}}", "{\"entry\":[1,\"x\",null]}",
        "{\"entry\":[{\"changes\":[{\"value\":[]}]}]}",
        "{\"entry\":[{\"changes\":[{\"value\":{\"messages\":{}}}]}]}",
    };
    struct parsed p;

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        wa(&p, bodies[i]);
        assert_int_equal(p.items.n, 0);
        done(&p);
    }
    /* a message without a business phone number id, or without an id, cannot be stored */
    wa(&p, "{\"entry\":[{\"changes\":[{\"value\":{\"messages\":[" MSG("x", "text", "\"text\":{}") ",{\"type\":\"text\"}]}}]}]}");
    assert_int_equal(p.items.n, 2);
    assert_int_equal(inb_items_count(&p.items, INB_ITEM_SKIP), 2);
    done(&p);
}

static void
test_tg_text_caption_and_ids(void **state)
{
    struct parsed p;
    const struct inb_item *it;

    (void)state;
    tg(&p, "{\"update_id\":7,\"message\":{\"message_id\":55,\"from\":{\"id\":987654321012,"
           "\"is_bot\":false,\"first_name\":\"Ada\",\"last_name\":\"L\",\"username\":\"ada\","
           "\"language_code\":\"en\"},\"chat\":{\"id\":-1001,\"type\":\"private\"},\"date\":1,"
           "\"text\":\"hi ✓\"}}");
    assert_int_equal(p.items.n, 1);
    it = &p.items.v[0];
    assert_int_equal(it->kind, INB_ITEM_MESSAGE);
    assert_string_equal(it->external_message_id, "-1001:55");
    assert_string_equal(it->customer_type, "telegram");
    assert_string_equal(it->customer_ext, "987654321012");
    assert_string_equal(it->customer_name, "Ada L");
    assert_string_equal(json_string_value(json_object_get(it->customer_metadata, "username")), "ada");
    assert_string_equal(it->business_type, "telegram_bot");
    assert_string_equal(it->business_ext, "123456");
    assert_string_equal(it->content_type, "text");
    assert_string_equal(it->body, "hi ✓");
    done(&p);

    tg(&p, "{\"update_id\":8,\"channel_post\":{\"message_id\":3,\"sender_chat\":{\"id\":-100500,"
           "\"title\":\"News\",\"type\":\"channel\"},\"chat\":{\"id\":-100500,\"type\":\"channel\"},"
           "\"photo\":[{\"file_id\":\"small\"},{\"file_id\":\"big\"}],\"caption\":\"look\"}}");
    it = &p.items.v[0];
    assert_int_equal(it->kind, INB_ITEM_MESSAGE);
    assert_string_equal(it->customer_ext, "-100500");
    assert_string_equal(it->customer_name, "News");
    assert_string_equal(it->content_type, "image");
    assert_string_equal(it->body, "look");
    assert_string_equal(meta_str(it, "media", "provider_media_id"), "big");
    done(&p);
}

static void
test_tg_other_kinds(void **state)
{
    struct parsed p;

    (void)state;
    tg(&p, "{\"update_id\":9,\"edited_message\":{\"message_id\":1,\"chat\":{\"id\":1},\"text\":\"x\"}}");
    assert_int_equal(p.items.v[0].kind, INB_ITEM_EDIT); /* no from: the chat is the sender */
    assert_string_equal(p.items.v[0].external_message_id, "1:1");
    done(&p);
    tg(&p, "{\"update_id\":12,\"edited_message\":{\"message_id\":7,\"chat\":{\"id\":42},"
           "\"from\":{\"id\":42,\"first_name\":\"A\"},\"text\":\"now this\"}}");
    assert_int_equal(p.items.v[0].kind, INB_ITEM_EDIT);
    assert_string_equal(p.items.v[0].external_message_id, "42:7");
    assert_string_equal(p.items.v[0].body, "now this");
    done(&p);
    tg(&p, "{\"update_id\":10,\"poll\":{\"id\":\"1\"}}");
    assert_int_equal(p.items.n, 1);
    assert_int_equal(p.items.v[0].kind, INB_ITEM_SKIP);
    done(&p);
    tg(&p, "{\"update_id\":11,\"callback_query\":{\"id\":\"cb1\",\"from\":{\"id\":5,\"first_name\":"
           "\"B\"},\"data\":\"yes\"}}");
    assert_int_equal(p.items.v[0].kind, INB_ITEM_MESSAGE);
    assert_string_equal(p.items.v[0].content_type, "interactive");
    assert_string_equal(p.items.v[0].body, "yes");
    assert_string_equal(p.items.v[0].customer_ext, "5");
    done(&p);
    tg(&p, "{\"update_id\":12,\"message\":{\"message_id\":\"x\",\"chat\":{\"id\":1}}}");
    assert_int_equal(p.items.v[0].kind, INB_ITEM_SKIP);
    done(&p);
}

static void
test_signature_exact_bytes_only(void **state)
{
    static const char body[] = "{\"entry\": [ {\"id\": \"1\"} ], \"object\": \"whatsapp\"}";
    char sig[72], upper[72];
    json_t *j;
    char *again;

    (void)state;
    inb_sig_make("s3cret", body, strlen(body), sig);
    assert_true(inb_sig_check("s3cret", body, strlen(body), sig));
    for (size_t i = 0; i < strlen(sig); i++)
        upper[i] = i < 7 ? sig[i] : (char)(sig[i] >= 'a' ? sig[i] - 32 : sig[i]);
    upper[strlen(sig)] = '\0';
    assert_true(inb_sig_check("s3cret", body, strlen(body), upper));
    assert_false(inb_sig_check("other", body, strlen(body), sig));
    assert_false(inb_sig_check("s3cret", body, strlen(body) - 1, sig));
    assert_false(inb_sig_check("s3cret", body, strlen(body), NULL));
    assert_false(inb_sig_check("s3cret", body, strlen(body), ""));
    assert_false(inb_sig_check("s3cret", body, strlen(body), sig + 7)); /* no prefix */
    sig[70] = sig[70] == '0' ? '1' : '0';
    assert_false(inb_sig_check("s3cret", body, strlen(body), sig));
    sig[70] = '\0';
    assert_false(inb_sig_check("s3cret", body, strlen(body), sig)); /* short */
    /* the same JSON re-serialized by a JSON library is other bytes: it must not verify */
    inb_sig_make("s3cret", body, strlen(body), sig);
    j = json_loads(body, 0, NULL);
    again = json_dumps(j, JSON_COMPACT);
    assert_string_not_equal(again, body);
    assert_false(inb_sig_check("s3cret", again, strlen(again), sig));
    free(again);
    json_decref(j);
}

static void
test_token_equal(void **state)
{
    (void)state;
    assert_true(inb_token_equal("abc", "abc"));
    assert_false(inb_token_equal("abd", "abc"));
    assert_false(inb_token_equal("abcd", "abc"));
    assert_false(inb_token_equal("", "abc"));
    assert_false(inb_token_equal(NULL, "abc"));
}

static void
test_event_id_is_sha256_hex(void **state)
{
    char out[65];

    (void)state;
    inb_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wa_text_identity_and_business),
        cmocka_unit_test(test_wa_every_entry_change_message_and_status),
        cmocka_unit_test(test_wa_media_types),
        cmocka_unit_test(test_wa_location_contacts_interactive_button),
        cmocka_unit_test(test_wa_reaction_unsupported_system_forwarded),
        cmocka_unit_test(test_wa_failed_status_error),
        cmocka_unit_test(test_wa_wrong_shapes_yield_nothing_or_skips),
        cmocka_unit_test(test_tg_text_caption_and_ids),
        cmocka_unit_test(test_tg_other_kinds),
        cmocka_unit_test(test_signature_exact_bytes_only),
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_event_id_is_sha256_hex),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
