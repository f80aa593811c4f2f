/*
 * test_signed_url.c - media download signatures: a signed id and expiry verify until they expire;
 * any change to the id, expiry, signature or secret fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parley/signed_url.h"

#define ID "0194f3c2-7b1a-7c3d-8e4f-123456789abc"

static void
test_sign_is_hex_sha256_and_verifies(void **state)
{
    char sig[PL_SIGNED_URL_HEX + 1];

    (void)state;
    pl_signed_url_sign("s3cret", ID, 2000000000, sig);
    assert_int_equal(strlen(sig), PL_SIGNED_URL_HEX);
    assert_int_equal(strspn(sig, "0123456789abcdef"), PL_SIGNED_URL_HEX);
    assert_true(pl_signed_url_valid("s3cret", ID, "2000000000", sig, 1999999999));
    assert_true(pl_signed_url_valid("s3cret", ID, "2000000000", sig, 2000000000));
}

static void
test_any_change_fails(void **state)
{
    char sig[PL_SIGNED_URL_HEX + 1], bad[PL_SIGNED_URL_HEX + 1];

    (void)state;
    pl_signed_url_sign("s3cret", ID, 2000000000, sig);
    memcpy(bad, sig, sizeof(bad));
    bad[10] = bad[10] == 'a' ? 'b' : 'a';
    assert_false(pl_signed_url_valid("s3cret", ID, "2000000000", bad, 0));
    assert_false(pl_signed_url_valid("other", ID, "2000000000", sig, 0));
    assert_false(pl_signed_url_valid("s3cret", ID, "2000000001", sig, 0));
    assert_false(pl_signed_url_valid("s3cret", "0194f3c2-7b1a-7c3d-8e4f-123456789abd", "2000000000",
                                     sig, 0));
    assert_false(pl_signed_url_valid("s3cret", ID, "2000000000", sig, 2000000001)); /* expired */
}

static void
test_malformed_inputs_fail(void **state)
{
    char sig[PL_SIGNED_URL_HEX + 1];

    (void)state;
    pl_signed_url_sign("s3cret", ID, 2000000000, sig);
    assert_false(pl_signed_url_valid("s3cret", ID, NULL, sig, 0));
    assert_false(pl_signed_url_valid("s3cret", ID, "2000000000", NULL, 0));
    assert_false(pl_signed_url_valid("s3cret", ID, "", sig, 0));
    assert_false(pl_signed_url_valid("s3cret", ID, "+2000000000", sig, 0));
    assert_false(pl_signed_url_valid("s3cret", ID, "2000000000 ", sig, 0));
    assert_false(pl_signed_url_valid("s3cret", ID, "9999999999999999999", sig, 0));
    assert_false(pl_signed_url_valid("s3cret", ID, "2000000000", "abc", 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_is_hex_sha256_and_verifies),
        cmocka_unit_test(test_any_change_fails),
        cmocka_unit_test(test_malformed_inputs_fail),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
