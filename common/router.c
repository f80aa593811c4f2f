/*
 * router.c - route table matching.
 *
 * Patterns are split into segments once at start; a request walks the table comparing segments,
 * so matching allocates nothing.  A {name} segment matches any one non-empty segment.  Tables are
 * small (tens of routes), so a linear scan beats anything cleverer.
 */
#include "http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/err.h"

static void
compile(struct pl_croute *cr, const struct pl_route *r)
{
    char *p;

    cr->route = r;
    cr->nsegs = 0;
    cr->copy = strdup(r->pattern);
    PL_ASSERT(cr->copy != NULL && r->pattern[0] == '/');
    for (p = cr->copy + 1; *p != '\0' || cr->nsegs == 0;) {
        char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);

        PL_ASSERT(cr->nsegs < PL_ROUTE_MAX_SEGS);
        cr->is_param[cr->nsegs] = len > 2 && p[0] == '{' && p[len - 1] == '}';
        cr->seg[cr->nsegs] = cr->is_param[cr->nsegs] ? p + 1 : p;
        cr->seglen[cr->nsegs] = (unsigned short)(cr->is_param[cr->nsegs] ? len - 2 : len);
        cr->nsegs++;
        if (slash == NULL)
            break;
        p = slash + 1;
    }
}

void
pl_router_init(struct pl_router *rt, const struct pl_route *const *tables)
{
    int n = 0, i = 0;

    for (int t = 0; tables[t] != NULL; t++)
        for (const struct pl_route *r = tables[t]; r->method != NULL; r++)
            n++;
    rt->routes = calloc((size_t)n + 1, sizeof(*rt->routes));
    PL_ASSERT(rt->routes != NULL);
    for (int t = 0; tables[t] != NULL; t++)
        for (const struct pl_route *r = tables[t]; r->method != NULL; r++)
            compile(&rt->routes[i++], r);
    rt->n = n;
}

void
pl_router_cleanup(struct pl_router *rt)
{
    for (int i = 0; i < rt->n; i++)
        free(rt->routes[i].copy);
    free(rt->routes);
    rt->routes = NULL;
    rt->n = 0;
}

/* Matches path against one compiled route, filling m's params on success. */
static bool
match_path(const struct pl_croute *cr, const char *path, struct pl_match *m)
{
    const char *p = path + 1;

    m->nparams = 0;
    for (int s = 0; s < cr->nsegs; s++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);

        if (cr->is_param[s]) {
            if (len == 0 || m->nparams == PL_MAX_PARAMS)
                return false;
            m->name[m->nparams] = cr->seg[s];
            m->name_len[m->nparams] = cr->seglen[s];
            m->value[m->nparams] = p;
            m->value_len[m->nparams] = (unsigned short)(len > 0xffff ? 0xffff : len);
            m->nparams++;
        } else if (len != cr->seglen[s] || memcmp(p, cr->seg[s], len) != 0) {
            return false;
        }
        if (s == cr->nsegs - 1)
            return slash == NULL;
        if (slash == NULL)
            return false;
        p = slash + 1;
    }
    return false;
}

static void
allow_add(char *allow, size_t cap, const char *method)
{
    size_t n = strlen(allow);

    if (strstr(allow, method) != NULL)
        return;
    snprintf(allow + n, cap - n, "%s%s", n ? ", " : "", method);
}

enum pl_route_result
pl_router_match(const struct pl_router *rt, const char *method, const char *path,
                struct pl_match *m, char *allow, size_t allow_len)
{
    bool path_seen = false, head = strcmp(method, "HEAD") == 0;

    m->index = -1;
    if (allow_len)
        allow[0] = '\0';
    if (path == NULL || path[0] != '/')
        return PL_MATCH_NO_PATH;
    for (int i = 0; i < rt->n; i++) {
        struct pl_match tmp;

        if (!match_path(&rt->routes[i], path, &tmp))
            continue;
        if (strcmp(rt->routes[i].route->method, method) == 0 ||
            (head && strcmp(rt->routes[i].route->method, "GET") == 0)) {
            *m = tmp;
            m->index = i;
            return PL_MATCH_FOUND;
        }
        path_seen = true;
        if (allow_len)
            allow_add(allow, allow_len, rt->routes[i].route->method);
        if (allow_len && strcmp(rt->routes[i].route->method, "GET") == 0)
            allow_add(allow, allow_len, "HEAD");
    }
    if (path_seen && allow_len)
        allow_add(allow, allow_len, "OPTIONS");
    return path_seen ? PL_MATCH_NO_METHOD : PL_MATCH_NO_PATH;
}

bool
pl_request_id_valid(const char *id)
{
    size_t n = 0;

    if (id == NULL)
        return false;
    for (; id[n] != '\0'; n++) {
        char c = id[n];

        if (n == 128 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return n > 0;
}

int
pl_body_check(size_t max, uint64_t length, struct pl_err *err)
{
    if (length <= max)
        return PL_OK;
    return pl_err_set(err, 413, "body_too_large", "request body exceeds the limit of %zu bytes",
                      max);
}

bool
pl_content_type_is_json(const char *ct)
{
    size_t n;

    if (ct == NULL || *ct == '\0')
        return true;
    n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    /* Structured syntax suffix, e.g. application/merge-patch+json. */
    return n > 5 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}
