/*
 * test_idcache.c - inbound-svc/idcache.h: the cache of customer ids by channel identity.  A hit
 * needs the same identity, a live entry and the same name and metadata as last upserted (or an
 * item that sends neither); everything else must miss, so the upsert runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../inbound-svc/idcache.h"

#define ID_A "0190f5c2-0000-7000-8000-00000000000a"
#define ID_B "0190f5c2-0000-7000-8000-00000000000b"
#define T0 1000000

static int
setup(void **state)
{
    *state = inb_idcache_new(60000); /* a TTL of one minute */
    return 0;
}

static int
teardown(void **state)
{
    inb_idcache_free(*state);
    return 0;
}

static void
test_miss_then_hit_with_the_same_name(void **state)
{
    struct inb_idcache *c = *state;
    uint64_t fp = inb_idcache_fp("Ana", NULL);
    char id[INB_IDCACHE_ID] = "";

    assert_false(inb_idcache_get(c, "whatsapp", "4915100000001", fp, T0, id));
    inb_idcache_put(c, "whatsapp", "4915100000001", fp, T0, ID_A);
    assert_true(inb_idcache_get(c, "whatsapp", "4915100000001", fp, T0 + 1, id));
    assert_string_equal(id, ID_A);
}

static void
test_a_new_name_or_metadata_misses(void **state)
{
    struct inb_idcache *c = *state;
    json_t *meta = json_pack("{s:s}", "username", "ana");
    json_t *other = json_pack("{s:s}", "username", "ana2");
    char id[INB_IDCACHE_ID];

    inb_idcache_put(c, "telegram", "42", inb_idcache_fp("Ana", meta), T0, ID_A);
    assert_true(inb_idcache_get(c, "telegram", "42", inb_idcache_fp("Ana", meta), T0, id));
    assert_false(inb_idcache_get(c, "telegram", "42", inb_idcache_fp("Ana B", meta), T0, id));
    assert_false(inb_idcache_get(c, "telegram", "42", inb_idcache_fp("Ana", other), T0, id));
    assert_false(inb_idcache_get(c, "telegram", "42", inb_idcache_fp("Ana", NULL), T0, id));
    json_decref(meta);
    json_decref(other);
}

static void
test_metadata_member_order_does_not_matter(void **state)
{
    json_t *m1 = json_pack("{s:s, s:s}", "username", "ana", "language_code", "en");
    json_t *m2 = json_pack("{s:s, s:s}", "language_code", "en", "username", "ana");

    (void)state;
    assert_true(inb_idcache_fp("Ana", m1) == inb_idcache_fp("Ana", m2));
    json_decref(m1);
    json_decref(m2);
}

static void
test_nothing_to_send_matches_any_entry(void **state)
{
    struct inb_idcache *c = *state;
    json_t *empty = json_object();
    char id[INB_IDCACHE_ID];

    assert_true(inb_idcache_fp(NULL, NULL) == INB_IDCACHE_ANY);
    assert_true(inb_idcache_fp("", empty) == INB_IDCACHE_ANY);
    assert_true(inb_idcache_fp("x", NULL) != INB_IDCACHE_ANY);
    inb_idcache_put(c, "whatsapp", "4915100000002", inb_idcache_fp("Bo", NULL), T0, ID_B);
    assert_true(inb_idcache_get(c, "whatsapp", "4915100000002", INB_IDCACHE_ANY, T0, id));
    assert_string_equal(id, ID_B);
    /* An entry made by an upsert that sent nothing does not vouch for a name. */
    inb_idcache_put(c, "whatsapp", "4915100000002", INB_IDCACHE_ANY, T0, ID_B);
    assert_false(
        inb_idcache_get(c, "whatsapp", "4915100000002", inb_idcache_fp("Bo", NULL), T0, id));
    json_decref(empty);
}

static void
test_entries_expire_after_the_ttl(void **state)
{
    struct inb_idcache *c = *state;
    uint64_t fp = inb_idcache_fp("Cy", NULL);
    char id[INB_IDCACHE_ID];

    inb_idcache_put(c, "whatsapp", "4915100000003", fp, T0, ID_A);
    assert_true(inb_idcache_get(c, "whatsapp", "4915100000003", fp, T0 + 59999999, id));
    assert_false(inb_idcache_get(c, "whatsapp", "4915100000003", fp, T0 + 60000000, id));
}

static void
test_identities_do_not_mix(void **state)
{
    struct inb_idcache *c = *state;
    uint64_t fp = inb_idcache_fp("Dee", NULL);
    char id[INB_IDCACHE_ID];

    inb_idcache_put(c, "whatsapp", "77", fp, T0, ID_A);
    assert_false(inb_idcache_get(c, "telegram", "77", fp, T0, id));
    assert_false(inb_idcache_get(c, "whatsapp", "770", fp, T0, id));
    /* "a b"+"c" and "a"+"b c" must not share a key. */
    inb_idcache_put(c, "x", "y z", fp, T0, ID_A);
    assert_false(inb_idcache_get(c, "x y", "z", fp, T0, id));
}

static void
test_too_long_identities_are_not_cached(void **state)
{
    struct inb_idcache *c = *state;
    char ext[INB_IDCACHE_KEY + 8], id[INB_IDCACHE_ID];

    memset(ext, '7', sizeof(ext) - 1);
    ext[sizeof(ext) - 1] = '\0';
    inb_idcache_put(c, "whatsapp", ext, INB_IDCACHE_ANY, T0, ID_A);
    assert_false(inb_idcache_get(c, "whatsapp", ext, INB_IDCACHE_ANY, T0, id));
}

/* The n-th identity after "1" (in number order) that falls in the same set as "1". */
static void
same_set(struct inb_idcache *c, int nth, char ext[32])
{
    char key[INB_IDCACHE_KEY];
    struct inb_idslot *first = inb_idcache_set(c, "whatsapp", "1", key);
    int n = 2;

    for (int found = 0; found < nth; n++) {
        snprintf(ext, 32, "%d", n);
        found += inb_idcache_set(c, "whatsapp", ext, key) == first;
    }
}

static void
test_a_set_holds_two_and_a_third_evicts_the_one_expiring_first(void **state)
{
    struct inb_idcache *c = *state;
    char second[32], third[32], id[INB_IDCACHE_ID];

    same_set(c, 1, second);
    same_set(c, 2, third);
    inb_idcache_put(c, "whatsapp", "1", INB_IDCACHE_ANY, T0, ID_A);
    inb_idcache_put(c, "whatsapp", second, INB_IDCACHE_ANY, T0 + 10, ID_B);
    assert_true(inb_idcache_get(c, "whatsapp", "1", INB_IDCACHE_ANY, T0 + 20, id));
    assert_string_equal(id, ID_A);
    assert_true(inb_idcache_get(c, "whatsapp", second, INB_IDCACHE_ANY, T0 + 20, id));
    assert_string_equal(id, ID_B);
    /* A refresh of "1" keeps it in its slot; the third identity then evicts the second. */
    inb_idcache_put(c, "whatsapp", "1", INB_IDCACHE_ANY, T0 + 30, ID_A);
    inb_idcache_put(c, "whatsapp", third, INB_IDCACHE_ANY, T0 + 40, ID_B);
    assert_false(inb_idcache_get(c, "whatsapp", second, INB_IDCACHE_ANY, T0 + 50, id));
    assert_true(inb_idcache_get(c, "whatsapp", "1", INB_IDCACHE_ANY, T0 + 50, id));
    assert_string_equal(id, ID_A);
    assert_true(inb_idcache_get(c, "whatsapp", third, INB_IDCACHE_ANY, T0 + 50, id));
    assert_string_equal(id, ID_B);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_miss_then_hit_with_the_same_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_name_or_metadata_misses, setup, teardown),
        cmocka_unit_test(test_metadata_member_order_does_not_matter),
        cmocka_unit_test_setup_teardown(test_nothing_to_send_matches_any_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_expire_after_the_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identities_do_not_mix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_long_identities_are_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_set_holds_two_and_a_third_evicts_the_one_expiring_first, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
