/*
 * message_events.c - the consumer of message.inbound.created and message.outbound.created
 * (group "conversation-svc") that keeps conversations.last_message_at current.
 *
 * Each event raises last_message_at to the message's created_at when that is newer, so replays
 * and out-of-order deliveries change nothing (no event_id table is needed).  Events come in
 * batches of what Kafka had ready, and a batch is one statement: under load one commit serves
 * many messages.  The offsets are committed only after the update: a database outage makes the
 * consumer retry the same batch.  Events that can never apply (not JSON, no usable
 * conversation_id or created_at, an unknown conversation, a time PostgreSQL refuses) are logged
 * and committed, so one bad message cannot stall its partition.
 */
#include <jansson.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/consumer.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "rules.h"
#include "svc.h"

#define BATCH 256

static const char *const topics[] = { "message.inbound.created", "message.outbound.created", NULL };

/* The batch's usable (conversation id, created_at) pairs, in the arena. */
struct touches {
    const char **ids, **ats;
    int n;
};

/* Adds the event's pair, or logs why it can never apply. */
static void
read_event(struct pl_arena *a, const struct pl_consumer_msg *m, struct touches *t)
{
    json_t *env = json_loadb(m->value, m->value_len, 0, NULL);
    const json_t *payload = json_object_get(env, "payload");
    const char *id = json_string_value(json_object_get(payload, "conversation_id"));
    const char *at = json_string_value(json_object_get(payload, "created_at"));

    if (!json_is_object(payload))
        pl_log_warn("ignoring a %s event that is not an envelope with a payload object", m->topic);
    else if (!pl_uuid_valid(id) || at == NULL || !conv_rfc3339_valid(at))
        pl_log_warn("ignoring a %s event without a valid conversation_id or created_at", m->topic);
    else {
        t->ids[t->n] = pl_arena_strdup(a, id);
        t->ats[t->n++] = pl_arena_strdup(a, at);
    }
    json_decref(env);
}

/* One pair alone (after PostgreSQL refused the batch): PL_OK unless the database failed. */
static int
touch_one(PGconn *db, const char *id, const char *at)
{
    struct pl_err err = PL_ERR_INIT;
    bool found = false;
    int rc = conv_db_conversation_touch(db, id, at, &found, &err);

    if (rc < 0 && err.status >= 400 && err.status < 500) {
        pl_log_warn("ignoring a message event for conversation %s: %s", id, err.msg);
        return PL_OK;
    }
    if (rc < 0)
        return PL_ERR;
    if (!found)
        pl_log_info("ignoring a message event for unknown conversation %s", id);
    return PL_OK;
}

/* Applies the pairs in one statement; PL_OK to commit, PL_ERR to have the batch again. */
static int
apply(PGconn *db, struct pl_arena *a, const struct touches *t)
{
    struct pl_err err = PL_ERR_INIT;
    PGresult *res = NULL;
    int rc = conv_db_conversations_touch(db, pl_buf_array_literal(a, t->ids, t->n),
                                         pl_buf_array_literal(a, t->ats, t->n), &res, &err);

    if (rc >= 0) {
        for (int i = 0; i < PQntuples(res); i++)
            pl_log_info("ignoring a message event for unknown conversation %s",
                        PQgetvalue(res, i, 0));
        PQclear(res);
        return PL_OK;
    }
    if (err.status < 400 || err.status >= 500)
        return PL_ERR;
    for (int i = 0; i < t->n; i++) /* find the pair PostgreSQL refuses */
        if (touch_one(db, t->ids[i], t->ats[i]) != PL_OK)
            return PL_ERR;
    return PL_OK;
}

static int
on_batch(const struct pl_consumer_msg *msgs, int n, void *arg)
{
    struct svc_ctx *ctx = arg;
    struct pl_err err = PL_ERR_INIT;
    struct pl_arena *a = pl_arena_new(16384);
    struct touches t = { pl_arena_alloc(a, sizeof(char *) * (size_t)n),
                         pl_arena_alloc(a, sizeof(char *) * (size_t)n), 0 };
    PGconn *db;
    int rc = PL_OK;

    for (int i = 0; i < n; i++)
        read_event(a, &msgs[i], &t);
    if (t.n > 0)
        rc = (db = pl_db_conn(ctx->db, &err)) == NULL ? PL_ERR : apply(db, a, &t);
    pl_arena_free(a);
    return rc;
}

struct pl_consumer *
conv_message_events_start(struct svc_ctx *ctx, struct pl_err *err)
{
    return pl_consumer_start_batch(ctx->cfg->c.kafka_brokers, CONV_SERVICE, topics, on_batch,
                                   BATCH, ctx, err);
}
