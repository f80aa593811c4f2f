/*
 * sniff.h - media-svc's pure logic on untrusted bytes: the type of a file from its magic bytes
 * (never from the client's header or extension), image dimensions from the image headers, a
 * streaming validator for plain UTF-8 text, and the filename sanitiser of SPEC section 10.
 *
 * Header-only (static inline) so the unit tests and the libFuzzer target reach it without linking
 * the service.  Every parser reads only inside [p, p + n): lengths are checked before each read.
 *
 * The allowlist: PNG, JPEG, GIF, WebP, MP4/3GP/M4A (ISO BMFF), MPEG audio (ID3 or two frame
 * headers in a row), ADTS AAC, Ogg (Opus, Vorbis, Theora), AMR, PDF, ZIP-based office documents
 * (OOXML and OpenDocument) and plain UTF-8 text.  Text that starts with "#!" is a script and is
 * refused; executables (ELF, PE, Mach-O) and anything unrecognised are refused.
 */
#ifndef MEDIA_SNIFF_H
#define MEDIA_SNIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The bytes of a file examined for its type (dimensions deeper in a JPEG are left unknown). */
#define MEDIA_SNIFF_HEAD (128u * 1024u)
#define MEDIA_FILENAME_MAX 255

enum media_kind { MEDIA_REFUSED = 0, MEDIA_IMAGE, MEDIA_AUDIO, MEDIA_VIDEO, MEDIA_DOCUMENT,
                  MEDIA_TEXT };

struct media_type {
    enum media_kind kind;
    const char *mime;    /* static string; NULL when refused */
    const char *refusal; /* when refused: "executable", "script" or "unknown" */
    long width, height;  /* images: from the headers; -1 when unknown */
};

/* Streaming check that a whole file is text: valid UTF-8, no NUL or control bytes but \t\n\f\r. */
struct media_text {
    uint8_t need;      /* continuation bytes still expected */
    uint8_t lo, hi;    /* allowed range of the next continuation byte */
    bool bad;          /* not text (sticky) */
};

#define MEDIA_TEXT_INIT { 0, 0x80, 0xbf, false }

static inline uint32_t
media_be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t
media_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t
media_le16(const unsigned char *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

static inline uint32_t
media_le32(const unsigned char *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline uint32_t
media_le24(const unsigned char *p)
{
    return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline bool
media_has(const unsigned char *p, size_t n, size_t off, const char *magic, size_t len)
{
    return n >= off + len && memcmp(p + off, magic, len) == 0;
}

static inline void
media_set(struct media_type *t, enum media_kind kind, const char *mime)
{
    t->kind = kind;
    t->mime = mime;
    t->refusal = NULL;
}

/* ---- text ---- */

/* Feeds n more bytes of the file; cheap enough to run on every upload chunk. */
static inline void
media_text_feed(struct media_text *t, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n && !t->bad; i++) {
        unsigned c = p[i];

        if (t->need > 0) {
            if (c < t->lo || c > t->hi) {
                t->bad = true;
                break;
            }
            t->need--;
            t->lo = 0x80, t->hi = 0xbf;
            continue;
        }
        if (c < 0x80) {
            /* NUL and C0 controls mark binary data; tab, newlines and form feed are text. */
            t->bad = (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7f;
        } else if (c >= 0xc2 && c <= 0xdf) {
            t->need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            t->need = 2;
            if (c == 0xe0)
                t->lo = 0xa0; /* no overlong forms */
            if (c == 0xed)
                t->hi = 0x9f; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            t->need = 3;
            if (c == 0xf0)
                t->lo = 0x90;
            if (c == 0xf4)
                t->hi = 0x8f; /* nothing above U+10FFFF */
        } else {
            t->bad = true;
        }
    }
}

/* True when everything fed was text and no multi-byte character was left unfinished. */
static inline bool
media_text_ok(const struct media_text *t)
{
    return !t->bad && t->need == 0;
}

/* ---- images ---- */

static inline bool
sniff_png(const unsigned char *p, size_t n, struct media_type *t)
{
    if (!media_has(p, n, 0, "\x89PNG\r\n\x1a\n", 8))
        return false;
    media_set(t, MEDIA_IMAGE, "image/png");
    if (media_has(p, n, 12, "IHDR", 4) && n >= 24) {
        t->width = (long)media_be32(p + 16);
        t->height = (long)media_be32(p + 20);
    }
    return true;
}

static inline bool
sniff_gif(const unsigned char *p, size_t n, struct media_type *t)
{
    if (!media_has(p, n, 0, "GIF87a", 6) && !media_has(p, n, 0, "GIF89a", 6))
        return false;
    media_set(t, MEDIA_IMAGE, "image/gif");
    if (n >= 10) {
        t->width = (long)media_le16(p + 6);
        t->height = (long)media_le16(p + 8);
    }
    return true;
}

/* A start-of-frame marker: C0..CF except DHT (C4), JPG (C8) and DAC (CC). */
static inline bool
jpeg_is_sof(unsigned m)
{
    return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

/* Walks the JPEG segments up to the frame header, which holds the dimensions. */
static inline void
jpeg_dimensions(const unsigned char *p, size_t n, struct media_type *t)
{
    size_t i = 2;

    while (i + 4 <= n) {
        unsigned m;

        if (p[i] != 0xff)
            return; /* lost sync: leave the dimensions unknown */
        m = p[i + 1];
        if (m == 0xff) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) { /* markers without a length */
            i += 2;
            continue;
        }
        if (m == 0xd9 || m == 0xda) /* end of image, start of scan: no frame header before */
            return;
        if (jpeg_is_sof(m)) {
            if (i + 9 <= n) {
                t->height = (long)media_be16(p + i + 5);
                t->width = (long)media_be16(p + i + 7);
            }
            return;
        }
        if (media_be16(p + i + 2) < 2)
            return;
        i += 2 + media_be16(p + i + 2);
    }
}

static inline bool
sniff_jpeg(const unsigned char *p, size_t n, struct media_type *t)
{
    if (!media_has(p, n, 0, "\xff\xd8\xff", 3))
        return false;
    media_set(t, MEDIA_IMAGE, "image/jpeg");
    jpeg_dimensions(p, n, t);
    return true;
}

static inline void
webp_dimensions(const unsigned char *p, size_t n, struct media_type *t)
{
    if (media_has(p, n, 12, "VP8 ", 4) && n >= 30 && media_has(p, n, 23, "\x9d\x01\x2a", 3)) {
        t->width = (long)(media_le16(p + 26) & 0x3fff);
        t->height = (long)(media_le16(p + 28) & 0x3fff);
    } else if (media_has(p, n, 12, "VP8L", 4) && n >= 25 && p[20] == 0x2f) {
        uint32_t b = (uint32_t)p[21] | (uint32_t)p[22] << 8 | (uint32_t)p[23] << 16 |
                     (uint32_t)p[24] << 24;

        t->width = (long)(b & 0x3fff) + 1;
        t->height = (long)((b >> 14) & 0x3fff) + 1;
    } else if (media_has(p, n, 12, "VP8X", 4) && n >= 30) {
        t->width = (long)media_le24(p + 24) + 1;
        t->height = (long)media_le24(p + 27) + 1;
    }
}

static inline bool
sniff_webp(const unsigned char *p, size_t n, struct media_type *t)
{
    if (!media_has(p, n, 0, "RIFF", 4) || !media_has(p, n, 8, "WEBP", 4))
        return false;
    media_set(t, MEDIA_IMAGE, "image/webp");
    webp_dimensions(p, n, t);
    return true;
}

/* ---- audio and video ---- */

/* ISO base media (MP4, M4A, 3GP): an "ftyp" box first; the major brand picks the type. */
static inline bool
sniff_isobmff(const unsigned char *p, size_t n, struct media_type *t)
{
    if (!media_has(p, n, 4, "ftyp", 4) || n < 12 || media_be32(p) < 12)
        return false;
    if (media_has(p, n, 8, "M4A ", 4) || media_has(p, n, 8, "M4B ", 4))
        media_set(t, MEDIA_AUDIO, "audio/mp4");
    else if (media_has(p, n, 8, "3gp", 3) || media_has(p, n, 8, "3g2", 3))
        media_set(t, MEDIA_VIDEO, "video/3gpp");
    else if (media_has(p, n, 8, "qt  ", 4))
        media_set(t, MEDIA_VIDEO, "video/quicktime");
    else if (media_has(p, n, 8, "hei", 3) || media_has(p, n, 8, "mif1", 4) ||
             media_has(p, n, 8, "avif", 4))
        return false; /* HEIF still images are not on the allowlist */
    else
        media_set(t, MEDIA_VIDEO, "video/mp4");
    return true;
}

/*
 * Length in bytes of the MPEG audio frame whose header is at p, or 0 when p is not a valid
 * header.  Version bits: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5; layer bits: 3 = I, 2 = II, 1 = III.
 */
static inline size_t
mpeg_frame_len(const unsigned char *p)
{
    static const unsigned short br[2][3][15] = {
        { { 0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448 },
          { 0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384 },
          { 0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 } },
        { { 0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256 },
          { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 },
          { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 } },
    };
    static const unsigned sr[3] = { 44100, 48000, 32000 };
    unsigned ver = (p[1] >> 3) & 3, layer = (p[1] >> 1) & 3, bri = p[2] >> 4;
    unsigned sri = (p[2] >> 2) & 3, pad = (p[2] >> 1) & 1, rate, kbps;
    bool v1 = ver == 3;

    if (p[0] != 0xff || (p[1] & 0xe0) != 0xe0 || ver == 1 || layer == 0 || bri == 0 ||
        bri == 15 || sri == 3)
        return 0;
    kbps = br[v1 ? 0 : 1][3 - layer][bri];
    rate = sr[sri] >> (v1 ? 0 : ver == 2 ? 1 : 2);
    if (layer == 3) /* layer I: 4-byte slots */
        return (size_t)(12 * kbps * 1000 / rate + pad) * 4;
    return (size_t)((layer == 1 && !v1 ? 72 : 144) * kbps * 1000 / rate + pad);
}

/* MP3 and other MPEG audio: an ID3v2 tag, or a frame header followed by another one. */
static inline bool
sniff_mpeg_audio(const unsigned char *p, size_t n, struct media_type *t)
{
    size_t len;

    if (media_has(p, n, 0, "ID3", 3) && n >= 10 && p[3] < 0x80 && p[4] < 0x80) {
        media_set(t, MEDIA_AUDIO, "audio/mpeg");
        return true;
    }
    if (n < 4 || (len = mpeg_frame_len(p)) == 0)
        return false;
    /* One header is 11 set bits, common in random data: a short file must end with its frame. */
    if (n >= len + 4 ? mpeg_frame_len(p + len) == 0 : n != len)
        return false;
    media_set(t, MEDIA_AUDIO, "audio/mpeg");
    return true;
}

/* ADTS AAC: sync word, layer 0, a sane frame length, and the next frame where it says. */
static inline bool
sniff_adts(const unsigned char *p, size_t n, struct media_type *t)
{
    size_t len;

    if (n < 7 || p[0] != 0xff || (p[1] & 0xf6) != 0xf0 || ((p[2] >> 2) & 0xf) > 12)
        return false;
    len = (size_t)(p[3] & 3) << 11 | (size_t)p[4] << 3 | p[5] >> 5;
    if (len < 7 || (n >= len + 2 ? (p[len] != 0xff || (p[len + 1] & 0xf6) != 0xf0) : n != len))
        return false;
    media_set(t, MEDIA_AUDIO, "audio/aac");
    return true;
}

static inline bool
sniff_ogg(const unsigned char *p, size_t n, struct media_type *t)
{
    if (!media_has(p, n, 0, "OggS", 4))
        return false;
    if (media_has(p, n, 28, "OpusHead", 8) || media_has(p, n, 28, "\x01vorbis", 7))
        media_set(t, MEDIA_AUDIO, "audio/ogg");
    else if (media_has(p, n, 28, "\x80theora", 7))
        media_set(t, MEDIA_VIDEO, "video/ogg");
    else
        return false;
    return true;
}

static inline bool
sniff_amr(const unsigned char *p, size_t n, struct media_type *t)
{
    if (media_has(p, n, 0, "#!AMR\n", 6))
        media_set(t, MEDIA_AUDIO, "audio/amr");
    else if (media_has(p, n, 0, "#!AMR-WB\n", 9))
        media_set(t, MEDIA_AUDIO, "audio/amr-wb");
    else
        return false;
    return true;
}

/* ---- documents ---- */

/* OpenDocument: a first stored entry "mimetype" whose content names the type. */
static inline bool
sniff_opendocument(const unsigned char *p, size_t n, struct media_type *t)
{
    static const char *const types[] = {
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
    };
    size_t data;

    if (!media_has(p, n, 30, "mimetype", 8) || media_le16(p + 26) != 8)
        return false;
    data = 30 + 8 + media_le16(p + 28);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t len = strlen(types[i]);

        if (media_has(p, n, data, types[i], len) && media_le32(p + 18) == len) {
            media_set(t, MEDIA_DOCUMENT, types[i]);
            return true;
        }
    }
    return false;
}

/* OOXML: the names of the local file headers in the head show [Content_Types].xml and a part. */
static inline bool
sniff_ooxml(const unsigned char *p, size_t n, struct media_type *t)
{
    const char *mime = NULL;
    bool content_types = false;

    for (size_t i = 0; i + 30 <= n; i++) {
        size_t len;
        const char *name;

        if (memcmp(p + i, "PK\x03\x04", 4) != 0)
            continue;
        len = media_le16(p + i + 26);
        if (i + 30 + len > n)
            break;
        name = (const char *)p + i + 30;
        if (len == 19 && memcmp(name, "[Content_Types].xml", 19) == 0)
            content_types = true;
        else if (mime == NULL && len > 5 && memcmp(name, "word/", 5) == 0)
            mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        else if (mime == NULL && len > 3 && memcmp(name, "xl/", 3) == 0)
            mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        else if (mime == NULL && len > 4 && memcmp(name, "ppt/", 4) == 0)
            mime = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
        if (content_types && mime != NULL) {
            media_set(t, MEDIA_DOCUMENT, mime);
            return true;
        }
        i += 29 + len;
    }
    return false;
}

static inline bool
sniff_zip_office(const unsigned char *p, size_t n, struct media_type *t)
{
    if (!media_has(p, n, 0, "PK\x03\x04", 4) || n < 30)
        return false;
    return sniff_opendocument(p, n, t) || sniff_ooxml(p, n, t);
}

static inline bool
is_executable(const unsigned char *p, size_t n)
{
    return media_has(p, n, 0, "\x7f" "ELF", 4) || media_has(p, n, 0, "MZ", 2) ||
           media_has(p, n, 0, "\xcf\xfa\xed\xfe", 4) || media_has(p, n, 0, "\xce\xfa\xed\xfe", 4) ||
           media_has(p, n, 0, "\xca\xfe\xba\xbe", 4) || media_has(p, n, 0, "\xfe\xed\xfa", 3) ||
           media_has(p, n, 0, "\0asm", 4);
}

/*
 * The type of a file from its first n bytes (at most MEDIA_SNIFF_HEAD are needed) and whether the
 * whole file is text (media_text_ok() over every byte).  Binary formats are tried first, so an
 * AMR file ("#!AMR") is audio and not a script.
 */
static inline void
media_sniff(const unsigned char *p, size_t n, bool is_text, struct media_type *t)
{
    static bool (*const sniffers[])(const unsigned char *, size_t, struct media_type *) = {
        sniff_png,  sniff_jpeg, sniff_gif, sniff_webp,       sniff_isobmff, sniff_ogg,
        sniff_amr,  sniff_adts, sniff_mpeg_audio, sniff_zip_office,
    };

    t->kind = MEDIA_REFUSED;
    t->mime = NULL;
    t->refusal = "unknown";
    t->width = t->height = -1;
    if (!is_text && is_executable(p, n)) { /* text that starts "MZ" is still text */
        t->refusal = "executable";
        return;
    }
    for (size_t i = 0; i < sizeof(sniffers) / sizeof(sniffers[0]); i++)
        if (sniffers[i](p, n, t))
            return;
    if (media_has(p, n, 0, "%PDF-", 5)) {
        media_set(t, MEDIA_DOCUMENT, "application/pdf");
        return;
    }
    if (!is_text || n == 0)
        return;
    /* A byte-order mark may precede the "#!" a kernel would not run but an interpreter would. */
    if (media_has(p, n, 0, "#!", 2) || media_has(p, n, 0, "\xef\xbb\xbf#!", 5)) {
        t->refusal = "script";
        return;
    }
    media_set(t, MEDIA_TEXT, "text/plain; charset=utf-8");
}

/* ---- filenames ---- */

/* Bytes of the UTF-8 character starting at p (1 for an invalid byte), never past end. */
static inline size_t
utf8_char_len(const unsigned char *p, const unsigned char *end)
{
    struct media_text t = MEDIA_TEXT_INIT;
    size_t len = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;

    if (len == 1 || (size_t)(end - p) < len)
        return 1;
    media_text_feed(&t, p, len);
    return media_text_ok(&t) ? len : 1;
}

/*
 * Sanitises a client's file name (SPEC 10) into out[MEDIA_FILENAME_MAX + 1]: the last path
 * component ('/' or '\\'), every character other than ASCII letters, digits, '.', '-', '_' and
 * space replaced by one '_', leading dots dropped, at most 255 characters.  Returns the length;
 * 0 means no usable name (the caller stores null).
 */
static inline size_t
media_filename_sanitize(const char *in, char *out)
{
    const unsigned char *p = (const unsigned char *)in, *end, *slash;
    size_t len = 0;

    if (in == NULL) {
        out[0] = '\0';
        return 0;
    }
    end = p + strlen(in);
    for (slash = end; slash > p && slash[-1] != '/' && slash[-1] != '\\'; slash--)
        ;
    for (p = slash; p < end && len < MEDIA_FILENAME_MAX;) {
        unsigned c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_' || c == ' ';

        p += keep ? 1 : utf8_char_len(p, end);
        if (len == 0 && c == '.')
            continue; /* leading dots: no hidden files, no ".." */
        out[len++] = keep ? (char)c : '_';
    }
    out[len] = '\0';
    return len;
}

#endif
