/*
 * media_db.c - all SQL of the media resource.
 *
 * The insert is one statement (one round trip, atomic on its own): the media row and its
 * media.uploaded outbox event are written together, the event payload built by the same
 * media_json() the API returns, keyed by the media id.
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

static const struct pl_stmt insert = {
    "media_insert",
    "WITH ins AS ("
    " INSERT INTO media AS m (id, owner_service, conversation_id, filename, content_type, size,"
    "  sha256, width, height, storage_key, scanned)"
    " VALUES ($1::uuid, $2, $3::uuid, $4, $5, $6::bigint, $7, $8::integer, $9::integer, $10,"
    "  $11::boolean)"
    " RETURNING m.id, media_json(m) AS body)"
    "SELECT ins.body, outbox_add($12::uuid, 'media.uploaded', ins.id::text, '" MEDIA_SERVICE "',"
    " $13, ins.body) FROM ins",
    13,
};

static const struct pl_stmt by_id = {
    "media_by_id",
    "SELECT media_json(m) FROM media m WHERE id = $1::uuid",
    1,
};

static const struct pl_stmt file_by_id = {
    "media_file_by_id",
    "SELECT content_type, filename, sha256, storage_key, size FROM media WHERE id = $1::uuid",
    1,
};

/* A dimension as a parameter: NULL (SQL null) when unknown. */
static const char *
dim(struct pl_arena *a, long v)
{
    return v < 0 ? NULL : pl_arena_printf(a, "%ld", v);
}

int
media_db_media_insert(PGconn *db, struct pl_arena *a, const struct media_input *in,
                      const char **json, struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1], event_id[PL_UUID_STRLEN + 1], size[24];
    const char *trace = pl_log_request_id();
    const char *params[] = { id, in->owner_service, in->conversation_id, in->filename,
                             in->content_type, size, in->sha256, dim(a, in->width),
                             dim(a, in->height), in->storage_key, in->scanned ? "true" : "false",
                             event_id, trace ? trace : "" };

    pl_uuid_v7(id);
    pl_uuid_v7(event_id);
    snprintf(size, sizeof(size), "%llu", (unsigned long long)in->size);
    return pl_db_query_text(db, a, &insert, params, json, err);
}

int
media_db_media_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                   struct pl_err *err)
{
    const char *params[] = { id };

    return pl_db_query_text(db, a, &by_id, params, json, err);
}

static const char *
col(struct pl_arena *a, const PGresult *res, int c)
{
    if (PQgetisnull(res, 0, c))
        return NULL;
    return pl_arena_strndup(a, PQgetvalue(res, 0, c), (size_t)PQgetlength(res, 0, c));
}

int
media_db_media_file(PGconn *db, struct pl_arena *a, const char *id, struct media_file *out,
                    struct pl_err *err)
{
    const char *params[] = { id };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &file_by_id, params, &res, err);

    if (rc == PL_DB_ROW) {
        out->content_type = col(a, res, 0);
        out->filename = col(a, res, 1);
        out->sha256 = col(a, res, 2);
        out->storage_key = col(a, res, 3);
        out->size = strtoull(PQgetvalue(res, 0, 4), NULL, 10);
    }
    PQclear(res);
    return rc;
}
