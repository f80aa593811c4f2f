/*
 * provider.c - fetching a channel's media file from its provider over libcurl.
 *
 * Two steps, one libcurl handle (so the second reuses the first's connection when the host is
 * the same), one deadline of PARLEY_MEDIA_FETCH_TIMEOUT_MS over both:
 *   lookup   WhatsApp: GET <base>/<media id> with the bearer token -> {"url", "file_size",
 *            "sha256"}.  Telegram: GET <base>/bot<token>/getFile?file_id=<id> -> result.file_path.
 *            The answer is capped at LOOKUP_MAX bytes; provider.h reads it.
 *   download WhatsApp: GET that url with the bearer token.  Telegram: GET
 *            <base>/file/bot<token>/<file_path>.  libcurl's write callback hands each piece
 *            straight to the storage sink, so memory stays flat whatever the size.
 * The size the provider announces (lookup answer, then Content-Length) is checked before any
 * byte is stored, and the sink checks it again while streaming.  Only http and https are spoken,
 * redirects included, and libcurl drops the bearer token when a redirect leaves the host.
 * The Telegram token is part of its URLs, so no URL is ever logged or put in an error: logs name
 * the provider and the step.
 */
#include <curl/curl.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "provider.h"
#include "svc.h"

/* Largest lookup answer read (a real one is a few hundred bytes). */
#define LOOKUP_MAX (64u * 1024u)
#define CONNECT_TIMEOUT_MS 10000L
#define MAX_REDIRECTS 3L

struct media_remote {
    const struct media_cfg *cfg;
    CURL *h;
    const char *provider;  /* "whatsapp" or "telegram", for logs */
    long long deadline_ms; /* CLOCK_MONOTONIC milliseconds */
    const char *url;       /* the file (Telegram's holds the token) */
    bool bearer;           /* send the WhatsApp token with the download */
    const char *sha256;    /* announced, lowercase hex; or NULL */
};

/* A download in progress: what libcurl's write callback needs. */
struct download {
    struct media_remote *r;
    struct media_sink *sink;
    struct pl_err *err;
    bool started;    /* the first piece of the body has been seen */
    bool not_file;   /* the answer is not a 200: its status decides, its body is dropped */
    bool sink_error; /* the sink refused a piece: err says why */
};

/* Length of a base URL without trailing slashes, so "<base>/x" never has "//". */
static int
base_len(const char *base)
{
    size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/')
        n--;
    return (int)n;
}

static void
handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static int
timed_out(const struct media_remote *r, const char *what, struct pl_err *err)
{
    pl_log_warn("%s %s: no answer within %ld ms", r->provider, what, r->cfg->fetch_timeout_ms);
    return pl_err_set(err, 504, "provider_timeout", "the %s API did not answer in time",
                      r->provider);
}

/* Maps a transfer that did not complete; curl's message names no URL. */
static int
transfer_failed(const struct media_remote *r, CURLcode rc, const char *what, struct pl_err *err)
{
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return timed_out(r, what, err);
    pl_log_warn("%s %s failed: %s", r->provider, what, curl_easy_strerror(rc));
    return pl_err_set(err, 502, "provider_error", "the %s API could not be reached or failed",
                      r->provider);
}

/* Maps an answer that is not the file. */
static int
answer_failed(const struct media_remote *r, enum media_answer ans, long status, const char *what,
              struct pl_err *err)
{
    if (ans == MEDIA_ANSWER_GONE) {
        pl_log_info("%s %s: HTTP %ld, the media is unknown or expired", r->provider, what, status);
        return pl_err_set(err, 404, "Media not found at provider",
                          "the %s API does not know this media id (or it expired)", r->provider);
    }
    if (ans == MEDIA_ANSWER_TOO_BIG)
        return media_too_large(r->cfg, err);
    pl_log_warn("%s %s: unusable answer (HTTP %ld)", r->provider, what, status);
    return pl_err_set(err, 502, "provider_error", "the %s API answered with an error",
                      r->provider);
}

/* Resets the handle for one GET of url within what is left of the deadline. */
static int
setup(struct media_remote *r, const char *url, bool bearer, const char *what, struct pl_err *err)
{
    long long left = r->deadline_ms - pl_time_mono_us() / 1000;

    if (left <= 0)
        return timed_out(r, what, err);
    curl_easy_reset(r->h);
    curl_easy_setopt(r->h, CURLOPT_URL, url);
    curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS,
                     left < CONNECT_TIMEOUT_MS ? (long)left : CONNECT_TIMEOUT_MS);
    curl_easy_setopt(r->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(r->h, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    curl_easy_setopt(r->h, CURLOPT_USERAGENT, "parley-media-svc");
    if (bearer) {
        curl_easy_setopt(r->h, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(r->h, CURLOPT_XOAUTH2_BEARER, r->cfg->whatsapp_token);
    }
    return PL_OK;
}

static size_t
on_lookup_bytes(char *p, size_t size, size_t n, void *arg)
{
    struct pl_buf *b = arg;

    if (b->len + size * n > LOOKUP_MAX)
        return 0; /* libcurl fails with CURLE_WRITE_ERROR */
    pl_buf_append(b, p, size * n);
    return size * n;
}

/*
 * GETs a lookup answer: PL_OK with its status and its body parsed (NULL when it is not JSON;
 * kept alive by a), or PL_ERR with err.
 */
static int
get_lookup(struct media_remote *r, struct pl_arena *a, const char *url, bool bearer,
           long *status, json_t **body, struct pl_err *err)
{
    static const char what[] = "media lookup";
    struct pl_buf b = PL_BUF_INIT;
    CURLcode rc;
    int ret = PL_OK;

    if (setup(r, url, bearer, what, err) != PL_OK)
        return PL_ERR;
    curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_lookup_bytes);
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, &b);
    rc = curl_easy_perform(r->h);
    if (rc == CURLE_WRITE_ERROR) {
        pl_log_warn("%s %s: answer larger than %u bytes", r->provider, what, LOOKUP_MAX);
        ret = pl_err_set(err, 502, "provider_error", "the %s API answered too much", r->provider);
    } else if (rc != CURLE_OK) {
        ret = transfer_failed(r, rc, what, err);
    } else {
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, status);
        *body = pl_json_keep(a, json_loadb(b.data != NULL ? b.data : "", b.len, 0, NULL));
    }
    pl_buf_cleanup(&b);
    return ret;
}

/* Keeps what the lookup found out; 413 when the announced size is over the limit already. */
static int
located(struct media_remote *r, struct pl_arena *a, const struct media_located *loc,
        struct pl_err *err)
{
    if (loc->size >= 0 && (unsigned long long)loc->size > r->cfg->max_bytes) {
        pl_log_info("%s media announced as %lld bytes: over the limit", r->provider, loc->size);
        return media_too_large(r->cfg, err);
    }
    r->sha256 = loc->sha256[0] != '\0' ? pl_arena_strdup(a, loc->sha256) : NULL;
    return PL_OK;
}

static int
whatsapp_lookup(struct media_remote *r, struct pl_arena *a, const char *id, struct pl_err *err)
{
    const char *base = r->cfg->whatsapp_base;
    const char *url = pl_arena_printf(a, "%.*s/%s", base_len(base), base, id);
    struct media_located loc;
    enum media_answer ans;
    json_t *body = NULL;
    long status = 0;

    if (get_lookup(r, a, url, true, &status, &body, err) != PL_OK)
        return PL_ERR;
    if ((ans = media_whatsapp_lookup(status, body, &loc)) != MEDIA_ANSWER_OK)
        return answer_failed(r, ans, status, "media lookup", err);
    r->url = loc.url; /* borrowed from body, which a keeps */
    r->bearer = true; /* Meta's media URLs want the token too */
    return located(r, a, &loc, err);
}

static int
telegram_lookup(struct media_remote *r, struct pl_arena *a, const char *id, struct pl_err *err)
{
    const char *base = r->cfg->telegram_base, *token = r->cfg->telegram_token;
    int n = base_len(base);
    const char *url = pl_arena_printf(a, "%.*s/bot%s/getFile?file_id=%s", n, base, token, id);
    struct media_located loc;
    enum media_answer ans;
    json_t *body = NULL;
    long status = 0;

    if (get_lookup(r, a, url, false, &status, &body, err) != PL_OK)
        return PL_ERR;
    if ((ans = media_telegram_getfile(status, body, &loc)) != MEDIA_ANSWER_OK)
        return answer_failed(r, ans, status, "getFile", err);
    r->url = pl_arena_printf(a, "%.*s/file/bot%s/%s", n, base, token, loc.file_path);
    r->bearer = false;
    return located(r, a, &loc, err);
}

struct media_remote *
media_remote_resolve(struct pl_arena *a, const struct media_cfg *cfg, const char *provider,
                     const char *id, struct pl_err *err)
{
    struct media_remote *r = pl_arena_alloc(a, sizeof(*r));
    bool whatsapp = strcmp(provider, "whatsapp") == 0;

    PL_ASSERT(whatsapp || strcmp(provider, "telegram") == 0); /* the handler checked */
    PL_ASSERT(media_provider_id_ok(id));                       /* safe in a URL unescaped */
    memset(r, 0, sizeof(*r));
    r->cfg = cfg;
    r->provider = whatsapp ? "whatsapp" : "telegram";
    r->deadline_ms = pl_time_mono_us() / 1000 + cfg->fetch_timeout_ms;
    if ((r->h = curl_easy_init()) == NULL) {
        pl_err_set(err, 500, "internal", "could not create an HTTP client");
        return NULL;
    }
    pl_arena_defer(a, handle_free, r->h);
    if ((whatsapp ? whatsapp_lookup(r, a, id, err) : telegram_lookup(r, a, id, err)) != PL_OK)
        return NULL;
    return r;
}

const char *
media_remote_sha256(const struct media_remote *r)
{
    return r->sha256;
}

/* libcurl's write callback of the download: each piece goes straight into the sink. */
static size_t
on_file_bytes(char *p, size_t size, size_t n, void *arg)
{
    struct download *d = arg;
    long status = 0;

    if (!d->started) {
        d->started = true;
        curl_easy_getinfo(d->r->h, CURLINFO_RESPONSE_CODE, &status);
        d->not_file = status != 200;
    }
    if (d->not_file)
        return 0; /* an error page is never stored: stop, and let the status speak */
    if (media_sink_write(d->sink, p, size * n, d->err) != PL_OK) {
        d->sink_error = true;
        return 0;
    }
    return size * n;
}

int
media_remote_download(struct media_remote *r, struct media_sink *sink, struct pl_err *err)
{
    static const char what[] = "file download";
    struct download d = { r, sink, err, false, false, false };
    enum media_answer ans;
    long status = 0;
    CURLcode rc;

    if (setup(r, r->url, r->bearer, what, err) != PL_OK)
        return PL_ERR;
    curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_file_bytes);
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, &d);
    /* A Content-Length over the limit fails before the first byte (CURLE_FILESIZE_EXCEEDED). */
    curl_easy_setopt(r->h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->cfg->max_bytes);
    rc = curl_easy_perform(r->h);
    if (d.sink_error)
        return PL_ERR;
    if (rc == CURLE_FILESIZE_EXCEEDED) {
        pl_log_info("%s media: Content-Length over the limit", r->provider);
        return media_too_large(r->cfg, err);
    }
    if (rc != CURLE_OK && !d.not_file)
        return transfer_failed(r, rc, what, err);
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    if ((ans = media_download_status(status)) != MEDIA_ANSWER_OK)
        return answer_failed(r, ans, status, what, err);
    if (media_sink_size(sink) == 0) {
        pl_log_warn("%s %s: empty file", r->provider, what);
        return pl_err_set(err, 502, "provider_error", "the %s API sent an empty file",
                          r->provider);
    }
    return PL_OK;
}
