/*
 * media_db.c - all SQL of the inbound_media table: which media-svc resource holds the file of a
 * provider media id, so that a retried webhook row does not fetch the same media twice.
 */
#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "svc.h"

static const struct pl_stmt get = {
    "inb_media_get",
    "SELECT media_id FROM inbound_media WHERE provider = $1 AND provider_media_id = $2",
    2,
};

/* Inserts nothing when the media id is recorded already (a concurrent insert waits here). */
static const struct pl_stmt put = {
    "inb_media_put",
    "INSERT INTO inbound_media (provider, provider_media_id, media_id)"
    " VALUES ($1, $2, $3::uuid) ON CONFLICT (provider, provider_media_id) DO NOTHING"
    " RETURNING media_id",
    3,
};

int
inb_db_media_get(PGconn *db, struct pl_arena *a, const char *provider,
                 const char *provider_media_id, const char **media_id, struct pl_err *err)
{
    const char *params[] = { provider, provider_media_id };

    return pl_db_query_text(db, a, &get, params, media_id, err);
}

int
inb_db_media_put(PGconn *db, struct pl_arena *a, const char *provider,
                 const char *provider_media_id, const char **media_id, struct pl_err *err)
{
    const char *params[] = { provider, provider_media_id, *media_id };
    int rc = pl_db_query_text(db, a, &put, params, media_id, err);

    if (rc != PL_DB_NONE)
        return rc;
    /* Another worker recorded its fetch first: a new statement sees it, and that one wins. */
    return inb_db_media_get(db, a, provider, provider_media_id, media_id, err);
}
