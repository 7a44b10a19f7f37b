/*
 * flatten: (C, H, W) per sample to C*H*W flat features, in PyTorch's order (c, h, w).
 * Feature-major, (C, n, H, W) -> (C*H*W, n) is a transpose of each channel's (n, H*W)
 * block; with H = W = 1 the two layouts are the same and the layer is a view.
 */
#include "model/model.h"

#include "core/check.h"

static const char *const flatten_keys[] = {NULL};

static elag_status flatten_infer(elag_model *m, elag_layer *l)
{
    (void)m;
    l->out = (elag_fshape){(int)elag_fshape_count(l->in), 1, 1};
    l->alias = l->in.h * l->in.w == 1;
    return ELAG_OK;
}

static elag_status flatten_forward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                   float *y)
{
    /* x (C, n, HW) -> y (C, HW, n) */
    return elag_be_transpose(m->be, y, x, l->in.c, p->n, l->in.h * l->in.w, 1);
}

static elag_status flatten_backward(elag_model *m, elag_layer *l, const elag_pass *p,
                                    const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    if (!dx) return ELAG_OK;
    /* dy (C, HW, n) -> dx (C, n, HW) */
    return elag_be_transpose(m->be, dx, dy, l->in.c, l->in.h * l->in.w, p->n, 1);
}

const elag_layer_kind_def elag_layer_flatten = {
    .name = "flatten",
    .prefix = "flatten",
    .keys = flatten_keys,
    .infer = flatten_infer,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .view = 1,
};
