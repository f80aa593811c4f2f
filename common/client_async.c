/*
 * client_async.c - service-to-service calls that wait on no thread (see client.h).
 *
 * One loop thread runs a curl multi handle over epoll (CURLMOPT_SOCKETFUNCTION and
 * CURLMOPT_TIMERFUNCTION), so any number of calls are in flight at once and connections to each
 * service are reused from the multi's shared cache.  Other threads hand calls over through a
 * locked list and an eventfd; the loop attaches each to an easy handle from its free list (easy
 * handles are reused, not made per call), and when the transfer is over it keeps the outcome in the
 * call and runs the caller's done function on the loop thread.  A call may be started again from
 * its done function after a delay (a retry), which the loop keeps in a timed list meanwhile.
 *
 * A call owns copies of everything it sends (URL, headers, body), so its owner may go away before
 * it ends; it is freed when both the owner and the loop let it go.
 */
#include "parley/client.h"
#include "client_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"

#define EVENTS 64
#define SPARE_HANDLES 256 /* easy handles kept for reuse */
#define KEEP_CONNS 512    /* idle connections kept open, over all services */

struct pl_client_job {
    atomic_int refs;          /* the owner's and, while it runs, the loop's */
    struct pl_client_job *next; /* in the hand-over or the timed list */
    char *method, *url, *body;
    size_t body_len;
    bool has_body;
    long timeout_ms;
    struct curl_slist *hdrs;
    int64_t start_at_us;      /* a delayed start: not before this monotonic time */
    pl_client_job_fn *done;
    void *arg;
    CURL *easy;               /* while the transfer runs */
    struct pl_client_job *act_next, *act_prev; /* in the loop's running list, meanwhile */
    struct pl_buf resp;       /* the answer's body */
    CURLcode rc;
    long status;
    double ms;
    char *content_type;
};

struct loop {
    pthread_t thread;
    pthread_mutex_t mu;          /* guards incoming and stop */
    struct pl_client_job *incoming;
    bool stop;
    atomic_bool sleeping;        /* in (or about to enter) epoll_wait: a hand-over must wake it */
    int ep, efd;
    CURLM *multi;
    int64_t timer_at_us;         /* curl's timeout, or -1 */
    struct pl_client_job *timed; /* delayed starts, unordered */
    CURL *spare[SPARE_HANDLES];
    int nspare;
    int running;                 /* curl's count of running transfers */
    struct pl_client_job active; /* the running calls (a ring) */
};

static struct loop *the_loop;
static pthread_once_t loop_once = PTHREAD_ONCE_INIT;

static char *
dup_or_die(const char *s)
{
    char *d = strdup(s);

    PL_ASSERT(d != NULL);
    return d;
}

struct pl_client_job *
pl_client_job_new(const char *method, const char *url, const struct pl_client_opts *o)
{
    struct pl_client_job *j = calloc(1, sizeof(*j));

    PL_ASSERT(j != NULL);
    atomic_init(&j->refs, 1);
    j->method = dup_or_die(method);
    j->url = dup_or_die(url);
    j->hdrs = pl_client_headers(o); /* the calling thread's request id goes with it */
    j->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    if (o->body != NULL) {
        j->has_body = true;
        j->body_len = o->body_len;
        j->body = malloc(o->body_len + 1);
        PL_ASSERT(j->body != NULL);
        memcpy(j->body, o->body, o->body_len);
    }
    return j;
}

static void
job_unref(struct pl_client_job *j)
{
    if (j == NULL || atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    free(j->method);
    free(j->url);
    free(j->body);
    curl_slist_free_all(j->hdrs);
    pl_buf_cleanup(&j->resp);
    free(j->content_type);
    free(j);
}

void
pl_client_job_release(struct pl_client_job *j)
{
    job_unref(j);
}

/* ---- the loop thread ---- */

/* curl's interest in socket s changed: mirrored into the epoll set (sockp marks a known one). */
static int
on_socket(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
    static char known; /* the mark of a socket in the epoll set */
    struct loop *l = arg;
    struct epoll_event ev = { .events = 0, .data.fd = s };

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(l->multi, s, NULL);
        return 0;
    }
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (sockp != NULL) {
        epoll_ctl(l->ep, EPOLL_CTL_MOD, s, &ev);
    } else {
        epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev);
        curl_multi_assign(l->multi, s, &known);
    }
    return 0;
}

static int
on_timer(CURLM *m, long timeout_ms, void *arg)
{
    struct loop *l = arg;

    (void)m;
    l->timer_at_us = timeout_ms < 0 ? -1 : pl_time_mono_us() + (int64_t)timeout_ms * 1000;
    return 0;
}

/* An easy handle from the spare list (reset) or a new one. */
static CURL *
easy_take(struct loop *l)
{
    CURL *e;

    if (l->nspare == 0)
        return curl_easy_init();
    e = l->spare[--l->nspare];
    curl_easy_reset(e);
    return e;
}

static void
easy_give(struct loop *l, CURL *e)
{
    if (l->nspare < SPARE_HANDLES)
        l->spare[l->nspare++] = e;
    else
        curl_easy_cleanup(e);
}

/* Ends j with its outcome (rc) on the loop thread: the done function, then the loop's ref. */
static void
job_finish(struct pl_client_job *j, CURLcode rc)
{
    j->rc = rc;
    j->done(j, j->arg);
    job_unref(j);
}

/* Attaches j to an easy handle and adds it to the multi. */
static void
job_begin(struct loop *l, struct pl_client_job *j)
{
    CURL *e = easy_take(l);

    if (e == NULL) {
        job_finish(j, CURLE_OUT_OF_MEMORY);
        return;
    }
    j->easy = e;
    j->resp.len = 0;
    pl_client_easy_target(e, j->url, j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, j->method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, pl_client_collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &j->resp);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)j);
    if (j->has_body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
    }
    if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
        j->easy = NULL;
        easy_give(l, e);
        job_finish(j, CURLE_FAILED_INIT);
        return;
    }
    j->act_next = l->active.act_next;
    j->act_prev = &l->active;
    j->act_next->act_prev = j;
    l->active.act_next = j;
}

/* Keeps what the caller reads of a finished transfer, and gives the handle back. */
static void
job_collect(struct loop *l, struct pl_client_job *j, CURLcode rc)
{
    CURL *e = j->easy;
    char *ct = NULL;

    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &j->status);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &j->ms);
    j->ms *= 1000.0;
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
    free(j->content_type);
    j->content_type = ct != NULL ? dup_or_die(ct) : NULL;
    curl_multi_remove_handle(l->multi, e);
    j->easy = NULL;
    easy_give(l, e);
    j->act_prev->act_next = j->act_next;
    j->act_next->act_prev = j->act_prev;
    job_finish(j, rc);
}

static void
drain_done(struct loop *l)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
        struct pl_client_job *j = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        job_collect(l, j, msg->data.result);
    }
}

/* Starts the delayed calls that are due; returns the next one's time, or -1. */
static int64_t
start_due(struct loop *l, int64_t now)
{
    struct pl_client_job **p = &l->timed, *due = NULL;
    int64_t next = -1;

    while (*p != NULL) {
        struct pl_client_job *j = *p;

        if (j->start_at_us <= now) {
            *p = j->next;
            j->next = due;
            due = j;
        } else {
            next = next < 0 || j->start_at_us < next ? j->start_at_us : next;
            p = &j->next;
        }
    }
    while (due != NULL) {
        struct pl_client_job *j = due;

        due = j->next;
        job_begin(l, j);
    }
    return next;
}

/* Takes the calls handed over by other threads; returns whether the loop should stop. */
static bool
take_incoming(struct loop *l)
{
    struct pl_client_job *in;
    uint64_t n;
    bool stop;

    if (read(l->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        pl_log_warn("client loop: eventfd read: %s", strerror(errno));
    pthread_mutex_lock(&l->mu);
    in = l->incoming;
    l->incoming = NULL;
    stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    while (in != NULL) { /* the list is newest first: put it into the timed list as is */
        struct pl_client_job *j = in;

        in = j->next;
        j->next = l->timed;
        l->timed = j;
    }
    return stop;
}

/* Milliseconds epoll may sleep: until curl's timer or the next delayed start. */
static int
wait_ms(const struct loop *l, int64_t next_start, int64_t now)
{
    int64_t at = l->timer_at_us;

    if (next_start >= 0 && (at < 0 || next_start < at))
        at = next_start;
    if (at < 0)
        return -1;
    return at <= now ? 0 : (int)((at - now + 999) / 1000);
}

/*
 * How long to sleep in epoll_wait.  Hand-overs write the eventfd only while the loop sleeps, so
 * the flag is raised before the last look at the hand-over list: a call handed over after that
 * look sees the flag and writes.
 */
static int
sleep_ms(struct loop *l, int64_t next_start, int64_t now, bool *stop)
{
    bool pending;

    atomic_store(&l->sleeping, true);
    pthread_mutex_lock(&l->mu);
    pending = l->incoming != NULL || l->stop;
    pthread_mutex_unlock(&l->mu);
    if (pending) {
        *stop = take_incoming(l);
        return 0;
    }
    return wait_ms(l, next_start, now);
}

/* Shutting down: every call still pending ends as unreachable. */
static void
fail_all(struct loop *l)
{
    while (l->active.act_next != &l->active)
        job_collect(l, l->active.act_next, CURLE_ABORTED_BY_CALLBACK);
    while (l->timed != NULL) {
        struct pl_client_job *j = l->timed;

        l->timed = j->next;
        job_finish(j, CURLE_ABORTED_BY_CALLBACK);
    }
}

static void *
loop_main(void *arg)
{
    struct loop *l = arg;
    struct epoll_event ev[EVENTS];
    int64_t next_start = -1;
    bool stop = false;

    while (!stop) {
        int64_t now = pl_time_mono_us();
        int n = epoll_wait(l->ep, ev, EVENTS, sleep_ms(l, next_start, now, &stop));

        atomic_store(&l->sleeping, false);
        for (int i = 0; i < n; i++) {
            int flags = (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);

            if (ev[i].data.fd == l->efd)
                stop = take_incoming(l) || stop;
            else
                curl_multi_socket_action(l->multi, ev[i].data.fd, flags, &l->running);
        }
        now = pl_time_mono_us();
        if (l->timer_at_us >= 0 && l->timer_at_us <= now) {
            l->timer_at_us = -1;
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &l->running);
        }
        next_start = start_due(l, now);
        drain_done(l);
    }
    fail_all(l);
    return NULL;
}

static void
loop_create(void)
{
    struct loop *l = calloc(1, sizeof(*l));
    struct epoll_event ev = { .events = EPOLLIN };

    PL_ASSERT(l != NULL);
    pthread_mutex_init(&l->mu, NULL);
    l->timer_at_us = -1;
    l->active.act_next = l->active.act_prev = &l->active;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    l->multi = curl_multi_init();
    PL_ASSERT(l->ep >= 0 && l->efd >= 0 && l->multi != NULL);
    ev.data.fd = l->efd;
    PL_ASSERT(epoll_ctl(l->ep, EPOLL_CTL_ADD, l->efd, &ev) == 0);
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)KEEP_CONNS);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    PL_ASSERT(pthread_create(&l->thread, NULL, loop_main, l) == 0);
    pthread_setname_np(l->thread, "pl-client-loop");
    the_loop = l;
}

void
pl_client_job_start(struct pl_client_job *j, long delay_ms, pl_client_job_fn *done, void *arg)
{
    struct loop *l;
    uint64_t one = 1;

    bool stopping;

    pthread_once(&loop_once, loop_create);
    l = the_loop;
    atomic_fetch_add(&j->refs, 1); /* the loop's, until done has run */
    j->done = done;
    j->arg = arg;
    j->start_at_us = pl_time_mono_us() + (int64_t)delay_ms * 1000;
    if (l == NULL) {
        job_finish(j, CURLE_ABORTED_BY_CALLBACK);
        return;
    }
    pthread_mutex_lock(&l->mu);
    stopping = l->stop;
    if (!stopping) {
        j->next = l->incoming;
        l->incoming = j;
    }
    pthread_mutex_unlock(&l->mu);
    if (stopping) { /* the loop is going away: the call ends at once */
        job_finish(j, CURLE_ABORTED_BY_CALLBACK);
        return;
    }
    if (atomic_load(&l->sleeping) && write(l->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        pl_log_warn("client loop: eventfd write: %s", strerror(errno));
}

int
pl_client_job_result(const struct pl_client_job *j, struct pl_arena *a,
                     struct pl_client_resp *out, struct pl_err *err)
{
    if (j->rc != CURLE_OK)
        return a != NULL ? pl_client_map_error(j->rc, j->url, err)
                         : pl_client_fill_error(j->rc, err);
    *out = (struct pl_client_resp){ .status = j->status, .ms = j->ms, .len = j->resp.len };
    if (a == NULL)
        return PL_OK;
    out->content_type = j->content_type != NULL ? pl_arena_strdup(a, j->content_type)
                                                : "application/json";
    out->body = pl_arena_strndup(a, j->resp.data != NULL ? j->resp.data : "", j->resp.len);
    return PL_OK;
}

void
pl_client_async_shutdown(void)
{
    struct loop *l = the_loop;
    uint64_t one = 1;

    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_mutex_unlock(&l->mu);
    if (write(l->efd, &one, sizeof(one)) < 0)
        pl_log_warn("client loop: eventfd write: %s", strerror(errno));
    pthread_join(l->thread, NULL);
    take_incoming(l); /* calls handed over meanwhile */
    fail_all(l);
    while (l->nspare > 0)
        curl_easy_cleanup(l->spare[--l->nspare]);
    curl_multi_cleanup(l->multi);
    close(l->ep);
    close(l->efd);
    pthread_mutex_destroy(&l->mu);
    free(l);
    the_loop = NULL;
}
