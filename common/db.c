/*
 * db.c - PostgreSQL access.
 *
 * Each thread lazily opens one connection and keeps it (pool threads run one request at a time,
 * so a connection per thread is a pool without locks).  Statements are prepared on first use per
 * connection; the set of prepared statements lives beside the thread's connection and is
 * forgotten when the connection is replaced.  A connection found broken is replaced before the
 * next query; a query that fails because the connection dropped is answered 503 and not retried,
 * since it may have committed.  A connection idle for IDLE_CHECK_US is first checked for an end
 * the server announced meanwhile (a restart, a terminated backend): under load this costs
 * nothing, and after a database restart no thread answers 503 for a connection that was
 * already gone before the request came.
 */
#include "parley/db.h"

#include <errno.h> /* program_invocation_short_name */
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"

#define MAX_PREPARED 64
#define STATEMENT_TIMEOUT "5s"
#define IDLE_CHECK_US 500000

struct pl_db {
    char *conninfo;
};

struct thread_conn {
    PGconn *conn;
    int64_t handed_us; /* when pl_db_conn last gave it out */
    int nprepared;
    const struct pl_stmt *prepared[MAX_PREPARED];
};

static _Thread_local struct thread_conn tconn;
static atomic_long open_count;
static pthread_key_t exit_key; /* its destructor closes a thread's connection when it exits */
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void
on_thread_exit(void *unused)
{
    (void)unused;
    pl_db_thread_close();
}

static void
exit_key_create(void)
{
    pthread_key_create(&exit_key, on_thread_exit);
}

struct pl_db *
pl_db_new(const char *conninfo)
{
    struct pl_db *db = calloc(1, sizeof(*db));

    PL_ASSERT(db != NULL);
    db->conninfo = strdup(conninfo);
    PL_ASSERT(db->conninfo != NULL);
    return db;
}

void
pl_db_free(struct pl_db *db)
{
    if (db == NULL)
        return;
    free(db->conninfo);
    free(db);
}

/*
 * The connection's "options": those conninfo gives (a search_path, say), then our statement
 * timeout.  The options parameter replaces conninfo's, so they are carried over here.
 */
static void
with_statement_timeout(const char *conninfo, char *out, size_t size)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    const char *given = "";

    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val != NULL)
            given = o->val;
    if ((size_t)snprintf(out, size, "%s%s-c statement_timeout=" STATEMENT_TIMEOUT, given,
                         given[0] != '\0' ? " " : "") >= size) {
        pl_log_warn("database options longer than %zu bytes ignored", size);
        snprintf(out, size, "-c statement_timeout=" STATEMENT_TIMEOUT);
    }
    PQconninfoFree(opts);
}

/* Opens a connection with a bounded connect time; returns NULL (logged) on failure. */
static PGconn *
connect_db(const char *conninfo)
{
    /*
     * A request's statement may not run longer than STATEMENT_TIMEOUT: with one pool thread per
     * CPU, a runaway query would otherwise hold a thread, and the requests queued behind it,
     * indefinitely.  It fails with 57014, answered 504.
     */
    static const char *const keys[] = { "dbname", "connect_timeout", "fallback_application_name",
                                         "options", NULL };
    char options[1024];
    const char *vals[] = { conninfo, "5", program_invocation_short_name, options, NULL };
    PGconn *c;

    with_statement_timeout(conninfo, options, sizeof(options));
    c = PQconnectdbParams(keys, vals, 1);

    if (PQstatus(c) != CONNECTION_OK) {
        pl_log_detail(PL_LOG_ERROR, PQerrorMessage(c), "could not connect to the database");
        PQfinish(c);
        return NULL;
    }
    return c;
}

void
pl_db_thread_close(void)
{
    if (tconn.conn != NULL) {
        PQfinish(tconn.conn);
        atomic_fetch_sub(&open_count, 1);
    }
    tconn.conn = NULL;
    tconn.nprepared = 0;
}

/*
 * True when the server spoke on an idle connection.  These connections never LISTEN, so what
 * comes unasked is in practice the FATAL message of a backend that was ended, then the close
 * (libpq notices the close only on a later read); such a connection is replaced.
 */
static bool
closed_while_idle(PGconn *c)
{
    struct pollfd p = { PQsocket(c), POLLIN, 0 };

    return poll(&p, 1, 0) > 0;
}

PGconn *
pl_db_conn(struct pl_db *db, struct pl_err *err)
{
    int64_t now = pl_time_mono_us();

    if (tconn.conn != NULL && PQstatus(tconn.conn) == CONNECTION_OK &&
        PQtransactionStatus(tconn.conn) == PQTRANS_IDLE &&
        (now - tconn.handed_us < IDLE_CHECK_US || !closed_while_idle(tconn.conn))) {
        tconn.handed_us = now;
        return tconn.conn;
    }
    pl_db_thread_close(); /* broken, or left inside a transaction by a crashed caller */
    tconn.handed_us = now;
    tconn.conn = connect_db(db->conninfo);
    if (tconn.conn == NULL) {
        pl_err_set(err, 503, "database_unavailable", "the database is not reachable");
        return NULL;
    }
    atomic_fetch_add(&open_count, 1);
    pthread_once(&exit_key_once, exit_key_create);
    pthread_setspecific(exit_key, &tconn); /* any non-NULL value arms the destructor */
    return tconn.conn;
}

long
pl_db_open_count(void)
{
    return atomic_load(&open_count);
}

bool
pl_db_ready(struct pl_db *db)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err);
    PGresult *res;
    bool ok;

    if (c == NULL)
        return false;
    res = PQexec(c, "SELECT 1 FROM schema_migrations LIMIT 1");
    ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    PQclear(res);
    return ok;
}

int
pl_db_sqlstate_map(const char *state, struct pl_err *err)
{
    if (state == NULL)
        state = "";
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
        pl_err_set(err, 503, "conflict_retry", "the change conflicted with another; try again");
        return PL_DB_RETRY;
    }
    if (strcmp(state, "23505") == 0)
        return pl_err_set(err, 409, "conflict", "a resource with these values already exists"),
               PL_DB_FAIL;
    if (strcmp(state, "23503") == 0)
        return pl_err_set(err, 422, "invalid_reference", "a referenced resource does not exist"),
               PL_DB_FAIL;
    if (strcmp(state, "23502") == 0 || strcmp(state, "23514") == 0)
        return pl_err_set(err, 422, "validation_failed", "a value breaks a constraint"), PL_DB_FAIL;
    if (strncmp(state, "22", 2) == 0)
        return pl_err_set(err, 400, "invalid_input", "a value has the wrong format"), PL_DB_FAIL;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57P", 3) == 0)
        return pl_err_set(err, 503, "database_unavailable", "the database is not available"),
               PL_DB_FAIL;
    if (strcmp(state, "57014") == 0)
        return pl_err_set(err, 504, "database_timeout", "the database took too long"), PL_DB_FAIL;
    return pl_err_set(err, 500, "internal", "internal error"), PL_DB_FAIL;
}

/* For a constraint named "<field>__<rule>", points the 422 at that request field. */
static void
constraint_field(const PGresult *res, struct pl_err *err)
{
    const char *name = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *sep = name ? strstr(name, "__") : NULL;
    size_t n;

    if (sep == NULL || sep == name)
        return;
    n = (size_t)(sep - name) < sizeof(err->field) - 1 ? (size_t)(sep - name) : sizeof(err->field) - 1;
    memcpy(err->field, name, n);
    err->field[n] = '\0';
    snprintf(err->msg, sizeof(err->msg), "breaks the rule \"%s\"", sep + 2);
}

int
pl_db_fail(const PGresult *res, const PGconn *c, const char *what, struct pl_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int rc;

    if (state == NULL && (c == NULL || PQstatus(c) != CONNECTION_OK)) {
        pl_log_detail(PL_LOG_ERROR, c ? PQerrorMessage(c) : "", "lost the database during %s",
                      what);
        pl_err_set(err, 503, "database_unavailable", "the database is not available");
        return PL_DB_FAIL;
    }
    rc = pl_db_sqlstate_map(state, err);
    if (err != NULL && err->status == 422)
        constraint_field(res, err);
    if (err != NULL && (err->status >= 500 || rc == PL_DB_RETRY)) {
        char detail[600];
        const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *more = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

        snprintf(detail, sizeof(detail), "SQLSTATE %s: %s%s%s", state ? state : "?",
                 primary ? primary : (c ? PQerrorMessage(c) : "?"), more ? "; " : "",
                 more ? more : "");
        pl_log_detail(rc == PL_DB_RETRY ? PL_LOG_INFO : PL_LOG_ERROR, detail, "could not %s",
                      what);
    }
    return rc;
}

static bool
is_prepared(const struct pl_stmt *st)
{
    for (int i = 0; i < tconn.nprepared; i++)
        if (tconn.prepared[i] == st)
            return true;
    return false;
}

/* Prepares st on the thread's connection once; false means "run it unprepared". */
static bool
ensure_prepared(PGconn *c, const struct pl_stmt *st)
{
    PGresult *res;
    bool ok;

    if (c != tconn.conn)
        return false;
    if (is_prepared(st))
        return true;
    if (tconn.nprepared == MAX_PREPARED)
        return false;
    res = PQprepare(c, st->name, st->sql, st->nparams, NULL);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (ok)
        tconn.prepared[tconn.nprepared++] = st;
    PQclear(res);
    return ok;
}

int
pl_db_query(PGconn *c, const struct pl_stmt *st, const char *const *params, PGresult **res,
            struct pl_err *err)
{
    ExecStatusType status;

    if (ensure_prepared(c, st))
        *res = PQexecPrepared(c, st->name, st->nparams, params, NULL, NULL, 0);
    else
        *res = PQexecParams(c, st->sql, st->nparams, NULL, params, NULL, NULL, 0);
    status = PQresultStatus(*res);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        return PQntuples(*res) > 0 ? PL_DB_ROW : PL_DB_NONE;
    {
        int rc = pl_db_fail(*res, c, st->name, err);

        PQclear(*res);
        *res = NULL;
        return rc;
    }
}

int
pl_db_query_text(PGconn *c, struct pl_arena *a, const struct pl_stmt *st,
                 const char *const *params, const char **out, struct pl_err *err)
{
    PGresult *res = NULL;
    int rc = pl_db_query(c, st, params, &res, err);

    if (rc == PL_DB_ROW)
        *out = pl_arena_strndup(a, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    PQclear(res);
    return rc;
}

int
pl_db_exec_simple(PGconn *c, const char *sql, struct pl_err *err)
{
    PGresult *res = PQexec(c, sql);
    int rc = PL_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pl_db_fail(res, c, sql, err) == PL_DB_RETRY ? PL_RETRY : PL_ERR;
    PQclear(res);
    return rc;
}

int
pl_tx_run(PGconn *db, const char *name, pl_tx_fn *fn, void *arg, struct pl_err *err)
{
    int rc = PL_DB_FAIL;

    for (int attempt = 0; attempt < PL_TX_TRIES; attempt++) {
        if (pl_db_exec_simple(db, "BEGIN", err) != PL_OK)
            return PL_DB_FAIL;
        rc = fn(db, arg, err);
        if (rc >= 0) {
            int c = pl_db_exec_simple(db, "COMMIT", err);

            if (c == PL_OK)
                return rc;
            rc = c == PL_RETRY ? PL_DB_RETRY : PL_DB_FAIL;
        }
        if (PQtransactionStatus(db) != PQTRANS_IDLE)
            pl_db_exec_simple(db, "ROLLBACK", NULL);
        if (rc != PL_DB_RETRY)
            return rc;
        pl_log_info("retrying transaction %s after a serialization failure", name);
    }
    return rc;
}

const char *
pl_db_conninfo(const struct pl_db *db)
{
    return db->conninfo;
}
