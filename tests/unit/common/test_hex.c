/*
 * test_hex.c - parley/hex.h: lowercase hex of bytes, and hex SHA-256 (FIPS 180-2 vectors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "parley/hex.h"

static void
test_hex_of_bytes(void **state)
{
    char out[16];

    (void)state;
    pl_hex((const unsigned char[]){ 0x00, 0x0f, 0xa5, 0xff }, 4, out);
    assert_string_equal(out, "000fa5ff");
    pl_hex("", 0, out);
    assert_string_equal(out, "");
}

static void
test_sha256_vectors(void **state)
{
    char out[65];

    (void)state;
    pl_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    pl_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_of_bytes),
        cmocka_unit_test(test_sha256_vectors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
