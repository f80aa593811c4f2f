/*
 * media.c - the file of an inbound media message (SPEC 10 metadata.media): media-svc fetches it
 * from the provider (POST {PARLEY_MEDIA_URL}/api/media/fetch) and stores it like an upload.
 *
 * Order, so that a retry converges: the fetch runs after the message's customer and
 * conversation are known and before the message is created, and its media id is recorded here
 * (inbound_media) at once.  A row retried after that (the create failed, the worker died) finds
 * the recorded id and does not fetch again, and the create itself is unique by provider message
 * id.  A fetch refused for good (404 unknown or expired at the provider, 413 too large, 415 type
 * not allowed, 422) never costs the message: it is stored without media_id, with
 * media.fetch_error saying why.  Anything else (502/504 provider trouble, media-svc unreachable,
 * 5xx) leaves the message for a later attempt of the row.
 */
#include <string.h>

#include "deliver.h"
#include "parley/arena.h"
#include "parley/client.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "svc.h"

/* The answers that say the media will never be fetched (media-svc's fetch contract). */
static bool
permanent(long status)
{
    return status == 404 || status == 413 || status == 415 || status == 422;
}

/* media.fetch_error: the status and media-svc's error envelope. */
static void
set_fetch_error(json_t *media, const struct pl_client_resp *resp)
{
    const char *code = json_string_value(json_object_get(resp->json, "error"));
    const char *msg = json_string_value(json_object_get(resp->json, "message"));

    json_object_set_new(media, "fetch_error",
                        json_pack("{s:I, s:s, s:s}", "status", (json_int_t)resp->status, "error",
                                  code ? code : "fetch_failed", "message", msg ? msg : ""));
}

/* Asks media-svc to fetch the file; on INB_OK *media_id is the new resource's id or NULL. */
static enum inb_outcome
fetch(struct inb_run *r, const char *conversation_id, json_t *media, const char *pid,
      const char **media_id)
{
    const char *url = pl_arena_printf(r->a, "%s/api/media/fetch", r->cfg->media_url);
    const char *filename = json_string_value(json_object_get(media, "filename"));
    json_t *body = json_pack("{s:s, s:s, s:s}", "provider", r->channel, "provider_media_id", pid,
                             "conversation_id", conversation_id);
    struct pl_client_resp resp;
    enum inb_outcome o;

    *media_id = NULL;
    if (filename != NULL && *filename != '\0')
        json_object_set_new(body, "filename", json_string(filename));
    o = inb_call(r, "POST", url, body, "media fetch", INB_MEDIA_TIMEOUT_MS, true, &resp);
    if (o == INB_OK)
        return (*media_id = inb_answer_id(r, &resp, "media fetch")) ? INB_OK : INB_RETRY;
    if (resp.status != 0 && permanent(resp.status)) {
        pl_log_info("media %s of %s not fetched (HTTP %ld); message kept without it", pid,
                    r->channel, resp.status);
        set_fetch_error(media, &resp);
        return INB_OK;
    }
    if (resp.status != 0) /* 5xx, 429, or an answer this code does not expect */
        inb_note(r, INB_RETRY, "media fetch: HTTP %ld: %.200s", resp.status,
                 resp.body ? resp.body : "");
    return INB_RETRY;
}

enum inb_outcome
inb_media_attach(struct inb_run *r, const char *conversation_id, json_t *meta,
                 const char **media_id)
{
    struct pl_err err = PL_ERR_INIT;
    json_t *media = json_object_get(meta, "media");
    const char *pid = json_string_value(json_object_get(media, "provider_media_id"));
    const char *id = NULL;
    enum inb_outcome o;
    int rc;

    *media_id = NULL;
    if (pid == NULL || *pid == '\0')
        return INB_OK;
    rc = inb_db_media_get(r->db, r->a, r->channel, pid, &id, &err);
    if (rc == PL_DB_NONE) {
        if ((o = fetch(r, conversation_id, media, pid, &id)) != INB_OK || id == NULL)
            return o;
        rc = inb_db_media_put(r->db, r->a, r->channel, pid, &id, &err);
    }
    if (rc < 0) {
        inb_note(r, INB_RETRY, "media record: %s", err.msg);
        return INB_RETRY;
    }
    json_object_set_new(media, "media_id", json_string(id));
    *media_id = id;
    return INB_OK;
}
