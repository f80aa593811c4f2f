/*
 * api_keys_db.c - all SQL of API keys.
 */
#include <stdio.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/uuid.h"
#include "svc.h"

/* Looking a key up also records its use; the cache makes this at most one write per key per
 * GW_KEY_CACHE_US. */
static const struct pl_stmt lookup = {
    "gw_key_lookup",
    "UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1"
    " RETURNING id, array_to_string(scopes, ','), revoked_at IS NOT NULL",
    1,
};

static const struct pl_stmt create = {
    "gw_key_create",
    "INSERT INTO api_keys AS k (id, name, key_hash, scopes)"
    " VALUES ($1::uuid, $2, $3, string_to_array($4, ','))"
    " RETURNING api_key_json(k)",
    4,
};

static const struct pl_stmt list = {
    "gw_key_list",
    "SELECT COALESCE(json_agg(api_key_json(k) ORDER BY k.created_at DESC), '[]'::json)"
    " FROM api_keys k",
    0,
};

static const struct pl_stmt revoke_key = {
    "gw_key_revoke",
    "UPDATE api_keys AS k SET revoked_at = COALESCE(k.revoked_at, now()) WHERE k.id = $1::uuid"
    " RETURNING api_key_json(k)",
    1,
};

static const struct pl_stmt ensure = {
    "gw_key_ensure",
    "INSERT INTO api_keys (id, name, key_hash, scopes)"
    " VALUES ($1::uuid, $2, $3, ARRAY['read', 'write', 'admin'])"
    " ON CONFLICT (key_hash) DO NOTHING",
    3,
};

static unsigned
parse_scopes(const char *s)
{
    unsigned bits = 0;

    bits |= strstr(s, "read") ? GW_READ : 0;
    bits |= strstr(s, "write") ? GW_WRITE : 0;
    bits |= strstr(s, "admin") ? GW_ADMIN : 0;
    return bits;
}

int
gw_db_key_lookup(PGconn *db, const char *hash, char id[37], unsigned *scopes, bool *revoked,
                 struct pl_err *err)
{
    const char *params[] = { hash };
    PGresult *res = NULL;
    int rc = pl_db_query(db, &lookup, params, &res, err);

    if (rc == PL_DB_ROW) {
        snprintf(id, 37, "%s", PQgetvalue(res, 0, 0));
        *scopes = parse_scopes(PQgetvalue(res, 0, 1));
        *revoked = PQgetvalue(res, 0, 2)[0] == 't';
    }
    PQclear(res);
    return rc;
}

int
gw_db_key_create(PGconn *db, struct pl_arena *a, const char *name, const char *hash,
                 const char *scopes, const char **json, struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1];
    const char *params[] = { id, name, hash, scopes };

    pl_uuid_v7(id);
    return pl_db_query_text(db, a, &create, params, json, err);
}

int
gw_db_key_list(PGconn *db, struct pl_arena *a, const char **json, struct pl_err *err)
{
    return pl_db_query_text(db, a, &list, NULL, json, err);
}

int
gw_db_key_revoke(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                 struct pl_err *err)
{
    const char *params[] = { id };

    return pl_db_query_text(db, a, &revoke_key, params, json, err);
}

int
gw_db_key_ensure(PGconn *db, const char *name, const char *hash, struct pl_err *err)
{
    char id[PL_UUID_STRLEN + 1];
    const char *params[] = { id, name, hash };
    PGresult *res = NULL;
    int rc;

    pl_uuid_v7(id);
    rc = pl_db_query(db, &ensure, params, &res, err);
    PQclear(res);
    return rc < 0 ? rc : PL_OK;
}
