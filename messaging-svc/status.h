/*
 * status.h - the message vocabularies and the status state machine of SPEC 4.3 and 10.
 *
 * Pure functions, header-only (static inline) so that tests/unit/messaging-svc/test_status.c can
 * reach them while unit tests link only libparley.
 *
 * Rank: queued 0 < sent 1 < delivered 2 < read 3 ("played" is read, and is stored as "read").
 * Outbound messages move forward by rank only; failed is reachable only from queued or sent and is
 * final.  Inbound and system messages start received and may become read, nothing else.  An update
 * that would not move forward changes nothing and is answered 200; a status name that is unknown,
 * or that does not apply to the message's direction, is a client error (422).
 */
#ifndef MESSAGING_STATUS_H
#define MESSAGING_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum msg_direction { MSG_DIR_INVALID = -1, MSG_DIR_INBOUND, MSG_DIR_OUTBOUND, MSG_DIR_SYSTEM };

enum msg_status {
    MSG_ST_INVALID = -1,
    MSG_ST_QUEUED,
    MSG_ST_SENT,
    MSG_ST_DELIVERED,
    MSG_ST_READ,
    MSG_ST_FAILED,
    MSG_ST_RECEIVED,
};

enum msg_transition {
    MSG_TR_CHANGE, /* a real change: store it, bump the version, emit message.status.updated */
    MSG_TR_IGNORE, /* not forward (late or repeated): answer 200, change nothing */
    MSG_TR_INVALID /* does not apply to this message: 422 */
};

/* Name as stored and returned; NULL for MSG_ST_INVALID. */
static inline const char *
msg_status_name(enum msg_status s)
{
    static const char *const names[] = { "queued", "sent", "delivered", "read", "failed",
                                         "received" };

    return s >= MSG_ST_QUEUED && s <= MSG_ST_RECEIVED ? names[s] : NULL;
}

/* Parses a status name ("played" is read); MSG_ST_INVALID when unknown or NULL. */
static inline enum msg_status
msg_status_parse(const char *s)
{
    if (s == NULL)
        return MSG_ST_INVALID;
    if (strcmp(s, "played") == 0)
        return MSG_ST_READ;
    for (int i = MSG_ST_QUEUED; i <= MSG_ST_RECEIVED; i++)
        if (strcmp(s, msg_status_name((enum msg_status)i)) == 0)
            return (enum msg_status)i;
    return MSG_ST_INVALID;
}

static inline enum msg_direction
msg_direction_parse(const char *s)
{
    if (s == NULL)
        return MSG_DIR_INVALID;
    if (strcmp(s, "inbound") == 0)
        return MSG_DIR_INBOUND;
    if (strcmp(s, "outbound") == 0)
        return MSG_DIR_OUTBOUND;
    if (strcmp(s, "system") == 0)
        return MSG_DIR_SYSTEM;
    return MSG_DIR_INVALID;
}

/* The status a new message starts with. */
static inline enum msg_status
msg_status_initial(enum msg_direction d)
{
    return d == MSG_DIR_OUTBOUND ? MSG_ST_QUEUED : MSG_ST_RECEIVED;
}

/* Rank on the forward-only scale; received ranks with queued (both are a first state). */
static inline int
msg_status_rank(enum msg_status s)
{
    switch (s) {
    case MSG_ST_QUEUED: case MSG_ST_RECEIVED: return 0;
    case MSG_ST_SENT: return 1;
    case MSG_ST_DELIVERED: return 2;
    case MSG_ST_READ: return 3;
    default: return -1;
    }
}

/* Decides what a request to move a message of direction d from cur to next does. */
static inline enum msg_transition
msg_status_transition(enum msg_direction d, enum msg_status cur, enum msg_status next)
{
    if (next == MSG_ST_INVALID || cur == MSG_ST_INVALID || d == MSG_DIR_INVALID)
        return MSG_TR_INVALID;
    if (d != MSG_DIR_OUTBOUND) { /* inbound and system: received -> read */
        if (next != MSG_ST_RECEIVED && next != MSG_ST_READ)
            return MSG_TR_INVALID;
        return msg_status_rank(next) > msg_status_rank(cur) ? MSG_TR_CHANGE : MSG_TR_IGNORE;
    }
    if (next == MSG_ST_RECEIVED)
        return MSG_TR_INVALID;
    if (cur == MSG_ST_FAILED) /* final */
        return MSG_TR_IGNORE;
    if (next == MSG_ST_FAILED)
        return cur == MSG_ST_QUEUED || cur == MSG_ST_SENT ? MSG_TR_CHANGE : MSG_TR_IGNORE;
    return msg_status_rank(next) > msg_status_rank(cur) ? MSG_TR_CHANGE : MSG_TR_IGNORE;
}

/* True when s is a content_type of the SPEC 10 vocabulary. */
static inline bool
msg_content_type_valid(const char *s)
{
    static const char *const types[] = { "text",     "image",    "audio",       "voice",
                                         "video",    "document", "sticker",     "location",
                                         "contacts", "interactive", "button",   "reaction",
                                         "order",    "system",   "unsupported", NULL };

    for (int i = 0; s != NULL && types[i] != NULL; i++)
        if (strcmp(s, types[i]) == 0)
            return true;
    return false;
}

#endif
