/*
 * Internal check macros. ELAG_TRY propagates a failing elag_status;
 * ELAG_ASSERT aborts on a broken invariant (a programmer's mistake).
 */
#ifndef ELAG_CORE_CHECK_H
#define ELAG_CORE_CHECK_H

#include "elag/elag.h"

#include <stdio.h>
#include <stdlib.h>

#define ELAG_TRY(expr)                                                                             \
    do {                                                                                           \
        elag_status elag_try_s_ = (expr);                                                          \
        if (elag_try_s_ != ELAG_OK) return elag_try_s_;                                            \
    } while (0)

/* Like ELAG_TRY but jumps to a cleanup label, keeping the status in `st`. */
#define ELAG_TRY_GOTO(st, expr, label)                                                             \
    do {                                                                                           \
        (st) = (expr);                                                                             \
        if ((st) != ELAG_OK) goto label;                                                           \
    } while (0)

#define ELAG_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "elag: %s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define ELAG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* ELAG_CORE_CHECK_H */
