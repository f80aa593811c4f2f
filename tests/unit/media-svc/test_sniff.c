/*
 * test_sniff.c - media-svc/sniff.h: type detection from magic bytes and image dimensions over
 * small real files of each type built here byte by byte, the streaming text check, and the
 * filename sanitiser of SPEC section 10.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../media-svc/sniff.h"

/* A file under construction. */
struct file {
    unsigned char b[4096];
    size_t n;
};

static void
put(struct file *f, const void *p, size_t n)
{
    assert_true(f->n + n <= sizeof(f->b));
    if (n > 0) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void
put_s(struct file *f, const char *s)
{
    put(f, s, strlen(s));
}

static void
put_be32(struct file *f, uint32_t v)
{
    unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };

    put(f, b, 4);
}

static void
put_le16(struct file *f, uint32_t v)
{
    unsigned char b[2] = { v, v >> 8 };

    put(f, b, 2);
}

static void
put_le32(struct file *f, uint32_t v)
{
    unsigned char b[4] = { v, v >> 8, v >> 16, v >> 24 };

    put(f, b, 4);
}

static void
put_byte(struct file *f, unsigned v)
{
    unsigned char c = (unsigned char)v;

    put(f, &c, 1);
}

static uint32_t
crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* One PNG chunk with its CRC. */
static void
png_chunk(struct file *f, const char *type, const unsigned char *data, size_t n)
{
    size_t start;

    put_be32(f, (uint32_t)n);
    start = f->n;
    put(f, type, 4);
    put(f, data, n);
    put_be32(f, crc32(f->b + start, n + 4));
}

/* A valid w x h 8-bit greyscale PNG: IHDR, one stored (uncompressed) zlib IDAT, IEND. */
static void
make_png(struct file *f, uint32_t w, uint32_t h)
{
    unsigned char ihdr[13] = { w >> 24, w >> 16, w >> 8, w, h >> 24, h >> 16, h >> 8, h,
                               8, 0, 0, 0, 0 };
    unsigned char idat[256];
    size_t raw = (w + 1) * h, n = 0;
    uint32_t a = 1, b = 0;

    assert_true(raw + 11 <= sizeof(idat));
    idat[n++] = 0x78, idat[n++] = 0x01;                        /* zlib header */
    idat[n++] = 1;                                             /* final stored block */
    idat[n++] = raw & 0xff, idat[n++] = raw >> 8;
    idat[n++] = ~raw & 0xff, idat[n++] = (~raw >> 8) & 0xff;
    for (size_t i = 0; i < raw; i++) {                         /* filter 0, grey pixels */
        idat[n] = i % (w + 1) == 0 ? 0 : 0x80;
        a = (a + idat[n]) % 65521, b = (b + a) % 65521;
        n++;
    }
    idat[n++] = b >> 8, idat[n++] = b, idat[n++] = a >> 8, idat[n++] = a;
    put(f, "\x89PNG\r\n\x1a\n", 8);
    png_chunk(f, "IHDR", ihdr, sizeof(ihdr));
    png_chunk(f, "IDAT", idat, n);
    png_chunk(f, "IEND", NULL, 0);
}

/* A baseline JPEG's marker structure: SOI, APP0 JFIF, DQT, an APP1 to skip, SOF0, SOS, EOI. */
static void
make_jpeg(struct file *f, unsigned w, unsigned h, unsigned sof)
{
    unsigned char dqt[64];

    memset(dqt, 1, sizeof(dqt));
    put(f, "\xff\xd8", 2);
    put(f, "\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", 18);
    put(f, "\xff\xdb\x00\x43\x00", 5);
    put(f, dqt, sizeof(dqt));
    put(f, "\xff\xe1\x00\x08" "Exif", 8);
    put(f, "\xff\xff", 2); /* fill bytes before a marker are allowed */
    put_byte(f, 0xff), put_byte(f, sof);
    put(f, "\x00\x0b\x08", 3);
    put_byte(f, h >> 8), put_byte(f, h), put_byte(f, w >> 8), put_byte(f, w);
    put(f, "\x01\x01\x11\x00", 4);
    put(f, "\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00", 10);
    put(f, "\x12\x34\xff\x00\x56", 5);
    put(f, "\xff\xd9", 2);
}

static void
make_gif(struct file *f, unsigned w, unsigned h)
{
    put_s(f, "GIF89a");
    put_le16(f, w), put_le16(f, h);
    put(f, "\x80\x00\x00", 3);                 /* global colour table of 2 */
    put(f, "\x00\x00\x00\xff\xff\xff", 6);
    put(f, "\x2c\x00\x00\x00\x00", 5);        /* image descriptor */
    put_le16(f, w), put_le16(f, h);
    put(f, "\x00\x02\x02\x44\x01\x00\x3b", 7); /* LZW data, trailer */
}

static void
riff_webp(struct file *f, const char *chunk, const struct file *payload)
{
    put_s(f, "RIFF");
    put_le32(f, (uint32_t)(4 + 8 + payload->n));
    put_s(f, "WEBP");
    put_s(f, chunk);
    put_le32(f, (uint32_t)payload->n);
    put(f, payload->b, payload->n);
}

static void
make_webp_lossless(struct file *f, unsigned w, unsigned h)
{
    struct file p = { .n = 0 };
    uint32_t bits = (w - 1) | (h - 1) << 14;

    put_byte(&p, 0x2f);
    put_le32(&p, bits);
    put(&p, "\x00\x00\x00", 3);
    riff_webp(f, "VP8L", &p);
}

static void
make_webp_lossy(struct file *f, unsigned w, unsigned h)
{
    struct file p = { .n = 0 };

    put(&p, "\x50\x01\x00", 3);         /* frame tag: key frame */
    put(&p, "\x9d\x01\x2a", 3);         /* start code */
    put_le16(&p, w), put_le16(&p, h);
    put(&p, "\x00\x00\x00\x00", 4);
    riff_webp(f, "VP8 ", &p);
}

static void
make_webp_extended(struct file *f, unsigned w, unsigned h)
{
    struct file p = { .n = 0 };

    put(&p, "\x10\x00\x00\x00", 4);     /* flags: alpha */
    put_byte(&p, (w - 1)), put_byte(&p, (w - 1) >> 8), put_byte(&p, (w - 1) >> 16);
    put_byte(&p, (h - 1)), put_byte(&p, (h - 1) >> 8), put_byte(&p, (h - 1) >> 16);
    riff_webp(f, "VP8X", &p);
}

/* An ftyp box with the major brand, then an empty mdat box. */
static void
make_isobmff(struct file *f, const char *brand)
{
    put_be32(f, 20);
    put_s(f, "ftyp");
    put(f, brand, 4);
    put_be32(f, 0);
    put(f, "isom", 4);
    put_be32(f, 8);
    put_s(f, "mdat");
}

/* MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: frames of 417 bytes. */
static void
make_mp3_frames(struct file *f, int frames)
{
    for (int i = 0; i < frames; i++) {
        size_t start = f->n;

        put(f, "\xff\xfb\x90\x00", 4);
        while (f->n < start + 417)
            put_byte(f, 0);
    }
}

/* The first page of an Ogg stream whose first packet starts with head. */
static void
make_ogg(struct file *f, const char *head, size_t n)
{
    put_s(f, "OggS");
    put(f, "\x00\x02", 2);                      /* version, beginning of stream */
    put(f, "\0\0\0\0\0\0\0\0", 8);              /* granule */
    put_le32(f, 0x1234), put_le32(f, 0), put_le32(f, 0);
    put_byte(f, 1), put_byte(f, (unsigned)n);   /* one segment */
    put(f, head, n);
}

/* A ZIP local file header (stored, no data descriptor) followed by its data. */
static void
zip_entry(struct file *f, const char *name, const char *data)
{
    put(f, "PK\x03\x04\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00", 14);
    put_le32(f, crc32((const unsigned char *)data, strlen(data)));
    put_le32(f, (uint32_t)strlen(data)), put_le32(f, (uint32_t)strlen(data));
    put_le16(f, (uint32_t)strlen(name)), put_le16(f, 0);
    put_s(f, name);
    put_s(f, data);
}

static struct media_type
sniff(const struct file *f)
{
    struct media_text tx = MEDIA_TEXT_INIT;
    struct media_type t;

    media_text_feed(&tx, f->b, f->n);
    media_sniff(f->b, f->n, media_text_ok(&tx), &t);
    return t;
}

static void
expect(const struct file *f, enum media_kind kind, const char *mime, long w, long h)
{
    struct media_type t = sniff(f);

    assert_int_equal(t.kind, kind);
    assert_string_equal(t.mime, mime);
    assert_int_equal(t.width, w);
    assert_int_equal(t.height, h);
}

static void
expect_refused(const struct file *f, const char *why)
{
    struct media_type t = sniff(f);

    assert_int_equal(t.kind, MEDIA_REFUSED);
    assert_null(t.mime);
    assert_string_equal(t.refusal, why);
}

/* ---- images ---- */

static void
test_png_and_dimensions(void **state)
{
    struct file f = { .n = 0 };

    (void)state;
    make_png(&f, 7, 5);
    expect(&f, MEDIA_IMAGE, "image/png", 7, 5);
    f.n = 20; /* truncated before the size: still PNG, dimensions unknown */
    expect(&f, MEDIA_IMAGE, "image/png", -1, -1);
}

static void
test_jpeg_baseline_and_progressive(void **state)
{
    struct file f = { .n = 0 }, g = { .n = 0 };

    (void)state;
    make_jpeg(&f, 640, 480, 0xc0);
    expect(&f, MEDIA_IMAGE, "image/jpeg", 640, 480);
    make_jpeg(&g, 3000, 2001, 0xc2);
    expect(&g, MEDIA_IMAGE, "image/jpeg", 3000, 2001);
    g.n = 30; /* cut inside the segments: type known, size not */
    expect(&g, MEDIA_IMAGE, "image/jpeg", -1, -1);
}

static void
test_gif(void **state)
{
    struct file f = { .n = 0 };

    (void)state;
    make_gif(&f, 300, 2);
    expect(&f, MEDIA_IMAGE, "image/gif", 300, 2);
}

static void
test_webp_three_flavours(void **state)
{
    struct file a = { .n = 0 }, b = { .n = 0 }, c = { .n = 0 };

    (void)state;
    make_webp_lossless(&a, 16, 9);
    expect(&a, MEDIA_IMAGE, "image/webp", 16, 9);
    make_webp_lossy(&b, 320, 240);
    expect(&b, MEDIA_IMAGE, "image/webp", 320, 240);
    make_webp_extended(&c, 70000, 3);
    expect(&c, MEDIA_IMAGE, "image/webp", 70000, 3);
}

/* ---- audio, video ---- */

static void
test_mp4_family(void **state)
{
    struct file v = { .n = 0 }, a = { .n = 0 }, g = { .n = 0 }, heic = { .n = 0 };

    (void)state;
    make_isobmff(&v, "isom");
    expect(&v, MEDIA_VIDEO, "video/mp4", -1, -1);
    make_isobmff(&a, "M4A ");
    expect(&a, MEDIA_AUDIO, "audio/mp4", -1, -1);
    make_isobmff(&g, "3gp4");
    expect(&g, MEDIA_VIDEO, "video/3gpp", -1, -1);
    make_isobmff(&heic, "heic"); /* not on the allowlist */
    expect_refused(&heic, "unknown");
}

static void
test_mpeg_audio(void **state)
{
    struct file frames = { .n = 0 }, id3 = { .n = 0 }, one = { .n = 0 }, noise = { .n = 0 };

    (void)state;
    make_mp3_frames(&frames, 3);
    expect(&frames, MEDIA_AUDIO, "audio/mpeg", -1, -1);
    put(&id3, "ID3\x04\x00\x00\x00\x00\x00\x0a", 10);
    make_mp3_frames(&id3, 1);
    expect(&id3, MEDIA_AUDIO, "audio/mpeg", -1, -1);
    make_mp3_frames(&one, 1); /* exactly one whole frame */
    expect(&one, MEDIA_AUDIO, "audio/mpeg", -1, -1);
    /* A lone frame header followed by something else is not MPEG audio. */
    make_mp3_frames(&noise, 1);
    put(&noise, "\x01\x02\x03\x04\x05\x06", 6);
    expect_refused(&noise, "unknown");
}

static void
test_ogg_opus_vorbis_theora(void **state)
{
    struct file o = { .n = 0 }, v = { .n = 0 }, t = { .n = 0 }, x = { .n = 0 };

    (void)state;
    make_ogg(&o, "OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00", 19);
    expect(&o, MEDIA_AUDIO, "audio/ogg", -1, -1);
    make_ogg(&v, "\x01vorbis\x00\x00\x00\x00\x02\x44\xac\x00\x00", 16);
    expect(&v, MEDIA_AUDIO, "audio/ogg", -1, -1);
    make_ogg(&t, "\x80theora\x03\x02\x01", 10);
    expect(&t, MEDIA_VIDEO, "video/ogg", -1, -1);
    make_ogg(&x, "\x7f" "FLAC\x01\x00", 7); /* Ogg of something else */
    expect_refused(&x, "unknown");
}

static void
test_amr_is_audio_not_a_script(void **state)
{
    struct file nb = { .n = 0 }, wb = { .n = 0 };

    (void)state;
    put_s(&nb, "#!AMR\n");
    put(&nb, "\x3c\x48\xf5\x1f\x96\x66\x79\xe1\xe0\x01\xe7\xcf\xf0\x00\x00\x00\x80", 17);
    expect(&nb, MEDIA_AUDIO, "audio/amr", -1, -1);
    put_s(&wb, "#!AMR-WB\n");
    put(&wb, "\x04\x10\x20\x00", 4);
    expect(&wb, MEDIA_AUDIO, "audio/amr-wb", -1, -1);
}

/* ---- documents ---- */

static void
test_pdf(void **state)
{
    struct file f = { .n = 0 };

    (void)state;
    put_s(&f, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n"
              "<< /Root 1 0 R >>\n%%EOF\n");
    expect(&f, MEDIA_DOCUMENT, "application/pdf", -1, -1);
}

static void
test_office_documents(void **state)
{
    struct file docx = { .n = 0 }, xlsx = { .n = 0 }, odt = { .n = 0 }, zip = { .n = 0 };

    (void)state;
    zip_entry(&docx, "[Content_Types].xml", "<?xml version=\"1.0\"?><Types/>");
    zip_entry(&docx, "_rels/.rels", "<Relationships/>");
    zip_entry(&docx, "word/document.xml", "<w:document/>");
    expect(&docx, MEDIA_DOCUMENT,
           "application/vnd.openxmlformats-officedocument.wordprocessingml.document", -1, -1);
    zip_entry(&xlsx, "[Content_Types].xml", "<Types/>");
    zip_entry(&xlsx, "xl/workbook.xml", "<workbook/>");
    expect(&xlsx, MEDIA_DOCUMENT,
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", -1, -1);
    zip_entry(&odt, "mimetype", "application/vnd.oasis.opendocument.text");
    zip_entry(&odt, "content.xml", "<office:document-content/>");
    expect(&odt, MEDIA_DOCUMENT, "application/vnd.oasis.opendocument.text", -1, -1);
    /* Any other ZIP (it could carry anything) is refused. */
    zip_entry(&zip, "setup.exe", "MZ");
    expect_refused(&zip, "unknown");
}

/* ---- text, scripts, executables ---- */

static void
test_text_and_scripts(void **state)
{
    struct file t = { .n = 0 }, sh = { .n = 0 }, bom = { .n = 0 }, mz = { .n = 0 };

    (void)state;
    put_s(&t, "Olá, mundo!\tÇa va? 日本語 🙂\r\n");
    expect(&t, MEDIA_TEXT, "text/plain; charset=utf-8", -1, -1);
    put_s(&sh, "#!/bin/sh\nrm -rf /\n");
    expect_refused(&sh, "script");
    put_s(&bom, "\xef\xbb\xbf#!/usr/bin/env python3\n");
    expect_refused(&bom, "script");
    put_s(&mz, "MZ is how the notes begin\n"); /* text, even with an executable's first bytes */
    expect(&mz, MEDIA_TEXT, "text/plain; charset=utf-8", -1, -1);
}

static void
test_not_text(void **state)
{
    static const char *const bad[] = {
        "abc\0def",           /* NUL */
        "caf\xe9",            /* Latin-1, not UTF-8 */
        "\xc0\xaf",           /* overlong '/' */
        "\xed\xa0\x80",       /* surrogate */
        "\xf4\x90\x80\x80",   /* above U+10FFFF */
        "bell\x07",           /* control character */
        "cut \xe6\x97",       /* unfinished character at the end */
    };
    static const size_t len[] = { 7, 4, 2, 3, 4, 5, 6 };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct file f = { .n = 0 };

        put(&f, bad[i], len[i]);
        expect_refused(&f, "unknown");
    }
}

static void
test_text_check_streams_across_chunks(void **state)
{
    const char *s = "日本語 🙂 text";
    struct media_text t = MEDIA_TEXT_INIT;

    (void)state;
    for (size_t i = 0; s[i] != '\0'; i++) /* one byte at a time splits every character */
        media_text_feed(&t, (const unsigned char *)s + i, 1);
    assert_true(media_text_ok(&t));
    media_text_feed(&t, (const unsigned char *)"\xe6", 1);
    assert_false(media_text_ok(&t)); /* waiting for the rest */
    media_text_feed(&t, (const unsigned char *)"\x97\xa5", 2);
    assert_true(media_text_ok(&t));
}

static void
test_executables_and_unknown(void **state)
{
    struct file elf = { .n = 0 }, pe = { .n = 0 }, macho = { .n = 0 }, rnd = { .n = 0 };

    (void)state;
    put(&elf, "\x7f" "ELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00", 20);
    expect_refused(&elf, "executable");
    put(&pe, "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00", 16);
    expect_refused(&pe, "executable");
    put(&macho, "\xcf\xfa\xed\xfe\x07\x00\x00\x01", 8);
    expect_refused(&macho, "executable");
    put(&rnd, "\x00\x01\x02\x03\xfe\xfd\xfc", 7);
    expect_refused(&rnd, "unknown");
    rnd.n = 0;
    expect_refused(&rnd, "unknown"); /* empty */
}

/* ---- filenames ---- */

static void
check_name(const char *in, const char *want)
{
    char out[MEDIA_FILENAME_MAX + 1];

    assert_int_equal(media_filename_sanitize(in, out), strlen(want));
    assert_string_equal(out, want);
}

static void
test_filename_sanitising(void **state)
{
    char longname[600], want[MEDIA_FILENAME_MAX + 1];

    (void)state;
    check_name("photo.jpg", "photo.jpg");
    check_name("My Holiday-2026_01.png", "My Holiday-2026_01.png");
    check_name("../../etc/passwd", "passwd");
    check_name("..\\..\\windows\\system32\\cmd.exe", "cmd.exe");
    check_name("/abs/path/", "");
    check_name("..", "");
    check_name(".htaccess", "htaccess");
    check_name("...hidden.txt", "hidden.txt");
    check_name("a\r\nb\tc\x01.txt", "a__b_c_.txt");
    check_name("x;rm -rf $(id)|`y`.pdf", "x_rm -rf __id___y_.pdf");
    check_name("café 日本.txt", "caf_ __.txt"); /* one '_' per character, not per byte */
    check_name("bad\xff\xfe.bin", "bad__.bin");
    check_name("quote\"and'<tag>.txt", "quote_and__tag_.txt");
    check_name(NULL, "");
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memset(want, 'a', MEDIA_FILENAME_MAX);
    want[MEDIA_FILENAME_MAX] = '\0';
    check_name(longname, want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_and_dimensions),
        cmocka_unit_test(test_jpeg_baseline_and_progressive),
        cmocka_unit_test(test_gif),
        cmocka_unit_test(test_webp_three_flavours),
        cmocka_unit_test(test_mp4_family),
        cmocka_unit_test(test_mpeg_audio),
        cmocka_unit_test(test_ogg_opus_vorbis_theora),
        cmocka_unit_test(test_amr_is_audio_not_a_script),
        cmocka_unit_test(test_pdf),
        cmocka_unit_test(test_office_documents),
        cmocka_unit_test(test_text_and_scripts),
        cmocka_unit_test(test_not_text),
        cmocka_unit_test(test_text_check_streams_across_chunks),
        cmocka_unit_test(test_executables_and_unknown),
        cmocka_unit_test(test_filename_sanitising),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
