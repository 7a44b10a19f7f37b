/*
 * The fast CPU backend ("cpu"): OpenBLAS for gemm, OpenMP for elementwise loops on
 * large arrays (small ones run serially: starting the team costs more than the
 * loop), optimizer steps fused into one pass, cross-entropy fused per row. Same
 * results as cpu_ref.c up to summation order (tests/test_ops_*.c check it);
 * init_uniform, the optimizers' masking and mask_select are bit-identical to it.
 * mask_select's radix selection lives in cpu_select.c, the layer ops (im2col, pooling,
 * batch norm, dropout, transpose) in cpu_layers.c.
 */
#include "cpu/cpu_internal.h"
#include "cpu/cpu_sparse.h"
#include "cpu/cpu_sparse_train.h"

#include "backend/philox.h"
#include "core/check.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Elements per unit of elementwise: long enough that the op's switch is paid once per
 * vector loop, short enough to balance threads. */
#define ELAG_EW_BLOCK 4096

static elag_status fast_fill(elag_backend *b, float *x, size_t n, float v)
{
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = v;
    return ELAG_OK;
}

/* y[lo, hi) of one elementwise op. Every case is a select on loaded values, never a
 * branch (a branchy ReLU backward cost 7% of a training step), and each loop is marked
 * simd: y may be a or b, the same index only, which vectorizing keeps correct. The
 * selects are cpu-ref's expressions, so the results are bit-identical to it. */
static void elag_ew_range(elag_ew_op op, size_t lo, size_t hi, float *y, const float *a,
                          const float *bb, float alpha)
{
    switch (op) {
    case ELAG_EW_RELU:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float v = a[i];
            y[i] = v > 0.0f ? v : 0.0f; /* NaN > 0 is false: NaN gives 0 */
        }
        break;
    case ELAG_EW_RELU_BACKWARD:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float g = a[i]; /* unconditional load: a select, no branch, vectorises */
            y[i] = bb[i] > 0.0f ? g : 0.0f;
        }
        break;
    case ELAG_EW_MUL:
        /* y = m == 0 ? +0 : a*m as a bit mask on the product: written as a select, gcc
         * moves the multiply under a branch (it may trap) and then cannot vectorize */
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float m = bb[i], prod = a[i] * m;
            uint32_t bits;
            memcpy(&bits, &prod, sizeof bits);
            bits &= 0u - (uint32_t)(m != 0.0f); /* all ones where m != 0 (or NaN) */
            memcpy(&y[i], &bits, sizeof bits);
        }
        break;
    case ELAG_EW_AXPY:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) y[i] = y[i] + alpha * a[i];
        break;
    case ELAG_EW_SCALE:
#pragma omp simd
        for (size_t i = lo; i < hi; i++) y[i] = alpha * a[i];
        break;
    }
}

static elag_status fast_elementwise(elag_backend *b, elag_ew_op op, size_t n, float *y,
                                    const float *a, const float *bb, float alpha)
{
    const size_t blocks = (n + ELAG_EW_BLOCK - 1) / ELAG_EW_BLOCK;
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
    for (size_t blk = 0; blk < blocks; blk++) {
        size_t lo = blk * ELAG_EW_BLOCK, hi = lo + ELAG_EW_BLOCK < n ? lo + ELAG_EW_BLOCK : n;
        elag_ew_range(op, lo, hi, y, a, bb, alpha);
    }
    return ELAG_OK;
}

/* ---- dense linear algebra ---- */

static elag_status fast_gemm(elag_backend *b, int trans_a, int trans_b, int m, int n, int k,
                             float alpha, const float *a, int lda, const float *bm, int ldb,
                             float beta, float *c, int ldc)
{
    if (m == 0 || n == 0) return ELAG_OK;
    if (k == 0) { /* op(A) op(B) is empty: C = beta C, and C is not read when beta == 0 */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float *cij = &c[(size_t)i * ldc + j];
                *cij = beta == 0.0f ? 0.0f : beta * *cij;
            }
        return ELAG_OK;
    }
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    int parts = b->threads;
    if ((double)m * n * k < ELAG_CPU_GEMM_PAR_MIN) parts = 1;
    if (parts <= 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc);
        return ELAG_OK;
    }
    /* One thread pool only: OpenBLAS runs single-threaded inside each OpenMP thread, on a
     * slice of C's rows (or columns when C is wide). Two pools (OpenBLAS pthreads and
     * OpenMP) spinning against each other on few cores cost 10x. */
    const int split_rows = m >= n;
    const int dim = split_rows ? m : n, align = split_rows ? 4 : 16;
#pragma omp parallel num_threads(parts)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int chunk = (dim + nt - 1) / nt;
        chunk = (chunk + align - 1) / align * align;
        int lo = t * chunk, hi = lo + chunk < dim ? lo + chunk : dim;
        if (lo < hi) {
            if (split_rows) {
                /* rows lo..hi of op(A): A (m,k) rows, or A^T stored (k,m) columns */
                const float *as = trans_a ? a + lo : a + (size_t)lo * lda;
                cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, n, k, alpha, as, lda, bm, ldb, beta,
                            c + (size_t)lo * ldc, ldc);
            } else {
                /* columns lo..hi of op(B): B (k,n) columns, or B^T stored (n,k) rows */
                const float *bs = trans_b ? bm + (size_t)lo * ldb : bm + lo;
                cblas_sgemm(CblasRowMajor, ta, tb, m, hi - lo, k, alpha, a, lda, bs, ldb, beta,
                            c + lo, ldc);
            }
        }
    }
    return ELAG_OK;
}

/* One row per unit, summed in double like cpu-ref (simd lanes make it a few partial sums:
 * the order differs, the rounding barely). */
static elag_status fast_row_sum(elag_backend *b, float *out, const float *x, int rows, int cols)
{
    size_t total = (size_t)rows * (size_t)cols;
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN) schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols; /* (cols) */
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < cols; c++) s += xr[c];
        out[r] = (float)s;
    }
    return ELAG_OK;
}

/* One row of softmax cross-entropy: argmax and max, then exp and sum (kept in
 * dlogits when wanted), then the scale. Returns the row's loss; *hit = argmax == label. */
static double elag_xent_row(const float *x, int label, int cols, float inv_rows, float *d, int *hit)
{
    int argmax = 0; /* first maximum */
    float mx = x[0];
    for (int c = 1; c < cols; c++)
        if (x[c] > mx) {
            mx = x[c];
            argmax = c;
        }
    float sum = 0.0f;
    if (d) {
        for (int c = 0; c < cols; c++) {
            d[c] = expf(x[c] - mx);
            sum += d[c];
        }
        float scale = inv_rows / sum;
        for (int c = 0; c < cols; c++) d[c] *= scale;
        d[label] -= inv_rows;
    } else {
        for (int c = 0; c < cols; c++) sum += expf(x[c] - mx);
    }
    *hit = argmax == label;
    /* logsumexp - x[label] written so the large max cancels exactly first */
    return (double)(mx - x[label]) + log((double)sum);
}

static elag_status fast_xent(elag_backend *b, const float *logits, const int32_t *labels, int rows,
                             int cols, float *dlogits, float *stats)
{
    ELAG_TRY(elag_cpu_check_labels(labels, rows, cols));
    size_t total = (size_t)rows * (size_t)cols;
    float inv_rows = rows > 0 ? 1.0f / (float)rows : 0.0f;
    double loss_sum = 0.0;
    long correct = 0;
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN)                 \
    reduction(+ : loss_sum, correct) schedule(static)
    for (int r = 0; r < rows; r++) {
        int hit = 0;
        float *d = dlogits ? dlogits + (size_t)r * cols : NULL; /* (cols) */
        loss_sum += elag_xent_row(logits + (size_t)r * cols, labels[r], cols, inv_rows, d, &hit);
        correct += hit;
    }
    stats[0] = (float)((double)stats[0] + loss_sum);
    stats[1] = (float)((double)stats[1] + (double)correct);
    return ELAG_OK;
}

static elag_status fast_gather_rows(elag_backend *b, float *dst, const float *src,
                                    const int32_t *idx, int rows, int cols)
{
    size_t total = (size_t)rows * (size_t)cols;
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN) schedule(static)
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * cols, src + (size_t)idx[r] * cols, (size_t)cols * sizeof *dst);
    return ELAG_OK;
}

static elag_status fast_gather_i32(elag_backend *b, int32_t *dst, const int32_t *src,
                                   const int32_t *idx, int rows)
{
    (void)b;
    for (int r = 0; r < rows; r++) dst[r] = src[idx[r]];
    return ELAG_OK;
}

/* ---- initialisation ---- */

/* One Philox call gives the 4 consecutive elements that share a counter (philox.h:
 * element i uses counter (i/4, stream) and word i%4); the float conversion is exactly
 * elag_philox_uniform's, so the values are bit-identical to cpu-ref and CUDA. */
static elag_status fast_init_uniform(elag_backend *b, float *x, size_t n, float lo, float hi,
                                     uint64_t seed, uint64_t stream)
{
    size_t blocks = (n + 3) / 4;
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
    for (size_t blk = 0; blk < blocks; blk++) {
        elag_philox_ctr c = {{(uint32_t)blk, (uint32_t)((uint64_t)blk >> 32), (uint32_t)stream,
                              (uint32_t)(stream >> 32)}};
        elag_philox_ctr r = elag_philox4x32_10(c, seed);
        for (size_t j = 0; j < 4 && blk * 4 + j < n; j++) {
            float u = (float)(r.v[j] >> 8) * (1.0f / 16777216.0f);
            x[blk * 4 + j] = lo + (hi - lo) * u;
        }
    }
    return ELAG_OK;
}

/* ---- optimizers: one pass over w, g and the state ---- */

static elag_status fast_sgd_step(elag_backend *b, float *w, const float *g, float *v,
                                 const float *mask, size_t n, float lr, float momentum,
                                 float weight_decay, int nesterov)
{
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + weight_decay * w[i];
        float vi = momentum * v[i] + gi;
        float wi = w[i] - lr * (nesterov ? gi + momentum * vi : vi);
        int live = mask == NULL || mask[i] != 0.0f;
        w[i] = live ? wi : 0.0f;
        v[i] = live ? vi : 0.0f;
    }
    return ELAG_OK;
}

static elag_status fast_adamw_step(elag_backend *b, float *w, const float *g, float *m, float *v,
                                   const float *mask, size_t n, float lr, float beta1,
                                   float beta2, float eps, float weight_decay, int t)
{
    /* lr * (m / bias1) / (sqrt(v / bias2) + eps) with the bias corrections folded into
     * two constants, as PyTorch does */
    double bias1 = 1.0 - pow(beta1, t), bias2 = 1.0 - pow(beta2, t);
    float step = (float)((double)lr / bias1);
    float inv_sqrt_bias2 = (float)(1.0 / sqrt(bias2));
    float decay = 1.0f - lr * weight_decay;
    float one_b1 = 1.0f - beta1, one_b2 = 1.0f - beta2;
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = beta1 * m[i] + one_b1 * gi;
        float vi = beta2 * v[i] + one_b2 * gi * gi;
        float wi = w[i] * decay - step * mi / (sqrtf(vi) * inv_sqrt_bias2 + eps);
        int live = mask == NULL || mask[i] != 0.0f;
        w[i] = live ? wi : 0.0f;
        m[i] = live ? mi : 0.0f;
        v[i] = live ? vi : 0.0f;
    }
    return ELAG_OK;
}

/* ---- pruning ---- */

static elag_status fast_score_magnitude(elag_backend *b, float *score, const float *w,
                                        const float *mask, size_t n)
{
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++)
        score[i] = (mask == NULL || mask[i] != 0.0f) ? fabsf(w[i]) : -1.0f;
    return ELAG_OK;
}

static elag_status fast_count_nonzero(elag_backend *b, const float *x, size_t n, size_t *out_host)
{
    size_t count = 0;
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN)                     \
    reduction(+ : count) schedule(static)
    for (size_t i = 0; i < n; i++) count += x[i] != 0.0f;
    *out_host = count;
    return ELAG_OK;
}

elag_status elag_cpu_backend_init(int threads, elag_backend **out)
{
    if (threads <= 0) threads = omp_get_num_procs();
    if (threads <= 0) threads = 1;
    elag_backend *b = calloc(1, sizeof *b);
    elag_cpu_ctx *ctx = calloc(1, sizeof *ctx);
    size_t *seg = calloc(4 * (size_t)threads, sizeof *seg);
    if (b == NULL || ctx == NULL || seg == NULL) {
        free(b), free(ctx), free(seg);
        return elag_fail(ELAG_ERR_NOMEM, "cpu: out of host memory");
    }
    ctx->seg = seg;
    /* OpenBLAS stays single-threaded (process-wide setting); fast_gemm splits large
     * products over OpenMP threads itself. */
    openblas_set_num_threads(1);
    b->name = "cpu";
    b->kind = ELAG_DEVICE_CPU;
    b->device_index = 0;
    b->threads = threads;
    b->ctx = ctx;

    b->alloc = elag_cpu_alloc;
    b->release = elag_cpu_release;
    b->to_device = elag_cpu_to_device;
    b->to_host = elag_cpu_to_host;
    b->copy = elag_cpu_copy;
    b->fill = fast_fill;
    b->sync = elag_cpu_sync;
    b->destroy = elag_cpu_destroy;
    b->supports = elag_cpu_supports;

    b->gemm = fast_gemm;
    b->row_sum = fast_row_sum;
    b->elementwise = fast_elementwise;
    b->transpose = elag_cpu_fast_transpose;
    b->xent = fast_xent;
    b->gather_rows = fast_gather_rows;
    b->gather_i32 = fast_gather_i32;

    b->init_uniform = fast_init_uniform;

    b->sgd_step = fast_sgd_step;
    b->adamw_step = fast_adamw_step;

    b->score_magnitude = fast_score_magnitude;
    b->mask_select = elag_cpu_mask_select_fast;
    b->count_nonzero = fast_count_nonzero;

    b->im2col = elag_cpu_fast_im2col;
    b->col2im = elag_cpu_fast_col2im;
    b->conv_forward = elag_cpu_fast_conv_forward;
    b->conv_backward_data = elag_cpu_fast_conv_backward_data;
    b->conv_backward_filter = elag_cpu_fast_conv_backward_filter;
    b->pool_forward = elag_cpu_fast_pool_forward;
    b->pool_backward = elag_cpu_fast_pool_backward;
    b->batchnorm_forward = elag_cpu_fast_batchnorm_forward;
    b->batchnorm_backward = elag_cpu_fast_batchnorm_backward;
    b->dropout_forward = elag_cpu_fast_dropout_forward;

    b->sparse_create = elag_cpu_sparse_create;
    b->sparse_destroy = elag_cpu_sparse_destroy;
    b->sparse_mm = elag_cpu_fast_sparse_mm;
    b->sparse_tile = elag_cpu_fast_sparse_tile;
    b->sparse_mm_tiled = elag_cpu_fast_sparse_mm_tiled;
    b->sparse_chain_tiled = elag_cpu_fast_sparse_chain_tiled;
    b->bias_relu_rows = elag_cpu_fast_bias_relu_rows;
    b->sparse_pattern_create = elag_cpu_sparse_pattern_create;
    b->sparse_pattern_destroy = elag_cpu_sparse_pattern_destroy;
    b->sparse_gather = elag_cpu_fast_sparse_gather;
    b->sparse_scatter = elag_cpu_fast_sparse_scatter;
    b->sparse_values_set = elag_cpu_fast_sparse_values_set;
    b->sparse_pattern_mm = elag_cpu_fast_sparse_pattern_mm;
    b->sddmm = elag_cpu_fast_sddmm;

    *out = b;
    return ELAG_OK;
}
