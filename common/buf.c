/*
 * buf.c - growable text buffer.  Growth doubles; allocation failure aborts (internal sizes only).
 */
#include "parley/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/err.h"

static void
reserve(struct pl_buf *b, size_t extra)
{
    size_t want = b->len + extra + 1;
    size_t cap = b->cap ? b->cap : 256;

    if (want <= b->cap)
        return;
    while (cap < want)
        cap *= 2;
    b->data = realloc(b->data, cap);
    PL_ASSERT(b->data != NULL);
    b->cap = cap;
}

void
pl_buf_append(struct pl_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
pl_buf_puts(struct pl_buf *b, const char *s)
{
    pl_buf_append(b, s, strlen(s));
}

void
pl_buf_printf(struct pl_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    PL_ASSERT(n >= 0);
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Appends s with %XX escapes for every byte outside the unreserved characters and keep. */
static void
encode(struct pl_buf *b, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (c != '\0' && strchr(keep, c))) {
            pl_buf_append(b, (const char *)&c, 1);
        } else {
            char esc[3] = { '%', hex[c >> 4], hex[c & 15] };

            pl_buf_append(b, esc, 3);
        }
    }
}

void
pl_buf_urlencode(struct pl_buf *b, const char *s)
{
    encode(b, s, "");
}

void
pl_buf_pathencode(struct pl_buf *b, const char *s)
{
    encode(b, s, "/");
}

void
pl_buf_cleanup(struct pl_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void
pl_buf_array_elem(struct pl_buf *b, const char *v)
{
    if (b->len > 1)
        pl_buf_puts(b, ",");
    if (v == NULL) {
        pl_buf_puts(b, "NULL");
        return;
    }
    pl_buf_puts(b, "\"");
    while (*v != '\0') {
        size_t run = strcspn(v, "\"\\"); /* copied in spans: elements can be kilobytes */

        pl_buf_append(b, v, run);
        v += run;
        if (*v != '\0') {
            pl_buf_append(b, "\\", 1);
            pl_buf_append(b, v++, 1);
        }
    }
    pl_buf_puts(b, "\"");
}

const char *
pl_buf_array_literal(struct pl_arena *a, const char *const *v, int n)
{
    struct pl_buf b = PL_BUF_INIT;
    const char *lit;

    pl_buf_puts(&b, "{");
    for (int i = 0; i < n; i++)
        pl_buf_array_elem(&b, v[i]);
    pl_buf_puts(&b, "}");
    lit = pl_arena_strndup(a, b.data, b.len);
    pl_buf_cleanup(&b);
    return lit;
}
