/*
 * conversations_db.c - all SQL of the conversation resource.
 *
 * Every write is one statement (one round trip, atomic on its own): the rows and their outbox
 * events are written together, the events built from the same conversation_json() and
 * participant_json() the API returns.  A create inserts the conversation, its participants and
 * one conversation.opened plus one conversation.participant.added per participant.
 *
 * Direct conversations: the partial unique index conversations_open_direct allows one open
 * direct conversation per sorted customer pair.  A create inserts with ON CONFLICT DO NOTHING, so
 * of two concurrent creates for one pair the second waits for the first to commit and inserts
 * nothing (no participants, no events); a new statement then reads the winner's conversation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

#define CREATE_TRIES 3

static const struct pl_stmt create = {
    "conv_create",
    "WITH c AS ("
    " INSERT INTO conversations AS c (id, type, subject, metadata, direct_key)"
    " VALUES ($1::uuid, $2, $3, pl_jsonb_merge('{}', $4::jsonb), $5)"
    " ON CONFLICT (direct_key) WHERE status <> 'closed' DO NOTHING"
    " RETURNING c.id, c AS r),"
    "p AS ("
    " INSERT INTO participants AS p (id, conversation_id, customer_id)"
    " SELECT u.pid, c.id, u.cid FROM c, unnest($6::uuid[], $7::uuid[]) AS u(cid, pid)"
    " RETURNING p.id, p.conversation_id, participant_json(p) AS body),"
    "b AS ("
    " SELECT c.id, conversation_json(c.r, (SELECT COALESCE(json_agg(p.body ORDER BY p.id),"
    "        '[]'::json) FROM p)) AS body FROM c),"
    "ev AS ("
    " SELECT outbox_add(e.eid, e.topic, e.key, '" CONV_SERVICE "', $10, e.body) FROM ("
    "  SELECT 0::bigint AS ord, $9::uuid AS eid, 'conversation.opened'::text AS topic,"
    "         b.id::text AS key, b.body FROM b"
    "  UNION ALL"
    "  SELECT u.n, u.eid, 'conversation.participant.added', p.conversation_id::text, p.body"
    "  FROM p JOIN unnest($7::uuid[], $8::uuid[]) WITH ORDINALITY AS u(pid, eid, n)"
    "       ON u.pid = p.id) e"
    " ORDER BY e.ord)"
    "SELECT b.body, (SELECT count(*) FROM ev) FROM b",
    10,
};

static const struct pl_stmt open_direct = {
    "conv_open_direct",
    "SELECT conversation_json(c) FROM conversations c"
    " WHERE c.direct_key = $1 AND c.status <> 'closed'",
    1,
};

static const struct pl_stmt by_id = {
    "conv_by_id",
    "SELECT conversation_json(c) FROM conversations c WHERE c.id = $1::uuid",
    1,
};

/* old locks the row first, so it holds the status this update replaces, even under concurrency. */
static const struct pl_stmt patch = {
    "conv_patch",
    "WITH old AS (SELECT id, status FROM conversations WHERE id = $1::uuid FOR UPDATE),"
    "up AS ("
    " UPDATE conversations c SET"
    "  status = COALESCE($2, c.status),"
    "  subject = CASE WHEN $3::boolean THEN $4 ELSE c.subject END,"
    "  metadata = pl_jsonb_merge(c.metadata, $5::jsonb), updated_at = now()"
    " FROM old WHERE c.id = old.id"
    "  AND (COALESCE($2, c.status), CASE WHEN $3::boolean THEN $4 ELSE c.subject END,"
    "       pl_jsonb_merge(c.metadata, $5::jsonb))"
    "      IS DISTINCT FROM (c.status, c.subject, c.metadata)"
    " RETURNING c.id, old.status AS was, c.status, conversation_json(c) AS body)"
    "SELECT up.body, CASE WHEN up.status = 'closed' AND up.was <> 'closed' THEN"
    " outbox_add($6::uuid, 'conversation.closed', up.id::text, '" CONV_SERVICE "', $7, up.body)"
    " END FROM up",
    7,
};

/* The page's ids first (count, order, limit), then the JSON of those rows only. */
static const struct pl_stmt list = {
    "conv_list",
    "SELECT conversation_json(c), s.total FROM ("
    " SELECT c.id, COALESCE(c.last_message_at, c.created_at) AS act, count(*) OVER () AS total"
    " FROM conversations c"
    " WHERE ($1::text IS NULL OR c.status = $1)"
    "   AND ($2::text IS NULL OR c.type = $2)"
    "   AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM participants p"
    "        WHERE p.conversation_id = c.id AND p.customer_id = $3::uuid AND p.left_at IS NULL))"
    " ORDER BY act DESC, c.id DESC LIMIT $4::bigint OFFSET $5::bigint) s"
    " JOIN conversations c ON c.id = s.id ORDER BY s.act DESC, s.id DESC",
    5,
};

static const struct pl_stmt count = {
    "conv_count",
    "SELECT count(*) FROM conversations c"
    " WHERE ($1::text IS NULL OR c.status = $1)"
    "   AND ($2::text IS NULL OR c.type = $2)"
    "   AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM participants p"
    "        WHERE p.conversation_id = c.id AND p.customer_id = $3::uuid AND p.left_at IS NULL))",
    3,
};

/* Raises last_message_at only when at is newer, so a replay writes nothing. */
static const struct pl_stmt touch = {
    "conv_touch",
    "WITH up AS ("
    " UPDATE conversations SET"
    "  last_message_at = GREATEST(COALESCE(last_message_at, '-infinity'), $2::timestamptz)"
    " WHERE id = $1::uuid AND (last_message_at IS NULL OR last_message_at < $2::timestamptz)"
    " RETURNING id)"
    "SELECT EXISTS (SELECT 1 FROM up) OR EXISTS (SELECT 1 FROM conversations WHERE id = $1::uuid)",
    2,
};

/* The newest time per conversation, applied at once; answers the conversations not found. */
static const struct pl_stmt touch_many = {
    "conv_touch_many",
    "WITH v AS ("
    " SELECT u.id, max(u.at) AS at FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)"
    " GROUP BY u.id),"
    "up AS ("
    " UPDATE conversations c SET last_message_at = v.at FROM v"
    " WHERE c.id = v.id AND (c.last_message_at IS NULL OR c.last_message_at < v.at)"
    " RETURNING c.id)"
    "SELECT v.id FROM v WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = v.id)",
    2,
};

const char *
conv_db_new_ids(struct pl_arena *a, int n)
{
    char **ids = pl_arena_alloc(a, sizeof(*ids) * (size_t)(n + 1));

    for (int i = 0; i < n; i++) {
        ids[i] = pl_arena_alloc(a, PL_UUID_STRLEN + 1);
        pl_uuid_v7(ids[i]);
    }
    return pl_buf_array_literal(a, (const char *const *)ids, n);
}

/* The pair key of a direct conversation (see conv_direct_key), or NULL for other types. */
static const char *
direct_key(struct pl_arena *a, const struct conversation_input *in)
{
    char key[CONV_DIRECT_KEY_LEN];

    if (strcmp(in->type, "direct") != 0)
        return NULL;
    conv_direct_key(in->customers[0], in->customers[1], key);
    return pl_arena_strdup(a, key);
}

int
conv_db_conversation_create(PGconn *db, struct pl_arena *a, const struct conversation_input *in,
                            const char **json, bool *created, struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1], event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id(), *key = direct_key(a, in);
    const char *params[] = { id, in->type, in->subject, in->metadata, key,
                             pl_buf_array_literal(a, in->customers, in->ncustomers),
                             conv_db_new_ids(a, in->ncustomers), conv_db_new_ids(a, in->ncustomers),
                             event_id,
                             trace ? trace : "" };
    int rc = PL_DB_NONE;

    /*
     * A direct create that inserts nothing found an open conversation for the pair; it is read
     * in a new statement, which sees the row even if it was committed after the insert's
     * snapshot.  Should that one be closed in between, the insert is tried again.
     */
    for (int attempt = 0; attempt < CREATE_TRIES && rc == PL_DB_NONE; attempt++) {
        pl_uuid_v7(id);
        pl_uuid_v7(event_id);
        rc = pl_db_query_text(db, a, &create, params, json, err);
        *created = rc == PL_DB_ROW;
        if (rc == PL_DB_NONE && key != NULL)
            rc = pl_db_query_text(db, a, &open_direct, &key, json, err);
    }
    if (rc == PL_DB_NONE) {
        pl_err_set(err, 503, "conflict_retry", "the conversation changed meanwhile; try again");
        rc = PL_DB_FAIL;
    }
    return rc;
}

int
conv_db_conversation_open_direct(PGconn *db, struct pl_arena *a,
                                 const struct conversation_input *in, const char **json,
                                 struct pl_err *err)
{
    const char *key = direct_key(a, in);

    if (key == NULL)
        return PL_DB_NONE;
    return pl_db_query_text(db, a, &open_direct, &key, json, err);
}

int
conv_db_conversation_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                         struct pl_err *err)
{
    const char *params[] = { id };

    return pl_db_query_text(db, a, &by_id, params, json, err);
}

int
conv_db_conversation_patch(PGconn *db, struct pl_arena *a, const char *id,
                           const struct conversation_patch *in, const char **json,
                           struct pl_err *err)
{
    char event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    const char *params[] = { id, in->status, in->has_subject ? "true" : "false", in->subject,
                             in->metadata, event_id, trace ? trace : "" };
    int rc;

    pl_uuid_v7(event_id);
    rc = pl_db_query_text(db, a, &patch, params, json, err);
    if (rc == PL_DB_FAIL && err->status == 409)
        pl_err_set(err, 409, "conflict", "another open direct conversation exists between these "
                   "participants");
    if (rc != PL_DB_NONE)
        return rc;
    return conv_db_conversation_get(db, a, id, json, err); /* unchanged, or unknown */
}

int
conv_db_conversation_list(PGconn *db, struct pl_arena *a, const struct conversation_filter *f,
                          const char ***items, int *n, long long *total, struct pl_err *err)
{
    char limit[24], offset[24];
    const char *params[] = { f->status, f->type, f->customer_id, limit, offset };
    PGresult *res = NULL;
    int rc;

    snprintf(limit, sizeof(limit), "%lld", f->limit);
    snprintf(offset, sizeof(offset), "%lld", f->offset);
    rc = pl_db_query(db, &list, params, &res, err);
    if (rc < 0)
        return rc;
    *n = PQntuples(res);
    *items = pl_arena_alloc(a, sizeof(**items) * (size_t)(*n + 1));
    for (int i = 0; i < *n; i++)
        (*items)[i] = pl_arena_strndup(a, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    *total = *n > 0 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    if (*n == 0 && f->offset > 0) { /* past the end: the window count saw no rows */
        rc = pl_db_query(db, &count, params, &res, err);
        if (rc == PL_DB_ROW)
            *total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (rc < 0)
            return rc;
    }
    return PL_DB_ROW;
}

int
conv_db_conversation_touch(PGconn *db, const char *id, const char *at, bool *found,
                           struct pl_err *err)
{
    const char *params[] = { id, at };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &touch, params, &res, err);

    if (rc == PL_DB_ROW)
        *found = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return rc;
}

int
conv_db_conversations_touch(PGconn *db, const char *ids, const char *ats, PGresult **res,
                            struct pl_err *err)
{
    const char *params[] = { ids, ats };

    return pl_db_query(db, &touch_many, params, res, err);
}
