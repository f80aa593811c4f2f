/*
 * worker.c - the threads that turn stored deliveries into customers, conversations, messages and
 * statuses (SPEC 5), after the channel has had its answer.
 *
 * Each worker claims up to CLAIM_BATCH due rows at a time (claim_db.c: FOR UPDATE SKIP LOCKED, a
 * lease), normalises each (whatsapp.h, telegram.h), runs every item through the services over HTTP
 * with the service token and the row's request id (deliver.c), the claim's message creates
 * together in batches (pending.c), and marks the finished rows done in one statement.  Workers run
 * at a lower priority than the threads that answer the channels: under a burst the answers keep
 * their pace, and processing catches up with the CPU left over.  Repeat senders cost no customer
 * upsert: their ids are cached for the process (idcache.h).  Every step is idempotent on the other
 * side, so a row retried after a failure or a crash creates nothing twice.  An item fails either
 * for now (transport, 5xx, 429, a status or edit whose message is not known yet: the row is
 * retried with backoff and dies after max attempts) or for good (the service refused it: the row
 * goes dead at once, after the other items ran).
 *
 * Workers sleep on a condition variable woken by each stored delivery, and poll every
 * IDLE_POLL_MS for retries that came due and rows stored by other replicas.  Once an hour (the
 * first time 10 s after start) one of them runs the retention pass (retention_db.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "claim_db.h"
#include "deliver.h"
#include "idcache.h"
#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "parley/waker.h"
#include "svc.h"
#include "telegram.h"
#include "whatsapp.h"

#define IDLE_POLL_MS 500
#define CLAIM_BATCH 32 /* rows per claim: one round trip and one commit for several */
#define DB_RETRY_MS 1000
#define WORKER_NICE 10
#define RETENTION_FIRST_US (10LL * 1000000) /* the first pass, after start */
#define RETENTION_EVERY_US (3600LL * 1000000)

struct inb_workers {
    const struct inb_cfg *cfg;
    struct pl_db *db;
    int n;
    pthread_t *threads;
    struct pl_waker waker;
    struct inb_idcache *ids; /* customer ids of repeat senders, shared by the workers */
    atomic_llong retention_at; /* monotonic time of the next retention pass */
};

/* Normalises a row's body into items.  Returns the parsed root (caller decrefs) or NULL. */
static json_t *
normalise(const struct inb_cfg *cfg, const struct webhook_row *row, struct inb_items *items)
{
    json_t *root = json_loads(row->body, 0, NULL);

    if (root == NULL)
        return NULL;
    if (strcmp(row->provider, "whatsapp") == 0)
        inb_wa_normalise(root, items);
    else
        inb_tg_normalise(root, cfg->bot_id, items);
    return root;
}

/* A claimed row while its claim runs: what its items learned, and what they borrow from. */
struct row_run {
    struct inb_run r;
    struct inb_items items;
    json_t *root;
    bool started;
};

/* Runs the row's items; message creates may wait in pending for the rest of the claim. */
static void
start_row(struct inb_workers *w, PGconn *db, struct pl_arena *a, struct inb_pending *pending,
          const struct webhook_row *row, struct row_run *rr)
{
    struct pl_err err = PL_ERR_INIT;

    rr->r = (struct inb_run){ .a = a, .cfg = w->cfg, .db = db, .ids = w->ids,
                              .channel = row->provider, .pending = pending,
                              .trace = row->request_id[0] ? row->request_id : NULL };
    rr->items = (struct inb_items)INB_ITEMS_INIT;
    rr->root = NULL;
    rr->started = true;
    pl_log_set_request_id(rr->r.trace);
    if (row->attempts > w->cfg->max_attempts) { /* its workers kept dying: a poison row */
        inb_note(&rr->r, INB_PERMANENT, "claimed too often without finishing");
        (void)inb_db_webhook_fail(db, row->id, true, w->cfg->max_attempts, rr->r.error, &err);
        rr->started = false;
    } else if ((rr->root = normalise(w->cfg, row, &rr->items)) == NULL) {
        inb_note(&rr->r, INB_PERMANENT, "stored body is not JSON");
    }
    for (size_t i = 0; i < rr->items.n; i++)
        inb_deliver(&rr->r, &rr->items.v[i]);
    pl_log_set_request_id(NULL);
}

/* After the claim's creates went out: true when the row is done, else its failure is recorded. */
static bool
finish_row(struct inb_workers *w, PGconn *db, const struct webhook_row *row, struct row_run *rr)
{
    struct pl_err err = PL_ERR_INIT;
    bool done = rr->started && rr->r.worst == INB_OK;

    if (rr->started && !done) {
        pl_log_set_request_id(rr->r.trace);
        pl_log_warn("webhook %s attempt %ld failed: %s", row->id, row->attempts, rr->r.error);
        if (inb_db_webhook_fail(db, row->id, rr->r.worst == INB_PERMANENT, w->cfg->max_attempts,
                                rr->r.error, &err) < 0)
            pl_log_error("could not record the failure of webhook %s: %s", row->id, err.msg);
        pl_log_set_request_id(NULL);
    }
    inb_items_cleanup(&rr->items);
    json_decref(rr->root);
    return done;
}

/*
 * Runs a claimed batch in order, sends the message creates its rows queued, then marks the rows
 * done in one statement.  Rows not started when the service stops, or once half the lease is
 * spent (slow media fetches), are given back at once rather than left to their lease.
 */
static void
run_batch(struct inb_workers *w, PGconn *db, struct pl_arena *a, const struct webhook_row *rows,
          int n)
{
    const char **done = pl_arena_alloc(a, sizeof(*done) * (size_t)n);
    const char **rest = pl_arena_alloc(a, sizeof(*rest) * (size_t)n);
    struct row_run *runs = pl_arena_alloc(a, sizeof(*runs) * (size_t)n);
    struct inb_pending *pending = inb_pending_new(a, w->cfg);
    int64_t until = pl_time_mono_us() + (int64_t)INB_LEASE_S * 500000;
    struct pl_err err = PL_ERR_INIT;
    int ndone = 0, i;

    for (i = 0; i < n && !pl_waker_stopped(&w->waker) && pl_time_mono_us() < until; i++)
        start_row(w, db, a, pending, &rows[i], &runs[i]);
    inb_pending_flush(pending);
    for (int k = 0; k < i; k++)
        if (finish_row(w, db, &rows[k], &runs[k]))
            done[ndone++] = rows[k].id;
    if (inb_db_webhook_done_batch(db, a, done, ndone, &err) < 0)
        pl_log_error("could not mark %d webhooks done: %s", ndone, err.msg);
    for (int k = i; k < n; k++)
        rest[k - i] = rows[k].id;
    if (inb_db_webhook_release(db, a, rest, n - i, &err) < 0)
        pl_log_warn("could not give back %d claimed webhooks: %s", n - i, err.msg);
}

/* One batch claim and its processing; false when there was nothing to do (or no database). */
static bool
step(struct inb_workers *w)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_arena *a = pl_arena_new(16384);
    struct webhook_row rows[CLAIM_BATCH];
    PGconn *db = pl_db_conn(w->db, &err);
    bool worked = false;
    int n = 0;

    if (db != NULL &&
        inb_db_webhook_claim_batch(db, a, CLAIM_BATCH, rows, &n, &err) == PL_DB_ROW) {
        run_batch(w, db, a, rows, n);
        worked = true;
    } else if (err.status >= 500 && err.msg[0] != '\0') {
        pl_log_warn("webhook claim failed: %s", err.msg);
    }
    pl_arena_free(a);
    return worked;
}

/* The worker that finds the retention pass due takes it (one worker per pass). */
static void
retention_turn(struct inb_workers *w)
{
    long long due = atomic_load(&w->retention_at), now = pl_time_mono_us();
    struct pl_err err = PL_ERR_INIT;
    PGconn *db;

    if (now < due ||
        !atomic_compare_exchange_strong(&w->retention_at, &due, now + RETENTION_EVERY_US))
        return;
    if ((db = pl_db_conn(w->db, &err)) != NULL)
        inb_db_retention_run(db, w->cfg->retention_days);
}

static void *
worker_main(void *arg)
{
    struct inb_workers *w = arg;

    /* Answering the channel comes first: under a burst, processing takes what CPU is left. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE) != 0)
        pl_log_warn("could not lower the priority of a webhook worker");
    while (!pl_waker_stopped(&w->waker)) {
        retention_turn(w);
        if (!step(w))
            pl_waker_wait(&w->waker, IDLE_POLL_MS);
    }
    pl_db_thread_close();
    return NULL;
}

struct inb_workers *
inb_workers_start(const struct inb_cfg *cfg, struct pl_db *db, int n)
{
    struct inb_workers *w = calloc(1, sizeof(*w));

    PL_ASSERT(w != NULL);
    w->cfg = cfg;
    w->db = db;
    w->threads = calloc((size_t)n, sizeof(*w->threads));
    PL_ASSERT(w->threads != NULL);
    pl_waker_init(&w->waker, (unsigned)n);
    w->ids = inb_idcache_new(INB_IDCACHE_TTL_MS);
    atomic_init(&w->retention_at, pl_time_mono_us() + RETENTION_FIRST_US);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0)
            pl_fatal("could not start webhook worker %d", i);
        w->n++;
    }
    pl_log_info("%d webhook workers started", n);
    return w;
}

void
inb_workers_wake(struct inb_workers *w)
{
    if (w == NULL)
        return;
    pl_waker_wake(&w->waker);
}

void
inb_workers_stop(struct inb_workers *w)
{
    if (w == NULL)
        return;
    pl_waker_stop(&w->waker);
    for (int i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    pl_waker_destroy(&w->waker);
    inb_idcache_free(w->ids);
    free(w->threads);
    free(w);
}
