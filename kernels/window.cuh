/*
 * The geometry of a 2-D window op (host/backend/backend.h's elag_window) as the kernels
 * of im2col.cu and pool.cu use it: in 64-bit numbers, so no product of sizes overflows,
 * and the inverse map from an input position to the windows that cover it, which lets
 * the backward kernels gather instead of scattering with atomics.
 */
#ifndef ELAG_KERNELS_WINDOW_CUH
#define ELAG_KERNELS_WINDOW_CUH

#include "elag_kernels.h"

struct elag_win64 {
    long long H, W, kh, kw, sh, sw, ph, pw, oh, ow;
};

static inline elag_win64 elag_win64_of(const elag_window *g)
{
    elag_win64 q = {g->H, g->W, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->oh, g->ow};
    return q;
}

/* The first (*lo) and last (*hi) output position y (or x) whose window covers the padded
 * coordinate hp = h + ph >= 0, for a window of k and stride s over o outputs: those with
 * y*s <= hp <= y*s + k - 1 and 0 <= y < o; empty when *lo > *hi. Window entry i = hp - y*s
 * of output y is the covered position. */
static __host__ __device__ inline void elag_win_cover(long long hp, long long k, long long s,
                                                      long long o, long long *lo, long long *hi)
{
    long long first = hp - k + 1; /* y*s >= first, y >= 0 */
    *lo = first > 0 ? (first + s - 1) / s : 0;
    long long last = hp / s; /* y*s <= hp, y < o */
    *hi = last < o - 1 ? last : o - 1;
}

#endif /* ELAG_KERNELS_WINDOW_CUH */
