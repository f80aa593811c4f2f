/*
 * metrics.c - registry of Prometheus collectors.  Servers and relays register at start and
 * unregister when they stop, both outside request handling, so the table needs no lock.
 */
#include "parley/metrics.h"

#include "parley/buf.h"
#include "parley/err.h"

#define MAX_COLLECTORS 16

static struct {
    pl_metrics_fn *fn;
    void *arg;
} collectors[MAX_COLLECTORS];
static int ncollectors;

void
pl_metrics_register(pl_metrics_fn *fn, void *arg)
{
    PL_ASSERT(ncollectors < MAX_COLLECTORS);
    collectors[ncollectors].fn = fn;
    collectors[ncollectors].arg = arg;
    ncollectors++;
}

void
pl_metrics_unregister(pl_metrics_fn *fn, void *arg)
{
    for (int i = 0; i < ncollectors; i++) {
        if (collectors[i].fn == fn && collectors[i].arg == arg) {
            collectors[i] = collectors[--ncollectors];
            return;
        }
    }
}

void
pl_metrics_collect(struct pl_buf *out)
{
    for (int i = 0; i < ncollectors; i++)
        collectors[i].fn(out, collectors[i].arg);
}
