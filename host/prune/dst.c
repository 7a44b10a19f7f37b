/*
 * Drop-and-grow of dynamic sparse training (see dst.h). Everything runs through backend
 * ops, on the device: selection is mask_select (the k smallest (score, index) pairs), so
 * "largest |g| among the pruned" becomes "smallest -|g|, with live entries scored
 * +FLT_MAX".
 */
#include "prune/dst.h"

#include "backend/philox.h"
#include "core/check.h"

#include <float.h>
#include <math.h>

uint64_t elag_dst_random_stream(int q, long step)
{
    return ELAG_STREAM_PRUNE_RANDOM + 0x800u + (uint64_t)q + ((uint64_t)step << 20);
}

/* Tensor q: drop k live weights, grow k previously pruned ones. */
static elag_status regrow_tensor(elag_model *m, const elag_prune_setup *s, int q,
                                 elag_dst_grow grow, double fraction)
{
    elag_backend *be = m->be;
    const elag_param *p = &m->reg[m->prunable[q]];
    size_t n = p->count;
    float *mask = m->masks + p->mask_off, *w = m->params + p->offset;
    float *tmp = s->tmp + p->mask_off;   /* scores (n) */
    float *prev = s->tmp2 + p->mask_off; /* the mask before, then the grow selection (n) */
    size_t live;
    ELAG_TRY(elag_be_count_nonzero(be, mask, n, &live));
    size_t k = (size_t)llround(fraction * (double)live);
    if (k > n - live) k = n - live;
    if (k == 0) return ELAG_OK;
    ELAG_TRY(elag_be_copy(be, prev, mask, n * sizeof(float)));

    /* drop: the pruned score -1, live |w|; zero the n - live pruned and k more */
    ELAG_TRY(elag_be_score_magnitude(be, tmp, w, mask, n));
    ELAG_TRY(elag_be_mask_select(be, mask, tmp, n, (n - live) + k));

    /* grow: candidates were pruned before (prev == 0); live ones score +FLT_MAX */
    if (grow == ELAG_DST_GROW_GRADIENT) {
        ELAG_ASSERT(m->grads);
        ELAG_TRY(elag_be_score_magnitude(be, tmp, m->grads + p->offset, NULL, n));
        ELAG_TRY(elag_be_elementwise(be, ELAG_EW_SCALE, n, tmp, tmp, NULL, -1.0f));
    } else {
        ELAG_TRY(elag_be_init_uniform(be, tmp, n, 0.0f, 1.0f, s->seed,
                                      elag_dst_random_stream(q, s->step)));
    }
    ELAG_TRY(elag_be_elementwise(be, ELAG_EW_AXPY, n, tmp, prev, NULL, FLT_MAX));
    float *keep = prev; /* 0 at the k grown entries, 1 elsewhere */
    ELAG_TRY(elag_be_mask_select(be, keep, tmp, n, k));

    /* grown entries: weight and optimizer state 0 (they were pruned, so they are: this
     * makes it so whatever put a value there) */
    ELAG_TRY(elag_be_elementwise(be, ELAG_EW_MUL, n, w, w, keep, 0.0f));
    for (int slot = 0; m->opt_state && slot < m->opt_slots; slot++) {
        float *state = m->opt_state + (size_t)slot * m->n_params + p->offset;
        ELAG_TRY(elag_be_elementwise(be, ELAG_EW_MUL, n, state, state, keep, 0.0f));
    }
    /* mask += 1 - keep */
    ELAG_TRY(elag_be_fill(be, tmp, n, 1.0f));
    ELAG_TRY(elag_be_elementwise(be, ELAG_EW_AXPY, n, tmp, keep, NULL, -1.0f));
    return elag_be_elementwise(be, ELAG_EW_AXPY, n, mask, tmp, NULL, 1.0f);
}

elag_status elag_dst_update(elag_model *m, const elag_prune_setup *s, elag_dst_grow grow,
                            double fraction)
{
    if (m->n_prunable == 0) return ELAG_OK;
    ELAG_ASSERT(s && s->tmp && s->tmp2 && s->n_tensors == m->n_prunable);
    if (!(fraction >= 0 && fraction <= 1))
        return elag_fail(ELAG_ERR_INTERNAL, "dst: drop fraction %g outside [0, 1]", fraction);
    for (int q = 0; q < m->n_prunable; q++)
        if (!s->tensors[q].exclude) ELAG_TRY(regrow_tensor(m, s, q, grow, fraction));
    return elag_mask_apply_all(m); /* the dropped weights and their state to 0 */
}
