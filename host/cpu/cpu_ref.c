/*
 * The naive CPU reference ("cpu-ref"): the specification of every backend op.
 * Plain single-threaded loops that read like the maths in backend.h, sums in double
 * where the order of a long sum matters (gemm, row_sum, xent). The fast CPU path
 * and the CUDA backend are tested against this file; keep it obvious, not fast.
 * The layer ops (im2col, pooling, batch norm, dropout, transpose) are in
 * cpu_ref_layers.c. The host memory ops shared by both CPU backends live here too, with
 * supports() (every op, on both). Arguments are checked by the wrappers
 * (host/backend/backend_ops.c) before an entry here runs.
 */
#include "cpu/cpu_internal.h"
#include "cpu/cpu_sparse.h"
#include "cpu/cpu_sparse_train.h"

#include "backend/philox.h"
#include "core/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- host memory, shared with cpu_fast.c ---- */

elag_status elag_cpu_alloc(elag_backend *b, size_t bytes, void **out)
{
    (void)b;
    /* aligned_alloc wants a multiple of the alignment; never ask for 0 bytes */
    size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    if (rounded < bytes) return elag_fail(ELAG_ERR_NOMEM, "alloc: %zu bytes is too large", bytes);
    void *p = aligned_alloc(64, rounded);
    if (p == NULL)
        return elag_fail(ELAG_ERR_NOMEM, "alloc: out of host memory (%zu bytes)", bytes);
    memset(p, 0, rounded);
    *out = p;
    return ELAG_OK;
}

void elag_cpu_release(elag_backend *b, void *p)
{
    (void)b;
    free(p);
}

elag_status elag_cpu_to_device(elag_backend *b, void *dst, const void *src_host, size_t bytes)
{
    (void)b;
    if (bytes) memcpy(dst, src_host, bytes);
    return ELAG_OK;
}

elag_status elag_cpu_to_host(elag_backend *b, void *dst_host, const void *src, size_t bytes)
{
    (void)b;
    if (bytes) memcpy(dst_host, src, bytes);
    return ELAG_OK;
}

elag_status elag_cpu_copy(elag_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    if (bytes && dst != src) memmove(dst, src, bytes);
    return ELAG_OK;
}

elag_status elag_cpu_sync(elag_backend *b)
{
    (void)b;
    return ELAG_OK;
}

void elag_cpu_destroy(elag_backend *b)
{
    elag_cpu_ctx *ctx = b->ctx;
    if (ctx) {
        free(ctx->keys);
        free(ctx->seg);
        free(ctx);
    }
    free(b);
}

/* ---- the one check the CPU backends keep, shared with cpu_fast.c ---- */

/* The wrapper cannot read labels that live on the device; here they are host memory, and
 * one pass over rows ints costs nothing beside the softmax, so a bad label is reported
 * rather than read out of bounds. */
elag_status elag_cpu_check_labels(const int32_t *labels, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        if (labels[r] < 0 || labels[r] >= cols)
            return elag_fail(ELAG_ERR_INPUT, "xent: label %d of row %d is outside [0, %d)",
                             (int)labels[r], r, cols);
    return ELAG_OK;
}

/* ---- capabilities, shared with cpu_fast.c ---- */

/* The CPU backends run every op in full FP32; what they cannot do is ask for something
 * only a GPU has (TF32, a cuSPARSE algorithm), and the fast mask_select's 32-bit keys. */
elag_support elag_cpu_supports(elag_backend *b, elag_op op, const elag_op_query *q, char *why,
                               size_t why_len)
{
    const char *no = NULL;
    switch (op) {
    case ELAG_OP_GEMM:
        if (q->tf32) no = "CPU GEMMs are FP32 only (no TF32)";
        break;
    case ELAG_OP_MASK_SELECT:
        if (b->kind == ELAG_DEVICE_CPU && q->n > UINT32_MAX)
            no = "the fast mask_select takes at most 2^32 entries (cpu-ref has no limit)";
        break;
    case ELAG_OP_SPARSE_MM:
        if (q->alg != 0) no = "cuSPARSE algorithms need a CUDA device";
        break;
    case ELAG_OP_CONV: /* cpu-ref: any window the contract allows; cpu: cpu_conv.c's limits */
        if (q->window && (q->window->sh != 1 || q->window->sw != 1 ||
                          q->window->ph >= q->window->kh || q->window->pw >= q->window->kw))
            no = "a direct convolution takes stride 1 and padding below the kernel size only";
        else if (b->kind == ELAG_DEVICE_CPU && !elag_cpu_conv_direct_ok(q->window, why, why_len))
            return ELAG_SUPPORT_NO;
        break;
    default:
        break;
    }
    if (no == NULL) return ELAG_SUPPORT_FP32;
    if (why && why_len) snprintf(why, why_len, "%s", no);
    return ELAG_SUPPORT_NO;
}

/* ---- elementwise ---- */

static elag_status ref_fill(elag_backend *b, float *x, size_t n, float v)
{
    (void)b;
    for (size_t i = 0; i < n; i++) x[i] = v;
    return ELAG_OK;
}

static elag_status ref_elementwise(elag_backend *b, elag_ew_op op, size_t n, float *y,
                                   const float *a, const float *bb, float alpha)
{
    (void)b;
    for (size_t i = 0; i < n; i++) {
        switch (op) {
        case ELAG_EW_RELU: y[i] = a[i] > 0.0f ? a[i] : 0.0f; break; /* NaN > 0 is false */
        case ELAG_EW_RELU_BACKWARD: y[i] = bb[i] > 0.0f ? a[i] : 0.0f; break;
        /* a select, not a product: 0 * inf or 0 * NaN would not give the +0 a pruned or
         * dropped entry must be */
        case ELAG_EW_MUL: y[i] = bb[i] == 0.0f ? 0.0f : a[i] * bb[i]; break;
        case ELAG_EW_AXPY: y[i] = y[i] + alpha * a[i]; break;
        case ELAG_EW_SCALE: y[i] = alpha * a[i]; break;
        }
    }
    return ELAG_OK;
}

/* ---- dense linear algebra ---- */

static elag_status ref_gemm(elag_backend *b, int trans_a, int trans_b, int m, int n, int k,
                            float alpha, const float *a, int lda, const float *bm, int ldb,
                            float beta, float *c, int ldc)
{
    (void)b;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++) {
                double aip = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double bpj = trans_b ? bm[(size_t)j * ldb + p] : bm[(size_t)p * ldb + j];
                s += aip * bpj;
            }
            float *cij = &c[(size_t)i * ldc + j];
            /* BLAS rule: with beta == 0, C is written, never read (it may hold NaN) */
            *cij = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *cij));
        }
    }
    return ELAG_OK;
}

static elag_status ref_row_sum(elag_backend *b, float *out, const float *x, int rows, int cols)
{
    (void)b;
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int c = 0; c < cols; c++) s += x[(size_t)r * cols + c];
        out[r] = (float)s;
    }
    return ELAG_OK;
}

static elag_status ref_xent(elag_backend *b, const float *logits, const int32_t *labels, int rows,
                            int cols, float *dlogits, float *stats)
{
    (void)b;
    ELAG_TRY(elag_cpu_check_labels(labels, rows, cols));
    double loss_sum = 0.0, correct = 0.0;
    for (int r = 0; r < rows; r++) {
        const float *x = logits + (size_t)r * cols; /* (cols) */
        int label = labels[r];
        int argmax = 0; /* first maximum */
        for (int c = 1; c < cols; c++)
            if (x[c] > x[argmax]) argmax = c;
        double mx = x[argmax], sum = 0.0;
        for (int c = 0; c < cols; c++) sum += exp((double)x[c] - mx);
        double logsumexp = mx + log(sum);
        loss_sum += logsumexp - (double)x[label]; /* -log softmax(x)[label] */
        if (argmax == label) correct += 1.0;
        if (dlogits) {
            for (int c = 0; c < cols; c++) {
                double p = exp((double)x[c] - mx) / sum;
                dlogits[(size_t)r * cols + c] = (float)((p - (c == label ? 1.0 : 0.0)) / rows);
            }
        }
    }
    stats[0] = (float)((double)stats[0] + loss_sum);
    stats[1] = (float)((double)stats[1] + correct);
    return ELAG_OK;
}

static elag_status ref_gather_rows(elag_backend *b, float *dst, const float *src,
                                   const int32_t *idx, int rows, int cols)
{
    (void)b;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)r * cols + c] = src[(size_t)idx[r] * cols + c];
    return ELAG_OK;
}

static elag_status ref_gather_i32(elag_backend *b, int32_t *dst, const int32_t *src,
                                  const int32_t *idx, int rows)
{
    (void)b;
    for (int r = 0; r < rows; r++) dst[r] = src[idx[r]];
    return ELAG_OK;
}

/* ---- initialisation ---- */

static elag_status ref_init_uniform(elag_backend *b, float *x, size_t n, float lo, float hi,
                                    uint64_t seed, uint64_t stream)
{
    (void)b;
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * elag_philox_uniform(seed, stream, i);
    return ELAG_OK;
}

/* ---- optimizers ---- */

static elag_status ref_sgd_step(elag_backend *b, float *w, const float *g, float *v,
                                const float *mask, size_t n, float lr, float momentum,
                                float weight_decay, int nesterov)
{
    (void)b;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + weight_decay * w[i];
        float vi = momentum * v[i] + gi;
        w[i] -= lr * (nesterov ? gi + momentum * vi : vi);
        v[i] = vi;
        if (mask && mask[i] == 0.0f) w[i] = v[i] = 0.0f; /* w *= mask, v *= mask */
    }
    return ELAG_OK;
}

static elag_status ref_adamw_step(elag_backend *b, float *w, const float *g, float *m, float *v,
                                  const float *mask, size_t n, float lr, float beta1,
                                  float beta2, float eps, float weight_decay, int t)
{
    (void)b;
    double bias1 = 1.0 - pow(beta1, t), bias2 = 1.0 - pow(beta2, t);
    for (size_t i = 0; i < n; i++) {
        double wi = (double)w[i] * (1.0 - (double)lr * weight_decay);
        double mi = (double)beta1 * m[i] + (1.0 - (double)beta1) * g[i];
        double vi = (double)beta2 * v[i] + (1.0 - (double)beta2) * g[i] * (double)g[i];
        wi -= (double)lr * (mi / bias1) / (sqrt(vi / bias2) + (double)eps);
        w[i] = (float)wi;
        m[i] = (float)mi;
        v[i] = (float)vi;
        if (mask && mask[i] == 0.0f) w[i] = m[i] = v[i] = 0.0f; /* w, m, v *= mask */
    }
    return ELAG_OK;
}

/* ---- pruning ---- */

static elag_status ref_score_magnitude(elag_backend *b, float *score, const float *w,
                                       const float *mask, size_t n)
{
    (void)b;
    for (size_t i = 0; i < n; i++) score[i] = (mask == NULL || mask[i] != 0.0f) ? fabsf(w[i]) : -1.0f;
    return ELAG_OK;
}

typedef struct elag_ref_ranked {
    float score;
    size_t index;
} elag_ref_ranked;

/* (score, index) lexicographic; -0 == +0 (float compare) and NaN above everything, the
 * order elag_cpu_score_key encodes for the fast path. */
static int elag_ref_rank_cmp(const void *pa, const void *pb)
{
    const elag_ref_ranked *a = pa, *b = pb;
    int a_nan = isnan(a->score), b_nan = isnan(b->score);
    if (a_nan != b_nan) return a_nan - b_nan;
    if (!a_nan && a->score < b->score) return -1;
    if (!a_nan && a->score > b->score) return 1;
    return (a->index > b->index) - (a->index < b->index);
}

static elag_status ref_mask_select(elag_backend *b, float *mask, const float *score, size_t n,
                                   size_t k)
{
    (void)b;
    if (n == 0) return ELAG_OK;
    elag_ref_ranked *order = malloc(n * sizeof *order); /* (n) */
    if (order == NULL) return elag_fail(ELAG_ERR_NOMEM, "mask_select: out of host memory");
    for (size_t i = 0; i < n; i++) {
        order[i].score = score[i];
        order[i].index = i;
    }
    qsort(order, n, sizeof *order, elag_ref_rank_cmp);
    for (size_t i = 0; i < n; i++) mask[i] = 1.0f;
    for (size_t j = 0; j < k; j++) mask[order[j].index] = 0.0f;
    free(order);
    return ELAG_OK;
}

static elag_status ref_count_nonzero(elag_backend *b, const float *x, size_t n, size_t *out_host)
{
    (void)b;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) count++;
    *out_host = count;
    return ELAG_OK;
}

elag_status elag_cpu_ref_backend_init(elag_backend **out)
{
    elag_backend *b = calloc(1, sizeof *b);
    if (b == NULL) return elag_fail(ELAG_ERR_NOMEM, "cpu-ref: out of host memory");
    b->name = "cpu-ref";
    b->kind = ELAG_DEVICE_CPU_REF;
    b->device_index = 0;
    b->threads = 1;
    b->ctx = NULL;

    b->alloc = elag_cpu_alloc;
    b->release = elag_cpu_release;
    b->to_device = elag_cpu_to_device;
    b->to_host = elag_cpu_to_host;
    b->copy = elag_cpu_copy;
    b->fill = ref_fill;
    b->sync = elag_cpu_sync;
    b->destroy = elag_cpu_destroy;
    b->supports = elag_cpu_supports;

    b->gemm = ref_gemm;
    b->row_sum = ref_row_sum;
    b->elementwise = ref_elementwise;
    b->transpose = elag_cpu_ref_transpose;
    b->xent = ref_xent;
    b->gather_rows = ref_gather_rows;
    b->gather_i32 = ref_gather_i32;

    b->init_uniform = ref_init_uniform;

    b->sgd_step = ref_sgd_step;
    b->adamw_step = ref_adamw_step;

    b->score_magnitude = ref_score_magnitude;
    b->mask_select = ref_mask_select;
    b->count_nonzero = ref_count_nonzero;

    b->im2col = elag_cpu_ref_im2col;
    b->col2im = elag_cpu_ref_col2im;
    b->conv_forward = elag_cpu_ref_conv_forward;
    b->conv_backward_data = elag_cpu_ref_conv_backward_data;
    b->conv_backward_filter = elag_cpu_ref_conv_backward_filter;
    b->pool_forward = elag_cpu_ref_pool_forward;
    b->pool_backward = elag_cpu_ref_pool_backward;
    b->batchnorm_forward = elag_cpu_ref_batchnorm_forward;
    b->batchnorm_backward = elag_cpu_ref_batchnorm_backward;
    b->dropout_forward = elag_cpu_ref_dropout_forward;

    b->sparse_create = elag_cpu_sparse_create;
    b->sparse_destroy = elag_cpu_sparse_destroy;
    b->sparse_mm = elag_cpu_ref_sparse_mm;
    b->sparse_tile = elag_cpu_ref_sparse_tile;
    b->sparse_mm_tiled = elag_cpu_ref_sparse_mm_tiled;
    b->sparse_chain_tiled = elag_cpu_ref_sparse_chain_tiled;
    b->bias_relu_rows = elag_cpu_ref_bias_relu_rows;
    b->sparse_pattern_create = elag_cpu_sparse_pattern_create;
    b->sparse_pattern_destroy = elag_cpu_sparse_pattern_destroy;
    b->sparse_gather = elag_cpu_ref_sparse_gather;
    b->sparse_scatter = elag_cpu_ref_sparse_scatter;
    b->sparse_values_set = elag_cpu_ref_sparse_values_set;
    b->sparse_pattern_mm = elag_cpu_ref_sparse_pattern_mm;
    b->sddmm = elag_cpu_ref_sddmm;

    *out = b;
    return ELAG_OK;
}
