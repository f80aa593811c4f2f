/*
 * media.c - HTTP handlers of the media resource (SPEC 4.4): the streamed upload, metadata, signed
 * download URLs and the content itself.
 *
 * Upload: the route streams (PL_ROUTE_STREAM), so the handler runs when the headers are in.  It
 * refuses a body that is not multipart/form-data (415) or declares more than the limit (413), else
 * sets up libmicrohttpd's post processor and accepts the body.  Each chunk goes through the post
 * processor; the "file" part's bytes go to the storage sink (sink.c: limit, temporary file, hash,
 * sniffing), so memory stays flat whatever the size.  At the end: validate the other fields, and
 * let the sink sniff, scan, store and insert the row and its event; reply 201.
 *
 * Content: opened with the service token or a valid unexpired signed URL (HMAC-SHA256 of
 * "{id}.{expires}", compared in constant time).  The bytes are served from the file descriptor
 * (sendfile), with ETag = sha256, If-None-Match, a single Range, and headers that keep a browser
 * from running what it downloads (nosniff, attachment except images, audio and video).
 */
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/signed_url.h"
#include "parley/uuid.h"
#include "sniff.h"
#include "svc.h"

/* Room for the multipart framing and the small fields around a file of the maximum size. */
#define FORM_SLACK (64u * 1024u)
#define PP_BUFFER (16u * 1024u)
#define FIELD_MAX 255

/* A small form field, accumulated across post processor calls. */
struct field {
    char value[FIELD_MAX + 1];
    size_t len;
    bool seen, too_long;
};

struct upload {
    const struct svc_ctx *ctx;
    struct MHD_PostProcessor *pp;
    struct media_sink *sink; /* the file part's bytes */
    bool have_file, two_files;
    char filename[MEDIA_FILENAME_MAX + 1];
    struct field conversation_id, owner_service;
    struct pl_err err; /* set when failed */
    bool failed;
};

/* ---- shared helpers ---- */

static enum MHD_Result
reply_not_found(struct pl_req *req)
{
    return pl_reply_error(req, 404, "Media not found", "no media with that id");
}

static void
pp_free(void *p)
{
    struct upload *u = p;

    if (u->pp != NULL)
        MHD_destroy_post_processor(u->pp);
    u->pp = NULL;
}

/* ---- upload: streaming ---- */

static int
upload_fail(struct upload *u, int status, const char *code, const char *msg)
{
    u->failed = true;
    return pl_err_set(&u->err, status, code, "%s", msg);
}

/* Appends a piece of a small field; longer than FIELD_MAX is remembered, not stored. */
static void
field_add(struct field *f, const char *data, size_t n)
{
    f->seen = true;
    if (n > FIELD_MAX - f->len) {
        f->too_long = true;
        return;
    }
    memcpy(f->value + f->len, data, n);
    f->len += n;
    f->value[f->len] = '\0';
}

/* The bytes of the file part go to the storage sink; a second file part is refused at the end. */
static int
file_data(struct upload *u, const char *filename, uint64_t off, const char *data, size_t n)
{
    if (!u->have_file) {
        u->have_file = true;
        media_filename_sanitize(filename, u->filename);
    } else if (off == 0 && media_sink_size(u->sink) > 0) {
        u->two_files = true;
        return PL_OK;
    }
    if (u->two_files || n == 0)
        return PL_OK;
    if (media_sink_write(u->sink, data, n, &u->err) != PL_OK) {
        u->failed = true;
        return PL_ERR;
    }
    return PL_OK;
}

static enum MHD_Result
on_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
        const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
        size_t size)
{
    struct upload *u = cls;

    (void)kind, (void)content_type, (void)transfer_encoding;
    if (u->failed)
        return MHD_NO;
    if (strcmp(key, "file") == 0)
        return file_data(u, filename, off, data, size) == PL_OK ? MHD_YES : MHD_NO;
    if (strcmp(key, "conversation_id") == 0)
        field_add(&u->conversation_id, data, size);
    else if (strcmp(key, "owner_service") == 0)
        field_add(&u->owner_service, data, size);
    return MHD_YES; /* other fields are ignored */
}

static int
on_chunk(struct pl_req *req, void *arg, const char *data, size_t n)
{
    struct upload *u = arg;

    (void)req;
    if (MHD_post_process(u->pp, data, n) == MHD_YES)
        return PL_OK;
    if (!u->failed)
        upload_fail(u, 400, "invalid_multipart", "the multipart body could not be parsed");
    return PL_ERR;
}

/* ---- upload: the end ---- */

/* Checks the form fields; fills in's fields or returns a new errors object. */
static json_t *
check_fields(struct upload *u, struct media_input *in)
{
    json_t *errors = NULL;

    if (!u->have_file)
        pl_json_error_add(&errors, "file", "The file field is required.");
    else if (u->two_files)
        pl_json_error_add(&errors, "file", "Only one file may be uploaded at a time.");
    else if (media_sink_size(u->sink) == 0)
        pl_json_error_add(&errors, "file", "The file must not be empty.");
    if (u->conversation_id.seen && u->conversation_id.len > 0 &&
        (u->conversation_id.too_long || !pl_uuid_valid(u->conversation_id.value)))
        pl_json_error_add(&errors, "conversation_id", "must be a UUID");
    if (u->owner_service.too_long || (u->owner_service.len > 64) ||
        !pl_utf8_valid(u->owner_service.value, u->owner_service.len))
        pl_json_error_add(&errors, "owner_service", "must be a UTF-8 string of at most 64 bytes");
    in->conversation_id = u->conversation_id.len > 0 ? u->conversation_id.value : NULL;
    in->owner_service = u->owner_service.len > 0 ? u->owner_service.value : NULL;
    in->filename = u->filename[0] != '\0' ? u->filename : NULL;
    return errors;
}

static enum MHD_Result
upload_end(struct pl_req *req, void *arg)
{
    struct upload *u = arg;
    struct media_input in = { 0 };
    const char *json = NULL;
    json_t *errors;
    enum MHD_Result rc;
    bool complete;
    PGconn *db;

    complete = MHD_destroy_post_processor(u->pp) == MHD_YES;
    u->pp = NULL;
    if (!complete && !u->failed)
        upload_fail(u, 400, "invalid_multipart", "the multipart body is incomplete");
    if (u->failed)
        return pl_reply_err(req, &u->err);
    if ((errors = check_fields(u, &in)) != NULL)
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    if (media_sink_finish(u->sink, db, pl_req_arena(req), &in, NULL, &json, &u->err) != PL_OK)
        return pl_reply_err(req, &u->err);
    return pl_reply_json_text(req, 201, json, strlen(json));
}

/* Declared Content-Length, or 0 when none (chunked). */
static uint64_t
declared_length(const struct pl_req *req)
{
    const char *cl = pl_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

    return cl != NULL ? strtoull(cl, NULL, 10) : 0;
}

enum MHD_Result
media_upload(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *ct = pl_req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    struct pl_arena *a = pl_req_arena(req);
    struct upload *u;

    if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return pl_reply_error(req, 415, "unsupported_media_type",
                              "upload must be multipart/form-data with a \"file\" part");
    u = pl_arena_alloc(a, sizeof(*u));
    memset(u, 0, sizeof(*u));
    u->ctx = ctx;
    u->err = (struct pl_err)PL_ERR_INIT;
    if (declared_length(req) > ctx->cfg->max_bytes + FORM_SLACK) {
        media_too_large(ctx->cfg, &u->err);
        return pl_reply_err(req, &u->err);
    }
    if ((u->sink = media_sink_new(a, ctx->cfg, &u->err)) == NULL)
        return pl_reply_err(req, &u->err);
    u->pp = MHD_create_post_processor(pl_req_connection(req), PP_BUFFER, on_part, u);
    if (u->pp == NULL)
        return pl_reply_error(req, 400, "invalid_multipart", "multipart body without a boundary");
    pl_arena_defer(a, pp_free, u);
    return pl_req_stream(req, ctx->cfg->max_bytes + FORM_SLACK, on_chunk, upload_end, u);
}

/* ---- metadata and download URL ---- */

enum MHD_Result
media_get(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return reply_not_found(req);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = media_db_media_get(db, pl_req_arena(req), id, &json, &err);
    if (r == PL_DB_NONE)
        return reply_not_found(req);
    if (r != PL_DB_ROW)
        return pl_reply_err(req, &err);
    return pl_reply_json_text(req, 200, json, strlen(json));
}

enum MHD_Result
media_download(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const struct media_cfg *cfg = ctx->cfg;
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL, *url;
    long long expires = (long long)time(NULL) + cfg->url_ttl;
    char sig[PL_SIGNED_URL_HEX + 1];
    enum MHD_Result rc;
    json_t *out;
    PGconn *db;
    int r;

    if (!pl_uuid_valid(id))
        return reply_not_found(req);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = media_db_media_get(db, pl_req_arena(req), id, &json, &err);
    if (r == PL_DB_NONE)
        return reply_not_found(req);
    if (r != PL_DB_ROW)
        return pl_reply_err(req, &err);
    pl_signed_url_sign(cfg->url_secret, id, expires, sig);
    url = pl_arena_printf(pl_req_arena(req), "%s/api/v1/media/%s/content?expires=%lld&signature=%s",
                          cfg->c.public_url, id, expires, sig);
    out = json_pack("{s:s, s:I}", "download_url", url, "expires_in_seconds",
                    (json_int_t)cfg->url_ttl);
    return pl_reply_json(req, 200, out);
}

/* ---- content ---- */

/* Constant-time string equality: compares SHA-256 digests, so lengths leak nothing. */
static bool
secret_equal(const char *given, const char *want)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];

    if (given == NULL || want == NULL)
        return false;
    SHA256((const unsigned char *)given, strlen(given), a);
    SHA256((const unsigned char *)want, strlen(want), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

/* A decimal number of 1..18 digits with nothing else; -1 otherwise. */
static long long
parse_uint(const char *s, const char **end)
{
    long long v = 0;
    int n = 0;

    while (s[n] >= '0' && s[n] <= '9' && n < 18)
        v = v * 10 + (s[n++] - '0');
    *end = s + n;
    return n > 0 && !(s[n] >= '0' && s[n] <= '9') ? v : -1;
}

/*
 * The service token, or else a signature over this id and an expiry still in the future.  Returns
 * true, or false with the 401 or 403 queued in *rc.
 */
static bool
authorized(struct pl_req *req, const char *id, enum MHD_Result *rc)
{
    const struct media_cfg *cfg = ((const struct svc_ctx *)pl_req_ctx(req))->cfg;
    const char *exp = pl_req_query(req, "expires"), *sig = pl_req_query(req, "signature");

    if (secret_equal(pl_req_header(req, "X-Service-Token"), cfg->c.service_token))
        return true;
    if (exp == NULL && sig == NULL) {
        *rc = pl_reply_error(req, 401, "Unauthorized", "Valid authentication required.");
        return false;
    }
    if (pl_signed_url_valid(cfg->url_secret, id, exp, sig, (long long)time(NULL)))
        return true;
    *rc = pl_reply_error(req, 403, "forbidden", "the download link is invalid or has expired");
    return false;
}

/* True when an If-None-Match or If-Range list names etag (weak comparison; "*" matches). */
static bool
etag_listed(const char *list, const char *etag)
{
    size_t n = strlen(etag);

    for (const char *p = list; p != NULL && *p != '\0';) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
        p = strchr(p, ',');
    }
    return false;
}

enum range_rc { RANGE_ALL, RANGE_PART, RANGE_UNSATISFIABLE };

/*
 * One "bytes=" range against size: RANGE_PART with *off and *len, RANGE_UNSATISFIABLE (416), or
 * RANGE_ALL to serve everything (no header, another unit, several ranges, bad syntax: RFC 9110
 * lets a server ignore a Range it does not take).
 */
static enum range_rc
parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    const char *p, *end;
    long long a, b = -1;

    if (h == NULL || strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return RANGE_ALL;
    p = h + 6;
    if (*p == '-') { /* the last N bytes */
        if ((b = parse_uint(p + 1, &end)) < 0 || *end != '\0')
            return RANGE_ALL;
        if (b == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        *off = (uint64_t)b >= size ? 0 : size - (uint64_t)b;
        *len = size - *off;
        return RANGE_PART;
    }
    if ((a = parse_uint(p, &end)) < 0 || *end != '-')
        return RANGE_ALL;
    if (end[1] != '\0' && ((b = parse_uint(end + 1, &end)) < a || *end != '\0'))
        return RANGE_ALL;
    if ((uint64_t)a >= size)
        return RANGE_UNSATISFIABLE;
    *off = (uint64_t)a;
    *len = (b < 0 || (uint64_t)b >= size ? size - 1 : (uint64_t)b) - *off + 1;
    return RANGE_PART;
}

/* Images, audio and video may show inline; anything else downloads, so a browser never runs it. */
static void
add_content_headers(struct pl_req *req, const struct media_file *f, const char *etag)
{
    bool show = strncmp(f->content_type, "image/", 6) == 0 ||
                strncmp(f->content_type, "audio/", 6) == 0 ||
                strncmp(f->content_type, "video/", 6) == 0;
    struct pl_arena *a = pl_req_arena(req);

    pl_req_reply_header(req, MHD_HTTP_HEADER_ETAG, etag);
    pl_req_reply_header(req, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    pl_req_reply_header(req, "X-Content-Type-Options", "nosniff");
    pl_req_reply_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=3600");
    pl_req_reply_header(req, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
                        f->filename == NULL ? (show ? "inline" : "attachment")
                                            : pl_arena_printf(a, "%s; filename=\"%s\"",
                                                              show ? "inline" : "attachment",
                                                              f->filename));
}

/* Queues the bytes [off, off + len) of the stored file (sendfile; MHD closes the fd). */
static enum MHD_Result
reply_file(struct pl_req *req, const struct media_file *f, unsigned status, uint64_t off,
           uint64_t len)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_err err = PL_ERR_INIT;
    struct MHD_Response *resp;
    struct stat st;
    int fd = media_store_open(ctx->cfg->dir, f->storage_key, &err);

    if (fd < 0)
        return pl_reply_err(req, &err);
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != f->size) { /* never a short body */
        pl_log_error("stored file \"%s\" does not have its %" PRIu64 " bytes", f->storage_key,
                     f->size);
        close(fd);
        return pl_reply_error(req, 500, "internal", "internal error");
    }
    resp = MHD_create_response_from_fd_at_offset64(len, fd, off);
    if (resp == NULL) {
        close(fd);
        return pl_reply_error(req, 500, "internal", "could not create the response");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->content_type);
    if (status == 206)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE,
                                pl_arena_printf(pl_req_arena(req),
                                                "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off,
                                                off + len - 1, f->size));
    return pl_reply_response(req, status, resp, (size_t)len);
}

/* 304 for a client that has this content already. */
static enum MHD_Result
reply_not_modified(struct pl_req *req)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

    return resp != NULL ? pl_reply_response(req, 304, resp, 0) : MHD_NO;
}

enum MHD_Result
media_content(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *etag, *if_range;
    struct media_file f;
    uint64_t off = 0, len = 0;
    enum range_rc range;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!authorized(req, id, &rc))
        return rc;
    if (!pl_uuid_valid(id))
        return reply_not_found(req);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    if ((r = media_db_media_file(db, pl_req_arena(req), id, &f, &err)) != PL_DB_ROW)
        return r == PL_DB_NONE ? reply_not_found(req) : pl_reply_err(req, &err);
    etag = pl_arena_printf(pl_req_arena(req), "\"%s\"", f.sha256);
    if (etag_listed(pl_req_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        pl_req_reply_header(req, MHD_HTTP_HEADER_ETAG, etag);
        return reply_not_modified(req);
    }
    if_range = pl_req_header(req, MHD_HTTP_HEADER_IF_RANGE);
    range = if_range != NULL && strcmp(if_range, etag) != 0
                ? RANGE_ALL
                : parse_range(pl_req_header(req, MHD_HTTP_HEADER_RANGE), f.size, &off, &len);
    if (range == RANGE_UNSATISFIABLE) {
        pl_req_reply_header(req, MHD_HTTP_HEADER_CONTENT_RANGE,
                            pl_arena_printf(pl_req_arena(req), "bytes */%" PRIu64, f.size));
        return pl_reply_error(req, 416, "range_not_satisfiable",
                              "the range is outside the file's %" PRIu64 " bytes", f.size);
    }
    add_content_headers(req, &f, etag);
    return range == RANGE_PART ? reply_file(req, &f, 206, off, len)
                               : reply_file(req, &f, 200, 0, f.size);
}
