/*
 * log.h - JSON lines on stderr, one write(2) per line.
 *
 * Each line: {"ts","level","service","msg","request_id"[,"detail"]}.  The request id is thread-local,
 * set by the HTTP dispatcher for the duration of a request.  Macros test the level before formatting.
 * Thread-safe.  Never log keys, tokens or message bodies.
 */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

#include <stddef.h>

enum pl_log_level { PL_LOG_DEBUG = 0, PL_LOG_INFO, PL_LOG_WARN, PL_LOG_ERROR };

extern enum pl_log_level pl_log_level;

/* Sets the service name printed on every line and the minimum level; call once from main. */
void pl_log_init(const char *service, enum pl_log_level level);
/* Parses "debug|info|warn|error"; returns -1 when unknown. */
int pl_log_level_parse(const char *s);
/* Sets (or clears with NULL) the request id of the calling thread; the string must outlive its use. */
void pl_log_set_request_id(const char *id);
const char *pl_log_request_id(void);

void pl_log_write(enum pl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like pl_log_write, with a "detail" field. */
void pl_log_detail(enum pl_log_level level, const char *detail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One access line: {"ts","level":"info","service","msg":"request","request_id","method","route",
 * "status","bytes","us"}.  route is the matched pattern, never the raw path. */
void pl_log_access(const char *request_id, const char *method, const char *route, unsigned status,
                   size_t bytes, long long us);
/* Writes out every thread's buffered lines; call before exit (pl_fatal does). */
void pl_log_flush(void);
/* Startup failures only: logs and exits with status 2. */
__attribute__((noreturn)) void pl_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define pl_log_debug(...)                                                                         \
    do {                                                                                          \
        if (pl_log_level <= PL_LOG_DEBUG)                                                         \
            pl_log_write(PL_LOG_DEBUG, __VA_ARGS__);                                              \
    } while (0)
#define pl_log_info(...)                                                                          \
    do {                                                                                          \
        if (pl_log_level <= PL_LOG_INFO)                                                          \
            pl_log_write(PL_LOG_INFO, __VA_ARGS__);                                               \
    } while (0)
#define pl_log_warn(...)  pl_log_write(PL_LOG_WARN, __VA_ARGS__)
#define pl_log_error(...) pl_log_write(PL_LOG_ERROR, __VA_ARGS__)

#endif
