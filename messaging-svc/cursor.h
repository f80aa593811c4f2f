/*
 * cursor.h - parsing the list modes of GET /api/conversations/{id}/messages (SPEC 4.3, 10).
 *
 * Pure, header-only (static inline) for tests/unit/messaging-svc/test_cursor.c.  A list is either
 * the paginator (no cursor), or one of the keyset cursors after_seq / before_seq, or changed_since
 * over the version counter; cursors take limit (default 50, 1..200).  Values are plain decimal
 * digits: no sign, no spaces, at most 18 digits, so they always fit a bigint.
 */
#ifndef MESSAGING_CURSOR_H
#define MESSAGING_CURSOR_H

#include <stdbool.h>
#include <stddef.h>

#define MSG_LIMIT_DEFAULT 50
#define MSG_LIMIT_MAX 200

enum msg_list_mode { MSG_LIST_PAGE, MSG_LIST_AFTER, MSG_LIST_BEFORE, MSG_LIST_CHANGED };

struct msg_cursor {
    enum msg_list_mode mode;
    long long value; /* the seq or version given */
    long limit;
};

/* Parses up to 18 decimal digits into *out; false for anything else (including ""). */
static inline bool
msg_parse_uint(const char *s, long long *out)
{
    long long v = 0;
    size_t n = 0;

    if (s == NULL || *s == '\0')
        return false;
    for (; s[n] != '\0'; n++) {
        if (s[n] < '0' || s[n] > '9' || n == 18)
            return false;
        v = v * 10 + (s[n] - '0');
    }
    *out = v;
    return true;
}

/*
 * Reads the query values (NULL = absent) into c.  Returns NULL when valid; otherwise the message
 * for a 422, with *field naming the offending parameter.
 */
static inline const char *
msg_cursor_parse(const char *after, const char *before, const char *changed, const char *limit,
                 struct msg_cursor *c, const char **field)
{
    const char *names[] = { "after_seq", "before_seq", "changed_since" };
    const char *vals[] = { after, before, changed };
    static const enum msg_list_mode modes[] = { MSG_LIST_AFTER, MSG_LIST_BEFORE, MSG_LIST_CHANGED };
    long long lim = MSG_LIMIT_DEFAULT;

    c->mode = MSG_LIST_PAGE;
    c->value = 0;
    c->limit = MSG_LIMIT_DEFAULT;
    for (int i = 0; i < 3; i++) {
        if (vals[i] == NULL)
            continue;
        *field = names[i];
        if (c->mode != MSG_LIST_PAGE)
            return "after_seq, before_seq and changed_since cannot be combined";
        if (!msg_parse_uint(vals[i], &c->value))
            return "must be a non-negative integer";
        c->mode = modes[i];
    }
    if (limit != NULL) {
        *field = "limit";
        if (!msg_parse_uint(limit, &lim) || lim < 1 || lim > MSG_LIMIT_MAX)
            return "must be an integer from 1 to 200";
    }
    c->limit = (long)lim;
    return NULL;
}

#endif
