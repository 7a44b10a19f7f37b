/*
 * Sparse inference on the CUDA backend: cuSPARSE's generic SpMM for CSR (ALG1, ALG2 or
 * ALG3; the default is chosen by timing the three at sparse_create) and Blocked-ELL
 * (BLOCKED_ELL_ALG1), followed by the bias + ReLU epilogue kernel (kernels/bias_relu_rows.cu).
 * CSR runs in FP32. Blocked-ELL SpMM runs on tensor cores only (no FMA path; a cuSPARSE
 * maintainer in NVIDIA/CUDALibrarySamples#125), so its FP32 values are computed as TF32
 * and the device needs TF32 tensor cores (compute capability 8.0+): supports() says so.
 * The arguments were checked by the wrappers (host/backend/backend_ops.c).
 *
 * Activations are feature-major, x (cols, n) and y (rows, n) row-major, so cuSPARSE sees
 * y = A x with row-major dense matrices. Everything that does not depend on the data is
 * made once per matrix at sparse_create: the sparse descriptor, the dense descriptors
 * (re-pointed per call with cusparseDnMatSetValues, rebuilt only when n changes), the
 * workspace (sized for max_n), and cusparseSpMM_preprocess for CSR ALG1/ALG3 (re-run when
 * n changes, since its analysis may depend on n).
 *
 * Each set-up attempt (an algorithm in a layout) has its own sparse descriptor, made from
 * the same device arrays (no copy) and destroyed with the attempt's workspace.
 * cusparseSpMM_preprocess attaches its analysis to the descriptor and may point into the
 * workspace it was given; with one shared descriptor, probing ALG1..ALG3 and freeing the
 * losers' workspaces could leave a loser's analysis on the winner's descriptor, pointing
 * at freed memory. With one descriptor per attempt the winner's descriptor has only ever
 * seen its own preprocessing, on the workspace it keeps.
 *
 * Output buffers: cuSPARSE's C is called with beta = 0. We found no sentence in the
 * cuSPARSE documentation of cusparseSpMM promising that C is then never read (BLAS makes
 * that promise; cuSPARSE's generic API does not state it), so no C is ever uninitialised
 * memory: y_tmp is zeroed when it is allocated (once, at sparse_create), and y comes from
 * the backend's alloc, which zeroes. tests/test_cuda_sparse.c fills y with NaN before
 * every product, so where C is y (CSR row-major, Blocked-ELL of whole blocks) a cuSPARSE
 * that did read C with beta = 0 would fail it on a GPU.
 *
 * Two places where cuSPARSE's view differs from elag's:
 *  - Blocked-ELL pads rows and cols up to whole blocks. x is then staged into x_pad
 *    (cols_pad, n) with zero rows appended, so no padded column ever reads past x, and
 *    cuSPARSE writes y_tmp (rows_pad, n), of which the epilogue keeps the first rows.
 *  - An algorithm that refuses row-major dense matrices (CUSPARSE_STATUS_NOT_SUPPORTED at
 *    the probe in sparse_create; INVALID_VALUE is a bug of ours, never a refusal: it fails
 *    with ELAG_ERR_INTERNAL) runs column-major instead: B is x read as the
 *    column-major (n, cols_pad) matrix x^T with opB = TRANSPOSE (no copy), C is a
 *    column-major y_tmp, and the epilogue transposes it into y.
 */
#include "core/check.h"
#include "cuda/cuda_ctx.h"
#include "cuda/cuda_sparse.h"
#include "elag_kernels.h"
#include "sparse/sparse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SPARSE_DEV_MAGIC 0x53504355u /* "UCPS": a matrix prepared by this backend */
#define ALG_TIMING_WARMUP 2          /* untimed runs before timing an algorithm */
#define ALG_TIMING_RUNS 5            /* timed runs per algorithm; the median decides */

/* CSR algorithms by elag_sparse_opts.alg (1..3). */
static const cusparseSpMMAlg_t csr_algs[4] = {CUSPARSE_SPMM_ALG_DEFAULT, CUSPARSE_SPMM_CSR_ALG1,
                                              CUSPARSE_SPMM_CSR_ALG2, CUSPARSE_SPMM_CSR_ALG3};

typedef enum sp_layout {
    SP_LAYOUT_ROW = 0, /* B = x (cols_pad, n) row-major, C (rows_pad, n) row-major */
    SP_LAYOUT_COL = 1  /* B = x^T (n, cols_pad) column-major with opB = T, C column-major */
} sp_layout;

/* One algorithm, set up for one batch size. */
typedef struct sp_plan {
    cusparseSpMMAlg_t alg;
    sp_layout layout;
    cusparseSpMatDescr_t mat;    /* A, this plan's own: preprocessing attaches to it */
    int n;                       /* batch the dense descriptors describe; 0 = none yet */
    cusparseDnMatDescr_t dx, dy; /* B (x) and C (y or y_tmp) */
    void *buffer;                /* device, buffer_bytes: SpMM workspace */
    size_t buffer_bytes;
    int prepared;                /* cusparseSpMM_preprocess ran for this n and buffer */
} sp_plan;

struct elag_sparse_dev {
    elag_sparse_head head;   /* first (backend.h): y (rows, n), x (cols, n), max_n */
    uint32_t magic;
    elag_sparse_format format;
    int rows_pad, cols_pad;  /* cuSPARSE's shape (BELL: whole blocks; CSR: rows, cols) */
    int alg;                 /* CSR: 1..3 (the measured choice when asked for 0); BELL: 0 */
    int empty;               /* no stored entries: products are zeros, cuSPARSE not called */
    int64_t nnz;             /* CSR: stored entries */
    int block, ell_cols;     /* BELL: block size B, blocks per block row */
    int32_t *indptr;         /* device, rows + 1 (CSR) */
    int32_t *indices;        /* device, nnz (CSR) */
    int32_t *col_ind;        /* device, block_rows * ell_cols (BELL) */
    float *values;           /* device, nnz (CSR) or rows_pad * ell_cols * B (BELL) */
    sp_plan plan;            /* the chosen algorithm, with its own descriptor of A */
    float *x_pad;            /* device, cols_pad * max_n, when cols_pad > cols */
    float *y_tmp;            /* device, rows_pad * max_n, when cuSPARSE cannot write y */
};

elag_status elag_cuda_sparse_status(cusparseStatus_t s, int *may_fall_back)
{
    *may_fall_back = 0;
    switch (s) {
    case CUSPARSE_STATUS_SUCCESS:
        return ELAG_OK;
    /* the one refusal of a valid request: this algorithm does not take this layout */
    case CUSPARSE_STATUS_NOT_SUPPORTED:
        *may_fall_back = 1;
        return ELAG_ERR_UNSUPPORTED;
    /* an argument elag passed is wrong: a bug to show, never a reason to switch layouts */
    case CUSPARSE_STATUS_INVALID_VALUE:
        return ELAG_ERR_INTERNAL;
    default:
        return ELAG_ERR_DEVICE;
    }
}

elag_status elag_cuda_sparse_fail(cusparseStatus_t s, const char *call, const char *file, int line)
{
    int fall_back;
    elag_status st = elag_cuda_sparse_status(s, &fall_back);
    if (st == ELAG_OK) return ELAG_OK;
    (void)elag_cuda_check_cusparse(s, call, file, line); /* the generic message */
    if (st == ELAG_ERR_DEVICE) return st;
    /* the message is copied first: elag_fail writes the buffer elag_last_error reads */
    char why[512];
    snprintf(why, sizeof why, "%s", elag_last_error());
    if (st == ELAG_ERR_INTERNAL)
        return elag_fail(st, "%s (cuSPARSE rejects an argument elag passed: a bug in elag)", why);
    return elag_fail(st, "%s", why);
}

/* Calls a cuSPARSE function; on failure keeps its raw status in *raw (so plan_try can tell
 * NOT_SUPPORTED from a real failure) and returns elag_cuda_sparse_fail's status. */
#define SP_TRY(raw, call)                                                                          \
    do {                                                                                           \
        cusparseStatus_t sp_s_ = (call);                                                           \
        if (sp_s_ != CUSPARSE_STATUS_SUCCESS) {                                                    \
            *(raw) = sp_s_;                                                                        \
            return elag_cuda_sparse_fail(sp_s_, #call, __FILE__, __LINE__);                        \
        }                                                                                          \
    } while (0)

static int alg_preprocesses(cusparseSpMMAlg_t alg)
{
    /* cuSPARSE: preprocessing helps CSR ALG1 and ALG3 and has no effect on the others. */
    return alg == CUSPARSE_SPMM_CSR_ALG1 || alg == CUSPARSE_SPMM_CSR_ALG3;
}

/* A new descriptor of d's matrix over its device arrays (nothing is copied). */
static cusparseStatus_t mat_create(const elag_sparse_dev *d, cusparseSpMatDescr_t *mat)
{
    if (d->format == ELAG_SPARSE_FORMAT_CSR)
        return cusparseCreateCsr(mat, d->head.rows, d->head.cols, d->nnz, d->indptr, d->indices,
                                 d->values, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I,
                                 CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F);
    return cusparseCreateBlockedEll(mat, d->rows_pad, d->cols_pad, d->block,
                                    (int64_t)d->ell_cols * d->block, d->col_ind, d->values,
                                    CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F);
}

/* Frees everything of p (its descriptor of A with the preprocessing attached to it, and the
 * workspace together), keeping only its algorithm and layout. */
static void plan_free(elag_cuda_ctx *ctx, sp_plan *p)
{
    if (p->mat) (void)cusparseDestroySpMat(p->mat);
    if (p->dx) (void)cusparseDestroyDnMat(p->dx);
    if (p->dy) (void)cusparseDestroyDnMat(p->dy);
    elag_cuda_dev_free(ctx, p->buffer);
    cusparseSpMMAlg_t alg = p->alg;
    sp_layout layout = p->layout;
    *p = (sp_plan){0};
    p->alg = alg;
    p->layout = layout;
}

static cusparseOperation_t plan_op_b(const sp_plan *p)
{
    return p->layout == SP_LAYOUT_COL ? CUSPARSE_OPERATION_TRANSPOSE
                                      : CUSPARSE_OPERATION_NON_TRANSPOSE;
}

/* Points the plan at x (cols_pad, n) and out (cuSPARSE's C) for batch n: rebuilds the dense
 * descriptors, grows the workspace and re-runs preprocessing when n changed. */
static elag_status plan_bind(elag_cuda_ctx *ctx, elag_sparse_dev *d, sp_plan *p, int n,
                             const float *x, float *out, cusparseStatus_t *raw)
{
    const float one = 1.0f, zero = 0.0f;
    /* cuSPARSE only reads B; its descriptor type is not const-qualified */
    void *xv = (void *)(uintptr_t)x;
    if (p->n != n) {
        if (p->dx) (void)cusparseDestroyDnMat(p->dx);
        if (p->dy) (void)cusparseDestroyDnMat(p->dy);
        p->dx = p->dy = NULL;
        p->n = 0;
        p->prepared = 0;
        if (p->layout == SP_LAYOUT_ROW) {
            SP_TRY(raw, cusparseCreateDnMat(&p->dx, d->cols_pad, n, n, xv, CUDA_R_32F,
                                            CUSPARSE_ORDER_ROW));
            SP_TRY(raw, cusparseCreateDnMat(&p->dy, d->rows_pad, n, n, out, CUDA_R_32F,
                                            CUSPARSE_ORDER_ROW));
        } else {
            SP_TRY(raw, cusparseCreateDnMat(&p->dx, n, d->cols_pad, n, xv, CUDA_R_32F,
                                            CUSPARSE_ORDER_COL));
            SP_TRY(raw, cusparseCreateDnMat(&p->dy, d->rows_pad, n, d->rows_pad, out, CUDA_R_32F,
                                            CUSPARSE_ORDER_COL));
        }
        size_t need = 0;
        SP_TRY(raw, cusparseSpMM_bufferSize(ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                            plan_op_b(p), &one, p->mat, p->dx, &zero, p->dy,
                                            CUDA_R_32F, p->alg, &need));
        if (p->buffer == NULL || need > p->buffer_bytes) {
            elag_cuda_dev_free(ctx, p->buffer);
            p->buffer = NULL;
            p->buffer_bytes = 0;
            ELAG_TRY(elag_cuda_dev_alloc(ctx, need, &p->buffer));
            p->buffer_bytes = need;
        }
        p->n = n;
    }
    SP_TRY(raw, cusparseDnMatSetValues(p->dx, xv));
    SP_TRY(raw, cusparseDnMatSetValues(p->dy, out));
    if (!p->prepared && alg_preprocesses(p->alg)) {
        SP_TRY(raw, cusparseSpMM_preprocess(ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                            plan_op_b(p), &one, p->mat, p->dx, &zero, p->dy,
                                            CUDA_R_32F, p->alg, p->buffer));
    }
    p->prepared = 1;
    return ELAG_OK;
}

/* C = A B on the stream (beta = 0: C is written, never read). */
static elag_status plan_run(elag_cuda_ctx *ctx, sp_plan *p, cusparseStatus_t *raw)
{
    const float one = 1.0f, zero = 0.0f;
    SP_TRY(raw, cusparseSpMM(ctx->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE, plan_op_b(p), &one,
                             p->mat, p->dx, &zero, p->dy, CUDA_R_32F, p->alg, p->buffer));
    return ELAG_OK;
}

/* Sets up `alg` for batch n on the probe buffers and runs it once, row-major first, then
 * column-major if cuSPARSE refuses the row-major layout for this algorithm. Each attempt
 * makes its own descriptor of A, so a refused attempt's preprocessing goes with it. On
 * success *p is ready (its layout decided, its descriptor its own); on failure it is freed. */
static elag_status plan_try(elag_cuda_ctx *ctx, elag_sparse_dev *d, cusparseSpMMAlg_t alg, int n,
                            const float *xprobe, float *yprobe, sp_plan *p)
{
    elag_status st = ELAG_OK;
    for (int layout = SP_LAYOUT_ROW; layout <= SP_LAYOUT_COL; layout++) {
        cusparseStatus_t raw = CUSPARSE_STATUS_SUCCESS;
        *p = (sp_plan){0};
        p->alg = alg;
        p->layout = (sp_layout)layout;
        cusparseStatus_t made = mat_create(d, &p->mat);
        if (made != CUSPARSE_STATUS_SUCCESS) {
            raw = made;
            p->mat = NULL;
            st = elag_cuda_sparse_fail(made,
                                       d->format == ELAG_SPARSE_FORMAT_CSR
                                           ? "cusparseCreateCsr"
                                           : "cusparseCreateBlockedEll",
                                       __FILE__, __LINE__);
        } else {
            st = plan_bind(ctx, d, p, n, xprobe, yprobe, &raw);
        }
        if (st == ELAG_OK) st = plan_run(ctx, p, &raw);
        if (st == ELAG_OK) {
            st = ELAG_CUDA_STATUS(cudaStreamSynchronize(ctx->stream), "cudaStreamSynchronize");
            if (st == ELAG_OK) {
                if (layout != SP_LAYOUT_ROW) elag_clear_error(); /* the refusal was handled */
                return ELAG_OK;
            }
        }
        plan_free(ctx, p);
        int fall_back = 0;
        (void)elag_cuda_sparse_status(raw, &fall_back);
        if (!fall_back) return st; /* INVALID_VALUE included: ELAG_ERR_INTERNAL, shown */
    }
    /* both layouts refused: a valid request this cuSPARSE cannot do (the message is copied
     * first: elag_fail writes the buffer elag_last_error reads) */
    char why[512];
    snprintf(why, sizeof why, "%s", elag_last_error());
    return elag_fail(ELAG_ERR_UNSUPPORTED,
                     "cuSPARSE SpMM algorithm %d refuses this %dx%d matrix with row-major and "
                     "column-major dense operands (last: %s)",
                     (int)alg, d->head.rows, d->head.cols, why);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median time of one product with plan p (already bound), in ms, by CUDA events. */
static elag_status plan_time(elag_cuda_ctx *ctx, sp_plan *p, float *ms)
{
    cudaEvent_t e0 = NULL, e1 = NULL;
    float t[ALG_TIMING_RUNS];
    cusparseStatus_t raw;
    elag_status st;
    ELAG_CUDA_CHECK_GOTO(st, cudaEventCreate(&e0), done);
    ELAG_CUDA_CHECK_GOTO(st, cudaEventCreate(&e1), done);
    for (int i = 0; i < ALG_TIMING_WARMUP; i++) ELAG_TRY_GOTO(st, plan_run(ctx, p, &raw), done);
    for (int i = 0; i < ALG_TIMING_RUNS; i++) {
        ELAG_CUDA_CHECK_GOTO(st, cudaEventRecord(e0, ctx->stream), done);
        ELAG_TRY_GOTO(st, plan_run(ctx, p, &raw), done);
        ELAG_CUDA_CHECK_GOTO(st, cudaEventRecord(e1, ctx->stream), done);
        ELAG_CUDA_CHECK_GOTO(st, cudaEventSynchronize(e1), done);
        ELAG_CUDA_CHECK_GOTO(st, cudaEventElapsedTime(&t[i], e0, e1), done);
    }
    qsort(t, ALG_TIMING_RUNS, sizeof *t, cmp_float);
    *ms = t[ALG_TIMING_RUNS / 2];
done:
    if (e0) (void)cudaEventDestroy(e0);
    if (e1) (void)cudaEventDestroy(e1);
    return st;
}

/* CSR with opts->alg == 0: runs ALG1, ALG2 and ALG3 at max_n and keeps the fastest. An
 * algorithm cuSPARSE refuses for this matrix is left out; all three refusing is an error. */
static elag_status choose_csr_alg(elag_cuda_ctx *ctx, elag_sparse_dev *d, const float *xprobe,
                                  float *yprobe)
{
    float best_ms = 0.0f;
    int best = 0;
    elag_status first_err = ELAG_OK;
    for (int a = 1; a <= 3; a++) {
        sp_plan p;
        float ms = 0.0f;
        elag_status st = plan_try(ctx, d, csr_algs[a], d->head.max_n, xprobe, yprobe, &p);
        if (st == ELAG_OK) {
            st = plan_time(ctx, &p, &ms);
            if (st != ELAG_OK) plan_free(ctx, &p);
        }
        if (st != ELAG_OK) {
            /* out of memory etc. is not the algorithm's fault */
            if (st != ELAG_ERR_DEVICE && st != ELAG_ERR_UNSUPPORTED) return st;
            if (first_err == ELAG_OK) first_err = st;
            continue;
        }
        if (best == 0 || ms < best_ms) {
            if (best) plan_free(ctx, &d->plan);
            d->plan = p;
            best = a;
            best_ms = ms;
        } else {
            plan_free(ctx, &p);
        }
    }
    if (best == 0) return first_err != ELAG_OK ? first_err : ELAG_ERR_DEVICE;
    /* Each candidate ran on its own descriptor of A (plan_try), and the losers' descriptors
     * were destroyed with their workspaces: the winner's preprocessing, for its own
     * algorithm and workspace at max_n, is the only one its descriptor ever had, so it
     * stays valid and is not re-run. */
    elag_clear_error(); /* a refused algorithm is not this call's failure */
    d->alg = best;
    return ELAG_OK;
}

static void sparse_free(elag_cuda_ctx *ctx, elag_sparse_dev *d)
{
    if (d == NULL) return;
    plan_free(ctx, &d->plan); /* A's descriptor too */
    elag_cuda_dev_free(ctx, d->indptr);
    elag_cuda_dev_free(ctx, d->indices);
    elag_cuda_dev_free(ctx, d->col_ind);
    elag_cuda_dev_free(ctx, d->values);
    elag_cuda_dev_free(ctx, d->x_pad);
    elag_cuda_dev_free(ctx, d->y_tmp);
    d->magic = 0;
    free(d);
}

/* Device copy of `bytes` of host memory (nothing for 0 bytes). */
static elag_status upload(elag_cuda_ctx *ctx, const void *src, size_t bytes, void **out)
{
    *out = NULL;
    if (bytes == 0) return ELAG_OK;
    ELAG_TRY(elag_cuda_dev_alloc(ctx, bytes, out));
    ELAG_CUDA_CHECK(cudaMemcpyAsync(*out, src, bytes, cudaMemcpyHostToDevice, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_sparse_create(elag_backend *b, const elag_sparse_host *a,
                                      const elag_sparse_opts *opts, elag_sparse_dev **out)
{
    elag_cuda_ctx *ctx;
    *out = NULL;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    elag_sparse_dev *d = calloc(1, sizeof *d);
    if (d == NULL) return elag_fail(ELAG_ERR_NOMEM, "out of host memory (sparse_create)");
    d->magic = SPARSE_DEV_MAGIC;
    d->format = a->format;
    d->head.rows = d->rows_pad = a->rows;
    d->head.cols = d->cols_pad = a->cols;
    d->head.max_n = opts->max_n;
    float *xprobe = NULL, *yprobe = NULL;
    void *p = NULL;
    elag_status st = ELAG_OK;

    if (a->format == ELAG_SPARSE_FORMAT_CSR) {
        d->alg = opts->alg;
        d->nnz = a->nnz;
        d->empty = a->rows == 0 || a->cols == 0 || a->nnz == 0;
        size_t indptr_bytes = sizeof(int32_t) * ((size_t)a->rows + 1);
        ELAG_TRY_GOTO(st, upload(ctx, a->indptr, indptr_bytes, &p), fail);
        d->indptr = p;
        ELAG_TRY_GOTO(st, upload(ctx, a->indices, sizeof(int32_t) * (size_t)a->nnz, &p), fail);
        d->indices = p;
        ELAG_TRY_GOTO(st, upload(ctx, a->values, sizeof(float) * (size_t)a->nnz, &p), fail);
        d->values = p;
    } else {
        int B = a->block;
        d->alg = 0;
        d->block = B;
        d->ell_cols = a->ell_cols;
        d->rows_pad = a->block_rows * B;
        d->cols_pad = (a->cols + B - 1) / B * B;
        /* nnz counts live entries: 0 means all padding (formats.c keeps ell_cols >= 1) */
        d->empty = a->rows == 0 || a->cols == 0 || a->ell_cols == 0 || a->nnz == 0;
        size_t n_ind = (size_t)a->block_rows * (size_t)a->ell_cols;
        ELAG_TRY_GOTO(st, upload(ctx, a->col_ind, sizeof(int32_t) * n_ind, &p), fail);
        d->col_ind = p;
        ELAG_TRY_GOTO(st, upload(ctx, a->values, sizeof(float) * n_ind * (size_t)B * B, &p), fail);
        d->values = p;
    }
    if (d->empty) goto done;

    /* Staging for padded columns, and the probe buffers the set-up runs on. */
    size_t nmax = (size_t)d->head.max_n;
    ELAG_TRY_GOTO(st, elag_cuda_dev_alloc(ctx, sizeof(float) * d->cols_pad * nmax, &p), fail);
    xprobe = p;
    if (d->cols_pad > d->head.cols) d->x_pad = xprobe; /* kept: staging for every product */
    ELAG_CUDA_CHECK_GOTO(st, cudaMemsetAsync(xprobe, 0, sizeof(float) * d->cols_pad * nmax,
                                             ctx->stream), fail);
    ELAG_TRY_GOTO(st, elag_cuda_dev_alloc(ctx, sizeof(float) * d->rows_pad * nmax, &p), fail);
    yprobe = p;
    /* cuSPARSE's C (kept as y_tmp below): zeroed once, never uninitialised memory (see the
     * top of this file on beta = 0) */
    ELAG_CUDA_CHECK_GOTO(st, cudaMemsetAsync(yprobe, 0, sizeof(float) * d->rows_pad * nmax,
                                             ctx->stream), fail);

    if (a->format == ELAG_SPARSE_FORMAT_BELL)
        st = plan_try(ctx, d, CUSPARSE_SPMM_BLOCKED_ELL_ALG1, d->head.max_n, xprobe, yprobe,
                      &d->plan);
    else if (d->alg == 0)
        st = choose_csr_alg(ctx, d, xprobe, yprobe);
    else
        st = plan_try(ctx, d, csr_algs[d->alg], d->head.max_n, xprobe, yprobe, &d->plan);
    if (st != ELAG_OK) goto fail;

    /* cuSPARSE writes y itself unless rows are padded or it runs column-major. */
    if (d->plan.layout == SP_LAYOUT_COL || d->rows_pad > d->head.rows) {
        d->y_tmp = yprobe;
        yprobe = NULL;
    }
done:
    ELAG_CUDA_CHECK_GOTO(st, cudaStreamSynchronize(ctx->stream), fail); /* host arrays reusable */
    if (xprobe != d->x_pad) elag_cuda_dev_free(ctx, xprobe);
    elag_cuda_dev_free(ctx, yprobe);
    *out = d;
    return ELAG_OK;
fail:
    if (xprobe != d->x_pad) elag_cuda_dev_free(ctx, xprobe);
    elag_cuda_dev_free(ctx, yprobe);
    (void)cudaStreamSynchronize(ctx->stream);
    (void)cudaGetLastError();
    sparse_free(ctx, d);
    return st;
}

static void cuda_sparse_destroy(elag_backend *b, elag_sparse_dev *a)
{
    if (a == NULL) return;
    elag_cuda_ctx *ctx;
    if (elag_cuda_enter(b, &ctx) != ELAG_OK) ctx = (elag_cuda_ctx *)b->ctx;
    ELAG_ASSERT(a->magic == SPARSE_DEV_MAGIC); /* a matrix of another backend is a bug */
    sparse_free(ctx, a);
}

static elag_status cuda_sparse_mm(elag_backend *b, elag_sparse_dev *d, const float *x, int n,
                                  const float *bias, int relu, float *y)
{
    /* kept here, not in the wrapper: only this backend can tell its matrices from another
     * backend's, and cuSPARSE would read host pointers as device ones. One compare. */
    if (d->magic != SPARSE_DEV_MAGIC)
        return elag_fail(ELAG_ERR_INTERNAL, "sparse_mm: not a matrix of the CUDA backend");
    if (d->head.rows == 0 || n == 0) return ELAG_OK;
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    size_t nn = (size_t)n;
    if (d->empty) {
        ELAG_CUDA_CHECK(
            cudaMemsetAsync(y, 0, sizeof(float) * (size_t)d->head.rows * nn, ctx->stream));
        ELAG_CUDA_CHECK(elag_cuda_bias_relu_rows(y, bias, d->head.rows, n, relu, ctx->stream));
        return ELAG_OK;
    }
    const float *xs = x;
    if (d->x_pad) { /* x (cols, n) then zero rows up to cols_pad */
        size_t live = sizeof(float) * (size_t)d->head.cols * nn;
        ELAG_CUDA_CHECK(cudaMemcpyAsync(d->x_pad, x, live, cudaMemcpyDeviceToDevice, ctx->stream));
        size_t pad = sizeof(float) * (size_t)(d->cols_pad - d->head.cols) * nn;
        ELAG_CUDA_CHECK(cudaMemsetAsync(d->x_pad + (size_t)d->head.cols * nn, 0, pad, ctx->stream));
        xs = d->x_pad;
    }
    float *c = d->y_tmp ? d->y_tmp : y;
    cusparseStatus_t raw = CUSPARSE_STATUS_SUCCESS;
    ELAG_TRY(plan_bind(ctx, d, &d->plan, n, xs, c, &raw));
    ELAG_TRY(plan_run(ctx, &d->plan, &raw));
    if (d->y_tmp) {
        int col = d->plan.layout == SP_LAYOUT_COL;
        ELAG_CUDA_CHECK(elag_cuda_bias_relu_rows_from(y, d->y_tmp, col, col ? d->rows_pad : n, bias,
                                                      d->head.rows, n, relu, ctx->stream));
    } else {
        ELAG_CUDA_CHECK(elag_cuda_bias_relu_rows(y, bias, d->head.rows, n, relu, ctx->stream));
    }
    return ELAG_OK;
}

static elag_status cuda_bias_relu_rows(elag_backend *b, float *y, const float *bias, int rows,
                                       int n, int relu)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(elag_cuda_bias_relu_rows(y, bias, rows, n, relu, ctx->stream));
    return ELAG_OK;
}

elag_support elag_cuda_sparse_supports(int cc_major, int cc_minor, const char *device,
                                       const elag_op_query *q, char *why, size_t why_len)
{
    if (q->format == ELAG_SPARSE_FORMAT_CSR) return ELAG_SUPPORT_FP32; /* CUDA cores, FP32 */
    /* Blocked-ELL: any block size is set up here (rows and cols padded to whole blocks),
     * so the device decides. cuSPARSE can still refuse one matrix at sparse_create, which
     * then fails with ELAG_ERR_UNSUPPORTED: callers treat that as this NO. */
    if (cc_major < 8) {
        if (why && why_len)
            snprintf(why, why_len,
                     "cuSPARSE runs Blocked-ELL SpMM on tensor cores only, and FP32 there needs "
                     "TF32 (compute capability 8.0+); %s is %d.%d",
                     device, cc_major, cc_minor);
        return ELAG_SUPPORT_NO;
    }
    if (why && why_len)
        snprintf(why, why_len,
                 "cuSPARSE runs Blocked-ELL SpMM on tensor cores: FP32 values are rounded to "
                 "TF32 (10-bit mantissa)");
    return ELAG_SUPPORT_TF32;
}

/* No tiled product on the GPU (cuSPARSE takes x feature-major; the host transposes are
 * not where its time goes): sparse inference keeps sparse_mm here. */
static int cuda_sparse_tile(elag_backend *b, const elag_sparse_dev *a)
{
    (void)b;
    (void)a;
    return 0;
}

static elag_status cuda_sparse_mm_tiled(elag_backend *b, elag_sparse_dev *d, const float *x, int n,
                                        const float *bias, int relu, float *y)
{
    (void)b, (void)d, (void)x, (void)n, (void)bias, (void)relu, (void)y;
    return elag_fail(ELAG_ERR_UNSUPPORTED, "sparse_mm_tiled: not on CUDA (sparse_tile is 0)");
}

static elag_status cuda_sparse_chain_tiled(elag_backend *b, const elag_tiled_link *links,
                                           int nlinks, const float *x, float *xt, int n, int in,
                                           float *out)
{
    (void)b, (void)links, (void)nlinks, (void)x, (void)xt, (void)n, (void)in, (void)out;
    return elag_fail(ELAG_ERR_UNSUPPORTED, "sparse_chain_tiled: not on CUDA (sparse_tile is 0)");
}

void elag_cuda_install_sparse_ops(elag_backend *b)
{
    b->sparse_create = cuda_sparse_create;
    b->sparse_destroy = cuda_sparse_destroy;
    b->sparse_mm = cuda_sparse_mm;
    b->sparse_tile = cuda_sparse_tile;
    b->sparse_mm_tiled = cuda_sparse_mm_tiled;
    b->sparse_chain_tiled = cuda_sparse_chain_tiled;
    b->bias_relu_rows = cuda_bias_relu_rows;
}
