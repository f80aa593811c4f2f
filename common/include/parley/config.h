/*
 * config.h - configuration from the environment through a table.
 *
 * Each service declares a static const table of struct pl_cfg_var pointing into its own config
 * struct.  pl_cfg_load() reads every variable, reports every error (not just the first) and returns
 * PL_ERR when any failed; main() then exits with status 2.  After start-up the config is read-only.
 */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum pl_cfg_type {
    PL_CFG_STR,  /* const char * (points into the environment or the default) */
    PL_CFG_INT,  /* long, within [min, max] */
    PL_CFG_SIZE, /* size_t, with optional K/M/G suffix (binary units), within [min, max] */
    PL_CFG_BOOL, /* bool: true/false/1/0/yes/no */
};

struct pl_cfg_var {
    const char *name;      /* environment variable */
    enum pl_cfg_type type;
    size_t offset;         /* offsetof() into the service's config struct */
    const char *def;       /* default text, parsed like the environment; NULL = no default */
    long long min, max;    /* bounds for INT and SIZE; both 0 = unbounded */
    bool required;         /* no default and missing is an error */
    bool secret;           /* in production, must be set explicitly and differ from the default */
};

/* Fields every binary shares (SPEC section 8).  Embed first in a service's config struct. */
struct pl_cfg_common {
    const char *env;           /* PARLEY_ENV: development | production */
    long port;                 /* PORT */
    const char *database_url;  /* DATABASE_URL (may be empty for binaries without a database) */
    const char *kafka_brokers; /* KAFKA_BROKERS */
    const char *service_token; /* PARLEY_SERVICE_TOKEN */
    const char *log_level;     /* PARLEY_LOG_LEVEL */
    long http_threads;         /* PARLEY_HTTP_THREADS; 0 = one per CPU the process may use */
    size_t max_body;           /* PARLEY_MAX_BODY_BYTES */
    const char *public_url;    /* PARLEY_PUBLIC_URL: base of URLs shown to clients */
};

/*
 * Reads every variable of vars (terminated by a zero entry) into cfg, from getenv().  Errors are
 * written to stderr, one line each ("config: PORT=\"80a\": expected an integer in 1..65535").
 * Returns PL_OK or PL_ERR.  Not thread-safe (start-up only).
 */
int pl_cfg_load(const struct pl_cfg_var *vars, void *cfg);

/* Same, reading values through lookup (for tests); production is decided by the PARLEY_ENV value. */
int pl_cfg_load_from(const struct pl_cfg_var *vars, void *cfg,
                     const char *(*lookup)(const char *name, void *arg), void *arg);

/* Parses "25M"-style sizes; returns PL_OK or PL_ERR. */
int pl_cfg_parse_size(const char *s, size_t *out);

/* Table entries for struct pl_cfg_common at offset base, with the service's default port. */
#define PL_CFG_COMMON_VARS(base, defport)                                                         \
    { "PARLEY_ENV", PL_CFG_STR, (base) + offsetof(struct pl_cfg_common, env), "development", 0, 0,  \
      false, false },                                                                             \
    { "PORT", PL_CFG_INT, (base) + offsetof(struct pl_cfg_common, port), defport, 1, 65535, false, \
      false },                                                                                    \
    { "DATABASE_URL", PL_CFG_STR, (base) + offsetof(struct pl_cfg_common, database_url), NULL, 0, \
      0, true, false },                                                                           \
    { "KAFKA_BROKERS", PL_CFG_STR, (base) + offsetof(struct pl_cfg_common, kafka_brokers),         \
      "127.0.0.1:9092", 0, 0, false, false },                                                     \
    { "PARLEY_SERVICE_TOKEN", PL_CFG_STR, (base) + offsetof(struct pl_cfg_common, service_token), \
      "dev-service-token", 0, 0, false, true },                                                   \
    { "PARLEY_LOG_LEVEL", PL_CFG_STR, (base) + offsetof(struct pl_cfg_common, log_level), "info", \
      0, 0, false, false },                                                                       \
    { "PARLEY_HTTP_THREADS", PL_CFG_INT, (base) + offsetof(struct pl_cfg_common, http_threads),   \
      "0", 0, 256, false, false },                                                                \
    { "PARLEY_MAX_BODY_BYTES", PL_CFG_SIZE, (base) + offsetof(struct pl_cfg_common, max_body),    \
      "1M", 1024, 64LL << 20, false, false },                                                     \
    { "PARLEY_PUBLIC_URL", PL_CFG_STR, (base) + offsetof(struct pl_cfg_common, public_url),       \
      "http://127.0.0.1:8000", 0, 0, false, false }

#endif
