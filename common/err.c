/*
 * err.c - filling struct pl_err, and the assertion that stays on in release builds.
 */
#include "parley/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "parley/log.h"

int
pl_err_set(struct pl_err *err, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return PL_ERR;
    err->status = status;
    err->code = code;
    err->field[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return PL_ERR;
}

void
pl_assert_fail(const char *what, const char *file, int line)
{
    pl_log_error("assertion failed: %s at %s:%d", what, file, line);
    pl_log_flush();
    abort();
}
