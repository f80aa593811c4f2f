/*
 * test_arena.c - common/arena.c: region allocation, alignment, string helpers, deferred cleanups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parley/arena.h"

#define NALLOC 5000

static void
assert_aligned(const void *p)
{
    if ((uintptr_t)p % 16 != 0)
        fail_msg("%p is not 16-byte aligned", p);
}

static void
test_many_allocations_keep_their_contents(void **state)
{
    static unsigned char *ptr[NALLOC];
    static size_t len[NALLOC];
    struct pl_arena *a = pl_arena_new(256);

    (void)state;
    for (int i = 0; i < NALLOC; i++) {
        len[i] = (size_t)(i * 7919 % 300) + 1;
        ptr[i] = pl_arena_alloc(a, len[i]);
        assert_non_null(ptr[i]);
        memset(ptr[i], i & 0xff, len[i]);
    }
    /* Nothing overlapped: every allocation still holds its own byte. */
    for (int i = 0; i < NALLOC; i++)
        for (size_t k = 0; k < len[i]; k++)
            if (ptr[i][k] != (unsigned char)(i & 0xff))
                fail_msg("allocation %d byte %zu overwritten", i, k);
    pl_arena_free(a);
}

static void
test_allocation_bigger_than_block(void **state)
{
    struct pl_arena *a = pl_arena_new(256);
    unsigned char *small1, *big, *small2;
    size_t big_len = 1u << 20;

    (void)state;
    small1 = pl_arena_alloc(a, 100);
    memset(small1, 0x11, 100);
    big = pl_arena_alloc(a, big_len);
    assert_non_null(big);
    assert_aligned(big);
    memset(big, 0x22, big_len);
    small2 = pl_arena_alloc(a, 100);
    memset(small2, 0x33, 100);
    assert_int_equal(small1[0], 0x11);
    assert_int_equal(small1[99], 0x11);
    assert_int_equal(big[0], 0x22);
    assert_int_equal(big[big_len - 1], 0x22);
    assert_int_equal(small2[99], 0x33);
    pl_arena_free(a);
}

static void
test_exact_block_fill(void **state)
{
    struct pl_arena *a = pl_arena_new(256);
    unsigned char *p, *q;

    (void)state;
    p = pl_arena_alloc(a, 256); /* exactly the first block */
    memset(p, 1, 256);
    q = pl_arena_alloc(a, 1);
    *q = 2;
    assert_true(q < p || q >= p + 256);
    assert_int_equal(p[255], 1);
    pl_arena_free(a);
}

static void
test_every_allocation_is_aligned(void **state)
{
    struct pl_arena *a = pl_arena_new(300);

    (void)state;
    for (size_t n = 0; n < 200; n++)
        assert_aligned(pl_arena_alloc(a, n));
    for (size_t n = 1; n < 5000; n += 997)
        assert_aligned(pl_arena_alloc(a, n * 13));
    assert_aligned(pl_arena_strdup(a, "x"));
    assert_aligned(pl_arena_printf(a, "%d", 5));
    pl_arena_free(a);
}

static void
test_zero_size_allocation_is_not_null(void **state)
{
    struct pl_arena *a = pl_arena_new(0);
    char *p = pl_arena_alloc(a, 0);
    char *q = pl_arena_alloc(a, 1);

    (void)state;
    assert_non_null(p);
    assert_non_null(q);
    assert_aligned(p);
    *q = 'q';
    assert_int_equal(*q, 'q');
    pl_arena_free(a);
}

static void
test_strndup(void **state)
{
    struct pl_arena *a = pl_arena_new(0);
    const char src[] = "hello, world";
    char *s;

    (void)state;
    s = pl_arena_strndup(a, src, 5);
    assert_string_equal(s, "hello");
    assert_ptr_not_equal(s, src);
    s = pl_arena_strndup(a, src, 0);
    assert_string_equal(s, "");
    s = pl_arena_strndup(a, "a\0b", 3); /* copies n bytes, embedded NUL included */
    assert_memory_equal(s, "a\0b", 4);
    s = pl_arena_strdup(a, src);
    assert_string_equal(s, src);
    assert_ptr_not_equal(s, src);
    pl_arena_free(a);
}

static void
test_printf(void **state)
{
    struct pl_arena *a = pl_arena_new(0);
    char big[3000];
    char *s;

    (void)state;
    s = pl_arena_printf(a, "%s-%d-%05.1f", "id", 42, 3.14159);
    assert_string_equal(s, "id-42-003.1");
    s = pl_arena_printf(a, "%s", "");
    assert_string_equal(s, "");
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    s = pl_arena_printf(a, "<%s>", big); /* longer than any block so far */
    assert_int_equal(strlen(s), sizeof(big) + 1);
    assert_int_equal(s[0], '<');
    assert_int_equal(s[sizeof(big)], '>');
    assert_int_equal(s[1500], 'z');
    pl_arena_free(a);
}

struct order {
    int seen[8];
    int n;
};

static struct order order;

static void
record(void *p)
{
    order.seen[order.n++] = *(int *)p;
}

static void
test_defer_runs_lifo_at_free(void **state)
{
    static int ids[] = { 1, 2, 3, 4 };
    struct pl_arena *a = pl_arena_new(0);

    (void)state;
    memset(&order, 0, sizeof(order));
    for (int i = 0; i < 4; i++) {
        pl_arena_defer(a, record, &ids[i]);
        pl_arena_alloc(a, 500); /* defers survive new blocks */
    }
    assert_int_equal(order.n, 0); /* nothing runs before free */
    pl_arena_free(a);
    assert_int_equal(order.n, 4);
    assert_int_equal(order.seen[0], 4);
    assert_int_equal(order.seen[1], 3);
    assert_int_equal(order.seen[2], 2);
    assert_int_equal(order.seen[3], 1);
}

static const char *deferred_string;
static int deferred_ok;

static void
check_string(void *p)
{
    /* Deferred cleanups run before the blocks go, so arena memory is still readable. */
    deferred_ok = strcmp(p, deferred_string) == 0;
}

static void
test_defer_sees_live_arena_memory(void **state)
{
    struct pl_arena *a = pl_arena_new(0);
    char *s = pl_arena_strdup(a, "still here");

    (void)state;
    deferred_string = "still here";
    deferred_ok = 0;
    pl_arena_defer(a, check_string, s);
    pl_arena_free(a);
    assert_int_equal(deferred_ok, 1);
}

static void
test_free_null_is_safe(void **state)
{
    (void)state;
    pl_arena_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_allocations_keep_their_contents),
        cmocka_unit_test(test_allocation_bigger_than_block),
        cmocka_unit_test(test_exact_block_fill),
        cmocka_unit_test(test_every_allocation_is_aligned),
        cmocka_unit_test(test_zero_size_allocation_is_not_null),
        cmocka_unit_test(test_strndup),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_defer_runs_lifo_at_free),
        cmocka_unit_test(test_defer_sees_live_arena_memory),
        cmocka_unit_test(test_free_null_is_safe),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
