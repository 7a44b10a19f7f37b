/*
 * Scope and allocation: which sparsity each prunable tensor gets at a mask update whose
 * schedule target is s (schedule.h). Per tensor, in this order:
 *   - excluded (a prune.layers item with exclude: true, or prune.keep_first_last for the
 *     first and last prunable tensors when no item matched them): dense;
 *   - its own target (an item's target t): t * s / s_f, where s_f = prune.target, so the
 *     layer follows the schedule's shape and reaches t when the run reaches s_f;
 *   - otherwise it is in the pool: layer scope gives it s (uniform) or its ERK share of s;
 *     global scope ranks the whole pool together to s of the pool's entries;
 *   - then min/max bounds (scaled by s / s_f like targets) clamp what the pool gave it.
 */
#ifndef ELAG_PRUNE_ALLOCATION_H
#define ELAG_PRUNE_ALLOCATION_H

#include "model/model.h"

#define ELAG_PRUNE_RULE_NONE (-1)
#define ELAG_PRUNE_RULE_EDGE (-2) /* prune.keep_first_last */

/* What the config says about one prunable tensor. */
typedef struct elag_prune_tensor {
    int param;                  /* registry index */
    int rule;                   /* prune.layers item that applies, or ELAG_PRUNE_RULE_* */
    int exclude;                /* stays dense */
    double target;              /* its own final sparsity, or -1 */
    double min, max;            /* bounds on the pool's sparsity for it (final), or -1 */
    int group_rows, group_cols; /* the granularity's group (granularity.h) */
} elag_prune_tensor;

/* 1 when the tensor follows the global target (not excluded, no target of its own). */
int elag_prune_in_pool(const elag_prune_tensor *t);

/* Fills t[q] for each of m's prunable tensors from cfg->prune.layers (first matching
 * glob) and prune.keep_first_last. */
void elag_prune_alloc_resolve(const elag_config *cfg, const elag_model *m, elag_prune_tensor *t);

/* ERK (Evci et al. 2020): densities d[i] = min(1, c * raw[i]) of n tensors of count[i]
 * entries, c such that sum d[i] count[i] = density * sum count[i]; tensors whose density
 * would exceed 1 are kept dense and c is solved again for the others until none does. */
void elag_prune_erk(const double *raw, const size_t *count, int n, double density, double *d);

/* The ERK weight of a tensor: (sum of its dims) / (product of its dims), i.e.
 * (out + in) / (out * in) for a linear weight, (out + C + kh + kw) / (out * C * kh * kw)
 * for a conv weight. */
double elag_prune_erk_raw(const elag_param *p);

/* target[q] for each prunable tensor at schedule target s (final target s_final; pool
 * tensors in global scope get s and are ranked together by mask.c); then `lo`/`hi` get
 * the scaled bounds (-1 none). */
void elag_prune_alloc_targets(const elag_model *m, const elag_prune_tensor *t,
                              elag_prune_scope scope, elag_prune_distribution dist, double s,
                              double s_final, double *target, double *lo, double *hi);

#endif /* ELAG_PRUNE_ALLOCATION_H */
