/*
 * Pruning schedules: one-shot and gradual magnitude pruning (see schedule.h).
 */
#include "prune/schedule.h"

#include <math.h>

static long resolve_when(elag_when w, long total_steps)
{
    double v = w.is_fraction ? w.value * (double)total_steps : w.value;
    long t = (long)llround(v);
    if (t > total_steps - 1) t = total_steps - 1;
    if (t < 0) t = 0;
    return t;
}

elag_status elag_prune_plan_init(elag_prune_plan *p, const elag_config *cfg, long total_steps)
{
    p->method = cfg->prune.method;
    p->s_i = cfg->prune.initial;
    p->s_f = cfg->prune.target;
    p->exponent = cfg->prune.exponent;
    p->dt = cfg->prune.frequency > 0 ? cfg->prune.frequency : 1;
    p->t0 = resolve_when(cfg->prune.start, total_steps);
    long end = resolve_when(cfg->prune.end, total_steps);
    if (p->method == ELAG_PRUNE_METHOD_NONE) {
        p->n = 0;
        return ELAG_OK;
    }
    if (end < p->t0)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: prune.end (step %ld) comes before prune.start (step %ld) in a "
                         "run of %ld steps",
                         cfg->source, end, p->t0, total_steps);
    p->n = p->method == ELAG_PRUNE_METHOD_ONESHOT ? 0 : (end - p->t0) / p->dt;
    return ELAG_OK;
}

int elag_prune_plan_is_update(const elag_prune_plan *p, long t)
{
    if (p->method == ELAG_PRUNE_METHOD_NONE || t < p->t0) return 0;
    long j = (t - p->t0) / p->dt;
    return j <= p->n && (t - p->t0) % p->dt == 0;
}

double elag_gmp_sparsity(double s_i, double s_f, double exponent, long t, long t0, long dt,
                         long n)
{
    if (n <= 0 || t >= t0 + n * dt) return s_f;
    if (t <= t0) return s_i;
    double frac = (double)(t - t0) / ((double)n * (double)dt);
    return s_f + (s_i - s_f) * pow(1.0 - frac, exponent);
}

double elag_prune_plan_sparsity(const elag_prune_plan *p, long t)
{
    if (p->method == ELAG_PRUNE_METHOD_NONE) return 0.0;
    if (p->method == ELAG_PRUNE_METHOD_ONESHOT) return t < p->t0 ? 0.0 : p->s_f;
    if (t < p->t0) return 0.0;
    return elag_gmp_sparsity(p->s_i, p->s_f, p->exponent, t, p->t0, p->dt, p->n);
}
