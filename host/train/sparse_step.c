/*
 * The trainer's sparse layers (sparse_step.h): which layers train on their pattern, the
 * patterns built after each mask update, and the values arrays scattered back into the
 * dense registry before anything dense reads it. The step itself runs in the layer's
 * forward and backward (layers/linear.c, layers/conv2d.c) and the optimizer (optim.c).
 */
#include "train/sparse_step.h"

#include "core/check.h"

#include <string.h>

elag_status elag_sparse_step_init(elag_sparse_step *s, const elag_config *cfg, elag_backend *be)
{
    memset(s, 0, sizeof *s);
    s->be = be;
    s->mode = cfg->train.sparse_compute;
    char why[200] = "";
    const elag_support ans = elag_be_supports(be, ELAG_OP_SPARSE_TRAIN, NULL, why, sizeof why);
    /* OPT_IN (a step not yet verified on its device: CUDA's) runs when asked for by name
     * only: `auto` trains dense there, so no GPU user's results change by default */
    s->supported = s->mode == ELAG_SPARSE_COMPUTE_ON
                       ? ans != ELAG_SUPPORT_NO
                       : ans == ELAG_SUPPORT_FP32 || ans == ELAG_SUPPORT_TF32;
    if (s->mode == ELAG_SPARSE_COMPUTE_ON && !s->supported)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: train.sparse_compute is 'on' but device %s has no sparse "
                         "training step (%s); use 'auto' (trains dense there) or 'off'",
                         cfg->source, be->name, why);
    return ELAG_OK;
}

static void layer_free(elag_backend *be, elag_sparse_step_layer *L)
{
    elag_be_sparse_pattern_destroy(be, L->p);
    float *bufs[] = {L->w, L->g, L->s0, L->s1};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) elag_be_release(be, bufs[i]);
    memset(L, 0, sizeof *L);
}

static elag_status alloc_vals(elag_backend *be, int64_t nnz, float **out)
{
    return elag_be_alloc(be, (size_t)(nnz > 0 ? nnz : 1) * sizeof(float), (void **)out);
}

/* Whether layer l trains on its pattern; *j its weight's registry index. */
static elag_status wants_pattern(const elag_sparse_step *s, elag_model *m, const elag_layer *l,
                                 int *j, int *yes)
{
    *yes = 0;
    if (!l->kind->sparse_train || l->n_params < 1) return ELAG_OK;
    *j = l->first_param;
    const elag_param *p = &m->reg[*j];
    if (!p->prunable || !p->trainable || p->role != ELAG_PARAM_WEIGHT) return ELAG_OK;
    if (s->mode == ELAG_SPARSE_COMPUTE_ON) {
        *yes = 1;
        return ELAG_OK;
    }
    size_t kept;
    ELAG_TRY(elag_be_count_nonzero(s->be, m->masks + p->mask_off, p->count, &kept));
    /* a layer over planes (conv2d) competes with the direct convolution: its own bound, on
     * a CPU with few threads only, where it was measured to win (sparse_step.h) */
    const int conv_ok =
        s->be->kind == ELAG_DEVICE_CPU && s->be->threads <= ELAG_SPARSE_AUTO_CONV_MAX_THREADS;
    const double bound = !l->kind->spatial ? ELAG_SPARSE_AUTO_DENSITY
                         : conv_ok         ? ELAG_SPARSE_AUTO_DENSITY_CONV
                                           : 0.0;
    *yes = (double)kept < bound * (double)p->count;
    return ELAG_OK;
}

static elag_status build_layer(elag_sparse_step *s, elag_model *m, elag_layer *l, int j)
{
    elag_backend *be = s->be;
    const elag_param *p = &m->reg[j];
    elag_sparse_step_layer *L = &s->layers[l->index];
    ELAG_ASSERT(L->p == NULL);
    L->param = j;
    L->max_n = l->pattern_cols > 0 ? l->pattern_cols : m->max_batch; /* conv2d: its columns */
    ELAG_TRY(elag_be_sparse_pattern_create(be, m->masks + p->mask_off, p->rows, p->cols, L->max_n,
                                           &L->p));
    L->nnz = elag_sparse_pattern_nnz(L->p);
    ELAG_TRY(alloc_vals(be, L->nnz, &L->w));
    ELAG_TRY(alloc_vals(be, L->nnz, &L->g));
    ELAG_TRY(alloc_vals(be, L->nnz, &L->s0));
    if (m->opt_slots > 1) ELAG_TRY(alloc_vals(be, L->nnz, &L->s1));
    ELAG_TRY(elag_be_sparse_gather(be, L->p, m->params + p->offset, L->w));
    ELAG_TRY(elag_be_sparse_gather(be, L->p, m->opt_state + p->offset, L->s0));
    if (L->s1)
        ELAG_TRY(elag_be_sparse_gather(be, L->p, m->opt_state + m->n_params + p->offset, L->s1));
    ELAG_TRY(elag_be_fill(be, L->g, (size_t)(L->nnz > 0 ? L->nnz : 1), 0.0f));
    ELAG_TRY(elag_be_sparse_values_set(be, L->p, L->w));
    /* what sync_grads leaves at pruned entries: no stale dense gradient survives */
    ELAG_TRY(elag_be_fill(be, m->grads + p->offset, p->count, 0.0f));
    l->train_sp = L;
    s->n_live++;
    return ELAG_OK;
}

elag_status elag_sparse_step_build(elag_sparse_step *s, elag_model *m)
{
    ELAG_ASSERT(s->n_live == 0);
    if (s->mode == ELAG_SPARSE_COMPUTE_OFF || !s->supported || !m->training) return ELAG_OK;
    for (int i = 0; i < m->n_layers; i++) {
        elag_layer *l = &m->layers[i];
        int j = -1, yes;
        ELAG_TRY(wants_pattern(s, m, l, &j, &yes));
        if (!yes) continue;
        elag_status st = build_layer(s, m, l, j);
        if (st != ELAG_OK) {
            elag_sparse_step_free(s, m);
            return st;
        }
    }
    return elag_be_sync(s->be);
}

static elag_status sync_layers(elag_sparse_step *s, elag_model *m, int grads)
{
    for (int i = 0; i < m->n_layers && s->n_live > 0; i++) {
        const elag_sparse_step_layer *L = m->layers[i].train_sp;
        if (!L) continue;
        const elag_param *p = &m->reg[L->param];
        ELAG_TRY(elag_be_sparse_scatter(s->be, L->p, L->w, m->params + p->offset));
        ELAG_TRY(elag_be_sparse_scatter(s->be, L->p, L->s0, m->opt_state + p->offset));
        if (L->s1)
            ELAG_TRY(
                elag_be_sparse_scatter(s->be, L->p, L->s1, m->opt_state + m->n_params + p->offset));
        if (grads) ELAG_TRY(elag_be_sparse_scatter(s->be, L->p, L->g, m->grads + p->offset));
    }
    return ELAG_OK;
}

elag_status elag_sparse_step_sync(elag_sparse_step *s, elag_model *m)
{
    return sync_layers(s, m, 0);
}

elag_status elag_sparse_step_sync_grads(elag_sparse_step *s, elag_model *m)
{
    return sync_layers(s, m, 1);
}

elag_status elag_sparse_step_release(elag_sparse_step *s, elag_model *m)
{
    if (s->n_live == 0) return ELAG_OK;
    ELAG_TRY(elag_sparse_step_sync(s, m));
    ELAG_TRY(elag_be_sync(s->be));
    elag_sparse_step_free(s, m);
    return ELAG_OK;
}

void elag_sparse_step_free(elag_sparse_step *s, elag_model *m)
{
    if (!s || !s->be) return;
    for (int i = 0; i < ELAG_MAX_LAYERS; i++) {
        if (m && i < m->n_layers) m->layers[i].train_sp = NULL;
        if (s->layers[i].p || s->layers[i].w) layer_free(s->be, &s->layers[i]);
    }
    s->n_live = 0;
}

const elag_sparse_step_layer *elag_sparse_step_of(const elag_model *m, int j)
{
    const elag_sparse_step_layer *L = m->layers[m->reg[j].layer].train_sp;
    return L && L->param == j ? L : NULL;
}
