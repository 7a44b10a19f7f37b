/*
 * Mask updates. The pipeline, each step its own file:
 *   criterion (criterion.c)      a score per element of each prunable tensor;
 *   granularity (granularity.c)  the pattern: scores -> masks of elements, N:M groups,
 *                                blocks or rows;
 *   allocation (allocation.c)    each tensor's sparsity from the schedule's target: layer or
 *                                global scope, uniform or ERK, per-layer overrides;
 *   schedule (schedule.c)        when masks change and the target then.
 * elag_prune_setup is the first three resolved for one model, built once (and checked:
 * every pattern must fit its tensor) before training starts. elag_mask_update then scores,
 * selects and applies the masks to the weights and optimizer state so pruned weights are
 * exactly zero. With element granularity and layer scope a tensor of n weights at
 * sparsity s gets exactly llround(s * n) zeros; in global scope the llround(s * N)
 * smallest scores over the N entries of the pool are pruned, ties broken by position
 * (layer order, then row-major index).
 */
#ifndef ELAG_PRUNE_MASK_H
#define ELAG_PRUNE_MASK_H

#include "model/model.h"
#include "prune/allocation.h"
#include "prune/criterion.h"
#include "prune/granularity.h"

struct elag_prune_setup {
    const elag_prune_criterion_def *criterion;
    const elag_prune_granularity_def *granularity;
    elag_prune_scope scope;
    elag_prune_distribution distribution;
    elag_prune_norm norm; /* group scores */
    int n, m;             /* nm */
    int block[2];         /* (rows, cols) */
    double final_target;  /* prune.target (overrides scale by s / final_target) */
    int n_tensors;        /* = m->n_prunable; tensors[q] is m->prunable[q] */
    elag_prune_tensor tensors[ELAG_MAX_PARAMS];
    int n_pool;        /* tensors in the global pool */
    size_t pool_count; /* their entries */
    elag_backend *be;  /* not owned */
    float *scratch;    /* device (m->n_masked): pool scores with +inf elsewhere, for global
                        * element selection when the pool is not every tensor; else NULL */
    /* criteria (criterion.h) and drop-and-grow (dst.h) */
    float *state;       /* device (m->n_masked): taylor EMA, movement sum, snip sum; or NULL */
    float *tmp, *tmp2;  /* device (m->n_masked) scratch: tmp for gradient criteria, random
                         * and dst, tmp2 for dst; else NULL */
    uint64_t seed;      /* the run's seed (random criterion, SET growth) */
    long step;          /* the step of the update in progress (set by the caller) */
    double taylor_beta; /* prune.taylor_beta */
};

/* Resolves cfg->prune for model m (criterion, granularity, allocation rules) and checks
 * that every tensor that is pruned fits its pattern: ELAG_ERR_INPUT naming the layer (and
 * cfg->source) when a block does not divide its weight or a row is not whole N:M groups.
 * Free with elag_prune_setup_free. */
elag_status elag_prune_setup_init(elag_prune_setup *s, const elag_config *cfg, elag_model *m);
void elag_prune_setup_free(elag_prune_setup *s); /* NULL safe */

/* Recomputes m->masks for the schedule target `sparsity` and applies them. A criterion
 * that needs gradients (s->criterion->needs_grad) reads m->grads: the caller runs a
 * gradient pass first; when every gradient of the prunable tensors is zero (none ran) the
 * update fails with ELAG_ERR_INTERNAL instead of ranking all-equal scores by index. */
elag_status elag_mask_update(elag_model *m, const elag_prune_setup *s, double sparsity);

/* After a training step's backward: the criterion's per-step state update (no-op for
 * criteria without one). */
elag_status elag_prune_observe(elag_model *m, const elag_prune_setup *s);
/* After each gradient pass of an update: the criterion's per-batch sum (SNIP); no-op for
 * others. elag_prune_gather_reset zeroes that sum before the first pass. */
elag_status elag_prune_gather(elag_model *m, const elag_prune_setup *s);
elag_status elag_prune_gather_reset(const elag_prune_setup *s, const elag_model *m);

/* Applies m->masks to the prunable weights and their optimizer state. */
elag_status elag_mask_apply_all(elag_model *m);

#endif /* ELAG_PRUNE_MASK_H */
