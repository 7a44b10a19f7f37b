/*
 * Scope and allocation (see allocation.h): the per-layer rules from the config, and each
 * prunable tensor's sparsity at a mask update from the schedule's target.
 */
#include "prune/allocation.h"

#include <math.h>

int elag_prune_in_pool(const elag_prune_tensor *t)
{
    return !t->exclude && t->target < 0;
}

void elag_prune_alloc_resolve(const elag_config *cfg, const elag_model *m, elag_prune_tensor *t)
{
    for (int q = 0; q < m->n_prunable; q++) {
        const elag_param *p = &m->reg[m->prunable[q]];
        elag_prune_tensor *x = &t[q];
        x->param = m->prunable[q];
        x->rule = elag_config_prune_layer_match(cfg, m->layers[p->layer].cfg.name);
        x->exclude = 0;
        x->target = x->min = x->max = -1;
        x->group_rows = x->group_cols = 1;
        if (x->rule >= 0) {
            const elag_prune_layer_config *o = &cfg->prune.layers[x->rule];
            x->exclude = o->exclude;
            x->target = o->target;
            x->min = o->min;
            x->max = o->max;
        } else if (cfg->prune.keep_first_last && (q == 0 || q == m->n_prunable - 1)) {
            /* the policy yields to an explicit item for the same layer */
            x->rule = ELAG_PRUNE_RULE_EDGE;
            x->exclude = 1;
        }
    }
}

double elag_prune_erk_raw(const elag_param *p)
{
    double sum = 0, prod = 1;
    for (int d = 0; d < p->ndim; d++) {
        sum += (double)p->shape[d];
        prod *= (double)p->shape[d];
    }
    return sum / prod;
}

void elag_prune_erk(const double *raw, const size_t *count, int n, double density, double *d)
{
    /* d[i] == 1 marks a tensor kept dense; the others share what is left of the budget */
    double total = 0;
    for (int i = 0; i < n; i++) {
        total += (double)count[i];
        d[i] = 0;
    }
    for (;;) {
        double budget = density * total, weighted = 0;
        for (int i = 0; i < n; i++) {
            if (d[i] == 1.0)
                budget -= (double)count[i];
            else
                weighted += raw[i] * (double)count[i];
        }
        if (weighted <= 0) return; /* every tensor is dense */
        double c = budget > 0 ? budget / weighted : 0;
        int capped = 0;
        for (int i = 0; i < n; i++)
            if (d[i] != 1.0 && c * raw[i] > 1.0) {
                d[i] = 1.0;
                capped = 1;
            }
        if (capped) continue;
        for (int i = 0; i < n; i++)
            if (d[i] != 1.0) d[i] = c * raw[i];
        return;
    }
}

void elag_prune_alloc_targets(const elag_model *m, const elag_prune_tensor *t,
                              elag_prune_scope scope, elag_prune_distribution dist, double s,
                              double s_final, double *target, double *lo, double *hi)
{
    /* overrides are final sparsities: scaled by how far the schedule has come */
    double r = s_final > 0 ? s / s_final : 1.0;
    if (r > 1) r = 1;
    double raw[ELAG_MAX_PARAMS], density[ELAG_MAX_PARAMS];
    size_t count[ELAG_MAX_PARAMS];
    int pool[ELAG_MAX_PARAMS], n_pool = 0;
    for (int q = 0; q < m->n_prunable; q++) {
        const elag_param *p = &m->reg[t[q].param];
        lo[q] = t[q].min >= 0 ? t[q].min * r : -1;
        hi[q] = t[q].max >= 0 ? t[q].max * r : -1;
        if (t[q].exclude)
            target[q] = 0;
        else if (t[q].target >= 0)
            target[q] = t[q].target * r;
        else {
            target[q] = s;
            raw[n_pool] = elag_prune_erk_raw(p);
            count[n_pool] = p->count;
            pool[n_pool++] = q;
        }
    }
    if (scope == ELAG_PRUNE_SCOPE_LAYER && dist == ELAG_PRUNE_DISTRIBUTION_ERK && n_pool > 0) {
        elag_prune_erk(raw, count, n_pool, 1.0 - s, density);
        for (int i = 0; i < n_pool; i++) {
            double x = 1.0 - density[i];
            target[pool[i]] = x < 0 ? 0 : x;
        }
    }
    if (scope != ELAG_PRUNE_SCOPE_LAYER) return; /* global: mask.c clamps after ranking */
    for (int i = 0; i < n_pool; i++) {
        int q = pool[i];
        if (lo[q] >= 0 && target[q] < lo[q]) target[q] = lo[q];
        if (hi[q] >= 0 && target[q] > hi[q]) target[q] = hi[q];
    }
}
