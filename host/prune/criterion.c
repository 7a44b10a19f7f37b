/*
 * The table of pruning criteria (criterion.h). Adding one = a score function here (and,
 * when it needs its own device code, a backend op), its spelling in config/names.c and
 * its value in the elag_prune_criterion enum. Everything runs through backend ops
 * (elementwise, score_magnitude as |x|, init_uniform), so every backend scores alike.
 * Buffers: the setup's `state` and `tmp` are (m->n_masked) floats on the device, indexed
 * like m->masks; a tensor's segment starts at its mask_off.
 */
#include "prune/criterion.h"

#include "backend/philox.h"
#include "core/check.h"
#include "prune/mask.h"

#include <float.h>

/* The pieces of prunable tensor q (device pointers, n entries each). */
typedef struct crit_view {
    size_t n;
    float *w, *g, *mask, *state, *tmp;
} crit_view;

static crit_view view_of(elag_model *m, const elag_prune_setup *s, int q)
{
    const elag_param *p = &m->reg[m->prunable[q]];
    crit_view v = {p->count, m->params + p->offset, m->grads ? m->grads + p->offset : NULL,
                   m->masks + p->mask_off, s->state ? s->state + p->mask_off : NULL,
                   s->tmp ? s->tmp + p->mask_off : NULL};
    return v;
}

uint64_t elag_prune_random_stream(int q, long step)
{
    return ELAG_STREAM_PRUNE_RANDOM + (uint64_t)q + ((uint64_t)step << 20);
}

/* |w| where live, -1 where already pruned. */
static elag_status score_magnitude(elag_model *m, const elag_prune_setup *s, int q, float *score)
{
    crit_view v = view_of(m, s, q);
    return elag_be_score_magnitude(m->be, score, v.w, v.mask, v.n);
}

/* u in [0, 1) where live (Philox: seed, tensor, update step), -1 where pruned. */
static elag_status score_random(elag_model *m, const elag_prune_setup *s, int q, float *score)
{
    crit_view v = view_of(m, s, q);
    ELAG_TRY(elag_be_init_uniform(m->be, score, v.n, 0.0f, 1.0f, s->seed,
                                  elag_prune_random_stream(q, s->step)));
    return elag_be_score_magnitude(m->be, score, score, v.mask, v.n);
}

/* out = w * g (0 where w is 0: a pruned weight contributes nothing). */
static elag_status w_times_g(elag_model *m, const crit_view *v, float *out)
{
    ELAG_ASSERT(v->g);
    return elag_be_elementwise(m->be, ELAG_EW_MUL, v->n, out, v->g, v->w, 0.0f);
}

/* tmp = |w g| */
static elag_status abs_wg(elag_model *m, const crit_view *v)
{
    ELAG_TRY(w_times_g(m, v, v->tmp));
    return elag_be_score_magnitude(m->be, v->tmp, v->tmp, NULL, v->n);
}

/* ---- taylor: state = EMA of |w g| ---- */

static elag_status observe_taylor(elag_model *m, const elag_prune_setup *s)
{
    for (int q = 0; q < m->n_prunable; q++) {
        crit_view v = view_of(m, s, q);
        ELAG_TRY(abs_wg(m, &v));
        ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_SCALE, v.n, v.state, v.state, NULL,
                                     (float)s->taylor_beta));
        ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_AXPY, v.n, v.state, v.tmp, NULL,
                                     (float)(1.0 - s->taylor_beta)));
    }
    return ELAG_OK;
}

/* beta * state + (1 - beta) |w g| of the update's batch where live, -1 where pruned: the
 * EMA as it stands with this gradient included (the state itself is left to observe). */
static elag_status score_taylor(elag_model *m, const elag_prune_setup *s, int q, float *score)
{
    crit_view v = view_of(m, s, q);
    ELAG_TRY(abs_wg(m, &v));
    ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_SCALE, v.n, score, v.state, NULL,
                                 (float)s->taylor_beta));
    ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_AXPY, v.n, score, v.tmp, NULL,
                                 (float)(1.0 - s->taylor_beta)));
    return elag_be_score_magnitude(m->be, score, score, v.mask, v.n); /* >= 0: abs is a no-op */
}

/* ---- snip: state = sum of |w g| over the update's batches ---- */

static elag_status gather_snip(elag_model *m, const elag_prune_setup *s)
{
    for (int q = 0; q < m->n_prunable; q++) {
        crit_view v = view_of(m, s, q);
        ELAG_TRY(abs_wg(m, &v));
        ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_AXPY, v.n, v.state, v.tmp, NULL, 1.0f));
    }
    return ELAG_OK;
}

static elag_status score_snip(elag_model *m, const elag_prune_setup *s, int q, float *score)
{
    crit_view v = view_of(m, s, q);
    return elag_be_score_magnitude(m->be, score, v.state, v.mask, v.n);
}

/* ---- movement: state = -sum of w g over steps ---- */

static elag_status observe_movement(elag_model *m, const elag_prune_setup *s)
{
    for (int q = 0; q < m->n_prunable; q++) {
        crit_view v = view_of(m, s, q);
        ELAG_TRY(w_times_g(m, &v, v.tmp));
        ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_AXPY, v.n, v.state, v.tmp, NULL, -1.0f));
    }
    return ELAG_OK;
}

/* state - w g of the update's batch, everywhere */
static elag_status movement_raw(elag_model *m, const crit_view *v, float *score)
{
    ELAG_TRY(w_times_g(m, v, v->tmp));
    ELAG_TRY(elag_be_copy(m->be, score, v->state, v->n * sizeof(float)));
    return elag_be_elementwise(m->be, ELAG_EW_AXPY, v->n, score, v->tmp, NULL, -1.0f);
}

/* The movement score where live, -FLT_MAX where pruned (below every live score, which is
 * a finite sum): score * mask + (FLT_MAX * mask - FLT_MAX), both terms exact. */
static elag_status score_movement(elag_model *m, const elag_prune_setup *s, int q, float *score)
{
    crit_view v = view_of(m, s, q);
    ELAG_TRY(movement_raw(m, &v, score));
    ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_MUL, v.n, score, score, v.mask, 0.0f));
    ELAG_TRY(elag_be_fill(m->be, v.tmp, v.n, -FLT_MAX));
    ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_AXPY, v.n, v.tmp, v.mask, NULL, FLT_MAX));
    return elag_be_elementwise(m->be, ELAG_EW_AXPY, v.n, score, v.tmp, NULL, 1.0f);
}

/* Pruned entries keep their accumulated score (frozen: their w is 0, so -w g adds
 * nothing) and compete with the live ones. */
static elag_status score_soft_movement(elag_model *m, const elag_prune_setup *s, int q,
                                       float *score)
{
    crit_view v = view_of(m, s, q);
    return movement_raw(m, &v, score);
}

static const elag_prune_criterion_def criteria[] = {
    [ELAG_PRUNE_CRITERION_MAGNITUDE] = {.name = "magnitude", .score = score_magnitude},
    [ELAG_PRUNE_CRITERION_RANDOM] = {.name = "random", .score = score_random},
    [ELAG_PRUNE_CRITERION_TAYLOR] = {.name = "taylor",
                                     .needs_grad = 1,
                                     .observe = observe_taylor,
                                     .score = score_taylor},
    [ELAG_PRUNE_CRITERION_SNIP] = {.name = "snip",
                                   .needs_grad = 1,
                                   .gather = gather_snip,
                                   .score = score_snip},
    [ELAG_PRUNE_CRITERION_MOVEMENT] = {.name = "movement",
                                       .needs_grad = 1,
                                       .signed_scores = 1,
                                       .observe = observe_movement,
                                       .score = score_movement},
    [ELAG_PRUNE_CRITERION_SOFT_MOVEMENT] = {.name = "soft_movement",
                                            .needs_grad = 1,
                                            .signed_scores = 1,
                                            .observe = observe_movement,
                                            .score = score_soft_movement},
};

const elag_prune_criterion_def *elag_prune_criterion_get(elag_prune_criterion c)
{
    if ((int)c < 0 || (size_t)c >= sizeof criteria / sizeof criteria[0]) return NULL;
    return criteria[c].score ? &criteria[c] : NULL;
}

int elag_prune_criterion_has_state(const elag_prune_criterion_def *c)
{
    return c && c->observe != NULL;
}
