/*
 * client.c - service-to-service HTTP over libcurl (see client.h).
 *
 * The easy handle is thread-local and reset between calls, which keeps its connection cache:
 * consecutive calls from one pool thread to the same service reuse one TCP connection.  Bodies
 * are collected into a buffer bounded at 8 MiB, then copied into the caller's arena.
 */
#include "parley/client.h"
#include "client_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"

#define MAX_RESPONSE (8u << 20)

static char *service_token;
static _Thread_local CURL *thread_curl;
static pthread_key_t exit_key; /* its destructor frees a thread's handle when it exits */
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void
on_thread_exit(void *unused)
{
    (void)unused;
    curl_easy_cleanup(thread_curl);
    thread_curl = NULL;
}

static void
exit_key_create(void)
{
    pthread_key_create(&exit_key, on_thread_exit);
}

/* The calling thread's handle, made on first use. */
static CURL *
thread_handle(void)
{
    if (thread_curl == NULL && (thread_curl = curl_easy_init()) != NULL) {
        pthread_once(&exit_key_once, exit_key_create);
        pthread_setspecific(exit_key, thread_curl);
    }
    return thread_curl;
}

void
pl_client_global_init(const char *token)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    free(service_token);
    service_token = token ? strdup(token) : NULL;
}

size_t
pl_client_collect(char *p, size_t size, size_t n, void *arg)
{
    struct pl_buf *b = arg;

    if (b->len + size * n > MAX_RESPONSE)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    pl_buf_append(b, p, size * n);
    return size * n;
}

/* "Name: " + value into line, cut to fit (as snprintf would, without its cost per call). */
static const char *
header_line(char *line, size_t cap, const char *name, const char *value)
{
    size_t a = strlen(name), b = strlen(value);

    if (a + b >= cap)
        b = cap - a - 1;
    memcpy(line, name, a);
    memcpy(line + a, value, b);
    line[a + b] = '\0';
    return line;
}

struct curl_slist *
pl_client_headers(const struct pl_client_opts *o)
{
    struct curl_slist *h = NULL;
    char line[300];
    const char *rid = pl_log_request_id();

    bool typed = false;   /* the caller names the body's type itself */
    bool accepts = false; /* and what it accepts */

    for (const char *const *x = o->headers; x != NULL && *x != NULL; x++) {
        h = curl_slist_append(h, *x);
        typed = typed || strncasecmp(*x, "Content-Type:", 13) == 0;
        accepts = accepts || strncasecmp(*x, "Accept:", 7) == 0;
    }
    if (!accepts)
        h = curl_slist_append(h, "Accept: application/json");
    if (o->body != NULL && !typed)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (service_token != NULL)
        h = curl_slist_append(h, header_line(line, sizeof(line), "X-Service-Token: ",
                                             service_token));
    if (rid != NULL)
        h = curl_slist_append(h, header_line(line, sizeof(line), "X-Request-Id: ", rid));
    return h;
}

static const char *
content_type_of(struct pl_arena *a, CURL *e)
{
    char *ct = NULL;

    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
    return ct ? pl_arena_strdup(a, ct) : "application/json";
}

int
pl_client_map_error(CURLcode rc, const char *url, struct pl_err *err)
{
    pl_log_warn("call to %s failed: %s", url, curl_easy_strerror(rc));
    return pl_client_fill_error(rc, err);
}

int
pl_client_fill_error(CURLcode rc, struct pl_err *err)
{
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return pl_err_set(err, 504, "upstream_timeout", "a service did not answer in time");
    if (rc == CURLE_WRITE_ERROR)
        return pl_err_set(err, 502, "upstream_bad_response", "a service answered too much");
    return pl_err_set(err, 503, "upstream_unavailable", "a service is not reachable");
}

int
pl_client_call(struct pl_arena *a, const char *method, const char *url, const char *body,
               long timeout_ms, struct pl_client_resp *out, struct pl_err *err)
{
    struct pl_client_opts o = { NULL, body, body ? strlen(body) : 0, timeout_ms };

    return pl_client_do(a, method, url, &o, out, err);
}

int
pl_client_do(struct pl_arena *a, const char *method, const char *url,
             const struct pl_client_opts *o, struct pl_client_resp *out, struct pl_err *err)
{
    struct pl_buf resp = PL_BUF_INIT;
    struct curl_slist *hdrs = NULL;
    long timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    CURLcode rc;
    int ret = PL_OK;

    if (thread_handle() == NULL)
        return pl_err_set(err, 500, "internal", "could not create an HTTP client");
    curl_easy_reset(thread_curl);
    hdrs = pl_client_headers(o);
    pl_client_easy_target(thread_curl, url, timeout_ms);
    curl_easy_setopt(thread_curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(thread_curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(thread_curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(thread_curl, CURLOPT_WRITEFUNCTION, pl_client_collect);
    curl_easy_setopt(thread_curl, CURLOPT_WRITEDATA, &resp);
    if (o->body != NULL) {
        curl_easy_setopt(thread_curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(thread_curl, CURLOPT_POSTFIELDS, o->body);
    }
    rc = curl_easy_perform(thread_curl);
    if (rc != CURLE_OK) {
        ret = pl_client_map_error(rc, url, err);
        goto out;
    }
    curl_easy_getinfo(thread_curl, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(thread_curl, CURLINFO_TOTAL_TIME, &out->ms);
    out->ms *= 1000.0;
    out->content_type = content_type_of(a, thread_curl);
    out->len = resp.len;
    out->body = pl_arena_strndup(a, resp.data ? resp.data : "", resp.len);
    out->json = pl_json_keep(a, json_loadb(out->body, out->len, JSON_DECODE_ANY, NULL));
out:
    curl_slist_free_all(hdrs);
    pl_buf_cleanup(&resp);
    return ret;
}

void
pl_client_easy_target(CURL *e, const char *url, long timeout_ms)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 2000 ? timeout_ms : 2000L);
}

/* Sets up one GET of a multi transfer; its body collects into *buf. */
static CURL *
get_handle(const char *url, struct curl_slist *hdrs, long timeout_ms, struct pl_buf *buf)
{
    CURL *e = curl_easy_init();

    if (e == NULL)
        return NULL;
    pl_client_easy_target(e, url, timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, pl_client_collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, buf);
    return e;
}

/* Fills call i from its finished handle. */
static void
finish_get(struct pl_arena *a, struct pl_client_get *c, CURL *e, CURLcode rc,
           const struct pl_buf *buf)
{
    c->resp.ms = 0;
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &c->resp.ms);
    c->resp.ms *= 1000.0;
    if (rc != CURLE_OK) {
        c->rc = pl_client_map_error(rc, c->url, c->err);
        return;
    }
    c->rc = PL_OK;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->resp.status);
    c->resp.content_type = content_type_of(a, e);
    c->resp.len = buf->len;
    c->resp.body = pl_arena_strndup(a, buf->data ? buf->data : "", buf->len);
    c->resp.json = pl_json_keep(a, json_loadb(c->resp.body, c->resp.len, JSON_DECODE_ANY, NULL));
}

void
pl_client_get_many(struct pl_arena *a, struct pl_client_get *calls, int n, long timeout_ms)
{
    struct pl_client_opts none = { NULL, NULL, 0, timeout_ms };
    struct curl_slist *hdrs = pl_client_headers(&none);
    CURLM *multi = curl_multi_init();
    CURL **easy = pl_arena_alloc(a, sizeof(*easy) * (size_t)n);
    struct pl_buf *bufs = pl_arena_alloc(a, sizeof(*bufs) * (size_t)n);
    int running = 0, left;
    CURLMsg *msg;

    for (int i = 0; i < n; i++) {
        bufs[i] = (struct pl_buf)PL_BUF_INIT;
        calls[i].rc = pl_err_set(calls[i].err, 503, "upstream_unavailable",
                                 "a service is not reachable");
        easy[i] = get_handle(calls[i].url, hdrs, timeout_ms, &bufs[i]);
        if (easy[i] != NULL) {
            curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (char *)&calls[i]);
            curl_multi_add_handle(multi, easy[i]);
        }
    }
    do {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    } while (running);
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        int i = 0;

        while (i < n && easy[i] != msg->easy_handle)
            i++;
        if (i < n)
            finish_get(a, &calls[i], easy[i], msg->data.result, &bufs[i]);
    }
    for (int i = 0; i < n; i++) {
        if (easy[i] != NULL) {
            curl_multi_remove_handle(multi, easy[i]);
            curl_easy_cleanup(easy[i]);
        }
        pl_buf_cleanup(&bufs[i]);
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(hdrs);
}
