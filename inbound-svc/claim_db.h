/*
 * claim_db.h - inbound-svc private: the SQL that lets a worker take and settle several due
 * webhook rows per round trip (claim_db.c).  Each returns PL_DB_ROW, PL_DB_NONE or a failure code
 * with err filled.  Safe to call from any thread with that thread's connection.
 */
#ifndef INBOUND_CLAIM_DB_H
#define INBOUND_CLAIM_DB_H

#include <libpq-fe.h>

struct pl_arena;
struct pl_err;
struct webhook_row;

/*
 * Claims up to max due rows (oldest due first; FOR UPDATE SKIP LOCKED, so workers and replicas
 * never take the same row) as webhooks_db.c claims one: status processing, attempts + 1, a lease
 * of INB_LEASE_S.  Fills rows[0..*n) (strings in the arena).  PL_DB_NONE when none was due.
 */
int inb_db_webhook_claim_batch(PGconn *db, struct pl_arena *a, int max, struct webhook_row *rows,
                               int *n, struct pl_err *err);
/* Marks the n rows ids[] done in one statement (last_error cleared, processed_at now). */
int inb_db_webhook_done_batch(PGconn *db, struct pl_arena *a, const char *const *ids, int n,
                              struct pl_err *err);
/*
 * Gives back claimed rows that were not started: due again now, their claim not counted (the
 * worker stopped early, on shutdown or to stay within the lease).
 */
int inb_db_webhook_release(PGconn *db, struct pl_arena *a, const char *const *ids, int n,
                           struct pl_err *err);

#endif
