/*
 * outbound.c - outbound delivery (SPEC 6): the consumer of message.outbound.created that decides
 * whether and where a message goes, and the sender threads that send it and write the outcome
 * back to messaging-svc.
 *
 * The consumer (group "inbound-svc-outbound") never talks to a provider.  For each event it
 * skips what must not be sent (not outbound; already carrying a provider id or no longer queued,
 * such as the WhatsApp echoes the receiving side stores as sent), asks conversation-svc for the
 * participants and customer-svc for their identities (one batch call), picks the route
 * (outbound_rules.h), and records one deliveries row per message.  Its offset is committed once
 * that row exists; a redelivered event finds the row and adds nothing.  A slow or failing
 * provider therefore never holds the partition: tries and retries live in the table.
 *
 * Sender threads claim due rows (FOR UPDATE SKIP LOCKED, a lease, one conversation in order) and
 * make one try each.  The message id is the idempotency anchor:
 *   1. the claim commits state "sending" before the provider is called;
 *   2. after the provider's answer the outcome, with the provider's message id, is committed
 *      first (retried until it succeeds, as losing it is what could send twice);
 *   3. only then is messaging-svc told (status sent + external_message_id, or failed + error);
 *      until that succeeds the row stays due for this write-back alone, and a row that is sent
 *      is never tried again, after a restart or a redelivered event alike.
 * The remaining window: a crash (or a hang past the lease) after the provider accepted the
 * message but before step 2 commits leaves a "sending" row, which is tried again when its lease
 * ends, so the customer may get that message twice.  Neither the WhatsApp Cloud API nor the
 * Telegram Bot API takes an idempotency key, so this cannot be closed from our side; it is at
 * most one duplicate per crash, never a loss.
 *
 * Retryable failures wait base * 2^(attempt-1) (capped, with jitter, at least the provider's
 * Retry-After) and fail for good after PARLEY_OUTBOUND_MAX_ATTEMPTS tries.
 */
#include "outbound.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/client.h"
#include "parley/consumer.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/metrics.h"
#include "parley/uuid.h"
#include "parley/waker.h"
#include "svc.h"

#define IDLE_POLL_MS 250
#define CALL_TIMEOUT_MS 10000
#define IDS_PER_CALL 200 /* customer-svc's batch limit */

enum fetch { FETCH_OK, FETCH_GONE, FETCH_RETRY };

struct inb_outbound {
    const struct inb_cfg *cfg;
    struct pl_db *db;
    struct pl_consumer *consumer;
    pthread_t *threads;
    int n;
    struct pl_waker waker;
    atomic_ulong tries[2][3]; /* [whatsapp, telegram][sent, retry, failed]: a metric */
};

/* The fields of a message.outbound.created payload the decision reads. */
struct outb_msg {
    const char *id, *conversation_id, *sender, *direction, *channel, *body, *content_type;
    const char *status, *external_id, *media_id;
    char seq[24];
};

static const char *const topics[] = { "message.outbound.created", NULL };

/* ------------------------------------------------------------------------------- consumer */

/* GETs url into *out (kept by the arena).  404 is FETCH_GONE; no answer or 5xx FETCH_RETRY. */
static enum fetch
fetch(struct pl_arena *a, const char *url, const char *what, json_t **out)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_resp resp;

    if (pl_client_call(a, "GET", url, NULL, CALL_TIMEOUT_MS, &resp, &err) != PL_OK) {
        pl_log_warn("%s: %s", what, err.msg);
        return FETCH_RETRY;
    }
    if (resp.status == 200 && json_is_object(resp.json)) {
        *out = resp.json;
        return FETCH_OK;
    }
    if (resp.status >= 500 || resp.status == 429 || resp.status == 200) {
        pl_log_warn("%s: HTTP %ld", what, resp.status);
        return FETCH_RETRY;
    }
    pl_log_info("%s: HTTP %ld", what, resp.status);
    return FETCH_GONE;
}

/* GETs one batch of customers (url) and appends its data[] to all. */
static enum fetch
fetch_batch(struct pl_arena *a, const struct pl_buf *url, json_t *all)
{
    json_t *page = NULL;
    enum fetch rc = fetch(a, pl_arena_strndup(a, url->data, url->len), "customers lookup", &page);

    if (rc == FETCH_OK)
        json_array_extend(all, json_object_get(page, "data"));
    return rc;
}

/* The customers of conv's active participants as one array, IDS_PER_CALL per call. */
static enum fetch
fetch_customers(const struct inb_cfg *cfg, struct pl_arena *a, const json_t *conv, json_t **out)
{
    const json_t *parts = json_object_get(conv, "participants"), *p;
    json_t *all = pl_json_keep(a, json_array());
    struct pl_buf url = PL_BUF_INIT;
    enum fetch rc = FETCH_OK;
    size_t i, n = 0;

    json_array_foreach(parts, i, p) {
        const char *id = json_string_value(json_object_get(p, "customer_id"));

        if (!pl_uuid_valid(id) || !json_is_null(json_object_get(p, "left_at")))
            continue;
        if (n == 0) {
            url.len = 0;
            pl_buf_printf(&url, "%s/api/customers?per_page=%d&ids=", cfg->customer_url,
                          IDS_PER_CALL);
        }
        pl_buf_printf(&url, "%s%s", n > 0 ? "," : "", id);
        if (++n == IDS_PER_CALL) {
            n = 0;
            if ((rc = fetch_batch(a, &url, all)) != FETCH_OK)
                break;
        }
    }
    if (rc == FETCH_OK && n > 0)
        rc = fetch_batch(a, &url, all);
    pl_buf_cleanup(&url);
    *out = all;
    return rc;
}

/* The payload's fields into m; false when it cannot be a message event. */
static bool
read_message(const json_t *p, struct outb_msg *m)
{
    const json_t *seq = json_object_get(p, "seq");

    m->id = json_string_value(json_object_get(p, "id"));
    m->conversation_id = json_string_value(json_object_get(p, "conversation_id"));
    m->sender = json_string_value(json_object_get(p, "sender_customer_id"));
    m->direction = json_string_value(json_object_get(p, "direction"));
    m->channel = json_string_value(json_object_get(p, "channel"));
    m->body = json_string_value(json_object_get(p, "body"));
    m->content_type = json_string_value(json_object_get(p, "content_type"));
    m->status = json_string_value(json_object_get(p, "status"));
    m->external_id = json_string_value(json_object_get(p, "external_message_id"));
    m->media_id = json_string_value(json_object_get(p, "media_id"));
    snprintf(m->seq, sizeof(m->seq), "%lld", (long long)json_integer_value(seq));
    return pl_uuid_valid(m->id) && pl_uuid_valid(m->conversation_id) && json_is_integer(seq) &&
           m->direction != NULL && m->status != NULL && m->body != NULL;
}

/* Why m must not be sent, or NULL when it may be. */
static const char *
skip_reason(const struct outb_msg *m)
{
    if (strcmp(m->direction, "outbound") != 0)
        return "not an outbound message";
    if (m->external_id != NULL)
        return "it already has a provider id";
    if (strcmp(m->status, "queued") != 0)
        return "it is not queued";
    return NULL;
}

/*
 * Records the delivery of m along route; PL_OK to commit the event.  A message that cannot go
 * (unroutable, or content the channel cannot take: outbound_request.h) is recorded as failed at
 * once, without a provider call.
 */
static int
record(struct inb_outbound *o, struct pl_arena *a, const struct outb_msg *m,
       const struct outb_route *route, const char *unroutable)
{
    struct outb_new in = { m->id, m->conversation_id, m->seq, route, m->body, NULL, NULL,
                           pl_log_request_id(), NULL };
    struct outb_result r = { .cls = OUTB_PERMANENT };
    struct pl_err err = PL_ERR_INIT;
    const struct outb_kind *kind;
    const char *refused;
    char why[160];
    PGconn *db = pl_db_conn(o->db, &err);
    int rc;

    refused = outb_content_check(route->provider, m->content_type, m->media_id, m->body, &kind,
                                 why, sizeof(why));
    in.content_type = kind ? kind->content_type : m->content_type;
    in.media_id = kind && kind->media ? m->media_id : NULL;
    if (*unroutable != '\0')
        outb_result_error(&r, OUTB_PERMANENT, "not_configured", unroutable);
    else if (refused != NULL)
        outb_result_error(&r, OUTB_PERMANENT, refused, why);
    if (r.code[0] != '\0')
        in.error = inb_outbound_error_json(a, route->provider, &r, false);
    if (db == NULL || (rc = inb_db_delivery_insert(db, &in, &err)) < 0) {
        pl_log_warn("could not record the delivery of message %s: %s", m->id, err.msg);
        return PL_ERR;
    }
    if (rc == PL_DB_NONE)
        pl_log_info("message %s has a delivery already (a redelivered event)", m->id);
    else
        pl_log_info("message %s queued for %s%s", m->id, route->provider,
                    in.error ? " as failed" : "");
    pl_waker_wake(&o->waker);
    return PL_OK;
}

/* Decides one event's message.  PL_OK commits the event; PL_ERR has it delivered again. */
static int
decide(struct inb_outbound *o, struct pl_arena *a, const struct outb_msg *m)
{
    const struct inb_cfg *cfg = o->cfg;
    const char *why = skip_reason(m), *unroutable;
    json_t *conv = NULL, *customers = NULL;
    struct outb_route route;
    enum fetch f;

    if (why != NULL) {
        pl_log_info("message %s not sent: %s", m->id, why);
        return PL_OK;
    }
    f = fetch(a, pl_arena_printf(a, "%s/api/conversations/%s", cfg->conversation_url,
                                 m->conversation_id),
              "conversation lookup", &conv);
    if (f == FETCH_OK)
        f = fetch_customers(cfg, a, conv, &customers);
    if (f != FETCH_OK) {
        if (f == FETCH_GONE)
            pl_log_warn("message %s not sent: its conversation or customers are unknown", m->id);
        return f == FETCH_GONE ? PL_OK : PL_ERR;
    }
    unroutable = outb_route_pick(conv, customers, m->channel, m->sender,
                                 cfg->whatsapp_phone_number_id, &route);
    if (unroutable == NULL) {
        pl_log_info("message %s not sent: its conversation has no channel identity", m->id);
        return PL_OK;
    }
    return record(o, a, m, &route, unroutable);
}

static int
on_event(const char *topic, const char *key, size_t key_len, const char *value,
         size_t value_len, void *arg)
{
    struct pl_arena *a = pl_arena_new(16384);
    json_t *env = pl_json_keep(a, json_loadb(value, value_len, 0, NULL));
    const char *trace = json_string_value(json_object_get(env, "trace_id"));
    struct outb_msg m;
    int rc = PL_OK;

    (void)key;
    (void)key_len;
    if (!read_message(json_object_get(env, "payload"), &m)) {
        pl_log_warn("ignoring a %s event without a usable message payload", topic);
    } else {
        pl_log_set_request_id(trace && *trace ? pl_arena_strdup(a, trace) : NULL);
        rc = decide(arg, a, &m);
        pl_log_set_request_id(NULL);
    }
    pl_arena_free(a);
    return rc;
}

/* ------------------------------------------------------------------------------- senders */

/* parley_outbound_tries_total{provider,outcome}, for /metrics. */
static void
collect(struct pl_buf *out, void *arg)
{
    static const char *const providers[] = { "whatsapp", "telegram" };
    static const char *const outcomes[] = { "sent", "retry", "failed" };
    struct inb_outbound *o = arg;

    pl_buf_puts(out, "# HELP parley_outbound_tries_total Provider calls of outbound deliveries.\n"
                     "# TYPE parley_outbound_tries_total counter\n");
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 3; k++)
            pl_buf_printf(out, "parley_outbound_tries_total{provider=\"%s\",outcome=\"%s\"} %lu\n",
                          providers[p], outcomes[k], atomic_load(&o->tries[p][k]));
}

/* Counts a recorded try. */
static void
count_try(struct inb_outbound *o, const char *provider, const char *state)
{
    int k = strcmp(state, "sent") == 0 ? 0 : strcmp(state, "retrying") == 0 ? 1 : 2;

    atomic_fetch_add(&o->tries[provider[0] == 'w' ? 0 : 1][k], 1);
}

/* Tells messaging-svc the outcome of a sent or failed row, and marks it written back. */
static void
write_back(struct inb_outbound *o, struct pl_arena *a, const struct outb_job *job)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *db;
    struct pl_client_resp resp;
    bool sent = strcmp(job->state, "sent") == 0, done = false;
    json_t *body = sent ? json_pack("{s:s, s:s, s:s}", "status", "sent", "external_message_id",
                                    job->provider_message_id, "channel", job->provider)
                        : json_pack("{s:s, s:o?}", "status", "failed", "error",
                                    json_loads(job->last_error ? job->last_error : "{}", 0,
                                               NULL));
    const char *url = pl_arena_printf(a, "%s/api/messages/%s", o->cfg->messaging_url,
                                      job->message_id);

    PL_ASSERT(body != NULL);
    if (pl_client_call(a, "PUT", url, pl_json_dump(a, pl_json_keep(a, body)),
                       OUTB_WRITEBACK_TIMEOUT_MS, &resp, &err) != PL_OK) {
        pl_log_warn("message %s: could not write the outcome back: %s", job->message_id, err.msg);
    } else if (resp.status >= 500 || resp.status == 429) {
        pl_log_warn("message %s: writing the outcome back: HTTP %ld", job->message_id,
                    resp.status);
    } else {
        done = true; /* a 4xx will not change by asking again */
        if (resp.status >= 300)
            pl_log_error("message %s: messaging-svc refused the outcome %s: HTTP %ld %.200s",
                         job->message_id, job->state, resp.status, resp.body);
    }
    if ((db = pl_db_conn(o->db, &err)) == NULL ||
        inb_db_delivery_synced(db, job->message_id, done, OUTB_WRITEBACK_RETRY_MS, &err) < 0)
        pl_log_warn("message %s: could not mark the write-back: %s", job->message_id, err.msg);
}

/* The state a try's result leads to, with its error (or NULL) and the delay before the next. */
static const char *
outcome(const struct inb_outbound *o, struct pl_arena *a, const struct outb_job *job,
        const struct outb_result *r, const char **error, long *delay_ms)
{
    const struct inb_cfg *cfg = o->cfg;

    *error = NULL;
    *delay_ms = 0;
    if (r->cls == OUTB_SENT)
        return "sent";
    *error = inb_outbound_error_json(a, job->provider, r, r->cls == OUTB_RETRY);
    if (r->cls == OUTB_RETRY && job->attempts < cfg->outbound_max_attempts) {
        *delay_ms = outb_backoff_ms(cfg->outbound_backoff_base_ms, cfg->outbound_backoff_cap_ms,
                                    job->attempts, r->retry_after_s, (unsigned)rand());
        return "retrying";
    }
    return "failed";
}

/*
 * Commits a try's outcome, retrying until it is stored or the service stops: a lost outcome
 * would have the message sent again when the lease ends.  Returns true when stored.
 */
static bool
store_outcome(struct inb_outbound *o, const struct outb_job *job, const char *state,
              const struct outb_result *r, const char *error, long delay_ms, int64_t started)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *db;
    int rc;

    for (;;) {
        db = pl_db_conn(o->db, &err);
        rc = db ? inb_db_delivery_finish(db, job, state, r, error, delay_ms, started, &err)
                : PL_DB_FAIL;
        if (rc >= 0)
            break;
        pl_log_error("message %s: could not record the %s outcome: %s", job->message_id, state,
                     err.msg);
        if (pl_waker_stopped(&o->waker))
            return false;
        sleep(1);
    }
    if (rc == PL_DB_NONE)
        pl_log_error("message %s: its lease ended before the outcome was recorded",
                     job->message_id);
    return rc == PL_DB_ROW;
}

/* One try of a claimed row, its record, and the write-back of a final outcome. */
static void
attempt(struct inb_outbound *o, CURL *h, struct pl_arena *a, struct outb_job *job)
{
    int64_t started = pl_time_now_us();
    struct outb_result r;
    const char *state, *error;
    long delay_ms;

    inb_outbound_send(h, o->cfg, a, job, &r);
    state = outcome(o, a, job, &r, &error, &delay_ms);
    if (!store_outcome(o, job, state, &r, error, delay_ms, started))
        return;
    count_try(o, job->provider, state);
    if (r.cls == OUTB_SENT)
        pl_log_info("message %s sent by %s (attempt %ld)", job->message_id, job->provider,
                    job->attempts);
    else
        pl_log_warn("message %s attempt %ld on %s: %s (%s %s); %s", job->message_id,
                    job->attempts, job->provider, state, r.code, r.message,
                    delay_ms > 0 ? pl_arena_printf(a, "next try in %ld ms", delay_ms) : "final");
    if (strcmp(state, "retrying") == 0)
        return;
    job->state = state;
    job->provider_message_id = r.cls == OUTB_SENT ? r.provider_message_id : NULL;
    job->last_error = error;
    write_back(o, a, job);
}

/* One claim and its work; false when there was nothing to do. */
static bool
step(struct inb_outbound *o, CURL *h)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_arena *a = pl_arena_new(16384);
    PGconn *db = pl_db_conn(o->db, &err);
    long lease_s = o->cfg->outbound_timeout_ms / 1000 + OUTB_LEASE_MARGIN_S; /* > one try */
    struct outb_job job;
    bool worked = false;

    if (db != NULL && inb_db_delivery_claim(db, a, lease_s, &job, &err) == PL_DB_ROW) {
        pl_log_set_request_id(job.request_id[0] ? job.request_id : NULL);
        if (strcmp(job.state, "sending") == 0)
            attempt(o, h, a, &job);
        else
            write_back(o, a, &job);
        pl_log_set_request_id(NULL);
        worked = true;
    } else if (err.status >= 500 && err.msg[0] != '\0') {
        pl_log_warn("delivery claim failed: %s", err.msg);
    }
    pl_arena_free(a);
    return worked;
}

static void *
sender_main(void *arg)
{
    struct inb_outbound *o = arg;
    CURL *h = curl_easy_init();

    PL_ASSERT(h != NULL);
    while (!pl_waker_stopped(&o->waker)) {
        if (!step(o, h))
            pl_waker_wait(&o->waker, IDLE_POLL_MS);
    }
    curl_easy_cleanup(h);
    pl_db_thread_close();
    return NULL;
}

struct inb_outbound *
inb_outbound_start(const struct inb_cfg *cfg, struct pl_db *db)
{
    struct inb_outbound *o = calloc(1, sizeof(*o));
    struct pl_err err = PL_ERR_INIT;

    PL_ASSERT(o != NULL);
    o->cfg = cfg;
    o->db = db;
    o->threads = calloc((size_t)cfg->outbound_senders, sizeof(*o->threads));
    PL_ASSERT(o->threads != NULL);
    pl_waker_init(&o->waker, 0);
    srand((unsigned)pl_time_now_us());
    for (long i = 0; i < cfg->outbound_senders; i++) {
        if (pthread_create(&o->threads[i], NULL, sender_main, o) != 0)
            pl_fatal("could not start outbound sender %ld", i);
        o->n++;
    }
    o->consumer = pl_consumer_start(cfg->c.kafka_brokers, OUTB_GROUP, topics, on_event, o, &err);
    if (o->consumer == NULL)
        pl_fatal("could not start the outbound consumer: %s", err.msg);
    pl_metrics_register(collect, o);
    pl_log_info("outbound delivery started: %d senders", o->n);
    return o;
}

void
inb_outbound_stop(struct inb_outbound *o)
{
    if (o == NULL)
        return;
    pl_metrics_unregister(collect, o);
    pl_consumer_stop(o->consumer);
    pl_waker_stop(&o->waker);
    for (int i = 0; i < o->n; i++)
        pthread_join(o->threads[i], NULL);
    pl_waker_destroy(&o->waker);
    free(o->threads);
    free(o);
}
