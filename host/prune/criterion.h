/*
 * Pruning criteria: how important each prunable weight is. A criterion is one entry of the
 * table in criterion.c (indexed by elag_prune_criterion): a score function over one
 * registry tensor, and whether it needs gradients at the mask update. Selection
 * (mask.c) prunes the lowest scores; an entry already pruned must score below every live
 * one (-1 for magnitude) so that masks only grow as sparsity rises.
 */
#ifndef ELAG_PRUNE_CRITERION_H
#define ELAG_PRUNE_CRITERION_H

#include "model/model.h"

typedef struct elag_prune_criterion_def {
    const char *name; /* the prune.criterion spelling */
    int needs_grad;   /* the score reads m->grads of the step (computed before scoring) */
    /* score (device, p->count) for tensor p of m, given its current mask */
    elag_status (*score)(elag_model *m, const elag_param *p, float *score);
} elag_prune_criterion_def;

/* The table entry of criterion c, or NULL. */
const elag_prune_criterion_def *elag_prune_criterion_get(elag_prune_criterion c);

#endif /* ELAG_PRUNE_CRITERION_H */
