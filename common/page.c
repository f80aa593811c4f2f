/*
 * page.c - parsing ?page/?per_page and writing the paginator.
 *
 * Rows arrive already serialized by the database, so the paginator is written as text around them
 * instead of being parsed and rebuilt; only the URLs go through jansson for escaping.
 */
#include "parley/page.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/buf.h"
#include "parley/http.h"
#include "parley/json.h"

struct url_ctx {
    struct pl_buf *url;
};

static bool
parse_long(const char *s, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool
pl_page_parse(const struct pl_req *req, long def_per_page, struct pl_page *pg, json_t **errors)
{
    const char *p = pl_req_query(req, "page"), *pp = pl_req_query(req, "per_page");
    bool ok = true;

    pg->page = 1;
    pg->per_page = def_per_page;
    if (p != NULL && (!parse_long(p, &pg->page) || pg->page < 1 || pg->page > 1000000000L)) {
        pl_json_error_add(errors, "page", "must be an integer of at least 1");
        ok = false;
    }
    if (pp != NULL &&
        (!parse_long(pp, &pg->per_page) || pg->per_page < 1 || pg->per_page > PL_PER_PAGE_MAX)) {
        pl_json_error_add(errors, "per_page", "must be an integer from 1 to %d", PL_PER_PAGE_MAX);
        ok = false;
    }
    return ok;
}

long long
pl_page_offset(const struct pl_page *pg)
{
    return (long long)(pg->page - 1) * pg->per_page;
}

static enum MHD_Result
add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct url_ctx *u = cls;

    (void)kind;
    if (strcmp(key, "page") == 0 || strcmp(key, "per_page") == 0)
        return MHD_YES;
    pl_buf_urlencode(u->url, key);
    if (value != NULL) {
        pl_buf_puts(u->url, "=");
        pl_buf_urlencode(u->url, value);
    }
    pl_buf_puts(u->url, "&");
    return MHD_YES;
}

/* Appends "url" (a JSON string) for page, or null. */
static void
put_url(struct pl_buf *out, const struct pl_req *req, const char *base, const struct pl_page *pg,
        long page)
{
    struct pl_buf url = PL_BUF_INIT;
    struct url_ctx u = { &url };
    const char *path = pl_req_path(req);
    json_t *s;
    char *text;

    pl_buf_puts(&url, base);
    if (strncmp(path, "/api/", 5) == 0 && strncmp(path, "/api/v1/", 8) != 0) {
        pl_buf_puts(&url, "/api/v1/");
        pl_buf_puts(&url, path + 5);
    } else {
        pl_buf_puts(&url, path);
    }
    pl_buf_puts(&url, "?");
    MHD_get_connection_values(pl_req_connection(req), MHD_GET_ARGUMENT_KIND, add_arg, &u);
    pl_buf_printf(&url, "page=%ld&per_page=%ld", page, pg->per_page);
    s = json_string(url.data);
    text = json_dumps(s, JSON_ENCODE_ANY);
    pl_buf_puts(out, text);
    free(text);
    json_decref(s);
    pl_buf_cleanup(&url);
}

void
pl_page_render(struct pl_buf *out, const struct pl_req *req, const char *public_base,
               const struct pl_page *pg, long long total, const char *const *items, int n)
{
    long long last = total > 0 ? (total + pg->per_page - 1) / pg->per_page : 1;
    long long from = pl_page_offset(pg) + 1;

    pl_buf_puts(out, "{\"data\":[");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            pl_buf_puts(out, ",");
        pl_buf_puts(out, items[i]);
    }
    pl_buf_printf(out, "],\"current_page\":%ld,\"per_page\":%ld,\"total\":%lld,\"last_page\":%lld,",
                  pg->page, pg->per_page, total, last);
    if (n > 0)
        pl_buf_printf(out, "\"from\":%lld,\"to\":%lld,", from, from + n - 1);
    else
        pl_buf_puts(out, "\"from\":null,\"to\":null,");
    pl_buf_puts(out, "\"next_page_url\":");
    if (pg->page < last)
        put_url(out, req, public_base, pg, pg->page + 1);
    else
        pl_buf_puts(out, "null");
    pl_buf_puts(out, ",\"prev_page_url\":");
    if (pg->page > 1)
        put_url(out, req, public_base, pg, pg->page - 1 < last ? pg->page - 1 : (long)last);
    else
        pl_buf_puts(out, "null");
    pl_buf_puts(out, "}");
}

enum MHD_Result
pl_reply_page(struct pl_req *req, const char *public_base, const struct pl_page *pg,
              long long total, const char *const *items, int n)
{
    struct pl_buf out = PL_BUF_INIT;
    enum MHD_Result rc;

    pl_page_render(&out, req, public_base, pg, total, items, n);
    rc = pl_reply_json_text(req, 200, out.data, out.len);
    pl_buf_cleanup(&out);
    return rc;
}
