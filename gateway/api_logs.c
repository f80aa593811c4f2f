/*
 * api_logs.c - every public request in api_logs, written off the request path.
 *
 * The server's completion hook copies what a log row needs (bodies cut at LOG_BODY_MAX on a
 * UTF-8 boundary, secrets redacted) into a bounded queue; a writer thread inserts whatever is
 * queued in one statement every FLUSH_MS, so logging never slows or fails a request.  When the
 * database is away or the queue is full, rows are dropped and counted instead of piling up.
 * The writer also deletes rows older than the retention period once an hour, and expired
 * Idempotency-Keys (idem.c) with them.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

#define QUEUE_MAX 8192
#define BATCH_MAX 512
#define FLUSH_MS 200
#define PURGE_EVERY_US (3600LL * 1000000)

struct gw_log {
    struct pl_db *db;
    long retention_days;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct gw_log_row *rows[QUEUE_MAX];
    int head, count;
    bool stop;
    atomic_ullong dropped;
    int64_t last_purge_us;
};

static const char *const secret_names[] = { "key", "api_key", "token", "secret", "password",
                                            "authorization", "signature", NULL };

/* Replaces the values of secret-looking members, at any depth. */
static void
redact(json_t *j)
{
    const char *name;
    json_t *v;
    size_t i;

    if (json_is_object(j)) {
        json_object_foreach(j, name, v) {
            bool secret = false;

            for (int s = 0; secret_names[s] != NULL; s++)
                secret = secret || strcasecmp(name, secret_names[s]) == 0;
            if (secret)
                json_object_set_new(j, name, json_string("[redacted]"));
            else
                redact(v);
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            redact(v);
    }
}

/*
 * True when no secret name occurs anywhere in body, whatever the case: then there is nothing to
 * redact, and the body is stored as it came without a round trip through a JSON parser.
 */
static bool
no_secret_names(const char *body, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *name;
        size_t len;

        switch (body[i] | 0x20) { /* lower case, for letters; the names' first letters: */
        case 'k': name = "key"; break; /* (also covers "api_key") */
        case 't': name = "token"; break;
        case 'p': name = "password"; break;
        case 'a': name = "authorization"; break;
        case 's':
            if (n - i >= 9 && strncasecmp(body + i, "signature", 9) == 0)
                return false;
            name = "secret";
            break;
        default: continue;
        }
        len = strlen(name);
        if (len <= n - i && strncasecmp(body + i, name, len) == 0)
            return false;
    }
    return true;
}

/* A body as stored: redacted JSON, or the bytes cut at a UTF-8 boundary; NULL when empty. */
static char *
loggable(const char *body, size_t n)
{
    json_t *j;
    char *out;

    if (body == NULL || n == 0)
        return NULL;
    if (n <= GW_LOG_BODY_MAX && memchr(body, '\0', n) == NULL && no_secret_names(body, n))
        return pl_utf8_valid(body, n) ? strndup(body, n) : strdup("[body is not UTF-8 text]");
    j = json_loadb(body, n, JSON_DECODE_ANY, NULL);
    if (j != NULL) {
        redact(j);
        out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        if (out != NULL && strlen(out) <= GW_LOG_BODY_MAX)
            return out;
        free(out);
    }
    if (n > GW_LOG_BODY_MAX) {
        n = GW_LOG_BODY_MAX;
        while (n > 0 && ((unsigned char)body[n] & 0xc0) == 0x80)
            n--; /* do not cut a character in two */
    }
    if (!pl_utf8_valid(body, n))
        return strdup("[body is not UTF-8 text]");
    return strndup(body, n);
}

/* Copies s to *at and moves *at past it; returns the copy. */
static char *
put(char **at, const char *s)
{
    size_t n = strlen(s) + 1;
    char *out = memcpy(*at, s, n);

    *at += n;
    return out;
}

/* A row and its short strings in one allocation (the bodies are their own). */
static struct gw_log_row *
row_new(const struct pl_req *req, const char *key)
{
    const char *method = pl_req_method(req), *path = pl_req_path(req);
    const char *route = pl_req_route(req), *rid = pl_req_id(req);
    char ip[64], ts[28];
    size_t len = 0;
    struct gw_log_row *row;
    char *at;

    pl_req_client_ip(req, ip);
    pl_time_rfc3339(ts, pl_time_now_us());
    for (const char *const *s = (const char *const[]){ method, path, route, rid, ip, ts,
                                                        key ? key : "", NULL };
         *s != NULL; s++)
        len += strlen(*s) + 1;
    row = calloc(1, sizeof(*row) + len);
    PL_ASSERT(row != NULL);
    at = (char *)(row + 1);
    row->method = put(&at, method);
    row->path = put(&at, path);
    row->route = put(&at, route);
    row->request_id = put(&at, rid);
    row->client_ip = put(&at, ip);
    row->created_at = put(&at, ts);
    row->api_key_id = key ? put(&at, key) : NULL;
    pl_uuid_v7_fast(row->id); /* unique enough for a log row, without a lock or a syscall */
    return row;
}

void
gw_log_request(const struct pl_req *req, void *arg)
{
    const struct svc_ctx *ctx = arg;
    struct gw_log *log = ctx->log;
    struct gw_log_row *row;
    const char *body;
    size_t n;

    if (log == NULL)
        return; /* (the writer starts just after the server) */
    row = row_new(req, pl_req_note(req));
    row->status = pl_req_status(req);
    row->duration_ms = (double)pl_req_duration_us(req) / 1000.0;
    body = pl_req_body(req, &n);
    row->request_body = loggable(body, n);
    body = pl_req_reply_body(req, &n);
    row->response_body = loggable(body, n);
    pthread_mutex_lock(&log->lock);
    if (log->count == QUEUE_MAX) {
        atomic_fetch_add(&log->dropped, 1);
        gw_log_row_free(row);
    } else {
        log->rows[(log->head + log->count++) % QUEUE_MAX] = row;
    }
    pthread_mutex_unlock(&log->lock);
}

/* Takes up to BATCH_MAX rows, waiting at most FLUSH_MS for the first one. */
static int
take_batch(struct gw_log *log, struct gw_log_row **out)
{
    struct timespec until;
    int n = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += FLUSH_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&log->lock);
    if (log->count == 0 && !log->stop)
        pthread_cond_timedwait(&log->cond, &log->lock, &until);
    while (n < BATCH_MAX && log->count > 0) {
        out[n++] = log->rows[log->head];
        log->head = (log->head + 1) % QUEUE_MAX;
        log->count--;
    }
    pthread_mutex_unlock(&log->lock);
    return n;
}

static void *
writer_main(void *arg)
{
    static struct gw_log_row *batch[BATCH_MAX];
    struct gw_log *log = arg;

    for (;;) {
        struct pl_err err = PL_ERR_INIT;
        int n = take_batch(log, batch);
        PGconn *c;
        bool stopping;

        if (n > 0 && (c = pl_db_conn(log->db, &err)) != NULL &&
            gw_db_log_insert(c, batch, n, &err) < 0)
            c = NULL;
        if (n > 0 && c == NULL) {
            atomic_fetch_add(&log->dropped, (unsigned long long)n);
            pl_log_warn("dropped %d api_logs rows: %s", n, err.msg);
        }
        for (int i = 0; i < n; i++)
            gw_log_row_free(batch[i]);
        if (pl_time_mono_us() - log->last_purge_us > PURGE_EVERY_US &&
            (c = pl_db_conn(log->db, &err)) != NULL) {
            log->last_purge_us = pl_time_mono_us();
            gw_db_log_purge(c, log->retention_days, &err);
            gw_db_idem_purge(c, &err); /* Idempotency-Keys are kept 24 hours */
        }
        pthread_mutex_lock(&log->lock);
        stopping = log->stop && log->count == 0;
        pthread_mutex_unlock(&log->lock);
        if (stopping)
            return NULL;
    }
}

struct gw_log *
gw_log_start(struct pl_db *db, long retention_days)
{
    struct gw_log *log = calloc(1, sizeof(*log));

    PL_ASSERT(log != NULL);
    log->db = db;
    log->retention_days = retention_days;
    log->last_purge_us = pl_time_mono_us() - PURGE_EVERY_US; /* purge once at start */
    pthread_mutex_init(&log->lock, NULL);
    pthread_cond_init(&log->cond, NULL);
    PL_ASSERT(pthread_create(&log->thread, NULL, writer_main, log) == 0);
    return log;
}

void
gw_log_stop(struct gw_log *log)
{
    if (log == NULL)
        return;
    pthread_mutex_lock(&log->lock);
    log->stop = true;
    pthread_cond_signal(&log->cond);
    pthread_mutex_unlock(&log->lock);
    pthread_join(log->thread, NULL);
    pthread_mutex_destroy(&log->lock);
    pthread_cond_destroy(&log->cond);
    free(log);
}

void
gw_log_row_free(struct gw_log_row *r)
{
    if (r == NULL)
        return;
    free(r->request_body);
    free(r->response_body);
    free(r); /* the short strings live in the same block */
}
