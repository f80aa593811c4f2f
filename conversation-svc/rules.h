/*
 * rules.h - conversation-svc's pure rules: the vocabularies, how many participants each type
 * takes, the pair key of a direct conversation, and the timestamp shape the message-event
 * consumer accepts.
 *
 * Header-only (static inline) so that tests/unit/conversation-svc/test_rules.c can reach them
 * while unit tests link only libparley.
 */
#ifndef CONVERSATION_RULES_H
#define CONVERSATION_RULES_H

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define CONV_PARTICIPANTS_MAX 100
/* "<uuid>:<uuid>" and a NUL. */
#define CONV_DIRECT_KEY_LEN (2 * 36 + 2)

static const char *const conv_types[] = { "direct", "group", "channel", NULL };
static const char *const conv_statuses[] = { "open", "pending", "closed", NULL };
static const char *const conv_roles[] = { "member", "admin", "owner", NULL };

/* True when s (NULL-safe) is one of the NULL-terminated set. */
static inline bool
conv_in_set(const char *s, const char *const *set)
{
    for (; s != NULL && *set != NULL; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* Participant count bounds of a valid type: direct exactly 2, group 2 or more, channel 1 or more. */
static inline void
conv_participant_bounds(const char *type, int *min, int *max)
{
    bool direct = strcmp(type, "direct") == 0;

    *min = direct || strcmp(type, "group") == 0 ? 2 : 1;
    *max = direct ? 2 : CONV_PARTICIPANTS_MAX;
}

/* The pair key of a direct conversation between x and y (lowercase ids): sorted, ':'-joined. */
static inline void
conv_direct_key(const char *x, const char *y, char out[CONV_DIRECT_KEY_LEN])
{
    if (strcmp(x, y) > 0) {
        const char *t = x;

        x = y;
        y = t;
    }
    snprintf(out, CONV_DIRECT_KEY_LEN, "%s:%s", x, y);
}

/*
 * True for an RFC 3339 date-time with a zone: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM).  This
 * keeps out the words PostgreSQL would also take as a time ("infinity", "now", "yesterday") and
 * zone-less times, which it would read in the session's zone.  Ranges (month 13) are left to
 * PostgreSQL.  NULL-safe.
 */
static inline bool
conv_rfc3339_valid(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t i;

    if (s == NULL)
        return false;
    for (i = 0; i < sizeof(shape) - 1; i++) {
        int c = (unsigned char)s[i];

        if (shape[i] == 'd' ? !isdigit(c) : toupper(c) != shape[i])
            return false;
    }
    if (s[i] == '.' && isdigit((unsigned char)s[i + 1]))
        for (i++; isdigit((unsigned char)s[i]); i++)
            ;
    if (toupper((unsigned char)s[i]) == 'Z')
        return s[i + 1] == '\0';
    if (s[i] != '+' && s[i] != '-')
        return false;
    for (int k = 1; k <= 5; k++)
        if (k == 3 ? s[i + k] != ':' : !isdigit((unsigned char)s[i + k]))
            return false;
    return s[i + 6] == '\0';
}

#endif
