/*
 * http_push.c - push streams: endless responses fed by other threads (see http.h).
 *
 * MHD pulls the body through a content reader on the connection's pool thread.  When the queue is
 * empty the reader suspends the connection and returns 0, so an idle stream costs no thread and
 * no polling; a writer resumes it.  Suspend and resume are paired under the stream's mutex (the
 * suspended flag), because resuming a connection that is not suspended is undefined in MHD.
 *
 * Dropping a client whose queue is full frees the queue at once and closes the connection: a
 * suspended one is resumed and its reader reports an error; one that MHD is still trying to write
 * to (the client reads nothing) would only notice at its timeout, so its socket is shut down,
 * which wakes MHD with an error.  That shutdown is safe because MHD destroys the response (our
 * free callback sets closed, under the same mutex) before it closes the socket.
 *
 * References: the producer's (pl_push_new) and, once answered, the response's; the last one
 * frees the stream.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http_int.h"
#include "parley/err.h"
#include "parley/http.h"
#include "parley/log.h"

#define PUSH_BLOCK 4096 /* MHD's read size hint */

struct pl_push {
    pthread_mutex_t mu;
    int refs;
    struct pl_server *srv;
    struct MHD_Connection *conn;
    struct pl_push_link link;
    int fd;         /* the client socket, for dropping a client that reads nothing */
    char *buf;      /* queued bytes are buf[head .. head + len) */
    size_t head, len, cap, max;
    bool answered;  /* the response is queued */
    bool suspended; /* the reader suspended the connection */
    bool ended;     /* send what is queued, then end */
    bool failed;    /* dropped: the reader reports an error */
    bool closed;    /* the connection is gone */
};

struct pl_push *
pl_push_new(struct pl_req *req, size_t max)
{
    struct pl_push *p = calloc(1, sizeof(*p));

    PL_ASSERT(p != NULL);
    pthread_mutex_init(&p->mu, NULL);
    p->refs = 1;
    p->srv = pl_req_server(req);
    p->conn = pl_req_connection(req);
    p->link.next = p->link.prev = &p->link;
    p->link.push = p;
    p->fd = -1;
    p->max = max > 0 ? max : PL_PUSH_QUEUE_DEFAULT;
    return p;
}

static void
unref(struct pl_push *p)
{
    bool last;

    pthread_mutex_lock(&p->mu);
    last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p->buf);
    free(p);
}

void
pl_push_release(struct pl_push *p)
{
    if (p != NULL)
        unref(p);
}

/* Lets MHD run the connection again if the reader put it to sleep.  Holds mu. */
static void
wake(struct pl_push *p)
{
    if (p->suspended) {
        p->suspended = false;
        MHD_resume_connection(p->conn);
    }
}

/* Frees the queue and closes the connection (see the file comment).  Holds mu. */
static void
drop(struct pl_push *p)
{
    p->failed = true;
    free(p->buf);
    p->buf = NULL;
    p->head = p->len = p->cap = 0;
    if (p->suspended)
        wake(p);
    else if (p->answered && !p->closed && p->fd >= 0)
        shutdown(p->fd, SHUT_RDWR);
}

/* Makes room for n more bytes: moves the queue to the front, then grows up to max. */
static void
reserve(struct pl_push *p, size_t n)
{
    size_t cap = p->cap ? p->cap : 4096;

    if (p->head > 0) {
        memmove(p->buf, p->buf + p->head, p->len);
        p->head = 0;
    }
    if (p->len + n <= p->cap)
        return;
    while (cap < p->len + n)
        cap *= 2;
    if (cap > p->max)
        cap = p->max;
    p->buf = realloc(p->buf, cap);
    PL_ASSERT(p->buf != NULL);
    p->cap = cap;
}

int
pl_push_write(struct pl_push *p, const char *data, size_t n)
{
    int rc = PL_OK;

    pthread_mutex_lock(&p->mu);
    if (p->failed || p->closed || p->ended) {
        rc = PL_ERR;
    } else if (n > p->max - p->len) {
        pl_log_info("push stream: client not reading, queue of %zu bytes full: dropped", p->max);
        drop(p);
        rc = PL_ERR;
    } else {
        if (p->head + p->len + n > p->cap)
            reserve(p, n);
        memcpy(p->buf + p->head + p->len, data, n);
        p->len += n;
        wake(p);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

size_t
pl_push_room(struct pl_push *p)
{
    size_t room;

    pthread_mutex_lock(&p->mu);
    room = p->failed || p->closed || p->ended ? 0 : p->max - p->len;
    pthread_mutex_unlock(&p->mu);
    return room;
}

bool
pl_push_alive(struct pl_push *p)
{
    bool alive;

    pthread_mutex_lock(&p->mu);
    alive = !(p->failed || p->closed || p->ended);
    pthread_mutex_unlock(&p->mu);
    return alive;
}

void
pl_push_end(struct pl_push *p)
{
    pthread_mutex_lock(&p->mu);
    p->ended = true;
    wake(p);
    pthread_mutex_unlock(&p->mu);
}

/* MHD's content reader: queued bytes, or sleep until a write, or the end. */
static ssize_t
push_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct pl_push *p = cls;
    ssize_t rc;

    (void)pos;
    pthread_mutex_lock(&p->mu);
    if (p->failed) {
        rc = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (p->len > 0) {
        size_t n = p->len < max ? p->len : max;

        memcpy(out, p->buf + p->head, n);
        p->head += n;
        p->len -= n;
        if (p->len == 0)
            p->head = 0;
        rc = (ssize_t)n;
    } else if (p->ended) {
        rc = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        p->suspended = true;
        MHD_suspend_connection(p->conn);
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* MHD destroys the response when the connection closes (before closing its socket). */
static void
push_gone(void *cls)
{
    struct pl_push *p = cls;

    pthread_mutex_lock(&p->mu);
    p->closed = true;
    p->suspended = false;
    free(p->buf);
    p->buf = NULL;
    p->head = p->len = p->cap = 0;
    pthread_mutex_unlock(&p->mu);
    pl_server_push_link(p->srv, &p->link, false);
    unref(p);
}

enum MHD_Result
pl_reply_push(struct pl_req *req, struct pl_push *p, const char *ctype)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(p->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct MHD_Response *resp;

    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, PUSH_BLOCK, push_read, p, push_gone);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    pl_server_push_link(p->srv, &p->link, true); /* first, so a drain from now on sees it */
    pthread_mutex_lock(&p->mu);
    p->refs++; /* the response's, given back by push_gone */
    p->answered = true;
    p->fd = ci != NULL ? ci->connect_fd : -1;
    if (pl_server_draining(p->srv))
        p->ended = true;
    pthread_mutex_unlock(&p->mu);
    return pl_reply_response(req, 200, resp, 0);
}
