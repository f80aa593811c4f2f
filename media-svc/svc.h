/*
 * svc.h - media-svc private declarations: configuration, context, handlers, storage, SQL functions.
 */
#ifndef MEDIA_SVC_H
#define MEDIA_SVC_H

#include <libpq-fe.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/config.h"
#include "parley/http.h"

struct pl_arena;
struct pl_db;
struct pl_err;

#define MEDIA_SERVICE "media-svc"
#define MEDIA_SHA256_HEX 64
/* "ab/cd/<sha256 hex>": two levels of fan-out, 65,536 directories of a few files each. */
#define MEDIA_KEY_LEN (6 + MEDIA_SHA256_HEX)

struct media_cfg {
    struct pl_cfg_common c;
    const char *dir;        /* PARLEY_MEDIA_DIR: content-addressed storage root */
    size_t max_bytes;       /* PARLEY_MEDIA_MAX_BYTES: largest file accepted */
    const char *url_secret; /* PARLEY_MEDIA_URL_SECRET: HMAC key of download URLs */
    long url_ttl;           /* PARLEY_MEDIA_URL_TTL: seconds a download URL lives */
    const char *clamd;      /* PARLEY_CLAMD_SOCKET: clamd's Unix socket; "" = no scanning */
    const char *whatsapp_base;  /* PARLEY_WHATSAPP_API_BASE: Graph API base (media lookups) */
    const char *whatsapp_token; /* PARLEY_WHATSAPP_ACCESS_TOKEN: bearer token of the Graph API */
    const char *telegram_base;  /* PARLEY_TELEGRAM_API_BASE: Bot API base, for getFile */
    const char *telegram_token; /* PARLEY_TELEGRAM_BOT_TOKEN: "<bot id>:<secret>" */
    long fetch_timeout_ms;      /* PARLEY_MEDIA_FETCH_TIMEOUT_MS: one whole provider fetch */
};

struct svc_ctx {
    const struct media_cfg *cfg;
};

/* A new media row.  Strings borrowed; width/height -1 and NULL strings are stored as null. */
struct media_input {
    const char *owner_service;
    const char *conversation_id;
    const char *filename;
    const char *content_type;
    uint64_t size;
    const char *sha256;
    long width, height;
    const char *storage_key;
    bool scanned;
};

/* What serving a media's bytes needs (strings in the request arena). */
struct media_file {
    const char *content_type;
    const char *filename; /* NULL when none */
    const char *sha256;
    const char *storage_key;
    uint64_t size;
};

/* A temporary file being written under <dir>/tmp; fd -1 when none is open. */
struct media_tmp {
    int fd;
    char path[PATH_MAX];
};

#define MEDIA_TMP_INIT { -1, "" }

extern const struct pl_route media_routes[];

enum MHD_Result media_upload(struct pl_req *req);
enum MHD_Result media_get(struct pl_req *req);
enum MHD_Result media_download(struct pl_req *req);
enum MHD_Result media_content(struct pl_req *req);
enum MHD_Result media_fetch(struct pl_req *req);

/*
 * The storage sink (sink.c): the one path from streamed bytes to a stored media row, shared by the
 * upload and the provider fetch.  A sink lives in a request's arena; its temporary file and hash
 * are released with the arena whatever happens.  Not thread-safe (one request's thread).
 */
struct media_sink;
/* Opens a sink on a new temporary file; NULL with err (500) when storage fails. */
struct media_sink *media_sink_new(struct pl_arena *a, const struct media_cfg *cfg,
                                  struct pl_err *err);
/*
 * Appends n bytes (limit, hash, text check, sniffing head, buffered write).  PL_OK, or PL_ERR with
 * err (413 over PARLEY_MEDIA_MAX_BYTES, 500 storage) once the partial file is removed; every
 * later write then fails too.
 */
int media_sink_write(struct media_sink *s, const void *p, size_t n, struct pl_err *err);
/* Bytes accepted so far. */
uint64_t media_sink_size(const struct media_sink *s);
/*
 * Ends a sink that holds at least one byte: sniffs the type (415), scans (422 infected, 503),
 * compares with expect_sha256 (hex) when not NULL (502 provider_error on a mismatch), stores the
 * file content-addressed and inserts the row and its media.uploaded event.  The caller fills in's
 * owner_service, conversation_id and filename; the rest is filled here (strings in a).  PL_OK
 * with *json the media as the API returns it, or PL_ERR with err.
 */
int media_sink_finish(struct media_sink *s, PGconn *db, struct pl_arena *a, struct media_input *in,
                      const char *expect_sha256, const char **json, struct pl_err *err);
/* Fills err with the 413 of a file over PARLEY_MEDIA_MAX_BYTES and returns PL_ERR. */
int media_too_large(const struct media_cfg *cfg, struct pl_err *err);

/*
 * Channel providers (provider.c): fetching a file a WhatsApp media id or a Telegram file_id names.
 * Every failure is an err the handler answers with: 404 "Media not found at provider" when the
 * provider says the id is unknown or expired, 413 over the limit, 502 "provider_error" when it
 * fails or answers garbage, 504 "provider_timeout" past PARLEY_MEDIA_FETCH_TIMEOUT_MS (for the
 * whole fetch).  Tokens never appear in logs or errors.  Thread-safe; blocks the calling thread.
 */
struct media_remote;
/*
 * Asks the provider ("whatsapp" or "telegram") where the file id is (an id media_provider_id_ok()
 * accepts), and checks the size it announces.  Returns the remote file (in a, its HTTP handle
 * released with a) or NULL with err.
 */
struct media_remote *media_remote_resolve(struct pl_arena *a, const struct media_cfg *cfg,
                                          const char *provider, const char *id,
                                          struct pl_err *err);
/* Streams the remote file into sink; PL_OK with at least one byte written, or PL_ERR with err. */
int media_remote_download(struct media_remote *r, struct media_sink *sink, struct pl_err *err);
/* The SHA-256 (lowercase hex) the provider announced for the file, or NULL. */
const char *media_remote_sha256(const struct media_remote *r);

/*
 * Storage (storage.c).  Files live at <dir>/<storage key>; uploads are written to <dir>/tmp
 * first, fsynced and renamed into place, so a reader never sees a partial file.
 */
/* Creates <dir> and <dir>/tmp and removes temporary files older than a day.  PL_OK or PL_ERR. */
int media_store_init(const char *dir, struct pl_err *err);
/* Opens a new temporary file. */
int media_store_tmp_open(const char *dir, struct media_tmp *t, struct pl_err *err);
/* Appends n bytes (all of them, retrying short writes). */
int media_store_tmp_write(struct media_tmp *t, const void *p, size_t n, struct pl_err *err);
/* Closes and removes the temporary file, if any; idempotent, so usable as an arena cleanup. */
void media_store_tmp_discard(void *t);
/*
 * Makes the temporary file the content of sha256 (lowercase hex): fsync, then rename to its
 * storage key (written into key[MEDIA_KEY_LEN + 1]), or drop it when that content is stored
 * already.  *existed tells which.  The temporary file is gone afterwards either way.
 */
int media_store_commit(const char *dir, struct media_tmp *t, const char *sha256, char *key,
                       bool *existed, struct pl_err *err);
/* Opens the stored file of key for reading; -1 with err filled when it is missing. */
int media_store_open(const char *dir, const char *key, struct pl_err *err);

/*
 * Virus scan (scan.c): streams size bytes of fd (from offset 0) to clamd at socket_path.  Returns
 * PL_OK with *infected, and the signature name in signature[cap] when infected; or PL_ERR with err
 * 503 "scanner_unavailable" when clamd cannot be reached or answers nonsense.
 */
int media_scan_fd(const char *socket_path, int fd, uint64_t size, char *signature, size_t cap,
                  bool *infected, struct pl_err *err);

/*
 * SQL (media_db.c).  Each returns PL_DB_ROW, PL_DB_NONE or a failure code with err filled; JSON
 * text results are copied into the arena.  The insert writes media.uploaded to the outbox in the
 * same statement, with the same media_json() the API returns.
 */
int media_db_media_insert(PGconn *db, struct pl_arena *a, const struct media_input *in,
                          const char **json, struct pl_err *err);
int media_db_media_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                       struct pl_err *err);
int media_db_media_file(PGconn *db, struct pl_arena *a, const char *id, struct media_file *out,
                        struct pl_err *err);

#endif
