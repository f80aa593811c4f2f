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
/* Releases the storage; NULL-safe; the buffer may be reused after. */
void pl_buf_cleanup(struct pl_buf *b);

#endif
