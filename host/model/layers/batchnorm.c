/*
 * batchnorm: per-channel normalisation, y = (x - mean) / sqrt(var + eps) * gamma + beta,
 * with the batch's statistics in training (and running averages updated, PyTorch's
 * momentum and unbiased running variance) and the running averages in evaluation. Works
 * on images (statistics over n*H*W per channel) and on flat features (over n). At export
 * it folds into the convolution or linear layer before it (host/sparse/export.c).
 */
#include "model/model.h"

#include "core/check.h"

static const char *const bn_keys[] = {"momentum", "eps", NULL};

static void bn_defaults(elag_layer_config *lc)
{
    lc->momentum = 0.1;
    lc->eps = 1e-5;
}

static elag_status bn_infer(elag_model *m, elag_layer *l)
{
    (void)m;
    l->out = l->in;
    l->aux_fixed = 2 * (size_t)l->in.c; /* save_mean, save_invstd */
    return ELAG_OK;
}

static elag_status bn_params(elag_model *m, elag_layer *l)
{
    int64_t c[1] = {l->in.c};
    ELAG_TRY(
        elag_model_add_param(m, l, "weight", 1, c, ELAG_PARAM_NORM, 0, ELAG_INIT_ONE, 0, NULL));
    ELAG_TRY(elag_model_add_param(m, l, "bias", 1, c, ELAG_PARAM_NORM, 0, ELAG_INIT_ZERO, 0, NULL));
    ELAG_TRY(elag_model_add_param(m, l, "running_mean", 1, c, ELAG_PARAM_BUFFER, 0, ELAG_INIT_ZERO,
                                  0, NULL));
    ELAG_TRY(elag_model_add_param(m, l, "running_var", 1, c, ELAG_PARAM_BUFFER, 0, ELAG_INIT_ONE, 0,
                                  NULL));
    return ELAG_OK;
}

static elag_status bn_forward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                              float *y)
{
    const int C = l->in.c, L = p->n * l->in.h * l->in.w;
    float *save = m->aux + l->aux_off; /* save_mean (C), save_invstd (C) */
    const int flags = (p->training ? ELAG_BN_TRAINING : 0) | (l->relu ? ELAG_BN_RELU : 0);
    return elag_be_batchnorm_forward(m->be, flags, y, x, C, L, elag_layer_param(m, l, 0),
                                     elag_layer_param(m, l, 1), elag_layer_param(m, l, 2),
                                     elag_layer_param(m, l, 3), (float)l->cfg.momentum,
                                     (float)l->cfg.eps, save, save + C);
}

static elag_status bn_backward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                               const float *y, const float *dy, float *dx)
{
    (void)y;
    const int C = l->in.c, L = p->n * l->in.h * l->in.w;
    const float *save = m->aux + l->aux_off;
    /* dx is wanted by the contract; with nothing trainable below, the ping-pong buffer that
     * dy is not in takes it */
    float *sink = dx ? dx : (dy == m->grad_a ? m->grad_b : m->grad_a);
    return elag_be_batchnorm_backward(m->be, sink, elag_layer_grad(m, l, 0),
                                      elag_layer_grad(m, l, 1), dy, x, C, L,
                                      elag_layer_param(m, l, 0), save, save + C);
}

const elag_layer_kind_def elag_layer_batchnorm = {
    .name = "batchnorm",
    .prefix = "bn",
    .keys = bn_keys,
    .defaults = bn_defaults,
    .infer = bn_infer,
    .params = bn_params,
    .forward = bn_forward,
    .backward = bn_backward,
    .fuses_relu = 1, /* the ReLU after a batch norm runs in its forward (ELAG_BN_RELU) */
};
