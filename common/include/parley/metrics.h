/*
 * metrics.h - Prometheus text exposition.  Counters are atomics; collectors append text.
 */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

struct pl_buf;

typedef void pl_metrics_fn(struct pl_buf *out, void *arg);

/* Registers a collector called on every scrape (up to 16 at once; not concurrent with a scrape). */
void pl_metrics_register(pl_metrics_fn *fn, void *arg);
/* Removes a collector registered with the same fn and arg; does nothing when absent. */
void pl_metrics_unregister(pl_metrics_fn *fn, void *arg);
/* Runs every collector into out. */
void pl_metrics_collect(struct pl_buf *out);

#endif
