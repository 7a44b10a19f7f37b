/*
 * Pruning schedules: one-shot, GMP, iterative and the drop-and-grow plan of dynamic sparse
 * training (see schedule.h).
 */
#include "prune/schedule.h"

#include "core/check.h"

#include <math.h>

static long resolve_when(elag_when w, long total_steps)
{
    double v = w.is_fraction ? w.value * (double)total_steps : w.value;
    long t = (long)llround(v);
    if (t > total_steps - 1) t = total_steps - 1;
    if (t < 0) t = 0;
    return t;
}

int elag_prune_method_is_dst(elag_prune_method m)
{
    return m == ELAG_PRUNE_METHOD_RIGL || m == ELAG_PRUNE_METHOD_SET;
}

static elag_status check_rewind(const elag_prune_plan *p, const elag_config *cfg, long total)
{
    if (p->rewind_step < 0) return ELAG_OK;
    if (p->rewind_step >= total)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: prune.rewind_step (%ld) is beyond the run (%ld steps: 0 to %ld)",
                         cfg->source, p->rewind_step, total, total - 1);
    if (p->rewind_step > p->t0)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: prune.rewind_step (%ld) comes after the first pruning round "
                         "(prune.start, step %ld): the weights to rewind to would not exist yet",
                         cfg->source, p->rewind_step, p->t0);
    return ELAG_OK;
}

elag_status elag_prune_plan_init(elag_prune_plan *p, const elag_config *cfg, long total_steps)
{
    p->method = cfg->prune.method;
    p->s_i = cfg->prune.initial;
    p->s_f = cfg->prune.target;
    p->exponent = cfg->prune.exponent;
    p->drop_fraction = cfg->prune.drop_fraction;
    p->rewind_step = cfg->prune.rewind_step;
    p->dt = cfg->prune.frequency > 0 ? cfg->prune.frequency : 1;
    p->t0 = resolve_when(cfg->prune.start, total_steps);
    p->end = resolve_when(cfg->prune.end, total_steps);
    if (p->method == ELAG_PRUNE_METHOD_NONE) {
        p->n = 0;
        return ELAG_OK;
    }
    if (p->method == ELAG_PRUNE_METHOD_ONESHOT && cfg->prune.criterion == ELAG_PRUNE_CRITERION_SNIP)
        p->t0 = p->end = 0; /* SNIP scores the initialisation */
    if (p->end < p->t0)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: prune.end (step %ld) comes before prune.start (step %ld) in a "
                         "run of %ld steps",
                         cfg->source, p->end, p->t0, total_steps);
    p->n = p->method == ELAG_PRUNE_METHOD_ONESHOT ? 0 : (p->end - p->t0) / p->dt;
    return check_rewind(p, cfg, total_steps);
}

/* 1 when t is one of t0 + j dt, j = 0..n */
static int on_grid(const elag_prune_plan *p, long t)
{
    if (t < p->t0) return 0;
    long j = (t - p->t0) / p->dt;
    return j <= p->n && (t - p->t0) % p->dt == 0;
}

int elag_prune_plan_is_update(const elag_prune_plan *p, long t)
{
    if (p->method == ELAG_PRUNE_METHOD_NONE) return 0;
    if (elag_prune_method_is_dst(p->method) && t == 0) return 1; /* the first mask */
    return on_grid(p, t);
}

int elag_prune_plan_is_regrow(const elag_prune_plan *p, long t)
{
    return elag_prune_method_is_dst(p->method) && t > 0 && on_grid(p, t);
}

double elag_gmp_sparsity(double s_i, double s_f, double exponent, long t, long t0, long dt,
                         long n)
{
    if (n <= 0 || t >= t0 + n * dt) return s_f;
    if (t <= t0) return s_i;
    double frac = (double)(t - t0) / ((double)n * (double)dt);
    return s_f + (s_i - s_f) * pow(1.0 - frac, exponent);
}

double elag_iterative_sparsity(double s_f, long j, long k)
{
    if (k <= 0 || j >= k - 1) return s_f;
    if (j < 0) return 0.0;
    return 1.0 - pow(1.0 - s_f, (double)(j + 1) / (double)k);
}

double elag_prune_plan_sparsity(const elag_prune_plan *p, long t)
{
    switch (p->method) {
    case ELAG_PRUNE_METHOD_NONE:
        return 0.0;
    case ELAG_PRUNE_METHOD_RIGL:
    case ELAG_PRUNE_METHOD_SET:
        return p->s_f; /* from step 0 on */
    case ELAG_PRUNE_METHOD_ONESHOT:
        return t < p->t0 ? 0.0 : p->s_f;
    case ELAG_PRUNE_METHOD_ITERATIVE:
        if (t < p->t0) return 0.0;
        return elag_iterative_sparsity(p->s_f, (t - p->t0) / p->dt, p->n + 1);
    case ELAG_PRUNE_METHOD_GMP:
        break;
    }
    if (t < p->t0) return 0.0;
    return elag_gmp_sparsity(p->s_i, p->s_f, p->exponent, t, p->t0, p->dt, p->n);
}

double elag_prune_plan_drop_fraction(const elag_prune_plan *p, long t)
{
    if (t < p->t0) return p->drop_fraction;
    if (t > p->end) return 0.0;
    if (p->end == p->t0) return p->drop_fraction;
    double x = (double)(t - p->t0) / (double)(p->end - p->t0);
    return 0.5 * p->drop_fraction * (1.0 + cos(3.14159265358979323846 * x));
}
