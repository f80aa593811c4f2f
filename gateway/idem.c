/*
 * idem.c - Idempotency-Key on every forwarded POST (SPEC 2 and 10), kept by the gateway, which is
 * the one place that knows the caller's API key for every service.
 *
 * A keyed POST first claims (API key id, key) with the hash of its method, path and body.  The
 * claim goes on to the service; its answer is stored for 24 hours unless it is a 5xx or no
 * answer came at all, which lets the key go so a retry runs again.  A repeat then gets:
 *   - the stored status and body, with Idempotent-Replayed: true, when the hash matches;
 *   - 422 when the same key came with a different request;
 *   - 409 with Retry-After while the first request still runs (two concurrent requests with one
 *     key create one thing).
 * A JSON body is hashed in canonical form (keys sorted, no spacing), so a client that
 * re-serializes the same object is still a repeat.  POST /api-keys is not forwarded and has its
 * own rule (api_keys.c).
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "svc.h"

/* The hex SHA-256 of "METHOD path\n" and the body (canonical JSON when it parses). */
static void
request_hash(const struct pl_req *req, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    struct pl_buf b = PL_BUF_INIT;
    size_t n = 0;
    const char *body = pl_req_body(req, &n);
    json_t *j = body ? json_loadb(body, n, JSON_DECODE_ANY, NULL) : NULL;
    char *canon = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;

    pl_buf_printf(&b, "%s %s\n", pl_req_method(req), pl_req_path(req));
    if (canon != NULL)
        pl_buf_puts(&b, canon);
    else if (body != NULL)
        pl_buf_append(&b, body, n);
    SHA256((const unsigned char *)b.data, b.len, md);
    pl_buf_cleanup(&b);
    free(canon);
    json_decref(j);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

/* 1 to GW_IDEM_KEY_MAX visible ASCII characters. */
static bool
key_ok(const char *key)
{
    size_t n = strlen(key);

    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return false;
    return n > 0 && n <= GW_IDEM_KEY_MAX;
}

/* The answer to a key that is taken: the replay, 422 or 409. */
static enum MHD_Result
answer_taken(struct pl_req *req, const struct gw_idem_key *k, const struct gw_idem_row *row)
{
    if (row->hash != NULL && strcmp(row->hash, k->hash) != 0) {
        json_t *errors = NULL;

        pl_json_error_add(&errors, "Idempotency-Key", "was already used with a different request");
        return pl_reply_invalid(req, errors);
    }
    if (!row->done) { /* running, or committed after this statement began */
        pl_req_reply_header(req, "Retry-After", "1");
        return pl_reply_error(req, 409, "conflict",
                              "a request with this Idempotency-Key is still running; retry shortly");
    }
    pl_req_reply_header(req, "Idempotent-Replayed", "true");
    return pl_reply_text(req, row->status, row->content_type, row->body, row->len);
}

struct gw_idem_key *
gw_idem_begin(struct pl_req *req, const char *key_id, bool *answered, enum MHD_Result *rc)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *key = pl_req_header(req, "Idempotency-Key");
    struct pl_err err = PL_ERR_INIT;
    struct gw_idem_row row;
    struct gw_idem_key *k;
    PGconn *db;

    *answered = false;
    if (key == NULL)
        return NULL;
    *answered = true;
    if (!key_ok(key)) {
        json_t *errors = NULL;

        pl_json_error_add(&errors, "Idempotency-Key", "must be 1 to %d visible ASCII characters",
                          GW_IDEM_KEY_MAX);
        *rc = pl_reply_invalid(req, errors);
        return NULL;
    }
    if ((db = pl_req_db(req, rc)) == NULL)
        return NULL;
    k = pl_arena_alloc(pl_req_arena(req), sizeof(*k));
    k->key_id = pl_arena_strdup(pl_req_arena(req), key_id);
    k->key = key;
    request_hash(req, k->hash);
    /* a claim older than two tries of the longest call is one whose gateway went away */
    if (gw_db_idem_claim(db, pl_req_arena(req), k, 2 * ctx->cfg->upstream_timeout_ms / 1000 + 10,
                         &row, &err) < 0) {
        *rc = pl_reply_err(req, &err);
        return NULL;
    }
    if (!row.claimed) {
        *rc = answer_taken(req, k, &row);
        return NULL;
    }
    *answered = false;
    return k;
}

void
gw_idem_finish(struct pl_req *req, const struct gw_idem_key *k, unsigned status,
               const char *ctype, const char *body, size_t len)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    bool keep = status > 0 && status < 500 && body != NULL && strlen(body) == len;
    PGconn *db = pl_db_conn(ctx->db, &err);

    if (db == NULL) {
        pl_log_warn("Idempotency-Key: claim left to expire: %s", err.msg);
        return;
    }
    if (keep && gw_db_idem_store(db, k, status, ctype ? ctype : "application/json", body,
                                 &err) >= 0)
        return;
    if (keep)
        pl_log_warn("Idempotency-Key: the answer could not be kept: %s", err.msg);
    if (gw_db_idem_release(db, k, &err) < 0)
        pl_log_warn("Idempotency-Key: claim left to expire: %s", err.msg);
}
