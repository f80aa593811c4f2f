/*
 * test_json.c - common/json.c: declarative body checks and UTF-8 helpers; also pl_error_body
 * (common/http.c), the envelope those checks end up in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parley/arena.h"
#include "parley/http.h"
#include "parley/json.h"

#define EMOJI "\xF0\x9F\x98\x80" /* U+1F600, 4 bytes */

static const struct pl_field fields[] = {
    { "external_type", PL_F_STRING, true, false, 64, 1 },
    { "name", PL_F_STRING, false, true, 255, 0 },
    { "metadata", PL_F_OBJECT, false, true, 32, 0 },
    { "count", PL_F_INTEGER, false, false, 0, 0 },
    { "active", PL_F_BOOL, false, false, 0, 0 },
    { "tags", PL_F_ARRAY, false, false, 3, 0 },
    { "owner_id", PL_F_UUID, false, false, 0, 0 },
    { NULL, 0, false, false, 0, 0 },
};

/* Parses text (must be valid JSON) and runs the check; returns the result, errors in *errors. */
static bool
check_text(const char *text, json_t **errors)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &jerr);
    bool ok;

    if (root == NULL)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    ok = pl_json_check(root, fields, errors);
    json_decref(root);
    return ok;
}

/* Asserts errors is exactly {field: [message]} for one field among possibly others. */
static void
assert_field_error(const json_t *errors, const char *field, const char *message)
{
    const json_t *list = json_object_get(errors, field);

    if (list == NULL)
        fail_msg("no error for %s", field);
    assert_true(json_is_array(list));
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_array_get(list, 0)), message);
}

/* Checks text against fields and expects exactly one error, on field with message. */
static void
expect_one_error(const char *text, const char *field, const char *message)
{
    json_t *errors = NULL;

    assert_false(check_text(text, &errors));
    assert_non_null(errors);
    if (json_object_size(errors) != 1) {
        char *dump = json_dumps(errors, 0);

        fail_msg("%s: expected one error, got %s", text, dump);
    }
    assert_field_error(errors, field, message);
    json_decref(errors);
}

static void
test_valid_body_has_no_errors(void **state)
{
    json_t *errors = (json_t *)1;

    (void)state;
    assert_true(check_text("{\"external_type\":\"crm\",\"name\":\"Ann\",\"metadata\":{\"a\":1},"
                           "\"count\":3,\"active\":true,\"tags\":[1,2,3],"
                           "\"owner_id\":\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\",\"extra\":1}",
                           &errors));
    assert_null(errors);
    assert_true(check_text("{\"external_type\":\"crm\"}", &errors)); /* optional fields absent */
    assert_null(errors);
}

static void
test_required_missing(void **state)
{
    (void)state;
    expect_one_error("{}", "external_type", "is required");
    expect_one_error("{\"name\":\"x\"}", "external_type", "is required");
}

static void
test_required_null(void **state)
{
    (void)state;
    expect_one_error("{\"external_type\":null}", "external_type", "must not be null");
}

static void
test_nullable(void **state)
{
    json_t *errors = NULL;

    (void)state;
    assert_true(check_text("{\"external_type\":\"a\",\"name\":null,\"metadata\":null}", &errors));
    assert_null(errors);
    /* Optional but not nullable: null is an error, absence is not. */
    expect_one_error("{\"external_type\":\"a\",\"count\":null}", "count", "must not be null");
}

/* A required field that may be null: absence is the error, null is a value. */
static void
test_required_nullable(void **state)
{
    static const struct pl_field rn[] = {
        { "parent", PL_F_STRING, true, true, 10, 3 },
        { NULL, 0, false, false, 0, 0 },
    };
    json_t *root = json_loads("{\"parent\":null}", 0, NULL), *errors = NULL;

    (void)state;
    assert_true(pl_json_check(root, rn, &errors));
    json_decref(root);
    root = json_loads("{}", 0, NULL);
    assert_false(pl_json_check(root, rn, &errors));
    assert_field_error(errors, "parent", "is required");
    json_decref(errors);
    json_decref(root);
    root = json_loads("{\"parent\":\"xy\"}", 0, NULL);
    assert_false(pl_json_check(root, rn, &errors));
    assert_field_error(errors, "parent", "must be at least 3 characters");
    json_decref(errors);
    json_decref(root);
}

static void
test_wrong_type_per_kind(void **state)
{
    (void)state;
    expect_one_error("{\"external_type\":5}", "external_type", "must be a string");
    expect_one_error("{\"external_type\":\"a\",\"name\":[\"x\"]}", "name", "must be a string");
    expect_one_error("{\"external_type\":\"a\",\"metadata\":[]}", "metadata", "must be an object");
    expect_one_error("{\"external_type\":\"a\",\"metadata\":\"{}\"}", "metadata",
                     "must be an object");
    expect_one_error("{\"external_type\":\"a\",\"count\":1.5}", "count", "must be an integer");
    expect_one_error("{\"external_type\":\"a\",\"count\":\"1\"}", "count", "must be an integer");
    expect_one_error("{\"external_type\":\"a\",\"active\":0}", "active", "must be a boolean");
    expect_one_error("{\"external_type\":\"a\",\"active\":\"true\"}", "active",
                     "must be a boolean");
    expect_one_error("{\"external_type\":\"a\",\"tags\":{}}", "tags", "must be an array");
    expect_one_error("{\"external_type\":\"a\",\"owner_id\":\"nope\"}", "owner_id",
                     "must be a UUID string");
    expect_one_error("{\"external_type\":\"a\",\"owner_id\":7}", "owner_id",
                     "must be a UUID string");
}

/* Builds {"external_type":"a","name":"<n emoji>"} and checks it. */
static bool
check_emoji_name(size_t n, json_t **errors)
{
    char *s = malloc(n * 4 + 1);
    json_t *root;
    bool ok;

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * 4, EMOJI, 4);
    s[n * 4] = '\0';
    root = json_pack("{s:s, s:s}", "external_type", "a", "name", s);
    assert_non_null(root);
    ok = pl_json_check(root, fields, errors);
    json_decref(root);
    free(s);
    return ok;
}

static void
test_string_max_counts_code_points(void **state)
{
    json_t *errors = NULL;

    (void)state;
    assert_true(check_emoji_name(255, &errors)); /* 1020 bytes, 255 characters */
    assert_null(errors);
    assert_false(check_emoji_name(256, &errors));
    assert_int_equal(json_object_size(errors), 1);
    assert_field_error(errors, "name", "must be at most 255 characters");
    json_decref(errors);
}

static void
test_string_max_ascii_boundary(void **state)
{
    char text[200];

    (void)state;
    /* external_type max is 64. */
    snprintf(text, sizeof(text), "{\"external_type\":\"%064d\"}", 0);
    {
        json_t *errors = NULL;

        assert_true(check_text(text, &errors));
        assert_null(errors);
    }
    snprintf(text, sizeof(text), "{\"external_type\":\"%065d\"}", 0);
    expect_one_error(text, "external_type", "must be at most 64 characters");
}

static void
test_string_min_rejects_empty(void **state)
{
    json_t *errors = NULL;

    (void)state;
    expect_one_error("{\"external_type\":\"\"}", "external_type", "must not be empty");
    /* min 0: empty is fine. */
    assert_true(check_text("{\"external_type\":\"a\",\"name\":\"\"}", &errors));
    assert_null(errors);
}

static void
test_object_max_serialized_bytes(void **state)
{
    json_t *errors = NULL;

    (void)state;
    /* {"k":"012345678901234567890123"} is 32 bytes compact; input whitespace is not counted. */
    assert_true(check_text("{\"external_type\":\"a\",\"metadata\": { \"k\" : "
                           "\"012345678901234567890123\" }}",
                           &errors));
    assert_null(errors);
    expect_one_error("{\"external_type\":\"a\",\"metadata\":{\"k\":\"0123456789012345678901234\"}}",
                     "metadata", "must be at most 32 bytes serialized");
}

static void
test_array_max_items(void **state)
{
    (void)state;
    expect_one_error("{\"external_type\":\"a\",\"tags\":[1,2,3,4]}", "tags",
                     "must have at most 3 items");
}

static void
test_non_object_root(void **state)
{
    static const char *const roots[] = { "[]", "[{\"external_type\":\"a\"}]", "\"x\"", "1",
                                         "null", "true" };

    (void)state;
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
        expect_one_error(roots[i], "body", "must be a JSON object");
    {
        json_t *errors = NULL;

        assert_false(pl_json_check(NULL, fields, &errors));
        assert_field_error(errors, "body", "must be a JSON object");
        json_decref(errors);
    }
}

static void
test_several_errors_keyed_by_field(void **state)
{
    json_t *errors = NULL;

    (void)state;
    assert_false(check_text("{\"name\":7,\"count\":\"x\",\"active\":null,\"tags\":[1,2,3,4]}",
                            &errors));
    assert_int_equal(json_object_size(errors), 5);
    assert_field_error(errors, "external_type", "is required");
    assert_field_error(errors, "name", "must be a string");
    assert_field_error(errors, "count", "must be an integer");
    assert_field_error(errors, "active", "must not be null");
    assert_field_error(errors, "tags", "must have at most 3 items");
    json_decref(errors);
}

static void
test_error_add_appends_to_field(void **state)
{
    json_t *errors = NULL;
    const json_t *list;

    (void)state;
    pl_json_error_add(&errors, "email", "is required");
    pl_json_error_add(&errors, "email", "must be at most %d characters", 10);
    pl_json_error_add(&errors, "name", "bad");
    assert_int_equal(json_object_size(errors), 2);
    list = json_object_get(errors, "email");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_array_get(list, 0)), "is required");
    assert_string_equal(json_string_value(json_array_get(list, 1)),
                        "must be at most 10 characters");
    json_decref(errors);
}

/* ---- UTF-8 ---- */

#define VALID(lit)   assert_true(pl_utf8_valid(lit, sizeof(lit) - 1))
#define INVALID(lit) assert_false(pl_utf8_valid(lit, sizeof(lit) - 1))

static void
test_utf8_valid_good(void **state)
{
    (void)state;
    VALID("");
    VALID("plain ascii ~\x7f");
    VALID("caf\xc3\xa9");          /* U+00E9 */
    VALID("\xc2\x80");             /* U+0080, smallest 2-byte */
    VALID("\xdf\xbf");             /* U+07FF */
    VALID("\xe0\xa0\x80");         /* U+0800, smallest 3-byte */
    VALID("\xe2\x82\xac");         /* U+20AC */
    VALID("\xed\x9f\xbf");         /* U+D7FF, just below the surrogates */
    VALID("\xee\x80\x80");         /* U+E000, just above */
    VALID("\xef\xbf\xbf");         /* U+FFFF */
    VALID("\xf0\x90\x80\x80");     /* U+10000, smallest 4-byte */
    VALID(EMOJI EMOJI "x");
    VALID("\xf4\x8f\xbf\xbf");     /* U+10FFFF, the last code point */
}

static void
test_utf8_rejects_overlongs(void **state)
{
    (void)state;
    INVALID("\xc0\x80");
    INVALID("\xc0\xaf");
    INVALID("\xc1\xbf");
    INVALID("\xe0\x80\x80");
    INVALID("\xe0\x9f\xbf");      /* U+07FF in 3 bytes */
    INVALID("\xf0\x80\x80\x80");
    INVALID("\xf0\x8f\xbf\xbf");  /* U+FFFF in 4 bytes */
}

static void
test_utf8_rejects_surrogates(void **state)
{
    (void)state;
    INVALID("\xed\xa0\x80");      /* U+D800 */
    INVALID("\xed\xbf\xbf");      /* U+DFFF */
    INVALID("\xed\xa0\xbd\xed\xb8\x80"); /* CESU-8 pair */
}

static void
test_utf8_rejects_beyond_10ffff(void **state)
{
    (void)state;
    INVALID("\xf4\x90\x80\x80");  /* U+110000 */
    INVALID("\xf5\x80\x80\x80");
    INVALID("\xf7\xbf\xbf\xbf");
    INVALID("\xf8\x88\x80\x80\x80");
    INVALID("\xff");
    INVALID("\xfe");
}

static void
test_utf8_rejects_truncated_and_bad_continuations(void **state)
{
    (void)state;
    INVALID("\xc3");
    INVALID("ab\xc3");
    INVALID("\xe2\x82");
    INVALID("ab\xe2\x82");
    INVALID("\xf0\x9f\x98");
    INVALID("\x80");               /* lone continuation */
    INVALID("a\xbf" "b");
    INVALID("\xc3\x28");
    INVALID("\xe2\x28\xac");
    INVALID("\xe2\x82\x28");
    INVALID("\xf0\x9f\x98\x28");
    /* A valid sequence cut by the length argument. */
    assert_false(pl_utf8_valid(EMOJI, 3));
    assert_true(pl_utf8_valid(EMOJI, 4));
}

static void
test_utf8_rejects_nul(void **state)
{
    (void)state;
    INVALID("a\0b");
    INVALID("\0");
    assert_true(pl_utf8_valid("ab\0", 2)); /* NUL outside the length is not looked at */
}

static void
test_utf8_chars(void **state)
{
    (void)state;
    assert_int_equal(pl_utf8_chars("", 0), 0);
    assert_int_equal(pl_utf8_chars("hello", 5), 5);
    assert_int_equal(pl_utf8_chars("h\xc3\xa9llo", 6), 5);
    assert_int_equal(pl_utf8_chars("\xe2\x82\xac" EMOJI "a", 8), 3);
    assert_int_equal(pl_utf8_chars(EMOJI EMOJI, 8), 2);
    assert_int_equal(pl_utf8_chars("abc", 2), 2);
}

/* ---- arena helpers ---- */

static void
test_json_dump_and_keep(void **state)
{
    struct pl_arena *a = pl_arena_new(0);
    json_t *j = json_pack("{s:i, s:[s]}", "a", 1, "b", "x");
    const char *text;

    (void)state;
    text = pl_json_dump(a, j);
    assert_non_null(text);
    assert_true(strcmp(text, "{\"a\":1,\"b\":[\"x\"]}") == 0 ||
                strcmp(text, "{\"b\":[\"x\"],\"a\":1}") == 0);
    assert_null(pl_json_dump(a, NULL));
    json_incref(j);
    assert_ptr_equal(pl_json_keep(a, j), j);
    assert_int_equal(j->refcount, 2);
    pl_arena_free(a);
    assert_int_equal(j->refcount, 1); /* the arena dropped its reference */
    json_decref(j);
}

static void
test_json_dump_scalar(void **state)
{
    struct pl_arena *a = pl_arena_new(0);
    json_t *j = json_string("caf\xc3\xa9");

    (void)state;
    assert_string_equal(pl_json_dump(a, j), "\"caf\xc3\xa9\"");
    json_decref(j);
    pl_arena_free(a);
}

/* ---- error envelope ---- */

static void
test_error_body_without_errors(void **state)
{
    json_t *j = pl_error_body("Not found", "no route for \"/x\"", NULL);

    (void)state;
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 2);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "Not found");
    assert_string_equal(json_string_value(json_object_get(j, "message")), "no route for \"/x\"");
    assert_null(json_object_get(j, "errors"));
    json_decref(j);
}

static void
test_error_body_with_errors(void **state)
{
    json_t *errors = NULL;
    json_t *j;

    (void)state;
    pl_json_error_add(&errors, "name", "is required");
    j = pl_error_body("validation_failed", "The given data was invalid.", errors);
    assert_int_equal(json_object_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "validation_failed");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        "The given data was invalid.");
    assert_ptr_equal(json_object_get(j, "errors"), errors); /* taken, not copied */
    assert_int_equal(errors->refcount, 1);
    assert_field_error(json_object_get(j, "errors"), "name", "is required");
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_body_has_no_errors),
        cmocka_unit_test(test_required_missing),
        cmocka_unit_test(test_required_null),
        cmocka_unit_test(test_nullable),
        cmocka_unit_test(test_required_nullable),
        cmocka_unit_test(test_wrong_type_per_kind),
        cmocka_unit_test(test_string_max_counts_code_points),
        cmocka_unit_test(test_string_max_ascii_boundary),
        cmocka_unit_test(test_string_min_rejects_empty),
        cmocka_unit_test(test_object_max_serialized_bytes),
        cmocka_unit_test(test_array_max_items),
        cmocka_unit_test(test_non_object_root),
        cmocka_unit_test(test_several_errors_keyed_by_field),
        cmocka_unit_test(test_error_add_appends_to_field),
        cmocka_unit_test(test_utf8_valid_good),
        cmocka_unit_test(test_utf8_rejects_overlongs),
        cmocka_unit_test(test_utf8_rejects_surrogates),
        cmocka_unit_test(test_utf8_rejects_beyond_10ffff),
        cmocka_unit_test(test_utf8_rejects_truncated_and_bad_continuations),
        cmocka_unit_test(test_utf8_rejects_nul),
        cmocka_unit_test(test_utf8_chars),
        cmocka_unit_test(test_json_dump_and_keep),
        cmocka_unit_test(test_json_dump_scalar),
        cmocka_unit_test(test_error_body_without_errors),
        cmocka_unit_test(test_error_body_with_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
