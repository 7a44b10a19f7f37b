/*
 * The CUDA backend's table entries for the layers on feature-major activations (C, N, H, W):
 * im2col and col2im, pooling, batch norm and dropout (kernels/im2col.cu, pool.cu,
 * batchnorm.cu, dropout.cu). Each enqueues on the context's stream; the kernels trust the
 * geometry (oh and ow index them), which the wrappers (host/backend/backend_ops.c) have
 * checked against the contract in host/backend/backend.h before an entry here runs.
 */
#include "core/check.h"
#include "cuda/cuda_ctx.h"
#include "elag_kernels.h"

#include <stdint.h>

static elag_status cuda_im2col(elag_backend *b, float *col, const float *x, int C, int N, int n0,
                               int nb, const elag_window *g)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_im2col(col, x, C, N, n0, nb, g, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_col2im(elag_backend *b, float *dx, const float *col, int C, int N, int n0,
                               int nb, const elag_window *g)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_col2im(dx, col, C, N, n0, nb, g, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_pool_forward(elag_backend *b, elag_pool_mode mode, float *y,
                                     int32_t *argmax, const float *x, int planes,
                                     const elag_window *g)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_pool_forward(mode, y, argmax, x, planes, g, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_pool_backward(elag_backend *b, elag_pool_mode mode, float *dx,
                                      const float *dy, const int32_t *argmax, int planes,
                                      const elag_window *g)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_pool_backward(mode, dx, dy, argmax, planes, g, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_batchnorm_forward(elag_backend *b, int flags, float *y, const float *x,
                                          int C, int L, const float *gamma, const float *beta,
                                          float *run_mean, float *run_var, float momentum,
                                          float eps, float *save_mean, float *save_invstd)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_batchnorm_forward(flags, y, x, C, L, gamma, beta, run_mean,
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
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_dropout_forward(y, keep, x, n, p, seed, stream, offset, ctx->stream));
    return ELAG_OK;
}

/* No direct convolution on the GPU yet: supports(ELAG_OP_CONV) says no, so conv2d runs
 * im2col + cuBLAS here, and a call that comes anyway is refused. */
static elag_status cuda_conv_refused(const char *op)
{
    return elag_fail(ELAG_ERR_UNSUPPORTED,
                     "cuda: %s: no direct convolution on CUDA (conv2d uses im2col + cuBLAS)", op);
}

static elag_status cuda_conv_forward(elag_backend *b, float *y, const float *x, const float *w,
                                     int C, int O, int N, int n0, int nb, const elag_window *g,
                                     float *work)
{
    (void)b, (void)y, (void)x, (void)w, (void)C, (void)O, (void)N, (void)n0, (void)nb, (void)g;
    (void)work;
    return cuda_conv_refused("conv_forward");
}

static elag_status cuda_conv_backward_data(elag_backend *b, float *dx, const float *dy,
                                           const float *w, int C, int O, int N, int n0, int nb,
                                           const elag_window *g, float *work)
{
    (void)b, (void)dx, (void)dy, (void)w, (void)C, (void)O, (void)N, (void)n0, (void)nb, (void)g;
    (void)work;
    return cuda_conv_refused("conv_backward_data");
}

static elag_status cuda_conv_backward_filter(elag_backend *b, float *dw, const float *dy,
                                             const float *x, int C, int O, int N, int n0, int nb,
                                             const elag_window *g, float beta, float *work)
{
    (void)b, (void)dw, (void)dy, (void)x, (void)C, (void)O, (void)N, (void)n0, (void)nb, (void)g;
    (void)beta, (void)work;
    return cuda_conv_refused("conv_backward_filter");
}

void elag_cuda_install_layer_ops(elag_backend *b)
{
    b->im2col = cuda_im2col;
    b->col2im = cuda_col2im;
    b->conv_forward = cuda_conv_forward;
    b->conv_backward_data = cuda_conv_backward_data;
    b->conv_backward_filter = cuda_conv_backward_filter;
    b->pool_forward = cuda_pool_forward;
    b->pool_backward = cuda_pool_backward;
    b->batchnorm_forward = cuda_batchnorm_forward;
    b->batchnorm_backward = cuda_batchnorm_backward;
    b->dropout_forward = cuda_dropout_forward;
}
