/*
 * err.h - the one error vocabulary of Parley.
 *
 * Lower layers fill a struct pl_err that the caller passes in; handlers turn it into the SPEC error
 * envelope with pl_reply_err().  An error is data: an HTTP status, a stable code and a message.
 */
#ifndef PARLEY_ERR_H
#define PARLEY_ERR_H

#include <stdbool.h>

enum { PL_OK = 0, PL_ERR = -1, PL_RETRY = -2 };

struct pl_err {
    int status;       /* HTTP status to answer with; 500 when unsure */
    const char *code; /* stable API code (static string), e.g. "validation_failed" */
    char msg[200];    /* human sentence */
    char field[64];   /* on a 422: the request field at fault, or "" */
};

#define PL_ERR_INIT { 500, "internal", "", "" }

/* Fills *err (NULL-safe) and returns PL_ERR, so a failing path is one line. */
int pl_err_set(struct pl_err *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Logs, then aborts: for broken invariants; stays on in release builds. */
#define PL_ASSERT(cond)                                                                           \
    do {                                                                                          \
        if (!(cond))                                                                              \
            pl_assert_fail(#cond, __FILE__, __LINE__);                                            \
    } while (0)

__attribute__((noreturn)) void pl_assert_fail(const char *what, const char *file, int line);

#endif
