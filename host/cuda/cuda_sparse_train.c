/*
 * The sparse training ops of the CUDA backend (cuda_sparse_train.h): refused, honestly.
 * supports(ELAG_OP_SPARSE_TRAIN) answers NO with ELAG_CUDA_SPARSE_TRAIN_WHY, and
 * sparse_pattern_create fails with ELAG_ERR_UNSUPPORTED, so no pattern ever exists on this
 * backend; the other entries refuse the same way should one be reached through a pattern
 * of another backend (a caller's bug the wrappers cannot see).
 * The plan (issue 12): W's CSR in a cuSPARSE SpMat, W^T x as cusparseSpMM with
 * CUSPARSE_OPERATION_TRANSPOSE (or a CSR of W^T, whichever measures faster), the weight
 * gradient as cusparseSDDMM on the same pattern, gather/scatter/values as small kernels.
 */
#include "cuda/cuda_sparse_train.h"

#include "core/check.h"

static elag_status refused(const char *op)
{
    return elag_fail(ELAG_ERR_UNSUPPORTED, "cuda: %s: %s", op, ELAG_CUDA_SPARSE_TRAIN_WHY);
}

static elag_status cuda_pattern_create(elag_backend *b, const float *mask, int rows, int cols,
                                       int max_n, elag_sparse_pattern **out)
{
    (void)b, (void)mask, (void)rows, (void)cols, (void)max_n;
    *out = NULL;
    return refused("sparse_pattern_create");
}

static void cuda_pattern_destroy(elag_backend *b, elag_sparse_pattern *p)
{
    (void)b;
    ELAG_ASSERT(p == NULL); /* no CUDA pattern is ever created */
}

static elag_status cuda_gather(elag_backend *b, const elag_sparse_pattern *p, const float *dense,
                               float *vals)
{
    (void)b, (void)p, (void)dense, (void)vals;
    return refused("sparse_gather");
}

static elag_status cuda_scatter(elag_backend *b, const elag_sparse_pattern *p, const float *vals,
                                float *dense)
{
    (void)b, (void)p, (void)vals, (void)dense;
    return refused("sparse_scatter");
}

static elag_status cuda_values_set(elag_backend *b, elag_sparse_pattern *p, const float *vals)
{
    (void)b, (void)p, (void)vals;
    return refused("sparse_values_set");
}

static elag_status cuda_pattern_mm(elag_backend *b, elag_sparse_pattern *p, int trans,
                                   const float *x, int n, float *y)
{
    (void)b, (void)p, (void)trans, (void)x, (void)n, (void)y;
    return refused("sparse_pattern_mm");
}

static elag_status cuda_sddmm(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                              const float *x, int n, float *out)
{
    (void)b, (void)p, (void)dy, (void)x, (void)n, (void)out;
    return refused("sddmm");
}

void elag_cuda_install_sparse_train_ops(elag_backend *b)
{
    b->sparse_pattern_create = cuda_pattern_create;
    b->sparse_pattern_destroy = cuda_pattern_destroy;
    b->sparse_gather = cuda_gather;
    b->sparse_scatter = cuda_scatter;
    b->sparse_values_set = cuda_values_set;
    b->sparse_pattern_mm = cuda_pattern_mm;
    b->sddmm = cuda_sddmm;
}
