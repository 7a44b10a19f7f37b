/*
 * Crash-safe file writes (temporary file, fsync, rename), single-write appends for
 * ledgers that several processes share, whole-file reads and mkdir -p. Every
 * failure is ELAG_ERR_IO with "<path>: <what>: <strerror>" (see io/atomic.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Records an I/O failure with the current errno. */
static elag_status io_fail(const char *path, const char *what, int err)
{
    return elag_fail(ELAG_ERR_IO, "%s: %s: %s", path, what, strerror(err));
}

/* fsync the folder holding `path` so the rename itself survives a crash. Best effort:
 * some file systems refuse fsync on a directory, and the data is already safe. */
static void sync_parent_dir(const char *path)
{
    char dir[1024];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof dir) return;
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

elag_status elag_atomic_open(elag_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    if (!path || !path[0]) return elag_fail(ELAG_ERR_IO, "(empty path): cannot write a file");
    size_t len = strlen(path);
    if (len >= sizeof af->path)
        return elag_fail(ELAG_ERR_IO, "%.80s...: path too long (%zu bytes, at most %zu)", path,
                         len, sizeof af->path - 1);
    memcpy(af->path, path, len + 1);
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    /* O_TRUNC: a stale temporary file left by a dead process with our pid is overwritten. */
    int fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        af->tmp_path[0] = '\0';
        return io_fail(path, "cannot create temporary file", err);
    }
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        int err = errno;
        close(fd);
        unlink(af->tmp_path);
        af->tmp_path[0] = '\0';
        return io_fail(path, "cannot open temporary file", err);
    }
    return ELAG_OK;
}

elag_status elag_atomic_commit(elag_atomic_file *af)
{
    if (!af->fp) return elag_fail(ELAG_ERR_IO, "%s: commit without an open file", af->path);
    FILE *fp = af->fp;
    af->fp = NULL;
    const char *what = NULL;
    int err = 0;
    if (ferror(fp)) {
        /* an earlier buffered write failed; errno may have changed since, so flush again
         * (the unwritten bytes are still buffered) for a fresh reason */
        what = "write failed";
        errno = 0;
        (void)fflush(fp);
        err = errno ? errno : EIO;
    } else if (fflush(fp) != 0) {
        what = "write failed";
        err = errno;
    } else if (fsync(fileno(fp)) != 0) {
        what = "fsync failed";
        err = errno;
    }
    if (fclose(fp) != 0 && !what) {
        what = "close failed";
        err = errno;
    }
    if (!what && rename(af->tmp_path, af->path) != 0) {
        what = "cannot rename temporary file into place";
        err = errno;
    }
    if (what) {
        unlink(af->tmp_path);
        af->tmp_path[0] = '\0';
        return io_fail(af->path, what, err);
    }
    af->tmp_path[0] = '\0';
    sync_parent_dir(af->path);
    return ELAG_OK;
}

void elag_atomic_abort(elag_atomic_file *af)
{
    if (!af) return;
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
    }
    if (af->tmp_path[0]) {
        unlink(af->tmp_path);
        af->tmp_path[0] = '\0';
    }
}

elag_status elag_atomic_write(const char *path, const void *data, size_t len)
{
    elag_atomic_file af;
    elag_status st = elag_atomic_open(&af, path);
    if (st != ELAG_OK) return st;
    if (len > 0 && fwrite(data, 1, len, af.fp) != len) {
        int err = errno;
        elag_atomic_abort(&af);
        return io_fail(path, "write failed", err);
    }
    return elag_atomic_commit(&af);
}

elag_status elag_append_line(const char *path, const char *line)
{
    size_t len = strlen(line);
    char *buf = malloc(len + 1);
    if (!buf) return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory for a %zu-byte line", path, len);
    memcpy(buf, line, len);
    buf[len] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        free(buf);
        return io_fail(path, "cannot open for appending", err);
    }
    /* One write(2): with O_APPEND the kernel places it atomically at the end, so lines
     * of concurrent writers never interleave. Retry only if nothing was written. */
    ssize_t n;
    do {
        n = write(fd, buf, len + 1);
    } while (n < 0 && errno == EINTR);
    int err = errno;
    free(buf);
    if (n < 0) {
        close(fd);
        return io_fail(path, "append failed", err);
    }
    if ((size_t)n != len + 1) {
        close(fd);
        return elag_fail(ELAG_ERR_IO, "%s: append failed: short write (%zd of %zu bytes)", path,
                         n, len + 1);
    }
    if (close(fd) != 0) return io_fail(path, "close failed", errno);
    return ELAG_OK;
}

elag_status elag_read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp && (errno == ENOENT || errno == ENOTDIR || errno == EISDIR))
        return elag_fail(ELAG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    if (!fp) return io_fail(path, "cannot open", errno);
    size_t cap = 4096, n = 0;
    struct stat sb;
    if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0)
        cap = (size_t)sb.st_size + 1;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, cap);
    }
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory reading %zu bytes", path,
                                 ncap);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        int err = errno;
        free(buf);
        fclose(fp);
        return io_fail(path, "read failed", err);
    }
    fclose(fp);
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return ELAG_OK;
}

/* Creates one folder; an existing folder is fine, an existing file is not. */
static elag_status mkdir_one(const char *dir)
{
    if (mkdir(dir, 0777) == 0) return ELAG_OK;
    int err = errno;
    struct stat sb;
    if (err == EEXIST) {
        if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return ELAG_OK;
        return elag_fail(ELAG_ERR_IO, "%s: cannot create folder: exists and is not a folder",
                         dir);
    }
    return io_fail(dir, "cannot create folder", err);
}

elag_status elag_mkdirs(const char *path)
{
    if (!path || !path[0]) return elag_fail(ELAG_ERR_IO, "(empty path): cannot create folder");
    size_t len = strlen(path);
    char *p = malloc(len + 1);
    if (!p) return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", path);
    memcpy(p, path, len + 1);
    elag_status st = ELAG_OK;
    for (size_t i = 1; i <= len && st == ELAG_OK; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        if (p[i - 1] == '/') continue; /* "a//b" */
        char saved = p[i];
        p[i] = '\0';
        st = mkdir_one(p);
        p[i] = saved;
    }
    free(p);
    return st;
}
