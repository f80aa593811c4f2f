/*
 * test_server.c - common/http.c in-process on a free port, driven by libcurl: routing,
 * 404/405 with Allow, OPTIONS, body limits (declared and chunked), JSON and content-type
 * errors, the service token, X-Request-Id, the error envelope and keep-alive.  No database.
 *
 * PARLEY_TEST_LOG=1 shows the server's log lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "parley/buf.h"
#include "parley/err.h"
#include "parley/http.h"
#include "parley/log.h"
#include "parley/uuid.h"

#define MAX_BODY 1024
#define BIG_BODY 4096 /* PL_ROUTE_BIG_BODY routes */
#define TOKEN    "tok-123"

/* ---- handlers ---- */

static enum MHD_Result
h_item_get(struct pl_req *req)
{
    return pl_reply_json(req, 200, json_pack("{s:s}", "id", pl_req_param(req, "id")));
}

static enum MHD_Result
h_item_create(struct pl_req *req)
{
    return pl_reply_json(req, 201, json_incref(pl_req_json(req)));
}

static enum MHD_Result
h_note_get(struct pl_req *req)
{
    return pl_reply_json(req, 200, json_pack("{s:s, s:s}", "id", pl_req_param(req, "id"), "note",
                                             pl_req_param(req, "note")));
}

static enum MHD_Result
h_ping(struct pl_req *req)
{
    return pl_reply_json(req, 200, json_pack("{s:b}", "pong", 1));
}

static enum MHD_Result
h_echo(struct pl_req *req)
{
    json_t *body = pl_req_json(req);

    return pl_reply_json(req, 200, json_pack("{s:O, s:i}", "body", body, "len",
                                             (json_int_t)json_dumpb(body, NULL, 0, JSON_COMPACT)));
}

static const struct pl_route routes[] = {
    { "GET", "/api/items/{id}", h_item_get, 0 },
    { "POST", "/api/items", h_item_create, PL_ROUTE_JSON },
    { "GET", "/api/items/{id}/notes/{note}", h_note_get, 0 },
    { "GET", "/public/ping", h_ping, PL_ROUTE_PUBLIC },
    { "POST", "/public/echo", h_echo, PL_ROUTE_PUBLIC | PL_ROUTE_JSON },
    { "PUT", "/public/echo", h_echo, PL_ROUTE_PUBLIC | PL_ROUTE_JSON },
    { "POST", "/public/big", h_echo, PL_ROUTE_PUBLIC | PL_ROUTE_JSON | PL_ROUTE_BIG_BODY },
    { NULL, NULL, NULL, 0 },
};

/* ---- client ---- */

static struct pl_server *srv;
static char base_url[64];

struct resp {
    long status;
    struct pl_buf body;
    char allow[128];
    char request_id[256];
    char content_type[128];
    char decorated[16];
    json_t *json; /* body parsed, when it is JSON */
    CURLcode rc;
    long new_conns;
};

struct upload {
    const char *data;
    size_t len;
    size_t pos;
    size_t chunk; /* bytes handed to curl per call */
};

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    pl_buf_append(&((struct resp *)userdata)->body, ptr, size * nmemb);
    return size * nmemb;
}

/* Copies the value of header name from line into out, when line is that header. */
static void
grab_header(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), vl;

    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    line += nl + 1;
    n -= nl + 1;
    while (n > 0 && (*line == ' ' || *line == '\t'))
        line++, n--;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
        n--;
    vl = n < cap - 1 ? n : cap - 1;
    memcpy(out, line, vl);
    out[vl] = '\0';
}

static size_t
on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    struct resp *r = userdata;
    size_t n = size * nmemb;

    grab_header(line, n, "Allow", r->allow, sizeof(r->allow));
    grab_header(line, n, "X-Request-Id", r->request_id, sizeof(r->request_id));
    grab_header(line, n, "Content-Type", r->content_type, sizeof(r->content_type));
    grab_header(line, n, "X-Decorated", r->decorated, sizeof(r->decorated));
    return n;
}

static size_t
on_read(char *buf, size_t size, size_t nmemb, void *userdata)
{
    struct upload *u = userdata;
    size_t n = size * nmemb;

    if (n > u->chunk)
        n = u->chunk;
    if (n > u->len - u->pos)
        n = u->len - u->pos;
    memcpy(buf, u->data + u->pos, n);
    u->pos += n;
    return n;
}

struct call {
    const char *method;
    const char *path;
    const char *const *headers; /* NULL-terminated, or NULL */
    const char *body;           /* sent with Content-Length, unless chunked */
    size_t body_len;
    bool chunked;
};

/* Performs c on handle h (NULL: a fresh handle) and fills r; the caller frees with resp_free. */
static void
perform(CURL *h, const struct call *c, struct resp *r)
{
    CURL *own = NULL;
    struct curl_slist *hdrs = NULL;
    struct upload up = { c->body, c->body_len, 0, 100 };
    char url[512];

    memset(r, 0, sizeof(*r));
    if (h == NULL)
        h = own = curl_easy_init();
    assert_non_null(h);
    snprintf(url, sizeof(url), "%s%s", base_url, c->path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    for (const char *const *p = c->headers; p != NULL && *p != NULL; p++)
        hdrs = curl_slist_append(hdrs, *p);
    if (c->chunked) {
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
    } else if (c->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L); /* resets a reused handle's body */
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->new_conns);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (own != NULL)
        curl_easy_cleanup(own);
    if (r->body.len > 0)
        r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

static void
resp_free(struct resp *r)
{
    json_decref(r->json);
    pl_buf_cleanup(&r->body);
}

/* Shorthand: a request without body on a fresh connection. */
static void
simple(const char *method, const char *path, const char *const *headers, struct resp *r)
{
    struct call c = { method, path, headers, NULL, 0, false };

    perform(NULL, &c, r);
}

static void
send_body(const char *method, const char *path, const char *const *headers, const char *body,
          size_t len, bool chunked, struct resp *r)
{
    struct call c = { method, path, headers, body, len, chunked };

    perform(NULL, &c, r);
}

/* Asserts r is the error envelope {"error": code, "message": ...} with status. */
static void
assert_error(const struct resp *r, long status, const char *code)
{
    if (r->rc != CURLE_OK)
        fail_msg("curl: %s", curl_easy_strerror(r->rc));
    if (r->status != status)
        fail_msg("status %ld, want %ld; body %s", r->status, status,
                 r->body.data ? r->body.data : "");
    assert_non_null(r->json);
    assert_string_equal(r->content_type, "application/json");
    assert_string_equal(json_string_value(json_object_get(r->json, "error")), code);
    assert_true(json_is_string(json_object_get(r->json, "message")));
    assert_true(json_string_length(json_object_get(r->json, "message")) > 0);
    assert_int_equal(json_object_size(r->json), 2);
}

static void
assert_ok(const struct resp *r, long status)
{
    if (r->rc != CURLE_OK)
        fail_msg("curl: %s", curl_easy_strerror(r->rc));
    if (r->status != status)
        fail_msg("status %ld, want %ld; body %s", r->status, status,
                 r->body.data ? r->body.data : "");
}

static const char *const with_token[] = { "X-Service-Token: " TOKEN, NULL };
static const char *const json_ct[] = { "Content-Type: application/json", NULL };

/* ---- routing ---- */

static void
test_public_route(void **state)
{
    struct resp r;

    (void)state;
    simple("GET", "/public/ping", NULL, &r);
    assert_ok(&r, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_true(json_is_true(json_object_get(r.json, "pong")));
    resp_free(&r);
}

static void
test_path_params(void **state)
{
    struct resp r;

    (void)state;
    simple("GET", "/api/items/abc-42", with_token, &r);
    assert_ok(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "abc-42");
    resp_free(&r);
    simple("GET", "/api/items/i1/notes/n2", with_token, &r);
    assert_ok(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "i1");
    assert_string_equal(json_string_value(json_object_get(r.json, "note")), "n2");
    resp_free(&r);
}

static void
test_builtin_healthz(void **state)
{
    struct resp r;

    (void)state;
    simple("GET", "/healthz", NULL, &r);
    assert_ok(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ok");
    resp_free(&r);
    simple("GET", "/readyz", NULL, &r);
    assert_ok(&r, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ready");
    resp_free(&r);
}

static void
test_metrics_count_requests(void **state)
{
    struct resp r;

    (void)state;
    simple("GET", "/public/ping", NULL, &r);
    resp_free(&r);
    simple("GET", "/metrics", NULL, &r);
    assert_ok(&r, 200);
    assert_non_null(r.body.data);
    assert_non_null(strstr(r.body.data, "parley_http_requests_total{service=\"http-test\","
                                        "method=\"GET\",route=\"/public/ping\",status=\"200\"}"));
    assert_non_null(strstr(r.body.data, "parley_http_inflight{service=\"http-test\"}"));
    resp_free(&r);
}

static int done_calls;
static unsigned done_status;
static char done_route[64];

static void
on_done_count(const struct pl_req *req, void *ctx)
{
    (void)ctx;
    done_calls++;
    done_status = pl_req_status(req);
    snprintf(done_route, sizeof(done_route), "%s", pl_req_route(req));
}

static void
decorate_mark(const struct pl_req *req, struct MHD_Response *resp, void *ctx)
{
    (void)req;
    (void)ctx;
    MHD_add_response_header(resp, "X-Decorated", "yes");
}

/* The hooks see every request and every response, the server's own 404 and OPTIONS included. */
static void
test_done_and_decorate_hooks(void **state)
{
    struct pl_server_opts opts = { .service = "hooks", .port = 0, .threads = 1,
                                   .max_body = MAX_BODY, .routes = routes,
                                   .on_done = on_done_count, .decorate = decorate_mark };
    struct pl_err err = PL_ERR_INIT;
    struct pl_server *other = pl_server_start(&opts, &err);
    char saved[sizeof(base_url)];
    struct resp r;

    (void)state;
    assert_non_null(other);
    memcpy(saved, base_url, sizeof(saved));
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u", (unsigned)pl_server_port(other));
    done_calls = 0;
    simple("GET", "/nowhere", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.decorated, "yes");
    resp_free(&r);
    simple("OPTIONS", "/public/ping", NULL, &r);
    assert_int_equal(r.status, 204);
    assert_string_equal(r.decorated, "yes");
    resp_free(&r);
    simple("GET", "/public/ping", NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    memcpy(base_url, saved, sizeof(saved));
    pl_server_drain_and_free(other, 1000); /* completion callbacks have all run */
    assert_int_equal(done_calls, 3);
    assert_int_equal(done_status, 200);
    assert_string_equal(done_route, "/public/ping");
}

/* A server started and stopped beside the main one leaves nothing behind in the metrics. */
static void
test_stopped_server_leaves_metrics(void **state)
{
    struct pl_server_opts opts = { .service = "short-lived", .port = 0, .threads = 1,
                                   .max_body = MAX_BODY, .routes = routes };
    struct pl_err err = PL_ERR_INIT;
    struct resp r;

    (void)state;
    for (int i = 0; i < 20; i++) { /* more than the collector table holds at once */
        struct pl_server *other = pl_server_start(&opts, &err);

        assert_non_null(other);
        pl_server_drain_and_free(other, 1000);
    }
    simple("GET", "/metrics", NULL, &r);
    assert_ok(&r, 200);
    assert_null(strstr(r.body.data, "short-lived"));
    assert_non_null(strstr(r.body.data, "service=\"http-test\""));
    resp_free(&r);
}

static void
test_unknown_path_is_404(void **state)
{
    struct resp r;

    (void)state;
    simple("GET", "/nowhere", with_token, &r);
    assert_error(&r, 404, "Not found");
    assert_string_equal(r.allow, "");
    resp_free(&r);
    simple("GET", "/api/items/", with_token, &r); /* empty {id} */
    assert_error(&r, 404, "Not found");
    resp_free(&r);
    simple("GET", "/public/ping/", NULL, &r); /* trailing slash */
    assert_error(&r, 404, "Not found");
    resp_free(&r);
}

static void
test_wrong_method_is_405_with_allow(void **state)
{
    struct resp r;

    (void)state;
    simple("DELETE", "/public/ping", NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    assert_string_equal(r.allow, "GET, HEAD, OPTIONS");
    resp_free(&r);
    simple("GET", "/public/echo", NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    assert_string_equal(r.allow, "POST, PUT, OPTIONS");
    resp_free(&r);
}

static void
test_options_answers_allow(void **state)
{
    struct resp r;

    (void)state;
    simple("OPTIONS", "/public/echo", NULL, &r);
    assert_ok(&r, 204);
    assert_string_equal(r.allow, "POST, PUT, OPTIONS");
    assert_int_equal(r.body.len, 0);
    resp_free(&r);
    simple("OPTIONS", "/nowhere", NULL, &r);
    assert_error(&r, 404, "Not found");
    resp_free(&r);
}

/* ---- bodies ---- */

static void
test_json_body_reaches_handler(void **state)
{
    static const char body[] = "{\"name\":\"caf\xc3\xa9\",\"n\":[1,2]}";
    struct resp r;

    (void)state;
    send_body("POST", "/public/echo", json_ct, body, sizeof(body) - 1, false, &r);
    assert_ok(&r, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "body"), "name")),
                        "caf\xc3\xa9");
    resp_free(&r);
}

static void
test_body_at_limit_is_accepted(void **state)
{
    char body[MAX_BODY + 1];
    struct resp r;

    (void)state;
    /* {"s":"xxx...x"} of exactly MAX_BODY bytes. */
    memset(body, 'x', MAX_BODY);
    memcpy(body, "{\"s\":\"", 6);
    memcpy(body + MAX_BODY - 2, "\"}", 2);
    body[MAX_BODY] = '\0';
    send_body("POST", "/public/echo", json_ct, body, MAX_BODY, false, &r);
    assert_ok(&r, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "len")), MAX_BODY);
    resp_free(&r);
    send_body("POST", "/public/echo", json_ct, body, MAX_BODY, true, &r);
    assert_ok(&r, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "len")), MAX_BODY);
    resp_free(&r);
}

static void
test_declared_length_over_limit_is_413(void **state)
{
    char body[MAX_BODY + 2];
    struct resp r;

    (void)state;
    memset(body, ' ', sizeof(body));
    body[0] = '{';
    body[MAX_BODY] = '}';
    send_body("POST", "/public/echo", NULL, body, MAX_BODY + 1, false, &r);
    assert_error(&r, 413, "body_too_large");
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "message")), "1024"));
    resp_free(&r);
}

static void
test_chunked_body_over_limit_is_413(void **state)
{
    static char body[10000];
    struct resp r;

    (void)state;
    memset(body, ' ', sizeof(body));
    body[0] = '{';
    body[sizeof(body) - 1] = '}';
    send_body("POST", "/public/echo", NULL, body, sizeof(body), true, &r);
    assert_error(&r, 413, "body_too_large");
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "message")), "1024"));
    resp_free(&r);
    /* One byte over is enough. */
    send_body("POST", "/public/echo", NULL, body, MAX_BODY + 1, true, &r);
    assert_error(&r, 413, "body_too_large");
    resp_free(&r);
}

/* {"s":"xx..x"} of n bytes, NUL-terminated, in out[n + 1]. */
static void
json_of_size(char *out, size_t n)
{
    memset(out, 'x', n);
    memcpy(out, "{\"s\":\"", 6);
    memcpy(out + n - 2, "\"}", 2);
    out[n] = '\0';
}

/* A PL_ROUTE_BIG_BODY route takes big_body; every other route stays at max_body. */
static void
test_big_body_route_has_its_own_limit(void **state)
{
    static char body[BIG_BODY + 2];
    struct resp r;

    (void)state;
    json_of_size(body, BIG_BODY);
    for (int chunked = 0; chunked < 2; chunked++) {
        send_body("POST", "/public/big", json_ct, body, BIG_BODY, chunked, &r);
        assert_ok(&r, 200);
        assert_int_equal(json_integer_value(json_object_get(r.json, "len")), BIG_BODY);
        resp_free(&r);
        send_body("POST", "/public/echo", json_ct, body, BIG_BODY, chunked, &r);
        assert_error(&r, 413, "body_too_large");
        assert_non_null(strstr(json_string_value(json_object_get(r.json, "message")), "1024"));
        resp_free(&r);
    }
    json_of_size(body, BIG_BODY + 1);
    for (int chunked = 0; chunked < 2; chunked++) {
        send_body("POST", "/public/big", json_ct, body, BIG_BODY + 1, chunked, &r);
        assert_error(&r, 413, "body_too_large");
        assert_non_null(strstr(json_string_value(json_object_get(r.json, "message")), "4096"));
        resp_free(&r);
    }
}

static void
test_over_limit_on_unknown_path_is_still_413(void **state)
{
    static char body[4000];
    struct resp r;

    (void)state;
    memset(body, 'a', sizeof(body));
    send_body("POST", "/nowhere", NULL, body, sizeof(body), false, &r);
    assert_error(&r, 413, "body_too_large");
    resp_free(&r);
}

static void
test_malformed_json_is_400(void **state)
{
    static const char *const bodies[] = { "{", "{\"a\":}", "not json", "{\"a\":1,\"a\":2}", "" };
    struct resp r;

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        send_body("POST", "/public/echo", json_ct, bodies[i], strlen(bodies[i]), false, &r);
        assert_error(&r, 400, "invalid_json");
        resp_free(&r);
    }
}

static void
test_bad_utf8_is_400(void **state)
{
    static const char *const bodies[] = {
        "{\"a\":\"\xff\"}",
        "{\"a\":\"\xc0\xaf\"}",         /* overlong */
        "{\"a\":\"\xed\xa0\x80\"}",     /* surrogate */
        "{\"a\":\"\xc3\"}",             /* truncated */
        "{\"a\":\"x\\u0000y\"}",       /* escaped NUL */
    };
    struct resp r;

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        send_body("POST", "/public/echo", json_ct, bodies[i], strlen(bodies[i]), false, &r);
        assert_error(&r, 400, "invalid_json");
        resp_free(&r);
    }
}

static void
test_non_json_content_type_is_415(void **state)
{
    static const char *const text[] = { "Content-Type: text/plain", NULL };
    static const char *const form[] = { "Content-Type: application/x-www-form-urlencoded", NULL };
    struct resp r;

    (void)state;
    send_body("POST", "/public/echo", text, "{}", 2, false, &r);
    assert_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
    send_body("POST", "/public/echo", form, "a=b", 3, false, &r);
    assert_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
}

static void
test_json_content_type_variants_accepted(void **state)
{
    static const char *const utf8[] = { "Content-Type: application/json; charset=utf-8", NULL };
    static const char *const merge[] = { "Content-Type: application/merge-patch+json", NULL };
    struct resp r;

    (void)state;
    send_body("PUT", "/public/echo", utf8, "{}", 2, false, &r);
    assert_ok(&r, 200);
    resp_free(&r);
    send_body("PUT", "/public/echo", merge, "{}", 2, false, &r);
    assert_ok(&r, 200);
    resp_free(&r);
}

/* ---- service token ---- */

static void
test_service_token_missing_is_401(void **state)
{
    static const char *const wrong[] = { "X-Service-Token: tok-12", NULL };
    struct resp r;

    (void)state;
    simple("GET", "/api/items/1", NULL, &r);
    assert_error(&r, 401, "Unauthorized");
    assert_string_equal(json_string_value(json_object_get(r.json, "message")),
                        "Valid authentication required.");
    resp_free(&r);
    simple("GET", "/api/items/1", wrong, &r);
    assert_error(&r, 401, "Unauthorized");
    resp_free(&r);
}

static void
test_service_token_present_is_200(void **state)
{
    static const char *const both[] = { "X-Service-Token: " TOKEN,
                                        "Content-Type: application/json", NULL };
    struct resp r;

    (void)state;
    simple("GET", "/api/items/1", with_token, &r);
    assert_ok(&r, 200);
    resp_free(&r);
    send_body("POST", "/api/items", both, "{\"k\":1}", 7, false, &r);
    assert_ok(&r, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "k")), 1);
    resp_free(&r);
}

static void
test_token_checked_before_body(void **state)
{
    struct resp r;

    (void)state;
    /* Without the token, a bad body is not even parsed. */
    send_body("POST", "/api/items", json_ct, "{", 1, false, &r);
    assert_error(&r, 401, "Unauthorized");
    resp_free(&r);
}

/* ---- request ids ---- */

static void
test_request_id_echoed_when_valid(void **state)
{
    static const char *const rid[] = { "X-Request-Id: abc-123.x_y:z", NULL };
    struct resp r;

    (void)state;
    simple("GET", "/public/ping", rid, &r);
    assert_ok(&r, 200);
    assert_string_equal(r.request_id, "abc-123.x_y:z");
    resp_free(&r);
    simple("GET", "/nowhere", rid, &r); /* on errors too */
    assert_error(&r, 404, "Not found");
    assert_string_equal(r.request_id, "abc-123.x_y:z");
    resp_free(&r);
}

static void
test_request_id_generated_when_invalid_or_absent(void **state)
{
    static const char *const bad[] = { "X-Request-Id: has space", NULL };
    char long_id[160];
    char hdr[200];
    const char *const too_long[] = { hdr, NULL };
    char first[256];
    struct resp r;

    (void)state;
    simple("GET", "/public/ping", NULL, &r);
    assert_ok(&r, 200);
    assert_true(pl_uuid_valid(r.request_id));
    assert_int_equal(r.request_id[14], '7');
    memcpy(first, r.request_id, sizeof(first));
    resp_free(&r);

    simple("GET", "/public/ping", bad, &r);
    assert_true(pl_uuid_valid(r.request_id));
    assert_string_not_equal(r.request_id, first);
    resp_free(&r);

    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", long_id);
    simple("GET", "/public/ping", too_long, &r);
    assert_true(pl_uuid_valid(r.request_id));
    resp_free(&r);
}

/* ---- connections ---- */

static void
test_keep_alive_reuses_connection(void **state)
{
    CURL *h = curl_easy_init();
    struct call ping = { "GET", "/public/ping", NULL, NULL, 0, false };
    struct call echo = { "POST", "/public/echo", json_ct, "{\"a\":1}", 7, false };
    struct call missing = { "GET", "/nowhere", NULL, NULL, 0, false };
    struct resp r;

    (void)state;
    assert_non_null(h);
    perform(h, &ping, &r);
    assert_ok(&r, 200);
    assert_int_equal(r.new_conns, 1);
    resp_free(&r);
    perform(h, &ping, &r);
    assert_ok(&r, 200);
    assert_int_equal(r.new_conns, 0);
    resp_free(&r);
    /* A request with a body, then an error reply: the connection still survives. */
    perform(h, &echo, &r);
    assert_ok(&r, 200);
    assert_int_equal(r.new_conns, 0);
    resp_free(&r);
    perform(h, &missing, &r);
    assert_error(&r, 404, "Not found");
    assert_int_equal(r.new_conns, 0);
    resp_free(&r);
    perform(h, &ping, &r);
    assert_ok(&r, 200);
    assert_int_equal(r.new_conns, 0);
    resp_free(&r);
    curl_easy_cleanup(h);
}

static void
test_connection_usable_after_chunked_413(void **state)
{
    static char body[3000];
    CURL *h = curl_easy_init();
    struct call big = { "POST", "/public/echo", NULL, body, sizeof(body), true };
    struct call ping = { "GET", "/public/ping", NULL, NULL, 0, false };
    struct resp r;

    (void)state;
    memset(body, ' ', sizeof(body));
    perform(h, &big, &r);
    assert_error(&r, 413, "body_too_large");
    resp_free(&r);
    perform(h, &ping, &r);
    assert_ok(&r, 200);
    resp_free(&r);
    curl_easy_cleanup(h);
}

/* ---- set-up ---- */

static int
setup_server(void **state)
{
    struct pl_server_opts opts = {
        .service = "http-test",
        .port = 0,
        .threads = 2,
        .max_body = MAX_BODY,
        .big_body = BIG_BODY,
        .service_token = TOKEN,
        .routes = routes,
    };
    struct pl_err err = PL_ERR_INIT;

    (void)state;
    pl_log_init("http-test", getenv("PARLEY_TEST_LOG") ? PL_LOG_DEBUG : PL_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srv = pl_server_start(&opts, &err);
    if (srv == NULL) {
        fprintf(stderr, "pl_server_start: %s\n", err.msg);
        return -1;
    }
    if (pl_server_port(srv) == 0) {
        fprintf(stderr, "pl_server_port returned 0\n");
        return -1;
    }
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u", (unsigned)pl_server_port(srv));
    return 0;
}

static int
teardown_server(void **state)
{
    (void)state;
    pl_server_drain_and_free(srv, 2000);
    srv = NULL;
    curl_global_cleanup();
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_route),
        cmocka_unit_test(test_path_params),
        cmocka_unit_test(test_builtin_healthz),
        cmocka_unit_test(test_metrics_count_requests),
        cmocka_unit_test(test_stopped_server_leaves_metrics),
        cmocka_unit_test(test_done_and_decorate_hooks),
        cmocka_unit_test(test_unknown_path_is_404),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_options_answers_allow),
        cmocka_unit_test(test_json_body_reaches_handler),
        cmocka_unit_test(test_body_at_limit_is_accepted),
        cmocka_unit_test(test_declared_length_over_limit_is_413),
        cmocka_unit_test(test_chunked_body_over_limit_is_413),
        cmocka_unit_test(test_big_body_route_has_its_own_limit),
        cmocka_unit_test(test_over_limit_on_unknown_path_is_still_413),
        cmocka_unit_test(test_malformed_json_is_400),
        cmocka_unit_test(test_bad_utf8_is_400),
        cmocka_unit_test(test_non_json_content_type_is_415),
        cmocka_unit_test(test_json_content_type_variants_accepted),
        cmocka_unit_test(test_service_token_missing_is_401),
        cmocka_unit_test(test_service_token_present_is_200),
        cmocka_unit_test(test_token_checked_before_body),
        cmocka_unit_test(test_request_id_echoed_when_valid),
        cmocka_unit_test(test_request_id_generated_when_invalid_or_absent),
        cmocka_unit_test(test_keep_alive_reuses_connection),
        cmocka_unit_test(test_connection_usable_after_chunked_413),
    };

    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
