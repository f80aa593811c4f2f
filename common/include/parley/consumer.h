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

/* Joins group and subscribes to topics (NULL-terminated).  NULL with err on failure. */
struct pl_consumer *pl_consumer_start(const char *brokers, const char *group,
                                      const char *const *topics, pl_consume_fn *fn, void *arg,
                                      struct pl_err *err);
/* Stops the thread, commits nothing further, leaves the group; NULL-safe. */
void pl_consumer_stop(struct pl_consumer *c);

#endif
