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
#include "parley/hex.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "idem_digest.h"
#include "svc.h"

/* "METHOD path\n": what every request hash starts with. */
static void
hash_head(const struct pl_req *req, struct pl_buf *b)
{
    pl_buf_printf(b, "%s %s\n", pl_req_method(req), pl_req_path(req));
}

/* The hex SHA-256 of the head and the body (canonical JSON when it parses). */
static void
request_hash(const struct pl_req *req, char out[65])
{
    struct pl_buf b = PL_BUF_INIT;
    size_t n = 0;
    const char *body = pl_req_body(req, &n);
    json_t *j = body ? json_loadb(body, n, JSON_DECODE_ANY, NULL) : NULL;
    char *canon = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;

    hash_head(req, &b);
    if (canon != NULL)
        pl_buf_puts(&b, canon);
    else if (body != NULL)
        pl_buf_append(&b, body, n);
    pl_sha256_hex(b.data, b.len, out);
    pl_buf_cleanup(&b);
    free(canon);
    json_decref(j);
}

static void
digest_free(void *d)
{
    gw_digest_free(d);
}

struct gw_idem_digest *
gw_idem_digest_start(struct pl_req *req)
{
    struct gw_idem_digest *d = pl_arena_alloc(pl_req_arena(req), sizeof(*d));
    struct pl_buf head = PL_BUF_INIT;

    hash_head(req, &head);
    PL_ASSERT(gw_digest_init(d, pl_req_header(req, "Content-Type"), head.data, head.len));
    pl_buf_cleanup(&head);
    pl_arena_defer(pl_req_arena(req), digest_free, d);
    return d;
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

static enum MHD_Result
running(struct pl_req *req)
{
    pl_req_reply_header(req, "Retry-After", "1");
    return pl_reply_error(req, 409, "conflict",
                          "a request with this Idempotency-Key is still running; retry shortly");
}

enum MHD_Result
gw_idem_replay(struct pl_req *req, const struct gw_idem_row *row, const char *hash)
{
    if (row->hash != NULL && strcmp(row->hash, hash) != 0) {
        json_t *errors = NULL;

        pl_json_error_add(&errors, "Idempotency-Key", "was already used with a different request");
        return pl_reply_invalid(req, errors);
    }
    pl_req_reply_header(req, "Idempotent-Replayed", "true");
    return pl_reply_text(req, row->status, row->content_type, row->body, row->len);
}

/* Arena cleanup: a claim its request never settled (the client left, a path without an answer)
 * is let go, so a retry need not wait for it to go stale. */
static void
claim_cleanup(void *p)
{
    struct gw_idem_key *k = p;
    struct pl_err err = PL_ERR_INIT;
    PGconn *db;

    if (k->settled)
        return;
    if ((db = pl_db_conn(k->db, &err)) == NULL || gw_db_idem_release(db, k, &err) < 0)
        pl_log_warn("Idempotency-Key: claim left to expire: %s", err.msg);
}

/*
 * Validates the key and claims it with claim_hash.  Returns the claim; or NULL with *answered
 * (a bad key, no database) or, when the key is taken, NULL with *row filled.
 */
static struct gw_idem_key *
claim(struct pl_req *req, const char *key_id, const char *claim_hash, struct gw_idem_row *row,
      bool *answered, enum MHD_Result *rc)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *key = pl_req_header(req, "Idempotency-Key");
    struct pl_err err = PL_ERR_INIT;
    struct gw_idem_key *k;
    PGconn *db;

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
    *k = (struct gw_idem_key){ pl_arena_strdup(pl_req_arena(req), key_id), key, "", ctx->db,
                               false };
    snprintf(k->hash, sizeof(k->hash), "%s", claim_hash);
    /* a claim older than two tries of the longest call is one whose gateway went away */
    if (gw_db_idem_claim(db, pl_req_arena(req), k, 2 * ctx->cfg->upstream_timeout_ms / 1000 + 10,
                         row, &err) < 0) {
        *rc = pl_reply_err(req, &err);
        return NULL;
    }
    *answered = false;
    if (!row->claimed)
        return NULL;
    pl_arena_defer(pl_req_arena(req), claim_cleanup, k);
    return k;
}

struct gw_idem_key *
gw_idem_begin(struct pl_req *req, const char *key_id, bool *answered, enum MHD_Result *rc)
{
    struct gw_idem_row row;
    struct gw_idem_key *k;
    char hash[65];

    *answered = false;
    if (pl_req_header(req, "Idempotency-Key") == NULL)
        return NULL;
    request_hash(req, hash);
    if ((k = claim(req, key_id, hash, &row, answered, rc)) != NULL || *answered)
        return k;
    *answered = true;
    *rc = row.done ? gw_idem_replay(req, &row, hash) : running(req);
    return NULL;
}

struct gw_idem_key *
gw_idem_begin_stream(struct pl_req *req, const char *key_id, struct gw_idem_row *stored,
                     bool *answered, enum MHD_Result *rc)
{
    char token[PL_UUID_STRLEN + 8];
    struct gw_idem_key *k;

    *answered = false;
    stored->done = false;
    if (pl_req_header(req, "Idempotency-Key") == NULL)
        return NULL;
    memcpy(token, "stream:", 7);
    pl_uuid_v7(token + 7); /* this claim's own mark until the body's hash is known */
    if ((k = claim(req, key_id, token, stored, answered, rc)) != NULL || *answered)
        return k;
    if (!stored->done) {
        *answered = true;
        *rc = running(req);
    }
    return NULL;
}

void
gw_idem_finish(struct pl_req *req, struct gw_idem_key *k, const char *hash, unsigned status,
               const char *ctype, const char *body, size_t len)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    bool keep = status > 0 && status < 500 && body != NULL && strlen(body) == len;
    PGconn *db = pl_db_conn(ctx->db, &err);

    k->settled = true;
    if (db == NULL) {
        pl_log_warn("Idempotency-Key: claim left to expire: %s", err.msg);
        return;
    }
    if (keep && gw_db_idem_store(db, k, hash ? hash : k->hash, status,
                                 ctype ? ctype : "application/json", body, &err) >= 0)
        return;
    if (keep)
        pl_log_warn("Idempotency-Key: the answer could not be kept: %s", err.msg);
    if (gw_db_idem_release(db, k, &err) < 0)
        pl_log_warn("Idempotency-Key: claim left to expire: %s", err.msg);
}
