/*
 * test_db.c - common/db.c: the pure SQLSTATE to HTTP mapping (no database needed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parley/db.h"
#include "parley/err.h"

/* Maps state into a fresh err, checks status and code, and returns the mapper's result. */
static int
map_expect(const char *state, int status, const char *code)
{
    struct pl_err err = { 0, NULL, "", "" };
    int rc = pl_db_sqlstate_map(state, &err);

    if (err.status != status || err.code == NULL || strcmp(err.code, code) != 0)
        fail_msg("SQLSTATE %s: got %d %s, want %d %s", state ? state : "(null)", err.status,
                 err.code ? err.code : "(null)", status, code);
    assert_true(err.msg[0] != '\0');
    return rc;
}

static void
test_serialization_failures_retry(void **state)
{
    (void)state;
    assert_int_equal(map_expect("40001", 503, "conflict_retry"), PL_DB_RETRY);
    assert_int_equal(map_expect("40P01", 503, "conflict_retry"), PL_DB_RETRY);
}

static void
test_other_class_40_does_not_retry(void **state)
{
    (void)state;
    /* 40002 (integrity constraint violation at commit) and 40003 are not retryable. */
    assert_int_equal(map_expect("40002", 500, "internal"), PL_DB_FAIL);
    assert_int_equal(map_expect("40003", 500, "internal"), PL_DB_FAIL);
}

static void
test_unique_violation_is_409(void **state)
{
    (void)state;
    assert_int_equal(map_expect("23505", 409, "conflict"), PL_DB_FAIL);
}

static void
test_foreign_key_violation_is_422(void **state)
{
    (void)state;
    assert_int_equal(map_expect("23503", 422, "invalid_reference"), PL_DB_FAIL);
}

static void
test_not_null_and_check_are_422(void **state)
{
    (void)state;
    assert_int_equal(map_expect("23502", 422, "validation_failed"), PL_DB_FAIL);
    assert_int_equal(map_expect("23514", 422, "validation_failed"), PL_DB_FAIL);
}

static void
test_data_exceptions_are_400(void **state)
{
    (void)state;
    assert_int_equal(map_expect("22P02", 400, "invalid_input"), PL_DB_FAIL); /* bad text repr */
    assert_int_equal(map_expect("22001", 400, "invalid_input"), PL_DB_FAIL); /* too long */
    assert_int_equal(map_expect("22003", 400, "invalid_input"), PL_DB_FAIL); /* out of range */
    assert_int_equal(map_expect("22007", 400, "invalid_input"), PL_DB_FAIL); /* bad datetime */
}

static void
test_unavailable_is_503(void **state)
{
    (void)state;
    assert_int_equal(map_expect("08006", 503, "database_unavailable"), PL_DB_FAIL);
    assert_int_equal(map_expect("08001", 503, "database_unavailable"), PL_DB_FAIL);
    assert_int_equal(map_expect("53300", 503, "database_unavailable"), PL_DB_FAIL);
    assert_int_equal(map_expect("57P01", 503, "database_unavailable"), PL_DB_FAIL);
    assert_int_equal(map_expect("57P03", 503, "database_unavailable"), PL_DB_FAIL);
}

static void
test_query_canceled_is_504(void **state)
{
    (void)state;
    assert_int_equal(map_expect("57014", 504, "database_timeout"), PL_DB_FAIL);
}

static void
test_unknown_is_500_internal(void **state)
{
    (void)state;
    assert_int_equal(map_expect("XX000", 500, "internal"), PL_DB_FAIL);
    assert_int_equal(map_expect("42P01", 500, "internal"), PL_DB_FAIL); /* undefined table */
    assert_int_equal(map_expect("23000", 500, "internal"), PL_DB_FAIL);
    assert_int_equal(map_expect("", 500, "internal"), PL_DB_FAIL);
    assert_int_equal(map_expect(NULL, 500, "internal"), PL_DB_FAIL);
}

static void
test_null_err_is_safe(void **state)
{
    (void)state;
    assert_int_equal(pl_db_sqlstate_map("40001", NULL), PL_DB_RETRY);
    assert_int_equal(pl_db_sqlstate_map("23505", NULL), PL_DB_FAIL);
}

static void
test_internal_message_has_no_detail(void **state)
{
    struct pl_err err = PL_ERR_INIT;

    (void)state;
    pl_db_sqlstate_map("XX000", &err);
    assert_string_equal(err.msg, "internal error");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serialization_failures_retry),
        cmocka_unit_test(test_other_class_40_does_not_retry),
        cmocka_unit_test(test_unique_violation_is_409),
        cmocka_unit_test(test_foreign_key_violation_is_422),
        cmocka_unit_test(test_not_null_and_check_are_422),
        cmocka_unit_test(test_data_exceptions_are_400),
        cmocka_unit_test(test_unavailable_is_503),
        cmocka_unit_test(test_query_canceled_is_504),
        cmocka_unit_test(test_unknown_is_500_internal),
        cmocka_unit_test(test_null_err_is_safe),
        cmocka_unit_test(test_internal_message_has_no_detail),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
