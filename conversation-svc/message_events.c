/*
 * message_events.c - the consumer of message.inbound.created and message.outbound.created
 * (group "conversation-svc") that keeps conversations.last_message_at current.
 *
 * Each event raises last_message_at to the message's created_at when that is newer, so replays
 * and out-of-order deliveries change nothing (no event_id table is needed).  The offset is
 * committed only after the update: a database outage makes the consumer retry the same message.
 * Events that can never apply (not JSON, no usable conversation_id or created_at, an unknown
 * conversation) are logged and committed, so one bad message cannot stall its partition.
 */
#include <jansson.h>

#include "parley/consumer.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "rules.h"
#include "svc.h"

static const char *const topics[] = { "message.inbound.created", "message.outbound.created", NULL };

/* Applies one event's payload; PL_OK to commit, PL_ERR to have it delivered again. */
static int
apply(struct svc_ctx *ctx, const char *topic, const json_t *payload)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = json_string_value(json_object_get(payload, "conversation_id"));
    const char *at = json_string_value(json_object_get(payload, "created_at"));
    bool found = false;
    PGconn *db;
    int rc;

    if (!pl_uuid_valid(id) || at == NULL || !conv_rfc3339_valid(at)) {
        pl_log_warn("ignoring a %s event without a valid conversation_id or created_at", topic);
        return PL_OK;
    }
    if ((db = pl_db_conn(ctx->db, &err)) == NULL)
        return PL_ERR;
    rc = conv_db_conversation_touch(db, id, at, &found, &err);
    if (rc < 0 && err.status >= 400 && err.status < 500) { /* a created_at PostgreSQL refuses */
        pl_log_warn("ignoring a %s event for conversation %s: %s", topic, id, err.msg);
        return PL_OK;
    }
    if (rc < 0)
        return PL_ERR;
    if (!found)
        pl_log_info("ignoring a %s event for unknown conversation %s", topic, id);
    return PL_OK;
}

static int
on_message(const char *topic, const char *key, size_t key_len, const char *value,
           size_t value_len, void *arg)
{
    json_t *env = json_loadb(value, value_len, 0, NULL);
    int rc;

    (void)key;
    (void)key_len;
    if (!json_is_object(json_object_get(env, "payload"))) {
        pl_log_warn("ignoring a %s event that is not an envelope with a payload object", topic);
        json_decref(env);
        return PL_OK;
    }
    rc = apply(arg, topic, json_object_get(env, "payload"));
    json_decref(env);
    return rc;
}

struct pl_consumer *
conv_message_events_start(struct svc_ctx *ctx, struct pl_err *err)
{
    return pl_consumer_start(ctx->cfg->c.kafka_brokers, CONV_SERVICE, topics, on_message, ctx,
                             err);
}
