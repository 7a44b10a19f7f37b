/*
 * Mask updates over the model's contiguous mask buffer (see mask.h): the prune setup built
 * once from the config and the model, then per update the criterion's scores, each
 * tensor's sparsity (allocation.c) and the granularity's selection (granularity.c). Every
 * prunable tensor of the parameter registry takes part, whatever its layer kind.
 */
#include "prune/mask.h"

#include "core/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

void elag_prune_setup_free(elag_prune_setup *s)
{
    if (!s) return;
    if (s->be) {
        elag_be_release(s->be, s->scratch);
        elag_be_release(s->be, s->state);
        elag_be_release(s->be, s->tmp);
        elag_be_release(s->be, s->tmp2);
    }
    memset(s, 0, sizeof *s);
}

/* One zeroed (m->n_masked) device buffer of the setup. */
static elag_status setup_alloc(elag_model *m, float **out)
{
    elag_status st = elag_be_alloc(m->be, m->n_masked * sizeof(float), (void **)out);
    if (st) *out = NULL;
    return st;
}

elag_status elag_prune_setup_init(elag_prune_setup *s, const elag_config *cfg, elag_model *m)
{
    memset(s, 0, sizeof *s);
    s->be = m->be;
    s->criterion = elag_prune_criterion_get(cfg->prune.criterion);
    s->granularity = elag_prune_granularity_get(cfg->prune.granularity);
    if (!s->criterion)
        return elag_fail(ELAG_ERR_INPUT, "prune: unknown criterion %d", (int)cfg->prune.criterion);
    if (!s->granularity)
        return elag_fail(ELAG_ERR_INPUT, "prune: unknown granularity %d",
                         (int)cfg->prune.granularity);
    if (s->criterion->signed_scores && cfg->prune.granularity != ELAG_PRUNE_GRANULARITY_ELEMENT &&
        cfg->prune.granularity != ELAG_PRUNE_GRANULARITY_NM)
        return elag_fail(ELAG_ERR_INPUT, "%s%sprune.criterion %s has signed scores: granularity %s "
                         "would rank them by a norm (use element)", cfg->source,
                         cfg->source[0] ? ": " : "", s->criterion->name, s->granularity->name);
    s->scope = cfg->prune.scope;
    s->distribution = cfg->prune.distribution;
    s->norm = cfg->prune.norm;
    s->n = cfg->prune.n;
    s->m = cfg->prune.m;
    s->block[0] = cfg->prune.block[0];
    s->block[1] = cfg->prune.block[1];
    s->final_target = cfg->prune.target;
    s->seed = cfg->seed;
    s->taylor_beta = cfg->prune.taylor_beta;
    if (s->scope == ELAG_PRUNE_SCOPE_GLOBAL && !s->granularity->select_global)
        return elag_fail(ELAG_ERR_INPUT, "%s%sprune.granularity %s has no global scope",
                         cfg->source, cfg->source[0] ? ": " : "", s->granularity->name);
    s->n_tensors = m->n_prunable;
    elag_prune_alloc_resolve(cfg, m, s->tensors);
    for (int q = 0; q < m->n_prunable; q++) {
        elag_prune_tensor *t = &s->tensors[q];
        if (elag_prune_in_pool(t)) {
            s->n_pool++;
            s->pool_count += m->reg[t->param].count;
        }
        if (t->exclude) continue; /* dense: any shape will do */
        elag_status st =
            s->granularity->group(s, m, &m->reg[t->param], &t->group_rows, &t->group_cols);
        if (st == ELAG_ERR_INPUT && cfg->source[0]) { /* name the config it came from */
            char msg[768];
            snprintf(msg, sizeof msg, "%s", elag_last_error());
            return elag_fail(st, "%s: %s", cfg->source, msg);
        }
        ELAG_TRY(st);
    }
    int dst = cfg->prune.method == ELAG_PRUNE_METHOD_RIGL || cfg->prune.method == ELAG_PRUNE_METHOD_SET;
    int global_scratch = s->scope == ELAG_PRUNE_SCOPE_GLOBAL &&
                         cfg->prune.granularity == ELAG_PRUNE_GRANULARITY_ELEMENT &&
                         s->n_pool < m->n_prunable;
    const elag_prune_criterion_def *c = s->criterion;
    if (m->n_masked == 0) return ELAG_OK;
    if (global_scratch) ELAG_TRY(setup_alloc(m, &s->scratch));
    if (c->observe || c->gather) ELAG_TRY(setup_alloc(m, &s->state));
    if (c->needs_grad || dst) ELAG_TRY(setup_alloc(m, &s->tmp));
    if (dst) ELAG_TRY(setup_alloc(m, &s->tmp2));
    return ELAG_OK;
}

elag_status elag_prune_observe(elag_model *m, const elag_prune_setup *s)
{
    return s->criterion->observe ? s->criterion->observe(m, s) : ELAG_OK;
}

elag_status elag_prune_gather(elag_model *m, const elag_prune_setup *s)
{
    return s->criterion->gather ? s->criterion->gather(m, s) : ELAG_OK;
}

elag_status elag_prune_gather_reset(const elag_prune_setup *s, const elag_model *m)
{
    return s->criterion->gather ? elag_be_fill(s->be, s->state, m->n_masked, 0.0f) : ELAG_OK;
}

/* A gradient criterion with no gradient: the caller ran no gradient pass (or the loss is
 * flat), and every score would tie. */
static elag_status check_grads(elag_model *m, const elag_prune_setup *s)
{
    size_t nonzero = 0;
    for (int q = 0; q < m->n_prunable && nonzero == 0 && m->grads; q++) {
        const elag_param *p = &m->reg[m->prunable[q]];
        size_t nz;
        ELAG_TRY(elag_be_count_nonzero(m->be, m->grads + p->offset, p->count, &nz));
        nonzero += nz;
    }
    if (nonzero == 0)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "prune: criterion %s scores with gradients, but every gradient of the "
                         "prunable weights is zero at step %ld (no gradient pass ran before "
                         "the mask update)",
                         s->criterion->name, s->step);
    return ELAG_OK;
}

/* In global scope the pool got one threshold; a tensor whose share falls outside its
 * min/max bounds is selected again on its own at the nearest bound. */
static elag_status mask_clamp(elag_model *m, const elag_prune_setup *s, int q, double lo, double hi)
{
    const elag_param *p = &m->reg[s->tensors[q].param];
    size_t nonzero;
    ELAG_TRY(elag_be_count_nonzero(m->be, m->masks + p->mask_off, p->count, &nonzero));
    size_t zeros = p->count - nonzero;
    if (lo >= 0 && zeros < (size_t)llround(lo * (double)p->count))
        return s->granularity->select(m, s, q, lo);
    if (hi >= 0 && zeros > (size_t)llround(hi * (double)p->count))
        return s->granularity->select(m, s, q, hi);
    return ELAG_OK;
}

elag_status elag_mask_update(elag_model *m, const elag_prune_setup *s, double sparsity)
{
    if (m->n_prunable == 0) return ELAG_OK;
    ELAG_ASSERT(s && s->n_tensors == m->n_prunable && s->criterion && s->granularity);
    double target[ELAG_MAX_PARAMS], lo[ELAG_MAX_PARAMS], hi[ELAG_MAX_PARAMS];
    elag_prune_alloc_targets(m, s->tensors, s->scope, s->distribution, sparsity, s->final_target,
                             target, lo, hi);
    if (s->criterion->needs_grad) ELAG_TRY(check_grads(m, s));
    for (int q = 0; q < m->n_prunable; q++) {
        if (s->tensors[q].exclude) continue;
        const elag_param *p = &m->reg[m->prunable[q]];
        ELAG_TRY(s->criterion->score(m, s, q, m->scores + p->mask_off));
    }
    int global = s->scope == ELAG_PRUNE_SCOPE_GLOBAL;
    if (global && s->n_pool > 0) ELAG_TRY(s->granularity->select_global(m, s, sparsity));
    for (int q = 0; q < m->n_prunable; q++) {
        const elag_prune_tensor *t = &s->tensors[q];
        const elag_param *p = &m->reg[t->param];
        if (t->exclude)
            ELAG_TRY(elag_be_fill(m->be, m->masks + p->mask_off, p->count, 1.0f));
        else if (!global || !elag_prune_in_pool(t))
            ELAG_TRY(s->granularity->select(m, s, q, target[q]));
        else if (lo[q] >= 0 || hi[q] >= 0)
            ELAG_TRY(mask_clamp(m, s, q, lo[q], hi[q]));
    }
    return elag_mask_apply_all(m);
}
