/*
 * idem_digest.h - the hash a streamed request is known by for Idempotency-Key (idem.c): SHA-256
 * of a head ("METHOD path\n") and of the body as it passes in pieces of any size.
 *
 * A multipart body's boundary is a random string each client draws anew for every request, so a
 * retried upload differs from the first in it alone.  Every occurrence of the boundary named in
 * Content-Type is left out of the hash (one pass, left to right, as if removed from the whole
 * body first); tail holds the last bytes that may be the start of one.
 *
 * Header-only (static inline) so the unit test and the libFuzzer target reach it without the
 * gateway's other code.
 */
#ifndef GATEWAY_IDEM_DIGEST_H
#define GATEWAY_IDEM_DIGEST_H

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "parley/hex.h"

#define GW_BOUNDARY_MAX 70 /* RFC 2046 */
#define GW_DIGEST_PIECE 4096

struct gw_idem_digest {
    EVP_MD_CTX *md;
    char boundary[GW_BOUNDARY_MAX + 1], tail[GW_BOUNDARY_MAX];
    size_t blen, tlen;
};

/* The boundary parameter of a multipart Content-Type (quoted or not) into d, if there is one. */
static inline void
gw_digest_boundary(struct gw_idem_digest *d, const char *ctype)
{
    const char *b = ctype ? strcasestr(ctype, "boundary=") : NULL;
    size_t n;

    d->blen = 0;
    if (b == NULL || strncasecmp(ctype, "multipart/", 10) != 0)
        return;
    b += strlen("boundary=");
    if (*b == '"')
        n = strcspn(++b, "\"");
    else
        n = strcspn(b, "; \t");
    if (n > 0 && n <= GW_BOUNDARY_MAX) {
        memcpy(d->boundary, b, n);
        d->boundary[n] = '\0';
        d->blen = n;
    }
}

/* Starts d for a body of Content-Type ctype (NULL: none) after head.  False when out of memory. */
static inline bool
gw_digest_init(struct gw_idem_digest *d, const char *ctype, const char *head, size_t head_len)
{
    memset(d, 0, sizeof(*d));
    if ((d->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) != 1)
        return false;
    gw_digest_boundary(d, ctype);
    EVP_DigestUpdate(d->md, head, head_len);
    return true;
}

/* The next n bytes of the body. */
static inline void
gw_digest_add(struct gw_idem_digest *d, const char *data, size_t n)
{
    char buf[GW_DIGEST_PIECE + GW_BOUNDARY_MAX];

    if (d->blen == 0) {
        EVP_DigestUpdate(d->md, data, n);
        return;
    }
    while (n > 0) {
        size_t take = n < GW_DIGEST_PIECE ? n : GW_DIGEST_PIECE, len = d->tlen + take, from = 0;
        size_t keep;
        const char *hit;

        memcpy(buf, d->tail, d->tlen);
        memcpy(buf + d->tlen, data, take);
        data += take;
        n -= take;
        while ((hit = memmem(buf + from, len - from, d->boundary, d->blen)) != NULL) {
            EVP_DigestUpdate(d->md, buf + from, (size_t)(hit - (buf + from)));
            from = (size_t)(hit - buf) + d->blen;
        }
        /* a boundary starting in the last blen - 1 bytes would end in the next piece */
        keep = len - from < d->blen - 1 ? len - from : d->blen - 1;
        EVP_DigestUpdate(d->md, buf + from, len - from - keep);
        memcpy(d->tail, buf + len - keep, keep);
        d->tlen = keep;
    }
}

/* The hex hash of everything added; d is spent (gw_digest_free it). */
static inline void
gw_digest_end(struct gw_idem_digest *d, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned int n = 0;

    EVP_DigestUpdate(d->md, d->tail, d->tlen);
    d->tlen = 0;
    EVP_DigestFinal_ex(d->md, md, &n);
    pl_hex(md, n, out);
}

static inline void
gw_digest_free(struct gw_idem_digest *d)
{
    EVP_MD_CTX_free(d->md);
    d->md = NULL;
}

#endif
