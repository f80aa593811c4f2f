/*
 * log.c - JSON log lines on stderr.
 *
 * A line is formatted into a stack buffer and written with a single write(2), so lines from
 * different threads never interleave (writes to a pipe or file under PIPE_BUF are atomic; longer
 * lines are truncated to 4 KiB).  Strings are JSON-escaped; invalid bytes become U+FFFD so a line is
 * always valid JSON.
 */
#include "parley/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/uuid.h"

#define LINE_MAX_BYTES 4096

enum pl_log_level pl_log_level = PL_LOG_INFO;

static const char *service_name = "parley";
static _Thread_local const char *thread_request_id;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

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
    ssize_t w;

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
    w = write(STDERR_FILENO, line, n);
    (void)w; /* nowhere to report a failed log write */
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
    _exit(2); /* no atexit handlers: library threads may be running */
}

void
pl_log_access(const char *request_id, const char *method, const char *route, unsigned status,
              size_t bytes, long long us)
{
    char line[LINE_MAX_BYTES], ts[28], num[96];
    size_t n = 0;
    ssize_t w;

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
    w = write(STDERR_FILENO, line, n);
    (void)w;
}
