/*
 * Optimizer step over every trainable tensor of the registry: the backend's fused SGD or
 * AdamW kernel per tensor, with the weight's mask when pruning is active, so pruned
 * weights and their optimizer state stay exactly zero.
 */
#include "train/train.h"

#include "core/check.h"

static elag_status step_tensor(elag_model *m, const elag_config *cfg, size_t off, size_t n,
                               const float *mask, double lr, long t)
{
    elag_backend *be = m->be;
    float *w = m->params + off;
    const float *g = m->grads + off;
    float *s0 = m->opt_state + off;
    if (cfg->train.optimizer.type == ELAG_OPTIMIZER_ADAMW) {
        float *s1 = m->opt_state + m->n_params + off;
        return elag_be_adamw_step(
            be, w, g, s0, s1, mask, n, (float)lr, (float)cfg->train.optimizer.beta1,
            (float)cfg->train.optimizer.beta2, (float)cfg->train.optimizer.eps,
            (float)cfg->train.optimizer.weight_decay, (int)t);
    }
    return elag_be_sgd_step(be, w, g, s0, mask, n, (float)lr, (float)cfg->train.optimizer.momentum,
                            (float)cfg->train.optimizer.weight_decay,
                            cfg->train.optimizer.nesterov);
}

elag_status elag_optimizer_step(elag_model *m, const elag_config *cfg, double lr, long t,
                                int masked)
{
    for (int j = 0; j < m->n_reg; j++) {
        const elag_param *p = &m->reg[j];
        if (!p->trainable) continue;
        const float *mask = masked && p->prunable ? m->masks + p->mask_off : NULL;
        ELAG_TRY(step_tensor(m, cfg, p->offset, p->count, mask, lr, t));
    }
    return ELAG_OK;
}
