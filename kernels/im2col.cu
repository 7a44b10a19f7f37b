/*
 * im2col and its adjoint col2im, the data movement of a convolution as one GEMM, on
 * feature-major activations x(C, N, H, W):
 *   col(C*kh*kw, nb*oh*ow)[(c*kh + i)*kw + j][(n - n0)*oh*ow + y*ow + x]
 *     = x[c][n][y*sh - ph + i][x*sw - pw + j]   (0 outside the input)
 * for the samples n in [n0, n0 + nb). An im2col thread writes the kh*kw entries of one
 * channel at one column (one output position of one sample). col2im is
 * deterministic without float atomics: each thread owns one dx entry and gathers the col
 * entries that im2col filled from it, adding them in increasing (i, j), the order a
 * scatter over col rows (the reference's loop) adds them in. Flat indices are 64-bit:
 * C*kh*kw * nb*oh*ow exceeds 2^31 for large layers and batches.
 */
#include "elag_kernels.h"
#include "launch.cuh"
#include "window.cuh"

#define IM2COL_GRID_Y_MAX 65535u /* the hardware limit of gridDim.y */

/* Which samples and channels, with the window (window.cuh), as 64-bit numbers. */
struct im2col_geom {
    long long C, N, n0, nb;
    elag_win64 g;
};

static im2col_geom im2col_geom_make(int C, int N, int n0, int nb, const elag_window *g)
{
    im2col_geom q = {C, N, n0, nb, elag_win64_of(g)};
    return q;
}

/* Column `col_idx` (< nb*oh*ow) of the kh*kw rows of channel c: the window of one output
 * position over one input plane. Host-callable so the index maths can be checked without
 * a GPU. */
static __host__ __device__ inline void
im2col_column(float *col, const float *x, const im2col_geom &q, long long col_idx, long long c)
{
    const elag_win64 &g = q.g;
    long long plane = g.oh * g.ow, ncols = q.nb * plane;
    long long nl = col_idx / plane, p = col_idx - nl * plane; /* sample n0 + nl, y*ow + xo */
    long long y = p / g.ow, xo = p - y * g.ow;
    long long h0 = y * g.sh - g.ph, w0 = xo * g.sw - g.pw;   /* window corner in x */
    const float *xp = x + (c * q.N + q.n0 + nl) * g.H * g.W; /* plane x[c][n0 + nl] */
    float *out = col + c * g.kh * g.kw * ncols + col_idx;    /* col[(c*kh + 0)*kw + 0][col_idx] */
    for (long long i = 0; i < g.kh; i++) {
        long long h = h0 + i;
        for (long long j = 0; j < g.kw; j++, out += ncols) { /* row (c*kh + i)*kw + j */
            long long w = w0 + j;
            *out = (h >= 0 && h < g.H && w >= 0 && w < g.W) ? xp[h * g.W + w] : 0.0f;
        }
    }
}

/* The updated value of entry idx of dx's nb-sample slice (idx < C*nb*H*W, ordered
 * (c, n - n0, h, w)): its old value plus every col entry im2col read from it. *at receives
 * its offset in dx(C, N, H, W). Host-callable, like im2col_column. */
static __host__ __device__ inline float
col2im_one(const float *dx, const float *col, const im2col_geom &q, long long idx, long long *at)
{
    const elag_win64 &g = q.g;
    long long w = idx % g.W, t = idx / g.W;
    long long h = t % g.H;
    t /= g.H;
    long long nl = t % q.nb, c = t / q.nb;
    long long plane = g.oh * g.ow, ncols = q.nb * plane;
    long long hp = h + g.ph, wp = w + g.pw;
    long long ylo, yhi, xlo, xhi;
    elag_win_cover(hp, g.kh, g.sh, g.oh, &ylo, &yhi);
    elag_win_cover(wp, g.kw, g.sw, g.ow, &xlo, &xhi);
    *at = ((c * q.N + q.n0 + nl) * g.H + h) * g.W + w;
    float acc = dx[*at];
    /* Window row i = hp - y*sh grows as y falls: descending y and x visit (i, j) in
     * increasing order. */
    for (long long y = yhi; y >= ylo; y--) {
        long long i = hp - y * g.sh;
        for (long long xo = xhi; xo >= xlo; xo--) {
            long long j = wp - xo * g.sw;
            long long r = (c * g.kh + i) * g.kw + j;
            acc += col[r * ncols + nl * plane + y * g.ow + xo];
        }
    }
    return acc;
}

/* Thread (x) owns columns of col, a grid row (y) owns channels: each thread writes the
 * kh*kw rows of its channel at its column, consecutive threads consecutive columns, so
 * the writes are coalesced and the divisions are per column, not per entry. */
static __global__ void im2col_kernel(float *col, const float *x, im2col_geom q, size_t ncols)
{
    for (long long c = blockIdx.y; c < q.C; c += gridDim.y)
        ELAG_GRID_LOOP(k, ncols) im2col_column(col, x, q, (long long)k, c);
}

static __global__ void col2im_kernel(float *dx, const float *col, im2col_geom q, size_t total)
{
    ELAG_GRID_LOOP(idx, total)
    {
        long long at;
        float v = col2im_one(dx, col, q, (long long)idx, &at);
        dx[at] = v;
    }
}

extern "C" cudaError_t elag_cuda_im2col(float *col, const float *x, int C, int N, int n0, int nb,
                                        const elag_window *g, cudaStream_t stream)
{
    if (C <= 0 || nb <= 0) return cudaSuccess;
    im2col_geom q = im2col_geom_make(C, N, n0, nb, g);
    size_t ncols = (size_t)(q.nb * q.g.oh * q.g.ow);
    dim3 grid(elag_grid_for(ncols),
              (unsigned)C > IM2COL_GRID_Y_MAX ? IM2COL_GRID_Y_MAX : (unsigned)C);
    im2col_kernel<<<grid, ELAG_BLOCK, 0, stream>>>(col, x, q, ncols);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_col2im(float *dx, const float *col, int C, int N, int n0, int nb,
                                        const elag_window *g, cudaStream_t stream)
{
    if (C <= 0 || nb <= 0) return cudaSuccess;
    im2col_geom q = im2col_geom_make(C, N, n0, nb, g);
    size_t total = (size_t)(q.C * q.nb) * (size_t)(q.g.H * q.g.W);
    col2im_kernel<<<elag_grid_for(total), ELAG_BLOCK, 0, stream>>>(dx, col, q, total);
    return cudaGetLastError();
}
