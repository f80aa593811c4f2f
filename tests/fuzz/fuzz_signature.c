/*
 * fuzz_signature.c - libFuzzer target for inbound-svc/signature.h: the X-Hub-Signature-256
 * header parser, the HMAC verification over the exact body bytes, and the constant-time
 * Telegram secret token comparison.
 *
 * Input: "SECRET\nHEADER\nBODY" (SECRET and HEADER end at the first and second newline; a
 * missing part is empty; BODY is every byte after, NULs included).  Each function is held to a
 * plain reference written here from the documented format ("sha256=" then 64 hex digits of the
 * HMAC-SHA256 of the raw body under the app secret):
 *   - inb_sig_parse accepts exactly the headers the reference accepts, with the same bytes;
 *   - inb_sig_check is true exactly when the header names the body's HMAC;
 *   - inb_sig_make's header verifies, and fails once one digit or one body byte changes;
 *   - inb_token_equal is strcmp's equality, and false for a missing token.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../inbound-svc/signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input's three parts; secret and header are NUL-terminated copies, body is borrowed. */
struct parts {
    char *secret, *header;
    const uint8_t *body;
    size_t body_len;
};

/* Copies data[0..end of line) into a new string and advances past the newline. */
static char *
take_line(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = memchr(*data, '\n', *size);
    size_t n = nl ? (size_t)(nl - *data) : *size;
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    memcpy(s, *data, n);
    s[n] = '\0';
    *data += nl ? n + 1 : n;
    *size -= nl ? n + 1 : n;
    return s;
}

/* The reference parser: "sha256=" in any case, then exactly 64 hex digits. */
static bool
ref_parse(const char *h, unsigned char out[INB_SIG_LEN])
{
    static const char digits[] = "0123456789abcdef";

    if (strlen(h) != 7 + 2 * INB_SIG_LEN || strncasecmp(h, "sha256=", 7) != 0)
        return false;
    for (size_t i = 0; i < 2 * INB_SIG_LEN; i++) {
        int c = tolower((unsigned char)h[7 + i]);
        const char *p = c ? strchr(digits, c) : NULL;

        if (p == NULL)
            return false;
        if (i % 2 == 0)
            out[i / 2] = (unsigned char)((p - digits) << 4);
        else
            out[i / 2] |= (unsigned char)(p - digits);
    }
    return true;
}

/* The parser agrees with the reference, and check with "parsed and equal to the HMAC". */
static void
check_given_header(const struct parts *p, const unsigned char want[INB_SIG_LEN])
{
    unsigned char got[INB_SIG_LEN], ref[INB_SIG_LEN];
    bool ok = inb_sig_parse(p->header, got);

    if (ok != ref_parse(p->header, ref) || (ok && memcmp(got, ref, INB_SIG_LEN) != 0))
        abort();
    if (inb_sig_check(p->secret, p->body, p->body_len, p->header) !=
        (ok && memcmp(got, want, INB_SIG_LEN) == 0))
        abort();
}

/* inb_sig_make's header verifies; a changed digit or an extra body byte does not. */
static void
check_made_header(const struct parts *p, char made[72], unsigned char want[INB_SIG_LEN])
{
    uint8_t *longer = malloc(p->body_len + 1);

    if (longer == NULL)
        abort();
    if (!ref_parse(made, want) || !inb_sig_check(p->secret, p->body, p->body_len, made))
        abort();
    memcpy(longer, p->body, p->body_len);
    longer[p->body_len] = ' '; /* what a re-serialising JSON library might add */
    if (inb_sig_check(p->secret, longer, p->body_len + 1, made))
        abort();
    made[70] = made[70] == '0' ? '1' : '0';
    if (inb_sig_check(p->secret, p->body, p->body_len, made))
        abort();
    free(longer);
}

/* The token comparison is plain equality, whatever the lengths. */
static void
check_token(const struct parts *p)
{
    if (inb_token_equal(p->header, p->secret) != (strcmp(p->header, p->secret) == 0) ||
        inb_token_equal(NULL, p->secret) || inb_token_equal(p->header, NULL))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct parts p;
    unsigned char want[INB_SIG_LEN];
    char made[72], event_id[65];

    p.secret = take_line(&data, &size);
    p.header = take_line(&data, &size);
    p.body = data;
    p.body_len = size;
    inb_sig_make(p.secret, p.body, p.body_len, made);
    check_made_header(&p, made, want);
    check_given_header(&p, want);
    check_token(&p);
    inb_sha256_hex(p.body, p.body_len, event_id);
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)event_id[i]) || isupper((unsigned char)event_id[i]))
            abort();
    free(p.secret);
    free(p.header);
    return 0;
}
