/*
 * test_uuid.c - common/uuid.c: UUIDv7 format and order, validation, RFC 3339 times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parley/uuid.h"

/* Asserts the canonical v7 shape: 36 chars, lowercase hex, dashes, version 7, variant 10xx. */
static void
assert_v7_shape(const char *u)
{
    assert_int_equal(strlen(u), PL_UUID_STRLEN);
    for (int i = 0; i < PL_UUID_STRLEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", u[i]));
    }
    assert_int_equal(u[14], '7');
    assert_non_null(strchr("89ab", u[19]));
}

/* Times before 1970 round down, so microseconds never print negative. */
static void
test_rfc3339_before_epoch(void **state)
{
    char out[28];

    (void)state;
    pl_time_rfc3339(out, -1);
    assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
    pl_time_rfc3339(out, -1500000);
    assert_string_equal(out, "1969-12-31T23:59:58.500000Z");
}

/* Request ids: v7 shape, and no repeats over many. */
static void
test_v7_fast_shape_and_unique(void **state)
{
    char prev[PL_UUID_STRLEN + 1] = "", id[PL_UUID_STRLEN + 1];

    (void)state;
    for (int i = 0; i < 10000; i++) {
        pl_uuid_v7_fast(id);
        assert_v7_shape(id);
        assert_string_not_equal(id, prev);
        memcpy(prev, id, sizeof(id));
    }
}

static void
test_v7_format(void **state)
{
    char u[PL_UUID_STRLEN + 1];

    (void)state;
    for (int i = 0; i < 200; i++) {
        memset(u, 'X', sizeof(u));
        pl_uuid_v7(u);
        assert_v7_shape(u);
        assert_true(pl_uuid_valid(u));
    }
}

static void
test_v7_strictly_increasing(void **state)
{
    char prev[PL_UUID_STRLEN + 1], cur[PL_UUID_STRLEN + 1];

    (void)state;
    pl_uuid_v7(prev);
    for (int i = 0; i < 10000; i++) {
        pl_uuid_v7(cur);
        if (strcmp(prev, cur) >= 0)
            fail_msg("id %d not increasing: %s then %s", i, prev, cur);
        memcpy(prev, cur, sizeof(cur));
    }
}

static void
test_v7_embeds_current_time(void **state)
{
    char u[PL_UUID_STRLEN + 1], hex[13];
    int64_t before = pl_time_now_us() / 1000, after;
    uint64_t ms;

    (void)state;
    pl_uuid_v7(u);
    after = pl_time_now_us() / 1000;
    memcpy(hex, u, 8);
    memcpy(hex + 8, u + 9, 4);
    hex[12] = '\0';
    ms = strtoull(hex, NULL, 16);
    /* The counter may push the millisecond forward a little, never back. */
    assert_in_range(ms, (uint64_t)before, (uint64_t)after + 10);
}

static void
test_v7_at_embeds_timestamp(void **state)
{
    char u[PL_UUID_STRLEN + 1];

    (void)state;
    pl_uuid_v7_at(u, 0x0190a1b2c3d4ULL, 0x0abc);
    assert_v7_shape(u);
    assert_memory_equal(u, "0190a1b2-c3d4-7abc-", 19);

    pl_uuid_v7_at(u, 0, 0);
    assert_v7_shape(u);
    assert_memory_equal(u, "00000000-0000-7000-", 19);

    pl_uuid_v7_at(u, 0xffffffffffffULL, 0x0fff);
    assert_v7_shape(u);
    assert_memory_equal(u, "ffffffff-ffff-7fff-", 19);

    /* Only 12 bits of seq fit; the version nibble stays 7. */
    pl_uuid_v7_at(u, 1, 0xf123);
    assert_memory_equal(u, "00000000-0001-7123-", 19);
}

static void
test_v7_at_orders_by_time_then_seq(void **state)
{
    char a[PL_UUID_STRLEN + 1], b[PL_UUID_STRLEN + 1], c[PL_UUID_STRLEN + 1];

    (void)state;
    pl_uuid_v7_at(a, 1700000000000ULL, 5);
    pl_uuid_v7_at(b, 1700000000000ULL, 6);
    pl_uuid_v7_at(c, 1700000000001ULL, 0);
    assert_true(strcmp(a, b) < 0);
    assert_true(strcmp(b, c) < 0);
}

static void
test_v7_random_tail_differs(void **state)
{
    char a[PL_UUID_STRLEN + 1], b[PL_UUID_STRLEN + 1];

    (void)state;
    pl_uuid_v7_at(a, 42, 1);
    pl_uuid_v7_at(b, 42, 1);
    assert_memory_equal(a, b, 19);
    assert_string_not_equal(a + 19, b + 19);
}

static void
test_uuid_valid_good(void **state)
{
    (void)state;
    assert_true(pl_uuid_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
    assert_true(pl_uuid_valid("00000000-0000-0000-0000-000000000000"));
    assert_true(pl_uuid_valid("550e8400-e29b-41d4-a716-446655440000")); /* any version */
    assert_true(pl_uuid_valid("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B")); /* uppercase accepted */
}

static void
test_uuid_valid_bad(void **state)
{
    (void)state;
    assert_false(pl_uuid_valid(NULL));
    assert_false(pl_uuid_valid(""));
    assert_false(pl_uuid_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5"));   /* 35 chars */
    assert_false(pl_uuid_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bc")); /* 37 chars */
    assert_false(pl_uuid_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g"));  /* bad char */
    assert_false(pl_uuid_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5 "));
    assert_false(pl_uuid_valid("0190a1b2xc3d4-7e5f-8a9b-0c1d2e3f4a5b"));  /* dash replaced */
    assert_false(pl_uuid_valid("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b"));      /* no dashes */
    assert_false(pl_uuid_valid("0190a1b2c-3d4-7e5f-8a9b-0c1d2e3f4a5b"));  /* dash moved */
    assert_false(pl_uuid_valid("{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5}"));
    assert_false(pl_uuid_valid("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5\xc3"));
}

static void
test_rfc3339_epoch_and_known_values(void **state)
{
    char out[28];

    (void)state;
    pl_time_rfc3339(out, 0);
    assert_string_equal(out, "1970-01-01T00:00:00.000000Z");
    pl_time_rfc3339(out, 1700000000123456LL);
    assert_string_equal(out, "2023-11-14T22:13:20.123456Z");
    pl_time_rfc3339(out, 1795428000000000LL);
    assert_string_equal(out, "2026-11-23T10:00:00.000000Z");
    pl_time_rfc3339(out, 253402300799999999LL);
    assert_string_equal(out, "9999-12-31T23:59:59.999999Z");
}

static void
test_rfc3339_microseconds_zero_padded(void **state)
{
    char out[28];

    (void)state;
    pl_time_rfc3339(out, 1700000000000001LL);
    assert_string_equal(out, "2023-11-14T22:13:20.000001Z");
    pl_time_rfc3339(out, 1700000000000120LL);
    assert_string_equal(out, "2023-11-14T22:13:20.000120Z");
    pl_time_rfc3339(out, 1700000000050000LL);
    assert_string_equal(out, "2023-11-14T22:13:20.050000Z");
    assert_int_equal(strlen(out), 27);
}

static void
test_rfc3339_now_shape(void **state)
{
    char out[28];

    (void)state;
    memset(out, 'X', sizeof(out));
    pl_time_rfc3339(out, pl_time_now_us());
    assert_int_equal(strlen(out), 27);
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[19], '.');
    assert_int_equal(out[26], 'Z');
    assert_true(strncmp(out, "2020", 4) > 0);
}

static void
test_monotonic_clock_advances(void **state)
{
    int64_t a, b;

    (void)state;
    a = pl_time_mono_us();
    b = pl_time_mono_us();
    assert_true(a > 0);
    assert_true(b >= a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v7_format),
        cmocka_unit_test(test_v7_strictly_increasing),
        cmocka_unit_test(test_v7_embeds_current_time),
        cmocka_unit_test(test_v7_at_embeds_timestamp),
        cmocka_unit_test(test_v7_at_orders_by_time_then_seq),
        cmocka_unit_test(test_v7_random_tail_differs),
        cmocka_unit_test(test_uuid_valid_good),
        cmocka_unit_test(test_uuid_valid_bad),
        cmocka_unit_test(test_rfc3339_epoch_and_known_values),
        cmocka_unit_test(test_rfc3339_microseconds_zero_padded),
        cmocka_unit_test(test_rfc3339_now_shape),
        cmocka_unit_test(test_monotonic_clock_advances),
        cmocka_unit_test(test_rfc3339_before_epoch),
        cmocka_unit_test(test_v7_fast_shape_and_unique),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
