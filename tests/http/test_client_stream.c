/*
 * test_client_stream.c - the streamed calls of common/client_stream.c against the real
 * common/http.c in-process: a body pushed in pieces arrives whole and in order (declared length
 * and chunked), a refusal on the headers comes back before the body, an answer larger than the
 * stream's buffer is read back byte for byte, and failures map to 503 and 504.
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

#define TOKEN "stream-test-token"
#define BIG (1u << 20) /* the answer of /big: sixteen times the stream's buffer */

static struct pl_server *srv;
static char base[64];

/* What /sink saw of a body: its length and a position-weighted checksum (order matters). */
struct sink {
    unsigned long long n, sum;
};

static unsigned char
pattern(size_t i)
{
    return (unsigned char)((i * 7 + i / 251) & 0xff);
}

static int
sink_chunk(struct pl_req *req, void *arg, const char *data, size_t n)
{
    struct sink *s = arg;

    (void)req;
    for (size_t i = 0; i < n; i++)
        s->sum += (unsigned long long)(unsigned char)data[i] * ((s->n + i) % 1000 + 1);
    s->n += n;
    return PL_OK;
}

static enum MHD_Result
sink_end(struct pl_req *req, void *arg)
{
    struct sink *s = arg;

    return pl_reply_json(req, 201, json_pack("{s:I, s:I}", "bytes", (json_int_t)s->n, "sum",
                                             (json_int_t)s->sum));
}

/* Takes any body in pieces, unless X-Refuse asks it to refuse on the headers. */
static enum MHD_Result
h_sink(struct pl_req *req)
{
    struct sink *s = pl_arena_alloc(pl_req_arena(req), sizeof(*s));

    if (pl_req_header(req, "X-Refuse") != NULL)
        return pl_reply_error(req, 415, "unsupported_media_type", "refused on the headers");
    memset(s, 0, sizeof(*s));
    return pl_req_stream(req, 64u << 20, sink_chunk, sink_end, s);
}

static enum MHD_Result
h_big(struct pl_req *req)
{
    char *body = malloc(BIG);
    enum MHD_Result rc;

    assert_non_null(body);
    for (size_t i = 0; i < BIG; i++)
        body[i] = (char)pattern(i);
    pl_req_reply_header(req, "ETag", "\"big\"");
    rc = pl_reply_text(req, 200, "application/octet-stream", body, BIG);
    free(body);
    return rc;
}

static enum MHD_Result
h_slow(struct pl_req *req)
{
    usleep(600 * 1000);
    return pl_reply_json(req, 200, json_object());
}

static const struct pl_route routes[] = {
    { "POST", "/sink", h_sink, PL_ROUTE_STREAM },
    { "GET", "/big", h_big, 0 },
    { "GET", "/slow", h_slow, 0 },
    { NULL, NULL, NULL, 0 },
};

static int
setup(void **state)
{
    (void)state;
    pl_log_init("stream-test", PL_LOG_ERROR);
    pl_client_global_init(TOKEN);
    srv = local_server_start("stream-test", TOKEN, routes, 2, base);
    return srv != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    pl_server_drain_and_free(srv, 2000);
    return 0;
}

/* The whole answer of s, read cap bytes at a time (malloc'd, *n bytes). */
static char *
read_all(struct pl_client_stream *s, size_t cap, size_t *n)
{
    struct pl_err err = PL_ERR_INIT;
    char *out = NULL;
    char *piece = malloc(cap);
    long k;

    *n = 0;
    assert_non_null(piece);
    while ((k = pl_client_stream_read(s, piece, cap, &err)) > 0) {
        out = realloc(out, *n + (size_t)k + 1);
        assert_non_null(out);
        memcpy(out + *n, piece, (size_t)k);
        *n += (size_t)k;
    }
    assert_int_equal(k, 0);
    free(piece);
    if (out != NULL)
        out[*n] = '\0';
    return out;
}

/* Pushes 3 MiB of the pattern in odd-sized pieces to /sink; checks what it saw. */
static void
push_and_check(long long declared)
{
    const size_t total = 3u << 20, piece = 10007;
    const char *hdrs[] = { "Content-Type: application/octet-stream", NULL };
    struct pl_client_opts o = { hdrs, NULL, 0, 2000 };
    struct pl_err err = PL_ERR_INIT;
    unsigned long long sum = 0;
    char *buf = malloc(total), *answer;
    struct pl_client_stream *s;
    char url[128];
    json_t *j;
    size_t n;

    assert_non_null(buf);
    for (size_t i = 0; i < total; i++) {
        buf[i] = (char)pattern(i);
        sum += (unsigned long long)pattern(i) * (i % 1000 + 1);
    }
    snprintf(url, sizeof(url), "%s/sink", base);
    s = pl_client_stream_open("POST", url, &o, declared, &err);
    assert_non_null(s);
    assert_false(pl_client_stream_answered(s));
    for (size_t off = 0; off < total; off += piece)
        assert_int_equal(pl_client_stream_send(s, buf + off, off + piece > total ? total - off : piece,
                                               &err),
                         PL_OK);
    assert_int_equal(pl_client_stream_wait(s, &err), 201);
    answer = read_all(s, 7, &n);
    j = json_loadb(answer, n, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes")), total);
    assert_true((unsigned long long)json_integer_value(json_object_get(j, "sum")) == sum);
    json_decref(j);
    free(answer);
    free(buf);
    pl_client_stream_free(s);
}

static void
test_body_pushed_in_pieces_arrives_whole(void **state)
{
    (void)state;
    push_and_check(3 << 20);
}

static void
test_body_of_unknown_length_goes_chunked(void **state)
{
    (void)state;
    push_and_check(-1);
}

static void
test_refusal_on_headers_comes_before_the_body(void **state)
{
    const char *hdrs[] = { "X-Refuse: yes", NULL };
    struct pl_client_opts o = { hdrs, NULL, 0, 2000 };
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_stream *s;
    char url[128], *answer;
    size_t n;

    (void)state;
    snprintf(url, sizeof(url), "%s/sink", base);
    s = pl_client_stream_open("POST", url, &o, 5 << 20, &err);
    assert_non_null(s);
    assert_true(pl_client_stream_answered(s));
    assert_int_equal(pl_client_stream_send(s, "abc", 3, &err), PL_ERR);
    assert_int_equal(pl_client_stream_wait(s, &err), 415);
    assert_string_equal(pl_client_stream_header(s, "content-type"), "application/json");
    answer = read_all(s, 4096, &n);
    assert_non_null(strstr(answer, "unsupported_media_type"));
    free(answer);
    pl_client_stream_free(s);
}

static void
test_answer_larger_than_the_buffer_reads_back_whole(void **state)
{
    struct pl_client_opts o = { NULL, NULL, 0, 2000 };
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_stream *s;
    char url[128], *answer;
    size_t n;

    (void)state;
    snprintf(url, sizeof(url), "%s/big", base);
    s = pl_client_stream_open("GET", url, &o, 0, &err);
    assert_non_null(s);
    assert_int_equal(pl_client_stream_wait(s, &err), 200);
    assert_true(pl_client_stream_length(s) == BIG);
    assert_string_equal(pl_client_stream_header(s, "ETag"), "\"big\"");
    assert_null(pl_client_stream_header(s, "X-Missing"));
    answer = read_all(s, 3000, &n);
    assert_int_equal(n, BIG);
    for (size_t i = 0; i < BIG; i++)
        if ((unsigned char)answer[i] != pattern(i))
            fail_msg("byte %zu differs", i);
    free(answer);
    pl_client_stream_free(s);
}

static void
test_unreachable_is_503_and_slow_is_504(void **state)
{
    struct pl_client_opts o = { NULL, NULL, 0, 300 };
    struct pl_err err = PL_ERR_INIT;
    char url[128];

    (void)state;
    assert_null(pl_client_stream_open("GET", "http://127.0.0.1:1/x", &o, 0, &err));
    assert_int_equal(err.status, 503);
    err = (struct pl_err)PL_ERR_INIT;
    snprintf(url, sizeof(url), "%s/slow", base);
    assert_null(pl_client_stream_open("GET", url, &o, 0, &err));
    assert_int_equal(err.status, 504);
    assert_string_equal(err.code, "upstream_timeout");
}

static void
test_free_of_an_unfinished_call(void **state)
{
    struct pl_client_opts o = { NULL, NULL, 0, 2000 };
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_stream *s;
    char url[128], piece[100];

    (void)state;
    pl_client_stream_free(NULL);
    snprintf(url, sizeof(url), "%s/big", base);
    s = pl_client_stream_open("GET", url, &o, 0, &err);
    assert_non_null(s);
    assert_int_equal(pl_client_stream_read(s, piece, sizeof(piece), &err), sizeof(piece));
    pl_client_stream_free(s); /* mid-answer: the connection is dropped, nothing leaks */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_pushed_in_pieces_arrives_whole),
        cmocka_unit_test(test_body_of_unknown_length_goes_chunked),
        cmocka_unit_test(test_refusal_on_headers_comes_before_the_body),
        cmocka_unit_test(test_answer_larger_than_the_buffer_reads_back_whole),
        cmocka_unit_test(test_unreachable_is_503_and_slow_is_504),
        cmocka_unit_test(test_free_of_an_unfinished_call),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
