/*
 * test_outbound.c - inbound-svc/outbound_rules.h: the route of an outbound message (SPEC 10), the
 * classification of WhatsApp and Telegram answers into sent / retry / failed, Retry-After, and
 * the backoff; and inbound-svc/outbound_request.h: which content may go to a channel, and the
 * request bodies of text and media sends (pure logic, no network or database).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../inbound-svc/outbound_request.h"
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

/* outb_content_check's code for one message ("" when it may go), with the chosen kind in *k. */
static const char *
check(const char *provider, const char *ct, const char *media_id, const char *body,
      const struct outb_kind **k)
{
    static char msg[160];
    const char *code = outb_content_check(provider, ct, media_id, body, k, msg, sizeof(msg));

    if (code != NULL)
        assert_true(msg[0] != '\0'); /* every refusal says why */
    return code ? code : "";
}

/* A string of n copies of the UTF-8 character c. */
static char *
repeat(const char *c, size_t n)
{
    size_t len = strlen(c);
    char *s = malloc(len * n + 1);

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, c, len);
    s[len * n] = '\0';
    return s;
}

static void
test_content_check(void **state)
{
    const struct outb_kind *k;
    char *cap1024 = repeat("\xc3\xa9", 1024), *cap1025 = repeat("a", 1025);
    char *emoji600 = repeat("\xf0\x9f\x98\x80", 600); /* 600 code points, 1200 UTF-16 units */

    (void)state;
    assert_string_equal(check("whatsapp", NULL, NULL, "hi", &k), "");
    assert_string_equal(k->content_type, "text");
    assert_false(k->media);
    assert_string_equal(check("telegram", "text", "m", "hi", &k), "");
    assert_string_equal(check("whatsapp", "location", NULL, "", &k), "unsupported_content_type");
    assert_null(k);
    assert_string_equal(check("telegram", "reaction", NULL, "", &k), "unsupported_content_type");
    /* Media need their file. */
    assert_string_equal(check("whatsapp", "image", NULL, "", &k), "media_id_missing");
    assert_string_equal(check("telegram", "document", "", "", &k), "media_id_missing");
    assert_string_equal(check("whatsapp", "image", "m", "a caption", &k), "");
    assert_true(k->media);
    /* Audio, voice and sticker take no caption on WhatsApp; only a sticker on Telegram. */
    assert_string_equal(check("whatsapp", "audio", "m", "", &k), "");
    assert_string_equal(check("whatsapp", "audio", "m", "x", &k), "caption_not_supported");
    assert_string_equal(check("whatsapp", "voice", "m", "x", &k), "caption_not_supported");
    assert_string_equal(check("whatsapp", "sticker", "m", "x", &k), "caption_not_supported");
    assert_string_equal(check("telegram", "voice", "m", "x", &k), "");
    assert_string_equal(check("telegram", "sticker", "m", "x", &k), "caption_not_supported");
    assert_string_equal(check("telegram", "sticker", "m", "", &k), "");
    /* 1024 characters at most, counted as each channel counts them. */
    assert_string_equal(check("whatsapp", "image", "m", cap1024, &k), "");
    assert_string_equal(check("telegram", "image", "m", cap1024, &k), "");
    assert_string_equal(check("whatsapp", "video", "m", cap1025, &k), "caption_too_long");
    assert_string_equal(check("telegram", "video", "m", cap1025, &k), "caption_too_long");
    assert_string_equal(check("whatsapp", "document", "m", emoji600, &k), "");
    assert_string_equal(check("telegram", "document", "m", emoji600, &k), "caption_too_long");
    assert_int_equal(outb_text_length(emoji600, false), 600);
    assert_int_equal(outb_text_length(emoji600, true), 1200);
    free(cap1024);
    free(cap1025);
    free(emoji600);
}

/* Asserts that j (taken) equals the JSON text want. */
static void
assert_json(json_t *j, const char *want)
{
    json_t *w = parse(want);
    char *got = json_dumps(j, JSON_SORT_KEYS);

    if (!json_equal(j, w))
        fail_msg("got %s, want %s", got, want);
    free(got);
    json_decref(w);
    json_decref(j);
}

/* The WhatsApp body of a content_type send to "4911". */
static json_t *
wa_request(const char *ct, const char *body, const char *filename, bool group)
{
    struct outb_payload p = { "4911", group, outb_kind_of(ct), body, "https://gw/m?sig=1",
                              filename, NULL, NULL };

    return outb_whatsapp_request(&p);
}

static void
test_whatsapp_requests(void **state)
{
    (void)state;
    assert_json(wa_request("text", "hi \xe2\x9c\x93", NULL, false),
                "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                "\"to\":\"4911\",\"type\":\"text\",\"text\":{\"body\":\"hi \\u2713\"}}");
    assert_json(wa_request("image", "Look", NULL, false),
                "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                "\"to\":\"4911\",\"type\":\"image\","
                "\"image\":{\"link\":\"https://gw/m?sig=1\",\"caption\":\"Look\"}}");
    assert_json(wa_request("document", "", "Quote 7.pdf", true),
                "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"group\","
                "\"to\":\"4911\",\"type\":\"document\","
                "\"document\":{\"link\":\"https://gw/m?sig=1\",\"filename\":\"Quote 7.pdf\"}}");
    /* A voice message goes as audio; a filename is for documents only; empty captions vanish. */
    assert_json(wa_request("voice", "", "v.ogg", false),
                "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                "\"to\":\"4911\",\"type\":\"audio\",\"audio\":{\"link\":\"https://gw/m?sig=1\"}}");
    assert_json(wa_request("video", "", NULL, false),
                "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                "\"to\":\"4911\",\"type\":\"video\",\"video\":{\"link\":\"https://gw/m?sig=1\"}}");
    assert_json(wa_request("sticker", "", NULL, false),
                "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
                "\"4911\",\"type\":\"sticker\",\"sticker\":{\"link\":\"https://gw/m?sig=1\"}}");
}

/* The Telegram parameters of a content_type send to chat, and its method in *method. */
static json_t *
tg_request(const char *chat, const char *ct, const char *body, const char **method)
{
    struct outb_payload p = { chat, false, outb_kind_of(ct), body, "https://gw/m?sig=1", "f.pdf",
                              NULL, NULL };

    return outb_telegram_request(&p, method);
}

static void
test_telegram_requests(void **state)
{
    const char *method;

    (void)state;
    assert_json(tg_request("-1001", "text", "hi", &method), "{\"chat_id\":-1001,\"text\":\"hi\"}");
    assert_string_equal(method, "sendMessage");
    assert_json(tg_request("@news", NULL, "hi", &method),
                "{\"chat_id\":\"@news\",\"text\":\"hi\"}");
    assert_json(tg_request("555", "image", "Look", &method),
                "{\"chat_id\":555,\"photo\":\"https://gw/m?sig=1\",\"caption\":\"Look\"}");
    assert_string_equal(method, "sendPhoto");
    assert_json(tg_request("555", "document", "", &method),
                "{\"chat_id\":555,\"document\":\"https://gw/m?sig=1\"}");
    assert_string_equal(method, "sendDocument");
    assert_json(tg_request("555", "voice", "said", &method),
                "{\"chat_id\":555,\"voice\":\"https://gw/m?sig=1\",\"caption\":\"said\"}");
    assert_string_equal(method, "sendVoice");
    json_decref(tg_request("555", "audio", "", &method));
    assert_string_equal(method, "sendAudio");
    json_decref(tg_request("555", "video", "", &method));
    assert_string_equal(method, "sendVideo");
    assert_json(tg_request("555", "sticker", "", &method),
                "{\"chat_id\":555,\"sticker\":\"https://gw/m?sig=1\"}");
    assert_string_equal(method, "sendSticker");
}

/* Telegram takes only PDF, GIF and ZIP documents by URL; every other kind goes by link. */
static void
test_telegram_by_link(void **state)
{
    (void)state;
    assert_true(outb_telegram_by_link(outb_kind_of("document"), "application/pdf"));
    assert_true(outb_telegram_by_link(outb_kind_of("document"), "Application/PDF"));
    assert_true(outb_telegram_by_link(outb_kind_of("document"), "image/gif"));
    assert_true(outb_telegram_by_link(outb_kind_of("document"), "application/zip; x=1"));
    assert_false(outb_telegram_by_link(outb_kind_of("document"), "text/plain; charset=utf-8"));
    assert_false(outb_telegram_by_link(outb_kind_of("document"), "application/pdfx"));
    assert_false(outb_telegram_by_link(outb_kind_of("document"), "application/zi"));
    assert_false(outb_telegram_by_link(outb_kind_of("document"), ""));
    assert_false(outb_telegram_by_link(outb_kind_of("document"), NULL));
    assert_true(outb_telegram_by_link(outb_kind_of("image"), "image/png"));
    assert_true(outb_telegram_by_link(outb_kind_of("audio"), NULL));
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
        cmocka_unit_test(test_content_check),
        cmocka_unit_test(test_whatsapp_requests),
        cmocka_unit_test(test_telegram_requests),
        cmocka_unit_test(test_telegram_by_link),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
