/*
 * config.c - environment configuration through a table.
 *
 * Every variable is read and checked; each problem prints one line to stderr, and the caller exits
 * with status 2 after seeing all of them.  In production (PARLEY_ENV=production) a secret must be
 * set explicitly and must not be the local default, so a forgotten secret stops the binary at start.
 */
#include "parley/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/err.h"

static const char *
env_lookup(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

int
pl_cfg_parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (s == NULL || !isdigit((unsigned char)*s))
        return PL_ERR;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return PL_ERR;
    switch (*end) {
    case 'K': case 'k': shift = 10; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'G': case 'g': shift = 30; end++; break;
    default: break;
    }
    /* A unit may be spelled K, KB or KiB; a bare number may not take a suffix. */
    if (shift != 0 && strcmp(end, "iB") == 0)
        end += 2;
    else if (shift != 0 && strcmp(end, "B") == 0)
        end += 1;
    if (*end != '\0' || v > (UINT64_MAX >> shift))
        return PL_ERR;
    *out = (size_t)(v << shift);
    return PL_OK;
}

static int
parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };

    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, PL_OK;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, PL_OK;
    }
    return PL_ERR;
}

static bool
in_bounds(const struct pl_cfg_var *v, long long x)
{
    return (v->min == 0 && v->max == 0) || (x >= v->min && x <= v->max);
}

/* Parses text into the field of v; prints the error and returns PL_ERR on failure. */
static int
set_value(const struct pl_cfg_var *v, const char *text, char *base)
{
    char *end;
    long long n;
    size_t sz;

    switch (v->type) {
    case PL_CFG_STR:
        *(const char **)(base + v->offset) = text;
        return PL_OK;
    case PL_CFG_INT:
        errno = 0;
        n = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || !in_bounds(v, n))
            break;
        *(long *)(base + v->offset) = (long)n;
        return PL_OK;
    case PL_CFG_SIZE:
        if (pl_cfg_parse_size(text, &sz) != PL_OK || !in_bounds(v, (long long)sz))
            break;
        *(size_t *)(base + v->offset) = sz;
        return PL_OK;
    case PL_CFG_BOOL:
        if (parse_bool(text, (bool *)(base + v->offset)) == PL_OK)
            return PL_OK;
        fprintf(stderr, "config: %s=\"%s\": expected true or false\n", v->name, text);
        return PL_ERR;
    }
    if (v->min == 0 && v->max == 0)
        fprintf(stderr, "config: %s=\"%s\": expected %s\n", v->name, text,
                v->type == PL_CFG_INT ? "an integer" : "a size such as 512K or 25M");
    else
        fprintf(stderr, "config: %s=\"%s\": expected %s in %lld..%lld\n", v->name, text,
                v->type == PL_CFG_INT ? "an integer" : "a size in bytes", v->min, v->max);
    return PL_ERR;
}

int
pl_cfg_load_from(const struct pl_cfg_var *vars, void *cfg,
                 const char *(*lookup)(const char *name, void *arg), void *arg)
{
    const char *env = lookup("PARLEY_ENV", arg);
    bool production;
    int rc = PL_OK;

    if (env != NULL && *env == '\0')
        env = NULL; /* empty counts as unset, as for every variable */
    production = env != NULL && strcmp(env, "production") == 0;

    if (env != NULL && !production && strcmp(env, "development") != 0) {
        fprintf(stderr, "config: PARLEY_ENV=\"%s\": expected development or production\n", env);
        rc = PL_ERR;
    }
    for (const struct pl_cfg_var *v = vars; v->name != NULL; v++) {
        const char *text = lookup(v->name, arg);
        bool given = text != NULL && *text != '\0';

        if (production && v->secret &&
            (!given || (v->def != NULL && strcmp(text, v->def) == 0))) {
            fprintf(stderr, "config: %s must be set to a real secret when PARLEY_ENV=production\n",
                    v->name);
            rc = PL_ERR;
            continue;
        }
        if (!given)
            text = v->def;
        if (text == NULL) {
            if (v->required) {
                fprintf(stderr, "config: %s is required\n", v->name);
                rc = PL_ERR;
            }
            continue;
        }
        if (set_value(v, text, cfg) != PL_OK)
            rc = PL_ERR;
    }
    return rc;
}

int
pl_cfg_load(const struct pl_cfg_var *vars, void *cfg)
{
    return pl_cfg_load_from(vars, cfg, env_lookup, NULL);
}
