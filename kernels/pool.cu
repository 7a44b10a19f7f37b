/*
 * 2-D max and average pooling over independent planes x(planes, H, W) -> y(planes, oh, ow),
 * and their gradients. Forward: one thread per output, scanning its window in row-major
 * order (max keeps the first maximum: a later entry replaces it only when strictly
 * greater). Backward is deterministic without float atomics: one thread per dx entry
 * gathers from the windows that cover it, in increasing (y, x), the order in which a
 * scatter over the outputs (the reference's loop) adds them; max takes dy only from the
 * windows whose argmax is this entry. Flat indices are 64-bit.
 */
#include "elag_kernels.h"
#include "launch.cuh"
#include "window.cuh"

/* y[o] for output o < planes*oh*ow, and its argmax (h*W + w, or -1 for a window with no
 * in-bounds entry) through *arg. Host-callable so the index maths can be checked without
 * a GPU. */
static __host__ __device__ inline float pool_forward_one(elag_pool_mode mode, const float *x,
                                                         const elag_win64 &q, long long o,
                                                         int32_t *arg)
{
    long long xo = o % q.ow, t = o / q.ow;
    long long y = t % q.oh, pl = t / q.oh;
    const float *xp = x + pl * q.H * q.W; /* (H, W) */
    long long h0 = y * q.sh - q.ph, w0 = xo * q.sw - q.pw;
    /* The in-bounds part of the window, in window coordinates: the padding is skipped,
     * the row-major order of the rest kept. */
    long long i0 = h0 < 0 ? -h0 : 0, i1 = q.H - h0 < q.kh ? q.H - h0 : q.kh;
    long long j0 = w0 < 0 ? -w0 : 0, j1 = q.W - w0 < q.kw ? q.W - w0 : q.kw;
    if (mode == ELAG_POOL_MAX) {
        float best = 0.0f;
        long long at = -1;
        for (long long i = i0; i < i1; i++)
            for (long long j = j0; j < j1; j++) {
                long long k = (h0 + i) * q.W + (w0 + j);
                if (at < 0 || xp[k] > best) {
                    best = xp[k];
                    at = k;
                }
            }
        *arg = (int32_t)at; /* the host checked H*W <= INT32_MAX */
        return best;
    }
    float s = 0.0f;
    for (long long i = i0; i < i1; i++)
        for (long long j = j0; j < j1; j++) s += xp[(h0 + i) * q.W + (w0 + j)];
    *arg = -1;
    return s / (float)(q.kh * q.kw); /* padding counts: count_include_pad */
}

/* dx[idx] for idx < planes*H*W. Host-callable, like pool_forward_one. */
static __host__ __device__ inline float pool_backward_one(elag_pool_mode mode, const float *dy,
                                                          const int32_t *argmax,
                                                          const elag_win64 &q, long long idx)
{
    long long w = idx % q.W, t = idx / q.W;
    long long h = t % q.H, pl = t / q.H;
    long long plane = q.oh * q.ow;
    const float *dyp = dy + pl * plane; /* (oh, ow) */
    long long ylo, yhi, xlo, xhi;
    elag_win_cover(h + q.ph, q.kh, q.sh, q.oh, &ylo, &yhi);
    elag_win_cover(w + q.pw, q.kw, q.sw, q.ow, &xlo, &xhi);
    float acc = 0.0f;
    if (mode == ELAG_POOL_MAX) {
        const int32_t *ap = argmax + pl * plane; /* (oh, ow) */
        int32_t self = (int32_t)(h * q.W + w);
        for (long long y = ylo; y <= yhi; y++)
            for (long long xo = xlo; xo <= xhi; xo++)
                if (ap[y * q.ow + xo] == self) acc += dyp[y * q.ow + xo];
    } else {
        float area = (float)(q.kh * q.kw);
        for (long long y = ylo; y <= yhi; y++)
            for (long long xo = xlo; xo <= xhi; xo++) acc += dyp[y * q.ow + xo] / area;
    }
    return acc;
}

static __global__ void pool_forward_kernel(elag_pool_mode mode, float *y, int32_t *argmax,
                                           const float *x, elag_win64 q, size_t total)
{
    ELAG_GRID_LOOP(o, total)
    {
        int32_t arg;
        y[o] = pool_forward_one(mode, x, q, (long long)o, &arg);
        if (argmax != NULL) argmax[o] = arg;
    }
}

static __global__ void pool_backward_kernel(elag_pool_mode mode, float *dx, const float *dy,
                                            const int32_t *argmax, elag_win64 q, size_t total)
{
    ELAG_GRID_LOOP(idx, total) dx[idx] = pool_backward_one(mode, dy, argmax, q, (long long)idx);
}

extern "C" cudaError_t elag_cuda_pool_forward(elag_pool_mode mode, float *y, int32_t *argmax,
                                              const float *x, int planes, const elag_window *g,
                                              cudaStream_t stream)
{
    if (planes <= 0) return cudaSuccess;
    if (mode != ELAG_POOL_MAX && mode != ELAG_POOL_AVG) return cudaErrorInvalidValue;
    elag_win64 q = elag_win64_of(g);
    if (mode == ELAG_POOL_AVG) argmax = NULL; /* unused by average pooling */
    size_t total = (size_t)planes * (size_t)(q.oh * q.ow);
    pool_forward_kernel<<<elag_grid_for(total), ELAG_BLOCK, 0, stream>>>(mode, y, argmax, x, q,
                                                                         total);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_pool_backward(elag_pool_mode mode, float *dx, const float *dy,
                                               const int32_t *argmax, int planes,
                                               const elag_window *g, cudaStream_t stream)
{
    if (planes <= 0) return cudaSuccess;
    if (mode != ELAG_POOL_MAX && mode != ELAG_POOL_AVG) return cudaErrorInvalidValue;
    if (mode == ELAG_POOL_MAX && argmax == NULL) return cudaErrorInvalidValue;
    elag_win64 q = elag_win64_of(g);
    size_t total = (size_t)planes * (size_t)(q.H * q.W);
    pool_backward_kernel<<<elag_grid_for(total), ELAG_BLOCK, 0, stream>>>(mode, dx, dy, argmax, q,
                                                                          total);
    return cudaGetLastError();
}
