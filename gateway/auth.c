/*
 * auth.c - API key authentication, scopes and per-key rate limits.
 *
 * A presented key is hashed (SHA-256) and looked up in a small in-memory cache; an entry older
 * than GW_KEY_CACHE_US is read again from the database, so a revoked key stops working within
 * seconds while a busy key costs one query per period.  Unknown keys are cached too, so a flood
 * of bad keys does not become a flood of queries.  Each entry carries the token bucket of its
 * key (PARLEY_RATE_LIMIT_RPS refill, PARLEY_RATE_LIMIT_BURST capacity).  A download through a
 * signed media link has no key: it takes a token from its client address's bucket (same rate and
 * burst) in a table of their own, so a leaked link cannot be fetched without limit.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/uuid.h"
#include "svc.h"

#define SLOTS 1024

struct entry {
    char hash[65];
    char id[37];
    unsigned scopes;
    bool known;     /* false: no such key (negative cache) */
    bool revoked;
    long long loaded_us;
    double tokens;
    long long refilled_us;
};

struct gw_keys {
    pthread_mutex_t lock;
    double rps, burst;
    struct entry slot[SLOTS];
    struct entry client[SLOTS]; /* signed-link downloads, by client address */
};

struct gw_keys *
gw_keys_new(long rps, long burst)
{
    struct gw_keys *k = calloc(1, sizeof(*k));

    PL_ASSERT(k != NULL);
    pthread_mutex_init(&k->lock, NULL);
    k->rps = (double)rps;
    k->burst = (double)burst;
    return k;
}

void
gw_keys_free(struct gw_keys *k)
{
    if (k == NULL)
        return;
    pthread_mutex_destroy(&k->lock);
    free(k);
}

/* The presented key, from X-API-Key or "Authorization: Bearer <key>", or NULL. */
static const char *
presented_key(const struct pl_req *req)
{
    const char *k = pl_req_header(req, "X-API-Key");
    const char *auth = pl_req_header(req, "Authorization");

    if (k != NULL && *k != '\0')
        return k;
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && auth[7] != '\0')
        return auth + 7;
    return NULL;
}

static struct entry *
slot_in(struct entry *table, const char *hash)
{
    return &table[strtoul((char[9]){ hash[0], hash[1], hash[2], hash[3], hash[4], hash[5],
                                       hash[6], hash[7], 0 },
                            NULL, 16) % SLOTS];
}

static struct entry *
slot_for(struct gw_keys *k, const char *hash)
{
    return slot_in(k->slot, hash);
}

/* A different key or client takes slot e: a new entry with a full bucket (lock held). */
static void
claim(struct entry *e, const char *hash, long long now)
{
    if (strcmp(e->hash, hash) == 0)
        return;
    memset(e, 0, sizeof(*e));
    snprintf(e->hash, sizeof(e->hash), "%s", hash);
    e->refilled_us = now;
    e->tokens = -1; /* filled by the first take_token */
}

/* Refreshes e from the database when stale (lock held).  Returns false on database trouble. */
static bool
refresh(const struct svc_ctx *ctx, struct entry *e, const char *hash, long long now)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *db;
    int rc;

    if (strcmp(e->hash, hash) == 0 && now - e->loaded_us < GW_KEY_CACHE_US)
        return true;
    if (ctx->db == NULL || (db = pl_db_conn(ctx->db, &err)) == NULL)
        return false; /* (ctx->db is set just after the server starts) */
    claim(e, hash, now);
    rc = gw_db_key_lookup(db, hash, e->id, &e->scopes, &e->revoked, &err);
    if (rc < 0)
        return false;
    e->known = rc == PL_DB_ROW;
    e->loaded_us = now;
    return true;
}

/* Takes one token; returns seconds to wait when none is left (0 when allowed). */
static double
take_token(const struct gw_keys *k, struct entry *e, long long now, double *left)
{
    if (e->tokens < 0)
        e->tokens = k->burst;
    e->tokens = fmin(k->burst, e->tokens + (double)(now - e->refilled_us) / 1e6 * k->rps);
    e->refilled_us = now;
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
        *left = e->tokens;
        return 0;
    }
    *left = 0;
    return (1.0 - e->tokens) / k->rps;
}

/* v, a whole number of at most 18 digits, in decimal (cheaper than printf on every request). */
static const char *
whole(char buf[24], double v)
{
    long long n = llround(v);
    char *p = buf + 23;
    bool neg = n < 0;

    *p = '\0';
    n = neg ? -n : n;
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    if (neg)
        *--p = '-';
    return p;
}

static void
rate_headers(struct pl_req *req, const struct gw_keys *k, double left)
{
    char v[24];

    pl_req_reply_header(req, "RateLimit-Limit", whole(v, k->rps));
    pl_req_reply_header(req, "RateLimit-Remaining", whole(v, floor(left)));
    pl_req_reply_header(req, "RateLimit-Reset", whole(v, ceil((k->burst - left) / k->rps)));
}

/* Queues an error reply in *rc; returns false for the caller to return. */
static bool
deny(struct pl_req *req, enum MHD_Result *rc, unsigned status, const char *code, const char *msg)
{
    *rc = pl_reply_error(req, status, code, "%s", msg);
    return false;
}

/*
 * Sets the RateLimit headers of a bucket with left tokens; true when the request may go on, else
 * a 429 with Retry-After (wait seconds) is queued in *rc.
 */
static bool
within_limit(struct pl_req *req, const struct gw_keys *k, double wait, double left,
             enum MHD_Result *rc, const char *msg)
{
    char v[24];

    rate_headers(req, k, left);
    if (wait <= 0)
        return true;
    snprintf(v, sizeof(v), "%.0f", ceil(wait));
    pl_req_reply_header(req, "Retry-After", v);
    return deny(req, rc, 429, "Too Many Requests", msg);
}

/* No valid key: 401, or 403 for a signed media URL whose signature failed (SPEC 10). */
static bool
unauthenticated(struct pl_req *req, enum MHD_Result *rc, bool bad_signature)
{
    if (bad_signature)
        return deny(req, rc, 403, "forbidden", "the download link is invalid or has expired");
    return deny(req, rc, 401, "Unauthorized", "Valid authentication required.");
}

static bool
authorize(struct pl_req *req, unsigned need, struct gw_caller *caller, enum MHD_Result *rc,
          bool bad_signature)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct gw_keys *k = ctx->keys;
    const char *key = presented_key(req);
    long long now = pl_time_mono_us();
    char hash[65];
    struct entry *e;
    double wait, left = 0;
    bool ok, known;

    if (key == NULL)
        return unauthenticated(req, rc, bad_signature);
    gw_key_hash(key, hash);
    pthread_mutex_lock(&k->lock);
    e = slot_for(k, hash);
    ok = refresh(ctx, e, hash, now);
    known = ok && e->known && !e->revoked;
    if (known) {
        memcpy(caller->key_id, e->id, sizeof(caller->key_id));
        caller->scopes = e->scopes;
        wait = take_token(k, e, now, &left);
    }
    pthread_mutex_unlock(&k->lock);
    if (!ok)
        return deny(req, rc, 503, "database_unavailable", "the key store is not available");
    if (!known)
        return unauthenticated(req, rc, bad_signature);
    if ((caller->scopes & need) != need)
        return deny(req, rc, 403, "Forbidden", "this API key lacks the scope this route needs");
    pl_req_set_note(req, pl_arena_strdup(pl_req_arena(req), caller->key_id)); /* for api_logs */
    return within_limit(req, k, wait, left, rc, "rate limit of this API key exceeded");
}

bool
gw_authorize(struct pl_req *req, unsigned need, struct gw_caller *caller, enum MHD_Result *rc)
{
    return authorize(req, need, caller, rc, false);
}

bool
gw_authorize_media(struct pl_req *req, bool bad_signature, struct gw_caller *caller,
                   enum MHD_Result *rc)
{
    return authorize(req, GW_READ, caller, rc, bad_signature);
}

bool
gw_limit_signed(struct pl_req *req, enum MHD_Result *rc)
{
    struct gw_keys *k = ((const struct svc_ctx *)pl_req_ctx(req))->keys;
    long long now = pl_time_mono_us();
    char ip[64], hash[65];
    double wait, left = 0;
    struct entry *e;

    gw_key_hash(pl_arena_printf(pl_req_arena(req), "signed-link client %s",
                                pl_req_client_ip(req, ip)), hash);
    pthread_mutex_lock(&k->lock);
    e = slot_in(k->client, hash);
    claim(e, hash, now);
    wait = take_token(k, e, now, &left);
    pthread_mutex_unlock(&k->lock);
    return within_limit(req, k, wait, left, rc, "rate limit of this client exceeded");
}
