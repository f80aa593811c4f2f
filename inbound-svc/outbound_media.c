/*
 * outbound_media.c - the file of an outbound media message, as the provider will fetch it: the
 * signed download URL media-svc hands out (GET {PARLEY_MEDIA_URL}/api/media/{id}/download, SPEC
 * 10 "Media"), and for a document the stored filename (GET /api/media/{id}), which WhatsApp shows,
 * and Content-Type, which decides whether Telegram can take it by link.
 *
 * Asked at each try, never stored: the URL expires (PARLEY_MEDIA_URL_TTL) while a delivery may
 * wait longer than that between retries.  media-svc answering 404 means the media does not exist
 * (or the id is malformed): that will not change, so the message fails for good.  Anything else
 * (media-svc unreachable, 5xx, 429, an unexpected answer) ends the try as retryable, exactly like
 * a provider transport error.  The URL carries a signature that opens the file, so it is never
 * logged.
 */
#include <string.h>

#include "outbound.h"
#include "parley/arena.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/log.h"
#include "svc.h"

#define MEDIA_CALL_TIMEOUT_MS 5000

bool
inb_outbound_media_failed(struct pl_arena *a, const struct outb_job *job, long status,
                          const char *why, struct outb_result *r)
{
    if (status == 0)
        return outb_result_unanswered(r, OUTB_RETRY, "media_unavailable",
                                      pl_arena_printf(a, "media-svc could not be reached: %s",
                                                      why));
    if (status == 404)
        return outb_result_unanswered(r, OUTB_PERMANENT, "media_not_found",
                                      pl_arena_printf(a, "media \"%s\" is unknown to media-svc",
                                                      job->media_id));
    return outb_result_unanswered(r, OUTB_RETRY, "media_unavailable",
                                  pl_arena_printf(a, "media-svc answered HTTP %ld", status));
}

/*
 * GETs media-svc's url, for job's media, into *out (kept by the arena).  True with a 200 JSON
 * object; else false with r filled.
 */
static bool
media_get(const struct inb_cfg *cfg, struct pl_arena *a, const struct outb_job *job,
          const char *suffix, json_t **out, struct outb_result *r)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_resp resp;
    const char *url = pl_arena_printf(a, "%s/api/media/%s%s", cfg->media_url, job->media_id,
                                      suffix);

    if (pl_client_call(a, "GET", url, NULL, MEDIA_CALL_TIMEOUT_MS, &resp, &err) != PL_OK)
        return inb_outbound_media_failed(a, job, 0, err.msg, r);
    if (resp.status != 200 || !json_is_object(resp.json))
        return inb_outbound_media_failed(a, job, resp.status, NULL, r);
    *out = resp.json;
    return true;
}

bool
inb_outbound_media_link(const struct inb_cfg *cfg, struct pl_arena *a,
                        const struct outb_job *job, struct outb_payload *p, struct outb_result *r)
{
    json_t *dl = NULL, *meta = NULL;

    p->link = p->filename = p->media_type = NULL;
    if (!media_get(cfg, a, job, "/download", &dl, r))
        goto fail;
    p->link = json_string_value(json_object_get(dl, "download_url"));
    if (p->link == NULL || p->link[0] == '\0') {
        outb_result_unanswered(r, OUTB_RETRY, "media_unavailable",
                               "media-svc answered without a download_url");
        goto fail;
    }
    if (strcmp(job->content_type, "document") == 0) {
        if (!media_get(cfg, a, job, "", &meta, r))
            goto fail;
        p->filename = json_string_value(json_object_get(meta, "filename"));
        p->media_type = json_string_value(json_object_get(meta, "content_type"));
    }
    return true;
fail:
    pl_log_warn("message %s: media %s: %s (%s)", job->message_id, job->media_id, r->code,
                r->message);
    return false;
}
