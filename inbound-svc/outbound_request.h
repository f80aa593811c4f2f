/*
 * outbound_request.h - what a delivery sends (SPEC 6 and 10): whether a message's content can go
 * to a channel at all, and the JSON body of the provider request, text or media.
 *
 * Header-only (static inline), like outbound_rules.h, so tests/unit/inbound-svc/test_outbound.c
 * reaches it while linking only libparley.  No I/O, no globals; every function is thread-safe.
 *
 * Media go by link: media-svc's signed download URL (SPEC 10 "Media"), which the provider fetches
 * without an API key.  The one exception is a Telegram document that is not a PDF, GIF or ZIP:
 * Telegram's sendDocument fetches only those by URL, so any other file is uploaded with the
 * request (multipart/form-data, outbound_upload.c).  WhatsApp Cloud API message object: "type"
 * names a member holding {"link", "caption"} ("filename" too for a document); audio and sticker
 * take no caption, and a voice message is sent as audio.  Telegram Bot API: sendPhoto, sendVideo,
 * sendAudio, sendVoice, sendDocument and sendSticker, the URL as the file parameter and the body
 * as "caption" (a sticker takes none).
 *
 * Captions are at most OUTB_CAPTION_MAX characters on both channels.  A body that cannot travel
 * as the caption (too long, or on a type that takes no caption there) fails the message for good
 * before any call, with its own code: Parley never sends something other than what was written,
 * and never splits one message into two provider messages (one message, one provider id).
 */
#ifndef INBOUND_OUTBOUND_REQUEST_H
#define INBOUND_OUTBOUND_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OUTB_CAPTION_MAX 1024 /* WhatsApp and Telegram media captions, in characters */

/* How one content_type travels on each channel. */
struct outb_kind {
    const char *content_type;
    bool media;            /* needs a media_id (a file), sent by link */
    const char *wa_type;   /* WhatsApp message "type" (and the member holding the object) */
    bool wa_caption;       /* the WhatsApp object takes a caption */
    const char *tg_method; /* Telegram Bot API method */
    const char *tg_field;  /* its text or file parameter */
    bool tg_caption;       /* the Telegram method takes a caption */
};

/* The kind of content_type (NULL is text), or NULL when it is not sent to channels. */
static inline const struct outb_kind *
outb_kind_of(const char *content_type)
{
    static const struct outb_kind kinds[] = {
        { "text", false, "text", false, "sendMessage", "text", false },
        { "image", true, "image", true, "sendPhoto", "photo", true },
        { "video", true, "video", true, "sendVideo", "video", true },
        { "audio", true, "audio", false, "sendAudio", "audio", true },
        { "voice", true, "audio", false, "sendVoice", "voice", true },
        { "document", true, "document", true, "sendDocument", "document", true },
        { "sticker", true, "sticker", false, "sendSticker", "sticker", false },
    };

    if (content_type == NULL)
        return &kinds[0];
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].content_type, content_type) == 0)
            return &kinds[i];
    return NULL;
}

/*
 * The length of UTF-8 text s as a channel counts it: Telegram in UTF-16 code units (a character
 * outside the BMP counts twice, as in its entity offsets), WhatsApp in code points.
 */
static inline size_t
outb_text_length(const char *s, bool utf16)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p & 0xC0) == 0x80)
            continue; /* a continuation byte */
        n += utf16 && *p >= 0xF0 ? 2 : 1;
    }
    return n;
}

/*
 * Whether a message (content_type, media_id, body) can go to provider.  Returns NULL with *kind
 * set when it can; else a stable error code for SPEC 10's error object, with the reason in
 * msg[cap]: unsupported_content_type, media_id_missing, caption_not_supported, caption_too_long.
 */
static inline const char *
outb_content_check(const char *provider, const char *content_type, const char *media_id,
                   const char *body, const struct outb_kind **kind, char *msg, size_t cap)
{
    const struct outb_kind *k = outb_kind_of(content_type);
    bool whatsapp = strcmp(provider, "whatsapp") == 0;
    size_t len;

    *kind = k;
    if (k == NULL) {
        snprintf(msg, cap, "%s messages are not sent to channels", content_type);
        return "unsupported_content_type";
    }
    if (!k->media)
        return NULL;
    if (media_id == NULL || *media_id == '\0') {
        snprintf(msg, cap, "a %s message needs a media_id", k->content_type);
        return "media_id_missing";
    }
    if (body == NULL || *body == '\0')
        return NULL;
    if (!(whatsapp ? k->wa_caption : k->tg_caption)) {
        snprintf(msg, cap, "%s takes no caption for %s messages: send the text on its own",
                 provider, k->content_type);
        return "caption_not_supported";
    }
    if ((len = outb_text_length(body, !whatsapp)) > OUTB_CAPTION_MAX) {
        snprintf(msg, cap, "the caption is %zu characters; %s takes at most %d", len, provider,
                 OUTB_CAPTION_MAX);
        return "caption_too_long";
    }
    return NULL;
}

/* What one provider request carries.  Strings borrowed. */
struct outb_payload {
    const char *recipient;        /* wa_id, WhatsApp group id, or Telegram chat id */
    bool group;                   /* WhatsApp recipient_type "group" */
    const struct outb_kind *kind; /* from outb_content_check */
    const char *body;             /* the text, or the caption ("" or NULL: none) */
    const char *link;             /* media: the signed download URL */
    const char *filename;         /* document: the file's name, or NULL */
    const char *media_type;       /* document: the stored Content-Type, or NULL */
    const char *upload;           /* a file to upload instead of the link, or NULL */
};

/*
 * Whether Telegram can take the media of kind k, of the given Content-Type, by URL: every kind
 * but a document that is not a PDF, GIF or ZIP ("In sendDocument, sending by URL will currently
 * only work for GIF, PDF and ZIP files", Bot API, "Sending files").
 */
static inline bool
outb_telegram_by_link(const struct outb_kind *k, const char *media_type)
{
    static const char *const by_url[] = { "application/pdf", "image/gif", "application/zip" };
    size_t n;

    if (strcmp(k->tg_method, "sendDocument") != 0)
        return true;
    if (media_type == NULL)
        return false;
    n = strcspn(media_type, "; \t");
    for (size_t i = 0; i < sizeof(by_url) / sizeof(by_url[0]); i++)
        if (strlen(by_url[i]) == n && strncasecmp(media_type, by_url[i], n) == 0)
            return true;
    return false;
}

/* The WhatsApp Cloud API message object of p (a new reference). */
static inline json_t *
outb_whatsapp_request(const struct outb_payload *p)
{
    const struct outb_kind *k = p->kind;
    const char *body = p->body ? p->body : "";
    json_t *obj;

    if (!k->media) {
        obj = json_pack("{s:s}", "body", body);
    } else {
        obj = json_pack("{s:s}", "link", p->link ? p->link : "");
        if (k->wa_caption && *body != '\0')
            json_object_set_new(obj, "caption", json_string(body));
        if (strcmp(k->wa_type, "document") == 0 && p->filename != NULL && *p->filename != '\0')
            json_object_set_new(obj, "filename", json_string(p->filename));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "messaging_product", "whatsapp",
                     "recipient_type", p->group ? "group" : "individual", "to", p->recipient,
                     "type", k->wa_type, k->wa_type, obj);
}

/* The Telegram Bot API parameters of p (a new reference), and the method in *method. */
static inline json_t *
outb_telegram_request(const struct outb_payload *p, const char **method)
{
    const struct outb_kind *k = p->kind;
    const char *body = p->body ? p->body : "";
    char *end;
    long long chat = strtoll(p->recipient, &end, 10);
    json_t *j;

    /* A numeric chat id goes as a number; "@channelname" stays a string. */
    if (*p->recipient != '\0' && *end == '\0')
        j = json_pack("{s:I}", "chat_id", (json_int_t)chat);
    else
        j = json_pack("{s:s}", "chat_id", p->recipient);
    if (!k->media) {
        json_object_set_new(j, k->tg_field, json_string(body));
    } else {
        json_object_set_new(j, k->tg_field, json_string(p->link ? p->link : ""));
        if (k->tg_caption && *body != '\0')
            json_object_set_new(j, "caption", json_string(body));
    }
    *method = k->tg_method;
    return j;
}

#endif
