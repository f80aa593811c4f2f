/*
 * log.c - JSON log lines on stderr.
 *
 * A line is formatted on the stack, then appended to its thread's buffer.  A buffer holds whole
 * lines and at most PIPE_BUF bytes, and is written with one write(2), so lines from different
 * threads never interleave even on a pipe.  Info and debug lines (the access lines above all) wait
 * in the buffer until it fills or the flusher thread writes it, at most FLUSH_MS later: one
 * syscall for a dozen requests instead of one each, as nginx's buffered access log does.  A warn
 * or error line is written at once, with whatever its thread had buffered before it.  Strings are
 * JSON-escaped; malformed UTF-8 becomes '?' so a line is always valid JSON.
 */
#include "parley/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parley/uuid.h"

#define LINE_MAX_BYTES 4096 /* = PIPE_BUF on Linux: one write of this size is atomic */
#define FLUSH_MS 100

struct tbuf {
    pthread_mutex_t lock; /* taken by its thread and, briefly, by the flusher */
    struct tbuf *next;
    size_t len;
    char data[LINE_MAX_BYTES];
};

enum pl_log_level pl_log_level = PL_LOG_INFO;

static const char *service_name = "parley";
static _Thread_local const char *thread_request_id;
static _Thread_local struct tbuf *thread_buf;
static pthread_mutex_t bufs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tbuf *bufs;
static pthread_once_t flusher_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static void
write_all(const char *p, size_t n)
{
    ssize_t w = write(STDERR_FILENO, p, n);

    (void)w; /* nowhere to report a failed log write */
}

/* Writes out b's lines (b->lock held). */
static void
tbuf_flush(struct tbuf *b)
{
    if (b->len > 0)
        write_all(b->data, b->len);
    b->len = 0;
}

void
pl_log_flush(void)
{
    pthread_mutex_lock(&bufs_lock);
    for (struct tbuf *b = bufs; b != NULL; b = b->next) {
        pthread_mutex_lock(&b->lock);
        tbuf_flush(b);
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_unlock(&bufs_lock);
}

static void *
flusher_main(void *arg)
{
    struct timespec ts = { 0, FLUSH_MS * 1000000L };

    (void)arg;
    for (;;) {
        nanosleep(&ts, NULL);
        pl_log_flush();
    }
    return NULL;
}

static void
flusher_start(void)
{
    pthread_t t;
    sigset_t all, old;

    /* The flusher takes no signals: main() waits for them with sigwait(). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&t, NULL, flusher_main, NULL) == 0)
        pthread_detach(t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atexit(pl_log_flush); /* a return from main() loses nothing */
}

/* The calling thread's buffer, made and registered on first use (buffers live until exit). */
static struct tbuf *
tbuf_get(void)
{
    struct tbuf *b = thread_buf;

    if (b != NULL)
        return b;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_lock(&bufs_lock);
    b->next = bufs;
    bufs = b;
    pthread_mutex_unlock(&bufs_lock);
    pthread_once(&flusher_once, flusher_start);
    return thread_buf = b;
}

/* Queues one whole line; urgent lines go out at once with what was queued before them. */
static void
emit(const char *line, size_t n, bool urgent)
{
    struct tbuf *b = tbuf_get();

    if (b == NULL) {
        write_all(line, n);
        return;
    }
    pthread_mutex_lock(&b->lock);
    if (b->len + n > sizeof(b->data))
        tbuf_flush(b);
    memcpy(b->data + b->len, line, n);
    b->len += n;
    if (urgent)
        tbuf_flush(b);
    pthread_mutex_unlock(&b->lock);
}

void
pl_log_init(const char *service, enum pl_log_level level)
{
    service_name = service;
    pl_log_level = level;
}

int
pl_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void
pl_log_set_request_id(const char *id)
{
    thread_request_id = id;
}

const char *
pl_log_request_id(void)
{
    return thread_request_id;
}

/* Appends s JSON-escaped at out[*len], never past cap - 8 (room for the closing). */
static void
put_escaped(char *out, size_t *len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = *len;

    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[c >> 4];
            out[n + 5] = hex[c & 15];
            n += 6;
        } else if (c >= 0x80) {
            /* Keep well-formed multibyte sequences, replace anything else with '?'. */
            int extra = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
            int ok = extra > 0;

            for (int i = 1; ok && i <= extra; i++)
                ok = ((unsigned char)s[i] & 0xc0) == 0x80;
            if (ok) {
                memcpy(out + n, s, (size_t)extra + 1);
                n += (size_t)extra + 1;
                s += extra;
            } else {
                out[n++] = '?';
            }
        } else {
            out[n++] = (char)c;
        }
    }
    *len = n;
}

static void
put_raw(char *out, size_t *len, size_t cap, const char *s)
{
    size_t n = strlen(s), room = *len + 8 < cap ? cap - *len - 8 : 0;

    if (n > room)
        n = room;
    memcpy(out + *len, s, n);
    *len += n;
}

static void
log_line(enum pl_log_level level, const char *detail, const char *fmt, va_list ap)
{
    char line[LINE_MAX_BYTES], msg[2048], ts[28];
    size_t n = 0;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    pl_time_rfc3339(ts, pl_time_now_us());
    put_raw(line, &n, sizeof(line), "{\"ts\":\"");
    put_raw(line, &n, sizeof(line), ts);
    put_raw(line, &n, sizeof(line), "\",\"level\":\"");
    put_raw(line, &n, sizeof(line), level_names[level]);
    put_raw(line, &n, sizeof(line), "\",\"service\":\"");
    put_escaped(line, &n, sizeof(line), service_name);
    put_raw(line, &n, sizeof(line), "\",\"msg\":\"");
    put_escaped(line, &n, sizeof(line), msg);
    put_raw(line, &n, sizeof(line), "\"");
    if (thread_request_id != NULL) {
        put_raw(line, &n, sizeof(line), ",\"request_id\":\"");
        put_escaped(line, &n, sizeof(line), thread_request_id);
        put_raw(line, &n, sizeof(line), "\"");
    }
    if (detail != NULL) {
        put_raw(line, &n, sizeof(line), ",\"detail\":\"");
        put_escaped(line, &n, sizeof(line), detail);
        put_raw(line, &n, sizeof(line), "\"");
    }
    line[n++] = '}';
    line[n++] = '\n';
    emit(line, n, level >= PL_LOG_WARN);
}

void
pl_log_write(enum pl_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(level, NULL, fmt, ap);
    va_end(ap);
}

void
pl_log_detail(enum pl_log_level level, const char *detail, const char *fmt, ...)
{
    va_list ap;

    if (level < pl_log_level)
        return;
    va_start(ap, fmt);
    log_line(level, detail, fmt, ap);
    va_end(ap);
}

void
pl_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(PL_LOG_ERROR, NULL, fmt, ap);
    va_end(ap);
    pl_log_flush();
    _exit(2); /* no atexit handlers: library threads may be running */
}

void
pl_log_access(const char *request_id, const char *method, const char *route, unsigned status,
              size_t bytes, long long us)
{
    char line[LINE_MAX_BYTES], ts[28], num[96];
    size_t n = 0;

    if (pl_log_level > PL_LOG_INFO)
        return;
    pl_time_rfc3339(ts, pl_time_now_us());
    put_raw(line, &n, sizeof(line), "{\"ts\":\"");
    put_raw(line, &n, sizeof(line), ts);
    put_raw(line, &n, sizeof(line), "\",\"level\":\"info\",\"service\":\"");
    put_escaped(line, &n, sizeof(line), service_name);
    put_raw(line, &n, sizeof(line), "\",\"msg\":\"request\",\"request_id\":\"");
    put_escaped(line, &n, sizeof(line), request_id ? request_id : "");
    put_raw(line, &n, sizeof(line), "\",\"method\":\"");
    put_escaped(line, &n, sizeof(line), method);
    put_raw(line, &n, sizeof(line), "\",\"route\":\"");
    put_escaped(line, &n, sizeof(line), route);
    snprintf(num, sizeof(num), "\",\"status\":%u,\"bytes\":%zu,\"us\":%lld}\n", status, bytes, us);
    put_raw(line, &n, sizeof(line), num);
    emit(line, n, false);
}
