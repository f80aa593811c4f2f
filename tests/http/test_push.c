/*
 * test_push.c - push streams (common/http_push.c) on the real common/http.c in-process: bytes
 * written from another thread arrive in order, also after the connection slept (suspended); the
 * end ends the chunked body; a client that reads nothing is dropped once its queue would overflow
 * and its connection closed; a client that left is noticed at the next write; the server's drain
 * ends open streams instead of waiting for them.  Raw sockets, so nothing buffers on our side.
 *
 * PARLEY_TEST_LOG=1 shows the server's log lines.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "parley/err.h"
#include "parley/http.h"
#include "parley/log.h"

#define QUEUE_MAX (64 * 1024)

static struct pl_server *srv;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct pl_push *current; /* the last stream answered, for the test to feed */

static enum MHD_Result
h_push(struct pl_req *req)
{
    struct pl_push *p = pl_push_new(req, QUEUE_MAX);
    enum MHD_Result rc;

    pl_push_write(p, "first\n", 6); /* written before the answer: waits in the queue */
    pl_req_reply_header(req, "Cache-Control", "no-cache");
    rc = pl_reply_push(req, p, "text/event-stream");
    pthread_mutex_lock(&mu);
    current = p; /* the caller's reference goes to the test */
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    return rc;
}

static const struct pl_route routes[] = {
    { "GET", "/push", h_push, PL_ROUTE_PUBLIC },
    { NULL, NULL, NULL, 0 },
};

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects to s (rcvbuf > 0: that receive buffer), asks for /push, returns the socket. */
static int
connect_push(struct pl_server *s, int rcvbuf)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(pl_server_port(s)) };
    static const char req[] = "GET /push HTTP/1.1\r\nHost: t\r\n\r\n";
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    return fd;
}

/* Waits for the handler to publish its stream and takes it. */
static struct pl_push *
take_stream(void)
{
    struct pl_push *p;

    pthread_mutex_lock(&mu);
    while (current == NULL)
        pthread_cond_wait(&cv, &mu);
    p = current;
    current = NULL;
    pthread_mutex_unlock(&mu);
    return p;
}

/* Reads into buf (NUL-terminated) until it holds want, EOF, or timeout_ms.  Returns bytes read,
 * or -1 at EOF/error before want appeared. */
static ssize_t
read_until(int fd, char *buf, size_t cap, size_t *len, const char *want, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;

    while (strstr(buf, want) == NULL) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (now_ms() >= deadline || poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
            return -2;
        n = read(fd, buf + *len, cap - 1 - *len);
        if (n <= 0)
            return -1;
        *len += (size_t)n;
        buf[*len] = '\0';
    }
    return (ssize_t)*len;
}

/* True when the peer closes fd (after any data) within timeout_ms. */
static bool
closes_within(int fd, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    char junk[65536];

    while (now_ms() < deadline) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
            return false;
        n = read(fd, junk, sizeof(junk));
        if (n <= 0)
            return true;
    }
    return false;
}

static void
test_bytes_arrive_in_order_also_after_sleeping(void **state)
{
    char buf[4096] = "";
    size_t len = 0;
    int fd = connect_push(srv, 0);
    struct pl_push *p = take_stream();

    (void)state;
    assert_true(read_until(fd, buf, sizeof(buf), &len, "first\n", 2000) > 0);
    assert_non_null(strstr(buf, "Content-Type: text/event-stream"));
    assert_non_null(strstr(buf, "Cache-Control: no-cache"));
    usleep(300000); /* the queue is empty: the connection is suspended by now */
    assert_int_equal(pl_push_write(p, "second\n", 7), PL_OK);
    assert_true(read_until(fd, buf, sizeof(buf), &len, "second\n", 2000) > 0);
    assert_int_equal(pl_push_write(p, "third\n", 6), PL_OK);
    assert_int_equal(pl_push_write(p, "fourth\n", 7), PL_OK);
    assert_true(read_until(fd, buf, sizeof(buf), &len, "fourth\n", 2000) > 0);
    assert_true(strstr(buf, "first\n") < strstr(buf, "second\n"));
    assert_true(strstr(buf, "third\n") < strstr(buf, "fourth\n"));
    pl_push_end(p);
    assert_true(read_until(fd, buf, sizeof(buf), &len, "\r\n0\r\n\r\n", 2000) > 0);
    assert_int_equal(pl_push_write(p, "late\n", 5), PL_ERR);
    assert_false(pl_push_alive(p));
    pl_push_release(p);
    close(fd);
}

static void
test_client_that_reads_nothing_is_dropped(void **state)
{
    char block[8192];
    int fd = connect_push(srv, 4096);
    struct pl_push *p = take_stream();
    size_t written = 0;
    int rc = PL_OK;

    (void)state;
    memset(block, 'x', sizeof(block));
    block[sizeof(block) - 1] = '\n';
    /* socket buffers take some megabytes at most; then the 64 KiB queue fills */
    while (rc == PL_OK && written < (64u << 20)) {
        rc = pl_push_write(p, block, sizeof(block));
        written += sizeof(block);
        if (rc == PL_OK && pl_push_room(p) < sizeof(block))
            usleep(1000); /* let MHD move bytes to the socket until it cannot */
    }
    assert_int_equal(rc, PL_ERR);
    assert_int_equal(pl_push_room(p), 0);
    assert_false(pl_push_alive(p));
    assert_true(closes_within(fd, 5000)); /* what was in flight, then the end */
    pl_push_release(p);
    close(fd);
}

static void
test_client_gone_is_noticed_at_a_write(void **state)
{
    char buf[1024] = "";
    size_t len = 0;
    int fd = connect_push(srv, 0);
    struct pl_push *p = take_stream();
    long long deadline = now_ms() + 3000;

    (void)state;
    assert_true(read_until(fd, buf, sizeof(buf), &len, "first\n", 2000) > 0);
    close(fd);
    while (pl_push_write(p, "ping\n", 5) == PL_OK && now_ms() < deadline)
        usleep(50000);
    assert_false(pl_push_alive(p));
    pl_push_release(p);
}

static void
test_drain_ends_open_streams(void **state)
{
    struct pl_server_opts opts = { .service = "push-drain", .threads = 2, .max_body = 1024,
                                   .routes = routes };
    struct pl_err err = PL_ERR_INIT;
    struct pl_server *other = pl_server_start(&opts, &err);
    char buf[1024] = "";
    size_t len = 0;
    int fd;
    struct pl_push *p;
    long long t0;

    (void)state;
    assert_non_null(other);
    fd = connect_push(other, 0);
    p = take_stream();
    assert_true(read_until(fd, buf, sizeof(buf), &len, "first\n", 2000) > 0);
    usleep(100000); /* suspended */
    t0 = now_ms();
    pl_server_drain_and_free(other, 5000);
    assert_true(now_ms() - t0 < 2000);
    assert_true(read_until(fd, buf, sizeof(buf), &len, "\r\n0\r\n\r\n", 2000) > 0);
    assert_false(pl_push_alive(p));
    pl_push_release(p);
    close(fd);
}

static int
setup_server(void **state)
{
    struct pl_server_opts opts = { .service = "push-test", .threads = 2, .max_body = 1024,
                                   .routes = routes };
    struct pl_err err = PL_ERR_INIT;

    (void)state;
    pl_log_init("push-test", getenv("PARLEY_TEST_LOG") ? PL_LOG_DEBUG : PL_LOG_ERROR);
    srv = pl_server_start(&opts, &err);
    return srv == NULL ? -1 : 0;
}

static int
teardown_server(void **state)
{
    (void)state;
    pl_server_drain_and_free(srv, 2000);
    srv = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_arrive_in_order_also_after_sleeping),
        cmocka_unit_test(test_client_that_reads_nothing_is_dropped),
        cmocka_unit_test(test_client_gone_is_noticed_at_a_write),
        cmocka_unit_test(test_drain_ends_open_streams),
    };

    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
