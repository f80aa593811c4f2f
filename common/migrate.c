/*
 * migrate.c - versioned SQL migrations applied at start.
 *
 * A session advisory lock serialises replicas that start together: the first applies what is
 * missing, the others wait and then find everything recorded.  Each migration runs in its own
 * transaction together with its schema_migrations row, so a crash leaves it either applied and
 * recorded or neither.  The recorded SHA-256 of each text catches a migration edited after release.
 */
#include "parley/db.h"

#include <errno.h> /* program_invocation_short_name */
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "parley/err.h"
#include "parley/log.h"
#include "parley/hex.h"

/* Any constant both replicas agree on; spelled "PARLEYMG" in ASCII. */
#define MIGRATION_LOCK "5782446175927744327"

static const char create_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

static void
sha256_hex(const char *s, char out[65])
{
    pl_sha256_hex(s, strlen(s), out);
}

/* Returns 1 when recorded with the same checksum, 0 when absent, PL_ERR on mismatch or failure. */
static int
recorded(PGconn *c, const struct pl_migration *m, const char *sum, struct pl_err *err)
{
    const char *params[] = { m->version };
    PGresult *res = PQexecParams(c, "SELECT checksum FROM schema_migrations WHERE version = $1", 1,
                                 NULL, params, NULL, NULL, 0);
    int rc;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = (pl_db_fail(res, c, "read schema_migrations", err), PL_ERR);
    else if (PQntuples(res) == 0)
        rc = 0;
    else if (strcmp(PQgetvalue(res, 0, 0), sum) == 0)
        rc = 1;
    else
        rc = pl_err_set(err, 500, "migration_changed",
                        "migration %s was changed after it was applied", m->version);
    PQclear(res);
    return rc;
}

static int
apply(PGconn *c, const struct pl_migration *m, const char *sum, struct pl_err *err)
{
    const char *params[] = { m->version, sum };
    PGresult *res;

    if (pl_db_exec_simple(c, "BEGIN", err) != PL_OK)
        return PL_ERR;
    if (pl_db_exec_simple(c, m->sql, err) != PL_OK)
        goto fail;
    res = PQexecParams(c, "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", 2,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pl_db_fail(res, c, "record migration", err);
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    if (pl_db_exec_simple(c, "COMMIT", err) != PL_OK)
        goto fail;
    pl_log_info("applied migration %s", m->version);
    return PL_OK;
fail:
    pl_db_exec_simple(c, "ROLLBACK", NULL);
    pl_err_set(err, 500, "migration_failed", "migration %s failed", m->version);
    return PL_ERR;
}

int
pl_db_migrate(const char *conninfo, const struct pl_migration *migs, size_t n, struct pl_err *err)
{
    static const char *const keys[] = { "dbname", "connect_timeout", "fallback_application_name",
                                         NULL };
    const char *vals[] = { conninfo, "5", program_invocation_short_name, NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    int rc = PL_ERR;

    if (PQstatus(c) != CONNECTION_OK) {
        pl_log_detail(PL_LOG_ERROR, PQerrorMessage(c), "could not connect to the database");
        pl_err_set(err, 503, "database_unavailable", "could not connect to the database");
        goto out;
    }
    if (pl_db_exec_simple(c, "SET client_min_messages = warning", err) != PL_OK ||
        pl_db_exec_simple(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", err) != PL_OK)
        goto out;
    if (pl_db_exec_simple(c, create_table, err) != PL_OK)
        goto unlock;
    for (size_t i = 0; i < n; i++) {
        char sum[65];
        int r;

        sha256_hex(migs[i].sql, sum);
        r = recorded(c, &migs[i], sum, err);
        if (r == 0)
            r = apply(c, &migs[i], sum, err);
        if (r < 0)
            goto unlock;
    }
    rc = PL_OK;
unlock:
    pl_db_exec_simple(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")", NULL);
out:
    PQfinish(c);
    return rc;
}
