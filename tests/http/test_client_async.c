/*
 * test_client_async.c - deferred replies (pl_req_defer, common/http.c) fed by the client's event
 * loop (pl_client_job_*, common/client_async.c), against the real server in-process: a "front"
 * server of two pool threads relays to a "back" server, as the gateway does.  The relayed call
 * keeps the caller's request id, body and method; timeouts and refused connections come back as
 * 504 and 503; a job restarted from its done function runs again; and eight slow calls at once
 * through two pool threads finish together, which they could not if each held its thread.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "parley/arena.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/http.h"
#include "parley/log.h"

#include "local_server.h"
#include "parley/uuid.h"

#define TOKEN "client-async-token"
#define SLOW_MS 600

static struct pl_server *front, *back;
static char front_base[64], back_base[64];

/* ---- the back server: what a service sees of its caller ---- */

static enum MHD_Result
h_who(struct pl_req *req)
{
    const char *rid = pl_req_header(req, "X-Request-Id");
    json_t *body = pl_req_json(req);

    return pl_reply_json(req, 200, json_pack("{s:s, s:s, s:O?}", "request_id", rid ? rid : "",
                                             "method", pl_req_method(req), "body", body));
}

static enum MHD_Result
h_slow(struct pl_req *req)
{
    usleep(SLOW_MS * 1000);
    return pl_reply_json(req, 200, json_object());
}

static const struct pl_route back_routes[] = {
    { "GET", "/who", h_who, 0 },
    { "PATCH", "/who", h_who, PL_ROUTE_JSON },
    { "GET", "/slow", h_slow, 0 },
    { NULL, NULL, NULL, 0 },
};

/* ---- the front server: relays /relay/<path> to the back, or to nowhere ---- */

static void
job_release(void *job)
{
    pl_client_job_release(job);
}

static void
wake_on_done(struct pl_client_job *job, void *arg)
{
    (void)job;
    pl_wake_fire(arg);
}

static enum MHD_Result
resumed(struct pl_req *req, void *arg, bool abandoned)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_resp r;

    if (abandoned)
        return pl_reply_error(req, 503, "shutting_down", "abandoned");
    if (pl_client_job_result(arg, pl_req_arena(req), &r, &err) != PL_OK)
        return pl_reply_err(req, &err);
    return pl_reply_text(req, (unsigned)r.status, r.content_type, r.body, r.len);
}

/* Starts the call to url with the request's method, body and ?timeout=ms; holds no thread. */
static enum MHD_Result
relay_to(struct pl_req *req, const char *url)
{
    const char *t = pl_req_query(req, "timeout");
    struct pl_client_opts o = { NULL, NULL, 0, t ? atol(t) : 2000 };
    struct pl_client_job *job;

    o.body = pl_req_body(req, &o.body_len);
    job = pl_client_job_new(pl_req_method(req), url, &o);
    pl_arena_defer(pl_req_arena(req), job_release, job);
    pl_client_job_start(job, 0, wake_on_done, pl_req_defer(req, resumed, job));
    return MHD_YES;
}

static enum MHD_Result
h_relay(struct pl_req *req)
{
    char url[160];

    snprintf(url, sizeof(url), "%s/%s", back_base, pl_req_param(req, "path"));
    return relay_to(req, url);
}

static enum MHD_Result
h_nowhere(struct pl_req *req)
{
    return relay_to(req, "http://127.0.0.1:1/x"); /* nothing listens on port 1 */
}

static const struct pl_route front_routes[] = {
    { "GET", "/relay/{path}", h_relay, 0 },
    { "PATCH", "/relay/{path}", h_relay, 0 },
    { "GET", "/nowhere", h_nowhere, 0 },
    { NULL, NULL, NULL, 0 },
};

static int
setup(void **state)
{
    (void)state;
    pl_log_init("client-async-test", PL_LOG_ERROR);
    pl_client_global_init(TOKEN);
    /* The back's slow handler holds its thread; connections land on thread fd % pool size, so
     * enough threads that eight connections seldom share one. */
    back = local_server_start("client-async-test", TOKEN, back_routes, 32, back_base);
    front = local_server_start("client-async-test", TOKEN, front_routes, 2, front_base);
    return back != NULL && front != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    pl_server_drain_and_free(front, 2000);
    pl_server_drain_and_free(back, 2000);
    pl_client_async_shutdown();
    return 0;
}

/* One call to the front server with the given method, body and request id; the answer's JSON. */
static json_t *
front_call(const char *method, const char *path, const char *body, const char *rid, long *status)
{
    struct pl_arena *a = pl_arena_new(1024);
    struct pl_client_resp r;
    struct pl_err err = PL_ERR_INIT;
    char url[192];
    json_t *out = NULL;

    snprintf(url, sizeof(url), "%s%s", front_base, path);
    pl_log_set_request_id(rid);
    if (pl_client_call(a, method, url, body, 5000, &r, &err) == PL_OK) {
        *status = r.status;
        out = json_incref(r.json);
    }
    pl_log_set_request_id(NULL);
    pl_arena_free(a);
    return out;
}

static void
test_relayed_call_keeps_request_id_method_and_body(void **state)
{
    long status = 0;
    json_t *j;

    (void)state;
    j = front_call("GET", "/relay/who", NULL, "trace-async.1", &status);
    assert_int_equal(status, 200);
    assert_non_null(j);
    /* The id reached the back server through the job made on the front's pool thread. */
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "trace-async.1");
    json_decref(j);
    j = front_call("PATCH", "/relay/who", "{\"k\":[1,2]}", "trace-async.2", &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "PATCH");
    assert_int_equal(json_integer_value(json_array_get(
                         json_object_get(json_object_get(j, "body"), "k"), 1)), 2);
    json_decref(j);
}

static void
test_timeout_is_504_and_refused_is_503(void **state)
{
    long status = 0;
    json_t *j;

    (void)state;
    j = front_call("GET", "/relay/slow?timeout=200", NULL, NULL, &status);
    assert_int_equal(status, 504);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "upstream_timeout");
    json_decref(j);
    j = front_call("GET", "/nowhere", NULL, NULL, &status);
    assert_int_equal(status, 503);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "upstream_unavailable");
    json_decref(j);
}

/* ---- slow calls at once ---- */

static void *
slow_caller(void *arg)
{
    long *status = arg;
    json_t *j = front_call("GET", "/relay/slow", NULL, NULL, status);

    json_decref(j);
    return NULL;
}

static void
test_waiting_calls_hold_no_pool_thread(void **state)
{
    enum { N = 8 };
    pthread_t t[N];
    long status[N] = { 0 };
    int64_t began = pl_time_mono_us(), took_ms;

    (void)state;
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, slow_caller, &status[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    took_ms = (pl_time_mono_us() - began) / 1000;
    for (int i = 0; i < N; i++)
        assert_int_equal(status[i], 200);
    /* Held threads: at least 4 * SLOW_MS (eight calls on two front threads).  Waiting on no
     * thread: SLOW_MS, or twice that if two back connections happen to share a back thread. */
    assert_true(took_ms < 3 * SLOW_MS);
}

/* ---- the job API alone: a done function may start its job again ---- */

struct restarts {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int runs;
    bool over;
    int status; /* of the last run's error */
};

static void
restart_once(struct pl_client_job *job, void *arg)
{
    struct restarts *r = arg;
    struct pl_client_resp resp;
    struct pl_err err = PL_ERR_INIT;
    bool again;

    pthread_mutex_lock(&r->mu);
    again = ++r->runs == 1;
    r->status = pl_client_job_result(job, NULL, &resp, &err) == PL_OK ? 0 : err.status;
    pthread_mutex_unlock(&r->mu);
    if (again) {
        pl_client_job_start(job, 20, restart_once, r);
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->over = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void
test_done_may_restart_its_job(void **state)
{
    struct restarts r = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, 0 };
    struct pl_client_opts o = { NULL, NULL, 0, 1000 };
    struct pl_client_job *job = pl_client_job_new("GET", "http://127.0.0.1:1/x", &o);

    (void)state;
    pl_client_job_start(job, 0, restart_once, &r);
    pl_client_job_release(job); /* the loop keeps it while it runs */
    pthread_mutex_lock(&r.mu);
    while (!r.over)
        pthread_cond_wait(&r.cond, &r.mu);
    pthread_mutex_unlock(&r.mu);
    assert_int_equal(r.runs, 2);
    assert_int_equal(r.status, 503);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relayed_call_keeps_request_id_method_and_body),
        cmocka_unit_test(test_timeout_is_504_and_refused_is_503),
        cmocka_unit_test(test_waiting_calls_hold_no_pool_thread),
        cmocka_unit_test(test_done_may_restart_its_job),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
