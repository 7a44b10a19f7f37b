/*
 * dropout: inverted dropout in training (y = x * keep, keep = 0 or 1/(1-p) from Philox,
 * stream ELAG_STREAM_DROPOUT + layer index, counter = step * (activations per step) + i,
 * so a step's mask depends only on the seed, the layer and the step, on every backend);
 * the identity in evaluation.
 */
#include "model/model.h"

#include "backend/philox.h"
#include "core/check.h"

static const char *const dropout_keys[] = {"p", NULL};

static void dropout_defaults(elag_layer_config *lc)
{
    lc->p = 0.5;
}

static elag_status dropout_infer(elag_model *m, elag_layer *l)
{
    (void)m;
    if (!(l->cfg.p >= 0.0 && l->cfg.p < 1.0)) return elag_layer_fail(l, "needs 0 <= p < 1");
    l->out = l->in;
    l->aux_floats = elag_fshape_count(l->in); /* keep */
    return ELAG_OK;
}

static elag_status dropout_forward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                   float *y)
{
    size_t count = elag_fshape_count(l->in) * (size_t)p->n;
    if (!p->training) return elag_be_copy(m->be, y, x, count * sizeof(float));
    uint64_t per_step = (uint64_t)elag_fshape_count(l->in) * (uint64_t)m->max_batch;
    return elag_be_dropout_forward(m->be, y, m->aux + l->aux_off, x, count, (float)l->cfg.p,
                                   p->seed, ELAG_STREAM_DROPOUT + (uint64_t)l->index,
                                   (uint64_t)p->step * per_step);
}

static elag_status dropout_backward(elag_model *m, elag_layer *l, const elag_pass *p,
                                    const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    if (!dx) return ELAG_OK;
    size_t count = elag_fshape_count(l->in) * (size_t)p->n;
    return elag_be_elementwise(m->be, ELAG_EW_MUL, count, dx, dy, m->aux + l->aux_off, 0.0f);
}

const elag_layer_kind_def elag_layer_dropout = {
    .name = "dropout",
    .prefix = "dropout",
    .keys = dropout_keys,
    .defaults = dropout_defaults,
    .infer = dropout_infer,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
