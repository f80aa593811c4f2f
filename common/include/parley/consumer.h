/*
 * consumer.h - a Kafka consumer-group thread that hands each message to a callback and commits
 * its offset only after the callback succeeded, so a crash or an error means redelivery, never a
 * loss.  Handlers must therefore be idempotent (dedupe on event_id or make the change a no-op on
 * replay).
 */
#ifndef PARLEY_CONSUMER_H
#define PARLEY_CONSUMER_H

#include <stddef.h>

struct pl_consumer;
struct pl_err;

/*
 * Called on the consumer thread for each message in partition order.  Returns PL_OK to commit
 * and go on, or PL_ERR / PL_RETRY to have the same message delivered again after a backoff
 * (the partition does not advance meanwhile).  key and value are not NUL-terminated.
 */
typedef int pl_consume_fn(const char *topic, const char *key, size_t key_len, const char *value,
                          size_t value_len, void *arg);

/* One message of a batch; key and value are not NUL-terminated. */
struct pl_consumer_msg {
    const char *topic;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

/*
 * Called on the consumer thread with up to max_batch messages that were ready together, each
 * partition's in order.  PL_OK commits them all; PL_ERR / PL_RETRY has the whole batch delivered
 * again after a backoff.  A handler that writes once per batch saves a commit per message.
 */
typedef int pl_consume_batch_fn(const struct pl_consumer_msg *msgs, int n, void *arg);

/* Joins group and subscribes to topics (NULL-terminated).  NULL with err on failure. */
struct pl_consumer *pl_consumer_start(const char *brokers, const char *group,
                                      const char *const *topics, pl_consume_fn *fn, void *arg,
                                      struct pl_err *err);
/* The same, handing over batches of at most max_batch messages. */
struct pl_consumer *pl_consumer_start_batch(const char *brokers, const char *group,
                                            const char *const *topics, pl_consume_batch_fn *fn,
                                            int max_batch, void *arg, struct pl_err *err);
/* Stops the thread, commits nothing further, leaves the group; NULL-safe. */
void pl_consumer_stop(struct pl_consumer *c);

#endif
