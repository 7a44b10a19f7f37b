/*
 * Dense GEMM of the CUDA backend through cuBLAS. elag is row-major and cuBLAS
 * column-major: a row-major (r, c) matrix with row stride ld is the column-major (c, r)
 * matrix with leading dimension ld, its transpose. So C = op(A) op(B) is computed as
 * C^T = op(B)^T op(A)^T, i.e. cublasSgemm with the operands swapped and m, n swapped;
 * no data moves.
 * The math mode is pinned: CUBLAS_DEFAULT_MATH is full FP32 for SGEMM (tensor cores only
 * through TF32, which that mode excludes); CUBLAS_TF32_TENSOR_OP_MATH only when the
 * context asks for it (cuda.tf32: true).
 */
#include "core/check.h"
#include "cuda/cuda_ctx.h"

elag_status elag_cuda_apply_math_mode(elag_cuda_ctx *ctx)
{
    cublasMath_t mode = ctx->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
    ELAG_CUDA_CHECK(cublasSetMathMode(ctx->blas, mode));
    return ELAG_OK;
}

/* C(m, n) = beta C when k == 0 (op(A) op(B) is empty). Done here rather than trusting
 * cublasSgemm's k == 0 path: beta == 0 must write zeros without reading C (it may hold
 * NaN), as the reference and BLAS do. */
static elag_status gemm_scale_c(elag_cuda_ctx *ctx, int m, int n, float beta, float *c, int ldc)
{
    if (beta == 1.0f) return ELAG_OK;
    if (beta == 0.0f) {
        ELAG_CUDA_CHECK(cudaMemset2DAsync(c, (size_t)ldc * sizeof(float), 0,
                                          (size_t)n * sizeof(float), (size_t)m, ctx->stream));
        return ELAG_OK;
    }
    if (ldc == n) {
        ELAG_CUDA_CHECK(cublasSscal_64(ctx->blas, (int64_t)m * n, &beta, c, 1));
        return ELAG_OK;
    }
    for (int i = 0; i < m; i++) /* strided rows: a rare, degenerate call */
        ELAG_CUDA_CHECK(cublasSscal(ctx->blas, n, &beta, c + (size_t)i * ldc, 1));
    return ELAG_OK;
}

static elag_status cuda_gemm(elag_backend *b, int trans_a, int trans_b, int m, int n, int k,
                             float alpha, const float *a, int lda, const float *bm, int ldb,
                             float beta, float *c, int ldc)
{
    /* sizes and strides were checked by the wrapper (host/backend/backend_ops.c) */
    if (m == 0 || n == 0) return ELAG_OK;
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    if (k == 0) return gemm_scale_c(ctx, m, n, beta, c, ldc);
    cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    ELAG_CUDA_CHECK(cublasSgemm(ctx->blas, op_b, op_a, n, m, k, &alpha, bm, ldb, a, lda, &beta, c,
                                ldc));
    return ELAG_OK;
}

void elag_cuda_install_blas_ops(elag_backend *b) { b->gemm = cuda_gemm; }
