/*
 * breaker.c - one circuit breaker per upstream base URL.
 *
 * A breaker is closed while its upstream answers.  GW_BREAKER_FAILURES consecutive failures
 * (a transport error, a timeout or a 5xx answer) open it: for GW_BREAKER_OPEN_US every request to
 * that upstream is refused at once, without a connection attempt, so a dead service costs the
 * caller nothing and the gateway's threads are not all parked on it.  After that period the
 * breaker is half-open: exactly one request, the probe, goes through while the others are still
 * refused; its success closes the breaker, its failure opens it for another period.
 *
 * The breakers live in a fixed table filled on first use of each base URL (the gateway has five
 * upstreams), so a request allocates nothing.  The table only grows: its count is published with
 * release order after the slot is complete, and readers scan it without a lock.  Each breaker's
 * state is guarded by its own mutex, held for a few instructions only, never across a call.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "parley/client.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

#define BREAKERS_MAX 16
#define BASE_MAX 256

enum state { CLOSED, OPEN, HALF_OPEN };

struct gw_breaker {
    pthread_mutex_t mu;
    char base[BASE_MAX];
    enum state state;
    int failures;        /* consecutive, while closed */
    long long opened_us; /* monotonic time the breaker last opened */
    bool probing;        /* half-open: the probe is in flight */
};

static struct gw_breaker breakers[BREAKERS_MAX];
static atomic_int breakers_n;
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

static struct gw_breaker *
find(const char *base, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(breakers[i].base, base) == 0)
            return &breakers[i];
    return NULL;
}

struct gw_breaker *
gw_breaker_for(const char *base)
{
    struct gw_breaker *b = find(base, atomic_load_explicit(&breakers_n, memory_order_acquire));
    int n;

    if (b != NULL || strlen(base) >= BASE_MAX)
        return b;
    pthread_mutex_lock(&table_mu);
    n = atomic_load_explicit(&breakers_n, memory_order_relaxed);
    if ((b = find(base, n)) == NULL && n < BREAKERS_MAX) {
        b = &breakers[n];
        pthread_mutex_init(&b->mu, NULL);
        snprintf(b->base, sizeof(b->base), "%s", base);
        b->state = CLOSED;
        atomic_store_explicit(&breakers_n, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&table_mu);
    return b; /* NULL only past BREAKERS_MAX upstreams: then no breaker, every call passes */
}

enum gw_pass
gw_breaker_enter(struct gw_breaker *b)
{
    enum gw_pass pass = GW_PASS;
    long long now = pl_time_mono_us();

    if (b == NULL)
        return GW_PASS;
    pthread_mutex_lock(&b->mu);
    if (b->state == OPEN && now - b->opened_us >= GW_BREAKER_OPEN_US) {
        b->state = HALF_OPEN;
        b->probing = false;
    }
    if (b->state == OPEN || (b->state == HALF_OPEN && b->probing)) {
        pass = GW_DENY;
    } else if (b->state == HALF_OPEN) {
        b->probing = true;
        pass = GW_PROBE;
    }
    pthread_mutex_unlock(&b->mu);
    return pass;
}

/* Called with b->mu held. */
static void
trip(struct gw_breaker *b, const char *why)
{
    b->state = OPEN;
    b->opened_us = pl_time_mono_us();
    b->failures = 0;
    b->probing = false;
    pl_log_warn("circuit opened for upstream %s: %s", b->base, why);
}

void
gw_breaker_leave(struct gw_breaker *b, enum gw_pass pass, bool ok)
{
    if (b == NULL || pass == GW_DENY)
        return;
    pthread_mutex_lock(&b->mu);
    if (pass == GW_PROBE) {
        /* Only the probe decides a half-open breaker. */
        if (ok) {
            b->state = CLOSED;
            b->failures = 0;
            b->probing = false;
            pl_log_info("circuit closed for upstream %s", b->base);
        } else {
            trip(b, "the half-open probe failed");
        }
    } else if (b->state == CLOSED) {
        /* A call that started before the breaker opened does not count once it has. */
        b->failures = ok ? 0 : b->failures + 1;
        if (b->failures >= GW_BREAKER_FAILURES)
            trip(b, "consecutive failures");
    }
    pthread_mutex_unlock(&b->mu);
}

/* The error of a call its breaker denied. */
static int
circuit_open(struct pl_err *err)
{
    return pl_err_set(err, 503, "upstream_unavailable",
                      "a service is not reachable (circuit open); retry later");
}

/* What the breaker hears of a call: an answer below 500 is a success. */
static bool
went_well(int rc, long status)
{
    return rc == PL_OK && status < 500;
}

enum MHD_Result
gw_breaker_refuse(struct pl_req *req, struct gw_breaker *b)
{
    struct pl_err err = PL_ERR_INIT;
    long long left_us = GW_BREAKER_OPEN_US;
    char secs[24];

    if (b != NULL) {
        pthread_mutex_lock(&b->mu);
        if (b->state == OPEN)
            left_us = b->opened_us + GW_BREAKER_OPEN_US - pl_time_mono_us();
        else
            left_us = 0; /* half-open: the probe decides within the call's timeout */
        pthread_mutex_unlock(&b->mu);
    }
    /* whole seconds, rounded up, at least 1: the earliest time a call may go through */
    snprintf(secs, sizeof(secs), "%lld", left_us > 0 ? (left_us + 999999) / 1000000 : 1);
    pl_req_reply_header(req, "Retry-After", secs);
    circuit_open(&err);
    return pl_reply_err(req, &err);
}

int
gw_breaker_get(struct pl_arena *a, const char *base, const char *url, long timeout_ms,
               struct pl_client_resp *resp, struct pl_err *err)
{
    struct gw_breaker *b = gw_breaker_for(base);
    enum gw_pass pass = gw_breaker_enter(b);
    int rc;

    if (pass == GW_DENY)
        return circuit_open(err);
    rc = pl_client_call(a, "GET", url, NULL, timeout_ms, resp, err);
    gw_breaker_leave(b, pass, went_well(rc, resp->status));
    return rc;
}

void
gw_breaker_get_many(struct pl_arena *a, struct pl_client_get *gets, const char *const *bases,
                    int n, long timeout_ms)
{
    struct gw_breaker *b[GW_GET_MANY_MAX];
    enum gw_pass pass[GW_GET_MANY_MAX];
    struct pl_client_get go[GW_GET_MANY_MAX];
    int slot[GW_GET_MANY_MAX], m = 0;

    PL_ASSERT(n <= GW_GET_MANY_MAX);
    for (int i = 0; i < n; i++) {
        b[i] = gw_breaker_for(bases[i]);
        if ((pass[i] = gw_breaker_enter(b[i])) == GW_DENY) {
            gets[i].rc = circuit_open(gets[i].err);
            continue;
        }
        slot[m] = i;
        go[m++] = gets[i];
    }
    pl_client_get_many(a, go, m, timeout_ms);
    for (int k = 0; k < m; k++) {
        int i = slot[k];

        gets[i] = go[k];
        gw_breaker_leave(b[i], pass[i], went_well(gets[i].rc, gets[i].resp.status));
    }
}
