/*
 * fuzz_provider.c - libFuzzer target for media-svc/provider.h, the readers of channel providers'
 * answers: the input as a WhatsApp media lookup and a Telegram getFile answer under the statuses
 * that matter (whatever they accept must be safe to put in a URL and sane in size and checksum),
 * and as a raw string through the id, file_path and checksum checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../media-svc/provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
sha_ok(const char *s)
{
    return s[0] == '\0' || (strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64);
}

/* True when path has a "." or ".." segment (which would climb in a URL). */
static bool
climbs(const char *path)
{
    for (const char *p = path; *p != '\0'; p += strcspn(p, "/"), p += *p == '/') {
        size_t n = strcspn(p, "/");

        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return true;
    }
    return false;
}

static void
check_answers(const json_t *j)
{
    static const long statuses[] = { 200, 400, 404, 500 };
    struct media_located loc;

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (media_whatsapp_lookup(statuses[i], j, &loc) == MEDIA_ANSWER_OK &&
            (loc.url == NULL || !media_http_url_ok(loc.url) || loc.size < -1 ||
             !sha_ok(loc.sha256)))
            abort();
        if (media_telegram_getfile(statuses[i], j, &loc) == MEDIA_ANSWER_OK &&
            (loc.file_path == NULL || !media_file_path_ok(loc.file_path) ||
             climbs(loc.file_path) || loc.file_path[0] == '/' || loc.size < -1 ||
             loc.sha256[0] != '\0'))
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    char sha[65], *s;

    check_answers(j);
    json_decref(j);
    s = malloc(size + 1); /* exact size, so ASan sees any read past the string */
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (media_provider_id_ok(s) && (strchr(s, '/') != NULL || strcmp(s, "..") == 0))
        abort();
    if (media_file_path_ok(s) && (s[0] == '/' || climbs(s)))
        abort();
    if (media_sha256_hex(s, sha) != (sha[0] != '\0') || !sha_ok(sha))
        abort();
    free(s);
    return 0;
}
