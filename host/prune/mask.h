/*
 * Mask updates: score every prunable weight (a criterion of criterion.h), select the entries to prune
 * for a target sparsity in layer or global scope, and apply the masks to weights and
 * optimizer state so pruned weights are exactly zero. With layer scope a tensor of n
 * weights at sparsity s gets exactly llround(s * n) zeros; with global scope the
 * llround(s * N) smallest scores over all N prunable weights are pruned, ties broken
 * by position (layer order, then row-major index).
 */
#ifndef ELAG_PRUNE_MASK_H
#define ELAG_PRUNE_MASK_H

#include "model/model.h"

/* Recomputes m->masks for `sparsity` from the criterion's scores and applies them. */
elag_status elag_mask_update(elag_model *m, elag_prune_criterion criterion,
                             elag_prune_scope scope, double sparsity);

/* Applies m->masks to the prunable weights and their optimizer state. */
elag_status elag_mask_apply_all(elag_model *m);

#endif /* ELAG_PRUNE_MASK_H */
