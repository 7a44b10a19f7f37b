/*
 * Pruning granularities: the pattern a mask takes. One entry of the table in granularity.c
 * per elag_prune_granularity value turns the element scores of the criterion (criterion.h)
 * into masks that honour the pattern exactly at every update:
 *   element  any weight (selection on the device, backend mask_select);
 *   nm       in every row of the (out, in) view (conv: (out, C*kh*kw)), each group of M
 *            consecutive entries keeps its N best: exactly M-N zeros per group;
 *   block    (r, c) blocks of that view, scored by the norm of their scores, pruned whole;
 *   neuron, channel  rows of that view (a linear layer's neurons, a conv layer's filters),
 *            scored by the norm of the row; on either kind both mean the same rows.
 * Structured selection reads the mask as well as the scores: a group's norm counts its
 * pruned entries as 0 and a group with no live entry ranks below every other, so masks only
 * grow as sparsity rises whatever sign the criterion's scores have. It runs on the host
 * (scores and masks copied over and the mask copied back): mask updates are rare (every
 * prune.frequency steps) and a group sort is simpler there than on a device.
 */
#ifndef ELAG_PRUNE_GRANULARITY_H
#define ELAG_PRUNE_GRANULARITY_H

#include "model/model.h"

typedef struct elag_prune_setup elag_prune_setup;

typedef struct elag_prune_granularity_def {
    const char *name; /* the prune.granularity spelling */
    /* The group of registry tensor p as (rows, cols) of its (p->rows, p->cols) view, for
     * the setup's n, m and block; ELAG_ERR_INPUT naming the layer when p does not fit. */
    elag_status (*group)(const elag_prune_setup *s, const elag_model *m, const elag_param *p,
                         int *group_rows, int *group_cols);
    /* Tensor q of the setup (q indexes m->prunable) to `sparsity` (at least
     * llround(sparsity * count) zeros, rounded up to whole groups; nm ignores it): its
     * mask segment from its scores (m->scores, computed with the current masks). */
    elag_status (*select)(elag_model *m, const elag_prune_setup *s, int q, double sparsity);
    /* The tensors of the global pool (elag_prune_in_pool) ranked together to `sparsity`
     * of their entries; NULL when the granularity has no global scope (nm). */
    elag_status (*select_global)(elag_model *m, const elag_prune_setup *s, double sparsity);
} elag_prune_granularity_def;

/* The table entry of g, or NULL. */
const elag_prune_granularity_def *elag_prune_granularity_get(elag_prune_granularity g);

#endif /* ELAG_PRUNE_GRANULARITY_H */
