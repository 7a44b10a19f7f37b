/*
 * When masks change and to what sparsity. GMP follows Zhu & Gupta (2017):
 *   s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))^e,  t = t0, t0 + dt, ..., t0 + n*dt
 * with e = prune.exponent (3 by default). t0 = prune.start, dt = prune.frequency and
 * n = floor((end - t0) / dt), so the last update is the last multiple of dt after t0
 * that is <= end, and the target is reached there. Steps are counted from 0; an update
 * "at step t" happens before step t's forward pass. start/end given as fractions are
 * multiplied by the total number of steps and rounded; both are clamped to the last step.
 * One-shot pruning is the n = 0 case: one update to s_f at t0.
 */
#ifndef ELAG_PRUNE_SCHEDULE_H
#define ELAG_PRUNE_SCHEDULE_H

#include "config/config.h"

typedef struct elag_prune_plan {
    elag_prune_method method;
    long t0, dt, n;       /* updates at t0 + j*dt for j = 0..n */
    double s_i, s_f, exponent;
} elag_prune_plan;

/* Resolves cfg->prune against a run of total_steps optimizer steps. */
elag_status elag_prune_plan_init(elag_prune_plan *p, const elag_config *cfg, long total_steps);

/* 1 when masks are recomputed before step t. */
int elag_prune_plan_is_update(const elag_prune_plan *p, long t);

/* Target sparsity of the update at step t (any t: held before t0 and after the end). */
double elag_prune_plan_sparsity(const elag_prune_plan *p, long t);

/* The GMP formula itself, for t in [t0, t0 + n*dt] (clamped outside). */
double elag_gmp_sparsity(double s_i, double s_f, double exponent, long t, long t0, long dt,
                         long n);

#endif /* ELAG_PRUNE_SCHEDULE_H */
