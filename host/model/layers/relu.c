/*
 * relu: y = max(x, 0). Right after a layer that has an epilogue (linear, conv2d) it runs
 * there instead and this layer aliases that output; its backward, dx = dy * (y > 0), is
 * the same either way.
 */
#include "model/model.h"

#include "core/check.h"

static const char *const relu_keys[] = {NULL};

static elag_status relu_infer(elag_model *m, elag_layer *l)
{
    (void)m;
    l->out = l->in;
    return ELAG_OK;
}

static size_t relu_count(const elag_layer *l, const elag_pass *p)
{
    return elag_fshape_count(l->out) * (size_t)p->n;
}

static elag_status relu_forward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                float *y)
{
    return elag_be_elementwise(m->be, ELAG_EW_RELU, relu_count(l, p), y, x, NULL, 0.0f);
}

static elag_status relu_backward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                 const float *y, const float *dy, float *dx)
{
    (void)x;
    if (!dx) return ELAG_OK;
    return elag_be_elementwise(m->be, ELAG_EW_RELU_BACKWARD, relu_count(l, p), dx, dy, y, 0.0f);
}

const elag_layer_kind_def elag_layer_relu = {
    .name = "relu",
    .prefix = "relu",
    .keys = relu_keys,
    .infer = relu_infer,
    .forward = relu_forward,
    .backward = relu_backward,
    .fusable = 1,
};
