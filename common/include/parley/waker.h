/*
 * waker.h - how background threads sleep until there is work, a period passes, or shutdown.
 *
 * Producers call pl_waker_wake() after queueing work; each wake lets one wait return early (up to
 * cap wakes are remembered, so a burst wakes at most cap sleepers and no wake is lost while a
 * thread is busy).  pl_waker_stop() wakes everyone and makes every later wait return at once.
 */
#ifndef PARLEY_WAKER_H
#define PARLEY_WAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct pl_waker {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    unsigned pending; /* wakes not consumed yet */
    unsigned cap;     /* at most this many remembered; 0: no limit */
    atomic_bool stop;
};

void pl_waker_init(struct pl_waker *w, unsigned cap);
void pl_waker_destroy(struct pl_waker *w);
/* Thread-safe; never blocks for long. */
void pl_waker_wake(struct pl_waker *w);
/* Sleeps until a wake, stop, or ms milliseconds; returns false once stopped. */
bool pl_waker_wait(struct pl_waker *w, long ms);
void pl_waker_stop(struct pl_waker *w);
bool pl_waker_stopped(struct pl_waker *w);

#endif
