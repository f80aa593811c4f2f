/*
 * test_buf.c - common/buf.c: growable text buffer and URL encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parley/arena.h"
#include "parley/buf.h"

static void
assert_buf(const struct pl_buf *b, const char *want)
{
    assert_non_null(b->data);
    assert_int_equal(b->len, strlen(want));
    assert_true(b->len < b->cap);
    assert_int_equal(b->data[b->len], '\0');
    assert_string_equal(b->data, want);
}

static void
test_append_and_puts(void **state)
{
    struct pl_buf b = PL_BUF_INIT;

    (void)state;
    pl_buf_append(&b, "abcdef", 3);
    assert_buf(&b, "abc");
    pl_buf_puts(&b, "-xyz");
    assert_buf(&b, "abc-xyz");
    pl_buf_append(&b, "ignored", 0);
    assert_buf(&b, "abc-xyz");
    pl_buf_cleanup(&b);
}

static void
test_append_grows(void **state)
{
    struct pl_buf b = PL_BUF_INIT;
    char chunk[97];

    (void)state;
    for (int i = 0; i < 1000; i++) {
        memset(chunk, 'a' + i % 26, sizeof(chunk));
        pl_buf_append(&b, chunk, sizeof(chunk));
        assert_int_equal(b.len, (size_t)(i + 1) * sizeof(chunk));
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
    }
    for (int i = 0; i < 1000; i++) {
        if (b.data[(size_t)i * sizeof(chunk)] != 'a' + i % 26 ||
            b.data[(size_t)i * sizeof(chunk) + sizeof(chunk) - 1] != 'a' + i % 26)
            fail_msg("chunk %d corrupted", i);
    }
    pl_buf_cleanup(&b);
}

static void
test_append_one_large_chunk(void **state)
{
    static char big[100000];
    struct pl_buf b = PL_BUF_INIT;

    (void)state;
    memset(big, 'q', sizeof(big));
    pl_buf_puts(&b, "<");
    pl_buf_append(&b, big, sizeof(big));
    pl_buf_puts(&b, ">");
    assert_int_equal(b.len, sizeof(big) + 2);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[1], 'q');
    assert_int_equal(b.data[sizeof(big)], 'q');
    assert_int_equal(b.data[sizeof(big) + 1], '>');
    assert_int_equal(b.data[sizeof(big) + 2], '\0');
    pl_buf_cleanup(&b);
}

static void
test_printf_formats_and_grows(void **state)
{
    struct pl_buf b = PL_BUF_INIT;
    char big[5000];
    size_t before;

    (void)state;
    pl_buf_printf(&b, "%s=%d;", "x", 7);
    assert_buf(&b, "x=7;");
    pl_buf_printf(&b, "%llu %.2f", 18446744073709551615ULL, 0.5);
    assert_buf(&b, "x=7;18446744073709551615 0.50");
    pl_buf_printf(&b, "%s", "");
    assert_buf(&b, "x=7;18446744073709551615 0.50");
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    before = b.len;
    pl_buf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, before + sizeof(big) + 1);
    assert_int_equal(b.data[before], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    assert_memory_equal(b.data, "x=7;", 4);
    pl_buf_cleanup(&b);
}

static void
test_printf_many_small(void **state)
{
    struct pl_buf b = PL_BUF_INIT;

    (void)state;
    for (int i = 0; i < 2000; i++)
        pl_buf_printf(&b, "%04d,", i);
    assert_int_equal(b.len, 2000 * 5);
    assert_memory_equal(b.data, "0000,0001,", 10);
    assert_memory_equal(b.data + 1999 * 5, "1999,", 5);
    assert_int_equal(b.data[b.len], '\0');
    pl_buf_cleanup(&b);
}

static void
test_cleanup_and_reuse(void **state)
{
    struct pl_buf b = PL_BUF_INIT;

    (void)state;
    pl_buf_puts(&b, "first");
    pl_buf_cleanup(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    pl_buf_puts(&b, "second");
    assert_buf(&b, "second");
    pl_buf_cleanup(&b);
    pl_buf_cleanup(&b); /* twice is fine */
    pl_buf_cleanup(NULL);
}

/* URL-encodes s into a fresh buffer and compares with want. */
static void
expect_urlencode(const char *s, const char *want)
{
    struct pl_buf b = PL_BUF_INIT;

    pl_buf_urlencode(&b, s);
    assert_string_equal(b.data ? b.data : "", want);
    assert_int_equal(b.len, strlen(want));
    pl_buf_cleanup(&b);
}

static void
test_urlencode_unreserved_kept(void **state)
{
    (void)state;
    expect_urlencode("ABCXYZabcxyz0189-._~", "ABCXYZabcxyz0189-._~");
    expect_urlencode("", "");
}

static void
test_urlencode_reserved_escaped(void **state)
{
    (void)state;
    expect_urlencode(" ", "%20");
    expect_urlencode("a b&c=d", "a%20b%26c%3Dd");
    expect_urlencode(":/?#[]@", "%3A%2F%3F%23%5B%5D%40");
    expect_urlencode("!$&'()*+,;=", "%21%24%26%27%28%29%2A%2B%2C%3B%3D");
    expect_urlencode("%", "%25");
    expect_urlencode("%41", "%2541");
    expect_urlencode("\"<>\\^`{|}", "%22%3C%3E%5C%5E%60%7B%7C%7D");
    expect_urlencode("\t\n\x7f\x01", "%09%0A%7F%01");
}

static void
test_urlencode_utf8_bytes(void **state)
{
    (void)state;
    expect_urlencode("caf\xc3\xa9", "caf%C3%A9");
    expect_urlencode("\xe2\x82\xac", "%E2%82%AC");
    expect_urlencode("\xf0\x9f\x98\x80", "%F0%9F%98%80");
    expect_urlencode("\xff", "%FF");
}

static void
test_urlencode_appends(void **state)
{
    struct pl_buf b = PL_BUF_INIT;

    (void)state;
    pl_buf_puts(&b, "/api/v1/customers?q=");
    pl_buf_urlencode(&b, "a/b c");
    pl_buf_puts(&b, "&page=2");
    assert_buf(&b, "/api/v1/customers?q=a%2Fb%20c&page=2");
    pl_buf_cleanup(&b);
}

static void
test_pathencode_keeps_slashes_only(void **state)
{
    struct pl_buf b = PL_BUF_INIT;

    (void)state;
    pl_buf_pathencode(&b, "/api/customers/external/t/a?b#c d%2F+\xc3\xa9/x");
    assert_buf(&b, "/api/customers/external/t/a%3Fb%23c%20d%252F%2B%C3%A9/x");
    pl_buf_cleanup(&b);
}

/* Array literal elements: quoted, with '"' and '\\' escaped, NULL bare, commas between. */
static void
test_array_elements(void **state)
{
    struct pl_buf b = PL_BUF_INIT;
    struct pl_arena *a = pl_arena_new(256);
    const char *ids[] = { "a", "b,c" };

    (void)state;
    pl_buf_puts(&b, "{");
    pl_buf_array_elem(&b, "plain");
    pl_buf_array_elem(&b, NULL);
    pl_buf_array_elem(&b, "q\"uo\\te{}");
    pl_buf_array_elem(&b, "");
    pl_buf_puts(&b, "}");
    assert_string_equal(b.data, "{\"plain\",NULL,\"q\\\"uo\\\\te{}\",\"\"}");
    assert_string_equal(pl_buf_array_literal(a, ids, 2), "{\"a\",\"b,c\"}");
    assert_string_equal(pl_buf_array_literal(a, ids, 0), "{}");
    pl_buf_cleanup(&b);
    pl_arena_free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_puts),
        cmocka_unit_test(test_array_elements),
        cmocka_unit_test(test_append_grows),
        cmocka_unit_test(test_append_one_large_chunk),
        cmocka_unit_test(test_printf_formats_and_grows),
        cmocka_unit_test(test_printf_many_small),
        cmocka_unit_test(test_cleanup_and_reuse),
        cmocka_unit_test(test_urlencode_unreserved_kept),
        cmocka_unit_test(test_urlencode_reserved_escaped),
        cmocka_unit_test(test_urlencode_utf8_bytes),
        cmocka_unit_test(test_urlencode_appends),
        cmocka_unit_test(test_pathencode_keeps_slashes_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
