/*
 * outbound_rules.h - the pure decisions of outbound delivery (SPEC 6 and 10): which channel
 * identity a message goes to, what a provider's answer means (sent, retry, or failed for good),
 * and how long to wait before the next try.
 *
 * Header-only (static inline), like items.h, so tests/unit/inbound-svc/test_outbound.c reaches it
 * while linking only libparley.  No I/O, no globals; every function is thread-safe.
 *
 * Retry classes are exactly those of SPEC 10: no answer (transport error, timeout), HTTP 5xx,
 * HTTP 429 (waiting at least its Retry-After, or Telegram's parameters.retry_after), and the
 * WhatsApp throttling codes 4, 80007, 130429, 131048 and 131056.  Everything else is permanent.
 */
#ifndef INBOUND_OUTBOUND_RULES_H
#define INBOUND_OUTBOUND_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTB_ID_MAX 160
#define OUTB_RETRY_AFTER_MAX_S 86400 /* a provider's wait longer than a day is taken as a day */

enum outb_class { OUTB_SENT, OUTB_RETRY, OUTB_PERMANENT };

/* What one attempt came to. */
struct outb_result {
    enum outb_class cls;
    long http_status;                     /* 0 when no answer came */
    char provider_message_id[OUTB_ID_MAX]; /* with OUTB_SENT: the external_message_id */
    char code[48];                        /* the provider's code as a string */
    char message[240];                    /* the provider's text (never a token) */
    long retry_after_s;                   /* the wait the provider asked for, or -1 */
};

/* Where a message goes: the channel, its address there, and the business identity sending it. */
struct outb_route {
    const char *provider;  /* "whatsapp" | "telegram" */
    const char *recipient; /* wa_id, WhatsApp group id, or Telegram chat id */
    const char *sender;    /* WhatsApp phone_number_id; Telegram: NULL (the bot of the token) */
    bool group;            /* recipient is a group chat (conversation metadata.channel_chat_id) */
    char chat_buf[32];     /* storage for a chat id kept as a JSON number */
};

/* True for the WhatsApp error codes SPEC 10 lists as throttling (retry later). */
static inline bool
outb_wa_code_retryable(long long code)
{
    return code == 4 || code == 80007 || code == 130429 || code == 131048 || code == 131056;
}

/* Seconds from a Retry-After value in delta-seconds form; -1 when absent or not a number. */
static inline long
outb_retry_after_parse(const char *v)
{
    char *end;
    long n;

    if (v == NULL)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v < '0' || *v > '9')
        return -1;
    n = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end != '\0' || n < 0)
        return -1;
    return n > OUTB_RETRY_AFTER_MAX_S ? OUTB_RETRY_AFTER_MAX_S : n;
}

/*
 * Delay before the try after `attempt` tries failed: base * 2^(attempt - 1), at most cap, less up
 * to a fifth drawn from rnd (jitter, so throttled senders do not return in step), and never
 * shorter than the provider's retry_after_s.
 */
static inline long
outb_backoff_ms(long base_ms, long cap_ms, long attempt, long retry_after_s, unsigned rnd)
{
    long d = base_ms;

    for (long i = 1; i < attempt && d < cap_ms; i++)
        d *= 2;
    if (d > cap_ms)
        d = cap_ms;
    if (d >= 5)
        d -= (long)(rnd % (unsigned)(d / 5 + 1));
    if (retry_after_s >= 0 && retry_after_s * 1000 > d)
        d = retry_after_s * 1000;
    return d;
}

/* Cuts a UTF-8 sequence that truncation left incomplete at the end of s. */
static inline void
outb_utf8_trim(char *s)
{
    size_t n = strlen(s), i = n, need;
    unsigned char lead;

    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    lead = (unsigned char)s[i - 1];
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (i - 1 + need > n)
        s[i - 1] = '\0';
}

/* Copies src (NULL = "") into dst[cap], cut to fit on a character boundary. */
static inline void
outb_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;

    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    outb_utf8_trim(dst);
}

/* Fills the error side of r. */
static inline void
outb_result_error(struct outb_result *r, enum outb_class cls, const char *code, const char *msg)
{
    r->cls = cls;
    outb_copy(r->code, sizeof(r->code), code);
    outb_copy(r->message, sizeof(r->message), msg);
}

/*
 * Fills r for a try that ended without a provider answer (no HTTP status, no Retry-After).
 * Returns false, so a failing step is one line.
 */
static inline bool
outb_result_unanswered(struct outb_result *r, enum outb_class cls, const char *code,
                       const char *msg)
{
    r->http_status = 0;
    r->retry_after_s = -1;
    outb_result_error(r, cls, code, msg);
    return false;
}

/* The class of an HTTP status without a more specific provider code. */
static inline enum outb_class
outb_http_class(long status)
{
    return status >= 500 || status == 429 ? OUTB_RETRY : OUTB_PERMANENT;
}

/*
 * A WhatsApp Cloud API answer (status, parsed body or NULL, Retry-After header seconds or -1):
 * 2xx with messages[0].id is sent; a Graph error {"error":{"code","message"}} is classified by its
 * code and the HTTP status.  A 2xx without an id is permanent: the provider may have taken the
 * message, so sending it again could deliver it twice.
 */
static inline void
outb_classify_whatsapp(long status, const json_t *body, long retry_after_s,
                       struct outb_result *r)
{
    const json_t *err = json_object_get(body, "error");
    const json_t *jcode = json_object_get(err, "code");
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(body, "messages"), 0), "id"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    char code[48];
    enum outb_class cls;

    r->http_status = status;
    r->retry_after_s = retry_after_s;
    if (status >= 200 && status < 300 && id != NULL && *id != '\0' && strlen(id) < OUTB_ID_MAX) {
        r->cls = OUTB_SENT;
        outb_copy(r->provider_message_id, sizeof(r->provider_message_id), id);
        return;
    }
    if (status >= 200 && status < 300) {
        outb_result_error(r, OUTB_PERMANENT, "invalid_response",
                          "the provider accepted the request without a usable message id");
        return;
    }
    cls = outb_http_class(status);
    if (json_is_integer(jcode)) {
        snprintf(code, sizeof(code), "%lld", (long long)json_integer_value(jcode));
        if (outb_wa_code_retryable(json_integer_value(jcode)))
            cls = OUTB_RETRY;
    } else {
        snprintf(code, sizeof(code), "%ld", status);
    }
    outb_result_error(r, cls, code, msg ? msg : "the provider refused the message");
}

/*
 * A Telegram Bot API answer: {"ok":true,"result":{"message_id","chat":{"id"}}} is sent, with the
 * external id "<chat id>:<message id>" (the chat of the answer, else chat_id); otherwise
 * error_code/description, 429 waiting parameters.retry_after.
 */
static inline void
outb_classify_telegram(long status, const json_t *body, const char *chat_id, long retry_after_s,
                       struct outb_result *r)
{
    const json_t *res = json_object_get(body, "result");
    const json_t *mid = json_object_get(res, "message_id");
    const json_t *chat = json_object_get(json_object_get(res, "chat"), "id");
    const json_t *ecode = json_object_get(body, "error_code");
    const json_t *ra = json_object_get(json_object_get(body, "parameters"), "retry_after");
    const char *desc = json_string_value(json_object_get(body, "description"));
    char code[48];

    r->http_status = status;
    r->retry_after_s = json_is_integer(ra) ? (long)json_integer_value(ra) : retry_after_s;
    if (r->retry_after_s > OUTB_RETRY_AFTER_MAX_S)
        r->retry_after_s = OUTB_RETRY_AFTER_MAX_S;
    if (status >= 200 && status < 300 && json_is_true(json_object_get(body, "ok")) &&
        json_is_integer(mid)) {
        r->cls = OUTB_SENT;
        if (json_is_integer(chat))
            snprintf(r->provider_message_id, sizeof(r->provider_message_id), "%lld:%lld",
                     (long long)json_integer_value(chat), (long long)json_integer_value(mid));
        else
            snprintf(r->provider_message_id, sizeof(r->provider_message_id), "%s:%lld", chat_id,
                     (long long)json_integer_value(mid));
        return;
    }
    if (status >= 200 && status < 300) {
        outb_result_error(r, OUTB_PERMANENT, "invalid_response",
                          "the provider accepted the request without a message id");
        return;
    }
    snprintf(code, sizeof(code), "%lld",
             json_is_integer(ecode) ? (long long)json_integer_value(ecode) : (long long)status);
    outb_result_error(r, outb_http_class(status), code,
                      desc ? desc : "the provider refused the message");
}

/* The customer of id in the batch answer's data[], or NULL. */
static inline const json_t *
outb_customer(const json_t *customers, const char *id)
{
    size_t i;
    const json_t *c;

    json_array_foreach(customers, i, c) {
        const char *cid = json_string_value(json_object_get(c, "id"));

        if (cid != NULL && id != NULL && strcmp(cid, id) == 0)
            return c;
    }
    return NULL;
}

/*
 * The first active participant (left_at null) of conv other than skip whose customer has
 * external_type type; returns its external_id or NULL.  prefer, when not NULL and such a
 * participant, wins.
 */
static inline const char *
outb_participant_ext(const json_t *conv, const json_t *customers, const char *type,
                     const char *skip, const char *prefer)
{
    const json_t *parts = json_object_get(conv, "participants"), *p;
    const char *found = NULL;
    size_t i;

    json_array_foreach(parts, i, p) {
        const char *id = json_string_value(json_object_get(p, "customer_id"));
        const json_t *c = outb_customer(customers, id);
        const char *t = json_string_value(json_object_get(c, "external_type"));
        const char *ext = json_string_value(json_object_get(c, "external_id"));

        if (!json_is_null(json_object_get(p, "left_at")) || t == NULL || ext == NULL ||
            strcmp(t, type) != 0 || (skip != NULL && strcmp(id, skip) == 0))
            continue;
        if (prefer != NULL && strcmp(id, prefer) == 0)
            return ext;
        if (found == NULL)
            found = ext;
    }
    return found;
}

/*
 * Picks the route of a message (SPEC 10): the channel is the message's channel when given, else
 * the type of the first participant that is a whatsapp or telegram customer; the recipient is that
 * customer (never the sender), or the group chat of conversation metadata.channel_chat_id; a
 * WhatsApp send goes from the whatsapp_business participant (the sender first), else from
 * default_pnid.  Returns NULL when the message has no channel identity, else a static reason on
 * failure ("...") with out unset, or "" with out filled.
 */
static inline const char *
outb_route_pick(const json_t *conv, const json_t *customers, const char *channel,
                const char *sender_id, const char *default_pnid, struct outb_route *out)
{
    const json_t *chat = json_object_get(json_object_get(conv, "metadata"), "channel_chat_id");
    static const char *const kinds[] = { "whatsapp", "telegram", NULL };
    const char *to = NULL;

    for (int i = 0; channel == NULL && kinds[i] != NULL; i++)
        if (outb_participant_ext(conv, customers, kinds[i], sender_id, NULL) != NULL)
            channel = kinds[i];
    if (channel == NULL || (strcmp(channel, "whatsapp") != 0 && strcmp(channel, "telegram") != 0))
        return NULL;
    memset(out, 0, sizeof(*out));
    out->provider = strcmp(channel, "whatsapp") == 0 ? "whatsapp" : "telegram";
    if (json_is_string(chat) && json_string_length(chat) > 0) {
        to = json_string_value(chat);
        out->group = true;
    } else if (json_is_integer(chat)) {
        snprintf(out->chat_buf, sizeof(out->chat_buf), "%lld", (long long)json_integer_value(chat));
        to = out->chat_buf;
        out->group = true;
    } else {
        to = outb_participant_ext(conv, customers, out->provider, sender_id, NULL);
    }
    if (to == NULL)
        return NULL;
    out->recipient = to;
    if (out->provider[0] == 'w') {
        out->sender = outb_participant_ext(conv, customers, "whatsapp_business", NULL, sender_id);
        if (out->sender == NULL && default_pnid != NULL && *default_pnid != '\0')
            out->sender = default_pnid;
        if (out->sender == NULL)
            return "no whatsapp_business participant and no PARLEY_WHATSAPP_PHONE_NUMBER_ID";
    }
    return "";
}

#endif
