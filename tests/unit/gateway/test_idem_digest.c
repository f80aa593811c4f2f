/*
 * test_idem_digest.c - gateway/idem_digest.h: the Idempotency-Key hash of a streamed body, with
 * the multipart boundary left out wherever it occurs, whatever the pieces the body comes in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../../gateway/idem_digest.h"

#define HEAD "POST /api/v1/media/upload\n"

/* The expected hash: head, then body with every occurrence of b removed in one pass. */
static void
reference(const char *body, size_t n, const char *b, char out[65])
{
    char *keep = malloc(strlen(HEAD) + n + 1);
    size_t len = strlen(HEAD), bl = b ? strlen(b) : 0;

    memcpy(keep, HEAD, len);
    for (size_t i = 0; i < n;) {
        if (bl > 0 && n - i >= bl && memcmp(body + i, b, bl) == 0) {
            i += bl;
            continue;
        }
        keep[len++] = body[i++];
    }
    pl_sha256_hex(keep, len, out);
    free(keep);
}

/* The digest of body fed in pieces of size step (0: at once) under Content-Type ctype. */
static void
digest(const char *ctype, const char *body, size_t n, size_t step, char out[65])
{
    struct gw_idem_digest d;

    assert_true(gw_digest_init(&d, ctype, HEAD, strlen(HEAD)));
    for (size_t i = 0; i < n; i += step ? step : n)
        gw_digest_add(&d, body + i, step == 0 || n - i < step ? n - i : step);
    gw_digest_end(&d, out);
    gw_digest_free(&d);
}

static void
test_plain_body_is_hashed_whole(void **state)
{
    const char *body = "{\"name\":\"x\"} boundary=nothing";
    char got[65], want[65];

    (void)state;
    reference(body, strlen(body), NULL, want);
    for (size_t step = 0; step < 6; step++) {
        digest("application/json", body, strlen(body), step, got);
        assert_string_equal(got, want);
    }
}

static void
test_two_boundaries_same_form_same_hash(void **state)
{
    const char *a = "--AaB03x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nbytes\r\n"
                    "--AaB03x--\r\n";
    const char *b = "--q-9f8e7d6c5b4a\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                    "bytes\r\n--q-9f8e7d6c5b4a--\r\n";
    char ha[65], hb[65], other[65];

    (void)state;
    digest("multipart/form-data; boundary=AaB03x", a, strlen(a), 0, ha);
    digest("multipart/form-data; boundary=\"q-9f8e7d6c5b4a\"", b, strlen(b), 3, hb);
    assert_string_equal(ha, hb);
    digest("multipart/form-data; boundary=AaB03x", a, strlen(a) - 9, 0, other);
    assert_string_not_equal(ha, other);
}

/* Boundaries cut by every piece size, and across the internal 4096-byte pieces. */
static void
test_boundary_across_pieces(void **state)
{
    static char body[3 * GW_DIGEST_PIECE];
    const char *b = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    char got[65], want[65];

    (void)state;
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 23);
    for (size_t at = GW_DIGEST_PIECE - 20; at < sizeof(body) - 40; at += GW_DIGEST_PIECE - 7)
        memcpy(body + at, b, strlen(b));
    memcpy(body, b, strlen(b));
    memcpy(body + sizeof(body) - strlen(b), b, strlen(b));
    reference(body, sizeof(body), b, want);
    for (size_t step = 0; step < 80; step += 1 + step / 8) {
        digest("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", body,
               sizeof(body), step, got);
        assert_string_equal(got, want);
    }
}

static void
test_boundary_parameter(void **state)
{
    struct gw_idem_digest d;
    char long_b[120];

    (void)state;
    gw_digest_boundary(&d, "multipart/form-data; boundary=abc; charset=x");
    assert_int_equal(d.blen, 3);
    assert_string_equal(d.boundary, "abc");
    gw_digest_boundary(&d, "Multipart/Form-Data; BOUNDARY=\"a b\"");
    assert_string_equal(d.boundary, "a b");
    gw_digest_boundary(&d, "application/json; boundary=abc"); /* not multipart */
    assert_int_equal(d.blen, 0);
    gw_digest_boundary(&d, "multipart/form-data");
    assert_int_equal(d.blen, 0);
    gw_digest_boundary(&d, NULL);
    assert_int_equal(d.blen, 0);
    memset(long_b, 'x', sizeof(long_b));
    memcpy(long_b, "multipart/mixed; boundary=", 26);
    long_b[26 + GW_BOUNDARY_MAX + 1] = '\0'; /* one character too long: ignored */
    gw_digest_boundary(&d, long_b);
    assert_int_equal(d.blen, 0);
    long_b[26 + GW_BOUNDARY_MAX] = '\0';
    gw_digest_boundary(&d, long_b);
    assert_int_equal(d.blen, GW_BOUNDARY_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_body_is_hashed_whole),
        cmocka_unit_test(test_two_boundaries_same_form_same_hash),
        cmocka_unit_test(test_boundary_across_pieces),
        cmocka_unit_test(test_boundary_parameter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
