/*
 * chats_db.c - all SQL of channel chats: the group conversation found by (channel, chat id).
 *
 * Find-or-create is one statement that first inserts the chat key (ON CONFLICT DO NOTHING) and
 * only from the key it inserted the conversation, its participants and their events.  Two
 * concurrent creates for one chat meet on the key's primary key: the second waits for the first
 * to commit and inserts nothing at all; a new statement then reads the winner's conversation.
 * (The key references the conversation inserted by the same statement: a foreign key is checked
 * at the end of the statement.)  Customers listed but not yet active in a conversation found are
 * then added one by one through conv_db_participant_add, which is itself safe under concurrency.
 *
 * A migration adds a second key for the same conversation and points metadata.channel_chat_id at
 * the new id; each step is idempotent, so a retry after a failure between them converges.
 */
#include <stdio.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

static const struct pl_stmt create = {
    "conv_chat_create",
    "WITH k AS ("
    " INSERT INTO conversation_chats (channel, chat_id, conversation_id)"
    " VALUES ($10, $11, $1::uuid) ON CONFLICT (channel, chat_id) DO NOTHING"
    " RETURNING conversation_id),"
    "c AS ("
    " INSERT INTO conversations AS c (id, type, subject, metadata)"
    " SELECT k.conversation_id, $2, $3,"
    "  pl_jsonb_merge('{}', $4::jsonb) || jsonb_build_object('channel_chat_id', $11::text)"
    " FROM k RETURNING c.id, c AS r),"
    "p AS ("
    " INSERT INTO participants AS p (id, conversation_id, customer_id)"
    " SELECT u.pid, c.id, u.cid FROM c, unnest($5::uuid[], $6::uuid[]) AS u(cid, pid)"
    " RETURNING p.id, p.conversation_id, participant_json(p) AS body),"
    "b AS ("
    " SELECT c.id, conversation_json(c.r, (SELECT COALESCE(json_agg(p.body ORDER BY p.id),"
    "        '[]'::json) FROM p)) AS body FROM c),"
    "ev AS ("
    " SELECT outbox_add(e.eid, e.topic, e.key, '" CONV_SERVICE "', $9, e.body) FROM ("
    "  SELECT 0::bigint AS ord, $8::uuid AS eid, 'conversation.opened'::text AS topic,"
    "         b.id::text AS key, b.body FROM b"
    "  UNION ALL"
    "  SELECT u.n, u.eid, 'conversation.participant.added', p.conversation_id::text, p.body"
    "  FROM p JOIN unnest($6::uuid[], $7::uuid[]) WITH ORDINALITY AS u(pid, eid, n)"
    "       ON u.pid = p.id) e"
    " ORDER BY e.ord)"
    "SELECT b.body, (SELECT count(*) FROM ev) FROM b",
    11,
};

static const struct pl_stmt find = {
    "conv_chat_find",
    "SELECT c.id FROM conversation_chats k JOIN conversations c ON c.id = k.conversation_id"
    " WHERE k.channel = $1 AND k.chat_id = $2",
    2,
};

static const struct pl_stmt by_id = {
    "conv_chat_by_id",
    "SELECT conversation_json(c) FROM conversations c WHERE c.id = $1::uuid",
    1,
};

/* The new key points at the old key's conversation; nothing when either already exists. */
static const struct pl_stmt link_ = {
    "conv_chat_link",
    "INSERT INTO conversation_chats (channel, chat_id, conversation_id)"
    " SELECT k.channel, $3, k.conversation_id FROM conversation_chats k"
    " WHERE k.channel = $1 AND k.chat_id = $2"
    " ON CONFLICT (channel, chat_id) DO NOTHING",
    3,
};

/* The conversations of the old and the new key (the new one NULL when it has none). */
static const struct pl_stmt pair = {
    "conv_chat_pair",
    "SELECT o.conversation_id, n.conversation_id FROM conversation_chats o"
    " LEFT JOIN conversation_chats n ON n.channel = o.channel AND n.chat_id = $3"
    " WHERE o.channel = $1 AND o.chat_id = $2",
    3,
};

static const struct pl_stmt point = {
    "conv_chat_point",
    "UPDATE conversations c SET metadata = c.metadata"
    "  || jsonb_build_object('channel_chat_id', $2::text, 'migrated_from_chat_id', $3::text),"
    "  updated_at = now()"
    " WHERE c.id = $1::uuid AND c.metadata->>'channel_chat_id' IS DISTINCT FROM $2",
    3,
};

/* The id of the conversation of (channel, chat_id) into id[], or PL_DB_NONE. */
static int
find_id(PGconn *db, const char *channel, const char *chat_id, char id[PL_UUID_STRLEN + 1],
        struct pl_err *err)
{
    const char *params[] = { channel, chat_id };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &find, params, &res, err);

    if (rc == PL_DB_ROW)
        snprintf(id, PL_UUID_STRLEN + 1, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/* Makes each listed customer an active participant of the conversation id. */
static int
add_missing(PGconn *db, struct pl_arena *a, const char *id, const struct conversation_input *in,
            struct pl_err *err)
{
    const char *json = NULL;

    for (int i = 0; i < in->ncustomers; i++) {
        int rc = conv_db_participant_add(db, a, id, in->customers[i], "member", &json, err);

        if (rc < 0)
            return rc;
        if (rc == CONV_PART_NO_CONVERSATION) /* cannot happen: conversations are not deleted */
            return pl_err_set(err, 500, "internal", "conversation vanished"), PL_DB_FAIL;
    }
    return PL_DB_ROW;
}

int
conv_db_chat_find_or_create(PGconn *db, struct pl_arena *a, const char *channel,
                            const char *chat_id, const struct conversation_input *in,
                            const char **json, bool *created, struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1], event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    const char *params[] = { id, in->type, in->subject, in->metadata,
                             pl_buf_array_literal(a, in->customers, in->ncustomers),
                             conv_db_new_ids(a, in->ncustomers),
                             conv_db_new_ids(a, in->ncustomers), event_id, trace ? trace : "",
                             channel, chat_id };
    const char *by_id_p[] = { id };
    int rc;

    pl_uuid_v7(id);
    pl_uuid_v7(event_id);
    rc = pl_db_query_text(db, a, &create, params, json, err);
    *created = rc == PL_DB_ROW;
    if (rc != PL_DB_NONE)
        return rc;
    /* The chat has its conversation: read it in a new statement, which sees the winner. */
    if ((rc = find_id(db, channel, chat_id, id, err)) == PL_DB_NONE) /* keys are never deleted */
        rc = (pl_err_set(err, 500, "internal", "chat key vanished"), PL_DB_FAIL);
    if (rc < 0)
        return rc;
    if ((rc = add_missing(db, a, id, in, err)) < 0)
        return rc;
    return pl_db_query_text(db, a, &by_id, by_id_p, json, err);
}

int
conv_db_chat_migrate(PGconn *db, struct pl_arena *a, const char *channel, const char *chat_id,
                     const char *to_chat_id, const char **json, struct pl_err *err)
{
    const char *params[] = { channel, chat_id, to_chat_id };
    const char *point_p[3] = { NULL, to_chat_id, chat_id };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &link_, params, &res, err);

    PQclear(res);
    res = NULL;
    if (rc < 0 || (rc = pl_db_query(db, &pair, params, &res, err)) != PL_DB_ROW)
        goto out;
    point_p[0] = pl_arena_strdup(a, PQgetvalue(res, 0, 0));
    if (PQgetisnull(res, 0, 1) || strcmp(point_p[0], PQgetvalue(res, 0, 1)) != 0) {
        pl_err_set(err, 409, "conflict", "chat \"%s\" already has a conversation of its own",
                   to_chat_id);
        rc = PL_DB_FAIL;
        goto out;
    }
    PQclear(res);
    res = NULL;
    if ((rc = pl_db_query(db, &point, point_p, &res, err)) < 0)
        goto out;
    rc = pl_db_query_text(db, a, &by_id, point_p, json, err);
out:
    PQclear(res);
    return rc;
}
