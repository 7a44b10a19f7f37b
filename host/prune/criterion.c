/*
 * The table of pruning criteria (criterion.h). Adding one = a score function here (and,
 * when it needs its own device code, a backend op), its spelling in config/names.c and
 * its value in the elag_prune_criterion enum.
 */
#include "prune/criterion.h"

/* |w| where live, -1 where already pruned. */
static elag_status score_magnitude(elag_model *m, const elag_param *p, float *score)
{
    return elag_be_score_magnitude(m->be, score, m->params + p->offset, m->masks + p->mask_off,
                                   p->count);
}

static const elag_prune_criterion_def criteria[] = {
    [ELAG_PRUNE_CRITERION_MAGNITUDE] = {.name = "magnitude",
                                        .needs_grad = 0,
                                        .score = score_magnitude},
};

const elag_prune_criterion_def *elag_prune_criterion_get(elag_prune_criterion c)
{
    if ((int)c < 0 || (size_t)c >= sizeof criteria / sizeof criteria[0]) return NULL;
    return criteria[c].score ? &criteria[c] : NULL;
}
