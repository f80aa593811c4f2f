/*
 * fuzz_idem_digest.c - libFuzzer target for gateway/idem_digest.h, which reads upload bodies and
 * their Content-Type as they stream through the gateway.  The first byte picks a boundary length;
 * that many following bytes are the boundary (and go into a Content-Type, as a client could send
 * it), the rest is the body.  The hash of the body fed whole, fed in uneven pieces, and the hash
 * of the body with the boundary removed in one pass beforehand must all agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../gateway/idem_digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
run(const char *ctype, const char *body, size_t n, size_t first_step, char out[65])
{
    struct gw_idem_digest d;

    if (!gw_digest_init(&d, ctype, "H\n", 2))
        abort();
    for (size_t i = 0, step = first_step; i < n; i += step, step = step % 13 + 1)
        gw_digest_add(&d, body + i, n - i < step ? n - i : step);
    gw_digest_end(&d, out);
    gw_digest_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char ctype[64 + GW_BOUNDARY_MAX + 8], whole[65], pieces[65], want[65];
    struct gw_idem_digest probe;
    size_t blen, n, len = 2;
    const char *body;
    char *kept;

    if (size < 1)
        return 0;
    blen = data[0] % (GW_BOUNDARY_MAX + 1);
    if (size - 1 < blen)
        return 0;
    snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=\"%.*s\"", (int)blen,
             (const char *)data + 1);
    body = (const char *)data + 1 + blen;
    n = size - 1 - blen;
    run(ctype, body, n, n ? n : 1, whole);
    run(ctype, body, n, 1, pieces);
    if (strcmp(whole, pieces) != 0)
        abort();
    gw_digest_boundary(&probe, ctype); /* what the digest takes as the boundary */
    kept = malloc(n + 2);
    memcpy(kept, "H\n", 2);
    for (size_t i = 0; i < n;) {
        if (probe.blen > 0 && n - i >= probe.blen && memcmp(body + i, probe.boundary, probe.blen) == 0) {
            i += probe.blen;
            continue;
        }
        kept[len++] = body[i++];
    }
    pl_sha256_hex(kept, len, want);
    free(kept);
    if (strcmp(whole, want) != 0)
        abort();
    return 0;
}
