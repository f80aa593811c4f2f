/*
 * participants_db.c - all SQL of a conversation's participants.
 *
 * Add and remove are one statement each that also reports what it found: whether the
 * conversation exists, its type, and the participant row it changed, with the event written in
 * the same statement.  A concurrent add of the same customer meets the participants_once
 * constraint: ON CONFLICT waits for the other insert and then changes nothing, and the existing
 * row is read in a new statement.
 */
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

#define ADD_TRIES 3

static const struct pl_stmt add = {
    "conv_part_add",
    "WITH conv AS (SELECT c.id, c.type FROM conversations c WHERE c.id = $1::uuid),"
    "ins AS ("
    " INSERT INTO participants AS p (id, conversation_id, customer_id, role)"
    " SELECT $2::uuid, conv.id, $3::uuid, $4 FROM conv WHERE conv.type <> 'direct'"
    " ON CONFLICT (conversation_id, customer_id) DO UPDATE"
    "  SET left_at = NULL, joined_at = now(), role = EXCLUDED.role WHERE p.left_at IS NOT NULL"
    " RETURNING participant_json(p) AS body)"
    "SELECT conv.type, ins.body, CASE WHEN ins.body IS NOT NULL THEN"
    " outbox_add($5::uuid, 'conversation.participant.added', conv.id::text, '" CONV_SERVICE "',"
    " $6, ins.body) END"
    " FROM conv LEFT JOIN ins ON true",
    6,
};

static const struct pl_stmt remove_ = {
    "conv_part_remove",
    "WITH conv AS (SELECT c.id, c.type FROM conversations c WHERE c.id = $1::uuid),"
    "up AS ("
    " UPDATE participants p SET left_at = now() FROM conv"
    " WHERE p.conversation_id = conv.id AND conv.type <> 'direct'"
    "   AND p.customer_id = $2::uuid AND p.left_at IS NULL"
    " RETURNING participant_json(p) AS body)"
    "SELECT conv.type, up.body, CASE WHEN up.body IS NOT NULL THEN"
    " outbox_add($3::uuid, 'conversation.participant.removed', conv.id::text, '" CONV_SERVICE "',"
    " $4, up.body) END,"
    " EXISTS (SELECT 1 FROM participants x WHERE x.conversation_id = conv.id"
    "         AND x.customer_id = $2::uuid AND x.left_at IS NULL)"
    " FROM conv LEFT JOIN up ON true",
    4,
};

/* One row when the conversation exists; the column is NULL unless the customer is active. */
static const struct pl_stmt get = {
    "conv_part_get",
    "SELECT (SELECT participant_json(p) FROM participants p WHERE p.conversation_id = c.id"
    "        AND p.customer_id = $2::uuid AND p.left_at IS NULL)"
    " FROM conversations c WHERE c.id = $1::uuid",
    2,
};

/* Column col of row 0 into the arena, or NULL when SQL NULL. */
static const char *
value(struct pl_arena *a, const PGresult *res, int col)
{
    if (PQgetisnull(res, 0, col))
        return NULL;
    return pl_arena_strndup(a, PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col));
}

int
conv_db_participant_get(PGconn *db, struct pl_arena *a, const char *conversation_id,
                        const char *customer_id, const char **json, struct pl_err *err)
{
    const char *params[] = { conversation_id, customer_id };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &get, params, &res, err);

    *json = rc == PL_DB_ROW ? value(a, res, 0) : NULL;
    PQclear(res);
    return rc;
}

int
conv_db_participant_add(PGconn *db, struct pl_arena *a, const char *conversation_id,
                        const char *customer_id, const char *role, const char **json,
                        struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1], event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    const char *params[] = { conversation_id, id, customer_id, role, event_id,
                             trace ? trace : "" };
    PGresult *res = NULL;
    int rc = PL_DB_FAIL;

    /* Already active: read it.  Should it be removed in between, add again. */
    for (int attempt = 0; attempt < ADD_TRIES; attempt++) {
        pl_uuid_v7(id);
        pl_uuid_v7(event_id);
        if ((rc = pl_db_query(db, &add, params, &res, err)) != PL_DB_ROW) {
            PQclear(res); /* a PL_DB_NONE result still needs clearing */
            return rc < 0 ? rc : CONV_PART_NO_CONVERSATION;
        }
        rc = strcmp(PQgetvalue(res, 0, 0), "direct") == 0 ? CONV_PART_DIRECT
             : PQgetisnull(res, 0, 1)                     ? CONV_PART_ALREADY_ACTIVE
                                                          : CONV_PART_CHANGED;
        *json = value(a, res, 1);
        PQclear(res);
        if (rc != CONV_PART_ALREADY_ACTIVE)
            return rc;
        if ((rc = conv_db_participant_get(db, a, conversation_id, customer_id, json, err)) < 0)
            return rc;
        if (*json != NULL)
            return CONV_PART_ALREADY_ACTIVE;
    }
    return pl_err_set(err, 503, "conflict_retry", "the participant changed meanwhile; try again"),
           PL_DB_FAIL;
}

int
conv_db_participant_remove(PGconn *db, struct pl_arena *a, const char *conversation_id,
                           const char *customer_id, const char **json, struct pl_err *err)
{
    char event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    const char *params[] = { conversation_id, customer_id, event_id, trace ? trace : "" };
    PGresult *res = NULL;
    int rc;

    pl_uuid_v7(event_id);
    rc = pl_db_query(db, &remove_, params, &res, err);
    if (rc == PL_DB_ROW) {
        *json = value(a, res, 1);
        if (*json != NULL)
            rc = CONV_PART_CHANGED;
        else if (strcmp(PQgetvalue(res, 0, 0), "direct") == 0 && PQgetvalue(res, 0, 3)[0] == 't')
            rc = CONV_PART_DIRECT;
        else
            rc = CONV_PART_NOT_ACTIVE;
    } else if (rc == PL_DB_NONE) {
        rc = CONV_PART_NO_CONVERSATION;
    }
    PQclear(res);
    return rc;
}
