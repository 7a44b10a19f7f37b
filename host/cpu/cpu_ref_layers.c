/*
 * The layer ops of the naive CPU reference ("cpu-ref"): transpose, im2col / col2im,
 * pooling, batch norm and dropout, written as the loops of their definitions in
 * backend.h so they can serve as the specification the fast path (cpu_layers.c) and
 * the CUDA kernels are tested against. Long sums (batch norm statistics and gradients)
 * are in double; a pooling window's few terms are summed in float in window order.
 * The arguments were checked by the wrappers (host/backend/backend_ops.c): a geometry is
 * resolved, sizes are not negative, max pooling has its argmax buffer.
 */
#include "cpu/cpu_internal.h"

#include "backend/philox.h"
#include "core/check.h"

#include <math.h>

/* Offset of x[c][n][h][w] in a (C, N, H, W) tensor whose planes are g's input planes. */
static size_t at(const elag_window *g, int N, int c, int n, int h, int w)
{
    return (((size_t)c * N + n) * g->H + h) * g->W + w;
}

/* ---- transpose ---- */

elag_status elag_cpu_ref_transpose(elag_backend *b, float *dst, const float *src, int batch,
                                   int rows, int cols, int inner)
{
    (void)b;
    for (int t = 0; t < batch; t++)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                for (int e = 0; e < inner; e++)
                    dst[(((size_t)t * cols + j) * rows + i) * inner + e] =
                        src[(((size_t)t * rows + i) * cols + j) * inner + e];
    return ELAG_OK;
}

/* ---- im2col / col2im ---- */

elag_status elag_cpu_ref_im2col(elag_backend *b, float *col, const float *x, int C, int N, int n0,
                                int nb, const elag_window *g)
{
    (void)b;
    const size_t ncols = (size_t)nb * g->oh * g->ow; /* columns of col (C*kh*kw, ncols) */
    for (int c = 0; c < C; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                float *row = col + (((size_t)c * g->kh + i) * g->kw + j) * ncols; /* (ncols) */
                for (int n = 0; n < nb; n++)
                    for (int oy = 0; oy < g->oh; oy++)
                        for (int ox = 0; ox < g->ow; ox++) {
                            int h = oy * g->sh - g->ph + i, w = ox * g->sw - g->pw + j;
                            int inside = h >= 0 && h < g->H && w >= 0 && w < g->W;
                            row[((size_t)n * g->oh + oy) * g->ow + ox] =
                                inside ? x[at(g, N, c, n0 + n, h, w)] : 0.0f;
                        }
            }
    return ELAG_OK;
}

/* The same loops as im2col with the assignment turned around; each dx entry receives its
 * terms in (i, j) order, an order cpu_layers.c keeps. */
elag_status elag_cpu_ref_col2im(elag_backend *b, float *dx, const float *col, int C, int N, int n0,
                                int nb, const elag_window *g)
{
    (void)b;
    const size_t ncols = (size_t)nb * g->oh * g->ow;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                const float *row = col + (((size_t)c * g->kh + i) * g->kw + j) * ncols;
                for (int n = 0; n < nb; n++)
                    for (int oy = 0; oy < g->oh; oy++)
                        for (int ox = 0; ox < g->ow; ox++) {
                            int h = oy * g->sh - g->ph + i, w = ox * g->sw - g->pw + j;
                            if (h >= 0 && h < g->H && w >= 0 && w < g->W) /* padding dropped */
                                dx[at(g, N, c, n0 + n, h, w)] +=
                                    row[((size_t)n * g->oh + oy) * g->ow + ox];
                        }
            }
    return ELAG_OK;
}

/* ---- direct convolution (stride 1): the sums of backend.h, accumulated in double ---- */

/* Entry (ch, n, h, w) of a (channels, N, rows, cols) tensor, or 0 outside its plane. */
static float plane_at(const float *t, int N, int ch, int n, int h, int w, int rows, int cols)
{
    if (h < 0 || h >= rows || w < 0 || w >= cols) return 0.0f;
    return t[(((size_t)ch * N + n) * rows + h) * cols + w];
}

elag_status elag_cpu_ref_conv_forward(elag_backend *b, float *y, const float *x, const float *w,
                                      int C, int O, int N, int n0, int nb, const elag_window *g,
                                      float *work)
{
    (void)b, (void)work;
    for (int o = 0; o < O; o++)
        for (int n = n0; n < n0 + nb; n++)
            for (int v = 0; v < g->oh; v++)
                for (int u = 0; u < g->ow; u++) {
                    double s = 0.0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < g->kh; i++)
                            for (int j = 0; j < g->kw; j++)
                                s += (double)w[(((size_t)o * C + c) * g->kh + i) * g->kw + j] *
                                     plane_at(x, N, c, n, v - g->ph + i, u - g->pw + j, g->H, g->W);
                    y[(((size_t)o * N + n) * g->oh + v) * g->ow + u] = (float)s;
                }
    return ELAG_OK;
}

elag_status elag_cpu_ref_conv_backward_data(elag_backend *b, float *dx, const float *dy,
                                            const float *w, int C, int O, int N, int n0, int nb,
                                            const elag_window *g, float *work)
{
    (void)b, (void)work;
    for (int c = 0; c < C; c++)
        for (int n = n0; n < n0 + nb; n++)
            for (int h = 0; h < g->H; h++)
                for (int u = 0; u < g->W; u++) {
                    double s = 0.0;
                    for (int o = 0; o < O; o++)
                        for (int i = 0; i < g->kh; i++)
                            for (int j = 0; j < g->kw; j++)
                                s += (double)w[(((size_t)o * C + c) * g->kh + i) * g->kw + j] *
                                     plane_at(dy, N, o, n, h + g->ph - i, u + g->pw - j, g->oh,
                                              g->ow);
                    dx[(((size_t)c * N + n) * g->H + h) * g->W + u] = (float)s;
                }
    return ELAG_OK;
}

elag_status elag_cpu_ref_conv_backward_filter(elag_backend *b, float *dw, const float *dy,
                                              const float *x, int C, int O, int N, int n0, int nb,
                                              const elag_window *g, float beta, float *work)
{
    (void)b, (void)work;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < g->kh; i++)
                for (int j = 0; j < g->kw; j++) {
                    double s = 0.0;
                    for (int n = n0; n < n0 + nb; n++)
                        for (int v = 0; v < g->oh; v++)
                            for (int u = 0; u < g->ow; u++)
                                s += (double)dy[(((size_t)o * N + n) * g->oh + v) * g->ow + u] *
                                     plane_at(x, N, c, n, v - g->ph + i, u - g->pw + j, g->H, g->W);
                    float *d = &dw[(((size_t)o * C + c) * g->kh + i) * g->kw + j];
                    *d = beta == 0.0f ? (float)s : *d + (float)s;
                }
    return ELAG_OK;
}

/* ---- pooling ---- */

elag_status elag_cpu_ref_pool_forward(elag_backend *b, elag_pool_mode mode, float *y,
                                      int32_t *argmax, const float *x, int planes,
                                      const elag_window *g)
{
    (void)b;
    const float area = (float)(g->kh * g->kw); /* padding counts as zeros */
    for (int p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * g->H * g->W; /* (H, W) */
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                size_t o = ((size_t)p * g->oh + oy) * g->ow + ox;
                float best = 0.0f, sum = 0.0f;
                int32_t arg = -1;
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int h = oy * g->sh - g->ph + i, w = ox * g->sw - g->pw + j;
                        if (h < 0 || h >= g->H || w < 0 || w >= g->W) continue;
                        float v = xp[h * g->W + w];
                        /* the first in-bounds entry, then only strictly larger ones: the
                         * first maximum wins ties (and a NaN is kept only when first) */
                        if (arg < 0 || v > best) {
                            best = v;
                            arg = h * g->W + w;
                        }
                        sum += v;
                    }
                if (mode == ELAG_POOL_MAX) {
                    y[o] = best; /* 0 when no entry is in bounds */
                    argmax[o] = arg;
                } else {
                    y[o] = sum / area;
                }
            }
    }
    return ELAG_OK;
}

elag_status elag_cpu_ref_pool_backward(elag_backend *b, elag_pool_mode mode, float *dx,
                                       const float *dy, const int32_t *argmax, int planes,
                                       const elag_window *g)
{
    (void)b;
    const float area = (float)(g->kh * g->kw);
    for (size_t e = 0; e < (size_t)planes * g->H * g->W; e++) dx[e] = 0.0f;
    for (int p = 0; p < planes; p++) {
        float *dxp = dx + (size_t)p * g->H * g->W; /* (H, W) */
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                size_t o = ((size_t)p * g->oh + oy) * g->ow + ox;
                if (mode == ELAG_POOL_MAX) {
                    if (argmax[o] >= 0) dxp[argmax[o]] += dy[o];
                    continue;
                }
                float share = dy[o] / area; /* each in-bounds entry's part of the mean */
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int h = oy * g->sh - g->ph + i, w = ox * g->sw - g->pw + j;
                        if (h >= 0 && h < g->H && w >= 0 && w < g->W) dxp[h * g->W + w] += share;
                    }
            }
    }
    return ELAG_OK;
}

/* ---- batch norm ---- */

elag_status elag_cpu_ref_batchnorm_forward(elag_backend *b, int flags, float *y, const float *x,
                                           int C, int L, const float *gamma, const float *beta,
                                           float *run_mean, float *run_var, float momentum,
                                           float eps, float *save_mean, float *save_invstd)
{
    (void)b;
    if (L == 0) return ELAG_OK; /* no samples: no statistics, nothing to normalise */
    const int training = flags & ELAG_BN_TRAINING, relu = flags & ELAG_BN_RELU;
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * L; /* (L) */
        float *yr = y + (size_t)c * L;       /* (L), may be xr */
        double mean, invstd;
        if (training) {
            double sum = 0.0, sq = 0.0;
            for (int l = 0; l < L; l++) sum += xr[l];
            mean = sum / L;
            for (int l = 0; l < L; l++) sq += ((double)xr[l] - mean) * ((double)xr[l] - mean);
            double var = sq / L; /* biased: the one that normalises */
            invstd = 1.0 / sqrt(var + (double)eps);
            double unbiased = L > 1 ? var * L / (L - 1) : var;
            save_mean[c] = (float)mean;
            save_invstd[c] = (float)invstd;
            run_mean[c] = (float)((1.0 - (double)momentum) * run_mean[c] + (double)momentum * mean);
            run_var[c] =
                (float)((1.0 - (double)momentum) * run_var[c] + (double)momentum * unbiased);
        } else {
            mean = run_mean[c];
            invstd = 1.0 / sqrt((double)run_var[c] + (double)eps);
        }
        for (int l = 0; l < L; l++) {
            float v = (float)(((double)xr[l] - mean) * invstd * gamma[c] + beta[c]);
            yr[l] = relu && !(v > 0.0f) ? 0.0f : v; /* NaN > 0 is false */
        }
    }
    return ELAG_OK;
}

elag_status elag_cpu_ref_batchnorm_backward(elag_backend *b, float *dx, float *dgamma, float *dbeta,
                                            const float *dy, const float *x, int C, int L,
                                            const float *gamma, const float *save_mean,
                                            const float *save_invstd)
{
    (void)b;
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * L, *dyr = dy + (size_t)c * L; /* (L) */
        float *dxr = dx + (size_t)c * L;                                /* (L), may be dyr */
        double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0; /* dbeta, dgamma */
        for (int l = 0; l < L; l++) {
            sum_dy += dyr[l];
            sum_dy_xhat += dyr[l] * (((double)xr[l] - mean) * invstd);
        }
        dbeta[c] = (float)sum_dy;
        dgamma[c] = (float)sum_dy_xhat;
        /* every dy is read before dx overwrites it (dx may be dy): the sums are complete */
        double k = L > 0 ? (double)gamma[c] * invstd / L : 0.0;
        for (int l = 0; l < L; l++) {
            double xhat = ((double)xr[l] - mean) * invstd;
            dxr[l] = (float)(k * ((double)L * dyr[l] - sum_dy - xhat * sum_dy_xhat));
        }
    }
    return ELAG_OK;
}

/* ---- dropout ---- */

elag_status elag_cpu_ref_dropout_forward(elag_backend *b, float *y, float *keep, const float *x,
                                         size_t n, float p, uint64_t seed, uint64_t stream,
                                         uint64_t offset)
{
    (void)b;
    const float scale = 1.0f / (1.0f - p); /* inverted dropout: the expectation stays x */
    for (size_t i = 0; i < n; i++) {
        float u = elag_philox_uniform(seed, stream, offset + i);
        keep[i] = u >= p ? scale : 0.0f;
        /* as elementwise MUL: a dropped entry is +0 whatever x holds */
        y[i] = keep[i] == 0.0f ? 0.0f : x[i] * keep[i];
    }
    return ELAG_OK;
}
