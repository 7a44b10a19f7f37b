/*
 * Mask updates over the model's contiguous mask buffer (see mask.h): the criterion's scores
 * (criterion.c), then selection. Every prunable tensor of the parameter registry takes
 * part, whatever its layer kind.
 */
#include "prune/mask.h"

#include "core/check.h"
#include "prune/criterion.h"

#include <math.h>

elag_status elag_mask_apply_all(elag_model *m)
{
    elag_backend *be = m->be;
    for (int q = 0; q < m->n_prunable; q++) {
        const elag_param *p = &m->reg[m->prunable[q]];
        const float *mask = m->masks + p->mask_off;
        float *w = m->params + p->offset;
        ELAG_TRY(elag_be_elementwise(be, ELAG_EW_MUL, p->count, w, w, mask, 0.0f));
        for (int s = 0; m->opt_state && s < m->opt_slots; s++) {
            float *state = m->opt_state + (size_t)s * m->n_params + p->offset;
            ELAG_TRY(elag_be_elementwise(be, ELAG_EW_MUL, p->count, state, state, mask, 0.0f));
        }
    }
    return ELAG_OK;
}

elag_status elag_mask_update(elag_model *m, elag_prune_criterion criterion,
                             elag_prune_scope scope, double sparsity)
{
    elag_backend *be = m->be;
    const elag_prune_criterion_def *crit = elag_prune_criterion_get(criterion);
    if (!crit) return elag_fail(ELAG_ERR_INPUT, "prune: unknown criterion %d", (int)criterion);
    if (m->n_prunable == 0) return ELAG_OK;
    for (int q = 0; q < m->n_prunable; q++) {
        const elag_param *p = &m->reg[m->prunable[q]];
        ELAG_TRY(crit->score(m, p, m->scores + p->mask_off));
    }
    if (scope == ELAG_PRUNE_SCOPE_GLOBAL) {
        size_t k = (size_t)llround(sparsity * (double)m->n_masked);
        ELAG_TRY(elag_be_mask_select(be, m->masks, m->scores, m->n_masked, k));
    } else {
        for (int q = 0; q < m->n_prunable; q++) {
            const elag_param *p = &m->reg[m->prunable[q]];
            size_t k = (size_t)llround(sparsity * (double)p->count);
            ELAG_TRY(elag_be_mask_select(be, m->masks + p->mask_off, m->scores + p->mask_off,
                                         p->count, k));
        }
    }
    return elag_mask_apply_all(m);
}
