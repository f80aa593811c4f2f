/*
 * fuzz_router.c - libFuzzer target for the request line parsers of common/: route matching of
 * arbitrary paths and methods, X-Request-Id validation and Content-Type recognition.
 * Input: "METHOD\nPATH\nREQUEST-ID\nCONTENT-TYPE" (missing parts are empty).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum MHD_Result
nop(struct pl_req *req)
{
    (void)req;
    return MHD_YES;
}

static const struct pl_route routes[] = {
    { "GET", "/api/customers", nop, 0 },
    { "POST", "/api/customers", nop, PL_ROUTE_JSON },
    { "GET", "/api/customers/{id}", nop, 0 },
    { "PATCH", "/api/customers/{id}", nop, PL_ROUTE_JSON },
    { "GET", "/api/customers/external/{type}/{external_id}", nop, 0 },
    { "GET", "/api/a/{b}/c/{d}/e/{f}/g/{h}", nop, 0 },
    { NULL, NULL, NULL, 0 },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pl_router rt;
    static int ready;
    const struct pl_route *tables[] = { routes, NULL };
    char *text = malloc(size + 1), *part[4] = { "", "", "", "" }, *p;
    struct pl_match m;
    char allow[64];

    if (!ready) {
        pl_router_init(&rt, tables);
        ready = 1;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    p = text;
    for (int i = 0; i < 4 && p != NULL; i++) {
        part[i] = p;
        p = strchr(p, '\n');
        if (p != NULL)
            *p++ = '\0';
    }
    if (pl_router_match(&rt, part[0], part[1], &m, allow, sizeof(allow)) == PL_MATCH_FOUND) {
        for (int i = 0; i < m.nparams; i++)
            if (m.value[i] < part[1] || m.value[i] + m.value_len[i] > part[1] + strlen(part[1]))
                abort(); /* a captured value must lie inside the path */
    }
    (void)pl_request_id_valid(part[2]);
    (void)pl_content_type_is_json(part[3]);
    free(text);
    return 0;
}
