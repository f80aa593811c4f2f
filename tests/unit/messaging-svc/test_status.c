/*
 * test_status.c - messaging-svc/status.h and cursor.h: the status state machine of SPEC 4.3/10,
 * the vocabularies, and the parsing of the list cursors (pure logic, no database).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../messaging-svc/cursor.h"
#include "../../../messaging-svc/status.h"

#define OUT MSG_DIR_OUTBOUND
#define IN MSG_DIR_INBOUND
#define SYS MSG_DIR_SYSTEM

static enum msg_transition
tr(enum msg_direction d, const char *cur, const char *next)
{
    return msg_status_transition(d, msg_status_parse(cur), msg_status_parse(next));
}

static void
test_names_round_trip_and_played_is_read(void **state)
{
    static const char *const names[] = { "queued", "sent", "delivered", "read", "failed",
                                         "received" };

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_string_equal(msg_status_name(msg_status_parse(names[i])), names[i]);
    assert_int_equal(msg_status_parse("played"), MSG_ST_READ);
    assert_int_equal(msg_status_parse("READ"), MSG_ST_INVALID);
    assert_int_equal(msg_status_parse(""), MSG_ST_INVALID);
    assert_int_equal(msg_status_parse(NULL), MSG_ST_INVALID);
    assert_null(msg_status_name(MSG_ST_INVALID));
}

static void
test_initial_status_by_direction(void **state)
{
    (void)state;
    assert_int_equal(msg_status_initial(OUT), MSG_ST_QUEUED);
    assert_int_equal(msg_status_initial(IN), MSG_ST_RECEIVED);
    assert_int_equal(msg_status_initial(SYS), MSG_ST_RECEIVED);
    assert_int_equal(msg_direction_parse("outbound"), OUT);
    assert_int_equal(msg_direction_parse("Inbound"), MSG_DIR_INVALID);
    assert_int_equal(msg_direction_parse(NULL), MSG_DIR_INVALID);
}

static void
test_outbound_moves_forward_only(void **state)
{
    static const char *const order[] = { "queued", "sent", "delivered", "read" };

    (void)state;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            assert_int_equal(tr(OUT, order[i], order[j]), j > i ? MSG_TR_CHANGE : MSG_TR_IGNORE);
    assert_int_equal(tr(OUT, "read", "delivered"), MSG_TR_IGNORE); /* late delivered after read */
    assert_int_equal(tr(OUT, "delivered", "played"), MSG_TR_CHANGE);
    assert_int_equal(tr(OUT, "read", "played"), MSG_TR_IGNORE);    /* played ranks as read */
}

static void
test_failed_only_from_queued_or_sent_and_final(void **state)
{
    (void)state;
    assert_int_equal(tr(OUT, "queued", "failed"), MSG_TR_CHANGE);
    assert_int_equal(tr(OUT, "sent", "failed"), MSG_TR_CHANGE);
    assert_int_equal(tr(OUT, "delivered", "failed"), MSG_TR_IGNORE);
    assert_int_equal(tr(OUT, "read", "failed"), MSG_TR_IGNORE);
    assert_int_equal(tr(OUT, "failed", "failed"), MSG_TR_IGNORE);
    assert_int_equal(tr(OUT, "failed", "sent"), MSG_TR_IGNORE);
    assert_int_equal(tr(OUT, "failed", "read"), MSG_TR_IGNORE);
}

static void
test_inbound_received_then_read_only(void **state)
{
    (void)state;
    for (int d = IN; d <= SYS; d += SYS - IN) {
        assert_int_equal(tr((enum msg_direction)d, "received", "read"), MSG_TR_CHANGE);
        assert_int_equal(tr((enum msg_direction)d, "received", "played"), MSG_TR_CHANGE);
        assert_int_equal(tr((enum msg_direction)d, "received", "received"), MSG_TR_IGNORE);
        assert_int_equal(tr((enum msg_direction)d, "read", "received"), MSG_TR_IGNORE);
        assert_int_equal(tr((enum msg_direction)d, "read", "read"), MSG_TR_IGNORE);
        assert_int_equal(tr((enum msg_direction)d, "received", "delivered"), MSG_TR_INVALID);
        assert_int_equal(tr((enum msg_direction)d, "received", "sent"), MSG_TR_INVALID);
        assert_int_equal(tr((enum msg_direction)d, "received", "failed"), MSG_TR_INVALID);
    }
}

static void
test_unknown_or_misplaced_status_is_invalid(void **state)
{
    (void)state;
    assert_int_equal(tr(OUT, "queued", "received"), MSG_TR_INVALID);
    assert_int_equal(tr(OUT, "queued", "bogus"), MSG_TR_INVALID);
    assert_int_equal(tr(OUT, "bogus", "sent"), MSG_TR_INVALID);
    assert_int_equal(msg_status_transition(MSG_DIR_INVALID, MSG_ST_QUEUED, MSG_ST_SENT),
                     MSG_TR_INVALID);
}

static void
test_content_types(void **state)
{
    (void)state;
    assert_true(msg_content_type_valid("text"));
    assert_true(msg_content_type_valid("unsupported"));
    assert_true(msg_content_type_valid("interactive"));
    assert_false(msg_content_type_valid("photo"));
    assert_false(msg_content_type_valid("Text"));
    assert_false(msg_content_type_valid(""));
    assert_false(msg_content_type_valid(NULL));
}

/* Parses and returns the error message (NULL when valid); field gets the culprit. */
static const char *
parse(const char *after, const char *before, const char *changed, const char *limit,
      struct msg_cursor *c, const char **field)
{
    *field = NULL;
    return msg_cursor_parse(after, before, changed, limit, c, field);
}

static void
test_cursor_modes_and_defaults(void **state)
{
    struct msg_cursor c;
    const char *field;

    (void)state;
    assert_null(parse(NULL, NULL, NULL, NULL, &c, &field));
    assert_int_equal(c.mode, MSG_LIST_PAGE);
    assert_int_equal(c.limit, 50);
    assert_null(parse("0", NULL, NULL, NULL, &c, &field));
    assert_int_equal(c.mode, MSG_LIST_AFTER);
    assert_int_equal(c.value, 0);
    assert_null(parse(NULL, "42", NULL, "200", &c, &field));
    assert_int_equal(c.mode, MSG_LIST_BEFORE);
    assert_int_equal(c.value, 42);
    assert_int_equal(c.limit, 200);
    assert_null(parse(NULL, NULL, "999999999999999999", "1", &c, &field));
    assert_int_equal(c.mode, MSG_LIST_CHANGED);
    assert_int_equal(c.value, 999999999999999999LL);
    assert_int_equal(c.limit, 1);
}

static void
test_cursor_invalid_values(void **state)
{
    static const char *const bad[] = { "", "-1", "+1", "1.5", "abc", " 1", "1 ", "0x10",
                                       "1000000000000000000", "1e3" };
    struct msg_cursor c;
    const char *field;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(parse(bad[i], NULL, NULL, NULL, &c, &field));
        assert_string_equal(field, "after_seq");
        assert_non_null(parse(NULL, bad[i], NULL, NULL, &c, &field));
        assert_string_equal(field, "before_seq");
        assert_non_null(parse(NULL, NULL, bad[i], NULL, &c, &field));
        assert_string_equal(field, "changed_since");
    }
}

static void
test_cursor_limit_bounds(void **state)
{
    static const char *const bad[] = { "0", "201", "-1", "", "abc", "99999999999999999999" };
    struct msg_cursor c;
    const char *field;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(parse("1", NULL, NULL, bad[i], &c, &field));
        assert_string_equal(field, "limit");
    }
}

static void
test_cursor_combinations_refused(void **state)
{
    struct msg_cursor c;
    const char *field;

    (void)state;
    assert_non_null(parse("1", "2", NULL, NULL, &c, &field));
    assert_string_equal(field, "before_seq");
    assert_non_null(parse("1", NULL, "2", NULL, &c, &field));
    assert_string_equal(field, "changed_since");
    assert_non_null(parse(NULL, "1", "2", NULL, &c, &field));
    assert_non_null(parse("1", "1", "1", NULL, &c, &field));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip_and_played_is_read),
        cmocka_unit_test(test_initial_status_by_direction),
        cmocka_unit_test(test_outbound_moves_forward_only),
        cmocka_unit_test(test_failed_only_from_queued_or_sent_and_final),
        cmocka_unit_test(test_inbound_received_then_read_only),
        cmocka_unit_test(test_unknown_or_misplaced_status_is_invalid),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_cursor_modes_and_defaults),
        cmocka_unit_test(test_cursor_invalid_values),
        cmocka_unit_test(test_cursor_limit_bounds),
        cmocka_unit_test(test_cursor_combinations_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
