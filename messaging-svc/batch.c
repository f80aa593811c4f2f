/*
 * batch.c - POST /api/messages/batch (internal; inbound-svc's workers): up to MSG_BATCH_MAX
 * creates in one request and, when nothing goes wrong, one transaction (one commit, one outbox
 * wake-up for all of them).
 *
 * Body {"messages": [{"trace_id": "...", "message": {<a POST /api/messages body>}}, ...]}.
 * Answer 200 {"data": [{"status": 201 | 200 | 4xx | 5xx, "body": <message or error>}, ...]}, one
 * entry per item in the order given, each what POST /api/messages would have answered for it.
 * An item that fails its checks (fields, vocabularies, participant) gets its own error and the
 * others go on.  When the transaction fails, each remaining item is created alone, so one item
 * PostgreSQL refuses costs only itself.  There is no Idempotency-Key: the channel identity
 * (channel, external_message_id) is what makes a repeated item answer 200 with the first one.
 * Each item's events carry its own trace_id, since items come from different deliveries.
 */
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/http.h"
#include "parley/json.h"
#include "parley/log.h"
#include "svc.h"

/* What each item becomes: its input when valid, else its answer. */
struct batch {
    struct pl_arena *a;
    int n;                     /* items */
    struct message_input *in;  /* [n]; valid[i] says whether in[i] is used */
    const char **traces;       /* [n] */
    bool *valid;               /* [n] */
    unsigned *status;          /* [n] */
    const char **json;         /* [n]: message or error body */
};

/* Item i fails with what POST /api/messages would answer for err. */
static void
fail_item(struct batch *b, int i, const struct pl_err *err)
{
    b->valid[i] = false;
    b->json[i] = pl_json_dump(b->a, pl_json_keep(b->a, pl_err_body(err, &b->status[i])));
}

/* Checks item i as a single create would; an invalid item gets its answer at once. */
static void
read_item(struct batch *b, const json_t *item, int i)
{
    const json_t *msg = json_object_get(item, "message");
    const char *trace = json_string_value(json_object_get(item, "trace_id"));
    json_t *errors = NULL;
    struct pl_err err = PL_ERR_INIT;

    if (!json_is_object(msg))
        pl_json_error_add(&errors, "message", "must be an object");
    else
        errors = msg_check_create(msg);
    if (errors != NULL) {
        b->valid[i] = false;
        b->status[i] = 422;
        b->json[i] = pl_json_dump(b->a, pl_json_keep(b->a, pl_invalid_body(errors)));
        return;
    }
    if (json_object_get(item, "trace_id") != NULL && !pl_request_id_valid(trace)) {
        pl_err_set(&err, 422, "validation_failed", "must be a request id as X-Request-Id takes: "
                   "1 to 128 letters, digits, '.', '_', ':' or '-'");
        snprintf(err.field, sizeof(err.field), "trace_id");
        fail_item(b, i, &err);
        return;
    }
    msg_read_create(b->a, msg, &b->in[i]);
    b->traces[i] = trace;
    b->valid[i] = true;
}

/* The valid items as one transaction; when that fails, each alone. */
static void
create_all(struct batch *b, PGconn *db)
{
    struct message_input *in = pl_arena_alloc(b->a, sizeof(*in) * (size_t)b->n);
    const char **traces = pl_arena_alloc(b->a, sizeof(*traces) * (size_t)b->n);
    const char **json = pl_arena_alloc(b->a, sizeof(*json) * (size_t)b->n);
    unsigned *status = pl_arena_alloc(b->a, sizeof(*status) * (size_t)b->n);
    int *at = pl_arena_alloc(b->a, sizeof(*at) * (size_t)b->n);
    struct pl_err err = PL_ERR_INIT;
    const char *saved = pl_log_request_id();
    bool replayed;
    int m = 0;

    for (int i = 0; i < b->n; i++)
        if (b->valid[i]) {
            in[m] = b->in[i];
            traces[m] = b->traces[i];
            at[m++] = i;
        }
    if (m == 0)
        return;
    if (msg_db_message_create_many(db, b->a, in, traces, m, json, status, &err) >= 0) {
        for (int k = 0; k < m; k++) {
            b->json[at[k]] = json[k];
            b->status[at[k]] = status[k];
        }
        return;
    }
    for (int k = 0; k < m; k++) { /* one by one: the failing item fails alone */
        int i = at[k];

        err = (struct pl_err)PL_ERR_INIT;
        pl_log_set_request_id(traces[k]);
        if (msg_db_message_create(db, b->a, &in[k], NULL, &b->json[i], &b->status[i], &replayed,
                                  &err) < 0)
            fail_item(b, i, &err);
    }
    pl_log_set_request_id(saved);
}

static enum MHD_Result
reply_batch(struct pl_req *req, const struct batch *b)
{
    struct pl_buf out = PL_BUF_INIT;
    enum MHD_Result rc;

    pl_buf_puts(&out, "{\"data\":[");
    for (int i = 0; i < b->n; i++)
        pl_buf_printf(&out, "%s{\"status\":%u,\"body\":%s}", i ? "," : "", b->status[i],
                      b->json[i]);
    pl_buf_puts(&out, "]}");
    rc = pl_reply_json_text(req, 200, out.data, out.len);
    pl_buf_cleanup(&out);
    return rc;
}

enum MHD_Result
msg_messages_create_batch(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const json_t *items = json_object_get(pl_req_json(req), "messages");
    struct batch b = { .a = pl_req_arena(req), .n = (int)json_array_size(items) };
    json_t *errors = NULL;
    enum MHD_Result rc;
    PGconn *db;

    if (!json_is_array(items) || b.n < 1 || b.n > MSG_BATCH_MAX) {
        pl_json_error_add(&errors, "messages", "must be an array of 1 to %d items", MSG_BATCH_MAX);
        return pl_reply_invalid(req, errors);
    }
    b.in = pl_arena_alloc(b.a, sizeof(*b.in) * (size_t)b.n);
    b.traces = pl_arena_alloc(b.a, sizeof(*b.traces) * (size_t)b.n);
    b.valid = pl_arena_alloc(b.a, sizeof(*b.valid) * (size_t)b.n);
    b.status = pl_arena_alloc(b.a, sizeof(*b.status) * (size_t)b.n);
    b.json = pl_arena_alloc(b.a, sizeof(*b.json) * (size_t)b.n);
    for (int i = 0; i < b.n; i++)
        read_item(&b, json_array_get(items, (size_t)i), i);
    for (int i = 0; i < b.n; i++) {
        struct pl_err err = PL_ERR_INIT;

        if (b.valid[i] && msg_participant_check(ctx, b.a, b.in[i].conversation_id,
                                                b.in[i].sender_customer_id, &err) != PL_OK)
            fail_item(&b, i, &err);
    }
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    create_all(&b, db);
    return reply_batch(req, &b);
}
