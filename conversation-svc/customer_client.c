/*
 * customer_client.c - asks customer-svc which customers exist, in one call per request:
 * GET {PARLEY_CUSTOMER_URL}/api/customers?per_page=200&ids=a,b,c answers a paginator whose data
 * lists the customers that exist; the missing ids are simply absent.  At most 100 ids are ever
 * asked for (CONV_PARTICIPANTS_MAX), so one page of 200 holds every answer.
 */
#include <string.h>
#include <strings.h>

#include "parley/arena.h"
#include "parley/buf.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "svc.h"

/* True when the paginator data lists a customer whose id is id. */
static bool
listed(const json_t *data, const char *id)
{
    size_t i;
    const json_t *c;

    json_array_foreach(data, i, c) {
        const char *cid = json_string_value(json_object_get(c, "id"));

        if (cid != NULL && strcasecmp(cid, id) == 0)
            return true;
    }
    return false;
}

/* The lookup URL, in the arena.  The ids are validated UUIDs, so they need no escaping. */
static const char *
lookup_url(struct pl_req *req, const char *const *ids, int n)
{
    const struct svc_ctx *ctx = pl_req_ctx(req);
    const char *base = ctx->cfg->customer_url;
    size_t len = strlen(base);
    struct pl_buf b = PL_BUF_INIT;
    const char *url;

    while (len > 0 && base[len - 1] == '/')
        len--;
    pl_buf_append(&b, base, len);
    pl_buf_printf(&b, "/api/customers?per_page=%d&ids=", CONV_PARTICIPANTS_MAX * 2);
    for (int i = 0; i < n; i++)
        pl_buf_printf(&b, "%s%s", i > 0 ? "," : "", ids[i]);
    url = pl_arena_strdup(pl_req_arena(req), b.data);
    pl_buf_cleanup(&b);
    return url;
}

int
conv_customers_check(struct pl_req *req, const char *const *ids, int n, const char *field,
                     json_t **errors, struct pl_err *err)
{
    struct pl_client_resp resp = { 0 };
    const json_t *data;
    int rc = PL_OK;

    if (pl_client_call(pl_req_arena(req), "GET", lookup_url(req, ids, n), NULL,
                       CONV_UPSTREAM_TIMEOUT_MS, &resp, err) != PL_OK)
        return PL_ERR;
    data = json_object_get(resp.json, "data");
    if (resp.status != 200 || !json_is_array(data)) {
        pl_log_error("customer-svc answered %ld to a customer lookup", resp.status);
        return pl_err_set(err, 502, "upstream_bad_response",
                          "the customer service gave an unexpected answer");
    }
    for (int i = 0; i < n; i++) {
        if (!listed(data, ids[i])) {
            pl_json_error_add(errors, field, "customer \"%s\" does not exist", ids[i]);
            rc = PL_ERR;
        }
    }
    return rc;
}
