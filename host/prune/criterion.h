/*
 * Pruning criteria: how important each prunable weight is. A criterion is one entry of the
 * table in criterion.c (indexed by elag_prune_criterion): a score function over one
 * prunable tensor, and what it needs around it. Selection (granularity.c) prunes the
 * lowest scores; an entry already pruned must score below every live one (-1 for the
 * non-negative criteria, -FLT_MAX for movement) so that masks only grow as sparsity
 * rises. The criteria (w a weight, g its gradient on one batch):
 *   magnitude      |w|
 *   random         u ~ U[0, 1) from Philox(seed, stream of the tensor and the update step)
 *   taylor         EMA of |w g| over training steps, beta = prune.taylor_beta, folded with
 *                  the gradient of the update's own batch: beta * ema + (1 - beta) |w g|
 *   snip           sum of |w g| over prune.snip_batches batches, at initialisation
 *   movement       -sum over steps of w g, plus the update's own -w g (signed)
 *   soft_movement  the same score, but pruned entries keep their (frozen) score instead of
 *                  ranking lowest, so one may come back (at 0) when live scores fall below
 * Gradient criteria (needs_grad) score with m->grads of a gradient pass the caller runs on
 * the step's batch before elag_mask_update (train.c; SNIP: one pass per batch, each
 * followed by elag_prune_gather). Criteria with per-step state (taylor, movement) are fed
 * after every training step's backward (elag_prune_observe); the state goes into
 * checkpoints, so a resumed run scores what an uninterrupted one would.
 */
#ifndef ELAG_PRUNE_CRITERION_H
#define ELAG_PRUNE_CRITERION_H

#include "model/model.h"

typedef struct elag_prune_setup elag_prune_setup;

typedef struct elag_prune_criterion_def {
    const char *name;  /* the prune.criterion spelling */
    int needs_grad;    /* the score reads m->grads of a gradient pass run before scoring */
    int signed_scores; /* live scores may be negative: element (and nm) granularity only */
    /* after every training step's backward, for all prunable tensors (state update); NULL */
    elag_status (*observe)(elag_model *m, const elag_prune_setup *s);
    /* after each gradient pass of an update (SNIP sums over its batches); NULL */
    elag_status (*gather)(elag_model *m, const elag_prune_setup *s);
    /* score (device, p->count) for tensor q of the setup (q indexes m->prunable), given
     * its current mask */
    elag_status (*score)(elag_model *m, const elag_prune_setup *s, int q, float *score);
} elag_prune_criterion_def;

/* The table entry of criterion c, or NULL. */
const elag_prune_criterion_def *elag_prune_criterion_get(elag_prune_criterion c);

/* 1 when criterion c keeps per-entry state across training steps (observe): the state
 * buffer (setup->state) is then checkpointed. */
int elag_prune_criterion_has_state(const elag_prune_criterion_def *c);

/* The Philox stream of the random criterion's scores of prunable tensor q at step t. */
uint64_t elag_prune_random_stream(int q, long step);

#endif /* ELAG_PRUNE_CRITERION_H */
