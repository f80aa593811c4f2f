/*
 * test_db_live.c - common/db.c against the real PostgreSQL of the local stack: the transaction
 * runner retries a real serialization failure, SQLSTATEs map to statuses, a killed connection is
 * replaced.  Uses a scratch table in PARLEY_TEST_DATABASE_URL (default: the gateway database,
 * which the placeholder gateway does not use yet).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"

static struct pl_db *db;

static const struct pl_stmt read_n = { "t_read_n", "SELECT n FROM tx_test WHERE id = 1", 0 };
static const struct pl_stmt write_n = { "t_write_n", "UPDATE tx_test SET n = $1::int WHERE id = 1",
                                        1 };
static const struct pl_stmt insert_one = { "t_insert_one",
                                           "INSERT INTO tx_test (id, n) VALUES (1, 0)", 0 };

struct bump {
    int attempts;
};

/* Read-modify-write under SERIALIZABLE with a pause, so two of them overlap and one must fail. */
static int
bump_fn(PGconn *c, void *arg, struct pl_err *err)
{
    struct bump *b = arg;
    PGresult *res = NULL;
    char next[16];
    const char *params[] = { next };
    int rc;

    b->attempts++;
    if (pl_db_exec_simple(c, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", err) != PL_OK)
        return PL_DB_FAIL;
    rc = pl_db_query(c, &read_n, NULL, &res, err);
    if (rc < 0)
        return rc;
    snprintf(next, sizeof(next), "%d", atoi(PQgetvalue(res, 0, 0)) + 1);
    PQclear(res);
    usleep(200 * 1000);
    rc = pl_db_query(c, &write_n, params, &res, err);
    PQclear(res);
    return rc;
}

static void *
bump_thread(void *arg)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err);
    int *rc = malloc(sizeof(*rc));

    *rc = c ? pl_tx_run(c, "bump", bump_fn, arg, &err) : PL_DB_FAIL;
    pl_db_thread_close();
    return rc;
}

static void
test_tx_run_retries_serialization_failure(void **state)
{
    struct bump b1 = { 0 }, b2 = { 0 };
    pthread_t t1, t2;
    int *r1, *r2;
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err);
    PGresult *res = NULL;

    (void)state;
    assert_non_null(c);
    pthread_create(&t1, NULL, bump_thread, &b1);
    pthread_create(&t2, NULL, bump_thread, &b2);
    pthread_join(t1, (void **)&r1);
    pthread_join(t2, (void **)&r2);
    assert_true(*r1 >= 0 && *r2 >= 0);
    assert_true(b1.attempts + b2.attempts >= 3); /* one of them ran again */
    assert_int_equal(pl_db_query(c, &read_n, NULL, &res, &err), PL_DB_ROW);
    assert_string_equal(PQgetvalue(res, 0, 0), "2"); /* no lost update */
    PQclear(res);
    free(r1);
    free(r2);
}

static void
test_unique_violation_is_409(void **state)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err);
    PGresult *res = NULL;

    (void)state;
    assert_int_equal(pl_db_query(c, &insert_one, NULL, &res, &err), PL_DB_FAIL);
    assert_null(res);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.code, "conflict");
}

/* A request's statement is cut off after the statement timeout and answered 504. */
static void
test_runaway_statement_is_504(void **state)
{
    static const struct pl_stmt sleepy = { "t_sleepy", "SELECT pg_sleep(30)", 0 };
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err);
    PGresult *res = NULL;

    (void)state;
    assert_int_equal(pl_db_query(c, &sleepy, NULL, &res, &err), PL_DB_FAIL);
    assert_int_equal(err.status, 504);
    assert_string_equal(err.code, "database_timeout");
}

static void
test_killed_connection_is_replaced(void **state)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err), *killer;
    PGresult *res = NULL;
    char sql[96];

    (void)state;
    assert_non_null(c);
    killer = PQconnectdb(pl_db_conninfo(db));
    assert_int_equal(PQstatus(killer), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", PQbackendPID(c));
    PQclear(PQexec(killer, sql));
    PQfinish(killer);
    usleep(100 * 1000);
    assert_int_equal(pl_db_query(c, &read_n, NULL, &res, &err), PL_DB_FAIL);
    assert_int_equal(err.status, 503);
    c = pl_db_conn(db, &err); /* a fresh connection, statements prepared again on use */
    assert_non_null(c);
    assert_int_equal(pl_db_query(c, &read_n, NULL, &res, &err), PL_DB_ROW);
    PQclear(res);
}

/* Options given in the connection string (a search_path) are kept beside the statement timeout. */
static void *
show_settings(void *arg)
{
    struct pl_db *own = arg;
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(own, &err);
    char *out = NULL;

    if (c != NULL) {
        PGresult *res = PQexec(c, "SELECT current_setting('search_path') || '|' || "
                                  "current_setting('statement_timeout')");

        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            out = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    pl_db_thread_close();
    return out;
}

static void
test_connection_string_options_are_kept(void **state)
{
    const char *url = getenv("PARLEY_TEST_DATABASE_URL");
    char with_options[512];
    struct pl_db *own;
    pthread_t t;
    char *got = NULL;

    (void)state;
    snprintf(with_options, sizeof(with_options), "%s%soptions=-c%%20search_path%%3Dparley_t%%2Cpublic",
             url ? url : "postgresql://parley:parley@127.0.0.1:55432/parley_gateway",
             url && strchr(url, '?') ? "&" : "?");
    own = pl_db_new(with_options);
    assert_int_equal(pthread_create(&t, NULL, show_settings, own), 0); /* its own connection */
    assert_int_equal(pthread_join(t, (void **)&got), 0);
    assert_non_null(got);
    assert_string_equal(got, "parley_t,public|5s");
    free(got);
    pl_db_free(own);
}

static int
setup(void **state)
{
    const char *url = getenv("PARLEY_TEST_DATABASE_URL");
    struct pl_err err = PL_ERR_INIT;
    PGconn *c;

    (void)state;
    pl_log_init("db-test", PL_LOG_ERROR);
    db = pl_db_new(url ? url : "postgresql://parley:parley@127.0.0.1:55432/parley_gateway");
    c = pl_db_conn(db, &err);
    if (c == NULL ||
        pl_db_exec_simple(c, "DROP TABLE IF EXISTS tx_test", &err) != PL_OK ||
        pl_db_exec_simple(c, "CREATE TABLE tx_test (id int PRIMARY KEY, n int NOT NULL)", &err) !=
            PL_OK ||
        pl_db_exec_simple(c, "INSERT INTO tx_test VALUES (1, 0)", &err) != PL_OK) {
        fprintf(stderr, "db-test: no database: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err);

    (void)state;
    if (c != NULL)
        pl_db_exec_simple(c, "DROP TABLE IF EXISTS tx_test", &err);
    pl_db_thread_close();
    pl_db_free(db);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tx_run_retries_serialization_failure),
        cmocka_unit_test(test_unique_violation_is_409),
        cmocka_unit_test(test_runaway_statement_is_504),
        cmocka_unit_test(test_killed_connection_is_replaced),
        cmocka_unit_test(test_connection_string_options_are_kept),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
