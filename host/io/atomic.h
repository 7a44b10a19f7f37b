/*
 * Crash-safe file writes: data goes to "<path>.tmp.<pid>" in the same folder, is
 * flushed and fsync'd, then renamed over `path`, so readers see the old file or the
 * new one, never a torn one. On failure the temporary file is removed and `path`
 * is untouched.
 */
#ifndef ELAG_IO_ATOMIC_H
#define ELAG_IO_ATOMIC_H

#include "elag/elag.h"

#include <stddef.h>
#include <stdio.h>

typedef struct elag_atomic_file {
    FILE *fp;             /* write through this */
    char path[1024];      /* final name */
    char tmp_path[1100];  /* temporary name */
} elag_atomic_file;

elag_status elag_atomic_open(elag_atomic_file *af, const char *path);
/* Flushes, fsyncs, closes and renames; on any failure removes the temporary file. */
elag_status elag_atomic_commit(elag_atomic_file *af);
/* Closes and removes the temporary file (safe after a failed commit or twice). */
void elag_atomic_abort(elag_atomic_file *af);
/* Whole-buffer convenience. */
elag_status elag_atomic_write(const char *path, const void *data, size_t len);

/* Appends one line (a '\n' is added) with O_APPEND in a single write(2) call, so
 * concurrent appenders never interleave lines. */
elag_status elag_append_line(const char *path, const char *line);

/* Reads a whole file into a malloc'd NUL-terminated buffer. A missing file is bad input
 * (ELAG_ERR_INPUT); other failures are ELAG_ERR_IO. */
elag_status elag_read_file(const char *path, char **out, size_t *len);

/* mkdir -p. */
elag_status elag_mkdirs(const char *path);

#endif /* ELAG_IO_ATOMIC_H */
