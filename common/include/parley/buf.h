/*
 * buf.h - a growable byte buffer for building text (metrics, SQL arrays, URLs).
 * Allocation failure aborts.  Not thread-safe; one owner at a time.
 */
#ifndef PARLEY_BUF_H
#define PARLEY_BUF_H

#include <stddef.h>

struct pl_buf {
    char *data; /* NUL-terminated while len < cap */
    size_t len;
    size_t cap;
};

#define PL_BUF_INIT { NULL, 0, 0 }

void pl_buf_append(struct pl_buf *b, const char *s, size_t n);
void pl_buf_puts(struct pl_buf *b, const char *s);
void pl_buf_printf(struct pl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with %XX escapes for everything outside RFC 3986 unreserved characters. */
void pl_buf_urlencode(struct pl_buf *b, const char *s);
/* The same for a decoded URL path, keeping its '/' separators: nothing in s can end the path
 * ('?', '#') or change its meaning ('%') once the result is parsed again. */
void pl_buf_pathencode(struct pl_buf *b, const char *s);
/*
 * PostgreSQL array literals, for passing many values as one $n parameter: pl_buf_array_elem
 * appends v to the literal in b (which starts with '{'; a comma is added when needed) as a quoted,
 * escaped element, or NULL; pl_buf_array_literal makes "{...}" of n values, in the arena.
 */
struct pl_arena;
void pl_buf_array_elem(struct pl_buf *b, const char *v);
const char *pl_buf_array_literal(struct pl_arena *a, const char *const *v, int n);
/* Releases the storage; NULL-safe; the buffer may be reused after. */
void pl_buf_cleanup(struct pl_buf *b);

#endif
