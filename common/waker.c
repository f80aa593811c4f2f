/*
 * waker.c - sleep until woken, stopped or timed out (waker.h).
 */
#include <time.h>

#include "parley/waker.h"

void
pl_waker_init(struct pl_waker *w, unsigned cap)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->pending = 0;
    w->cap = cap;
    atomic_init(&w->stop, false);
}

void
pl_waker_destroy(struct pl_waker *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
}

void
pl_waker_wake(struct pl_waker *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->cap == 0 || w->pending < w->cap)
        w->pending++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

bool
pl_waker_wait(struct pl_waker *w, long ms)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    if (w->pending == 0 && !atomic_load(&w->stop))
        pthread_cond_timedwait(&w->cond, &w->mu, &until);
    if (w->pending > 0)
        w->pending--;
    pthread_mutex_unlock(&w->mu);
    return !atomic_load(&w->stop);
}

void
pl_waker_stop(struct pl_waker *w)
{
    atomic_store(&w->stop, true);
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

bool
pl_waker_stopped(struct pl_waker *w)
{
    return atomic_load(&w->stop);
}
