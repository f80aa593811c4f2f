/*
 * pending.c - message creates of several webhook rows, sent to messaging-svc together.
 *
 * A worker runs the rows of one claim; their message creates queue here instead of going out one
 * by one, and leave as one POST /api/messages/batch (one request, and one transaction on
 * messaging-svc's side) when the queue is full, when an item that must come after them (a status,
 * an edit, a revoke...) is about to run, or when every row of the claim has run.  Each entry of
 * the answer is its item's own outcome, noted on the item's row just as the answer of a single
 * create would be.  A transport failure, or a refusal of the whole batch, is noted on every row
 * with an item in it.  A messaging-svc without the batch route (404 or 405: an older one, during
 * a rolling deploy) gets the creates one at a time.
 */
#include <string.h>

#include "deliver.h"
#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "svc.h"

#define PENDING_MAX 64                  /* messaging-svc's MSG_BATCH_MAX */
#define PENDING_BYTES ((size_t)512 << 10) /* well under messaging-svc's 1 MiB body limit */

struct entry {
    struct inb_run *r;
    const struct inb_item *it;
    json_t *body;     /* kept by the arena */
    const char *text; /* body serialised */
};

struct inb_pending {
    struct pl_arena *a;
    const struct inb_cfg *cfg;
    struct entry v[PENDING_MAX];
    int n;
    size_t bytes;
};

struct inb_pending *
inb_pending_new(struct pl_arena *a, const struct inb_cfg *cfg)
{
    struct inb_pending *p = pl_arena_alloc(a, sizeof(*p));

    memset(p, 0, sizeof(*p));
    p->a = a;
    p->cfg = cfg;
    return p;
}

void
inb_pending_add(struct inb_pending *p, struct inb_run *r, const struct inb_item *it, json_t *body)
{
    const char *text = pl_json_dump(p->a, pl_json_keep(p->a, body));
    size_t len = strlen(text) + 64; /* with its item's trace_id and punctuation */

    if (p->n > 0 && (p->n == PENDING_MAX || p->bytes + len > PENDING_BYTES))
        inb_pending_flush(p);
    p->v[p->n++] = (struct entry){ r, it, body, text };
    p->bytes += len;
}

/* {"messages":[{"trace_id":...,"message":...},...]} of the n entries, into out. */
static void
request_body(struct inb_pending *p, int n, struct pl_buf *out)
{
    pl_buf_puts(out, "{\"messages\":[");
    for (int i = 0; i < n; i++) {
        const struct entry *e = &p->v[i];

        pl_buf_puts(out, i ? ",{" : "{");
        if (e->r->trace != NULL && *e->r->trace != '\0')
            pl_buf_printf(out, "\"trace_id\":%s,",
                          pl_json_dump(p->a, pl_json_keep(p->a, json_string(e->r->trace))));
        pl_buf_printf(out, "\"message\":%s}", e->text);
    }
    pl_buf_puts(out, "]}");
}

/* One entry of the answer: the item's outcome on its row, then an echo's status. */
static void
settle(struct inb_pending *p, const struct entry *e, const json_t *answer)
{
    long status = (long)json_integer_value(json_object_get(answer, "status"));
    enum inb_outcome o = status > 0 ? inb_classify(status) : INB_RETRY;
    const json_t *body;

    if (o == INB_OK) {
        inb_echo_status(e->r, e->it);
        return;
    }
    body = json_object_get(answer, "body");
    inb_note(e->r, o, "message create: HTTP %ld: %.200s", status,
             body != NULL ? pl_json_dump(p->a, body) : "");
}

/* The same outcome for every entry: the batch as a whole failed. */
static void
settle_all(struct inb_pending *p, int n, enum inb_outcome o, const char *why)
{
    for (int i = 0; i < n; i++)
        inb_note(p->v[i].r, o, "message create: %s", why);
}

void
inb_pending_flush(struct inb_pending *p)
{
    const char *url, *saved = pl_log_request_id();
    struct pl_buf body = PL_BUF_INIT;
    struct pl_client_resp resp;
    struct pl_err err = PL_ERR_INIT;
    const json_t *data;
    int n, rc;

    if (p == NULL || p->n == 0)
        return;
    n = p->n;
    p->n = 0;
    p->bytes = 0;
    url = pl_arena_printf(p->a, "%s/api/messages/batch", p->cfg->messaging_url);
    request_body(p, n, &body);
    rc = pl_client_call(p->a, "POST", url, body.data, INB_CALL_TIMEOUT_MS, &resp, &err);
    pl_buf_cleanup(&body);
    if (rc != PL_OK) {
        settle_all(p, n, INB_RETRY, err.msg);
        return;
    }
    data = json_object_get(resp.json, "data");
    for (int i = 0; i < n; i++) {
        const struct entry *e = &p->v[i];

        pl_log_set_request_id(e->r->trace);
        if (resp.status == 404 || resp.status == 405) /* no batch route: one at a time */
            inb_create_message(e->r, e->it, json_incref(e->body));
        else if (resp.status == 200 && json_array_size(data) == (size_t)n)
            settle(p, e, json_array_get(data, (size_t)i));
        else
            inb_note(e->r, resp.status == 200 ? INB_RETRY : inb_classify(resp.status),
                     "message batch: HTTP %ld: %.200s", resp.status, resp.body ? resp.body : "");
    }
    pl_log_set_request_id(saved);
}
