/*
 * proxy_floor.c - bench-proxy-floor: the cheapest reverse proxy the fixed libraries allow, to
 * measure how close a gateway built on them could come to nginx (issue 4's target).
 *
 * It does nothing but relay: no API key, no rate limit, no api_logs, no header filtering.  Each of
 * its threads runs one event loop over its own libmicrohttpd daemon (external epoll mode, its own
 * SO_REUSEPORT listening socket) and its own libcurl multi handle, so a request never changes
 * thread: the loop reads it, suspends the connection, starts the upstream GET on the same loop,
 * and resumes the connection with the answer when curl finishes.  That is the architecture the
 * product gateway does not have (it hands each call to a client thread and back); its rate beside
 * nginx in one run bounds what that architecture could reach before any gateway work is added.
 *
 * usage: bench-proxy-floor PORT UPSTREAM_BASE [THREADS]   (GET only; runs until killed)
 */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define MAX_EVENTS 64
#define BODY_MAX (1 << 20)

#define SPARE 256

struct loop {
    CURL *spare[SPARE]; /* easy handles kept for reuse, as a real client would */
    int nspare;
    struct MHD_Daemon *mhd;
    CURLM *multi;
    int ep;
    int mhd_fd;
    long curl_timeout_ms; /* curl's timer, or -1 */
};

/* One relayed request: the connection waits suspended while its call runs. */
struct call {
    struct MHD_Connection *conn;
    CURL *easy;
    char *body;
    size_t len;
    long status;
    int done; /* 0 running, 1 answered, -1 failed */
};

static const char *upstream;
static unsigned short port;

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
    struct call *c = arg;
    size_t add = size * n;
    char *grown;

    if (c->len + add > BODY_MAX || (grown = realloc(c->body, c->len + add + 1)) == NULL)
        return 0;
    c->body = grown;
    memcpy(c->body + c->len, p, add);
    c->len += add;
    return add;
}

static int
on_socket(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct loop *l = arg;
    struct epoll_event ev = { .events = 0, .data.fd = s };

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(l->multi, s, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (sockp != NULL) {
        epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev);
    } else {
        epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev);
        curl_multi_assign(l->multi, s, l);
    }
    return 0;
}

static int
on_timer(CURLM *m, long timeout_ms, void *arg)
{
    (void)m;
    ((struct loop *)arg)->curl_timeout_ms = timeout_ms;
    return 0;
}

static _Thread_local struct loop *this_loop;

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    struct call *c = *req_cls;
    char target[2048];

    (void)cls, (void)version, (void)upload, (void)upload_size;
    if (c == NULL) { /* headers in: nothing to do until the (empty) body is complete */
        *req_cls = c = calloc(1, sizeof(*c));
        return c != NULL ? MHD_YES : MHD_NO;
    }
    if (c->done != 0) { /* resumed: the answer */
        struct MHD_Response *r = MHD_create_response_from_buffer(
            c->done > 0 ? c->len : 0, c->done > 0 ? c->body : (void *)"", MHD_RESPMEM_MUST_COPY);
        enum MHD_Result rc;

        MHD_add_response_header(r, "Content-Type", "application/json");
        rc = MHD_queue_response(conn, c->done > 0 ? (unsigned)c->status : 502, r);
        MHD_destroy_response(r);
        return rc;
    }
    if (strcmp(method, "GET") != 0 || c->easy != NULL)
        return MHD_NO;
    snprintf(target, sizeof(target), "%s%s", upstream, url);
    c->conn = conn;
    if (this_loop->nspare > 0) {
        c->easy = this_loop->spare[--this_loop->nspare];
        curl_easy_reset(c->easy);
    } else {
        c->easy = curl_easy_init();
    }
    curl_easy_setopt(c->easy, CURLOPT_URL, target);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, 10000L);
    MHD_suspend_connection(conn);
    curl_multi_add_handle(this_loop->multi, c->easy);
    return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct call *c = *req_cls;

    (void)cls, (void)conn, (void)toe;
    if (c == NULL)
        return;
    if (c->easy != NULL) {
        curl_multi_remove_handle(this_loop->multi, c->easy);
        curl_easy_cleanup(c->easy);
    }
    free(c->body);
    free(c);
    *req_cls = NULL;
}

/* Finished transfers: each one's connection is resumed with its outcome. */
static void
reap(struct loop *l)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
        struct call *c;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &c->status);
        c->done = msg->data.result == CURLE_OK ? 1 : -1;
        curl_multi_remove_handle(l->multi, c->easy);
        if (l->nspare < SPARE)
            l->spare[l->nspare++] = c->easy;
        else
            curl_easy_cleanup(c->easy);
        c->easy = NULL;
        MHD_resume_connection(c->conn);
    }
}

static void *
loop_main(void *arg)
{
    struct loop *l = arg;
    struct epoll_event ev[MAX_EVENTS];
    int running;

    this_loop = l;
    for (;;) {
        MHD_UNSIGNED_LONG_LONG mhd_ms = 0;
        long wait_ms = 1000;
        int n;

        if (MHD_get_timeout(l->mhd, &mhd_ms) == MHD_YES && (long)mhd_ms < wait_ms)
            wait_ms = (long)mhd_ms;
        if (l->curl_timeout_ms >= 0 && l->curl_timeout_ms < wait_ms)
            wait_ms = l->curl_timeout_ms;
        n = epoll_wait(l->ep, ev, MAX_EVENTS, (int)wait_ms);
        if (n < 0 && errno != EINTR)
            return NULL;
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;

            if (fd == l->mhd_fd)
                continue; /* MHD_run below */
            curl_multi_socket_action(l->multi, fd,
                                     (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                                         (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                                         (ev[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0),
                                     &running);
        }
        if (n == 0)
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        reap(l);
        MHD_run(l->mhd); /* requests in, resumed connections answered */
    }
}

static void
loop_start(struct loop *l)
{
    struct epoll_event ev = { .events = EPOLLIN };

    l->curl_timeout_ms = -1;
    l->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO |
                                  MHD_USE_ERROR_LOG,
                              port, NULL, NULL, on_request, NULL,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (l->mhd == NULL) {
        fprintf(stderr, "bench-proxy-floor: cannot listen on port %u\n", port);
        exit(1);
    }
    l->mhd_fd = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    ev.data.fd = l->mhd_fd;
    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->mhd_fd, &ev);
    l->multi = curl_multi_init();
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 256L);
}

int
main(int argc, char **argv)
{
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    struct loop *loops;
    pthread_t *tids;

    if (argc < 3 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bench-proxy-floor PORT UPSTREAM_BASE [THREADS]\n");
        return 2;
    }
    port = (unsigned short)atoi(argv[1]);
    upstream = argv[2];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    loops = calloc((size_t)threads, sizeof(*loops));
    tids = calloc((size_t)threads, sizeof(*tids));
    for (int i = 0; i < threads; i++) {
        loop_start(&loops[i]);
        pthread_create(&tids[i], NULL, loop_main, &loops[i]);
    }
    pthread_join(tids[0], NULL);
    return 0;
}
