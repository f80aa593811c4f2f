/*
 * arena.h - per-request region allocator.
 *
 * Every request owns one arena; everything allocated from it is released at once by pl_arena_free(),
 * which also runs the deferred cleanups (LIFO) registered for foreign resources (json_t, PGresult).
 * Allocation failures abort: sizes a client controls are checked against limits before allocating.
 * An arena is used by one thread at a time.
 */
#ifndef PARLEY_ARENA_H
#define PARLEY_ARENA_H

#include <stddef.h>

struct pl_arena;

/* New arena whose first block holds at least first_block bytes.  Free with pl_arena_free(). */
struct pl_arena *pl_arena_new(size_t first_block);
/* n bytes, aligned for any type; never NULL. */
void *pl_arena_alloc(struct pl_arena *a, size_t n);
/* Copies n bytes of s and NUL-terminates. */
char *pl_arena_strndup(struct pl_arena *a, const char *s, size_t n);
char *pl_arena_strdup(struct pl_arena *a, const char *s);
/* printf into the arena. */
char *pl_arena_printf(struct pl_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs fn(p) when the arena is freed, last registered first. */
void pl_arena_defer(struct pl_arena *a, void (*fn)(void *), void *p);
/* Runs the deferred cleanups and releases every block; NULL-safe. */
void pl_arena_free(struct pl_arena *a);

#endif
