/*
 * svc.h - conversation-svc private declarations: configuration, context, handlers, SQL functions,
 * the customer-svc check and the message-event consumer.
 */
#ifndef CONVERSATION_SVC_H
#define CONVERSATION_SVC_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "parley/config.h"
#include "parley/http.h"
#include "rules.h"

struct pl_arena;
struct pl_consumer;
struct pl_db;
struct pl_err;

#define CONV_SERVICE "conversation-svc"
#define CONV_PER_PAGE_DEFAULT 20
#define CONV_UPSTREAM_TIMEOUT_MS 3000 /* customer-svc lookups (CONV_MSG.md) */

struct conv_cfg {
    struct pl_cfg_common c;
    const char *customer_url; /* PARLEY_CUSTOMER_URL, without a trailing slash */
};

struct svc_ctx {
    const struct conv_cfg *cfg;
    struct pl_db *db;
};

/* A create.  Customer ids are validated, lowercase and distinct; strings borrowed. */
struct conversation_input {
    const char *type;
    const char *subject;  /* NULL = none */
    const char *metadata; /* serialized object, or NULL */
    const char *const *customers;
    int ncustomers;
};

/* A patch.  Absent fields leave the column as it is. */
struct conversation_patch {
    const char *status; /* NULL = unchanged */
    bool has_subject;   /* subject given (possibly null) */
    const char *subject;
    const char *metadata; /* serialized object to merge, or NULL */
};

struct conversation_filter {
    const char *status;      /* NULL = any */
    const char *type;        /* NULL = any */
    const char *customer_id; /* NULL = any; else an active participant */
    long long limit;
    long long offset;
};

/* What a participant write found (participants_db.c). */
enum conv_part_rc {
    CONV_PART_NO_CONVERSATION = 0,
    CONV_PART_CHANGED,        /* added / removed: event written */
    CONV_PART_ALREADY_ACTIVE, /* add: the customer was already an active participant */
    CONV_PART_NOT_ACTIVE,     /* remove: the customer is not an active participant */
    CONV_PART_DIRECT,         /* direct conversations keep their two participants */
};

extern const struct pl_route conv_routes[];

enum MHD_Result conv_conversations_create(struct pl_req *req);
enum MHD_Result conv_conversations_get(struct pl_req *req);
enum MHD_Result conv_conversations_list(struct pl_req *req);
enum MHD_Result conv_conversations_update(struct pl_req *req);
enum MHD_Result conv_participants_add(struct pl_req *req);
enum MHD_Result conv_participants_get(struct pl_req *req);
enum MHD_Result conv_participants_remove(struct pl_req *req);
enum MHD_Result conv_chats_put(struct pl_req *req);
enum MHD_Result conv_chats_migrate(struct pl_req *req);

/*
 * Reads the participants, subject and metadata of a create or find-or-create body whose shape
 * passed its field table, for a conversation of in->type.  Participants become lowercase UUID
 * strings in the arena; *errors grows when one is not a UUID, when an id repeats, or when the
 * count does not suit the type.  Returns true when nothing was added to *errors.
 */
bool conv_input_read(struct pl_req *req, const json_t *body, struct conversation_input *in,
                     json_t **errors);


/*
 * Asks customer-svc (one call) which of ids[0..n) exist.  Returns PL_OK when all do.  Otherwise
 * PL_ERR with either *errors set (new object, under field: one message per unknown id) or err
 * filled (503/504 unreachable, 502 unexpected answer).
 */
int conv_customers_check(struct pl_req *req, const char *const *ids, int n, const char *field,
                         json_t **errors, struct pl_err *err);

/*
 * SQL.  Each returns PL_DB_ROW, PL_DB_NONE or a failure code with err filled; JSON text results are
 * copied into the arena.  Writes emit their events through the outbox in the same statement.
 */
int conv_db_conversation_create(PGconn *db, struct pl_arena *a,
                                const struct conversation_input *in, const char **json,
                                bool *created, struct pl_err *err);
/*
 * The open direct conversation of the pair in (type direct): PL_DB_ROW with its JSON, PL_DB_NONE
 * when there is none (or in is not direct).  Read-only: the cheap first step of a find-or-create.
 */
int conv_db_conversation_open_direct(PGconn *db, struct pl_arena *a,
                                     const struct conversation_input *in, const char **json,
                                     struct pl_err *err);
int conv_db_conversation_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                             struct pl_err *err);
int conv_db_conversation_patch(PGconn *db, struct pl_arena *a, const char *id,
                               const struct conversation_patch *in, const char **json,
                               struct pl_err *err);
int conv_db_conversation_list(PGconn *db, struct pl_arena *a, const struct conversation_filter *f,
                              const char ***items, int *n, long long *total, struct pl_err *err);
/* Consumer: raises last_message_at to at; *found says whether the conversation exists. */
int conv_db_conversation_touch(PGconn *db, const char *id, const char *at, bool *found,
                               struct pl_err *err);
/*
 * The same for n (id, at) pairs in one statement, ids and ats as array literals.  The ids of
 * unknown conversations come back in *res (one per row; caller clears it).
 */
int conv_db_conversations_touch(PGconn *db, const char *ids, const char *ats, PGresult **res,
                                struct pl_err *err);

/* n new UUIDv7 ids, increasing, as a uuid[] literal in the arena. */
const char *conv_db_new_ids(struct pl_arena *a, int n);

/*
 * Channel chats (chats_db.c).  Find-or-create of the group conversation of (channel, chat_id):
 * PL_DB_ROW with *created telling which; in->type is group or channel, in->customers are added as
 * participants when missing (also to a conversation found).  metadata.channel_chat_id is set.
 */
int conv_db_chat_find_or_create(PGconn *db, struct pl_arena *a, const char *channel,
                                const char *chat_id, const struct conversation_input *in,
                                const char **json, bool *created, struct pl_err *err);
/*
 * Records that chat_id of channel continues as to_chat_id: the same conversation is found by
 * both, metadata.channel_chat_id becomes to_chat_id.  PL_DB_NONE: chat_id unknown; 409 in err
 * when to_chat_id already belongs to another conversation.
 */
int conv_db_chat_migrate(PGconn *db, struct pl_arena *a, const char *channel,
                         const char *chat_id, const char *to_chat_id, const char **json,
                         struct pl_err *err);

/* These return an enum conv_part_rc (>= 0) or a failure code; *json is the participant. */
int conv_db_participant_add(PGconn *db, struct pl_arena *a, const char *conversation_id,
                            const char *customer_id, const char *role, const char **json,
                            struct pl_err *err);
int conv_db_participant_remove(PGconn *db, struct pl_arena *a, const char *conversation_id,
                               const char *customer_id, const char **json, struct pl_err *err);
/* PL_DB_ROW with *json = the active participant or NULL; PL_DB_NONE: no such conversation. */
int conv_db_participant_get(PGconn *db, struct pl_arena *a, const char *conversation_id,
                            const char *customer_id, const char **json, struct pl_err *err);

/* The message-event consumer (message_events.c): keeps last_message_at current. */
struct pl_consumer *conv_message_events_start(struct svc_ctx *ctx, struct pl_err *err);

#endif
