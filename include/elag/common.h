/*
 * elag public API, the part every other header builds on: version, status codes and the
 * per-thread last error.
 *
 * Every library function returns an elag_status; on failure a human-readable message is
 * kept per thread and read with elag_last_error(). The library never prints and never
 * exits; the CLI turns statuses into exit codes. Include <elag/elag.h> for the whole API.
 */
#ifndef ELAG_INCLUDE_COMMON_H
#define ELAG_INCLUDE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ELAG_VERSION       "0.1.0"
#define ELAG_VERSION_MAJOR 0
#define ELAG_VERSION_MINOR 1
#define ELAG_VERSION_PATCH 0

typedef enum elag_status {
    ELAG_OK = 0,
    ELAG_ERR_USAGE = -1,       /* bad arguments or flags (exit 2) */
    ELAG_ERR_INPUT = -2,       /* bad input: config, dataset, model file (exit 2) */
    ELAG_ERR_NO_DEVICE = -3,   /* a requested device does not exist (exit 2) */
    ELAG_ERR_IO = -4,          /* file system failure (exit 1) */
    ELAG_ERR_NOMEM = -5,       /* host or device out of memory (exit 1) */
    ELAG_ERR_DEVICE = -6,      /* CUDA / cuBLAS / cuSPARSE runtime failure (exit 1) */
    ELAG_ERR_UNSUPPORTED = -7, /* valid request this build cannot do (exit 1) */
    ELAG_ERR_INTERNAL = -8,    /* anything else (exit 1) */
    ELAG_ERR_DIVERGED = -9,    /* training met a NaN or Inf loss, gradient or weight (exit 1) */
    ELAG_ERR_INTERRUPTED = -10 /* stopped by an interrupt after a checkpoint (exit 1; `elag
                                * train` exits 128 + the signal: 130 SIGINT, 143 SIGTERM) */
} elag_status;

/* The message of the last failure on this thread ("" when none). */
const char *elag_last_error(void);

/* Records a printf-style message for status s and returns s. */
elag_status elag_fail(elag_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears the message of this thread. */
void elag_clear_error(void);

/* Exit code the CLI uses for status s: 0 ok, 2 bad usage or input, 1 other. */
int elag_status_exit_code(elag_status s);

const char *elag_status_name(elag_status s);
const char *elag_version(void);

/* "Did you mean": the candidate closest to `word` (a mistyped command, option or config
 * key) by edit distance, at most 2 edits (1 for names of 3 characters or fewer), or NULL
 * when none is that close. Dotted names compare their last component among siblings
 * first, as config keys do (host/config/suggest.c). `word` itself is never suggested. */
const char *elag_suggest(const char *word, const char *const *candidates, size_t n);

/* A one-line note for the user that is not an error, e.g. what the device "auto" chose
 * ("no CUDA device found, using the CPU (8 threads)"). Option structs that take one call
 * it at most once per note, before the work it is about; `user` is the struct's own
 * user pointer. The library never prints: what to do with the text is the caller's. */
typedef void (*elag_note_fn)(const char *text, void *user);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_COMMON_H */
