/*
 * worker.c - the threads that turn stored deliveries into customers, conversations, messages and
 * statuses (SPEC 5), after the channel has had its answer.
 *
 * Each worker claims one due row at a time (webhooks_db.c: FOR UPDATE SKIP LOCKED, a lease),
 * normalises it (whatsapp.h, telegram.h) and runs every item through the services over HTTP with
 * the service token and the row's request id.  Every step is idempotent on the other side
 * (customer upsert by identity, the one open direct conversation per pair, message unique by
 * channel and provider id, statuses forward-only), so a row retried after a failure or a crash
 * creates nothing twice.  An item fails either for now (transport, 5xx, 429, a status whose
 * message is not known yet: the row is retried with backoff and dies after max attempts) or for
 * good (the service refused it: the row goes dead at once, after the other items ran).
 *
 * Workers sleep on a condition variable woken by each stored delivery, and poll every
 * IDLE_POLL_MS for retries that came due and rows stored by other replicas.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/client.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "svc.h"
#include "telegram.h"
#include "whatsapp.h"

#define IDLE_POLL_MS 500
#define DB_RETRY_MS 1000

enum outcome { ITEM_OK = 0, ITEM_RETRY = 1, ITEM_PERMANENT = 2 };

struct inb_workers {
    const struct inb_cfg *cfg;
    struct pl_db *db;
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    unsigned pending_wakes;
    atomic_bool stop;
};

/* What one row's processing learned: the worst outcome and the first error text. */
struct run {
    struct pl_arena *a;
    const struct inb_cfg *cfg;
    enum outcome worst;
    char error[300];
    /* The last identities resolved: most deliveries repeat the same ones. */
    const char *biz_key, *biz_id, *conv_key, *conv_id;
};

/* Records an item's outcome; the first error of the worst kind is kept. */
static void
note(struct run *r, enum outcome o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
note(struct run *r, enum outcome o, const char *fmt, ...)
{
    va_list ap;

    if (o <= r->worst && r->error[0] != '\0')
        return;
    r->worst = o > r->worst ? o : r->worst;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

/* What an HTTP status means for the item. */
static enum outcome
classify(long status)
{
    if (status >= 200 && status < 300)
        return ITEM_OK;
    if (status >= 500 || status == 429 || status == 409 || status == 408)
        return ITEM_RETRY;
    return ITEM_PERMANENT;
}

/*
 * Sends body (taken) to url and returns the answer's outcome; on ITEM_OK *out is the parsed
 * answer (kept by the arena).
 */
static enum outcome
call(struct run *r, const char *method, const char *url, json_t *body, const char *what,
     struct pl_client_resp *out)
{
    struct pl_err err = PL_ERR_INIT;
    const char *text = pl_json_dump(r->a, pl_json_keep(r->a, body));
    enum outcome o;

    if (pl_client_call(r->a, method, url, text, INB_CALL_TIMEOUT_MS, out, &err) != PL_OK) {
        note(r, ITEM_RETRY, "%s: %s", what, err.msg);
        return ITEM_RETRY;
    }
    o = classify(out->status);
    if (o != ITEM_OK)
        note(r, o, "%s: HTTP %ld: %.200s", what, out->status, out->body ? out->body : "");
    return o;
}

/* The id member of a 2xx answer, or NULL (then the item is retried). */
static const char *
answer_id(struct run *r, const struct pl_client_resp *resp, const char *what)
{
    const char *id = json_string_value(json_object_get(resp->json, "id"));

    if (id == NULL)
        note(r, ITEM_RETRY, "%s: answer without an id", what);
    return id;
}

/* Upserts a customer by identity; returns its id or NULL. */
static const char *
customer(struct run *r, const char *type, const char *ext, const char *name, json_t *meta)
{
    struct pl_client_resp resp;
    json_t *body = json_pack("{s:s, s:s}", "external_type", type, "external_id", ext);
    const char *url = pl_arena_printf(r->a, "%s/api/customers", r->cfg->customer_url);

    if (name != NULL && *name != '\0')
        json_object_set_new(body, "name", json_string(name));
    if (meta != NULL && json_object_size(meta) > 0)
        json_object_set(body, "metadata", meta);
    if (call(r, "POST", url, body, "customer upsert", &resp) != ITEM_OK)
        return NULL;
    return answer_id(r, &resp, "customer upsert");
}

/* The business account's customer id, remembered for the rest of the delivery. */
static const char *
business(struct run *r, const struct inb_item *it)
{
    const char *key = pl_arena_printf(r->a, "%s/%s", it->business_type, it->business_ext);

    if (r->biz_key != NULL && strcmp(r->biz_key, key) == 0)
        return r->biz_id;
    r->biz_id = customer(r, it->business_type, it->business_ext, it->business_name, NULL);
    r->biz_key = r->biz_id ? key : NULL;
    return r->biz_id;
}

/* Finds or creates the open direct conversation of the pair; returns its id or NULL. */
static const char *
conversation(struct run *r, const char *customer_id, const char *business_id)
{
    const char *key = pl_arena_printf(r->a, "%s/%s", customer_id, business_id);
    const char *url = pl_arena_printf(r->a, "%s/api/conversations", r->cfg->conversation_url);
    struct pl_client_resp resp;

    if (r->conv_key != NULL && strcmp(r->conv_key, key) == 0)
        return r->conv_id;
    if (call(r, "POST", url,
             json_pack("{s:s, s:[s,s]}", "type", "direct", "participants", customer_id,
                       business_id),
             "conversation find-or-create", &resp) != ITEM_OK)
        return NULL;
    r->conv_id = answer_id(r, &resp, "conversation find-or-create");
    r->conv_key = r->conv_id ? key : NULL;
    return r->conv_id;
}

/* An inbound (or system) message: customer, business, conversation, then the message. */
static void
deliver_message(struct run *r, const char *channel, const struct inb_item *it)
{
    const char *cust, *biz, *conv;
    const char *url = pl_arena_printf(r->a, "%s/api/messages", r->cfg->messaging_url);
    struct pl_client_resp resp;
    json_t *body;

    if ((cust = customer(r, it->customer_type, it->customer_ext, it->customer_name,
                         it->customer_metadata)) == NULL ||
        (biz = business(r, it)) == NULL || (conv = conversation(r, cust, biz)) == NULL)
        return;
    body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "conversation_id", conv,
                     "sender_customer_id", cust, "direction", it->direction, "channel", channel,
                     "external_message_id", it->external_message_id, "content_type",
                     it->content_type, "body", it->body, "metadata", it->metadata);
    if (body == NULL) { /* cannot happen: every member is set by the normaliser */
        note(r, ITEM_PERMANENT, "message %s: could not build the request", it->external_message_id);
        return;
    }
    (void)call(r, "POST", url, body, "message create", &resp); /* a repeat answers 200 */
}

/*
 * A status of an outbound message, forward-only on messaging-svc's side.  404: the message is not
 * known yet, so the row is tried again later (SPEC 5).  422: the status does not apply to that
 * message (an inbound one, say); nothing will ever change that, so it is logged and dropped.
 */
static void
deliver_status(struct run *r, const char *channel, const struct inb_item *it)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_buf path = PL_BUF_INIT;
    struct pl_client_resp resp;
    json_t *body = pl_json_keep(r->a, json_pack("{s:s}", "status", it->status));
    const char *url;
    enum outcome o;

    if (it->error != NULL)
        json_object_set(body, "error", it->error);
    pl_buf_printf(&path, "%s/api/messages/by-external/%s/", r->cfg->messaging_url, channel);
    pl_buf_urlencode(&path, it->external_message_id);
    url = pl_arena_strndup(r->a, path.data, path.len);
    pl_buf_cleanup(&path);
    if (pl_client_call(r->a, "PUT", url, pl_json_dump(r->a, body), INB_CALL_TIMEOUT_MS, &resp,
                       &err) != PL_OK) {
        note(r, ITEM_RETRY, "status update: %s", err.msg);
        return;
    }
    o = classify(resp.status);
    if (resp.status == 404)
        note(r, ITEM_RETRY, "status %s for message \"%.100s\" not known yet", it->status,
             it->external_message_id);
    else if (resp.status == 422)
        pl_log_warn("status %s for message %.100s refused (HTTP 422); ignored", it->status,
                    it->external_message_id);
    else if (o != ITEM_OK)
        note(r, o, "status update: HTTP %ld: %.200s", resp.status, resp.body ? resp.body : "");
}

/* The messaging-svc URL of a message by its channel and provider id, in the run's arena. */
static const char *
by_external_url(struct run *r, const char *channel, const char *external_id)
{
    struct pl_buf path = PL_BUF_INIT;
    const char *url;

    pl_buf_printf(&path, "%s/api/messages/by-external/%s/", r->cfg->messaging_url, channel);
    pl_buf_urlencode(&path, external_id);
    url = pl_arena_strndup(r->a, path.data, path.len);
    pl_buf_cleanup(&path);
    return url;
}

/*
 * An edit replaces the body of the message it names (history kept by messaging-svc).  An edit
 * that arrives before its message waits like a status: 404 keeps the row for a later attempt.
 */
static void
deliver_edit(struct run *r, const char *channel, const struct inb_item *it)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_resp resp;
    json_t *body = pl_json_keep(r->a, json_pack("{s:s}", "body", it->body));
    const char *url = by_external_url(r, channel, it->external_message_id);
    enum outcome o;

    if (pl_client_call(r->a, "PUT", url, pl_json_dump(r->a, body), INB_CALL_TIMEOUT_MS, &resp,
                       &err) != PL_OK) {
        note(r, ITEM_RETRY, "edit: %s", err.msg);
        return;
    }
    o = classify(resp.status);
    if (resp.status == 404)
        note(r, ITEM_RETRY, "edit of message \"%.100s\" before the message", it->external_message_id);
    else if (o != ITEM_OK)
        note(r, o, "edit: HTTP %ld: %.200s", resp.status, resp.body ? resp.body : "");
}

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

/* Processes one claimed row and records the result. */
static void
process(struct inb_workers *w, PGconn *db, struct pl_arena *a, const struct webhook_row *row)
{
    struct run r = { .a = a, .cfg = w->cfg, .worst = ITEM_OK };
    struct inb_items items = INB_ITEMS_INIT;
    struct pl_err err = PL_ERR_INIT;
    json_t *root = normalise(w->cfg, row, &items);

    if (root == NULL)
        note(&r, ITEM_PERMANENT, "stored body is not JSON");
    for (size_t i = 0; i < items.n; i++) {
        const struct inb_item *it = &items.v[i];

        if (it->kind == INB_ITEM_MESSAGE)
            deliver_message(&r, row->provider, it);
        else if (it->kind == INB_ITEM_STATUS)
            deliver_status(&r, row->provider, it);
        else if (it->kind == INB_ITEM_EDIT)
            deliver_edit(&r, row->provider, it);
        else
            pl_log_info("%s item %s skipped: %s", row->provider,
                        it->external_message_id ? it->external_message_id : "-", it->reason);
    }
    if (r.worst == ITEM_OK) {
        if (inb_db_webhook_done(db, row->id, &err) < 0)
            pl_log_error("could not mark webhook %s done: %s", row->id, err.msg);
    } else {
        pl_log_warn("webhook %s attempt %ld failed: %s", row->id, row->attempts, r.error);
        if (inb_db_webhook_fail(db, row->id, r.worst == ITEM_PERMANENT, w->cfg->max_attempts,
                                r.error, &err) < 0)
            pl_log_error("could not record the failure of webhook %s: %s", row->id, err.msg);
    }
    inb_items_cleanup(&items);
    json_decref(root);
}

/* Waits until woken, stopped, or ms passed. */
static void
idle(struct inb_workers *w, long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    if (w->pending_wakes == 0 && !atomic_load(&w->stop))
        pthread_cond_timedwait(&w->cond, &w->mu, &ts);
    if (w->pending_wakes > 0)
        w->pending_wakes--;
    pthread_mutex_unlock(&w->mu);
}

/* One claim and its processing; returns false when there was nothing to do (or no database). */
static bool
step(struct inb_workers *w)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_arena *a = pl_arena_new(16384);
    struct webhook_row row;
    PGconn *db = pl_db_conn(w->db, &err);
    bool worked = false;

    if (db != NULL && inb_db_webhook_claim(db, a, &row, &err) == PL_DB_ROW) {
        pl_log_set_request_id(row.request_id[0] ? row.request_id : NULL);
        if (row.attempts > w->cfg->max_attempts) /* its workers kept dying: a poison row */
            (void)inb_db_webhook_fail(db, row.id, true, w->cfg->max_attempts,
                                      "claimed too often without finishing", &err);
        else
            process(w, db, a, &row);
        pl_log_set_request_id(NULL);
        worked = true;
    } else if (err.status >= 500 && err.msg[0] != '\0') {
        pl_log_warn("webhook claim failed: %s", err.msg);
    }
    pl_arena_free(a);
    return worked;
}

static void *
worker_main(void *arg)
{
    struct inb_workers *w = arg;

    while (!atomic_load(&w->stop)) {
        if (!step(w))
            idle(w, IDLE_POLL_MS);
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
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    atomic_init(&w->stop, false);
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
    pthread_mutex_lock(&w->mu);
    if (w->pending_wakes < (unsigned)w->n)
        w->pending_wakes++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

void
inb_workers_stop(struct inb_workers *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w->threads);
    free(w);
}
