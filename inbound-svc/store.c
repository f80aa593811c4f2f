/*
 * store.c - the store batcher: deliveries written many per statement, acknowledged after commit.
 *
 * A channel's delivery is answered only once its row is committed (synchronous commit), so the
 * acknowledgement rate is bounded by what one commit costs.  Each handler thread used to run its
 * own INSERT and commit; here a handler queues its delivery and sleeps, and one of a few store
 * threads takes everything queued (up to INB_STORE_BATCH_MAX deliveries or about
 * INB_STORE_BATCH_BYTES of bodies), writes it with one INSERT ... SELECT FROM unnest(...) ON
 * CONFLICT DO NOTHING, and wakes each handler with its own answer.  A batch forms while the
 * previous one commits, so no delay is ever added to wait for company, and the database still
 * decides duplicates: two equal deliveries, in one batch or in two, store one row.
 *
 * Within a batch the deliveries are sorted by (provider, event id), so two batches that hold the
 * same deliveries take their index locks in one order and cannot deadlock each other; a batch
 * that fails anyway (a serialization failure) is retried whole, and one that fails for another
 * reason is retried delivery by delivery, so a single bad row cannot fail its neighbours.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "svc.h"

/* One handler's delivery while it waits; lives on the handler's stack. */
struct store_req {
    const struct webhook_input *in;
    struct pl_err err;
    int rc;
    bool done;
    pthread_cond_t cond; /* signalled when done */
    struct store_req *next;
};

struct inb_store {
    struct pl_db *db;
    pthread_mutex_t mu;
    pthread_cond_t work; /* signalled when a delivery is queued, or on stop */
    struct store_req *head, **tail;
    bool stop;
    int n;
    pthread_t *threads;
};

static int
by_event(const void *a, const void *b)
{
    const struct store_req *x = *(struct store_req *const *)a, *y = *(struct store_req *const *)b;
    int c = strcmp(x->in->provider, y->in->provider);

    return c != 0 ? c : strcmp(x->in->event_id, y->in->event_id);
}

/* Takes the next batch off the queue (caller holds mu; the queue is not empty). */
static int
take(struct inb_store *s, struct store_req **batch)
{
    size_t bytes = 0;
    int n = 0;

    while (s->head != NULL && n < INB_STORE_BATCH_MAX &&
           (n == 0 || bytes + s->head->in->body_len <= INB_STORE_BATCH_BYTES)) {
        bytes += s->head->in->body_len;
        batch[n++] = s->head;
        s->head = s->head->next;
    }
    if (s->head == NULL)
        s->tail = &s->head;
    return n;
}

/* One statement for the whole batch, retried on serialization failures and deadlocks. */
static int
write_batch(PGconn *db, struct store_req **batch, int n, bool *stored, struct pl_err *err)
{
    const struct webhook_input *in[INB_STORE_BATCH_MAX];
    int rc = PL_DB_RETRY;

    for (int i = 0; i < n; i++)
        in[i] = batch[i]->in;
    for (int t = 0; t < PL_TX_TRIES && rc == PL_DB_RETRY; t++)
        rc = inb_db_webhook_store_many(db, in, n, stored, err);
    return rc;
}

/* Writes a batch and sets each request's answer. */
static void
run(struct inb_store *s, struct store_req **batch, int n)
{
    struct pl_err err = PL_ERR_INIT;
    bool stored[INB_STORE_BATCH_MAX];
    PGconn *db = pl_db_conn(s->db, &err);
    int rc = PL_DB_FAIL;

    qsort(batch, (size_t)n, sizeof(*batch), by_event);
    if (db != NULL)
        rc = write_batch(db, batch, n, stored, &err);
    if (rc < 0 && db != NULL && n > 1) {
        pl_log_warn("a batch of %d deliveries failed (%s); storing them one by one", n, err.msg);
        for (int i = 0; i < n; i++) /* the one bad delivery fails alone */
            run(s, &batch[i], 1);
        return;
    }
    for (int i = 0; i < n; i++) {
        batch[i]->rc = rc < 0 ? rc : stored[i] ? PL_DB_ROW : PL_DB_NONE;
        if (rc < 0)
            batch[i]->err = err;
    }
}

static void *
store_main(void *arg)
{
    struct inb_store *s = arg;
    struct store_req *batch[INB_STORE_BATCH_MAX];
    int n;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->head == NULL && !s->stop)
            pthread_cond_wait(&s->work, &s->mu);
        if (s->head == NULL) /* stopped, and nothing left to write */
            break;
        n = take(s, batch);
        pthread_mutex_unlock(&s->mu);
        run(s, batch, n);
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < n; i++) {
            batch[i]->done = true;
            pthread_cond_signal(&batch[i]->cond);
        }
    }
    pthread_mutex_unlock(&s->mu);
    pl_db_thread_close();
    return NULL;
}

struct inb_store *
inb_store_start(struct pl_db *db, int n)
{
    struct inb_store *s = calloc(1, sizeof(*s));

    PL_ASSERT(s != NULL);
    s->db = db;
    s->tail = &s->head;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    s->threads = calloc((size_t)n, sizeof(*s->threads));
    PL_ASSERT(s->threads != NULL);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&s->threads[i], NULL, store_main, s) != 0)
            pl_fatal("could not start store thread %d", i);
        s->n++;
    }
    return s;
}

int
inb_store_put(struct inb_store *s, const struct webhook_input *in, struct pl_err *err)
{
    struct store_req r = { .in = in, .err = PL_ERR_INIT, .rc = PL_DB_FAIL };

    pthread_cond_init(&r.cond, NULL);
    pthread_mutex_lock(&s->mu);
    *s->tail = &r;
    s->tail = &r.next;
    pthread_cond_signal(&s->work);
    while (!r.done)
        pthread_cond_wait(&r.cond, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&r.cond);
    if (r.rc < 0)
        *err = r.err;
    return r.rc;
}

void
inb_store_stop(struct inb_store *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n; i++)
        pthread_join(s->threads[i], NULL);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    free(s->threads);
    free(s);
}
