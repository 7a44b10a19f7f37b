/*
 * The sparse training ops of the CUDA backend (backend.h, "sparse training of a linear
 * layer"; cuda_sparse_train.h): the step of a layer y = W x whose mask is fixed between two
 * mask updates, on feature-major activations x (cols, n), y (rows, n), row-major.
 *
 * A pattern holds, in device memory:
 *  - W's CSR (indptr, indices) built from the device mask by kernels/sparse_pattern.cu:
 *    kept entries counted per row, the counts prefix-summed on the host (rows + 1 ints
 *    cross, and nnz must be known there to allocate), then each row compacted in column
 *    order. rowid (nnz) gives each entry's row, for gather, scatter and the own SDDMM;
 *  - W^T's CSR (t_indptr, t_indices) with t_src, W's CSR position of each W^T entry. Built
 *    on the host by a counting sort of W's indices (O(nnz) each way, once per mask update).
 *    Why a second CSR rather than cusparseSpMM with CUSPARSE_OPERATION_TRANSPOSE: cuSPARSE
 *    documents that a transposed A "may produce slightly different results during
 *    different runs" (it scatters), and elag keeps GPU training deterministic
 *    (tests/test_cuda_determinism.c); the non-transposed CSR product is the one cuSPARSE
 *    makes fast, and the fast CPU backend made the same choice. The cost is nnz floats and
 *    2 nnz ints more, and one permutation (t_values[q] = vals[t_src[q]]) per
 *    sparse_values_set, i.e. per optimizer step;
 *  - values and t_values (nnz each): the step's weights in both orders.
 *
 * Products: y = W x and W^T dy are cusparseSpMM (CUSPARSE_SPMM_ALG_DEFAULT, no transposes,
 * row-major B and C, FP32). The weight gradient is cusparseSDDMM on W's structure, C's
 * values re-pointed at the caller's output array per call: out = (dy x^T) o spy(W), with
 * dy (rows, n) the dense A and x^T (n, cols) the dense B. x^T is x read as a column-major
 * (n, cols) matrix, which mixes orders; cuSPARSE's documentation does not list which order
 * pairs SDDMM takes, so sparse_pattern_create tries three descriptions of the same product
 * (below, sddmm_layout) and keeps the first that cuSPARSE does not refuse with
 * CUSPARSE_STATUS_NOT_SUPPORTED; if it refuses all three, an own warp-per-entry kernel
 * runs (kernels/sparse_pattern.cu). Likewise an own warp-per-row SpMM runs if cuSPARSE
 * refuses the row-major SpMM. The choices are made on small probe buffers at create;
 * elag_cuda_pattern_paths says which, and the tests run the own kernels too.
 *
 * Dense descriptors and workspaces are kept per product and rebuilt only when the batch n
 * changes (the last batch of an epoch, evaluation); SDDMM's preprocessing runs again then.
 * Outputs cuSPARSE writes with beta = 0 are zeroed first: its documentation does not
 * promise that C is not read when beta is 0 (the same caution as cuda_sparse.c), and the
 * memset is small next to the product.
 *
 * The optimizer needs nothing here: optim.c runs the backend's fused sgd_step / adamw_step
 * (kernels/sgd_step.cu, adamw_step.cu) on the values arrays with a NULL mask.
 * The arguments were checked by the wrappers (host/backend/backend_ops.c).
 */
#include "cuda/cuda_sparse_train.h"

#include "core/check.h"
#include "cuda/cuda_ctx.h"
#include "cuda/cuda_sparse.h"
#include "elag_kernels.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATTERN_MAGIC 0x54504355u /* "UCPT": a pattern prepared by this backend */
#define PROBE_N_MAX   32          /* batch of the probe products at create */

/* How cusparseSDDMM is asked for out = (dy x^T) o spy(W), dy (rows, n), x (cols, n), both
 * row-major in memory. */
typedef enum sddmm_layout {
    SDDMM_ROW_COL = 0,   /* A = dy row-major (rows, n); B = x as column-major (n, cols) */
    SDDMM_ROW_TRANS = 1, /* A = dy row-major (rows, n); B = x row-major (cols, n), opB = T */
    SDDMM_COL_COL = 2,   /* A = dy as column-major (n, rows), opA = T; B as in 0 */
    SDDMM_OWN = 3        /* cuSPARSE refused the three: kernels/sparse_pattern.cu */
} sddmm_layout;

/* One cuSPARSE product of this pattern, bound to a batch n. */
typedef struct sp_product {
    cusparseSpMatDescr_t mat;  /* SpMM: A; SDDMM: C (W's structure) */
    int n;                     /* batch the dense descriptors describe; 0 = none yet */
    cusparseDnMatDescr_t a, b; /* SpMM: B (x) and C (y); SDDMM: A (dy) and B (x) */
    void *buffer;              /* device, bytes: workspace */
    size_t bytes;
} sp_product;

struct elag_sparse_pattern {
    elag_sparse_pattern_head head; /* first (backend.h) */
    uint32_t magic;
    int32_t *indptr;    /* device, rows + 1: W's CSR */
    int32_t *indices;   /* device, nnz: the column of each kept entry, CSR order */
    int32_t *rowid;     /* device, nnz: its row */
    int32_t *t_indptr;  /* device, cols + 1: W^T's CSR */
    int32_t *t_indices; /* device, nnz: W^T's columns (W's rows) */
    int32_t *t_src;     /* device, nnz: W's CSR position of each W^T entry */
    float *values;      /* device, nnz: W's weights, CSR order */
    float *t_values;    /* device, nnz: the same weights in W^T's order */
    sp_product fwd;     /* y = W x */
    sp_product bwd;     /* y = W^T x, W^T's own CSR */
    sp_product grad;    /* SDDMM on W's structure */
    sddmm_layout layout;
    int own_spmm; /* cuSPARSE refused the row-major SpMM: kernels/sparse_pattern.cu's */
};

/* Calls a cuSPARSE function; on failure returns elag_cuda_sparse_fail's status
 * (ELAG_ERR_UNSUPPORTED for CUSPARSE_STATUS_NOT_SUPPORTED, ELAG_ERR_INTERNAL for
 * INVALID_VALUE, ELAG_ERR_DEVICE otherwise), with the call named. */
#define SPT_TRY(call)                                                                              \
    do {                                                                                           \
        cusparseStatus_t spt_s_ = (call);                                                          \
        if (spt_s_ != CUSPARSE_STATUS_SUCCESS)                                                     \
            return elag_cuda_sparse_fail(spt_s_, #call, __FILE__, __LINE__);                       \
    } while (0)

static elag_status refuse_foreign(const char *op)
{
    /* kept here, not in the wrapper: only this backend can tell its patterns from another
     * backend's, and cuSPARSE would read host pointers as device ones. One compare. */
    return elag_fail(ELAG_ERR_INTERNAL, "%s: not a pattern of the CUDA backend", op);
}

elag_support elag_cuda_sparse_train_supports(char *why, size_t why_len)
{
    if (why && why_len) snprintf(why, why_len, "%s", ELAG_CUDA_SPARSE_TRAIN_WHY);
    return ELAG_SUPPORT_OPT_IN;
}

static void product_free(elag_cuda_ctx *ctx, sp_product *pr)
{
    if (pr->mat) (void)cusparseDestroySpMat(pr->mat);
    if (pr->a) (void)cusparseDestroyDnMat(pr->a);
    if (pr->b) (void)cusparseDestroyDnMat(pr->b);
    elag_cuda_dev_free(ctx, pr->buffer);
    *pr = (sp_product){0};
}

static void pattern_free(elag_cuda_ctx *ctx, elag_sparse_pattern *p)
{
    if (p == NULL) return;
    product_free(ctx, &p->fwd);
    product_free(ctx, &p->bwd);
    product_free(ctx, &p->grad);
    void *bufs[] = {p->indptr,    p->indices, p->rowid,  p->t_indptr,
                    p->t_indices, p->t_src,   p->values, p->t_values};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) elag_cuda_dev_free(ctx, bufs[i]);
    p->magic = 0;
    free(p);
}

/* Grows pr's workspace to `need` bytes (contents not kept). */
static elag_status product_workspace(elag_cuda_ctx *ctx, sp_product *pr, size_t need)
{
    if (pr->buffer != NULL && need <= pr->bytes) return ELAG_OK;
    elag_cuda_dev_free(ctx, pr->buffer);
    pr->buffer = NULL;
    pr->bytes = 0;
    ELAG_TRY(elag_cuda_dev_alloc(ctx, need, &pr->buffer));
    pr->bytes = need;
    return ELAG_OK;
}

/* ---- SpMM: y (out_rows, n) = A x (in_rows, n), row-major ---- */

static elag_status spmm_run(elag_cuda_ctx *ctx, sp_product *pr, int in_rows, int out_rows, int n,
                            const float *x, float *y)
{
    const float one = 1.0f, zero = 0.0f;
    void *xv = (void *)(uintptr_t)x; /* cuSPARSE only reads B; its type is not const */
    if (pr->n != n) {
        if (pr->a) (void)cusparseDestroyDnMat(pr->a);
        if (pr->b) (void)cusparseDestroyDnMat(pr->b);
        pr->a = pr->b = NULL;
        pr->n = 0;
        SPT_TRY(cusparseCreateDnMat(&pr->a, in_rows, n, n, xv, CUDA_R_32F, CUSPARSE_ORDER_ROW));
        SPT_TRY(cusparseCreateDnMat(&pr->b, out_rows, n, n, y, CUDA_R_32F, CUSPARSE_ORDER_ROW));
        size_t need = 0;
        SPT_TRY(cusparseSpMM_bufferSize(
            ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &one,
            pr->mat, pr->a, &zero, pr->b, CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, &need));
        ELAG_TRY(product_workspace(ctx, pr, need));
        pr->n = n;
    }
    SPT_TRY(cusparseDnMatSetValues(pr->a, xv));
    SPT_TRY(cusparseDnMatSetValues(pr->b, y));
    ELAG_CUDA_CHECK(
        cudaMemsetAsync(y, 0, sizeof(float) * (size_t)out_rows * (size_t)n, ctx->stream));
    SPT_TRY(cusparseSpMM(ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                         CUSPARSE_OPERATION_NON_TRANSPOSE, &one, pr->mat, pr->a, &zero, pr->b,
                         CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, pr->buffer));
    return ELAG_OK;
}

/* ---- SDDMM: out (nnz) = (dy x^T) at W's kept entries ---- */

/* The dense descriptors of `layout` for dy (rows, n) and x (cols, n), and the ops. */
static elag_status sddmm_describe(sddmm_layout layout, int rows, int cols, int n, const float *dy,
                                  const float *x, cusparseDnMatDescr_t *a, cusparseDnMatDescr_t *b,
                                  cusparseOperation_t *op_a, cusparseOperation_t *op_b)
{
    void *dyv = (void *)(uintptr_t)dy, *xv = (void *)(uintptr_t)x; /* read only */
    *op_a =
        layout == SDDMM_COL_COL ? CUSPARSE_OPERATION_TRANSPOSE : CUSPARSE_OPERATION_NON_TRANSPOSE;
    *op_b =
        layout == SDDMM_ROW_TRANS ? CUSPARSE_OPERATION_TRANSPOSE : CUSPARSE_OPERATION_NON_TRANSPOSE;
    if (layout == SDDMM_COL_COL) /* dy (rows, n) row-major is dy^T (n, rows) column-major */
        SPT_TRY(cusparseCreateDnMat(a, n, rows, n, dyv, CUDA_R_32F, CUSPARSE_ORDER_COL));
    else
        SPT_TRY(cusparseCreateDnMat(a, rows, n, n, dyv, CUDA_R_32F, CUSPARSE_ORDER_ROW));
    if (layout == SDDMM_ROW_TRANS)
        SPT_TRY(cusparseCreateDnMat(b, cols, n, n, xv, CUDA_R_32F, CUSPARSE_ORDER_ROW));
    else /* x (cols, n) row-major is x^T (n, cols) column-major */
        SPT_TRY(cusparseCreateDnMat(b, n, cols, n, xv, CUDA_R_32F, CUSPARSE_ORDER_COL));
    return ELAG_OK;
}

static elag_status sddmm_run(elag_cuda_ctx *ctx, elag_sparse_pattern *p, const float *dy,
                             const float *x, int n, float *out)
{
    sp_product *pr = &p->grad;
    const float one = 1.0f, zero = 0.0f;
    cusparseOperation_t op_a, op_b;
    const int rows = p->head.rows, cols = p->head.cols;
    if (pr->n != n) {
        if (pr->a) (void)cusparseDestroyDnMat(pr->a);
        if (pr->b) (void)cusparseDestroyDnMat(pr->b);
        pr->a = pr->b = NULL;
        pr->n = 0;
        ELAG_TRY(sddmm_describe(p->layout, rows, cols, n, dy, x, &pr->a, &pr->b, &op_a, &op_b));
        SPT_TRY(cusparseSpMatSetValues(pr->mat, out));
        size_t need = 0;
        SPT_TRY(cusparseSDDMM_bufferSize(ctx->sparse, op_a, op_b, &one, pr->a, pr->b, &zero,
                                         pr->mat, CUDA_R_32F, CUSPARSE_SDDMM_ALG_DEFAULT, &need));
        ELAG_TRY(product_workspace(ctx, pr, need));
        /* The analysis belongs to this buffer and these parameters; later calls may change
         * only alpha, beta, the dense operands and C's values (cuSPARSE's documentation of
         * cusparseSDDMM_preprocess), so it is redone whenever n, and so the descriptors and
         * possibly the buffer, change. */
        SPT_TRY(cusparseSDDMM_preprocess(ctx->sparse, op_a, op_b, &one, pr->a, pr->b, &zero,
                                         pr->mat, CUDA_R_32F, CUSPARSE_SDDMM_ALG_DEFAULT,
                                         pr->buffer));
        pr->n = n;
    } else {
        op_a = p->layout == SDDMM_COL_COL ? CUSPARSE_OPERATION_TRANSPOSE
                                          : CUSPARSE_OPERATION_NON_TRANSPOSE;
        op_b = p->layout == SDDMM_ROW_TRANS ? CUSPARSE_OPERATION_TRANSPOSE
                                            : CUSPARSE_OPERATION_NON_TRANSPOSE;
    }
    SPT_TRY(cusparseDnMatSetValues(pr->a, (void *)(uintptr_t)dy));
    SPT_TRY(cusparseDnMatSetValues(pr->b, (void *)(uintptr_t)x));
    SPT_TRY(cusparseSpMatSetValues(pr->mat, out));
    ELAG_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float) * (size_t)p->head.nnz, ctx->stream));
    SPT_TRY(cusparseSDDMM(ctx->sparse, op_a, op_b, &one, pr->a, pr->b, &zero, pr->mat, CUDA_R_32F,
                          CUSPARSE_SDDMM_ALG_DEFAULT, pr->buffer));
    return ELAG_OK;
}

/* ---- building a pattern ---- */

/* W's CSR from the device mask; *h_indptr (host, rows + 1) is kept for the transpose. */
static elag_status build_rows(elag_cuda_ctx *ctx, elag_sparse_pattern *p, const float *mask,
                              int32_t **h_indptr)
{
    const int rows = p->head.rows, cols = p->head.cols;
    int32_t *hp = calloc((size_t)rows + 1, sizeof *hp);
    *h_indptr = hp;
    if (hp == NULL) return elag_fail(ELAG_ERR_NOMEM, "sparse_pattern_create: out of host memory");
    void *d = NULL;
    ELAG_TRY(elag_cuda_dev_alloc(ctx, sizeof(int32_t) * ((size_t)rows + 1), &d));
    p->indptr = d;
    /* the counts land in indptr[1..rows], then the host turns them into offsets */
    ELAG_CUDA_CHECK(cudaMemsetAsync(p->indptr, 0, sizeof(int32_t), ctx->stream));
    ELAG_CUDA_CHECK(elag_cuda_pattern_count(mask, rows, cols, p->indptr + 1, ctx->stream));
    ELAG_CUDA_CHECK(cudaMemcpyAsync(hp, p->indptr, sizeof(int32_t) * ((size_t)rows + 1),
                                    cudaMemcpyDeviceToHost, ctx->stream));
    ELAG_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    int64_t nnz = 0;
    for (int r = 0; r < rows; r++) {
        nnz += hp[r + 1];
        if (nnz > INT32_MAX)
            return elag_fail(ELAG_ERR_UNSUPPORTED,
                             "sparse_pattern_create: more than 2^31 - 1 kept entries in a "
                             "%dx%d mask (CSR indices take < 2^31)",
                             rows, cols);
        hp[r + 1] = (int32_t)nnz;
    }
    p->head.nnz = nnz;
    ELAG_CUDA_CHECK(cudaMemcpyAsync(p->indptr, hp, sizeof(int32_t) * ((size_t)rows + 1),
                                    cudaMemcpyHostToDevice, ctx->stream));
    const size_t keep = (size_t)(nnz > 0 ? nnz : 1);
    ELAG_TRY(elag_cuda_dev_alloc(ctx, sizeof(int32_t) * keep, &d));
    p->indices = d;
    ELAG_TRY(elag_cuda_dev_alloc(ctx, sizeof(int32_t) * keep, &d));
    p->rowid = d;
    ELAG_CUDA_CHECK(
        elag_cuda_pattern_fill(mask, rows, cols, p->indptr, p->indices, p->rowid, ctx->stream));
    return ELAG_OK;
}

void elag_cuda_pattern_transpose(int rows, int cols, const int32_t *indptr, const int32_t *indices,
                                 int32_t *t_indptr, int32_t *t_indices, int32_t *t_src)
{
    /* t_indptr[j + 2] counts column j, so after the prefix sum t_indptr[j + 1] is where
     * column j starts and serves as its cursor; each cursor then ends at its column's end,
     * which leaves t_indptr[0..cols] as W^T's row pointers */
    memset(t_indptr, 0, sizeof *t_indptr * ((size_t)cols + 2));
    const int32_t nnz = rows > 0 ? indptr[rows] : 0;
    for (int32_t q = 0; q < nnz; q++) t_indptr[indices[q] + 2]++;
    for (int j = 0; j < cols; j++) t_indptr[j + 2] += t_indptr[j + 1];
    for (int r = 0; r < rows; r++)
        for (int32_t q = indptr[r]; q < indptr[r + 1]; q++) {
            const int32_t at = t_indptr[indices[q] + 1]++;
            t_indices[at] = r;
            t_src[at] = q;
        }
}

/* W^T's CSR and t_src from W's (copied to the host for it): a counting sort. */
static elag_status build_transpose(elag_cuda_ctx *ctx, elag_sparse_pattern *p,
                                   const int32_t *h_indptr)
{
    const int rows = p->head.rows, cols = p->head.cols;
    const size_t nnz = (size_t)p->head.nnz, keep = nnz ? nnz : 1;
    int32_t *idx = malloc(sizeof *idx * keep), *t_ptr = malloc(sizeof *t_ptr * ((size_t)cols + 2));
    int32_t *t_idx = malloc(sizeof *t_idx * keep), *t_src = malloc(sizeof *t_src * keep);
    elag_status st = ELAG_OK;
    void *d = NULL;
    if (!idx || !t_ptr || !t_idx || !t_src) {
        st = elag_fail(ELAG_ERR_NOMEM, "sparse_pattern_create: out of host memory");
        goto done;
    }
    if (nnz)
        ELAG_CUDA_CHECK_GOTO(st,
                             cudaMemcpyAsync(idx, p->indices, sizeof *idx * nnz,
                                             cudaMemcpyDeviceToHost, ctx->stream),
                             done);
    ELAG_CUDA_CHECK_GOTO(st, cudaStreamSynchronize(ctx->stream), done);
    elag_cuda_pattern_transpose(rows, cols, h_indptr, idx, t_ptr, t_idx, t_src);
    ELAG_TRY_GOTO(st, elag_cuda_dev_alloc(ctx, sizeof(int32_t) * ((size_t)cols + 1), &d), done);
    p->t_indptr = d;
    ELAG_TRY_GOTO(st, elag_cuda_dev_alloc(ctx, sizeof(int32_t) * keep, &d), done);
    p->t_indices = d;
    ELAG_TRY_GOTO(st, elag_cuda_dev_alloc(ctx, sizeof(int32_t) * keep, &d), done);
    p->t_src = d;
    ELAG_CUDA_CHECK_GOTO(st,
                         cudaMemcpyAsync(p->t_indptr, t_ptr, sizeof(int32_t) * ((size_t)cols + 1),
                                         cudaMemcpyHostToDevice, ctx->stream),
                         done);
    if (nnz) {
        ELAG_CUDA_CHECK_GOTO(st,
                             cudaMemcpyAsync(p->t_indices, t_idx, sizeof(int32_t) * nnz,
                                             cudaMemcpyHostToDevice, ctx->stream),
                             done);
        ELAG_CUDA_CHECK_GOTO(st,
                             cudaMemcpyAsync(p->t_src, t_src, sizeof(int32_t) * nnz,
                                             cudaMemcpyHostToDevice, ctx->stream),
                             done);
    }
    /* the host arrays are freed below: the copies must have read them */
    ELAG_CUDA_CHECK_GOTO(st, cudaStreamSynchronize(ctx->stream), done);
done:
    free(idx);
    free(t_ptr);
    free(t_idx);
    free(t_src);
    return st;
}

static elag_status zeroed(elag_cuda_ctx *ctx, size_t floats, float **out)
{
    void *d = NULL;
    ELAG_TRY(elag_cuda_dev_alloc(ctx, sizeof(float) * (floats ? floats : 1), &d));
    *out = d;
    ELAG_CUDA_CHECK(cudaMemsetAsync(d, 0, sizeof(float) * (floats ? floats : 1), ctx->stream));
    return ELAG_OK;
}

/* The three products' sparse descriptors, one run of each SpMM on zeroed probe buffers (so
 * a refusal shows at create, not mid-run), and the SDDMM layout cuSPARSE takes. */
static elag_status prepare_products(elag_cuda_ctx *ctx, elag_sparse_pattern *p, float *xprobe,
                                    float *yprobe, float *gprobe, int n)
{
    const int rows = p->head.rows, cols = p->head.cols;
    const int64_t nnz = p->head.nnz;
    SPT_TRY(cusparseCreateCsr(&p->fwd.mat, rows, cols, nnz, p->indptr, p->indices, p->values,
                              CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO,
                              CUDA_R_32F));
    SPT_TRY(cusparseCreateCsr(&p->bwd.mat, cols, rows, nnz, p->t_indptr, p->t_indices, p->t_values,
                              CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO,
                              CUDA_R_32F));
    SPT_TRY(cusparseCreateCsr(&p->grad.mat, rows, cols, nnz, p->indptr, p->indices, gprobe,
                              CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO,
                              CUDA_R_32F));
    elag_status st = spmm_run(ctx, &p->fwd, cols, rows, n, xprobe, yprobe);
    if (st == ELAG_OK) st = spmm_run(ctx, &p->bwd, rows, cols, n, yprobe, xprobe);
    if (st == ELAG_OK)
        st = ELAG_CUDA_STATUS(cudaStreamSynchronize(ctx->stream), "cudaStreamSynchronize");
    /* refusals read as in the SDDMM loop below */
    if (st == ELAG_ERR_UNSUPPORTED || st == ELAG_ERR_INTERNAL) {
        p->own_spmm = 1;
        elag_clear_error();
    } else if (st != ELAG_OK) {
        return st;
    }
    for (int layout = SDDMM_ROW_COL; layout < SDDMM_OWN; layout++) {
        p->layout = (sddmm_layout)layout;
        p->grad.n = 0; /* describe the operands anew in this layout */
        st = sddmm_run(ctx, p, yprobe, xprobe, n, gprobe);
        if (st == ELAG_OK)
            st = ELAG_CUDA_STATUS(cudaStreamSynchronize(ctx->stream), "cudaStreamSynchronize");
        if (st == ELAG_OK) {
            elag_clear_error(); /* an earlier layout's refusal was handled */
            return ELAG_OK;
        }
        /* cuSPARSE refuses an order it does not take with NOT_SUPPORTED or, in places, with
         * INVALID_VALUE ("matrix B must be in column-major order", NVIDIA/
         * CUDALibrarySamples#97): both mean "try the next description". Anything else
         * (out of memory, a device fault) is a real failure. A layout refused for a bug of
         * ours ends at the own kernel, which the parity tests hold to the same bound, and
         * elag_cuda_pattern_paths lets them log which one ran. */
        if (st != ELAG_ERR_UNSUPPORTED && st != ELAG_ERR_INTERNAL) return st;
        if (p->grad.a) (void)cusparseDestroyDnMat(p->grad.a);
        if (p->grad.b) (void)cusparseDestroyDnMat(p->grad.b);
        p->grad.a = p->grad.b = NULL;
    }
    p->layout = SDDMM_OWN; /* cuSPARSE takes none of the three: the own kernel */
    elag_clear_error();
    return ELAG_OK;
}

static elag_status cuda_pattern_create(elag_backend *b, const float *mask, int rows, int cols,
                                       int max_n, elag_sparse_pattern **out)
{
    *out = NULL;
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    elag_sparse_pattern *p = calloc(1, sizeof *p);
    if (p == NULL) return elag_fail(ELAG_ERR_NOMEM, "sparse_pattern_create: out of host memory");
    p->magic = PATTERN_MAGIC;
    p->head = (elag_sparse_pattern_head){.rows = rows, .cols = cols, .max_n = max_n, .nnz = 0};
    int32_t *h_indptr = NULL;
    float *xprobe = NULL, *yprobe = NULL, *gprobe = NULL;
    elag_status st = build_rows(ctx, p, mask, &h_indptr);
    if (st == ELAG_OK) st = build_transpose(ctx, p, h_indptr);
    const size_t nnz = (size_t)p->head.nnz;
    if (st == ELAG_OK) st = zeroed(ctx, nnz, &p->values);
    if (st == ELAG_OK) st = zeroed(ctx, nnz, &p->t_values);
    if (st == ELAG_OK && nnz > 0) { /* nnz > 0: rows and cols are too */
        /* a small batch is enough to see what cuSPARSE takes; the real batch binds anew */
        const int n = max_n < PROBE_N_MAX ? max_n : PROBE_N_MAX;
        const size_t side = (size_t)(rows > cols ? rows : cols) * (size_t)n;
        st = zeroed(ctx, side, &xprobe);
        if (st == ELAG_OK) st = zeroed(ctx, side, &yprobe);
        if (st == ELAG_OK) st = zeroed(ctx, nnz, &gprobe);
        if (st == ELAG_OK) st = prepare_products(ctx, p, xprobe, yprobe, gprobe, n);
    }
    if (st == ELAG_OK)
        st = ELAG_CUDA_STATUS(cudaStreamSynchronize(ctx->stream), "cudaStreamSynchronize");
    free(h_indptr);
    elag_cuda_dev_free(ctx, xprobe);
    elag_cuda_dev_free(ctx, yprobe);
    elag_cuda_dev_free(ctx, gprobe);
    if (st != ELAG_OK) {
        (void)cudaStreamSynchronize(ctx->stream);
        (void)cudaGetLastError();
        pattern_free(ctx, p);
        return st;
    }
    *out = p;
    return ELAG_OK;
}

const char *elag_cuda_pattern_paths(const elag_sparse_pattern *p)
{
    static const char *const names[2][4] = {
        {"spmm cusparse, sddmm cusparse (row-major A, column-major B)",
         "spmm cusparse, sddmm cusparse (row-major A, row-major B transposed)",
         "spmm cusparse, sddmm cusparse (column-major A transposed, column-major B)",
         "spmm cusparse, sddmm own kernel"},
        {"spmm own kernel, sddmm cusparse (row-major A, column-major B)",
         "spmm own kernel, sddmm cusparse (row-major A, row-major B transposed)",
         "spmm own kernel, sddmm cusparse (column-major A transposed, column-major B)",
         "spmm own kernel, sddmm own kernel"}};
    if (p == NULL || p->magic != PATTERN_MAGIC) return "";
    if (p->head.nnz == 0) return "none (no kept entries)";
    return names[p->own_spmm != 0][p->layout];
}

void elag_cuda_pattern_use_own_kernels(elag_sparse_pattern *p)
{
    ELAG_ASSERT(p != NULL && p->magic == PATTERN_MAGIC);
    p->own_spmm = 1;
    p->layout = SDDMM_OWN;
}

static void cuda_pattern_destroy(elag_backend *b, elag_sparse_pattern *p)
{
    if (p == NULL) return;
    elag_cuda_ctx *ctx;
    if (elag_cuda_enter(b, &ctx) != ELAG_OK) ctx = (elag_cuda_ctx *)b->ctx;
    ELAG_ASSERT(p->magic == PATTERN_MAGIC); /* a pattern of another backend is a bug */
    pattern_free(ctx, p);
}

/* ---- the ops on a pattern ---- */

static elag_status cuda_gather(elag_backend *b, const elag_sparse_pattern *p, const float *dense,
                               float *vals)
{
    if (p->magic != PATTERN_MAGIC) return refuse_foreign("sparse_gather");
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_pattern_gather(vals, dense, p->rowid, p->indices, p->head.cols,
                                             (size_t)p->head.nnz, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_scatter(elag_backend *b, const elag_sparse_pattern *p, const float *vals,
                                float *dense)
{
    if (p->magic != PATTERN_MAGIC) return refuse_foreign("sparse_scatter");
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_pattern_scatter(dense, vals, p->rowid, p->indices, p->head.cols,
                                              (size_t)p->head.nnz, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_values_set(elag_backend *b, elag_sparse_pattern *p, const float *vals)
{
    if (p->magic != PATTERN_MAGIC) return refuse_foreign("sparse_values_set");
    const size_t nnz = (size_t)p->head.nnz;
    if (nnz == 0) return ELAG_OK;
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(cudaMemcpyAsync(p->values, vals, sizeof(float) * nnz, cudaMemcpyDeviceToDevice,
                                    ctx->stream));
    ELAG_CUDA_CHECK(elag_cuda_pattern_permute(p->t_values, vals, p->t_src, nnz, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_pattern_mm(elag_backend *b, elag_sparse_pattern *p, int trans,
                                   const float *x, int n, float *y)
{
    if (p->magic != PATTERN_MAGIC) return refuse_foreign("sparse_pattern_mm");
    const int out_rows = trans ? p->head.cols : p->head.rows;
    const int in_rows = trans ? p->head.rows : p->head.cols;
    if (out_rows == 0 || n == 0) return ELAG_OK;
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    if (p->head.nnz == 0) { /* no descriptors (nothing kept, or in_rows 0): y = 0 */
        ELAG_CUDA_CHECK(
            cudaMemsetAsync(y, 0, sizeof(float) * (size_t)out_rows * (size_t)n, ctx->stream));
        return ELAG_OK;
    }
    if (p->own_spmm) {
        if (trans)
            ELAG_CUDA_CHECK(elag_cuda_pattern_spmm(y, p->t_values, p->t_indptr, p->t_indices, x,
                                                   out_rows, n, ctx->stream));
        else
            ELAG_CUDA_CHECK(elag_cuda_pattern_spmm(y, p->values, p->indptr, p->indices, x, out_rows,
                                                   n, ctx->stream));
        return ELAG_OK;
    }
    return spmm_run(ctx, trans ? &p->bwd : &p->fwd, in_rows, out_rows, n, x, y);
}

static elag_status cuda_sddmm(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                              const float *x, int n, float *out)
{
    if (p->magic != PATTERN_MAGIC) return refuse_foreign("sddmm");
    const size_t nnz = (size_t)p->head.nnz;
    if (nnz == 0) return ELAG_OK;
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    if (n == 0) {
        ELAG_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float) * nnz, ctx->stream));
        return ELAG_OK;
    }
    if (p->layout == SDDMM_OWN) {
        ELAG_CUDA_CHECK(
            elag_cuda_pattern_sddmm(out, dy, x, p->rowid, p->indices, n, nnz, ctx->stream));
        return ELAG_OK;
    }
    /* the descriptors and workspace are the pattern's cache, not its meaning: the table
     * entry takes a const pattern because the product does not change it */
    return sddmm_run(ctx, (elag_sparse_pattern *)(uintptr_t)p, dy, x, n, out);
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
