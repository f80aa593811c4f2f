/*
 * fuzz_sniff.c - libFuzzer target for media-svc/sniff.h, the parsers that read uploaded bytes:
 * every type sniffer and dimension reader over the input as a file head (whole, and cut short as
 * an upload's head may be), the streaming text check fed in uneven pieces (it must agree with one
 * whole feed), and the filename sanitiser over the input as a NUL-terminated name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../media-svc/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_type(const struct media_type *t)
{
    if (t->kind == MEDIA_REFUSED ? t->mime != NULL || t->refusal == NULL : t->mime == NULL)
        abort();
    if (t->kind != MEDIA_IMAGE && (t->width != -1 || t->height != -1))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct media_text whole = MEDIA_TEXT_INIT, pieces = MEDIA_TEXT_INIT;
    char out[MEDIA_FILENAME_MAX + 1];
    struct media_type t;
    char *name;
    size_t len;

    media_text_feed(&whole, data, size);
    for (size_t i = 0, step = 1; i < size; i += step, step = step % 7 + 1)
        media_text_feed(&pieces, data + i, size - i < step ? size - i : step);
    if (media_text_ok(&whole) != media_text_ok(&pieces))
        abort();
    media_sniff(data, size, media_text_ok(&whole), &t);
    check_type(&t);
    media_sniff(data, size / 2, false, &t);
    check_type(&t);

    name = malloc(size + 1); /* exact size, so ASan sees any read past the name */
    if (name == NULL)
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    len = media_filename_sanitize(name, out);
    if (len > MEDIA_FILENAME_MAX || strlen(out) != len || (len > 0 && out[0] == '.') ||
        strpbrk(out, "/\\") != NULL)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
            abort();
    free(name);
    return 0;
}
