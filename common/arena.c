/*
 * arena.c - per-request region allocator.
 *
 * Blocks are chained; an allocation that does not fit in the current block gets a new block at
 * least twice the previous one (or the size asked for), so a request costs a handful of mallocs
 * whatever it does.  Deferred cleanups live in the arena itself and run LIFO before the blocks go.
 */
#include "parley/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/err.h"

#define ALIGN 16

struct block {
    struct block *next;
    size_t size;
    size_t used;
    _Alignas(ALIGN) unsigned char mem[];
};

struct defer {
    struct defer *next;
    void (*fn)(void *);
    void *p;
};

struct pl_arena {
    struct block *head;
    struct defer *defers;
};

static struct block *
block_new(size_t size)
{
    struct block *b = malloc(sizeof(*b) + size);

    PL_ASSERT(b != NULL);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct pl_arena *
pl_arena_new(size_t first_block)
{
    struct pl_arena *a = malloc(sizeof(*a));

    PL_ASSERT(a != NULL);
    a->head = block_new(first_block < 256 ? 256 : first_block);
    a->defers = NULL;
    return a;
}

void *
pl_arena_alloc(struct pl_arena *a, size_t n)
{
    struct block *b = a->head;
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);

    PL_ASSERT(need >= n);
    if (b->size - b->used < need) {
        size_t size = b->size * 2;

        if (size < need)
            size = need;
        b = block_new(size);
        b->next = a->head;
        a->head = b;
    }
    b->used += need;
    return b->mem + b->used - need;
}

char *
pl_arena_strndup(struct pl_arena *a, const char *s, size_t n)
{
    char *p = pl_arena_alloc(a, n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
pl_arena_strdup(struct pl_arena *a, const char *s)
{
    return pl_arena_strndup(a, s, strlen(s));
}

char *
pl_arena_printf(struct pl_arena *a, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    PL_ASSERT(n >= 0);
    p = pl_arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void
pl_arena_defer(struct pl_arena *a, void (*fn)(void *), void *p)
{
    struct defer *d = pl_arena_alloc(a, sizeof(*d));

    d->fn = fn;
    d->p = p;
    d->next = a->defers;
    a->defers = d;
}

void
pl_arena_free(struct pl_arena *a)
{
    struct block *b, *next;

    if (a == NULL)
        return;
    for (struct defer *d = a->defers; d != NULL; d = d->next)
        d->fn(d->p);
    for (b = a->head; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}
