/*
 * storage.c - content-addressed file storage under PARLEY_MEDIA_DIR.
 *
 * An upload is written to a fresh temporary file in <dir>/tmp (same file system as the final
 * place, so rename() is atomic), fsynced, then renamed to <dir>/ab/cd/<sha256>, and the directory
 * is fsynced so the rename survives a crash.  Identical content maps to one name, so it is stored
 * once: when the name exists the temporary file is simply removed.  Two concurrent uploads of the
 * same bytes both rename onto the same name, which is harmless since the bytes are the same.
 * A crash leaves at most a stale temporary file, swept at the next start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parley/err.h"
#include "parley/log.h"
#include "svc.h"

#define TMP_MAX_AGE_S (24 * 3600)

/* Logs a storage failure with errno and fills err with a plain 500 (the path stays in the log). */
static int
io_fail(struct pl_err *err, const char *what, const char *path)
{
    int e = errno;

    pl_log_detail(PL_LOG_ERROR, strerror(e), "could not %s \"%s\"", what, path);
    return pl_err_set(err, 500, "storage_failed", "could not %s a media file", what);
}

static int
mkdir_one(const char *path, struct pl_err *err)
{
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return io_fail(err, "create directory", path);
    return PL_OK;
}

/* Removes temporary files a crashed process left behind (only old ones: replicas share dir). */
static void
sweep_tmp(const char *tmpdir)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    time_t now = time(NULL);

    while (d != NULL && (e = readdir(d)) != NULL) {
        struct stat st;

        if (strncmp(e->d_name, "upload-", 7) != 0 ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode) && now - st.st_mtime > TMP_MAX_AGE_S)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    if (d != NULL)
        closedir(d);
}

int
media_store_init(const char *dir, struct pl_err *err)
{
    char tmp[PATH_MAX];

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp", dir) >= sizeof(tmp))
        return pl_err_set(err, 500, "storage_failed", "PARLEY_MEDIA_DIR is too long");
    if (mkdir_one(dir, err) != PL_OK || mkdir_one(tmp, err) != PL_OK)
        return PL_ERR;
    if (access(tmp, W_OK) != 0)
        return io_fail(err, "write to", tmp);
    sweep_tmp(tmp);
    return PL_OK;
}

int
media_store_tmp_open(const char *dir, struct media_tmp *t, struct pl_err *err)
{
    if ((size_t)snprintf(t->path, sizeof(t->path), "%s/tmp/upload-XXXXXX", dir) >=
        sizeof(t->path))
        return pl_err_set(err, 500, "storage_failed", "storage path too long");
    t->fd = mkostemp(t->path, O_CLOEXEC);
    if (t->fd < 0) {
        io_fail(err, "create", t->path);
        t->path[0] = '\0';
        return PL_ERR;
    }
    return PL_OK;
}

int
media_store_tmp_write(struct media_tmp *t, const void *p, size_t n, struct pl_err *err)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(t->fd, c, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return io_fail(err, "write", t->path);
        c += w;
        n -= (size_t)w;
    }
    return PL_OK;
}

void
media_store_tmp_discard(void *arg)
{
    struct media_tmp *t = arg;

    if (t->fd >= 0)
        close(t->fd);
    if (t->path[0] != '\0')
        unlink(t->path);
    t->fd = -1;
    t->path[0] = '\0';
}

/* fsyncs a directory so that an entry renamed into it is durable. */
static int
sync_dir(const char *path, struct pl_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = PL_OK;

    if (fd < 0 || fsync(fd) != 0)
        rc = io_fail(err, "sync directory", path);
    if (fd >= 0)
        close(fd);
    return rc;
}

int
media_store_commit(const char *dir, struct media_tmp *t, const char *sha256, char *key,
                   bool *existed, struct pl_err *err)
{
    char l1[PATH_MAX], l2[PATH_MAX], final[PATH_MAX];
    struct stat st;
    int rc = PL_ERR;

    snprintf(key, MEDIA_KEY_LEN + 1, "%.2s/%.2s/%s", sha256, sha256 + 2, sha256);
    snprintf(l1, sizeof(l1), "%s/%.2s", dir, sha256);
    snprintf(l2, sizeof(l2), "%s/%.2s/%.2s", dir, sha256, sha256 + 2);
    snprintf(final, sizeof(final), "%s/%s", dir, key);
    *existed = stat(final, &st) == 0 && S_ISREG(st.st_mode);
    if (*existed) { /* stored once already: keep the first copy */
        rc = PL_OK;
        goto out;
    }
    if (fsync(t->fd) != 0) {
        rc = io_fail(err, "sync", t->path);
        goto out;
    }
    if (mkdir_one(l1, err) != PL_OK || mkdir_one(l2, err) != PL_OK)
        goto out;
    if (fchmod(t->fd, 0640) != 0 || rename(t->path, final) != 0) {
        rc = io_fail(err, "store", final);
        goto out;
    }
    t->path[0] = '\0'; /* renamed: nothing to remove */
    rc = sync_dir(l2, err);
out:
    media_store_tmp_discard(t);
    return rc;
}

int
media_store_open(const char *dir, const char *key, struct pl_err *err)
{
    char path[PATH_MAX];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, key);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        io_fail(err, "open", path);
    return fd;
}
