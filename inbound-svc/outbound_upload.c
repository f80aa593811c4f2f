/*
 * outbound_upload.c - the bytes of an outbound media file, for a provider that must be sent the
 * file itself rather than a link to it (a Telegram document that is not a PDF, GIF or ZIP:
 * outbound_request.h).
 *
 * The content is streamed from media-svc (GET /api/media/{id}/content, service token) into a
 * private temporary file (mode 0600, under TMPDIR or /tmp), so a sender thread never holds a
 * whole file in memory; libcurl then reads it back for the multipart request.  The file is made
 * for one try and removed after it.  A media that media-svc does not know fails the message for
 * good, as does a file over Telegram's 50 MB upload limit; anything else (media-svc unreachable,
 * an error answer, a full disk) ends the try as retryable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbound.h"
#include "parley/arena.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/log.h"
#include "svc.h"

#define CONTENT_TIMEOUT_MS 60000L
#define CHUNK 65536

/* Copies the answer's body into fd; false with r filled. */
static bool
copy_body(struct pl_arena *a, struct pl_client_stream *s, int fd, struct outb_result *r)
{
    static __thread char buf[CHUNK];
    struct pl_err err = PL_ERR_INIT;
    long long total = 0;
    long n;

    while ((n = pl_client_stream_read(s, buf, sizeof(buf), &err)) > 0) {
        if ((total += n) > OUTB_UPLOAD_MAX)
            return outb_result_unanswered(r, OUTB_PERMANENT, "file_too_large",
                                          "the file is larger than Telegram's 50 MB upload limit");
        for (long off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));

            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return outb_result_unanswered(
                    r, OUTB_RETRY, "media_unavailable",
                    pl_arena_printf(a, "could not write the upload file: %s", strerror(errno)));
            off += w;
        }
    }
    if (n < 0)
        return outb_result_unanswered(r, OUTB_RETRY, "media_unavailable",
                                      pl_arena_printf(a, "media-svc content: %s", err.msg));
    return true;
}

/* Streams the content of job's media into fd; false with r filled. */
static bool
download(const struct inb_cfg *cfg, struct pl_arena *a, const struct outb_job *job, int fd,
         struct outb_result *r)
{
    const char *url = pl_arena_printf(a, "%s/api/media/%s/content", cfg->media_url, job->media_id);
    const char *headers[] = { "Accept: */*", NULL };
    struct pl_client_opts o = { headers, NULL, 0, CONTENT_TIMEOUT_MS };
    struct pl_err err = PL_ERR_INIT;
    struct pl_client_stream *s = pl_client_stream_open("GET", url, &o, 0, &err);
    int status = s != NULL ? pl_client_stream_wait(s, &err) : PL_ERR;
    bool ok;

    if (status < 0)
        ok = inb_outbound_media_failed(a, job, 0, err.msg, r);
    else if (status != 200)
        ok = inb_outbound_media_failed(a, job, status, NULL, r);
    else
        ok = copy_body(a, s, fd, r);
    pl_client_stream_free(s);
    return ok;
}

bool
inb_outbound_media_file(const struct inb_cfg *cfg, struct pl_arena *a, const struct outb_job *job,
                        char path[OUTB_PATH_MAX], struct outb_result *r)
{
    const char *dir = getenv("TMPDIR");
    int fd;
    bool ok;

    snprintf(path, OUTB_PATH_MAX, "%s/parley-upload-XXXXXX", dir && *dir ? dir : "/tmp");
    if ((fd = mkstemp(path)) < 0) { /* mode 0600 */
        const char *why = strerror(errno);

        path[0] = '\0';
        return outb_result_unanswered(r, OUTB_RETRY, "media_unavailable",
                                      pl_arena_printf(a, "could not make the upload file: %s",
                                                      why));
    }
    ok = download(cfg, a, job, fd, r);
    if (close(fd) != 0 && ok)
        ok = outb_result_unanswered(r, OUTB_RETRY, "media_unavailable",
                                    "could not write the upload file");
    if (!ok) {
        unlink(path);
        path[0] = '\0';
        pl_log_warn("message %s: media %s: %s (%s)", job->message_id, job->media_id, r->code,
                    r->message);
    }
    return ok;
}
