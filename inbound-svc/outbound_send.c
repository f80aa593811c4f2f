/*
 * outbound_send.c - one try of a delivery: the provider call and what its answer means.
 *
 * WhatsApp Cloud API: POST {PARLEY_WHATSAPP_API_BASE}/{phone_number_id}/messages with the bearer
 * token and {"messaging_product":"whatsapp","recipient_type","to","type":"text","text":{"body"}}.
 * Telegram Bot API: POST {PARLEY_TELEGRAM_API_BASE}/bot<token>/sendMessage {"chat_id","text"}.
 * A media message first gets its signed link from media-svc (outbound_media.c), at each try as
 * the link expires, then goes as outbound_request.h builds it (sendPhoto, "type":"image", ...);
 * a Telegram document that is not a PDF, GIF or ZIP goes as a multipart/form-data upload of the
 * file itself (outbound_upload.c), which is removed after the try.
 * A try that could not get the link makes no provider call and counts as a try like any other.
 *
 * These calls leave Parley, so they do not go through pl_client (which adds the service token
 * and the request id to every call): the sender thread's own curl handle sends only what the
 * provider needs.  The Telegram URL holds the bot token, so neither URLs nor bodies are ever
 * logged.  The answer is kept up to MAX_ANSWER bytes (the documented answers are small) and the
 * Retry-After header is read for a 429 or 503.  Classification is outbound_rules.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "outbound.h"
#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "svc.h"

#define MAX_ANSWER (1u << 20)

/* What the callbacks collect. */
struct answer {
    struct pl_buf body;
    long retry_after_s; /* -1 when absent */
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct answer *ans = arg;

    if (ans->body.len + size * n > MAX_ANSWER)
        return 0; /* fails the transfer: no provider answers this much */
    pl_buf_append(&ans->body, p, size * n);
    return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct answer *ans = arg;
    size_t len = size * n;
    char value[64];

    if (len > 12 && len < 12 + sizeof(value) && strncasecmp(p, "Retry-After:", 12) == 0) {
        memcpy(value, p + 12, len - 12);
        value[len - 12] = '\0';
        ans->retry_after_s = outb_retry_after_parse(value);
        if (ans->retry_after_s < 0) { /* the HTTP-date form */
            time_t at = curl_getdate(value, NULL);
            time_t now = time(NULL);

            if (at > 0)
                ans->retry_after_s = at > now ? (long)(at - now) : 0;
        }
    }
    return len;
}

/* The URL and JSON body of job's request (p: what it carries), in the arena. */
static void
build_request(const struct inb_cfg *cfg, struct pl_arena *a, const struct outb_job *job,
              const struct outb_payload *p, const char **url, const char **body)
{
    struct pl_buf b = PL_BUF_INIT;
    const char *method;
    json_t *j;

    if (strcmp(job->provider, "whatsapp") == 0) {
        pl_buf_printf(&b, "%s/", cfg->whatsapp_api_base);
        pl_buf_urlencode(&b, job->sender ? job->sender : "");
        pl_buf_puts(&b, "/messages");
        j = outb_whatsapp_request(p);
    } else {
        j = outb_telegram_request(p, &method);
        pl_buf_printf(&b, "%s/bot%s/%s", cfg->telegram_api_base, cfg->telegram_bot_token, method);
    }
    PL_ASSERT(j != NULL);
    *url = pl_arena_strndup(a, b.data, b.len);
    *body = pl_json_dump(a, pl_json_keep(a, j));
    pl_buf_cleanup(&b);
}

/*
 * What job sends, into p; for media, with the link from media-svc, and for a file Telegram
 * cannot take by link, the file itself (p->upload, the caller removes it).  False with r filled
 * when the try must end before the provider call.
 */
static bool
prepare(const struct inb_cfg *cfg, struct pl_arena *a, const struct outb_job *job,
        struct outb_payload *p, struct outb_result *r)
{
    char path[OUTB_PATH_MAX];

    memset(p, 0, sizeof(*p));
    p->recipient = job->recipient;
    p->group = job->group;
    p->body = job->body;
    p->kind = outb_kind_of(job->content_type);
    if (p->kind == NULL) /* recorded by a newer version that knows more kinds */
        return outb_result_unanswered(r, OUTB_PERMANENT, "unsupported_content_type",
                                      "this version does not send such messages");
    if (!p->kind->media)
        return true;
    if (!inb_outbound_media_link(cfg, a, job, p, r))
        return false;
    if (strcmp(job->provider, "telegram") != 0 || outb_telegram_by_link(p->kind, p->media_type))
        return true;
    if (!inb_outbound_media_file(cfg, a, job, path, r))
        return false;
    p->upload = pl_arena_strdup(a, path);
    return true;
}

/* The multipart/form-data body of a Telegram upload: chat_id, caption, and the file. */
static curl_mime *
upload_form(CURL *h, const struct outb_payload *p)
{
    curl_mime *form = curl_mime_init(h);
    curl_mimepart *part = curl_mime_addpart(form);

    curl_mime_name(part, "chat_id");
    curl_mime_data(part, p->recipient, CURL_ZERO_TERMINATED);
    if (p->kind->tg_caption && p->body != NULL && *p->body != '\0') {
        part = curl_mime_addpart(form);
        curl_mime_name(part, "caption");
        curl_mime_data(part, p->body, CURL_ZERO_TERMINATED);
    }
    part = curl_mime_addpart(form);
    curl_mime_name(part, p->kind->tg_field);
    curl_mime_filedata(part, p->upload);
    curl_mime_filename(part, p->filename != NULL && *p->filename != '\0' ? p->filename : "file");
    curl_mime_type(part, p->media_type != NULL ? p->media_type : "application/octet-stream");
    return form;
}

/* The error of a call that got no HTTP answer: always worth another try. */
static void
transport_error(CURLcode rc, const char *provider, struct outb_result *r)
{
    const char *code = rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "transport";

    outb_result_unanswered(r, OUTB_RETRY, code, curl_easy_strerror(rc));
    pl_log_warn("%s send failed without an answer: %s", provider, curl_easy_strerror(rc));
}

/* The provider call of p: a JSON body, or the upload form; false when no answer came. */
static bool
call_provider(CURL *h, const struct inb_cfg *cfg, struct pl_arena *a, const struct outb_job *job,
              const struct outb_payload *p, struct answer *ans, long *status, CURLcode *rc)
{
    bool whatsapp = strcmp(job->provider, "whatsapp") == 0;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    curl_mime *form = NULL;
    const char *url, *body;

    build_request(cfg, a, job, p, &url, &body);
    if (whatsapp)
        hdrs = curl_slist_append(
            hdrs, pl_arena_printf(a, "Authorization: Bearer %s", cfg->whatsapp_access_token));
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (p->upload != NULL) {
        form = upload_form(h, p);
        curl_easy_setopt(h, CURLOPT_MIMEPOST, form);
    } else {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg->outbound_timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ans);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, ans);
    *rc = curl_easy_perform(h);
    if (*rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_setopt(h, CURLOPT_MIMEPOST, NULL);
    curl_mime_free(form);
    curl_slist_free_all(hdrs);
    return *rc == CURLE_OK;
}

void
inb_outbound_send(CURL *h, const struct inb_cfg *cfg, struct pl_arena *a,
                  const struct outb_job *job, struct outb_result *r)
{
    struct answer ans = { PL_BUF_INIT, -1 };
    struct outb_payload p;
    json_t *doc;
    long status = 0;
    CURLcode rc = CURLE_OK;

    memset(r, 0, sizeof(*r));
    if (!prepare(cfg, a, job, &p, r))
        return;
    if (!call_provider(h, cfg, a, job, &p, &ans, &status, &rc)) {
        transport_error(rc, job->provider, r);
    } else {
        doc = pl_json_keep(a, json_loadb(ans.body.data ? ans.body.data : "", ans.body.len, 0,
                                         NULL));
        if (strcmp(job->provider, "whatsapp") == 0)
            outb_classify_whatsapp(status, doc, ans.retry_after_s, r);
        else
            outb_classify_telegram(status, doc, job->recipient, ans.retry_after_s, r);
    }
    if (p.upload != NULL)
        unlink(p.upload);
    pl_buf_cleanup(&ans.body);
}

const char *
inb_outbound_error_json(struct pl_arena *a, const char *provider, const struct outb_result *r,
                        bool retryable)
{
    json_t *e = json_pack("{s:s, s:s, s:s, s:b}", "provider", provider, "code", r->code,
                          "message", r->message, "retryable", retryable);

    PL_ASSERT(e != NULL);
    return pl_json_dump(a, pl_json_keep(a, e));
}
