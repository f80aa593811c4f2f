/*
 * test_waker.c - pl_waker: wakes are remembered up to the cap, waits time out, stop ends waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "parley/waker.h"

static long
elapsed_ms(const struct timespec *from)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - from->tv_sec) * 1000 + (now.tv_nsec - from->tv_nsec) / 1000000;
}

static void
test_wait_times_out_without_wake(void **state)
{
    struct pl_waker w;
    struct timespec t0;

    (void)state;
    pl_waker_init(&w, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(pl_waker_wait(&w, 50));
    assert_in_range(elapsed_ms(&t0), 45, 2000);
    pl_waker_destroy(&w);
}

static void
test_wakes_are_remembered_up_to_the_cap(void **state)
{
    struct pl_waker w;
    struct timespec t0;

    (void)state;
    pl_waker_init(&w, 2);
    for (int i = 0; i < 5; i++)
        pl_waker_wake(&w);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(pl_waker_wait(&w, 5000));
    assert_true(pl_waker_wait(&w, 5000));
    assert_in_range(elapsed_ms(&t0), 0, 1000); /* two remembered wakes: no sleeping */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(pl_waker_wait(&w, 50)); /* the third was beyond the cap */
    assert_true(elapsed_ms(&t0) >= 45);
    pl_waker_destroy(&w);
}

static void
test_stop_ends_every_wait(void **state)
{
    struct pl_waker w;
    struct timespec t0;

    (void)state;
    pl_waker_init(&w, 0);
    assert_false(pl_waker_stopped(&w));
    pl_waker_stop(&w);
    assert_true(pl_waker_stopped(&w));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_false(pl_waker_wait(&w, 5000));
    assert_in_range(elapsed_ms(&t0), 0, 1000);
    pl_waker_destroy(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_times_out_without_wake),
        cmocka_unit_test(test_wakes_are_remembered_up_to_the_cap),
        cmocka_unit_test(test_stop_ends_every_wait),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
