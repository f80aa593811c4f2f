/*
 * test_router.c - common/router.c: route matching, request ids, body limit and content type checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_int.h"
#include "parley/err.h"

static const struct pl_route api_routes[] = {
    { "GET", "/", NULL, 0 },
    { "GET", "/api/customers", NULL, 0 },
    { "POST", "/api/customers", NULL, PL_ROUTE_JSON },
    { "GET", "/api/customers/{id}", NULL, 0 },
    { "PATCH", "/api/customers/{id}", NULL, PL_ROUTE_JSON },
    { "DELETE", "/api/customers/{id}", NULL, 0 },
    { "GET", "/api/conversations/{conv}/messages/{msg}", NULL, 0 },
    { "GET", "/api/customers/{id}/notes", NULL, 0 },
    { NULL, NULL, NULL, 0 },
};

static const struct pl_route builtin_routes[] = {
    { "GET", "/healthz", NULL, PL_ROUTE_PUBLIC },
    { "PUT", "/api/customers", NULL, 0 },
    { NULL, NULL, NULL, 0 },
};

static int
setup_router(void **state)
{
    static struct pl_router rt;
    static const struct pl_route *const tables[] = { api_routes, builtin_routes, NULL };

    pl_router_init(&rt, tables);
    *state = &rt;
    return 0;
}

static int
teardown_router(void **state)
{
    pl_router_cleanup(*state);
    return 0;
}

/* Matches and returns the result; allow is written to the caller's buffer. */
static enum pl_route_result
match(void **state, const char *method, const char *path, struct pl_match *m, char *allow,
      size_t allow_len)
{
    return pl_router_match(*state, method, path, m, allow, allow_len);
}

static void
assert_param(const struct pl_match *m, int i, const char *name, const char *value)
{
    assert_true(i < m->nparams);
    assert_int_equal(m->name_len[i], strlen(name));
    assert_memory_equal(m->name[i], name, strlen(name));
    assert_int_equal(m->value_len[i], strlen(value));
    assert_memory_equal(m->value[i], value, strlen(value));
}

static void
test_router_counts_both_tables(void **state)
{
    const struct pl_router *rt = *state;

    assert_int_equal(rt->n, 10);
}

static void
test_static_segments_match(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "GET", "/api/customers", &m, allow, sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(m.index, 1);
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(state, "POST", "/api/customers", &m, allow, sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(m.index, 2);
    assert_int_equal(match(state, "GET", "/", &m, allow, sizeof(allow)), PL_MATCH_FOUND);
    assert_int_equal(m.index, 0);
}

static void
test_static_segment_mismatch_is_404(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "GET", "/api/customer", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(m.index, -1);
    assert_int_equal(match(state, "GET", "/api/customersx", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "/API/customers", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "", &m, allow, sizeof(allow)), PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "api/customers", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", NULL, &m, allow, sizeof(allow)), PL_MATCH_NO_PATH);
    assert_string_equal(allow, "");
}

static void
test_param_captures_value_and_name(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "GET", "/api/customers/0190a1b2-abc", &m, allow, sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(m.index, 3);
    assert_int_equal(m.nparams, 1);
    assert_param(&m, 0, "id", "0190a1b2-abc");
}

static void
test_two_params_in_order(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "GET", "/api/conversations/c1/messages/m22", &m, allow,
                           sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(m.index, 6);
    assert_int_equal(m.nparams, 2);
    assert_param(&m, 0, "conv", "c1");
    assert_param(&m, 1, "msg", "m22");
}

static void
test_param_then_static(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "GET", "/api/customers/42/notes", &m, allow, sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(m.index, 7);
    assert_param(&m, 0, "id", "42");
    assert_int_equal(match(state, "GET", "/api/customers/42/note", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
}

static void
test_param_must_be_non_empty(void **state)
{
    struct pl_match m;
    char allow[64];

    /* "/api/customers/" has an empty last segment: neither the list nor {id} matches. */
    assert_int_equal(match(state, "GET", "/api/customers/", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "/api/customers//notes", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "/api/conversations//messages/m", &m, allow,
                           sizeof(allow)),
                     PL_MATCH_NO_PATH);
}

static void
test_trailing_slash_does_not_match(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "GET", "/healthz/", &m, allow, sizeof(allow)), PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "/api/customers/7/", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "/api/customers/7/notes/", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
}

static void
test_more_and_fewer_segments(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "GET", "/api", &m, allow, sizeof(allow)), PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "/api/customers/7/notes/9", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "/api/conversations/c1/messages", &m, allow,
                           sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "/healthz/x", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_int_equal(match(state, "GET", "//", &m, allow, sizeof(allow)), PL_MATCH_NO_PATH);
}

static void
test_wrong_method_is_405_with_allow(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "PUT", "/api/customers/9", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_METHOD);
    assert_int_equal(m.index, -1);
    assert_string_equal(allow, "GET, HEAD, PATCH, DELETE, OPTIONS");
}

static void
test_allow_merges_tables(void **state)
{
    struct pl_match m;
    char allow[64];

    /* PUT /api/customers comes from the second table. */
    assert_int_equal(match(state, "DELETE", "/api/customers", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_METHOD);
    assert_string_equal(allow, "GET, HEAD, POST, PUT, OPTIONS");
    assert_int_equal(match(state, "PUT", "/api/customers", &m, allow, sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(m.index, 9);
    assert_int_equal(match(state, "GET", "/healthz", &m, allow, sizeof(allow)), PL_MATCH_FOUND);
    assert_int_equal(m.index, 8);
}

static void
test_options_is_never_a_match(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "OPTIONS", "/healthz", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_METHOD);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
    assert_int_equal(match(state, "OPTIONS", "/nowhere", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
    assert_string_equal(allow, "");
}

static void
test_method_is_case_sensitive(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "get", "/healthz", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_METHOD);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
}

/* HEAD takes the GET route of a path (the server sends no body); a path without GET has none. */
static void
test_head_matches_the_get_route(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "HEAD", "/api/customers/42", &m, allow, sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(m.nparams, 1);
    assert_int_equal(match(state, "GET", "/api/customers/42", &m, allow, sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(match(state, "HEAD", "/api/customers/42/notes", &m, allow, sizeof(allow)),
                     PL_MATCH_FOUND);
    assert_int_equal(match(state, "HEAD", "/nowhere", &m, allow, sizeof(allow)),
                     PL_MATCH_NO_PATH);
}

static void
test_allow_buffer_zero_length(void **state)
{
    struct pl_match m;
    char allow[4] = "xyz";

    assert_int_equal(match(state, "PUT", "/api/customers/9", &m, allow, 0), PL_MATCH_NO_METHOD);
    assert_string_equal(allow, "xyz"); /* untouched */
}

static void
test_root_pattern(void **state)
{
    struct pl_match m;
    char allow[64];

    assert_int_equal(match(state, "POST", "/", &m, allow, sizeof(allow)), PL_MATCH_NO_METHOD);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
}

/* ---- request ids ---- */

static void
test_request_id_valid_chars(void **state)
{
    (void)state;
    assert_true(pl_request_id_valid("a"));
    assert_true(pl_request_id_valid("ABCxyz019._:-"));
    assert_true(pl_request_id_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
    assert_false(pl_request_id_valid("has space"));
    assert_false(pl_request_id_valid("slash/"));
    assert_false(pl_request_id_valid("quote\""));
    assert_false(pl_request_id_valid("nl\n"));
    assert_false(pl_request_id_valid("semi;colon"));
    assert_false(pl_request_id_valid("caf\xc3\xa9"));
    assert_false(pl_request_id_valid("a+b"));
}

static void
test_request_id_length_limits(void **state)
{
    char id[130];

    (void)state;
    memset(id, 'a', 128);
    id[128] = '\0';
    assert_true(pl_request_id_valid(id));
    id[128] = 'b';
    id[129] = '\0';
    assert_false(pl_request_id_valid(id));
    assert_false(pl_request_id_valid(""));
    assert_false(pl_request_id_valid(NULL));
}

/* ---- body limit ---- */

static void
test_body_at_limit_is_ok(void **state)
{
    struct pl_err err = PL_ERR_INIT;

    (void)state;
    assert_int_equal(pl_body_check(1024, 1024, &err), PL_OK);
    assert_int_equal(pl_body_check(1024, 0, &err), PL_OK);
    assert_int_equal(err.status, 500); /* untouched */
    assert_string_equal(err.code, "internal");
}

static void
test_body_over_limit_is_413(void **state)
{
    struct pl_err err = PL_ERR_INIT;

    (void)state;
    assert_int_equal(pl_body_check(1024, 1025, &err), PL_ERR);
    assert_int_equal(err.status, 413);
    assert_string_equal(err.code, "body_too_large");
    assert_non_null(strstr(err.msg, "1024"));
}

static void
test_body_huge_declared_length(void **state)
{
    struct pl_err err = PL_ERR_INIT;

    (void)state;
    assert_int_equal(pl_body_check(1048576, UINT64_MAX, &err), PL_ERR);
    assert_int_equal(err.status, 413);
    assert_non_null(strstr(err.msg, "1048576"));
    assert_int_equal(pl_body_check(1024, 1025, NULL), PL_ERR); /* NULL err is fine */
}

/* ---- content type ---- */

static void
test_content_type_json(void **state)
{
    (void)state;
    assert_true(pl_content_type_is_json(NULL));
    assert_true(pl_content_type_is_json(""));
    assert_true(pl_content_type_is_json("application/json"));
    assert_true(pl_content_type_is_json("application/json; charset=utf-8"));
    assert_true(pl_content_type_is_json("application/json;charset=UTF-8"));
    assert_true(pl_content_type_is_json("APPLICATION/JSON"));
    assert_true(pl_content_type_is_json("application/merge-patch+json"));
    assert_true(pl_content_type_is_json("application/problem+json; charset=utf-8"));
}

static void
test_content_type_not_json(void **state)
{
    (void)state;
    assert_false(pl_content_type_is_json("text/plain"));
    assert_false(pl_content_type_is_json("application/x-www-form-urlencoded"));
    assert_false(pl_content_type_is_json("application/jsonx"));
    assert_false(pl_content_type_is_json("application/jso"));
    assert_false(pl_content_type_is_json("text/json+xml"));
    assert_false(pl_content_type_is_json("text/x+json"));
    assert_false(pl_content_type_is_json("multipart/form-data; boundary=x"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_counts_both_tables),
        cmocka_unit_test(test_static_segments_match),
        cmocka_unit_test(test_static_segment_mismatch_is_404),
        cmocka_unit_test(test_param_captures_value_and_name),
        cmocka_unit_test(test_two_params_in_order),
        cmocka_unit_test(test_param_then_static),
        cmocka_unit_test(test_param_must_be_non_empty),
        cmocka_unit_test(test_trailing_slash_does_not_match),
        cmocka_unit_test(test_more_and_fewer_segments),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_allow_merges_tables),
        cmocka_unit_test(test_options_is_never_a_match),
        cmocka_unit_test(test_method_is_case_sensitive),
        cmocka_unit_test(test_head_matches_the_get_route),
        cmocka_unit_test(test_allow_buffer_zero_length),
        cmocka_unit_test(test_root_pattern),
        cmocka_unit_test(test_request_id_valid_chars),
        cmocka_unit_test(test_request_id_length_limits),
        cmocka_unit_test(test_body_at_limit_is_ok),
        cmocka_unit_test(test_body_over_limit_is_413),
        cmocka_unit_test(test_body_huge_declared_length),
        cmocka_unit_test(test_content_type_json),
        cmocka_unit_test(test_content_type_not_json),
    };

    return cmocka_run_group_tests(tests, setup_router, teardown_router);
}
