/*
 * test_channel_events.c - inbound-svc/whatsapp.h and telegram.h beyond plain messages: WhatsApp
 * edits, revokes, group messages, system messages and message echoes; Telegram group chats,
 * group migrations and my_chat_member.  The deliveries are written here from the documented
 * shapes (WhatsApp Cloud API webhook reference, Telegram Bot API Update/Message/ChatMemberUpdated).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "deliveries.h"

/* A Telegram message update with the given chat and extra members. */
#define TG_MSG(chat, rest)                                                                         \
    "{\"update_id\":1,\"message\":{\"message_id\":9,\"date\":1,\"from\":{\"id\":77,"               \
    "\"is_bot\":false,\"first_name\":\"Bo\"},\"chat\":" chat "," rest "}}"

static const char *
jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void
test_wa_edit_targets_the_original(void **state)
{
    struct parsed p;
    const struct inb_item *it;

    (void)state;
    wa(&p, WA(CONTACT ",\"messages\":["
              MSG("wamid.E1", "edit", "\"edit\":{\"original_message_id\":\"wamid.O1\","
                  "\"message\":{\"type\":\"text\",\"text\":{\"body\":\"fixed ✓\"}}}") ","
              MSG("wamid.E2", "edit", "\"edit\":{\"original_message_id\":\"wamid.O2\","
                  "\"message\":{\"context\":{\"id\":\"M0\"},\"type\":\"image\",\"image\":{"
                  "\"caption\":\"new caption\",\"id\":\"123\",\"mime_type\":\"image/jpeg\"}}}") ","
              MSG("wamid.E3", "edit", "\"edit\":{\"message\":{\"type\":\"text\"}}") ","
              MSG("wamid.E4", "edit", "\"edit\":{\"original_message_id\":\"wamid.O4\"}") "]"));
    assert_int_equal(p.items.n, 4);
    it = &p.items.v[0];
    assert_int_equal(it->kind, INB_ITEM_EDIT);
    assert_string_equal(it->external_message_id, "wamid.O1"); /* the target, not the edit's id */
    assert_string_equal(it->body, "fixed ✓");
    it = &p.items.v[1];
    assert_int_equal(it->kind, INB_ITEM_EDIT);
    assert_string_equal(it->external_message_id, "wamid.O2");
    assert_string_equal(it->body, "new caption");
    assert_int_equal(p.items.v[2].kind, INB_ITEM_SKIP); /* no original_message_id */
    assert_int_equal(p.items.v[3].kind, INB_ITEM_SKIP); /* no new message */
    done(&p);
}

static void
test_wa_revoke_targets_the_original(void **state)
{
    struct parsed p;

    (void)state;
    wa(&p, WA(CONTACT ",\"messages\":["
              MSG("wamid.R1", "revoke", "\"revoke\":{\"original_message_id\":\"wamid.O9\"}") ","
              MSG("wamid.R2", "revoke", "\"revoke\":{}") "]"));
    assert_int_equal(p.items.n, 2);
    assert_int_equal(p.items.v[0].kind, INB_ITEM_REVOKE);
    assert_string_equal(p.items.v[0].external_message_id, "wamid.O9");
    assert_int_equal(p.items.v[1].kind, INB_ITEM_SKIP);
    done(&p);
}

static void
test_wa_group_message_names_its_chat(void **state)
{
    struct parsed p;

    (void)state;
    wa(&p, WA(CONTACT ",\"messages\":["
              "{\"from\":\"4911\",\"group_id\":\"120363040000000000@g.us\",\"id\":\"wamid.G\","
              "\"timestamp\":\"1\",\"type\":\"text\",\"text\":{\"body\":\"hi all\"}},"
              MSG("wamid.D", "text", "\"text\":{\"body\":\"just us\"}") "]"));
    assert_int_equal(p.items.n, 2);
    assert_int_equal(p.items.v[0].kind, INB_ITEM_MESSAGE);
    assert_string_equal(p.items.v[0].chat_id, "120363040000000000@g.us");
    assert_string_equal(p.items.v[0].customer_ext, "4911"); /* the sender, as a participant */
    assert_string_equal(p.items.v[0].body, "hi all");
    assert_null(p.items.v[1].chat_id); /* the direct conversation */
    done(&p);
}

static void
test_wa_system_number_change_records_the_new_id(void **state)
{
    struct parsed p;
    const struct inb_item *it;

    (void)state;
    wa(&p, WA("\"messages\":["
              MSG("s1", "system", "\"system\":{\"body\":\"User A changed from 4911 to 4922\","
                  "\"wa_id\":\"4922\",\"type\":\"user_changed_number\"}") ","
              MSG("s2", "system", "\"system\":{\"body\":\"changed\",\"new_wa_id\":\"4933\","
                  "\"type\":\"customer_changed_number\"}") ","
              MSG("s3", "system", "\"identity\":{\"acknowledged\":true},\"system\":{\"body\":"
                  "\"User identity changed\",\"type\":\"customer_identity_changed\"}") "]"));
    assert_int_equal(p.items.n, 3);
    it = &p.items.v[0];
    assert_string_equal(it->direction, "system");
    assert_string_equal(it->content_type, "system");
    assert_string_equal(it->body, "User A changed from 4911 to 4922");
    assert_string_equal(it->customer_ext, "4911"); /* the customer as known so far */
    assert_string_equal(jstr(it->customer_metadata, "new_wa_id"), "4922");
    assert_string_equal(jstr(p.items.v[1].customer_metadata, "new_wa_id"), "4933");
    assert_string_equal(p.items.v[2].direction, "system");
    assert_null(p.items.v[2].customer_metadata); /* an identity change names no new number */
    done(&p);
}

static void
test_wa_echoes_are_outbound_and_sent(void **state)
{
    struct parsed p;
    const struct inb_item *it;

    (void)state;
    wa(&p, WA_FIELD("smb_message_echoes",
                    CONTACT ",\"message_echoes\":[{\"from\":\"15550001111\",\"to\":\"4911\","
                    "\"id\":\"wamid.ECHO1\",\"timestamp\":\"1\",\"type\":\"text\","
                    "\"text\":{\"body\":\"we are open\"}},"
                    "{\"from\":\"15550001111\",\"to_user_id\":\"US.1\",\"id\":\"wamid.ECHO2\","
                    "\"timestamp\":\"1\",\"type\":\"image\",\"image\":{\"id\":\"M77\","
                    "\"mime_type\":\"image/png\"}}]"));
    assert_int_equal(p.items.n, 2);
    it = &p.items.v[0];
    assert_int_equal(it->kind, INB_ITEM_MESSAGE);
    assert_string_equal(it->external_message_id, "wamid.ECHO1");
    assert_string_equal(it->direction, "outbound");
    assert_string_equal(it->status, "sent");
    assert_string_equal(it->customer_ext, "4911"); /* the recipient, never the business number */
    assert_string_equal(it->customer_name, "Ana");
    assert_string_equal(it->business_ext, "PNID");
    assert_string_equal(it->body, "we are open");
    it = &p.items.v[1];
    assert_string_equal(it->customer_ext, "US.1");
    assert_null(it->customer_name); /* the one contact is not this recipient */
    assert_string_equal(it->content_type, "image");
    assert_string_equal(jstr(json_object_get(it->metadata, "media"), "provider_media_id"), "M77");
    done(&p);
    /* a plain message is never outbound; an echo under another field is not an echo */
    wa(&p, WA_FIELD("message_template_status_update", "\"message_echoes\":[{\"to\":\"4911\","
                    "\"id\":\"x\",\"type\":\"text\",\"text\":{\"body\":\"b\"}}]"));
    assert_int_equal(p.items.n, 0);
    done(&p);
}

static void
test_tg_group_chats_name_their_conversation(void **state)
{
    static const char *const groups[] = {
        TG_MSG("{\"id\":-5001,\"title\":\"Team\",\"type\":\"group\"}", "\"text\":\"a\""),
        TG_MSG("{\"id\":-1005001,\"title\":\"Team\",\"type\":\"supergroup\"}", "\"text\":\"a\""),
    };
    struct parsed p;

    (void)state;
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        tg(&p, groups[i]);
        assert_int_equal(p.items.v[0].kind, INB_ITEM_MESSAGE);
        assert_string_equal(p.items.v[0].chat_id, i == 0 ? "-5001" : "-1005001");
        assert_string_equal(p.items.v[0].chat_title, "Team");
        assert_string_equal(p.items.v[0].customer_ext, "77"); /* the sender joins the group */
        done(&p);
    }
    tg(&p, TG_MSG("{\"id\":77,\"first_name\":\"Bo\",\"type\":\"private\"}", "\"text\":\"a\""));
    assert_null(p.items.v[0].chat_id);
    done(&p);
    tg(&p, "{\"update_id\":2,\"channel_post\":{\"message_id\":4,\"date\":1,\"sender_chat\":{"
           "\"id\":-1009,\"title\":\"News\",\"type\":\"channel\"},\"chat\":{\"id\":-1009,"
           "\"title\":\"News\",\"type\":\"channel\"},\"text\":\"posted\"}}");
    assert_string_equal(p.items.v[0].chat_id, "-1009");
    assert_string_equal(p.items.v[0].customer_ext, "-1009");
    done(&p);
    /* a button pressed under a group's message belongs to the group */
    tg(&p, "{\"update_id\":4,\"callback_query\":{\"id\":\"cb9\",\"from\":{\"id\":77,"
           "\"first_name\":\"Bo\"},\"message\":{\"message_id\":3,\"date\":1,\"chat\":{"
           "\"id\":-5001,\"title\":\"Team\",\"type\":\"group\"}},\"data\":\"yes\"}}");
    assert_int_equal(p.items.v[0].kind, INB_ITEM_MESSAGE);
    assert_string_equal(p.items.v[0].chat_id, "-5001");
    assert_string_equal(p.items.v[0].body, "yes");
    done(&p);
    /* an edit in a group still targets "<chat_id>:<message_id>" */
    tg(&p, "{\"update_id\":3,\"edited_message\":{\"message_id\":9,\"date\":1,\"from\":{\"id\":77},"
           "\"chat\":{\"id\":-5001,\"type\":\"group\"},\"text\":\"b\"}}");
    assert_int_equal(p.items.v[0].kind, INB_ITEM_EDIT);
    assert_string_equal(p.items.v[0].external_message_id, "-5001:9");
    done(&p);
}

static void
test_tg_migration_either_side(void **state)
{
    struct parsed p;

    (void)state;
    tg(&p, TG_MSG("{\"id\":-599075523,\"title\":\"test\",\"type\":\"group\"}",
                  "\"migrate_to_chat_id\":-1001555296434"));
    assert_int_equal(p.items.n, 1);
    assert_int_equal(p.items.v[0].kind, INB_ITEM_MIGRATE);
    assert_string_equal(p.items.v[0].chat_id, "-599075523");
    assert_string_equal(p.items.v[0].to_chat_id, "-1001555296434");
    assert_string_equal(p.items.v[0].customer_ext, "77");
    done(&p);
    tg(&p, TG_MSG("{\"id\":-1001555296434,\"title\":\"test\",\"type\":\"supergroup\"}",
                  "\"migrate_from_chat_id\":-599075523"));
    assert_int_equal(p.items.v[0].kind, INB_ITEM_MIGRATE);
    assert_string_equal(p.items.v[0].chat_id, "-599075523");
    assert_string_equal(p.items.v[0].to_chat_id, "-1001555296434");
    done(&p);
    tg(&p, TG_MSG("{\"id\":-5,\"type\":\"group\"}", "\"migrate_to_chat_id\":\"-100\""));
    assert_int_equal(p.items.v[0].kind, INB_ITEM_MESSAGE); /* not a number: no migration */
    done(&p);
}

static void
test_tg_my_chat_member_blocks_and_unblocks(void **state)
{
#define MEMBER(chat_type, status)                                                                  \
    "{\"update_id\":5,\"my_chat_member\":{\"chat\":{\"id\":42,\"type\":\"" chat_type "\"},"        \
    "\"from\":{\"id\":42,\"is_bot\":false,\"first_name\":\"FN\",\"last_name\":\"LN\"},"           \
    "\"date\":1,\"old_chat_member\":{\"user\":{\"id\":1,\"is_bot\":true,\"first_name\":\"b\"},"   \
    "\"status\":\"member\"},\"new_chat_member\":{\"user\":{\"id\":1,\"is_bot\":true,"             \
    "\"first_name\":\"b\"},\"status\":\"" status "\"}}}"
    struct parsed p;
    const struct inb_item *it;

    (void)state;
    tg(&p, MEMBER("private", "kicked"));
    assert_int_equal(p.items.n, 1);
    it = &p.items.v[0];
    assert_int_equal(it->kind, INB_ITEM_CUSTOMER);
    assert_string_equal(it->customer_type, "telegram");
    assert_string_equal(it->customer_ext, "42");
    assert_string_equal(it->customer_name, "FN LN");
    assert_true(json_is_true(json_object_get(it->customer_metadata, "blocked")));
    done(&p);
    tg(&p, MEMBER("private", "member"));
    assert_int_equal(p.items.v[0].kind, INB_ITEM_CUSTOMER);
    assert_true(json_is_false(json_object_get(p.items.v[0].customer_metadata, "blocked")));
    done(&p);
    tg(&p, MEMBER("group", "kicked")); /* the bot removed from a group: no customer blocked */
    assert_int_equal(p.items.v[0].kind, INB_ITEM_SKIP);
    done(&p);
    tg(&p, MEMBER("private", "administrator"));
    assert_int_equal(p.items.v[0].kind, INB_ITEM_SKIP);
    done(&p);
#undef MEMBER
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wa_edit_targets_the_original),
        cmocka_unit_test(test_wa_revoke_targets_the_original),
        cmocka_unit_test(test_wa_group_message_names_its_chat),
        cmocka_unit_test(test_wa_system_number_change_records_the_new_id),
        cmocka_unit_test(test_wa_echoes_are_outbound_and_sent),
        cmocka_unit_test(test_tg_group_chats_name_their_conversation),
        cmocka_unit_test(test_tg_migration_either_side),
        cmocka_unit_test(test_tg_my_chat_member_blocks_and_unblocks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
