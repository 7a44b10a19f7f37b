/*
 * conv2d: NCHW convolution (cross-correlation, as PyTorch) with stride, zero padding and
 * an optional bias, on the feature-major layout. Where the backend has a direct
 * convolution for the window (supports(ELAG_OP_CONV): the fast CPU backend with AVX-512,
 * stride 1), forward and both gradients run it: no columns, the input copied once, padded.
 * Elsewhere it is im2col + GEMM:
 *   y (out, n*oh*ow) = W (out, C*kh*kw) x col (C*kh*kw, n*oh*ow)
 * which is (out, n, oh, ow), the next layer's layout, with no reordering. The batch is cut
 * into chunks of samples so the column buffer stays small on the CPU (cache) and is one
 * chunk on the GPU; a 1x1 stride-1 unpadded convolution needs no columns at all (x is
 * already (C, n*H*W)). Backward recomputes each chunk's columns:
 *   dW += dy_chunk col^T ; db = row sums of dy ; dcol = W^T dy_chunk, scattered by col2im.
 * A weight prepared as a sparse matrix (inference) runs as one SpMM over the whole batch.
 *
 * While the trainer keeps the weight's mask as a live pattern (l->train_sp, issue 12) the
 * im2col route runs on the pattern, chunk by chunk (l->pattern_cols columns a chunk):
 *   y_chunk = W col (pattern product) ; dW += SDDMM(dy_chunk, col) at the kept entries ;
 *   dcol = W^T dy_chunk (transposed pattern product), scattered by col2im.
 * The dense weight and its gradient are not read or written then. A chunk's columns of y
 * and dy are rows n*P apart, which the pattern ops do not take: with more than one chunk
 * they go through a compact (out, nb*P) copy in the work buffer.
 */
#include "model/model.h"

#include "core/check.h"
#include "train/sparse_step.h"

static const char *const conv_keys[] = {"out_channels", "kernel",   "stride", "padding",
                                        "bias",         "prunable", NULL};
static const char *const conv_required[] = {"out_channels", "kernel", NULL};

/* Work-buffer target in floats: im2col columns about 8 MB on the CPU (the product stays in
 * cache), 256 MB on a GPU (one chunk for every usual batch); the direct convolution's padded
 * input (9x smaller than columns for 3x3) 32 MB, one chunk for a batch of 128 on vgg-small
 * (fewer thread team starts and weight reorders per step). */
#define CONV_WORK_CPU    (1u << 21)
#define CONV_WORK_DIRECT (1u << 23)
#define CONV_WORK_GPU    (1u << 26)
/* The pattern route's columns on the CPU: the pattern product packs them once more and the
 * SDDMM streams them per kept entry's row, so they should stay near L2 (measured with
 * bench/conv_sparse_step.c, docs/sparse.md). */
#ifndef CONV_WORK_SPARSE
#define CONV_WORK_SPARSE (1u << 18)
#endif

static void conv_defaults(elag_layer_config *lc)
{
    lc->stride[0] = lc->stride[1] = 1;
    lc->bias = 1;
    lc->prunable = 1;
}

static int conv_pointwise(const elag_layer *l)
{
    const elag_window *g = &l->win;
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* The pattern route's chunk (samples) and scratch, for a model that trains on a backend
 * with a sparse training step: columns (K, chunk*P), then, when a batch takes more than one
 * chunk, a compact copy of a chunk of y or dy (out, chunk*P) and the chunk's weight gradient
 * (out*K at most: one per kept entry) before it is added to the others. */
static elag_status conv_plan_pattern(elag_model *m, elag_layer *l)
{
    if (!m->training || elag_be_supports(m->be, ELAG_OP_SPARSE_TRAIN, &(elag_op_query){0}, NULL,
                                         0) == ELAG_SUPPORT_NO)
        return ELAG_OK;
    const size_t P = (size_t)l->win.oh * l->win.ow, out = (size_t)l->out.c,
                 K = (size_t)l->in.c * l->win.kh * l->win.kw;
    const size_t target = m->be->kind == ELAG_DEVICE_CUDA ? CONV_WORK_GPU : CONV_WORK_SPARSE;
    size_t chunk = m->whole_batch ? (size_t)m->max_batch : target / (K * P);
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)m->max_batch) chunk = (size_t)m->max_batch;
    if (chunk * P > INT32_MAX / 2)
        return elag_layer_fail(l, "%zu columns per chunk are too many for a sparse pattern",
                               chunk * P);
    l->pattern_cols = (int)(chunk * P);
    size_t need = K * chunk * P;
    if (chunk < (size_t)m->max_batch) need += out * chunk * P + out * K;
    if (l->work_floats < need) l->work_floats = need;
    return ELAG_OK;
}

static elag_status conv_infer(elag_model *m, elag_layer *l)
{
    const elag_layer_config *c = &l->cfg;
    if (c->out_channels < 1) return elag_layer_fail(l, "needs out_channels >= 1");
    l->win = (elag_window){.H = l->in.h,
                           .W = l->in.w,
                           .kh = c->kernel[0],
                           .kw = c->kernel[1],
                           .sh = c->stride[0],
                           .sw = c->stride[1],
                           .ph = c->padding[0],
                           .pw = c->padding[1]};
    if (elag_window_resolve(&l->win) != ELAG_OK)
        return elag_layer_fail(l,
                               "kernel %dx%d (stride %dx%d, padding %dx%d) does not fit its "
                               "input of %dx%d",
                               c->kernel[0], c->kernel[1], c->stride[0], c->stride[1],
                               c->padding[0], c->padding[1], l->in.h, l->in.w);
    l->out = (elag_fshape){c->out_channels, l->win.oh, l->win.ow};
    if (conv_pointwise(l)) {
        l->chunk = m->max_batch;
        l->work_floats = 0;
        /* on the pattern too: x is already the columns, one product for the batch */
        l->pattern_cols = m->max_batch * l->win.oh * l->win.ow;
        return ELAG_OK;
    }
    const elag_op_query q = {.window = &l->win};
    l->direct = elag_be_supports(m->be, ELAG_OP_CONV, &q, NULL, 0) != ELAG_SUPPORT_NO;
    size_t columns = (size_t)l->in.c * c->kernel[0] * c->kernel[1] * l->win.oh * l->win.ow;
    size_t padded = l->direct ? elag_conv_work_floats(l->in.c, c->out_channels, 1, &l->win) : 0;
    size_t per_sample = l->direct ? padded : columns;
    size_t target = m->be->kind == ELAG_DEVICE_CUDA ? CONV_WORK_GPU
                    : l->direct                     ? CONV_WORK_DIRECT
                                                    : CONV_WORK_CPU;
    size_t chunk = m->whole_batch ? (size_t)m->max_batch : target / per_sample;
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)m->max_batch) chunk = (size_t)m->max_batch;
    l->chunk = (int)chunk;
    l->work_floats = l->direct
                         ? elag_conv_work_floats(l->in.c, c->out_channels, (int)chunk, &l->win)
                         : chunk * columns;
    /* one batch's columns too when a weight may later be prepared sparse (inference): its
     * SpMM reads im2col columns */
    if (m->whole_batch && l->work_floats < chunk * columns) l->work_floats = chunk * columns;
    return conv_plan_pattern(m, l);
}

static elag_status conv_params(elag_model *m, elag_layer *l)
{
    const elag_layer_config *c = &l->cfg;
    int64_t w[4] = {c->out_channels, l->in.c, c->kernel[0], c->kernel[1]}, b[1] = {c->out_channels};
    ELAG_TRY(elag_model_add_param(m, l, "weight", 4, w, ELAG_PARAM_WEIGHT, c->prunable,
                                  ELAG_INIT_KAIMING, l->in.c * c->kernel[0] * c->kernel[1], NULL));
    if (c->bias)
        ELAG_TRY(
            elag_model_add_param(m, l, "bias", 1, b, ELAG_PARAM_BIAS, 0, ELAG_INIT_ZERO, 0, NULL));
    return ELAG_OK;
}

/* The columns of samples [n0, n0+nb): *B and its row stride *ldb. */
static elag_status conv_columns(elag_model *m, const elag_layer *l, const float *x, int n, int n0,
                                int nb, const float **B, int *ldb)
{
    const int P = l->win.oh * l->win.ow;
    if (conv_pointwise(l)) {
        *B = x + (size_t)n0 * P;
        *ldb = n * P;
        return ELAG_OK;
    }
    ELAG_TRY(elag_be_im2col(m->be, m->work, x, l->in.c, n, n0, nb, &l->win));
    *B = m->work;
    *ldb = nb * P;
    return ELAG_OK;
}

/* dst(rows, cols) row stride ldd = src(rows, cols) row stride lds: a chunk's columns of a
 * (rows, n*P) activation and their compact copy. */
static elag_status copy_rows(elag_backend *be, float *dst, size_t ldd, const float *src, size_t lds,
                             int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        ELAG_TRY(elag_be_copy(be, dst + r * ldd, src + r * lds, (size_t)cols * sizeof(float)));
    return ELAG_OK;
}

/* y (out, n*P) = W x on the live pattern, before the epilogue. */
static elag_status conv_pattern_forward(elag_model *m, const elag_layer *l, int n, const float *x,
                                        float *y)
{
    elag_backend *be = m->be;
    const elag_sparse_step_layer *ts = l->train_sp;
    const int out = l->out.c, P = l->win.oh * l->win.ow, chunk = l->pattern_cols / P;
    const size_t K = (size_t)l->in.c * l->win.kh * l->win.kw;
    ELAG_ASSERT(chunk >= 1 && chunk * P <= ts->max_n); /* the dense weight is stale */
    if (conv_pointwise(l)) return elag_be_sparse_pattern_mm(be, ts->p, 0, x, n * P, y);
    float *col = m->work;                          /* (K, nb*P) */
    float *part = m->work + K * (size_t)chunk * P; /* (out, nb*P) when n > chunk */
    for (int n0 = 0; n0 < n; n0 += chunk) {
        const int nb = n - n0 < chunk ? n - n0 : chunk;
        ELAG_TRY(elag_be_im2col(be, col, x, l->in.c, n, n0, nb, &l->win));
        if (nb == n) return elag_be_sparse_pattern_mm(be, ts->p, 0, col, n * P, y);
        ELAG_TRY(elag_be_sparse_pattern_mm(be, ts->p, 0, col, nb * P, part));
        ELAG_TRY(
            copy_rows(be, y + (size_t)n0 * P, (size_t)n * P, part, (size_t)nb * P, out, nb * P));
    }
    return ELAG_OK;
}

/* The weight gradient into the pattern's values (ts->g, every chunk's SDDMM added in chunk
 * order, as the dense path's beta = 1 GEMMs add) and dx (when not NULL) from the
 * transposed pattern product. The bias gradient is the caller's. */
static elag_status conv_pattern_backward(elag_model *m, const elag_layer *l, int n, const float *x,
                                         const float *dy, float *dx)
{
    elag_backend *be = m->be;
    const elag_sparse_step_layer *ts = l->train_sp;
    const int out = l->out.c, P = l->win.oh * l->win.ow, chunk = l->pattern_cols / P;
    const size_t K = (size_t)l->in.c * l->win.kh * l->win.kw;
    ELAG_ASSERT(chunk >= 1 && chunk * P <= ts->max_n);
    if (conv_pointwise(l)) { /* x is the columns, dx (C, n*P) = W^T dy */
        ELAG_TRY(elag_be_sddmm(be, ts->p, dy, x, n * P, ts->g));
        return dx ? elag_be_sparse_pattern_mm(be, ts->p, 1, dy, n * P, dx) : ELAG_OK;
    }
    float *col = m->work;                          /* (K, nb*P); then dcol */
    float *part = m->work + K * (size_t)chunk * P; /* (out, nb*P) dy's chunk, when n > chunk */
    float *gpart = part + (size_t)out * chunk * P; /* (nnz) a later chunk's dW */
    if (dx) ELAG_TRY(elag_be_fill(be, dx, elag_fshape_count(l->in) * (size_t)n, 0.0f));
    for (int n0 = 0; n0 < n; n0 += chunk) {
        const int nb = n - n0 < chunk ? n - n0 : chunk;
        const float *dyc = dy; /* (out, nb*P) compact */
        if (nb < n) {
            ELAG_TRY(copy_rows(be, part, (size_t)nb * P, dy + (size_t)n0 * P, (size_t)n * P, out,
                               nb * P));
            dyc = part;
        }
        ELAG_TRY(elag_be_im2col(be, col, x, l->in.c, n, n0, nb, &l->win));
        ELAG_TRY(elag_be_sddmm(be, ts->p, dyc, col, nb * P, n0 ? gpart : ts->g));
        if (n0)
            ELAG_TRY(
                elag_be_elementwise(be, ELAG_EW_AXPY, (size_t)ts->nnz, ts->g, gpart, NULL, 1.0f));
        if (!dx) continue;
        ELAG_TRY(elag_be_sparse_pattern_mm(be, ts->p, 1, dyc, nb * P, col));
        ELAG_TRY(elag_be_col2im(be, dx, col, l->in.c, n, n0, nb, &l->win));
    }
    return ELAG_OK;
}

static elag_status conv_forward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                float *y)
{
    elag_backend *be = m->be;
    const int n = p->n, out = l->out.c, P = l->win.oh * l->win.ow;
    const int K = l->in.c * l->win.kh * l->win.kw;
    const float *bias = l->cfg.bias ? elag_layer_param(m, l, 1) : NULL;
    if (l->sp) {
        if (l->chunk < n && !conv_pointwise(l))
            return elag_fail(ELAG_ERR_INTERNAL, "conv2d '%s': sparse weight needs one chunk",
                             l->cfg.name);
        const float *B;
        int ldb;
        ELAG_TRY(conv_columns(m, l, x, n, 0, n, &B, &ldb));
        return elag_be_sparse_mm(be, l->sp, B, n * P, bias, l->relu, y);
    }
    if (l->train_sp) {
        ELAG_TRY(conv_pattern_forward(m, l, n, x, y));
        return elag_layer_epilogue(be, y, bias, out, n * P, l->relu);
    }
    for (int n0 = 0; n0 < n; n0 += l->chunk) {
        int nb = n - n0 < l->chunk ? n - n0 : l->chunk;
        if (l->direct) {
            ELAG_TRY(elag_be_conv_forward(be, y, x, elag_layer_param(m, l, 0), l->in.c, out, n, n0,
                                          nb, &l->win, m->work));
            continue;
        }
        const float *B;
        int ldb;
        ELAG_TRY(conv_columns(m, l, x, n, n0, nb, &B, &ldb));
        ELAG_TRY(elag_be_gemm(be, 0, 0, out, nb * P, K, 1.0f, elag_layer_param(m, l, 0), K, B, ldb,
                              0.0f, y + (size_t)n0 * P, n * P));
    }
    return elag_layer_epilogue(be, y, bias, out, n * P, l->relu);
}

static elag_status conv_backward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                 const float *y, const float *dy, float *dx)
{
    (void)y;
    elag_backend *be = m->be;
    const int n = p->n, out = l->out.c, P = l->win.oh * l->win.ow;
    const int K = l->in.c * l->win.kh * l->win.kw;
    const float *w = elag_layer_param(m, l, 0);
    float *dw = elag_layer_grad(m, l, 0);
    if (l->cfg.bias) ELAG_TRY(elag_be_row_sum(be, elag_layer_grad(m, l, 1), dy, out, n * P));
    if (l->train_sp) return conv_pattern_backward(m, l, n, x, dy, dx);
    if (l->direct) { /* each slice: dw (+)= its sum, its samples of dx overwritten */
        for (int n0 = 0; n0 < n; n0 += l->chunk) {
            int nb = n - n0 < l->chunk ? n - n0 : l->chunk;
            ELAG_TRY(elag_be_conv_backward_filter(be, dw, dy, x, l->in.c, out, n, n0, nb, &l->win,
                                                  n0 ? 1.0f : 0.0f, m->work));
            if (dx)
                ELAG_TRY(elag_be_conv_backward_data(be, dx, dy, w, l->in.c, out, n, n0, nb, &l->win,
                                                    m->work));
        }
        return ELAG_OK;
    }
    if (dx && !conv_pointwise(l))
        ELAG_TRY(
            elag_be_fill(be, dx, elag_fshape_count(l->in) * (size_t)n, 0.0f)); /* col2im adds */
    for (int n0 = 0; n0 < n; n0 += l->chunk) {
        int nb = n - n0 < l->chunk ? n - n0 : l->chunk;
        const float *dyc = dy + (size_t)n0 * P; /* (out, nb*P), row stride n*P */
        const float *B;
        int ldb;
        ELAG_TRY(conv_columns(m, l, x, n, n0, nb, &B, &ldb));
        ELAG_TRY(elag_be_gemm(be, 0, 1, out, K, nb * P, 1.0f, dyc, n * P, B, ldb, n0 ? 1.0f : 0.0f,
                              dw, K));
        if (!dx) continue;
        if (conv_pointwise(l)) { /* dx (C, n*HW) = W^T dy directly */
            ELAG_TRY(elag_be_gemm(be, 1, 0, K, nb * P, out, 1.0f, w, K, dyc, n * P, 0.0f,
                                  dx + (size_t)n0 * P, n * P));
            continue;
        }
        ELAG_TRY(
            elag_be_gemm(be, 1, 0, K, nb * P, out, 1.0f, w, K, dyc, n * P, 0.0f, m->work, nb * P));
        ELAG_TRY(elag_be_col2im(be, dx, m->work, l->in.c, n, n0, nb, &l->win));
    }
    return ELAG_OK;
}

const elag_layer_kind_def elag_layer_conv2d = {
    .name = "conv2d",
    .prefix = "conv",
    .keys = conv_keys,
    .required = conv_required,
    .defaults = conv_defaults,
    .infer = conv_infer,
    .params = conv_params,
    .forward = conv_forward,
    .backward = conv_backward,
    .fuses_relu = 1,
    .sparse_weight = 1,
    .spatial = 1,
    .sparse_train = 1,
};
