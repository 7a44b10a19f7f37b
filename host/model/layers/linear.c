/*
 * linear: y (out, n) = W (out, in) x (in, n) + b, on flat features. W is the layer's
 * prunable weight; when inference prepared it as a sparse matrix (l->sp) the same forward
 * runs it as one SpMM with the bias and a fused ReLU in the epilogue. While the trainer
 * keeps the weight's mask as a live pattern (l->train_sp, train/sparse_step.h), forward and
 * the input gradient are pattern products and the weight gradient an SDDMM into the
 * pattern's values: the dense weight and its gradient are not read or written then.
 */
#include "model/model.h"

#include "core/check.h"
#include "train/sparse_step.h"

static const char *const linear_keys[] = {"out_features", "bias", "prunable", NULL};
static const char *const linear_required[] = {"out_features", NULL};

static void linear_defaults(elag_layer_config *lc)
{
    lc->bias = 1;
    lc->prunable = 1;
}

static elag_status linear_infer(elag_model *m, elag_layer *l)
{
    (void)m;
    if (l->in.h != 1 || l->in.w != 1)
        return elag_layer_fail(l,
                               "takes flat features but gets (%d, %d, %d) per sample; put a "
                               "flatten layer before it",
                               l->in.c, l->in.h, l->in.w);
    if (l->cfg.out_features < 1) return elag_layer_fail(l, "needs out_features >= 1");
    l->out = (elag_fshape){l->cfg.out_features, 1, 1};
    return ELAG_OK;
}

static elag_status linear_params(elag_model *m, elag_layer *l)
{
    int64_t w[2] = {l->out.c, l->in.c}, b[1] = {l->out.c};
    ELAG_TRY(elag_model_add_param(m, l, "weight", 2, w, ELAG_PARAM_WEIGHT, l->cfg.prunable,
                                  ELAG_INIT_KAIMING, l->in.c, NULL));
    if (l->cfg.bias)
        ELAG_TRY(
            elag_model_add_param(m, l, "bias", 1, b, ELAG_PARAM_BIAS, 0, ELAG_INIT_ZERO, 0, NULL));
    return ELAG_OK;
}

static elag_status linear_forward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                  float *y)
{
    elag_backend *be = m->be;
    const int in = l->in.c, out = l->out.c, n = p->n;
    const float *bias = l->cfg.bias ? elag_layer_param(m, l, 1) : NULL;
    if (l->sp) return elag_be_sparse_mm(be, l->sp, x, n, bias, l->relu, y);
    const elag_sparse_step_layer *ts = l->train_sp;
    if (ts) {
        ELAG_ASSERT(n <= ts->max_n); /* the dense weight is stale: no dense fallback */
        ELAG_TRY(elag_be_sparse_pattern_mm(be, ts->p, 0, x, n, y));
    } else {
        ELAG_TRY(elag_be_gemm(be, 0, 0, out, n, in, 1.0f, elag_layer_param(m, l, 0), in, x, n, 0.0f,
                              y, n));
    }
    return elag_layer_epilogue(be, y, bias, out, n, l->relu);
}

static elag_status linear_backward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                   const float *y, const float *dy, float *dx)
{
    (void)y;
    elag_backend *be = m->be;
    const int in = l->in.c, out = l->out.c, n = p->n;
    /* dW (out, in) = dy (out, n) x^T ; db = row sums of dy ; dx (in, n) = W^T dy */
    const elag_sparse_step_layer *ts = l->train_sp;
    if (ts) /* dW at the kept entries only, in the pattern's order */
        ELAG_TRY(elag_be_sddmm(be, ts->p, dy, x, n, ts->g));
    else
        ELAG_TRY(elag_be_gemm(be, 0, 1, out, in, n, 1.0f, dy, n, x, n, 0.0f,
                              elag_layer_grad(m, l, 0), in));
    if (l->cfg.bias) ELAG_TRY(elag_be_row_sum(be, elag_layer_grad(m, l, 1), dy, out, n));
    if (!dx) return ELAG_OK;
    if (ts) return elag_be_sparse_pattern_mm(be, ts->p, 1, dy, n, dx);
    return elag_be_gemm(be, 1, 0, in, n, out, 1.0f, elag_layer_param(m, l, 0), in, dy, n, 0.0f, dx,
                        n);
}

const elag_layer_kind_def elag_layer_linear = {
    .name = "linear",
    .prefix = "fc",
    .keys = linear_keys,
    .required = linear_required,
    .defaults = linear_defaults,
    .infer = linear_infer,
    .params = linear_params,
    .forward = linear_forward,
    .backward = linear_backward,
    .fuses_relu = 1,
    .sparse_weight = 1,
    .sparse_train = 1,
};
