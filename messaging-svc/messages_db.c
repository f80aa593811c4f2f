/*
 * messages_db.c - all SQL of the message resource and of its Idempotency-Key store.
 *
 * A create is one statement: it bumps the conversation's counter row (INSERT ... ON CONFLICT DO
 * UPDATE, which takes that row's lock until commit), inserts the message with the new seq and
 * version, and writes the event from the same message_json() the API returns.  The counter lock
 * serializes the writers of one conversation, so seq and version follow commit order with no gap:
 * a failed statement rolls its bump back with it.  A create whose (channel, external_message_id)
 * already exists inserts nothing (the guard in the counter CTE) and the first message is read
 * instead; when two such creates race, the loser fails on the unique index and does the same.
 *
 * An edit or status change is one transaction: lock the message, decide in C (status.h), then one
 * statement bumps the counter, updates the row, writes history and events.  With an
 * Idempotency-Key the create runs in a transaction that first claims the key (a concurrent claim of
 * the same key waits on its unique index) and stores the response beside the message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

struct create_tx {
    struct pl_arena *a;
    const struct message_input *in;
    const struct idem *idem;
    const char *json;
    unsigned status;
    bool replayed;
};

struct update_tx {
    struct pl_arena *a;
    const struct message_update *u;
    const char *json;
};

static const struct pl_stmt create = {
    "msg_create",
    "WITH k AS ("
    " INSERT INTO conversation_counters AS k (conversation_id, last_seq, version)"
    " SELECT $2::uuid, 1, 1"
    " WHERE $5::text IS NULL OR $9::text IS NULL OR NOT EXISTS"
    "  (SELECT 1 FROM messages x WHERE x.channel = $5 AND x.external_message_id = $9)"
    " ON CONFLICT (conversation_id) DO UPDATE"
    "  SET last_seq = k.last_seq + 1, version = k.version + 1"
    " RETURNING k.last_seq, k.version),"
    "m AS ("
    " INSERT INTO messages AS m (id, conversation_id, seq, version, sender_customer_id, direction,"
    "  channel, body, content_type, media_id, external_message_id, status, metadata)"
    " SELECT $1::uuid, $2::uuid, k.last_seq, k.version, $3::uuid, $4, $5, $6, $7, $8::uuid, $9,"
    "  $11, COALESCE($10::jsonb, '{}'::jsonb) FROM k"
    " RETURNING m.conversation_id, message_json(m) AS body)"
    "SELECT m.body, outbox_add($12::uuid, $14, m.conversation_id::text, '" MSG_SERVICE "', $13,"
    " m.body) FROM m",
    14,
};

static const struct pl_stmt by_id = {
    "msg_by_id",
    "SELECT message_json(m) FROM messages m WHERE m.id = $1::uuid",
    1,
};

static const struct pl_stmt by_external = {
    "msg_by_external",
    "SELECT message_json(m) FROM messages m WHERE m.channel = $1 AND m.external_message_id = $2",
    2,
};

static const struct pl_stmt idem_get = {
    "msg_idem_get",
    "SELECT request_hash, status, body FROM idempotency"
    " WHERE key = $1 AND status IS NOT NULL AND created_at >= now() - interval '24 hours'",
    1,
};

/* Claims key: returns a row when this transaction owns it (new, or the old one expired). */
static const struct pl_stmt idem_claim = {
    "msg_idem_claim",
    "INSERT INTO idempotency AS i (key, request_hash) VALUES ($1, $2)"
    " ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = NULL,"
    "  body = NULL, created_at = now()"
    " WHERE i.created_at < now() - interval '24 hours'"
    " RETURNING 1",
    2,
};

static const struct pl_stmt idem_store = {
    "msg_idem_store",
    "UPDATE idempotency SET status = $2::integer, body = $3 WHERE key = $1",
    3,
};

static const struct pl_stmt idem_expire = {
    "msg_idem_expire",
    "DELETE FROM idempotency WHERE created_at < now() - interval '24 hours'",
    0,
};

static const struct pl_stmt lock_by_id = {
    "msg_lock_by_id",
    "SELECT id, conversation_id, direction, status, body IS NOT DISTINCT FROM $2,"
    " external_message_id, channel, metadata @> '{\"deleted\": true}'"
    " FROM messages WHERE id = $1::uuid FOR UPDATE",
    2,
};

static const struct pl_stmt lock_by_external = {
    "msg_lock_by_external",
    "SELECT id, conversation_id, direction, status, body IS NOT DISTINCT FROM $3,"
    " external_message_id, channel, metadata @> '{\"deleted\": true}'"
    " FROM messages WHERE channel = $1 AND external_message_id = $2 FOR UPDATE",
    3,
};

/*
 * One change of a locked message: $3 says whether the body changes, $5 is the new status or
 * NULL, $12 the provider id to record (the message has none yet) with $13 its channel when the
 * message has none, $14 whether message.updated is emitted, $15 whether it is a revoke
 * (metadata.deleted set; the body change comes with $3).  The CTE o reads the row as it was
 * before this statement (CTEs share one snapshot).
 */
static const struct pl_stmt update = {
    "msg_update",
    "WITH k AS ("
    " UPDATE conversation_counters SET version = version + 1"
    " WHERE conversation_id = $2::uuid RETURNING version),"
    "o AS (SELECT body FROM messages WHERE id = $1::uuid),"
    "m AS ("
    " UPDATE messages m SET"
    "  body = CASE WHEN $3::boolean THEN $4 ELSE m.body END,"
    "  status = COALESCE($5::text, m.status),"
    "  status_updated_at = CASE WHEN $5::text IS NULL THEN m.status_updated_at ELSE now() END,"
    "  error = CASE WHEN $5::text IS NULL THEN m.error ELSE $6::jsonb END,"
    "  sent_at = CASE WHEN m.direction = 'outbound' AND $5::text IN ('sent', 'delivered', 'read')"
    "            THEN COALESCE(m.sent_at, now()) ELSE m.sent_at END,"
    "  external_message_id = COALESCE($12, m.external_message_id),"
    "  channel = CASE WHEN $12::text IS NULL THEN m.channel ELSE COALESCE(m.channel, $13) END,"
    "  metadata = CASE WHEN $15::boolean THEN m.metadata || '{\"deleted\": true}'"
    "             ELSE m.metadata END,"
    "  version = k.version, updated_at = now()"
    " FROM k WHERE m.id = $1::uuid"
    " RETURNING m.id, m.conversation_id, message_json(m) AS j,"
    "  message_status_json(m, $11) AS s),"
    "h AS ("
    " INSERT INTO message_history (message_id, body, previous_body, edited_by)"
    " SELECT m.id, $4, o.body, $7::uuid FROM m, o WHERE $3::boolean)"
    "SELECT m.j,"
    " CASE WHEN $14::boolean THEN outbox_add($8::uuid, 'message.updated',"
    "  m.conversation_id::text, '" MSG_SERVICE "', $10, m.j) END,"
    " CASE WHEN $5::text IS NOT NULL THEN outbox_add($9::uuid, 'message.status.updated',"
    "  m.conversation_id::text, '" MSG_SERVICE "', $10, m.s) END"
    " FROM m",
    15,
};

static const struct pl_stmt history = {
    "msg_history",
    "SELECT message_history_json(m.id) FROM messages m WHERE m.id = $1::uuid",
    1,
};

static const struct pl_stmt page = {
    "msg_page",
    "SELECT message_json(m), k.last_seq FROM messages m"
    " JOIN conversation_counters k ON k.conversation_id = m.conversation_id"
    " WHERE m.conversation_id = $1::uuid ORDER BY m.seq DESC LIMIT $2::bigint OFFSET $3::bigint",
    3,
};

static const struct pl_stmt page_total = {
    "msg_page_total",
    "SELECT last_seq FROM conversation_counters WHERE conversation_id = $1::uuid",
    1,
};

/* The keyset lists, indexed by enum msg_list_mode (MSG_LIST_PAGE unused). */
static const struct pl_stmt keyset[] = {
    { NULL, NULL, 0 },
    { "msg_after_seq",
      "SELECT message_json(m), m.seq FROM messages m WHERE m.conversation_id = $1::uuid"
      " AND m.seq > $2::bigint ORDER BY m.seq LIMIT $3::bigint",
      3 },
    { "msg_before_seq",
      "SELECT message_json(m), m.seq FROM messages m WHERE m.conversation_id = $1::uuid"
      " AND m.seq < $2::bigint ORDER BY m.seq DESC LIMIT $3::bigint",
      3 },
    { "msg_changed_since",
      "SELECT message_json(m), m.version FROM messages m WHERE m.conversation_id = $1::uuid"
      " AND m.version > $2::bigint ORDER BY m.version LIMIT $3::bigint",
      3 },
};

static char *
dup_value(struct pl_arena *a, const PGresult *res, int row, int col)
{
    return pl_arena_strndup(a, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

/* Runs a write whose result rows do not matter. */
static int
exec_stmt(PGconn *db, const struct pl_stmt *st, const char *const *params, struct pl_err *err)
{
    PGresult *res = NULL;
    int rc = pl_db_query(db, st, params, &res, err);

    PQclear(res);
    return rc;
}

/*
 * Inserts in->... once.  A channel identity that exists answers with the first message (200).  In
 * a transaction a unique violation has aborted it, so the caller must rerun it: PL_DB_RETRY.
 */
static int
create_once(PGconn *db, struct pl_arena *a, const struct message_input *in, bool in_tx,
            const char **json, unsigned *status, struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1], event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    const char *topic = strcmp(in->direction, "outbound") == 0 ? "message.outbound.created"
                                                                : "message.inbound.created";
    const char *params[] = { id, in->conversation_id, in->sender_customer_id, in->direction,
                             in->channel, in->body, in->content_type, in->media_id,
                             in->external_message_id, in->metadata, in->status, event_id,
                             trace ? trace : "", topic };
    const char *ident[] = { in->channel, in->external_message_id };
    int rc;

    pl_uuid_v7(id);
    pl_uuid_v7(event_id);
    *status = 201;
    rc = pl_db_query_text(db, a, &create, params, json, err);
    if (rc == PL_DB_FAIL && err->status == 409) { /* lost a race for the channel identity */
        if (in_tx)
            return PL_DB_RETRY;
        rc = PL_DB_NONE;
    }
    if (rc != PL_DB_NONE)
        return rc;
    *status = 200;
    rc = pl_db_query_text(db, a, &by_external, ident, json, err);
    if (rc == PL_DB_NONE) { /* cannot happen: messages are never deleted */
        pl_err_set(err, 500, "internal", "message vanished during create");
        rc = PL_DB_FAIL;
    }
    return rc;
}

int
msg_db_idem_get(PGconn *db, struct pl_arena *a, const char *key, const char **hash,
                unsigned *status, const char **body, struct pl_err *err)
{
    const char *params[] = { key };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &idem_get, params, &res, err);

    if (rc == PL_DB_ROW) {
        *hash = dup_value(a, res, 0, 0);
        *status = (unsigned)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
        *body = dup_value(a, res, 0, 2);
    }
    PQclear(res);
    return rc;
}

/* The key is stored by an earlier (committed) request: replay it, or refuse a different body. */
static int
replay(PGconn *db, struct create_tx *t, struct pl_err *err)
{
    const char *hash = NULL;
    int rc = msg_db_idem_get(db, t->a, t->idem->key, &hash, &t->status, &t->json, err);

    if (rc == PL_DB_NONE) { /* expired between the claim and now: claim again */
        pl_err_set(err, 503, "conflict_retry", "try again");
        return PL_DB_RETRY;
    }
    t->replayed = rc == PL_DB_ROW;
    if (rc == PL_DB_ROW && strcmp(hash, t->idem->hash) != 0) {
        pl_err_set(err, 422, "validation_failed", "was already used with a different request");
        snprintf(err->field, sizeof(err->field), "Idempotency-Key");
        rc = PL_DB_FAIL;
    }
    return rc;
}

static int
create_tx_fn(PGconn *db, void *arg, struct pl_err *err)
{
    struct create_tx *t = arg;
    const char *claim[] = { t->idem->key, t->idem->hash };
    char status[8];
    int rc = exec_stmt(db, &idem_claim, claim, err);

    if (rc == PL_DB_NONE)
        return replay(db, t, err);
    if (rc < 0)
        return rc;
    rc = create_once(db, t->a, t->in, true, &t->json, &t->status, err);
    if (rc < 0)
        return rc;
    snprintf(status, sizeof(status), "%u", t->status);
    {
        const char *store[] = { t->idem->key, status, t->json };

        rc = exec_stmt(db, &idem_store, store, err);
    }
    return rc < 0 ? rc : PL_DB_ROW;
}

int
msg_db_message_create(PGconn *db, struct pl_arena *a, const struct message_input *in,
                      const struct idem *idem, const char **json, unsigned *status,
                      bool *replayed, struct pl_err *err)
{
    struct create_tx t = { a, in, idem, NULL, 0, false };
    int rc;

    *replayed = false;
    if (idem == NULL) /* the common case: one statement, no BEGIN/COMMIT round trips */
        return create_once(db, a, in, false, json, status, err);
    rc = pl_tx_run(db, "message create", create_tx_fn, &t, err);
    if (rc >= 0) {
        *json = t.json;
        *status = t.status;
        *replayed = t.replayed;
    }
    return rc;
}

struct create_many {
    struct pl_arena *a;
    const struct message_input *in;
    const char *const *traces;
    int n;
    const char **json;
    unsigned *status;
};

/*
 * The order the creates run in: by conversation, each conversation's messages as given.  Every
 * batch then takes its conversations' counter locks in one global order, so two batches never
 * wait for each other in a cycle.
 */
static int *
lock_order(struct pl_arena *a, const struct message_input *in, int n)
{
    int *ord = pl_arena_alloc(a, sizeof(*ord) * (size_t)n);

    for (int i = 0; i < n; i++) { /* insertion sort: stable, and n is small */
        int j = i;

        while (j > 0 && strcmp(in[ord[j - 1]].conversation_id, in[i].conversation_id) > 0) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = i;
    }
    return ord;
}

static int
create_many_fn(PGconn *db, void *arg, struct pl_err *err)
{
    struct create_many *t = arg;
    const char *saved = pl_log_request_id();
    int *ord = lock_order(t->a, t->in, t->n);
    int rc = PL_DB_ROW;

    for (int k = 0; k < t->n && rc >= 0; k++) {
        int i = ord[k];

        pl_log_set_request_id(t->traces[i]);
        rc = create_once(db, t->a, &t->in[i], true, &t->json[i], &t->status[i], err);
    }
    pl_log_set_request_id(saved);
    return rc < 0 ? rc : PL_DB_ROW;
}

int
msg_db_message_create_many(PGconn *db, struct pl_arena *a, const struct message_input *in,
                           const char *const *traces, int n, const char **json,
                           unsigned *status, struct pl_err *err)
{
    struct create_many t = { a, in, traces, n, json, status };

    return pl_tx_run(db, "message batch create", create_many_fn, &t, err);
}

void
msg_db_idem_expire(PGconn *db)
{
    struct pl_err err = PL_ERR_INIT;

    exec_stmt(db, &idem_expire, NULL, &err); /* failures are logged by pl_db_fail */
}

int
msg_db_message_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                   struct pl_err *err)
{
    const char *params[] = { id };

    return pl_db_query_text(db, a, &by_id, params, json, err);
}

/*
 * Writes the decided change; prev is the status before it, ext the provider id to record or
 * NULL.  A recorded id travels in message.status.updated when the status changes with it, else
 * in message.updated.
 */
static int
apply_update(PGconn *db, struct update_tx *t, const char *id, const char *conversation_id,
             bool body_changed, const char *status, const char *prev, const char *ext,
             struct pl_err *err)
{
    char ev_updated[PL_UUID_STRLEN + 1], ev_status[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    bool updated_event = body_changed || (ext != NULL && status == NULL);
    const char *params[] = { id, conversation_id, body_changed ? "true" : "false",
                             t->u->body, status, status ? t->u->error : NULL, t->u->edited_by,
                             ev_updated, ev_status, trace ? trace : "", prev, ext,
                             t->u->new_channel, updated_event ? "true" : "false",
                             t->u->deleted ? "true" : "false" };

    pl_uuid_v7(ev_updated);
    pl_uuid_v7(ev_status);
    return pl_db_query_text(db, t->a, &update, params, &t->json, err);
}

/*
 * Decides a provider id write-back against the locked row (columns 5 and 6: its current
 * external_message_id and channel): *ext is the id to record when the message has none, NULL
 * when there is nothing to do (none asked, or the same id again).  A different id, or another
 * channel, is a 409: a message is sent once, so it has one provider id.
 */
static int
external_change(const PGresult *res, const struct message_update *u, const char **ext,
                struct pl_err *err)
{
    const char *cur = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
    const char *chan = PQgetisnull(res, 0, 6) ? NULL : PQgetvalue(res, 0, 6);

    *ext = NULL;
    if (u->new_external_id == NULL)
        return PL_DB_ROW;
    if ((cur != NULL && strcmp(cur, u->new_external_id) != 0) ||
        (chan != NULL && u->new_channel != NULL && strcmp(chan, u->new_channel) != 0)) {
        pl_err_set(err, 409, "conflict", "the message already has another external_message_id "
                   "or channel");
        return PL_DB_FAIL;
    }
    *ext = cur == NULL ? u->new_external_id : NULL;
    return PL_DB_ROW;
}

static int
update_tx_fn(PGconn *db, void *arg, struct pl_err *err)
{
    struct update_tx *t = arg;
    const struct message_update *u = t->u;
    const char *by_id_p[] = { u->id, u->has_body ? u->body : NULL };
    const char *by_ext_p[] = { u->channel, u->external_message_id, u->has_body ? u->body : NULL };
    const char *status = NULL, *ext = NULL, *id, *conv, *prev;
    PGresult *res = NULL;
    enum msg_transition tr = MSG_TR_IGNORE;
    bool body_changed;
    int rc;

    rc = u->id ? pl_db_query(db, &lock_by_id, by_id_p, &res, err)
               : pl_db_query(db, &lock_by_external, by_ext_p, &res, err);
    if (rc != PL_DB_ROW)
        goto out;
    id = dup_value(t->a, res, 0, 0);
    conv = dup_value(t->a, res, 0, 1);
    prev = dup_value(t->a, res, 0, 3);
    /* A revoke changes the message until it is marked deleted, even when its body was empty. */
    body_changed = u->has_body && (PQgetvalue(res, 0, 4)[0] != 't' ||
                                   (u->deleted && PQgetvalue(res, 0, 7)[0] != 't'));
    if (u->status != MSG_ST_INVALID) {
        tr = msg_status_transition(msg_direction_parse(PQgetvalue(res, 0, 2)),
                                   msg_status_parse(prev), u->status);
        if (tr == MSG_TR_INVALID) {
            pl_err_set(err, 422, "validation_failed", "\"%s\" does not apply to a %s message",
                       msg_status_name(u->status), PQgetvalue(res, 0, 2));
            snprintf(err->field, sizeof(err->field), "status");
            rc = PL_DB_FAIL;
            goto out;
        }
        status = tr == MSG_TR_CHANGE ? msg_status_name(u->status) : NULL;
    }
    if ((rc = external_change(res, u, &ext, err)) < 0)
        goto out;
    if (!body_changed && status == NULL && ext == NULL) { /* nothing moves forward */
        const char *params[] = { id };

        rc = pl_db_query_text(db, t->a, &by_id, params, &t->json, err);
        goto out;
    }
    rc = apply_update(db, t, id, conv, body_changed, status, prev, ext, err);
out:
    PQclear(res);
    return rc;
}

int
msg_db_message_update(PGconn *db, struct pl_arena *a, const struct message_update *u,
                      const char **json, struct pl_err *err)
{
    struct update_tx t = { a, u, NULL };
    int rc = pl_tx_run(db, "message update", update_tx_fn, &t, err);

    if (rc == PL_DB_ROW)
        *json = t.json;
    return rc;
}

int
msg_db_message_history(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                       struct pl_err *err)
{
    const char *params[] = { id };

    return pl_db_query_text(db, a, &history, params, json, err);
}

int
msg_db_message_page(PGconn *db, struct pl_arena *a, const char *conversation_id,
                    long long limit, long long offset, const char ***items, int *n,
                    long long *total, struct pl_err *err)
{
    char lim[24], off[24];
    const char *params[] = { conversation_id, lim, off };
    PGresult *res = NULL;
    int rc;

    snprintf(lim, sizeof(lim), "%lld", limit);
    snprintf(off, sizeof(off), "%lld", offset);
    rc = pl_db_query(db, &page, params, &res, err);
    if (rc < 0)
        return rc;
    *n = PQntuples(res);
    *items = pl_arena_alloc(a, sizeof(**items) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++)
        (*items)[i] = dup_value(a, res, i, 0);
    *total = *n > 0 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    if (*n == 0 && offset > 0) { /* past the end: the total comes from the counter row */
        rc = pl_db_query(db, &page_total, params, &res, err);
        if (rc == PL_DB_ROW)
            *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (rc < 0)
            return rc;
    }
    return PL_DB_ROW;
}

int
msg_db_message_keyset(PGconn *db, struct pl_arena *a, const char *conversation_id,
                      const struct msg_cursor *c, struct message_row **rows, int *n,
                      struct pl_err *err)
{
    char value[24], lim[24];
    const char *params[] = { conversation_id, value, lim };
    PGresult *res = NULL;
    int rc;

    PL_ASSERT(c->mode != MSG_LIST_PAGE);
    snprintf(value, sizeof(value), "%lld", c->value);
    snprintf(lim, sizeof(lim), "%ld", c->limit + 1); /* one more tells whether there is more */
    rc = pl_db_query(db, &keyset[c->mode], params, &res, err);
    if (rc < 0)
        return rc;
    *n = PQntuples(res);
    *rows = pl_arena_alloc(a, sizeof(**rows) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++) {
        (*rows)[i].json = dup_value(a, res, i, 0);
        (*rows)[i].cursor = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    }
    PQclear(res);
    return PL_DB_ROW;
}
