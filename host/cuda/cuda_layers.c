/*
 * The CUDA backend's table entries for the layers on feature-major activations (C, N, H, W):
 * im2col and col2im, pooling, batch norm and dropout (kernels/im2col.cu, pool.cu,
 * batchnorm.cu, dropout.cu). Each checks its arguments as the CPU backends do (a bad size
 * or geometry is the caller's bug: ELAG_ERR_INTERNAL naming the op, with the CPU's
 * message), then enqueues on the context's stream. The contract is host/backend/backend.h.
 */
#include "core/check.h"
#include "cuda/cuda_ctx.h"
#include "elag_kernels.h"

#include <stdint.h>

/* A geometry as elag_window_resolve leaves it: the kernels trust oh and ow to index. The
 * checks and messages are those of the CPU backends (host/cpu/cpu_ref_layers.c), so every
 * backend refuses the same calls the same way. */
static elag_status check_window(const char *op, const elag_window *g)
{
    if (g == NULL) return elag_fail(ELAG_ERR_INTERNAL, "%s: no window geometry", op);
    if (g->H < 1 || g->W < 1 || g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 || g->ph < 0 ||
        g->pw < 0)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "%s: input %dx%d, kernel %dx%d, stride %dx%d, padding %dx%d is not a "
                         "valid window",
                         op, g->H, g->W, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
    long long eh = (long long)g->H + 2LL * g->ph - g->kh;
    long long ew = (long long)g->W + 2LL * g->pw - g->kw;
    if (eh < 0 || ew < 0 || g->oh != eh / g->sh + 1 || g->ow != ew / g->sw + 1)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "%s: output %dx%d does not match input %dx%d, kernel %dx%d, stride "
                         "%dx%d, padding %dx%d (window not resolved)",
                         op, g->oh, g->ow, g->H, g->W, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
    return ELAG_OK;
}

/* Samples [n0, n0 + nb) of a (C, N, H, W) tensor. */
static elag_status check_slice(const char *op, int C, int N, int n0, int nb, const elag_window *g)
{
    if (C < 0 || N < 0 || n0 < 0 || nb < 0 || n0 > N - nb)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "%s: bad sizes C=%d N=%d samples [%d, %d + %d) (need C, N >= 0 and "
                         "0 <= n0 <= n0 + nb <= N)",
                         op, C, N, n0, n0, nb);
    return check_window(op, g);
}

static elag_status check_pool(const char *op, elag_pool_mode mode, const int32_t *argmax,
                              int planes, const elag_window *g)
{
    if (mode != ELAG_POOL_MAX && mode != ELAG_POOL_AVG)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: unknown pooling mode %d", op, (int)mode);
    if (planes < 0) return elag_fail(ELAG_ERR_INTERNAL, "%s: negative size planes=%d", op, planes);
    if (mode == ELAG_POOL_MAX && argmax == NULL)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: max pooling needs the argmax buffer", op);
    ELAG_TRY(check_window(op, g));
    /* argmax holds h*W + w in an int32 (the CPU loops could not index such a plane either) */
    if (mode == ELAG_POOL_MAX && (long long)g->H * g->W > INT32_MAX)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: a %dx%d plane does not fit an int32 argmax", op,
                         g->H, g->W);
    return ELAG_OK;
}

static elag_status cuda_im2col(elag_backend *b, float *col, const float *x, int C, int N, int n0,
                               int nb, const elag_window *g)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(check_slice("im2col", C, N, n0, nb, g));
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_im2col(col, x, C, N, n0, nb, g, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_col2im(elag_backend *b, float *dx, const float *col, int C, int N, int n0,
                               int nb, const elag_window *g)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(check_slice("col2im", C, N, n0, nb, g));
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_col2im(dx, col, C, N, n0, nb, g, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_pool_forward(elag_backend *b, elag_pool_mode mode, float *y,
                                     int32_t *argmax, const float *x, int planes,
                                     const elag_window *g)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(check_pool("pool_forward", mode, argmax, planes, g));
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_pool_forward(mode, y, argmax, x, planes, g, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_pool_backward(elag_backend *b, elag_pool_mode mode, float *dx,
                                      const float *dy, const int32_t *argmax, int planes,
                                      const elag_window *g)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(check_pool("pool_backward", mode, argmax, planes, g));
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_pool_backward(mode, dx, dy, argmax, planes, g, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_batchnorm_forward(elag_backend *b, int training, float *y, const float *x,
                                          int C, int L, const float *gamma, const float *beta,
                                          float *run_mean, float *run_var, float momentum,
                                          float eps, float *save_mean, float *save_invstd)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_check_dims("batchnorm_forward", C, L)); /* L == 0 does nothing */
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_batchnorm_forward(training, y, x, C, L, gamma, beta, run_mean,
                                                run_var, momentum, eps, save_mean, save_invstd,
                                                ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_batchnorm_backward(elag_backend *b, float *dx, float *dgamma, float *dbeta,
                                           const float *dy, const float *x, int C, int L,
                                           const float *gamma, const float *save_mean,
                                           const float *save_invstd)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_check_dims("batchnorm_backward", C, L));
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_batchnorm_backward(dx, dgamma, dbeta, dy, x, C, L, gamma, save_mean,
                                                 save_invstd, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_dropout_forward(elag_backend *b, float *y, float *keep, const float *x,
                                        size_t n, float p, uint64_t seed, uint64_t stream,
                                        uint64_t offset)
{
    elag_cuda_ctx *ctx;
    if (!(p >= 0.0f && p < 1.0f)) /* NaN too */
        return elag_fail(ELAG_ERR_INTERNAL, "dropout_forward: p=%g is outside [0, 1)", (double)p);
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_dropout_forward(y, keep, x, n, p, seed, stream, offset, ctx->stream));
    return ELAG_OK;
}

void elag_cuda_install_layer_ops(elag_backend *b)
{
    b->im2col = cuda_im2col;
    b->col2im = cuda_col2im;
    b->pool_forward = cuda_pool_forward;
    b->pool_backward = cuda_pool_backward;
    b->batchnorm_forward = cuda_batchnorm_forward;
    b->batchnorm_backward = cuda_batchnorm_backward;
    b->dropout_forward = cuda_dropout_forward;
}
