/*
 * Magnitude mask updates over the model's contiguous mask buffer (see mask.h).
 */
#include "prune/mask.h"

#include "core/check.h"

#include <math.h>

elag_status elag_mask_apply_all(elag_model *m)
{
    elag_backend *be = m->be;
    for (int p = 0; p < m->n_prunable; p++) {
        const elag_layer *l = &m->layers[m->prunable_layers[p]];
        size_t n = (size_t)l->out * l->in;
        const float *mask = m->masks + l->mask_off;
        ELAG_TRY(be->mask_apply(be, m->params + l->w_off, mask, n));
        for (int s = 0; s < m->opt_slots; s++)
            ELAG_TRY(be->mask_apply(be, m->opt_state + (size_t)s * m->n_params + l->w_off, mask,
                                    n));
    }
    return ELAG_OK;
}

elag_status elag_mask_update(elag_model *m, elag_prune_scope scope, double sparsity)
{
    elag_backend *be = m->be;
    if (m->n_prunable == 0) return ELAG_OK;
    for (int p = 0; p < m->n_prunable; p++) {
        const elag_layer *l = &m->layers[m->prunable_layers[p]];
        size_t n = (size_t)l->out * l->in;
        ELAG_TRY(be->score_magnitude(be, m->scores + l->mask_off, m->params + l->w_off,
                                     m->masks + l->mask_off, n));
    }
    if (scope == ELAG_PRUNE_SCOPE_GLOBAL) {
        size_t k = (size_t)llround(sparsity * (double)m->n_masked);
        ELAG_TRY(be->mask_select(be, m->masks, m->scores, m->n_masked, k));
    } else {
        for (int p = 0; p < m->n_prunable; p++) {
            const elag_layer *l = &m->layers[m->prunable_layers[p]];
            size_t n = (size_t)l->out * l->in;
            size_t k = (size_t)llround(sparsity * (double)n);
            ELAG_TRY(be->mask_select(be, m->masks + l->mask_off, m->scores + l->mask_off, n, k));
        }
    }
    return elag_mask_apply_all(m);
}
