/*
 * outbox.h - the transactional outbox and its relay to Kafka.
 *
 * pl_outbox_add() writes an event row inside the caller's transaction; the event exists exactly
 * when the change does.  The relay thread (one active per database: it holds an advisory lock)
 * publishes pending rows in id order with an idempotent librdkafka producer (acks=all, no message
 * timeout, so an outage only delays), marks them sent after Kafka acknowledges, and wakes on
 * LISTEN/NOTIFY.  Delivery is at-least-once; consumers dedupe on event_id.
 */
#ifndef PARLEY_OUTBOX_H
#define PARLEY_OUTBOX_H

#include <libpq-fe.h>

struct pl_db;
struct pl_err;
struct pl_outbox;

/* Envelope source_service of events written by this process; set once from main. */
void pl_outbox_set_source(const char *service);

/*
 * Adds an event (topic, key, payload = JSON text of the resource) in c's open transaction.  The
 * envelope gets a new UUIDv7 event_id, occurred_at now, and the thread's request id as trace_id.
 */
int pl_outbox_add(PGconn *c, const char *topic, const char *key, const char *payload,
                  struct pl_err *err);

/*
 * Starts the relay thread (its own connection to db's database) and registers the outbox metrics
 * (backlog and oldest age, read from the table at scrape time; produce errors).  Returns NULL and
 * fills err when the producer cannot be created.
 */
struct pl_outbox *pl_outbox_start(struct pl_db *db, const char *brokers, struct pl_err *err);
/* Stops the relay, waiting up to flush_ms for in-flight messages; NULL-safe. */
void pl_outbox_stop(struct pl_outbox *ob, int flush_ms);

#endif
