/*
 * fetch.c - POST /api/media/fetch: inbound-svc's way to turn a channel's media (a WhatsApp media
 * id or a Telegram file_id) into a stored media, exactly as if it had been uploaded.
 *
 * Body: {"provider": "whatsapp"|"telegram", "provider_media_id", "conversation_id"?,
 * "filename"?, "owner_service"? (default "inbound-svc")}.  The provider is asked where the file
 * is (provider.c), its bytes stream into the same storage sink an upload uses (sink.c: limit,
 * hash, sniffing, scan, content-addressed store, row and media.uploaded event), and the answer is
 * 201 with the media as GET /api/media/{id} returns it.  Failures: 422 bad body, 404 "Media not
 * found at provider" (permanent), 413, 415, and 502/504 when the provider fails or is slow (the
 * caller retries those).  A retry after a lost answer stores a second row for the same content,
 * as a second upload would; the bytes are stored once.
 */
#include <string.h>

#include "parley/arena.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "provider.h"
#include "sniff.h"
#include "svc.h"

#define DEFAULT_OWNER "inbound-svc"
/* A provider's file name is cut to MEDIA_FILENAME_MAX by the sanitiser; longer is not a name. */
#define FILENAME_IN_MAX 1024

static const struct pl_field fetch_fields[] = {
    { "provider", PL_F_STRING, true, false, 16, 1 },
    { "provider_media_id", PL_F_STRING, true, false, MEDIA_PROVIDER_ID_MAX, 1 },
    { "conversation_id", PL_F_UUID, false, true, 0, 0 },
    { "filename", PL_F_STRING, false, true, FILENAME_IN_MAX, 0 },
    { "owner_service", PL_F_STRING, false, true, 64, 0 },
    { NULL, 0, false, false, 0, 0 },
};

/* A string member, or NULL when absent or null (the shape is checked already). */
static const char *
str(const json_t *body, const char *name)
{
    return json_string_value(json_object_get(body, name));
}

/*
 * Checks the body; fills provider, id and in's owner_service, conversation_id and filename (the
 * sanitised name in a).  Returns NULL, or a new errors object for the 422.
 */
static json_t *
check_body(const json_t *body, struct pl_arena *a, const char **provider, const char **id,
           struct media_input *in)
{
    char *name = pl_arena_alloc(a, MEDIA_FILENAME_MAX + 1);
    json_t *errors = NULL;

    if (!pl_json_check(body, fetch_fields, &errors))
        return errors;
    *provider = str(body, "provider");
    *id = str(body, "provider_media_id");
    if (strcmp(*provider, "whatsapp") != 0 && strcmp(*provider, "telegram") != 0)
        pl_json_error_add(&errors, "provider", "must be \"whatsapp\" or \"telegram\"");
    if (!media_provider_id_ok(*id))
        pl_json_error_add(&errors, "provider_media_id",
                          "must be letters, digits, '-', '.', '_' or '~', starting with a letter "
                          "or digit");
    in->owner_service = str(body, "owner_service") != NULL ? str(body, "owner_service")
                                                           : DEFAULT_OWNER;
    if (in->owner_service[0] == '\0')
        in->owner_service = NULL; /* as an upload without the field */
    in->conversation_id = str(body, "conversation_id");
    in->filename = media_filename_sanitize(str(body, "filename"), name) > 0 ? name : NULL;
    return errors;
}

enum MHD_Result
media_fetch(struct pl_req *req)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    struct pl_arena *a = pl_req_arena(req);
    struct pl_err err = PL_ERR_INIT;
    struct media_input in = { 0 };
    const char *provider = NULL, *id = NULL, *json = NULL;
    struct media_remote *remote;
    struct media_sink *sink;
    enum MHD_Result rc;
    json_t *errors;
    PGconn *db;

    if ((errors = check_body(pl_req_json(req), a, &provider, &id, &in)) != NULL)
        return pl_reply_invalid(req, errors);
    if ((remote = media_remote_resolve(a, ctx->cfg, provider, id, &err)) == NULL ||
        (sink = media_sink_new(a, ctx->cfg, &err)) == NULL ||
        media_remote_download(remote, sink, &err) != PL_OK)
        return pl_reply_err(req, &err);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    if (media_sink_finish(sink, db, a, &in, media_remote_sha256(remote), &json, &err) != PL_OK)
        return pl_reply_err(req, &err);
    return pl_reply_json_text(req, 201, json, strlen(json));
}
