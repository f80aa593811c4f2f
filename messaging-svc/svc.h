/*
 * svc.h - messaging-svc private declarations: configuration, context, handlers, SQL functions.
 */
#ifndef MESSAGING_SVC_H
#define MESSAGING_SVC_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "cursor.h"
#include "parley/config.h"
#include "parley/http.h"
#include "status.h"

struct pl_arena;
struct pl_db;
struct pl_err;
struct msg_part_cache;

#define MSG_SERVICE "messaging-svc"
#define MSG_PER_PAGE_DEFAULT 50
#define MSG_BODY_MAX 65536
#define MSG_IDEM_KEY_MAX 255
#define MSG_BATCH_MAX 64 /* items of one POST /api/messages/batch */
#define MSG_PARTICIPANT_TIMEOUT_MS 3000
#define MSG_PARTICIPANT_TTL_US (30LL * 1000000)

struct msg_cfg {
    struct pl_cfg_common c;
    const char *conversation_url; /* PARLEY_CONVERSATION_URL */
};

struct svc_ctx {
    const struct msg_cfg *cfg;
    struct msg_part_cache *parts;
};

/* A create.  Strings borrowed from the request body; NULL = absent. */
struct message_input {
    const char *conversation_id;
    const char *sender_customer_id;
    const char *direction;
    const char *channel;
    const char *body;
    const char *content_type;
    const char *media_id;
    const char *external_message_id;
    const char *metadata; /* serialized object, or NULL */
    const char *status;   /* initial status, from the direction */
};

/* An Idempotency-Key claim: the key and the SHA-256 (hex) of the canonical request body. */
struct idem {
    const char *key;
    char hash[65];
};

/* A PUT: body edit and/or status change; which message is chosen by id or by channel identity. */
struct message_update {
    const char *id;       /* or NULL, then channel + external_message_id */
    const char *channel;
    const char *external_message_id;
    bool has_body;
    const char *body;
    const char *edited_by; /* UUID or NULL */
    enum msg_status status; /* MSG_ST_INVALID = no status change requested */
    const char *error;      /* serialized error object, with status failed */
    /* The provider's id of a sent message (inbound-svc's write-back), set only while none is. */
    const char *new_external_id; /* or NULL */
    const char *new_channel;     /* channel recorded with it when the message has none, or NULL */
    bool deleted; /* revoked by its sender: body "" and metadata.deleted = true (with has_body) */
};

/* One row of a list: the message JSON and the cursor value it stands at (seq or version). */
struct message_row {
    const char *json;
    long long cursor;
};

extern const struct pl_route msg_routes[];

enum MHD_Result msg_messages_create(struct pl_req *req);
enum MHD_Result msg_messages_create_batch(struct pl_req *req);
enum MHD_Result msg_messages_get(struct pl_req *req);
enum MHD_Result msg_messages_update(struct pl_req *req);
enum MHD_Result msg_messages_update_external(struct pl_req *req);
enum MHD_Result msg_messages_history(struct pl_req *req);
enum MHD_Result msg_conversation_messages(struct pl_req *req);

/* Participant cache (participants.c).  Thread-safe. */
struct msg_part_cache *msg_part_cache_new(void);
void msg_part_cache_free(struct msg_part_cache *c);
/*
 * Checks that customer_id is an active participant of conversation_id, asking conversation-svc
 * unless a positive answer younger than 30 s is cached.  Returns PL_OK, or PL_ERR with err: 422
 * on conversation_id or sender_customer_id, 503 when conversation-svc cannot answer.
 */
/* The create body's field and vocabulary errors, or NULL when it is valid. */
json_t *msg_check_create(const json_t *body);
/* Reads a valid create body into in (strings borrowed from body, metadata dumped into a). */
void msg_read_create(struct pl_arena *a, const json_t *body, struct message_input *in);

int msg_participant_check(const struct svc_ctx *ctx, struct pl_arena *a,
                          const char *conversation_id, const char *customer_id,
                          struct pl_err *err);

/*
 * SQL.  Each returns PL_DB_ROW, PL_DB_NONE or a failure code with err filled; JSON text results are
 * copied into the arena.  Writes emit their events through the outbox in the same statement or
 * transaction.
 */
/* Looks up a stored response for key (younger than 24 h).  PL_DB_ROW fills hash, status, body. */
int msg_db_idem_get(PGconn *db, struct pl_arena *a, const char *key, const char **hash,
                    unsigned *status, const char **body, struct pl_err *err);
/*
 * Creates a message (201), or returns the first one with the same channel identity (200), with
 * *status the HTTP status.  With idem, the key is claimed in the same transaction and the
 * response stored with it; a key already stored is replayed (its status and body) or, for a
 * different request, 422; *replayed says whether the answer is a replay.
 */
int msg_db_message_create(PGconn *db, struct pl_arena *a, const struct message_input *in,
                          const struct idem *idem, const char **json, unsigned *status,
                          bool *replayed, struct pl_err *err);
/*
 * Creates n messages in one transaction, in[i] with the trace id traces[i] (NULL: none), each as
 * msg_db_message_create without idem would; json[i] and status[i] receive each answer.  Any
 * failure rolls back all of them and is returned (the caller then creates them one by one).
 */
int msg_db_message_create_many(PGconn *db, struct pl_arena *a, const struct message_input *in,
                               const char *const *traces, int n, const char **json,
                               unsigned *status, struct pl_err *err);
/* Deletes expired idempotency keys (opportunistic; errors only logged). */
void msg_db_idem_expire(PGconn *db);
int msg_db_message_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                       struct pl_err *err);
/* Applies u in one transaction.  PL_DB_NONE: no such message.  422 for a status off its path. */
int msg_db_message_update(PGconn *db, struct pl_arena *a, const struct message_update *u,
                          const char **json, struct pl_err *err);
/* {"data":[...]} of the edits, oldest first; PL_DB_NONE when the message does not exist. */
int msg_db_message_history(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                           struct pl_err *err);
/* Newest first by seq: a page of a conversation's messages and the total count. */
int msg_db_message_page(PGconn *db, struct pl_arena *a, const char *conversation_id,
                        long long limit, long long offset, const char ***items, int *n,
                        long long *total, struct pl_err *err);
/* Keyset and changed_since lists: up to c->limit + 1 rows in the order of c->mode. */
int msg_db_message_keyset(PGconn *db, struct pl_arena *a, const char *conversation_id,
                          const struct msg_cursor *c, struct message_row **rows, int *n,
                          struct pl_err *err);

#endif
