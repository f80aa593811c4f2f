/*
 * metrics.h - Prometheus text exposition.  Counters are atomics; collectors append text.
 */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

struct pl_buf;

typedef void pl_metrics_fn(struct pl_buf *out, void *arg);

/* Registers a collector called on every scrape (start-up only, up to 16). */
void pl_metrics_register(pl_metrics_fn *fn, void *arg);
/* Runs every collector into out. */
void pl_metrics_collect(struct pl_buf *out);

#endif
