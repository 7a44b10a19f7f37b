/*
 * Per-thread error message behind elag_last_error(). Thread-local like errno:
 * it holds no shared state, so it is safe with OpenMP and sweep workers.
 */
#include "elag/elag.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

const char *elag_last_error(void) { return last_error; }

void elag_clear_error(void) { last_error[0] = '\0'; }

elag_status elag_fail(elag_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

int elag_status_exit_code(elag_status s)
{
    switch (s) {
    case ELAG_OK: return 0;
    case ELAG_ERR_USAGE:
    case ELAG_ERR_INPUT:
    case ELAG_ERR_NO_DEVICE: return 2;
    default: return 1;
    }
}

const char *elag_status_name(elag_status s)
{
    switch (s) {
    case ELAG_OK: return "ok";
    case ELAG_ERR_USAGE: return "usage";
    case ELAG_ERR_INPUT: return "input";
    case ELAG_ERR_NO_DEVICE: return "no-device";
    case ELAG_ERR_IO: return "io";
    case ELAG_ERR_NOMEM: return "nomem";
    case ELAG_ERR_DEVICE: return "device";
    case ELAG_ERR_UNSUPPORTED: return "unsupported";
    case ELAG_ERR_INTERNAL: return "internal";
    case ELAG_ERR_DIVERGED: return "diverged";
    case ELAG_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

const char *elag_version(void) { return ELAG_VERSION; }
