/*
 * consumer.c - Kafka consumer-group thread with commit-after-success (see consumer.h).
 *
 * Auto-commit is off; after the handler accepts a message (or a batch: what was ready together,
 * up to a limit) the offsets are committed asynchronously (a later commit covers an earlier lost
 * one, and a crash before the commit only replays).  When the handler fails, each partition of
 * the batch is rewound to its first message and the batch retried after a backoff that doubles
 * up to 5 s, so a message is never skipped.
 */
#include "parley/consumer.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/err.h"
#include "parley/log.h"

#define MAX_BATCH 512

struct pl_consumer {
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_bool stop;
    pl_consume_fn *fn;        /* one message at a time, or */
    pl_consume_batch_fn *bfn; /* batches of up to max_batch */
    int max_batch;
    void *arg;
    rd_kafka_message_t *batch[MAX_BATCH];
    struct pl_consumer_msg view[MAX_BATCH];
};

static int
call(struct pl_consumer *c, int n)
{
    for (int i = 0; i < n; i++) {
        rd_kafka_message_t *m = c->batch[i];

        c->view[i] = (struct pl_consumer_msg){ rd_kafka_topic_name(m->rkt), m->key, m->key_len,
                                               m->payload, m->len };
    }
    if (c->bfn != NULL)
        return c->bfn(c->view, n, c->arg);
    return c->fn(c->view[0].topic, c->view[0].key, c->view[0].key_len, c->view[0].value,
                 c->view[0].value_len, c->arg);
}

/* The batch's partitions, each with the offset of its first (first) or after its last message. */
static rd_kafka_topic_partition_list_t *
partitions(struct pl_consumer *c, int n, bool first)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);

    for (int i = 0; i < n; i++) {
        rd_kafka_message_t *m = c->batch[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, topic, m->partition);

        if (p == NULL) {
            p = rd_kafka_topic_partition_list_add(l, topic, m->partition);
            p->offset = m->offset;
        }
        if (!first)
            p->offset = m->offset + 1;
    }
    return l;
}

/* Hands the batch over; commits it, or rewinds its partitions and waits before it comes again. */
static void
handle(struct pl_consumer *c, int n, int *backoff_ms)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_error_t *e;

    if (call(c, n) == PL_OK) {
        l = partitions(c, n, false);
        rd_kafka_commit(c->rk, l, 1);
        rd_kafka_topic_partition_list_destroy(l);
        *backoff_ms = 100;
        return;
    }
    l = partitions(c, n, true);
    if ((e = rd_kafka_seek_partitions(c->rk, l, 1000)) != NULL)
        rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(l);
    pl_log_warn("handling %d message(s) of %s from offset %lld failed; retrying in %d ms", n,
                rd_kafka_topic_name(c->batch[0]->rkt), (long long)c->batch[0]->offset,
                *backoff_ms);
    for (int waited = 0; waited < *backoff_ms && !atomic_load(&c->stop); waited += 100)
        usleep(100000);
    *backoff_ms = *backoff_ms * 2 > 5000 ? 5000 : *backoff_ms * 2;
}

/* Collects up to max_batch messages: waits for the first, then takes what is ready. */
static int
collect(struct pl_consumer *c)
{
    int n = 0;

    while (n < c->max_batch && !atomic_load(&c->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, n == 0 ? 200 : 0);

        if (m == NULL) {
            if (n > 0)
                break;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            c->batch[n++] = m;
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            pl_log_warn("kafka consumer: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    return n;
}

static void *
consume_main(void *arg)
{
    struct pl_consumer *c = arg;
    int backoff_ms = 100;

    while (!atomic_load(&c->stop)) {
        int n = collect(c);

        if (n > 0 && !atomic_load(&c->stop))
            handle(c, n, &backoff_ms);
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(c->batch[i]);
    }
    return NULL;
}

/*
 * A batch consumer lets the broker hold a fetch until 64 KiB are ready or FETCH_WAIT_MS passed:
 * under load one fetch brings many events instead of one per producer request.
 */
#define FETCH_WAIT_MS "50"

static rd_kafka_conf_t *
consumer_conf(const char *brokers, const char *group, bool batch, struct pl_err *err)
{
    const char *settings[][2] = {
        { "bootstrap.servers", brokers },   { "group.id", group },
        { "enable.auto.commit", "false" },  { "auto.offset.reset", "earliest" },
        { "enable.partition.eof", "false" }, { "session.timeout.ms", "10000" },
        { "fetch.min.bytes", batch ? "65536" : "1" },
        { "fetch.wait.max.ms", batch ? FETCH_WAIT_MS : "500" },
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            pl_err_set(err, 500, "kafka", "bad Kafka setting: %s", errstr);
            return NULL;
        }
    }
    return conf;
}

static struct pl_consumer *
start(struct pl_consumer *c, const char *brokers, const char *group, const char *const *topics,
      struct pl_err *err)
{
    rd_kafka_conf_t *conf = consumer_conf(brokers, group, c->bfn != NULL, err);
    rd_kafka_topic_partition_list_t *subs;
    char errstr[256];
    int n = 0;

    if (conf == NULL || (c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))) ==
                            NULL) {
        if (conf != NULL)
            pl_err_set(err, 500, "kafka", "could not create the Kafka consumer: %s", errstr);
        free(c);
        return NULL;
    }
    rd_kafka_poll_set_consumer(c->rk);
    while (topics[n] != NULL)
        n++;
    subs = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(c->rk, subs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        pthread_create(&c->thread, NULL, consume_main, c) != 0) {
        rd_kafka_topic_partition_list_destroy(subs);
        rd_kafka_destroy(c->rk);
        free(c);
        pl_err_set(err, 500, "kafka", "could not subscribe the Kafka consumer");
        return NULL;
    }
    rd_kafka_topic_partition_list_destroy(subs);
    return c;
}

struct pl_consumer *
pl_consumer_start(const char *brokers, const char *group, const char *const *topics,
                  pl_consume_fn *fn, void *arg, struct pl_err *err)
{
    struct pl_consumer *c = calloc(1, sizeof(*c));

    PL_ASSERT(c != NULL);
    c->fn = fn;
    c->max_batch = 1;
    c->arg = arg;
    return start(c, brokers, group, topics, err);
}

struct pl_consumer *
pl_consumer_start_batch(const char *brokers, const char *group, const char *const *topics,
                        pl_consume_batch_fn *fn, int max_batch, void *arg, struct pl_err *err)
{
    struct pl_consumer *c = calloc(1, sizeof(*c));

    PL_ASSERT(c != NULL && max_batch > 0);
    c->bfn = fn;
    c->max_batch = max_batch < MAX_BATCH ? max_batch : MAX_BATCH;
    c->arg = arg;
    return start(c, brokers, group, topics, err);
}

void
pl_consumer_stop(struct pl_consumer *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c);
}
