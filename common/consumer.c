/*
 * consumer.c - Kafka consumer-group thread with commit-after-success (see consumer.h).
 *
 * Auto-commit is off; after the handler accepts a message its offset is committed
 * asynchronously (a later commit covers an earlier lost one, and a crash before the commit only
 * replays).  When the handler fails, the partition is rewound to that message and retried after
 * a backoff that doubles up to 5 s, so a message is never skipped.
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

struct pl_consumer {
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_bool stop;
    pl_consume_fn *fn;
    void *arg;
};

static void
handle(struct pl_consumer *c, rd_kafka_message_t *m, int *backoff_ms)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    int rc = c->fn(topic, m->key, m->key_len, m->payload, m->len, c->arg);

    if (rc == PL_OK) {
        rd_kafka_commit_message(c->rk, m, 1);
        *backoff_ms = 100;
        return;
    }
    /* Rewind so the same message comes again, then wait before it does. */
    rd_kafka_seek(m->rkt, m->partition, m->offset, 1000);
    pl_log_warn("handling %s offset %lld failed; retrying in %d ms", topic, (long long)m->offset,
                *backoff_ms);
    for (int waited = 0; waited < *backoff_ms && !atomic_load(&c->stop); waited += 100)
        usleep(100000);
    *backoff_ms = *backoff_ms * 2 > 5000 ? 5000 : *backoff_ms * 2;
}

static void *
consume_main(void *arg)
{
    struct pl_consumer *c = arg;
    int backoff_ms = 100;

    while (!atomic_load(&c->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 200);

        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            handle(c, m, &backoff_ms);
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            pl_log_warn("kafka consumer: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static rd_kafka_conf_t *
consumer_conf(const char *brokers, const char *group, struct pl_err *err)
{
    const char *settings[][2] = {
        { "bootstrap.servers", brokers },   { "group.id", group },
        { "enable.auto.commit", "false" },  { "auto.offset.reset", "earliest" },
        { "enable.partition.eof", "false" }, { "session.timeout.ms", "10000" },
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

struct pl_consumer *
pl_consumer_start(const char *brokers, const char *group, const char *const *topics,
                  pl_consume_fn *fn, void *arg, struct pl_err *err)
{
    struct pl_consumer *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *conf = consumer_conf(brokers, group, err);
    rd_kafka_topic_partition_list_t *subs;
    char errstr[256];
    int n = 0;

    PL_ASSERT(c != NULL);
    c->fn = fn;
    c->arg = arg;
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
