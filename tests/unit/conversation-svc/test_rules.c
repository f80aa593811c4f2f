/*
 * test_rules.c - conversation-svc/rules.h: vocabularies, participant counts per type, the direct
 * pair key and the timestamp shape the message-event consumer accepts (pure logic, no database).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../conversation-svc/rules.h"

static void
test_vocabularies(void **state)
{
    (void)state;
    assert_true(conv_in_set("direct", conv_types));
    assert_true(conv_in_set("channel", conv_types));
    assert_false(conv_in_set("Direct", conv_types));
    assert_false(conv_in_set("", conv_types));
    assert_false(conv_in_set(NULL, conv_types));
    assert_true(conv_in_set("pending", conv_statuses));
    assert_false(conv_in_set("archived", conv_statuses));
    assert_true(conv_in_set("owner", conv_roles));
    assert_false(conv_in_set("boss", conv_roles));
}

static void
test_participant_bounds(void **state)
{
    int min, max;

    (void)state;
    conv_participant_bounds("direct", &min, &max);
    assert_int_equal(min, 2);
    assert_int_equal(max, 2);
    conv_participant_bounds("group", &min, &max);
    assert_int_equal(min, 2);
    assert_int_equal(max, CONV_PARTICIPANTS_MAX);
    conv_participant_bounds("channel", &min, &max);
    assert_int_equal(min, 1);
    assert_int_equal(max, CONV_PARTICIPANTS_MAX);
}

static void
test_direct_key_is_order_free(void **state)
{
    static const char a[] = "01a208c8-7535-70c7-bbf5-1aca87bcbb19";
    static const char b[] = "01a208c8-7588-70ce-9f15-1f6e676a1108";
    char k1[CONV_DIRECT_KEY_LEN], k2[CONV_DIRECT_KEY_LEN];

    (void)state;
    conv_direct_key(a, b, k1);
    conv_direct_key(b, a, k2);
    assert_string_equal(k1, k2);
    assert_string_equal(k1, "01a208c8-7535-70c7-bbf5-1aca87bcbb19:"
                            "01a208c8-7588-70ce-9f15-1f6e676a1108");
}

static void
test_rfc3339_accepted(void **state)
{
    static const char *const ok[] = {
        "2026-11-23T10:00:00.123456Z", "2026-11-23T10:00:00Z", "2026-11-23t10:00:00z",
        "2026-11-23T10:00:00.1+02:00", "2026-11-23T10:00:00-05:30",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(conv_rfc3339_valid(ok[i]));
}

static void
test_rfc3339_refused(void **state)
{
    static const char *const bad[] = {
        NULL, "", "infinity", "-infinity", "now", "yesterday", "2026-11-23", "2026-11-23T10:00:00",
        "2026-11-23 10:00:00Z", "2026-11-23T10:00:00.Z", "2026-11-23T10:00:00Zx",
        "2026-11-23T10:00:00+0200", "2026-11-23T10:00:00+02:0", "2026-11-23T10:00:00+02:00x",
        "26-11-23T10:00:00Z", "2026-1-23T10:00:00Z", "2026-11-23T10:00Z",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(conv_rfc3339_valid(bad[i]));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocabularies),
        cmocka_unit_test(test_participant_bounds),
        cmocka_unit_test(test_direct_key_is_order_free),
        cmocka_unit_test(test_rfc3339_accepted),
        cmocka_unit_test(test_rfc3339_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
