/*
 * scan.c - the optional virus scan of an upload by ClamAV's daemon (clamd), over its Unix socket.
 *
 * Protocol (clamd's INSTREAM command): "zINSTREAM\0", then the file as chunks each preceded by its
 * length as a 4-byte big-endian number, then a zero length; clamd answers one NUL-terminated line,
 * "stream: OK" or "stream: <signature> FOUND" (anything else is an error).  The file is read back
 * from the upload's temporary file in fixed-size pieces, so memory stays flat here too.  Every
 * socket operation has a timeout; a scanner that is configured but does not answer fails the
 * upload with 503 (fail closed) rather than storing an unscanned file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "parley/err.h"
#include "parley/log.h"
#include "svc.h"

#define SCAN_CHUNK (64u * 1024u)
#define SCAN_TIMEOUT_S 30

static int
scan_fail(struct pl_err *err, const char *what)
{
    int e = errno;

    pl_log_detail(PL_LOG_ERROR, e ? strerror(e) : "unexpected answer", "virus scanner: %s", what);
    return pl_err_set(err, 503, "scanner_unavailable", "the virus scanner is not available");
}

static int
send_all(int s, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(s, c, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PL_ERR;
        c += w;
        n -= (size_t)w;
    }
    return PL_OK;
}

static int
connect_clamd(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = SCAN_TIMEOUT_S };
    int s;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(s);
        return -1;
    }
    return s;
}

/* Streams the file's size bytes from offset 0 as INSTREAM chunks, then the end marker. */
static int
stream_file(int s, int fd, uint64_t size)
{
    static const char cmd[] = "zINSTREAM";
    unsigned char buf[4 + SCAN_CHUNK];
    uint32_t zero = 0;

    if (send_all(s, cmd, sizeof(cmd)) != PL_OK) /* with its NUL */
        return PL_ERR;
    for (uint64_t off = 0; off < size;) {
        ssize_t r = pread(fd, buf + 4, SCAN_CHUNK, (off_t)off);
        uint32_t len;

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return PL_ERR;
        len = htonl((uint32_t)r);
        memcpy(buf, &len, 4);
        if (send_all(s, buf, 4 + (size_t)r) != PL_OK)
            return PL_ERR;
        off += (uint64_t)r;
    }
    return send_all(s, &zero, 4);
}

/* Reads clamd's NUL- or newline-terminated answer into line. */
static int
read_answer(int s, char *line, size_t cap)
{
    size_t n = 0;

    while (n + 1 < cap) {
        ssize_t r = recv(s, line + n, cap - 1 - n, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(line, '\0', n) != NULL || memchr(line, '\n', n) != NULL)
            break;
    }
    line[n] = '\0';
    line[strcspn(line, "\n")] = '\0';
    return n > 0 ? PL_OK : PL_ERR;
}

int
media_scan_fd(const char *socket_path, int fd, uint64_t size, char *signature, size_t cap,
              bool *infected, struct pl_err *err)
{
    char line[512];
    const char *found;
    int s = connect_clamd(socket_path), rc;

    errno = 0;
    if (s < 0)
        return scan_fail(err, "could not connect");
    if (stream_file(s, fd, size) != PL_OK || read_answer(s, line, sizeof(line)) != PL_OK) {
        rc = scan_fail(err, "could not scan");
        goto out;
    }
    *infected = false;
    rc = PL_OK;
    if (strcmp(line, "stream: OK") == 0)
        goto out;
    found = strstr(line, " FOUND");
    if (strncmp(line, "stream: ", 8) != 0 || found == NULL || found[6] != '\0') {
        errno = 0;
        pl_log_error("virus scanner answered \"%.100s\"", line);
        rc = pl_err_set(err, 503, "scanner_unavailable", "the virus scanner is not available");
        goto out;
    }
    *infected = true;
    snprintf(signature, cap, "%.*s", (int)(found - line - 8), line + 8);
out:
    close(s);
    return rc;
}
