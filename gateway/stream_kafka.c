/*
 * stream_kafka.c - the gateway's one Kafka consumer, feeding the event streams' hub.
 *
 * Every gateway replica must see every message event, so this consumer takes no part in a
 * consumer group's sharing: it assigns itself every partition of the four message topics, at the
 * end offsets read when it starts (the group id, gateway-stream-<host>-<pid>, is only a name; it
 * commits nothing).  The hub counts as ready only once those offsets are fixed: from then on every
 * event is read, so a stream that joined later misses none.  Until Kafka answers, it retries, and
 * streams are refused with 503 meanwhile.  Partitions added to the topics later (to scale them)
 * are found by a metadata check every PARTITION_CHECK_US and read from their first event, since
 * every event in them was written after this consumer started.
 *
 * Created and updated events carry the message.  A status event carries only the message id, so
 * the message is fetched from messaging-svc in its current state, and only when someone listens
 * to that conversation.  To keep each stream in version order, the fetch asks for every change
 * after the last version the hub saw (changed_since), which in the usual case is just that
 * message; without a known version it fetches the single message.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/arena.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

#define FETCH_TIMEOUT_MS 5000L
#define META_TIMEOUT_MS 5000
#define PARTITION_CHECK_US (10LL * 1000000)

static const char *const topics[] = {
    "message.inbound.created", "message.outbound.created", "message.updated",
    "message.status.updated",
};
#define NTOPICS (sizeof(topics) / sizeof(topics[0]))

struct gw_stream_kafka {
    struct gw_hub *hub;
    const struct gw_cfg *cfg;
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_bool stop;
};

static rd_kafka_t *
consumer_new(const char *brokers)
{
    char group[128], host[64] = "gateway", errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    gethostname(host, sizeof(host) - 1);
    snprintf(group, sizeof(group), "gateway-stream-%s-%d", host, (int)getpid());
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "latest", errstr, sizeof(errstr)))
        pl_fatal("bad Kafka setting for the event streams: %s", errstr);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        pl_fatal("could not create the event stream consumer: %s", errstr);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Adds every partition of topic at its current end offset.  PL_ERR when Kafka does not answer. */
static int
add_topic(rd_kafka_t *rk, const char *topic, rd_kafka_topic_partition_list_t *list)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    int rc = PL_ERR;

    if (rd_kafka_metadata(rk, 0, t, &md, META_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    for (int p = 0; p < md->topics[0].partition_cnt; p++) {
        int32_t id = md->topics[0].partitions[p].id;
        int64_t lo = 0, hi = 0;

        if (rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, META_TIMEOUT_MS) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            goto out;
        rd_kafka_topic_partition_list_add(list, topic, id)->offset = hi;
    }
    rc = PL_OK;
out:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return rc;
}

/* Assigns every partition at its end; retried until it works or the consumer stops. */
static void
position(struct gw_stream_kafka *k)
{
    while (!atomic_load(&k->stop)) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(12);
        size_t i = 0;

        while (i < NTOPICS && add_topic(k->rk, topics[i], list) == PL_OK)
            i++;
        if (i == NTOPICS && rd_kafka_assign(k->rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            pl_log_info("event streams: reading %d partitions from their ends", list->cnt);
            rd_kafka_topic_partition_list_destroy(list);
            gw_hub_set_ready(k->hub, true);
            return;
        }
        rd_kafka_topic_partition_list_destroy(list);
        pl_log_warn("event streams: Kafka not ready (%s); retrying", topics[i < NTOPICS ? i : 0]);
        for (int w = 0; w < 20 && !atomic_load(&k->stop); w++)
            usleep(100000);
    }
}

static bool
is_ours(const char *topic)
{
    for (size_t i = 0; i < NTOPICS; i++)
        if (strcmp(topic, topics[i]) == 0)
            return true;
    return false;
}

/* The partitions of our topics in md that are not in have. */
static rd_kafka_topic_partition_list_t *
unassigned(const struct rd_kafka_metadata *md, const rd_kafka_topic_partition_list_t *have)
{
    rd_kafka_topic_partition_list_t *add = rd_kafka_topic_partition_list_new(4);

    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *mt = &md->topics[t];

        if (mt->err != RD_KAFKA_RESP_ERR_NO_ERROR || !is_ours(mt->topic))
            continue;
        for (int p = 0; p < mt->partition_cnt; p++)
            if (rd_kafka_topic_partition_list_find(have, mt->topic, mt->partitions[p].id) == NULL)
                rd_kafka_topic_partition_list_add(add, mt->topic, mt->partitions[p].id)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
    }
    return add;
}

/* Adds the partitions created since the assignment, from their beginnings.  Quiet when Kafka
 * does not answer: the next check tries again. */
static void
assign_new_partitions(struct gw_stream_kafka *k)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *have = NULL, *add;
    rd_kafka_error_t *e;

    if (rd_kafka_assignment(k->rk, &have) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (rd_kafka_metadata(k->rk, 1, NULL, &md, META_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(have);
        return;
    }
    add = unassigned(md, have);
    if (add->cnt > 0 && (e = rd_kafka_incremental_assign(k->rk, add)) != NULL) {
        pl_log_warn("event streams: could not add %d new partitions: %s", add->cnt,
                    rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (add->cnt > 0) {
        pl_log_info("event streams: reading %d new partitions from their beginnings", add->cnt);
    }
    rd_kafka_topic_partition_list_destroy(add);
    rd_kafka_topic_partition_list_destroy(have);
    rd_kafka_metadata_destroy(md);
}

/* Publishes every message of a {"data": [...]} list or a single message object. */
static void
publish_fetched(struct gw_hub *h, const json_t *j)
{
    const json_t *data = json_object_get(j, "data"), *m;
    size_t i;

    if (!json_is_array(data)) {
        gw_hub_publish(h, gw_stream_event_of(j), j);
        return;
    }
    json_array_foreach(data, i, m)
        gw_hub_publish(h, gw_stream_event_of(m), m);
}

/* A status event: the message in its current state, for a conversation someone listens to. */
static void
on_status(struct gw_stream_kafka *k, const json_t *payload)
{
    const char *conv = json_string_value(json_object_get(payload, "conversation_id"));
    const char *msg = json_string_value(json_object_get(payload, "message_id"));
    struct pl_arena *a;
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_resp resp;
    long long last = 0;
    const char *url;

    if (!pl_uuid_valid(conv) || !pl_uuid_valid(msg) || !gw_hub_watched(k->hub, conv, &last))
        return;
    a = pl_arena_new(8192);
    if (last > 0)
        url = pl_arena_printf(a, "%s/api/conversations/%s/messages?changed_since=%lld&limit=200",
                              k->cfg->messaging_url, conv, last);
    else
        url = pl_arena_printf(a, "%s/api/messages/%s", k->cfg->messaging_url, msg);
    if (gw_breaker_get(a, k->cfg->messaging_url, url, FETCH_TIMEOUT_MS, &resp, &err) == PL_OK &&
        resp.status == 200 && resp.json != NULL)
        publish_fetched(k->hub, resp.json);
    else
        pl_log_warn("event streams: could not fetch message %s for its status event", msg);
    pl_arena_free(a);
}

static void
on_event(struct gw_stream_kafka *k, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    json_error_t jerr;
    json_t *env = json_loadb(m->payload, m->len, 0, &jerr);
    const json_t *payload = json_object_get(env, "payload");

    if (!json_is_object(payload))
        pl_log_warn("event streams: %s event without a payload object skipped (%s)", topic,
                    env == NULL ? jerr.text : "no payload");
    else if (strcmp(topic, "message.status.updated") == 0)
        on_status(k, payload);
    else if (strcmp(topic, "message.updated") == 0)
        gw_hub_publish(k->hub, "message.updated", payload);
    else
        gw_hub_publish(k->hub, "message.created", payload);
    json_decref(env);
}

static void *
consume_main(void *arg)
{
    struct gw_stream_kafka *k = arg;
    int64_t checked_us;

    position(k);
    checked_us = pl_time_mono_us();
    while (!atomic_load(&k->stop)) {
        rd_kafka_message_t *m;

        if (pl_time_mono_us() - checked_us >= PARTITION_CHECK_US) {
            assign_new_partitions(k);
            checked_us = pl_time_mono_us();
        }
        m = rd_kafka_consumer_poll(k->rk, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            on_event(k, m);
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            pl_log_warn("event streams: kafka: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

struct gw_stream_kafka *
gw_stream_kafka_start(struct gw_hub *h, const struct gw_cfg *cfg)
{
    struct gw_stream_kafka *k = calloc(1, sizeof(*k));

    PL_ASSERT(k != NULL);
    k->hub = h;
    k->cfg = cfg;
    k->rk = consumer_new(cfg->c.kafka_brokers);
    if (pthread_create(&k->thread, NULL, consume_main, k) != 0)
        pl_fatal("could not start the event stream consumer");
    return k;
}

void
gw_stream_kafka_stop(struct gw_stream_kafka *k)
{
    if (k == NULL)
        return;
    atomic_store(&k->stop, true);
    pthread_join(k->thread, NULL);
    rd_kafka_consumer_close(k->rk);
    rd_kafka_destroy(k->rk);
    free(k);
}
