/*
 * test_config.c - common/config.c: table-driven configuration through a lookup function.
 *
 * Errors are printed to stderr; the tests capture them to check that every bad variable is
 * reported, not just the first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "parley/config.h"
#include "parley/err.h"

struct test_cfg {
    struct pl_cfg_common c;
    long workers;
    size_t upload;
    bool flag;
    const char *api_key;
};

static const struct pl_cfg_var vars[] = {
    PL_CFG_COMMON_VARS(0, "8000"),
    { "T_WORKERS", PL_CFG_INT, offsetof(struct test_cfg, workers), "4", 0, 0, false, false },
    { "T_UPLOAD", PL_CFG_SIZE, offsetof(struct test_cfg, upload), "25M", 0, 0, false, false },
    { "T_FLAG", PL_CFG_BOOL, offsetof(struct test_cfg, flag), "false", 0, 0, false, false },
    { "T_API_KEY", PL_CFG_STR, offsetof(struct test_cfg, api_key), NULL, 0, 0, false, true },
    { NULL, 0, 0, NULL, 0, 0, false, false },
};

struct kv {
    const char *name;
    const char *value;
};

/* Looks name up in a {NULL, NULL}-terminated table; unknown names are unset. */
static const char *
lookup(const char *name, void *arg)
{
    for (const struct kv *e = arg; e->name != NULL; e++)
        if (strcmp(e->name, name) == 0)
            return e->value;
    return NULL;
}

static char errout[8192];

/* Loads cfg from env with stderr captured into errout; returns what pl_cfg_load_from returned. */
static int
load(struct kv *env, struct test_cfg *cfg)
{
    FILE *tmp = tmpfile();
    int saved, rc;
    size_t n;

    assert_non_null(tmp);
    memset(cfg, 0, sizeof(*cfg));
    fflush(stderr);
    saved = dup(2);
    assert_true(saved >= 0);
    dup2(fileno(tmp), 2);
    rc = pl_cfg_load_from(vars, cfg, lookup, env);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(errout, 1, sizeof(errout) - 1, tmp);
    errout[n] = '\0';
    fclose(tmp);
    return rc;
}

static int
count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void
test_defaults(void **state)
{
    struct kv env[] = { { "DATABASE_URL", "postgres://x/db" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_OK);
    assert_string_equal(errout, "");
    assert_string_equal(cfg.c.env, "development");
    assert_int_equal(cfg.c.port, 8000);
    assert_string_equal(cfg.c.database_url, "postgres://x/db");
    assert_string_equal(cfg.c.kafka_brokers, "127.0.0.1:9092");
    assert_string_equal(cfg.c.service_token, "dev-service-token");
    assert_string_equal(cfg.c.log_level, "info");
    assert_int_equal(cfg.c.http_threads, 0); /* automatic: one per CPU */
    assert_int_equal(cfg.c.max_body, 1 << 20);
    assert_string_equal(cfg.c.public_url, "http://127.0.0.1:8000");
    assert_int_equal(cfg.workers, 4);
    assert_int_equal(cfg.upload, 25 << 20);
    assert_false(cfg.flag);
    assert_null(cfg.api_key); /* no default, not required */
}

static void
test_given_values_override_defaults(void **state)
{
    struct kv env[] = { { "DATABASE_URL", "db" },      { "PORT", "9001" },
                        { "KAFKA_BROKERS", "k:1" },    { "PARLEY_HTTP_THREADS", "2" },
                        { "T_WORKERS", "-3" },         { "T_FLAG", "yes" },
                        { "PARLEY_LOG_LEVEL", "debug" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_OK);
    assert_int_equal(cfg.c.port, 9001);
    assert_string_equal(cfg.c.kafka_brokers, "k:1");
    assert_int_equal(cfg.c.http_threads, 2);
    assert_int_equal(cfg.workers, -3); /* unbounded INT */
    assert_true(cfg.flag);
    assert_string_equal(cfg.c.log_level, "debug");
}

static void
test_empty_value_means_default(void **state)
{
    struct kv env[] = { { "DATABASE_URL", "db" }, { "PORT", "" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_OK);
    assert_int_equal(cfg.c.port, 8000);
}

/* Loads with PORT=value and returns the result. */
static int
load_port(const char *value, struct test_cfg *cfg)
{
    struct kv env[] = { { "DATABASE_URL", "db" }, { "PORT", value }, { NULL, NULL } };

    return load(env, cfg);
}

static void
test_int_bounds(void **state)
{
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load_port("1", &cfg), PL_OK);
    assert_int_equal(cfg.c.port, 1);
    assert_int_equal(load_port("65535", &cfg), PL_OK);
    assert_int_equal(cfg.c.port, 65535);
    assert_int_equal(load_port("0", &cfg), PL_ERR);
    assert_non_null(strstr(errout, "PORT=\"0\""));
    assert_non_null(strstr(errout, "1..65535"));
    assert_int_equal(load_port("65536", &cfg), PL_ERR);
    assert_int_equal(load_port("-1", &cfg), PL_ERR);
    assert_int_equal(load_port("99999999999999999999", &cfg), PL_ERR); /* ERANGE */
}

static void
test_int_garbage(void **state)
{
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load_port("80a", &cfg), PL_ERR);
    assert_string_equal(errout, "config: PORT=\"80a\": expected an integer in 1..65535\n");
    assert_int_equal(load_port("abc", &cfg), PL_ERR);
    assert_int_equal(load_port("8 0", &cfg), PL_ERR);
    assert_int_equal(load_port("0x50", &cfg), PL_ERR);
    assert_int_equal(load_port("80.0", &cfg), PL_ERR);
}

static void
test_size_suffixes(void **state)
{
    static const struct {
        const char *text;
        size_t want;
    } cases[] = {
        { "0", 0 },           { "100", 100 },          { "512K", 512u << 10 },
        { "512k", 512u << 10 }, { "25M", 25u << 20 },  { "1G", 1u << 30 },
        { "1MiB", 1u << 20 }, { "2KiB", 2048 },        { "3MB", 3u << 20 },
        { "4g", 4ull << 30 },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kv env[] = { { "DATABASE_URL", "db" }, { "T_UPLOAD", cases[i].text },
                            { NULL, NULL } };
        struct test_cfg cfg;
        size_t direct = 12345;

        if (load(env, &cfg) != PL_OK)
            fail_msg("T_UPLOAD=%s rejected: %s", cases[i].text, errout);
        assert_int_equal(cfg.upload, cases[i].want);
        assert_int_equal(pl_cfg_parse_size(cases[i].text, &direct), PL_OK);
        assert_int_equal(direct, cases[i].want);
    }
}

static void
test_size_garbage(void **state)
{
    static const char *const bad[] = { "M", "1.5M", "-1K", " 1K", "1T", "1KK", "1Mx", "25 M",
                                       "1MiBs", "99999999999999999999", "17179869184G", "",
                                       "10i", "1iB", "5B" };
    size_t out = 777;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pl_cfg_parse_size(bad[i], &out) != PL_ERR)
            fail_msg("\"%s\" accepted as %zu", bad[i], out);
    }
    assert_int_equal(out, 777); /* untouched on error */
    assert_int_equal(pl_cfg_parse_size(NULL, &out), PL_ERR);
}

static void
test_size_bounds(void **state)
{
    struct kv env[] = { { "DATABASE_URL", "db" }, { "PARLEY_MAX_BODY_BYTES", NULL },
                        { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    env[1].value = "64M";
    assert_int_equal(load(env, &cfg), PL_OK);
    assert_int_equal(cfg.c.max_body, 64u << 20);
    env[1].value = "1K";
    assert_int_equal(load(env, &cfg), PL_OK);
    assert_int_equal(cfg.c.max_body, 1024);
    env[1].value = "1023";
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_non_null(strstr(errout, "PARLEY_MAX_BODY_BYTES=\"1023\""));
    env[1].value = "65M";
    assert_int_equal(load(env, &cfg), PL_ERR);
    env[1].value = "25Q";
    assert_int_equal(load(env, &cfg), PL_ERR);
}

static void
test_bool_values(void **state)
{
    static const struct {
        const char *text;
        bool want;
    } cases[] = { { "true", true }, { "TRUE", true }, { "1", true },   { "yes", true },
                  { "false", false }, { "False", false }, { "0", false }, { "no", false } };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kv env[] = { { "DATABASE_URL", "db" }, { "T_FLAG", cases[i].text }, { NULL, NULL } };
        struct test_cfg cfg;

        assert_int_equal(load(env, &cfg), PL_OK);
        if (cfg.flag != cases[i].want)
            fail_msg("T_FLAG=%s read as %d", cases[i].text, cfg.flag);
    }
}

static void
test_bool_garbage(void **state)
{
    struct kv env[] = { { "DATABASE_URL", "db" }, { "T_FLAG", "maybe" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_non_null(strstr(errout, "T_FLAG=\"maybe\""));
    env[1].value = "2";
    assert_int_equal(load(env, &cfg), PL_ERR);
}

static void
test_required_missing(void **state)
{
    struct kv none[] = { { NULL, NULL } };
    struct kv empty[] = { { "DATABASE_URL", "" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(none, &cfg), PL_ERR);
    assert_string_equal(errout, "config: DATABASE_URL is required\n");
    assert_int_equal(load(empty, &cfg), PL_ERR);
    assert_string_equal(errout, "config: DATABASE_URL is required\n");
}

static void
test_all_errors_reported_at_once(void **state)
{
    struct kv env[] = { { "DATABASE_URL", "db" },      { "PORT", "80a" },
                        { "PARLEY_HTTP_THREADS", "257" }, { "KAFKA_BROKERS", "k:9" },
                        { "T_FLAG", "true" },          { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_int_equal(count_lines(errout), 2);
    assert_non_null(strstr(errout, "PORT=\"80a\""));
    assert_non_null(strstr(errout, "PARLEY_HTTP_THREADS=\"257\""));
    /* Variables after the failures were still read. */
    assert_string_equal(cfg.c.kafka_brokers, "k:9");
    assert_true(cfg.flag);
}

static void
test_all_errors_including_missing_required(void **state)
{
    struct kv env[] = { { "PORT", "x" }, { "T_UPLOAD", "big" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_int_equal(count_lines(errout), 3);
    assert_non_null(strstr(errout, "PORT=\"x\""));
    assert_non_null(strstr(errout, "DATABASE_URL is required"));
    assert_non_null(strstr(errout, "T_UPLOAD=\"big\""));
}

static void
test_production_refuses_missing_secret(void **state)
{
    struct kv env[] = { { "PARLEY_ENV", "production" }, { "DATABASE_URL", "db" },
                        { "T_API_KEY", "k-123" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_int_equal(count_lines(errout), 1);
    assert_non_null(strstr(errout, "PARLEY_SERVICE_TOKEN must be set"));
}

static void
test_production_refuses_default_secret(void **state)
{
    struct kv env[] = { { "PARLEY_ENV", "production" }, { "DATABASE_URL", "db" },
                        { "PARLEY_SERVICE_TOKEN", "dev-service-token" },
                        { "T_API_KEY", "k-123" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_non_null(strstr(errout, "PARLEY_SERVICE_TOKEN"));
}

static void
test_production_refuses_secret_without_default(void **state)
{
    struct kv env[] = { { "PARLEY_ENV", "production" }, { "DATABASE_URL", "db" },
                        { "PARLEY_SERVICE_TOKEN", "s3cr3t-token" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_int_equal(count_lines(errout), 1);
    assert_non_null(strstr(errout, "T_API_KEY must be set"));
}

static void
test_production_accepts_real_secrets(void **state)
{
    struct kv env[] = { { "PARLEY_ENV", "production" }, { "DATABASE_URL", "db" },
                        { "PARLEY_SERVICE_TOKEN", "s3cr3t-token" }, { "T_API_KEY", "k-123" },
                        { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_OK);
    assert_string_equal(errout, "");
    assert_string_equal(cfg.c.env, "production");
    assert_string_equal(cfg.c.service_token, "s3cr3t-token");
    assert_string_equal(cfg.api_key, "k-123");
}

static void
test_development_allows_default_secret(void **state)
{
    struct kv env[] = { { "PARLEY_ENV", "development" }, { "DATABASE_URL", "db" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_OK);
    assert_string_equal(cfg.c.service_token, "dev-service-token");
    assert_string_equal(cfg.c.env, "development");
}

static void
test_invalid_parley_env(void **state)
{
    struct kv env[] = { { "PARLEY_ENV", "staging" }, { "DATABASE_URL", "db" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_string_equal(errout,
                        "config: PARLEY_ENV=\"staging\": expected development or production\n");
    env[0].value = "Production";
    assert_int_equal(load(env, &cfg), PL_ERR);
    assert_non_null(strstr(errout, "PARLEY_ENV=\"Production\""));
}

/* An empty PARLEY_ENV counts as unset, like every other variable: development. */
static void
test_empty_parley_env_is_development(void **state)
{
    struct kv env[] = { { "PARLEY_ENV", "" }, { "DATABASE_URL", "db" }, { NULL, NULL } };
    struct test_cfg cfg;

    (void)state;
    assert_int_equal(load(env, &cfg), PL_OK);
    assert_string_equal(cfg.c.env, "development");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_given_values_override_defaults),
        cmocka_unit_test(test_empty_value_means_default),
        cmocka_unit_test(test_int_bounds),
        cmocka_unit_test(test_int_garbage),
        cmocka_unit_test(test_size_suffixes),
        cmocka_unit_test(test_size_garbage),
        cmocka_unit_test(test_size_bounds),
        cmocka_unit_test(test_bool_values),
        cmocka_unit_test(test_bool_garbage),
        cmocka_unit_test(test_required_missing),
        cmocka_unit_test(test_all_errors_reported_at_once),
        cmocka_unit_test(test_all_errors_including_missing_required),
        cmocka_unit_test(test_production_refuses_missing_secret),
        cmocka_unit_test(test_production_refuses_default_secret),
        cmocka_unit_test(test_production_refuses_secret_without_default),
        cmocka_unit_test(test_production_accepts_real_secrets),
        cmocka_unit_test(test_development_allows_default_secret),
        cmocka_unit_test(test_invalid_parley_env),
        cmocka_unit_test(test_empty_parley_env_is_development),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
