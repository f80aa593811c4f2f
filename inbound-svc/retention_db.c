/*
 * retention_db.c - deletes what inbound-svc no longer needs: webhook rows processed (done) more
 * than PARLEY_INBOUND_RETENTION_DAYS ago, with their raw bodies, and finished outbound
 * deliveries (sent or failed, outcome written back) last changed that long ago, with their
 * attempts.
 *
 * The period is at least 8 days, longer than both Meta's redelivery window (7 days) and the
 * Kafka retention of message.outbound.created (7 days): a redelivered webhook still finds its
 * row and answers ignored_duplicate, and an outbound event replayed from Kafka still finds its
 * delivery, so nothing is created or sent twice.  Dead rows are kept for operators to see and
 * replay.  Each pass deletes in chunks, one short statement each, so no lock is held long.
 */
#include <stdio.h>
#include <stdlib.h>

#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "svc.h"

#define CHUNK "2000"
#define MAX_CHUNKS 500 /* per table and pass: a backlog is worked off over several passes */

static const struct pl_stmt webhooks = {
    "inb_purge_webhooks",
    "DELETE FROM inbound_webhooks WHERE id IN (SELECT id FROM inbound_webhooks"
    " WHERE status = 'done' AND processed_at < now() - make_interval(days => $1::int)"
    " ORDER BY processed_at LIMIT " CHUNK ")",
    1,
};

#define OLD_DELIVERIES                                                                             \
    "SELECT message_id FROM deliveries WHERE state IN ('sent', 'failed') AND synced"             \
    " AND updated_at < now() - make_interval(days => $1::int) ORDER BY updated_at LIMIT " CHUNK

static const struct pl_stmt attempts = {
    "inb_purge_attempts",
    "DELETE FROM delivery_attempts WHERE message_id IN (" OLD_DELIVERIES ")",
    1,
};

static const struct pl_stmt deliveries = {
    "inb_purge_deliveries",
    "DELETE FROM deliveries d WHERE d.message_id IN (" OLD_DELIVERIES ")"
    " AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.message_id = d.message_id)",
    1,
};

/* Runs st once: the rows deleted, or -1. */
static long
delete_chunk(PGconn *db, const struct pl_stmt *st, const char *days)
{
    const char *params[] = { days };
    struct pl_err err = PL_ERR_INIT;
    PGresult *res = NULL;
    long n;

    if (pl_db_query(db, st, params, &res, &err) < 0) {
        pl_log_warn("retention: %s failed: %s", st->name, err.msg);
        return -1;
    }
    n = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return n;
}

/* Deletes chunk after chunk until one is short; returns the rows of rows_of deleted, or -1. */
static long
purge(PGconn *db, const struct pl_stmt *first, const struct pl_stmt *rows_of, const char *days)
{
    long total = 0, n = 0;

    for (int i = 0; i < MAX_CHUNKS; i++) {
        if ((first != NULL && delete_chunk(db, first, days) < 0) ||
            (n = delete_chunk(db, rows_of, days)) < 0)
            return -1;
        total += n;
        if (n < atol(CHUNK))
            break;
    }
    return total;
}

void
inb_db_retention_run(PGconn *db, long days)
{
    char d[24];
    long w, del;

    snprintf(d, sizeof(d), "%ld", days);
    w = purge(db, NULL, &webhooks, d);
    del = purge(db, &attempts, &deliveries, d);
    if (w > 0 || del > 0)
        pl_log_info("retention: deleted %ld webhook rows and %ld deliveries older than %ld days",
                    w > 0 ? w : 0, del > 0 ? del : 0, days);
}
