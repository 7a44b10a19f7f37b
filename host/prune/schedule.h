/*
 * When masks change and to what sparsity. Steps are counted from 0; an update "at step t"
 * happens before step t's forward pass. t0 = prune.start, dt = prune.frequency and
 * n = floor((end - t0) / dt): updates at t0 + j*dt for j = 0..n, the last one the last
 * multiple of dt after t0 that is <= end. start/end given as fractions are multiplied by
 * the total number of steps and rounded; both are clamped to the last step.
 *   oneshot    one update to s_f at t0 (n = 0); with criterion snip at step 0 whatever
 *              prune.start says (SNIP scores the initialisation).
 *   gmp        Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^e,
 *              e = prune.exponent (3 by default).
 *   iterative  k = n + 1 rounds of prune-then-retrain, one per update; round j (0-based)
 *              reaches 1 - (1 - s_f)^((j + 1) / k), so each round keeps the same fraction
 *              of what the previous one left and the last reaches s_f.
 *   rigl, set  dynamic sparse training (dst.h): one update to s_f at step 0, then
 *              drop-and-grow at every t0 + j dt > 0 (j = 0..n), constant sparsity; the
 *              drop fraction decays as f(t) = f0 / 2 (1 + cos(pi (t - t0) / (end - t0))).
 * Lottery-ticket rewinding (prune.rewind_step N, oneshot and iterative): the weights at
 * step N (after N optimizer steps) are kept, and after each round the weights go back to
 * them (masks kept); N must come before the end of the run and at or before the first
 * round.
 */
#ifndef ELAG_PRUNE_SCHEDULE_H
#define ELAG_PRUNE_SCHEDULE_H

#include "config/config.h"

typedef struct elag_prune_plan {
    elag_prune_method method;
    long t0, dt, n;       /* updates at t0 + j*dt for j = 0..n */
    long end;             /* prune.end as a step */
    long rewind_step;     /* -1: no rewinding */
    double s_i, s_f, exponent;
    double drop_fraction; /* rigl, set: f0 */
} elag_prune_plan;

/* Resolves cfg->prune against a run of total_steps optimizer steps; ELAG_ERR_INPUT naming
 * cfg->source when prune.end comes before prune.start or prune.rewind_step does not fit. */
elag_status elag_prune_plan_init(elag_prune_plan *p, const elag_config *cfg, long total_steps);

/* 1 when masks are recomputed before step t. */
int elag_prune_plan_is_update(const elag_prune_plan *p, long t);

/* 1 when the update at step t is a drop-and-grow (rigl, set: every update but step 0's). */
int elag_prune_plan_is_regrow(const elag_prune_plan *p, long t);

/* 1 for the dynamic sparse training methods (rigl, set). */
int elag_prune_method_is_dst(elag_prune_method m);

/* Target sparsity of the update at step t (any t: held before t0 and after the end). */
double elag_prune_plan_sparsity(const elag_prune_plan *p, long t);

/* rigl, set: the fraction of each tensor's live weights dropped (and as many grown) at a
 * drop-and-grow at step t: the cosine decay above, f0 before t0, 0 after end. */
double elag_prune_plan_drop_fraction(const elag_prune_plan *p, long t);

/* The GMP formula itself, for t in [t0, t0 + n*dt] (clamped outside). */
double elag_gmp_sparsity(double s_i, double s_f, double exponent, long t, long t0, long dt,
                         long n);

/* Round j (0-based) of k of iterative pruning to s_f: 1 - (1 - s_f)^((j + 1) / k). */
double elag_iterative_sparsity(double s_f, long j, long k);

#endif /* ELAG_PRUNE_SCHEDULE_H */
