/*
 * signature.h - proof that a delivery comes from the channel (SPEC 5).
 *
 * WhatsApp signs each delivery with X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the
 * raw body under the app secret.  The HMAC is computed over the exact bytes received (a body
 * parsed and serialized again differs and fails), and compared with CRYPTO_memcmp so the time
 * taken says nothing about how many bytes matched.  Telegram sends a shared secret token;
 * comparing SHA-256 digests of both sides keeps that constant-time whatever the lengths.
 *
 * Header-only so the unit tests and fuzzers reach it.  Thread-safe (no state).
 */
#ifndef INBOUND_SIGNATURE_H
#define INBOUND_SIGNATURE_H

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define INB_SIG_PREFIX "sha256="
#define INB_SIG_LEN 32

static inline int
inb_hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Parses an X-Hub-Signature-256 value ("sha256=" then exactly 64 hex digits, either case) into
 * out.  Returns false for anything else, NULL included.
 */
static inline bool
inb_sig_parse(const char *header, unsigned char out[INB_SIG_LEN])
{
    size_t plen = sizeof(INB_SIG_PREFIX) - 1;

    if (header == NULL || strncasecmp(header, INB_SIG_PREFIX, plen) != 0 ||
        strlen(header + plen) != 2 * INB_SIG_LEN)
        return false;
    header += plen;
    for (size_t i = 0; i < INB_SIG_LEN; i++) {
        int hi = inb_hex_nibble(header[2 * i]), lo = inb_hex_nibble(header[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* True when header is the valid signature of body[0..n) under secret. */
static inline bool
inb_sig_check(const char *secret, const void *body, size_t n, const char *header)
{
    unsigned char given[INB_SIG_LEN], want[EVP_MAX_MD_SIZE];
    unsigned int wlen = 0;

    if (!inb_sig_parse(header, given))
        return false;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), body ? body : (const void *)"", n, want,
             &wlen) == NULL || wlen != INB_SIG_LEN)
        return false;
    return CRYPTO_memcmp(given, want, INB_SIG_LEN) == 0;
}

/* Writes "sha256=<hex>" of body under secret into out[72] (tests and tools). */
static inline void
inb_sig_make(const char *secret, const void *body, size_t n, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const char hex[] = "0123456789abcdef";

    HMAC(EVP_sha256(), secret, (int)strlen(secret), body ? body : (const void *)"", n, md, &len);
    memcpy(out, INB_SIG_PREFIX, sizeof(INB_SIG_PREFIX) - 1);
    for (unsigned int i = 0; i < len && i < INB_SIG_LEN; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[7 + 2 * i + 1] = hex[md[i] & 15];
    }
    out[7 + 2 * INB_SIG_LEN] = '\0';
}

/* Constant-time equality of a given secret token (NULL = missing) with the expected one. */
static inline bool
inb_token_equal(const char *given, const char *want)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];

    if (given == NULL || want == NULL)
        return false;
    SHA256((const unsigned char *)given, strlen(given), a);
    SHA256((const unsigned char *)want, strlen(want), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

/* Writes the lowercase hex SHA-256 of body[0..n) into out[65] (the WhatsApp event id). */
static inline void
inb_sha256_hex(const void *body, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    static const char hex[] = "0123456789abcdef";

    SHA256(body ? body : (const void *)"", n, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

#endif
