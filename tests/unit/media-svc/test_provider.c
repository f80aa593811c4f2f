/*
 * test_provider.c - media-svc/provider.h: reading WhatsApp Graph API media lookups and Telegram
 * getFile answers (the real APIs' shapes, their error answers, and garbage), download statuses,
 * the checks on ids and paths that go into provider URLs, and announced checksums in hex and
 * base64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../media-svc/provider.h"

/* SHA-256 of "abc" (FIPS 180-2), in hex and in base64. */
#define ABC_HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC_B64 "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="

static json_t *
parse(const char *text)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);

    assert_non_null(j);
    return j;
}

static void
test_whatsapp_lookup_ok(void **state)
{
    json_t *j = parse("{\"messaging_product\":\"whatsapp\",\"url\":\"https://lookaside.fbsbx.com/"
                      "whatsapp_business/attachments/?mid=1&ext=2\",\"mime_type\":\"image/jpeg\","
                      "\"sha256\":\"" ABC_HEX "\",\"file_size\":303833,"
                      "\"id\":\"1037543291543636\"}");
    struct media_located loc;

    (void)state;
    assert_int_equal(media_whatsapp_lookup(200, j, &loc), MEDIA_ANSWER_OK);
    assert_string_equal(loc.url, "https://lookaside.fbsbx.com/whatsapp_business/attachments/"
                                 "?mid=1&ext=2");
    assert_true(loc.size == 303833);
    assert_string_equal(loc.sha256, ABC_HEX);
    assert_null(loc.file_path);
    json_decref(j);
}

static void
test_whatsapp_lookup_size_as_string_and_base64_sha(void **state)
{
    json_t *j = parse("{\"url\":\"http://127.0.0.1:8090/whatsapp-cdn/x\",\"file_size\":\"1024\","
                      "\"sha256\":\"" ABC_B64 "\"}");
    struct media_located loc;

    (void)state;
    assert_int_equal(media_whatsapp_lookup(200, j, &loc), MEDIA_ANSWER_OK);
    assert_true(loc.size == 1024);
    assert_string_equal(loc.sha256, ABC_HEX);
    json_decref(j);
}

static void
test_whatsapp_lookup_without_optional_members(void **state)
{
    json_t *j = parse("{\"url\":\"https://cdn.example/f\",\"file_size\":-5,\"sha256\":\"zz\"}");
    struct media_located loc;

    (void)state;
    assert_int_equal(media_whatsapp_lookup(200, j, &loc), MEDIA_ANSWER_OK);
    assert_true(loc.size == -1);
    assert_string_equal(loc.sha256, "");
    json_decref(j);
}

static void
test_whatsapp_unknown_id_is_gone(void **state)
{
    json_t *j = parse("{\"error\":{\"message\":\"Unsupported get request. Object with ID '1' does "
                      "not exist\",\"type\":\"GraphMethodException\",\"code\":100}}");
    json_t *token = parse("{\"error\":{\"message\":\"Invalid OAuth access token.\","
                          "\"type\":\"OAuthException\",\"code\":190}}");
    struct media_located loc;

    (void)state;
    assert_int_equal(media_whatsapp_lookup(400, j, &loc), MEDIA_ANSWER_GONE);
    assert_int_equal(media_whatsapp_lookup(404, j, &loc), MEDIA_ANSWER_GONE);
    assert_int_equal(media_whatsapp_lookup(404, NULL, &loc), MEDIA_ANSWER_GONE);
    /* Our token refused: not the media's fault, so retryable on our side, never a 404. */
    assert_int_equal(media_whatsapp_lookup(401, token, &loc), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_whatsapp_lookup(400, token, &loc), MEDIA_ANSWER_FAILED);
    json_decref(j);
    json_decref(token);
}

static void
test_whatsapp_garbage_fails(void **state)
{
    static const char *const bodies[] = {
        "{}", "[]", "\"url\"", "{\"url\":5}", "{\"url\":\"file:///etc/passwd\"}",
        "{\"url\":\"gopher://x/\"}", "{\"url\":\"https://a b/\"}", "{\"url\":\"\"}",
        "{\"url\":\"https://x/\\u0001\"}",
    };
    struct media_located loc;

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_t *j = parse(bodies[i]);

        assert_int_equal(media_whatsapp_lookup(200, j, &loc), MEDIA_ANSWER_FAILED);
        json_decref(j);
    }
    assert_int_equal(media_whatsapp_lookup(200, NULL, &loc), MEDIA_ANSWER_FAILED); /* not JSON */
    assert_int_equal(media_whatsapp_lookup(500, NULL, &loc), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_whatsapp_lookup(429, NULL, &loc), MEDIA_ANSWER_FAILED);
}

static void
test_telegram_getfile_ok(void **state)
{
    json_t *j = parse("{\"ok\":true,\"result\":{\"file_id\":\"AgACAgIAAxkBAAIC\","
                      "\"file_unique_id\":\"AQADsr8xG\",\"file_size\":51234,"
                      "\"file_path\":\"photos/file_12.jpg\"}}");
    json_t *no_size = parse("{\"ok\":true,\"result\":{\"file_path\":\"voice/file_3.oga\"}}");
    struct media_located loc;

    (void)state;
    assert_int_equal(media_telegram_getfile(200, j, &loc), MEDIA_ANSWER_OK);
    assert_string_equal(loc.file_path, "photos/file_12.jpg");
    assert_true(loc.size == 51234);
    assert_null(loc.url);
    assert_string_equal(loc.sha256, "");
    assert_int_equal(media_telegram_getfile(200, no_size, &loc), MEDIA_ANSWER_OK);
    assert_true(loc.size == -1);
    json_decref(j);
    json_decref(no_size);
}

static void
test_telegram_errors(void **state)
{
    json_t *bad = parse("{\"ok\":false,\"error_code\":400,"
                        "\"description\":\"Bad Request: invalid file_id\"}");
    json_t *big = parse("{\"ok\":false,\"error_code\":400,"
                        "\"description\":\"Bad Request: file is too big\"}");
    json_t *unauth = parse("{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}");
    json_t *not_ok = parse("{\"ok\":false,\"result\":{\"file_path\":\"a/b\"}}");
    json_t *no_path = parse("{\"ok\":true,\"result\":{\"file_id\":\"x\"}}");
    json_t *climb = parse("{\"ok\":true,\"result\":{\"file_path\":\"../bot1:x/getMe\"}}");
    struct media_located loc;

    (void)state;
    assert_int_equal(media_telegram_getfile(400, bad, &loc), MEDIA_ANSWER_GONE);
    assert_int_equal(media_telegram_getfile(400, NULL, &loc), MEDIA_ANSWER_GONE);
    assert_int_equal(media_telegram_getfile(400, big, &loc), MEDIA_ANSWER_TOO_BIG);
    assert_int_equal(media_telegram_getfile(401, unauth, &loc), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_telegram_getfile(404, NULL, &loc), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_telegram_getfile(502, NULL, &loc), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_telegram_getfile(200, not_ok, &loc), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_telegram_getfile(200, no_path, &loc), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_telegram_getfile(200, climb, &loc), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_telegram_getfile(200, NULL, &loc), MEDIA_ANSWER_FAILED);
    json_decref(bad);
    json_decref(big);
    json_decref(unauth);
    json_decref(not_ok);
    json_decref(no_path);
    json_decref(climb);
}

static void
test_download_status(void **state)
{
    (void)state;
    assert_int_equal(media_download_status(200), MEDIA_ANSWER_OK);
    assert_int_equal(media_download_status(404), MEDIA_ANSWER_GONE);
    assert_int_equal(media_download_status(410), MEDIA_ANSWER_GONE);
    assert_int_equal(media_download_status(206), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_download_status(401), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_download_status(500), MEDIA_ANSWER_FAILED);
    assert_int_equal(media_download_status(0), MEDIA_ANSWER_FAILED);
}

static void
test_provider_ids(void **state)
{
    char longest[MEDIA_PROVIDER_ID_MAX + 2];

    (void)state;
    assert_true(media_provider_id_ok("1037543291543636"));
    assert_true(media_provider_id_ok("AgACAgIAAxkBAAIC-2Zk_x.y~z"));
    assert_false(media_provider_id_ok(NULL));
    assert_false(media_provider_id_ok(""));
    assert_false(media_provider_id_ok("."));
    assert_false(media_provider_id_ok(".."));
    assert_false(media_provider_id_ok("-x"));
    assert_false(media_provider_id_ok("a/b"));
    assert_false(media_provider_id_ok("a?b"));
    assert_false(media_provider_id_ok("a&file_id=b"));
    assert_false(media_provider_id_ok("a%2e"));
    assert_false(media_provider_id_ok("a b"));
    assert_false(media_provider_id_ok("caf\xc3\xa9"));
    memset(longest, 'a', MEDIA_PROVIDER_ID_MAX);
    longest[MEDIA_PROVIDER_ID_MAX] = '\0';
    assert_true(media_provider_id_ok(longest));
    longest[MEDIA_PROVIDER_ID_MAX] = 'a';
    longest[MEDIA_PROVIDER_ID_MAX + 1] = '\0';
    assert_false(media_provider_id_ok(longest));
}

static void
test_file_paths(void **state)
{
    (void)state;
    assert_true(media_file_path_ok("photos/file_12.jpg"));
    assert_true(media_file_path_ok("documents/file_5.pdf"));
    assert_true(media_file_path_ok("a..b/c"));
    assert_false(media_file_path_ok(""));
    assert_false(media_file_path_ok("/etc/passwd"));
    assert_false(media_file_path_ok("photos/"));
    assert_false(media_file_path_ok("a//b"));
    assert_false(media_file_path_ok("../x"));
    assert_false(media_file_path_ok("a/../../x"));
    assert_false(media_file_path_ok("a/./b"));
    assert_false(media_file_path_ok("a/b?x=1"));
    assert_false(media_file_path_ok("a/b#f"));
    assert_false(media_file_path_ok("a\\b"));
}

static void
test_sizes(void **state)
{
    json_t *j = parse("[0, 25, \"25\", \"\", \"2x\", -1, \"-1\", 1.5, null, true, "
                      "\"1234567890123456789\"]");

    (void)state;
    assert_true(media_json_size(json_array_get(j, 0)) == 0);
    assert_true(media_json_size(json_array_get(j, 1)) == 25);
    assert_true(media_json_size(json_array_get(j, 2)) == 25);
    for (size_t i = 3; i < json_array_size(j); i++)
        assert_true(media_json_size(json_array_get(j, i)) == -1);
    assert_true(media_json_size(NULL) == -1);
    json_decref(j);
}

static void
test_sha256_forms(void **state)
{
    char out[65];

    (void)state;
    assert_true(media_sha256_hex(ABC_HEX, out));
    assert_string_equal(out, ABC_HEX);
    assert_true(media_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                                 out));
    assert_string_equal(out, ABC_HEX);
    assert_true(media_sha256_hex(ABC_B64, out));
    assert_string_equal(out, ABC_HEX);
    /* The URL-safe alphabet, without padding. */
    assert_true(media_sha256_hex("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0", out));
    assert_string_equal(out, ABC_HEX);
    assert_false(media_sha256_hex("", out));
    assert_string_equal(out, "");
    /* 64 characters, one of them not hex. */
    assert_false(media_sha256_hex("xa7816bf8f01cfea414140de5dae2223"
                                  "b00361a396177a9cb410ff61f20015ad", out));
    assert_string_equal(out, "");
    assert_false(media_sha256_hex("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0!", out));
    assert_false(media_sha256_hex("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qct*D/YfIAFa0=", out));
    assert_string_equal(out, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whatsapp_lookup_ok),
        cmocka_unit_test(test_whatsapp_lookup_size_as_string_and_base64_sha),
        cmocka_unit_test(test_whatsapp_lookup_without_optional_members),
        cmocka_unit_test(test_whatsapp_unknown_id_is_gone),
        cmocka_unit_test(test_whatsapp_garbage_fails),
        cmocka_unit_test(test_telegram_getfile_ok),
        cmocka_unit_test(test_telegram_errors),
        cmocka_unit_test(test_download_status),
        cmocka_unit_test(test_provider_ids),
        cmocka_unit_test(test_file_paths),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_sha256_forms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
