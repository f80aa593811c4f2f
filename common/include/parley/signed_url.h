/*
 * signed_url.h - media download links (SPEC 10): signature = hex HMAC-SHA256 of "{id}.{expires}"
 * under PARLEY_MEDIA_URL_SECRET, expires in unix seconds.  media-svc signs; media-svc and the
 * gateway check.
 */
#ifndef PARLEY_SIGNED_URL_H
#define PARLEY_SIGNED_URL_H

#include <stdbool.h>

#define PL_SIGNED_URL_HEX 64

/* The signature of id and expires, into out[PL_SIGNED_URL_HEX + 1]. */
void pl_signed_url_sign(const char *secret, const char *id, long long expires, char *out);
/*
 * True when expires (decimal text, NULL-safe) and signature (NULL-safe) sign id and expires is
 * not before now.  The comparison takes the same time wherever the first difference is.
 */
bool pl_signed_url_valid(const char *secret, const char *id, const char *expires,
                         const char *signature, long long now);

#endif
