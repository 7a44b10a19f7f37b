/*
 * Optimizer step over every trainable tensor of the registry: the backend's fused SGD or
 * AdamW kernel per tensor, with the weight's mask when pruning is active, so pruned
 * weights and their optimizer state stay exactly zero. A weight that trains on its sparse
 * pattern (sparse_step.h) runs the same kernel on its values arrays, unmasked (pruned
 * entries have no storage): per kept entry the arithmetic is the dense step's.
 */
#include "train/train.h"

#include "core/check.h"
#include "train/sparse_step.h"

/* One fused step over n entries: w, g, s0 (momentum / exp_avg), s1 (exp_avg_sq, AdamW). */
static elag_status step_values(elag_backend *be, const elag_config *cfg, float *w, const float *g,
                               float *s0, float *s1, const float *mask, size_t n, double lr, long t)
{
    if (cfg->train.optimizer.type == ELAG_OPTIMIZER_ADAMW) {
        return elag_be_adamw_step(
            be, w, g, s0, s1, mask, n, (float)lr, (float)cfg->train.optimizer.beta1,
            (float)cfg->train.optimizer.beta2, (float)cfg->train.optimizer.eps,
            (float)cfg->train.optimizer.weight_decay, (int)t);
    }
    return elag_be_sgd_step(be, w, g, s0, mask, n, (float)lr, (float)cfg->train.optimizer.momentum,
                            (float)cfg->train.optimizer.weight_decay,
                            cfg->train.optimizer.nesterov);
}

static elag_status step_tensor(elag_model *m, const elag_config *cfg, size_t off, size_t n,
                               const float *mask, double lr, long t)
{
    float *s1 = m->opt_slots > 1 ? m->opt_state + m->n_params + off : NULL;
    return step_values(m->be, cfg, m->params + off, m->grads + off, m->opt_state + off, s1, mask, n,
                       lr, t);
}

/* The live pattern's values, then its weights for the next step's products. */
static elag_status step_pattern(elag_model *m, const elag_config *cfg,
                                const elag_sparse_step_layer *L, double lr, long t)
{
    ELAG_TRY(step_values(m->be, cfg, L->w, L->g, L->s0, L->s1, NULL, (size_t)L->nnz, lr, t));
    return elag_be_sparse_values_set(m->be, L->p, L->w);
}

elag_status elag_optimizer_step(elag_model *m, const elag_config *cfg, double lr, long t,
                                int masked)
{
    for (int j = 0; j < m->n_reg; j++) {
        const elag_param *p = &m->reg[j];
        if (!p->trainable) continue;
        const elag_sparse_step_layer *L = elag_sparse_step_of(m, j);
        if (L) {
            ELAG_TRY(step_pattern(m, cfg, L, lr, t));
            continue;
        }
        const float *mask = masked && p->prunable ? m->masks + p->mask_off : NULL;
        ELAG_TRY(step_tensor(m, cfg, p->offset, p->count, mask, lr, t));
    }
    return ELAG_OK;
}
