/*
 * Dynamic sparse training at constant sparsity: RigL (Evci et al. 2020) and SET (Mocanu et
 * al. 2018). The run starts from one mask update to prune.target before step 0 (the
 * setup's criterion, granularity element and allocation: layer or global scope, uniform or
 * ERK, overrides); the schedule (schedule.h) then names the drop-and-grow steps and the
 * drop fraction f at each. At a drop-and-grow, per prunable tensor that is not excluded,
 * with A live weights and Z = count - A pruned ones, k = min(llround(f A), Z):
 *   drop   the k live weights of smallest |w| (ties: lower index first);
 *   grow   k of the Z entries that were pruned before this update (the ones just dropped
 *          are not candidates): RigL the k of largest |g| (the dense gradient of the
 *          step's batch, computed by the caller; ties: lower index first), SET k drawn
 *          uniformly (Philox: seed, tensor, step).
 * Each tensor keeps exactly its number of zeros. Grown weights start at 0 and their
 * optimizer state is reset to 0; dropped ones become 0 as any pruned weight.
 */
#ifndef ELAG_PRUNE_DST_H
#define ELAG_PRUNE_DST_H

#include "prune/mask.h"

typedef enum elag_dst_grow { ELAG_DST_GROW_GRADIENT = 0, ELAG_DST_GROW_RANDOM = 1 } elag_dst_grow;

/* One drop-and-grow of every non-excluded prunable tensor of m with drop fraction
 * `fraction` in [0, 1]; GRADIENT reads m->grads, RANDOM draws from (s->seed, s->step).
 * Needs s->tmp and s->tmp2 (a setup built for prune.method rigl or set). */
elag_status elag_dst_update(elag_model *m, const elag_prune_setup *s, elag_dst_grow grow,
                            double fraction);

/* The Philox stream of SET's growth scores of prunable tensor q at step t. */
uint64_t elag_dst_random_stream(int q, long step);

#endif /* ELAG_PRUNE_DST_H */
