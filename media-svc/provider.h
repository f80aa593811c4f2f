/*
 * provider.h - media-svc's pure logic on channel providers' answers: what a WhatsApp Graph API
 * media lookup or a Telegram getFile answer says (where the file is, its announced size and
 * checksum, or that the id is unknown), what a download's HTTP status means, and the checks on
 * the strings that go into provider URLs.
 *
 * Header-only (static inline) so the unit tests reach it without linking the service.  Every
 * answer is untrusted: each member is type-checked, and anything unexpected is "failed" (502),
 * never a crash and never a guess.
 */
#ifndef MEDIA_PROVIDER_H
#define MEDIA_PROVIDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* Longest provider media id or file_id accepted (Telegram's are about 90 characters). */
#define MEDIA_PROVIDER_ID_MAX 512
/* Longest download URL or Telegram file_path taken from an answer. */
#define MEDIA_PROVIDER_URL_MAX 4096

enum media_answer {
    MEDIA_ANSWER_OK,      /* the file is there */
    MEDIA_ANSWER_GONE,    /* the provider says the id is unknown or expired: permanent (404) */
    MEDIA_ANSWER_TOO_BIG, /* the provider refuses the file for its size (413) */
    MEDIA_ANSWER_FAILED,  /* the provider failed or answered garbage: retryable (502) */
};

/* Where a file is, from a lookup answer; strings borrowed from the answer's JSON. */
struct media_located {
    const char *url;       /* WhatsApp: the download URL */
    const char *file_path; /* Telegram: the path below <base>/file/bot<token>/ */
    long long size;        /* the announced size in bytes; -1 when none */
    char sha256[65];       /* the announced SHA-256 as lowercase hex; "" when none or unreadable */
};

static inline bool
media_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline bool
media_unreserved(unsigned char c)
{
    return media_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * A provider media id or file_id as it may go into a URL path or query unescaped: 1 to
 * MEDIA_PROVIDER_ID_MAX RFC 3986 unreserved characters starting with a letter or digit (so never
 * "." or "..", which would climb out of the Graph API path).
 */
static inline bool
media_provider_id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;

    if (n == 0 || n > MEDIA_PROVIDER_ID_MAX || !media_alnum((unsigned char)id[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!media_unreserved((unsigned char)id[i]))
            return false;
    return true;
}

/* A Telegram file_path: relative, unreserved characters and '/', no empty, "." or ".." segment. */
static inline bool
media_file_path_ok(const char *p)
{
    size_t n = strlen(p), seg = 0, dots = 0;

    if (n == 0 || n > MEDIA_PROVIDER_URL_MAX)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            if (seg == 0 || seg == dots)
                return false; /* "", "." or ".." (or "...", refused too) */
            seg = dots = 0;
            continue;
        }
        if (!media_unreserved((unsigned char)p[i]))
            return false;
        seg++;
        dots += p[i] == '.';
    }
    return true;
}

/* An absolute http(s) URL without spaces or control characters (libcurl checks the rest). */
static inline bool
media_http_url_ok(const char *u)
{
    size_t n = strlen(u);

    if (n > MEDIA_PROVIDER_URL_MAX ||
        (strncasecmp(u, "https://", 8) != 0 && strncasecmp(u, "http://", 7) != 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= ' ' || (unsigned char)u[i] == 0x7f)
            return false;
    return true;
}

/* An announced size: a non-negative integer or a string of 1..18 digits; -1 otherwise. */
static inline long long
media_json_size(const json_t *v)
{
    long long n = 0;
    const char *s;

    if (json_is_integer(v))
        return json_integer_value(v) >= 0 ? (long long)json_integer_value(v) : -1;
    if (!json_is_string(v) || (s = json_string_value(v))[0] == '\0' || strlen(s) > 18)
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        n = n * 10 + (*s - '0');
    }
    return n;
}

/* The value of one base64 digit (standard or URL-safe alphabet), or -1. */
static inline int
media_b64_digit(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' || c == '-' ? 62 : c == '/' || c == '_' ? 63 : -1;
}

/*
 * A SHA-256 as the provider wrote it (64 hex digits, or 43 base64 digits with an optional '=')
 * into out[65] as lowercase hex.  False, with out "", for anything else.
 */
static inline bool
media_sha256_hex(const char *in, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    size_t n = strlen(in);
    unsigned char raw[33];
    unsigned acc = 0, bits = 0, k = 0;

    out[0] = '\0';
    if (n == 64 && strspn(in, "0123456789abcdefABCDEF") == 64) {
        for (size_t i = 0; i < 64; i++)
            out[i] = in[i] >= 'A' && in[i] <= 'F' ? (char)(in[i] - 'A' + 'a') : in[i];
        out[64] = '\0';
        return true;
    }
    if (n != 43 && !(n == 44 && in[43] == '='))
        return false;
    for (size_t i = 0; i < 43; i++) {
        int d = media_b64_digit(in[i]);

        if (d < 0)
            return false;
        acc = (acc << 6 | (unsigned)d) & 0xffffu;
        if ((bits += 6) >= 8) {
            bits -= 8;
            raw[k++] = (unsigned char)(acc >> bits);
        }
    }
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = digits[raw[i] >> 4];
        out[2 * i + 1] = digits[raw[i] & 15];
    }
    out[64] = '\0';
    return true;
}

static inline void
media_located_init(struct media_located *out)
{
    out->url = NULL;
    out->file_path = NULL;
    out->size = -1;
    out->sha256[0] = '\0';
}

/*
 * A Graph API media lookup answer (GET <base>/<media id>): 200 with an http(s) "url", and
 * optionally "file_size" and "sha256".  404, or the Graph error code 100 (object does not exist,
 * the id is malformed or expired), means the id is gone; anything else failed.
 */
static inline enum media_answer
media_whatsapp_lookup(long status, const json_t *body, struct media_located *out)
{
    const json_t *url = json_object_get(body, "url"), *sha = json_object_get(body, "sha256");
    const json_t *code = json_object_get(json_object_get(body, "error"), "code");

    media_located_init(out);
    if (status == 404 ||
        (status == 400 && json_is_integer(code) && json_integer_value(code) == 100))
        return MEDIA_ANSWER_GONE;
    if (status != 200 || !json_is_string(url) || !media_http_url_ok(json_string_value(url)))
        return MEDIA_ANSWER_FAILED;
    out->url = json_string_value(url);
    out->size = media_json_size(json_object_get(body, "file_size"));
    if (json_is_string(sha))
        media_sha256_hex(json_string_value(sha), out->sha256);
    return MEDIA_ANSWER_OK;
}

/*
 * A Bot API getFile answer: {"ok": true, "result": {"file_path", "file_size"?}}.  A 400 is
 * Telegram's answer to an unknown or malformed file_id (permanent), except "file is too big"
 * (the Bot API serves files up to 20 MB); anything else failed.
 */
static inline enum media_answer
media_telegram_getfile(long status, const json_t *body, struct media_located *out)
{
    const json_t *result = json_object_get(body, "result");
    const json_t *path = json_object_get(result, "file_path");
    const json_t *desc = json_object_get(body, "description");

    media_located_init(out);
    if (status == 400 && json_is_string(desc) && strstr(json_string_value(desc), "too big") != NULL)
        return MEDIA_ANSWER_TOO_BIG;
    if (status == 400)
        return MEDIA_ANSWER_GONE;
    if (status != 200 || !json_is_true(json_object_get(body, "ok")) || !json_is_string(path) ||
        !media_file_path_ok(json_string_value(path)))
        return MEDIA_ANSWER_FAILED;
    out->file_path = json_string_value(path);
    out->size = media_json_size(json_object_get(result, "file_size"));
    return MEDIA_ANSWER_OK;
}

/* The HTTP status of a file download: 200 is the file, 404 and 410 say it is gone. */
static inline enum media_answer
media_download_status(long status)
{
    if (status == 200)
        return MEDIA_ANSWER_OK;
    return status == 404 || status == 410 ? MEDIA_ANSWER_GONE : MEDIA_ANSWER_FAILED;
}

#endif
