/*
 * page.h - the list paginator of SPEC section 2.
 *
 * {"data": [...], "current_page", "per_page", "total", "last_page", "from", "to", "next_page_url",
 * "prev_page_url"}, with URLs pointing at the public gateway and keeping the request's filters.
 */
#ifndef PARLEY_PAGE_H
#define PARLEY_PAGE_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

struct pl_buf;
struct pl_req;

#define PL_PER_PAGE_MAX 200

struct pl_page {
    long page;     /* 1-based */
    long per_page; /* 1..PL_PER_PAGE_MAX */
};

/*
 * Reads ?page and ?per_page (defaults 1 and def_per_page).  Returns true when valid; otherwise
 * adds messages to *errors (created when NULL) and returns false.
 */
bool pl_page_parse(const struct pl_req *req, long def_per_page, struct pl_page *pg,
                   json_t **errors);
/* Offset of the first row of the page. */
long long pl_page_offset(const struct pl_page *pg);

/*
 * Writes the paginator into out.  items[0..n) are serialized JSON values (the rows); public_base
 * is PARLEY_PUBLIC_URL; the URL path is the request's path with "/api" replaced by "/api/v1"
 * (a path that is public already, as the gateway's own, is kept).
 */
void pl_page_render(struct pl_buf *out, const struct pl_req *req, const char *public_base,
                    const struct pl_page *pg, long long total, const char *const *items, int n);
/* Replies 200 with the paginator of pl_page_render. */
enum MHD_Result pl_reply_page(struct pl_req *req, const char *public_base, const struct pl_page *pg,
                              long long total, const char *const *items, int n);

#endif
