/*
 * test_outbound.c - inbound-svc/outbound_rules.h: the route of an outbound message (SPEC 10), the
 * classification of WhatsApp and Telegram answers into sent / retry / failed, Retry-After, and
 * the backoff (pure logic, no network or database).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../inbound-svc/outbound_rules.h"

static json_t *
parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);

    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

static void
wa(long status, const char *body, long retry_after, struct outb_result *r)
{
    json_t *j = body ? parse(body) : NULL;

    memset(r, 0, sizeof(*r));
    outb_classify_whatsapp(status, j, retry_after, r);
    json_decref(j);
}

static void
tg(long status, const char *body, struct outb_result *r)
{
    json_t *j = body ? parse(body) : NULL;

    memset(r, 0, sizeof(*r));
    outb_classify_telegram(status, j, "777", -1, r);
    json_decref(j);
}

#define GRAPH_ERROR(code)                                                                          \
    "{\"error\":{\"message\":\"m " #code "\",\"type\":\"OAuthException\",\"code\":" #code "}}"

static void
test_whatsapp_success_and_odd_success(void **state)
{
    struct outb_result r;

    (void)state;
    wa(200, "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"1\",\"wa_id\":\"1\"}],"
            "\"messages\":[{\"id\":\"wamid.ABC\"}]}", -1, &r);
    assert_int_equal(r.cls, OUTB_SENT);
    assert_string_equal(r.provider_message_id, "wamid.ABC");
    /* Accepted without an id: never sent again (it may have gone out). */
    wa(200, "{\"messages\":[]}", -1, &r);
    assert_int_equal(r.cls, OUTB_PERMANENT);
    assert_string_equal(r.code, "invalid_response");
}

static void
test_whatsapp_retry_codes_and_statuses(void **state)
{
    static const char *const retry[] = { GRAPH_ERROR(4), GRAPH_ERROR(80007), GRAPH_ERROR(130429),
                                         GRAPH_ERROR(131048), GRAPH_ERROR(131056) };
    static const char *const permanent[] = { GRAPH_ERROR(100), GRAPH_ERROR(131026),
                                             GRAPH_ERROR(131030), GRAPH_ERROR(131047),
                                             GRAPH_ERROR(131051), GRAPH_ERROR(190) };
    struct outb_result r;

    (void)state;
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
        wa(400, retry[i], -1, &r);
        assert_int_equal(r.cls, OUTB_RETRY);
    }
    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++) {
        wa(400, permanent[i], -1, &r);
        assert_int_equal(r.cls, OUTB_PERMANENT);
    }
    wa(400, GRAPH_ERROR(131026), -1, &r);
    assert_string_equal(r.code, "131026");
    assert_string_equal(r.message, "m 131026");
    assert_int_equal(r.http_status, 400);
    wa(503, NULL, 7, &r); /* no JSON answer (an HTML error page): the HTTP status decides */
    assert_int_equal(r.cls, OUTB_RETRY);
    assert_string_equal(r.code, "503");
    assert_int_equal(r.retry_after_s, 7);
    wa(429, GRAPH_ERROR(100), 1, &r); /* 429 is retried whatever the code */
    assert_int_equal(r.cls, OUTB_RETRY);
    wa(401, GRAPH_ERROR(190), -1, &r);
    assert_int_equal(r.cls, OUTB_PERMANENT);
}

static void
test_telegram_answers(void **state)
{
    struct outb_result r;

    (void)state;
    tg(200,
       "{\"ok\":true,\"result\":{\"message_id\":42,\"chat\":{\"id\":-1001,\"type\":\"group\"}}}",
       &r);
    assert_int_equal(r.cls, OUTB_SENT);
    assert_string_equal(r.provider_message_id, "-1001:42");
    tg(200, "{\"ok\":true,\"result\":{\"message_id\":5}}", &r); /* no chat: the one we sent to */
    assert_string_equal(r.provider_message_id, "777:5");
    tg(429, "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry after 9\","
            "\"parameters\":{\"retry_after\":9}}", &r);
    assert_int_equal(r.cls, OUTB_RETRY);
    assert_int_equal(r.retry_after_s, 9);
    tg(403, "{\"ok\":false,\"error_code\":403,\"description\":\"Forbidden: bot was blocked by the "
            "user\"}", &r);
    assert_int_equal(r.cls, OUTB_PERMANENT);
    assert_string_equal(r.code, "403");
    assert_string_equal(r.message, "Forbidden: bot was blocked by the user");
    tg(400, "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat not found\"}",
       &r);
    assert_int_equal(r.cls, OUTB_PERMANENT);
    tg(502, NULL, &r);
    assert_int_equal(r.cls, OUTB_RETRY);
    assert_string_equal(r.code, "502");
}

static void
test_retry_after_and_backoff(void **state)
{
    (void)state;
    assert_int_equal(outb_retry_after_parse(" 120"), 120);
    assert_int_equal(outb_retry_after_parse("0\r\n"), 0);
    assert_int_equal(outb_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
    assert_int_equal(outb_retry_after_parse("-3"), -1);
    assert_int_equal(outb_retry_after_parse(NULL), -1);
    assert_int_equal(outb_retry_after_parse("99999999"), OUTB_RETRY_AFTER_MAX_S);
    /* base * 2^(n-1), capped; rnd 0 takes no jitter. */
    assert_int_equal(outb_backoff_ms(1000, 60000, 1, -1, 0), 1000);
    assert_int_equal(outb_backoff_ms(1000, 60000, 3, -1, 0), 4000);
    assert_int_equal(outb_backoff_ms(1000, 60000, 40, -1, 0), 60000);
    /* Jitter takes at most a fifth off. */
    for (unsigned rnd = 0; rnd < 5000; rnd += 7) {
        long d = outb_backoff_ms(1000, 60000, 2, -1, rnd);

        assert_true(d >= 1600 && d <= 2000);
    }
    /* The provider's wait wins when longer. */
    assert_int_equal(outb_backoff_ms(1000, 60000, 1, 30, 0), 30000);
    assert_int_equal(outb_backoff_ms(1000, 60000, 3, 1, 0), 4000);
}

static void
test_error_text_cut_on_a_character(void **state)
{
    struct outb_result r;
    char msg[400];

    (void)state;
    memset(msg, 'a', sizeof(msg));
    memcpy(msg + 238, "\xc3\xa9\xc3\xa9", 4); /* é straddles the 240-byte field */
    msg[sizeof(msg) - 1] = '\0';
    memset(&r, 0, sizeof(r));
    outb_result_error(&r, OUTB_PERMANENT, "1", msg);
    assert_int_equal(strlen(r.message), 238);
}

/* A conversation (participants with customer ids c1..) and the batch answer of their customers. */
static json_t *
conv(const char *metadata)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "{\"id\":\"x\",\"metadata\":%s,\"participants\":["
             "{\"customer_id\":\"biz\",\"left_at\":null},"
             "{\"customer_id\":\"wa\",\"left_at\":null},"
             "{\"customer_id\":\"gone\",\"left_at\":\"2026-11-23T10:00:00.000000Z\"},"
             "{\"customer_id\":\"tg\",\"left_at\":null}]}",
             metadata);
    return parse(text);
}

static json_t *
customers(bool with_tg, bool with_biz)
{
    json_t *c = parse("[{\"id\":\"wa\",\"external_type\":\"whatsapp\",\"external_id\":\"4911\"},"
                      "{\"id\":\"gone\",\"external_type\":\"whatsapp\",\"external_id\":\"4900\"}]");

    if (with_tg)
        json_array_append_new(c, parse("{\"id\":\"tg\",\"external_type\":\"telegram\","
                                       "\"external_id\":\"555\"}"));
    if (with_biz)
        json_array_append_new(c, parse("{\"id\":\"biz\",\"external_type\":\"whatsapp_business\","
                                       "\"external_id\":\"PNID\"}"));
    return c;
}

static void
test_route(void **state)
{
    json_t *c = conv("{}"), *all = customers(true, true), *nobiz = customers(true, false);
    json_t *group = conv("{\"channel_chat_id\":\"-100200\"}"), *none = parse("[]");
    struct outb_route r;

    (void)state;
    /* No channel given: the first participant of a channel type. */
    assert_string_equal(outb_route_pick(c, all, NULL, "biz", "", &r), "");
    assert_string_equal(r.provider, "whatsapp");
    assert_string_equal(r.recipient, "4911");
    assert_string_equal(r.sender, "PNID");
    assert_false(r.group);
    /* The message's channel decides. */
    assert_string_equal(outb_route_pick(c, all, "telegram", "biz", "", &r), "");
    assert_string_equal(r.provider, "telegram");
    assert_string_equal(r.recipient, "555");
    assert_null(r.sender);
    /* No business participant: the configured number, else a reason. */
    assert_string_equal(outb_route_pick(c, nobiz, "whatsapp", "biz", "CFG", &r), "");
    assert_string_equal(r.sender, "CFG");
    assert_non_null(outb_route_pick(c, nobiz, "whatsapp", "biz", "", &r));
    assert_true(*outb_route_pick(c, nobiz, "whatsapp", "biz", "", &r) != '\0');
    /* The sender itself is never the recipient; a participant who left is not one either. */
    assert_null(outb_route_pick(c, all, "whatsapp", "wa", "CFG", &r));
    assert_string_equal(outb_route_pick(c, all, NULL, "wa", "CFG", &r), "");
    assert_string_equal(r.provider, "telegram");
    /* No identity, or a channel that is not ours. */
    assert_null(outb_route_pick(c, none, NULL, "biz", "CFG", &r));
    assert_null(outb_route_pick(c, all, "sms", "biz", "CFG", &r));
    /* A group chat goes to the chat id. */
    assert_string_equal(outb_route_pick(group, all, "telegram", "biz", "", &r), "");
    assert_string_equal(r.recipient, "-100200");
    assert_true(r.group);
    json_decref(group);
    group = conv("{\"channel_chat_id\":-100300}");
    assert_string_equal(outb_route_pick(group, all, "telegram", "biz", "", &r), "");
    assert_string_equal(r.recipient, "-100300");
    json_decref(c);
    json_decref(all);
    json_decref(nobiz);
    json_decref(group);
    json_decref(none);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whatsapp_success_and_odd_success),
        cmocka_unit_test(test_whatsapp_retry_codes_and_statuses),
        cmocka_unit_test(test_telegram_answers),
        cmocka_unit_test(test_retry_after_and_backoff),
        cmocka_unit_test(test_error_text_cut_on_a_character),
        cmocka_unit_test(test_route),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
