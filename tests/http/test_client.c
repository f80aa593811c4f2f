/*
 * test_client.c - common/client.c against the real common/http.c in-process: the service token
 * and the caller's request id travel with every call, bodies and statuses come back, and
 * transport failures map to 503 and 504.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "parley/arena.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/http.h"
#include "parley/log.h"

#include "local_server.h"

#define TOKEN "client-test-token"

static struct pl_server *srv;
static char base[64];

/* Echoes what a callee sees of its caller. */
static enum MHD_Result
h_whoami(struct pl_req *req)
{
    const char *rid = pl_req_header(req, "X-Request-Id");
    json_t *body = pl_req_json(req);

    return pl_reply_json(req, 200, json_pack("{s:s, s:s, s:O?}", "request_id", rid ? rid : "",
                                             "method", pl_req_method(req), "body", body));
}

static enum MHD_Result
h_slow(struct pl_req *req)
{
    usleep(600 * 1000);
    return pl_reply_json(req, 200, json_object());
}

static const struct pl_route routes[] = {
    { "GET", "/who", h_whoami, 0 },
    { "PATCH", "/who", h_whoami, PL_ROUTE_JSON },
    { "GET", "/slow", h_slow, 0 },
    { NULL, NULL, NULL, 0 },
};

static int
setup(void **state)
{
    (void)state;
    pl_log_init("client-test", PL_LOG_ERROR);
    pl_client_global_init(TOKEN);
    srv = local_server_start("client-test", TOKEN, routes, 2, base);
    return srv != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    pl_server_drain_and_free(srv, 2000);
    return 0;
}

static void
test_token_and_request_id_travel(void **state)
{
    struct pl_arena *a = pl_arena_new(1024);
    struct pl_client_resp r;
    struct pl_err err = PL_ERR_INIT;
    char url[128];

    (void)state;
    snprintf(url, sizeof(url), "%s/who", base);
    pl_log_set_request_id("trace-abc.1");
    assert_int_equal(pl_client_call(a, "GET", url, NULL, 2000, &r, &err), PL_OK);
    pl_log_set_request_id(NULL);
    assert_int_equal(r.status, 200); /* the callee checked the token */
    assert_non_null(r.json);
    assert_string_equal(json_string_value(json_object_get(r.json, "request_id")), "trace-abc.1");
    pl_arena_free(a);
}

static void
test_body_and_method_sent(void **state)
{
    struct pl_arena *a = pl_arena_new(1024);
    struct pl_client_resp r;
    struct pl_err err = PL_ERR_INIT;
    char url[128];

    (void)state;
    snprintf(url, sizeof(url), "%s/who", base);
    assert_int_equal(pl_client_call(a, "PATCH", url, "{\"k\":[1,2]}", 2000, &r, &err), PL_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "method")), "PATCH");
    assert_int_equal(json_integer_value(json_array_get(
                         json_object_get(json_object_get(r.json, "body"), "k"), 1)), 2);
    pl_arena_free(a);
}

static void
test_error_statuses_come_back_as_answers(void **state)
{
    struct pl_arena *a = pl_arena_new(1024);
    struct pl_client_resp r;
    struct pl_err err = PL_ERR_INIT;
    char url[128];

    (void)state;
    snprintf(url, sizeof(url), "%s/missing", base);
    assert_int_equal(pl_client_call(a, "GET", url, NULL, 2000, &r, &err), PL_OK);
    assert_int_equal(r.status, 404);
    assert_string_equal(json_string_value(json_object_get(r.json, "error")), "Not found");
    pl_arena_free(a);
}

static void
test_unreachable_is_503_and_slow_is_504(void **state)
{
    struct pl_arena *a = pl_arena_new(1024);
    struct pl_client_resp r;
    struct pl_err err = PL_ERR_INIT;
    char url[128];

    (void)state;
    /* Port 1 on loopback: nothing listens, the connection is refused at once. */
    assert_int_equal(pl_client_call(a, "GET", "http://127.0.0.1:1/x", NULL, 2000, &r, &err),
                     PL_ERR);
    assert_int_equal(err.status, 503);
    assert_string_equal(err.code, "upstream_unavailable");
    snprintf(url, sizeof(url), "%s/slow", base);
    assert_int_equal(pl_client_call(a, "GET", url, NULL, 200, &r, &err), PL_ERR);
    assert_int_equal(err.status, 504);
    assert_string_equal(err.code, "upstream_timeout");
    pl_arena_free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_and_request_id_travel),
        cmocka_unit_test(test_body_and_method_sent),
        cmocka_unit_test(test_error_statuses_come_back_as_answers),
        cmocka_unit_test(test_unreachable_is_503_and_slow_is_504),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
