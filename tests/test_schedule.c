/*
 * Pruning schedules: GMP values against the Zhu & Gupta formula at its boundaries,
 * update steps, fraction/step resolution, one-shot.
 */
#include "prune/schedule.h"
#include "support/fixtures.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static elag_prune_plan gmp_plan(double s_i, double s_f, elag_when start, elag_when end, long freq,
                                long total)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 8);
    cfg.prune.method = ELAG_PRUNE_METHOD_GMP;
    cfg.prune.initial = s_i;
    cfg.prune.target = s_f;
    cfg.prune.start = start;
    cfg.prune.end = end;
    cfg.prune.frequency = freq;
    cfg.prune.exponent = 3;
    elag_prune_plan p;
    cr_assert_eq(elag_prune_plan_init(&p, &cfg, total), ELAG_OK, "%s", elag_last_error());
    return p;
}

static elag_when step_at(long t) { return (elag_when){(double)t, 0}; }

Test(schedule, gmp_formula_at_boundaries)
{
    /* t0 = 100, dt = 50, n = 8: updates at 100..500 */
    elag_prune_plan p = gmp_plan(0.1, 0.9, step_at(100), step_at(520), 50, 1000);
    cr_assert_eq(p.t0, 100);
    cr_assert_eq(p.n, 8);
    cr_assert_float_eq(elag_prune_plan_sparsity(&p, 100), 0.1, 1e-12);
    cr_assert_float_eq(elag_prune_plan_sparsity(&p, 500), 0.9, 1e-12);
    cr_assert_float_eq(elag_prune_plan_sparsity(&p, 999), 0.9, 1e-12);
    cr_assert_float_eq(elag_prune_plan_sparsity(&p, 99), 0.0, 1e-12, "no pruning before t0");
    for (long t = 100; t <= 500; t += 50) {
        double want = 0.9 + (0.1 - 0.9) * pow(1.0 - (double)(t - 100) / (8.0 * 50.0), 3.0);
        cr_assert_float_eq(elag_prune_plan_sparsity(&p, t), want, 1e-12, "t=%ld", t);
    }
}

Test(schedule, gmp_is_monotone)
{
    elag_prune_plan p = gmp_plan(0.0, 0.95, step_at(0), step_at(1000), 10, 2000);
    double prev = -1;
    for (long t = 0; t < 2000; t++) {
        double s = elag_prune_plan_sparsity(&p, t);
        cr_assert(s >= prev - 1e-15, "sparsity fell at %ld", t);
        prev = s;
    }
}

Test(schedule, update_steps)
{
    elag_prune_plan p = gmp_plan(0.0, 0.9, step_at(100), step_at(520), 50, 1000);
    long count = 0;
    for (long t = 0; t < 1000; t++)
        if (elag_prune_plan_is_update(&p, t)) {
            cr_assert_eq((t - 100) % 50, 0, "update off the grid at %ld", t);
            cr_assert(t >= 100 && t <= 500, "update outside [t0, t0+n*dt] at %ld", t);
            count++;
        }
    cr_assert_eq(count, 9);
}

Test(schedule, fractions_resolve_against_total_steps)
{
    elag_prune_plan p =
        gmp_plan(0.0, 0.9, (elag_when){0.1, 1}, (elag_when){0.7, 1}, 100, 4690);
    cr_assert_eq(p.t0, 469);
    cr_assert_eq(p.n, (3283 - 469) / 100);
    cr_assert(elag_prune_plan_is_update(&p, 469));
    cr_assert_float_eq(elag_prune_plan_sparsity(&p, 469 + p.n * 100), 0.9, 1e-12);
}

Test(schedule, end_clamped_to_last_step)
{
    elag_prune_plan p = gmp_plan(0.0, 0.8, step_at(0), (elag_when){1.0, 1}, 10, 95);
    cr_assert_eq(p.n, 9, "last update at step 90 <= 94");
    cr_assert(elag_prune_plan_is_update(&p, 90));
    cr_assert(!elag_prune_plan_is_update(&p, 94));
}

Test(schedule, short_window_is_one_update_to_target)
{
    elag_prune_plan p = gmp_plan(0.0, 0.5, step_at(30), step_at(35), 10, 100);
    cr_assert_eq(p.n, 0);
    cr_assert(elag_prune_plan_is_update(&p, 30));
    cr_assert(!elag_prune_plan_is_update(&p, 40));
    cr_assert_float_eq(elag_prune_plan_sparsity(&p, 30), 0.5, 1e-12);
}

Test(schedule, oneshot_prunes_once_at_start)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 8);
    cfg.prune.method = ELAG_PRUNE_METHOD_ONESHOT;
    cfg.prune.target = 0.8;
    cfg.prune.start = step_at(20);
    elag_prune_plan p;
    cr_assert_eq(elag_prune_plan_init(&p, &cfg, 100), ELAG_OK);
    long count = 0;
    for (long t = 0; t < 100; t++) count += elag_prune_plan_is_update(&p, t);
    cr_assert_eq(count, 1);
    cr_assert(elag_prune_plan_is_update(&p, 20));
    cr_assert_float_eq(elag_prune_plan_sparsity(&p, 20), 0.8, 1e-12);
    cr_assert_float_eq(elag_prune_plan_sparsity(&p, 19), 0.0, 1e-12);
}

Test(schedule, end_before_start_is_an_error)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 8);
    cfg.prune.method = ELAG_PRUNE_METHOD_GMP;
    cfg.prune.start = step_at(50);
    cfg.prune.end = step_at(10);
    elag_prune_plan p;
    cr_assert_eq(elag_prune_plan_init(&p, &cfg, 100), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "prune.end") != NULL, "%s", elag_last_error());
}

Test(schedule, none_never_updates)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 8);
    elag_prune_plan p;
    cr_assert_eq(elag_prune_plan_init(&p, &cfg, 100), ELAG_OK);
    for (long t = 0; t < 100; t++) cr_assert(!elag_prune_plan_is_update(&p, t));
}
