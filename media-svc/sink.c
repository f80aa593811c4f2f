/*
 * sink.c - the one way bytes become stored media: an upload's file part and a file fetched from
 * a channel provider both go through here.
 *
 * While the bytes stream in, each piece is checked against PARLEY_MEDIA_MAX_BYTES, gathered into
 * a write buffer and written to a temporary file, hashed (SHA-256), checked as text, and the first
 * MEDIA_SNIFF_HEAD bytes kept for sniffing, so memory stays flat whatever the size.  Over the
 * limit the partial file is removed at once.  At the end: sniff the type (415), scan with clamd
 * when configured (422 infected, 503 scanner down), compare with a checksum the provider
 * announced (502), store content-addressed, and insert the row with its media.uploaded event.
 * Everything lives in the request's arena; the temporary file and the hash context are released
 * with it whatever happens, so an aborted request leaves nothing behind.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/hex.h"
#include "sniff.h"
#include "svc.h"

/* Writes are gathered to this size: a tenth of the syscalls of writing each network read. */
#define WRITE_BUFFER (256u * 1024u)

struct media_sink {
    const struct media_cfg *cfg;
    struct media_tmp tmp;
    EVP_MD_CTX *sha;
    unsigned char *head; /* first MEDIA_SNIFF_HEAD bytes, for sniffing */
    size_t head_len;
    char *wbuf; /* bytes not yet written */
    size_t wlen;
    struct media_text text;
    uint64_t size;
    bool failed; /* the partial file is gone; nothing more is accepted */
};

static void
sha_free(void *p)
{
    EVP_MD_CTX_free(p);
}

int
media_too_large(const struct media_cfg *cfg, struct pl_err *err)
{
    return pl_err_set(err, 413, "body_too_large", "file exceeds the limit of %zu bytes (%.1f MiB)",
                      cfg->max_bytes, (double)cfg->max_bytes / (1 << 20));
}

struct media_sink *
media_sink_new(struct pl_arena *a, const struct media_cfg *cfg, struct pl_err *err)
{
    struct media_sink *s = pl_arena_alloc(a, sizeof(*s));

    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->tmp = (struct media_tmp)MEDIA_TMP_INIT;
    s->text = (struct media_text)MEDIA_TEXT_INIT;
    s->head = pl_arena_alloc(a, MEDIA_SNIFF_HEAD);
    s->wbuf = pl_arena_alloc(a, WRITE_BUFFER);
    s->sha = EVP_MD_CTX_new();
    PL_ASSERT(s->sha != NULL); /* OpenSSL out of memory: abort like any small allocation */
    pl_arena_defer(a, sha_free, s->sha);
    if (EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1) {
        pl_err_set(err, 500, "internal", "could not start hashing");
        return NULL;
    }
    pl_arena_defer(a, media_store_tmp_discard, &s->tmp); /* also when the client goes away */
    if (media_store_tmp_open(cfg->dir, &s->tmp, err) != PL_OK)
        return NULL;
    return s;
}

/* Marks the sink failed: the partial file never outlives the failure. */
static int
sink_failed(struct media_sink *s)
{
    s->failed = true;
    media_store_tmp_discard(&s->tmp);
    return PL_ERR;
}

/* Writes out the gathered bytes. */
static int
flush(struct media_sink *s, struct pl_err *err)
{
    if (s->wlen > 0 && media_store_tmp_write(&s->tmp, s->wbuf, s->wlen, err) != PL_OK)
        return sink_failed(s);
    s->wlen = 0;
    return PL_OK;
}

int
media_sink_write(struct media_sink *s, const void *p, size_t n, struct pl_err *err)
{
    if (s->failed)
        return pl_err_set(err, 500, "internal", "write to a failed media sink");
    if (n > s->cfg->max_bytes - s->size) {
        media_too_large(s->cfg, err);
        return sink_failed(s);
    }
    if (s->wlen + n > WRITE_BUFFER && flush(s, err) != PL_OK)
        return PL_ERR;
    if (n >= WRITE_BUFFER) { /* a big piece goes straight to the file */
        if (media_store_tmp_write(&s->tmp, p, n, err) != PL_OK)
            return sink_failed(s);
    } else if (n > 0) {
        memcpy(s->wbuf + s->wlen, p, n);
        s->wlen += n;
    }
    EVP_DigestUpdate(s->sha, p, n);
    media_text_feed(&s->text, p, n);
    if (s->head_len < MEDIA_SNIFF_HEAD) {
        size_t k = n < MEDIA_SNIFF_HEAD - s->head_len ? n : MEDIA_SNIFF_HEAD - s->head_len;

        memcpy(s->head + s->head_len, p, k);
        s->head_len += k;
    }
    s->size += n;
    return PL_OK;
}

uint64_t
media_sink_size(const struct media_sink *s)
{
    return s->size;
}

/* Sniffs the type into in; 415 when it is not on the allowlist. */
static int
sniff(const struct media_sink *s, struct media_input *in, struct pl_err *err)
{
    struct media_type t;

    media_sniff(s->head, s->head_len, media_text_ok(&s->text), &t);
    if (t.kind == MEDIA_REFUSED)
        return pl_err_set(err, 415, "unsupported_media_type",
                          "file type not allowed (%s content); allowed: images, audio, video, "
                          "PDF, office documents, plain text", t.refusal);
    in->content_type = t.mime;
    in->width = t.width;
    in->height = t.height;
    return PL_OK;
}

/*
 * Scans the file with clamd when PARLEY_CLAMD_SOCKET is set: 422 on the "file" field when
 * infected, 503 when the scanner is down.  Sets in->scanned only when a scan really happened.
 */
static int
scan(struct media_sink *s, struct media_input *in, struct pl_err *err)
{
    const char *sock = s->cfg->clamd;
    char sig[128];
    bool infected = false;

    in->scanned = false;
    if (sock == NULL || sock[0] == '\0')
        return PL_OK;
    if (media_scan_fd(sock, s->tmp.fd, s->size, sig, sizeof(sig), &infected, err) != PL_OK)
        return PL_ERR;
    if (infected) {
        pl_log_warn("refused an infected file: %s", sig);
        pl_err_set(err, 422, "validation_failed", "The file is infected (%s).", sig);
        snprintf(err->field, sizeof(err->field), "file");
        return PL_ERR;
    }
    in->scanned = true;
    return PL_OK;
}

int
media_sink_finish(struct media_sink *s, PGconn *db, struct pl_arena *a, struct media_input *in,
                  const char *expect_sha256, const char **json, struct pl_err *err)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char sha[MEDIA_SHA256_HEX + 1], key[MEDIA_KEY_LEN + 1];
    bool existed;

    PL_ASSERT(!s->failed && s->size > 0);
    if (sniff(s, in, err) != PL_OK || flush(s, err) != PL_OK || scan(s, in, err) != PL_OK)
        return PL_ERR;
    EVP_DigestFinal_ex(s->sha, digest, NULL);
    pl_hex(digest, sizeof(digest), sha);
    if (expect_sha256 != NULL && strcasecmp(expect_sha256, sha) != 0) {
        pl_log_warn("fetched file has sha256 %s, the provider announced %s", sha, expect_sha256);
        return pl_err_set(err, 502, "provider_error",
                          "the provider's file does not match its announced checksum");
    }
    if (media_store_commit(s->cfg->dir, &s->tmp, sha, key, &existed, err) != PL_OK)
        return PL_ERR;
    in->size = s->size;
    in->sha256 = pl_arena_strdup(a, sha);
    in->storage_key = pl_arena_strdup(a, key);
    if (media_db_media_insert(db, a, in, json, err) != PL_DB_ROW)
        return PL_ERR;
    pl_log_info("stored media %s: %" PRIu64 " bytes, %s%s", sha, s->size, in->content_type,
                existed ? " (content already stored)" : "");
    return PL_OK;
}
