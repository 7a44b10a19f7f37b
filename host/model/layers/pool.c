/*
 * Pooling kinds: maxpool and avgpool (a kh x kw window with stride and zero padding;
 * avgpool divides by kh*kw, padding included, as PyTorch's default) and global_avgpool
 * (the whole plane, (C, H, W) -> (C, 1, 1)). Feature-major, every (channel, sample) is one
 * contiguous plane, so a batch is C*n independent planes. maxpool keeps each output's
 * argmax for its backward pass.
 */
#include "model/model.h"

#include "core/check.h"

static const char *const pool_keys[] = {"kernel", "stride", "padding", NULL};
static const char *const pool_required[] = {"kernel", NULL};
static const char *const global_keys[] = {NULL};

/* stride 0 means "not given": the window's own size (non-overlapping windows) */
static void pool_resolve(elag_layer_config *lc)
{
    for (int d = 0; d < 2; d++)
        if (lc->stride[d] == 0) lc->stride[d] = lc->kernel[d];
}

static elag_status pool_window(elag_layer *l, elag_window g)
{
    l->win = g;
    if (elag_window_resolve(&l->win) != ELAG_OK)
        return elag_layer_fail(l,
                               "window %dx%d (stride %dx%d, padding %dx%d) does not fit its "
                               "input of %dx%d",
                               g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, l->in.h, l->in.w);
    if (g.ph * 2 > g.kh || g.pw * 2 > g.kw)
        return elag_layer_fail(l, "padding %dx%d is more than half the window %dx%d", g.ph, g.pw,
                               g.kh, g.kw);
    l->out = (elag_fshape){l->in.c, l->win.oh, l->win.ow};
    return ELAG_OK;
}

static elag_status pool_infer(elag_model *m, elag_layer *l)
{
    (void)m;
    const elag_layer_config *c = &l->cfg;
    return pool_window(l, (elag_window){.H = l->in.h,
                                        .W = l->in.w,
                                        .kh = c->kernel[0],
                                        .kw = c->kernel[1],
                                        .sh = c->stride[0],
                                        .sw = c->stride[1],
                                        .ph = c->padding[0],
                                        .pw = c->padding[1]});
}

static elag_status maxpool_infer(elag_model *m, elag_layer *l)
{
    ELAG_TRY(pool_infer(m, l));
    l->aux_floats = elag_fshape_count(l->out); /* int32 argmax per output */
    return ELAG_OK;
}

static elag_status global_infer(elag_model *m, elag_layer *l)
{
    (void)m;
    return pool_window(
        l,
        (elag_window){.H = l->in.h, .W = l->in.w, .kh = l->in.h, .kw = l->in.w, .sh = 1, .sw = 1});
}

static int32_t *pool_argmax(elag_model *m, const elag_layer *l)
{
    return (int32_t *)(void *)(m->aux + l->aux_off);
}

static elag_status maxpool_forward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                   float *y)
{
    return elag_be_pool_forward(m->be, ELAG_POOL_MAX, y, pool_argmax(m, l), x, l->in.c * p->n,
                                &l->win);
}

static elag_status maxpool_backward(elag_model *m, elag_layer *l, const elag_pass *p,
                                    const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    if (!dx) return ELAG_OK;
    return elag_be_pool_backward(m->be, ELAG_POOL_MAX, dx, dy, pool_argmax(m, l), l->in.c * p->n,
                                 &l->win);
}

static elag_status avgpool_forward(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                                   float *y)
{
    return elag_be_pool_forward(m->be, ELAG_POOL_AVG, y, NULL, x, l->in.c * p->n, &l->win);
}

static elag_status avgpool_backward(elag_model *m, elag_layer *l, const elag_pass *p,
                                    const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    if (!dx) return ELAG_OK;
    return elag_be_pool_backward(m->be, ELAG_POOL_AVG, dx, dy, NULL, l->in.c * p->n, &l->win);
}

const elag_layer_kind_def elag_layer_maxpool = {
    .name = "maxpool",
    .prefix = "pool",
    .keys = pool_keys,
    .required = pool_required,
    .resolve = pool_resolve,
    .infer = maxpool_infer,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .spatial = 1,
};

const elag_layer_kind_def elag_layer_avgpool = {
    .name = "avgpool",
    .prefix = "avgpool",
    .keys = pool_keys,
    .required = pool_required,
    .resolve = pool_resolve,
    .infer = pool_infer,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .spatial = 1,
};

const elag_layer_kind_def elag_layer_global_avgpool = {
    .name = "global_avgpool",
    .prefix = "gap",
    .keys = global_keys,
    .infer = global_infer,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .spatial = 1,
};
