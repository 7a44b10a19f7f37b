/*
 * The CUDA backend's table entries that run elag's own kernels (kernels/): the context's
 * stream, and each launcher's cudaError_t turned into an elag_status. The maths is in the
 * kernels; the contract is host/backend/backend.h, and the arguments were checked against
 * it by the wrappers (host/backend/backend_ops.c) before an entry here runs.
 */
#include "core/check.h"
#include "cuda/cuda_ctx.h"
#include "elag_kernels.h"

#include <math.h>
#include <stdint.h>

static elag_status cuda_fill(elag_backend *b, float *x, size_t n, float v)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_fill(x, n, v, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_row_sum(elag_backend *b, float *out, const float *x, int rows, int cols)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_row_sum(out, x, rows, cols, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_elementwise(elag_backend *b, elag_ew_op op, size_t n, float *y,
                                    const float *a, const float *bb, float alpha)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_elementwise(op, n, y, a, bb, alpha, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_transpose(elag_backend *b, float *dst, const float *src, int batch,
                                  int rows, int cols, int inner)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_transpose(dst, src, batch, rows, cols, inner, ctx->stream));
    return ELAG_OK;
}

/* Labels live on the device, so unlike the CPU backends this does not check their range
 * (that would cost a copy and a wait per batch); a label outside [0, cols) gives a NaN loss.
 * The loss and hit sums use ctx->scratch (shared with mask_select: every op on the stream
 * runs in order, so one op's use ends before the next one's starts). */
static elag_status cuda_xent(elag_backend *b, const float *logits, const int32_t *labels,
                             int rows, int cols, float *dlogits, float *stats)
{
    elag_cuda_ctx *ctx;
    void *scratch = NULL;
    if (rows == 0) return ELAG_OK;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    /* the per-block partial sums of the deterministic reduction (kernels/xent.cu) */
    ELAG_TRY(elag_cuda_scratch(ctx, elag_cuda_xent_scratch_bytes(rows), &scratch));
    ELAG_CUDA_CHECK(
        elag_cuda_xent(logits, labels, rows, cols, dlogits, stats, scratch, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_gather_rows(elag_backend *b, float *dst, const float *src,
                                    const int32_t *idx, int rows, int cols)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_gather_rows(dst, src, idx, rows, cols, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_gather_i32(elag_backend *b, int32_t *dst, const int32_t *src,
                                   const int32_t *idx, int rows)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_gather_i32(dst, src, idx, rows, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_init_uniform(elag_backend *b, float *x, size_t n, float lo, float hi,
                                     uint64_t seed, uint64_t stream)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_init_uniform(x, n, lo, hi, seed, stream, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_sgd_step(elag_backend *b, float *w, const float *g, float *v,
                                 const float *mask, size_t n, float lr, float momentum,
                                 float weight_decay, int nesterov)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_sgd_step(w, g, v, mask, n, lr, momentum, weight_decay, nesterov,
                                       ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_adamw_step(elag_backend *b, float *w, const float *g, float *m, float *v,
                                   const float *mask, size_t n, float lr, float beta1,
                                   float beta2, float eps, float weight_decay, int t)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    /* The reference's scalar expressions, evaluated here in C (no FMA contraction). */
    struct elag_cuda_adamw_scalars s;
    s.lr = (double)lr;
    s.beta1 = (double)beta1;
    s.beta2 = (double)beta2;
    s.eps = (double)eps;
    s.decay = 1.0 - (double)lr * weight_decay;
    s.one_minus_beta1 = 1.0 - (double)beta1;
    s.one_minus_beta2 = 1.0 - (double)beta2;
    s.bias1 = 1.0 - pow(beta1, t);
    s.bias2 = 1.0 - pow(beta2, t);
    ELAG_CUDA_CHECK(elag_cuda_adamw_step(w, g, m, v, mask, n, &s, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_score_magnitude(elag_backend *b, float *score, const float *w,
                                        const float *mask, size_t n)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_score_magnitude(score, w, mask, n, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_mask_select(elag_backend *b, float *mask, const float *score, size_t n,
                                    size_t k)
{
    elag_cuda_ctx *ctx;
    if (n == 0) return ELAG_OK;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    size_t bytes = 0;
    void *scratch = NULL;
    ELAG_CUDA_CHECK(elag_cuda_mask_select_scratch(n, &bytes));
    ELAG_TRY(elag_cuda_scratch(ctx, bytes, &scratch));
    ELAG_CUDA_CHECK(
        elag_cuda_mask_select(mask, score, n, k, scratch, ctx->scratch_bytes, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_count_nonzero(elag_backend *b, const float *x, size_t n,
                                      size_t *out_host)
{
    elag_cuda_ctx *ctx;
    unsigned long long count = 0;
    *out_host = 0;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_count_nonzero(x, n, ctx->counter, ctx->stream));
    ELAG_CUDA_CHECK(cudaMemcpyAsync(&count, ctx->counter, sizeof count, cudaMemcpyDeviceToHost,
                                    ctx->stream));
    ELAG_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    *out_host = (size_t)count;
    return ELAG_OK;
}

void elag_cuda_install_kernel_ops(elag_backend *b)
{
    b->fill = cuda_fill;
    b->row_sum = cuda_row_sum;
    b->elementwise = cuda_elementwise;
    b->transpose = cuda_transpose;
    b->xent = cuda_xent;
    b->gather_rows = cuda_gather_rows;
    b->gather_i32 = cuda_gather_i32;
    b->init_uniform = cuda_init_uniform;
    b->sgd_step = cuda_sgd_step;
    b->adamw_step = cuda_adamw_step;
    b->score_magnitude = cuda_score_magnitude;
    b->mask_select = cuda_mask_select;
    b->count_nonzero = cuda_count_nonzero;
}
