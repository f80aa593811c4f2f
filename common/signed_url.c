/*
 * signed_url.c - signing and checking media download links (signed_url.h).
 */
#include "parley/signed_url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "parley/err.h"
#include "parley/hex.h"

void
pl_signed_url_sign(const char *secret, const char *id, long long expires, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char msg[160];
    int n = snprintf(msg, sizeof(msg), "%.128s.%lld", id, expires);

    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, (size_t)n, mac,
         &len);
    PL_ASSERT(len == PL_SIGNED_URL_HEX / 2);
    pl_hex(mac, len, out);
}

/* Up to 18 decimal digits and nothing else, or -1. */
static long long
parse_expires(const char *s)
{
    long long v = 0;
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9' && n < 18)
        v = v * 10 + (s[n++] - '0');
    return n > 0 && s[n] == '\0' ? v : -1;
}

bool
pl_signed_url_valid(const char *secret, const char *id, const char *expires,
                    const char *signature, long long now)
{
    char want[PL_SIGNED_URL_HEX + 1];
    long long exp = expires != NULL ? parse_expires(expires) : -1;

    if (exp < now || signature == NULL || strlen(signature) != PL_SIGNED_URL_HEX ||
        strlen(id) > 128)
        return false;
    pl_signed_url_sign(secret, id, exp, want);
    return CRYPTO_memcmp(want, signature, PL_SIGNED_URL_HEX) == 0;
}
