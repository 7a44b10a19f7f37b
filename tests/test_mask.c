/*
 * Masks: exact zero counts per layer and globally, determinism, ties, pruned weights
 * staying zero through SGD-momentum and AdamW steps (weights and optimizer state).
 */
#include "model/model.h"
#include "prune/mask.h"
#include "support/fixtures.h"
#include "train/train.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    elag_config cfg;
    elag_backend *be;
    elag_model m;
} fixture;

static void setup(fixture *f, const char *device, elag_optimizer_kind opt)
{
    elag_test_small_config(&f->cfg, 37); /* fc1 37x16 = 592, fc2 4x37 = 148 */
    f->cfg.train.optimizer.type = opt;
    cr_assert_eq(elag_backend_open(device, 1, &f->be, NULL, 0), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_model_init(&f->m, &f->cfg, 16, 4, 8, f->be), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_model_init_params(&f->m, 3), ELAG_OK);
}

static void teardown(fixture *f)
{
    elag_model_free(&f->m);
    elag_backend_free(f->be);
}

static size_t zeros_in(const float *x, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += x[i] == 0.0f;
    return z;
}

Test(mask, layer_scope_exact_counts)
{
    const double levels[] = {0.0, 0.5, 0.9, 0.99};
    fixture f;
    setup(&f, "cpu", ELAG_OPTIMIZER_SGD);
    for (size_t s = 0; s < sizeof levels / sizeof levels[0]; s++) {
        cr_assert_eq(elag_mask_update(&f.m, ELAG_PRUNE_SCOPE_LAYER, levels[s]), ELAG_OK);
        for (int p = 0; p < f.m.n_prunable; p++) {
            const elag_layer *l = &f.m.layers[f.m.prunable_layers[p]];
            size_t n = (size_t)l->out * l->in;
            size_t want = (size_t)llround(levels[s] * (double)n);
            cr_assert_eq(zeros_in(f.m.masks + l->mask_off, n), want, "%s at %.2f", l->name,
                         levels[s]);
            cr_assert_eq(zeros_in(f.m.params + l->w_off, n), want);
        }
    }
    teardown(&f);
}

Test(mask, global_scope_exact_total_and_ranks_across_layers)
{
    fixture f;
    setup(&f, "cpu", ELAG_OPTIMIZER_SGD);
    /* make fc2 weights tiny: a global threshold must prune them first */
    const elag_layer *fc2 = elag_model_find_layer(&f.m, "fc2");
    for (size_t i = 0; i < (size_t)fc2->out * fc2->in; i++) f.m.params[fc2->w_off + i] *= 1e-3f;
    double s = 148.0 / 740.0;
    cr_assert_eq(elag_mask_update(&f.m, ELAG_PRUNE_SCOPE_GLOBAL, s), ELAG_OK);
    cr_assert_eq(zeros_in(f.m.masks, f.m.n_masked), 148);
    cr_assert_eq(zeros_in(f.m.masks + fc2->mask_off, 148), 148, "all of fc2 pruned first");
    teardown(&f);
}

Test(mask, ties_break_by_lowest_index)
{
    fixture f;
    setup(&f, "cpu", ELAG_OPTIMIZER_SGD);
    const elag_layer *fc1 = elag_model_find_layer(&f.m, "fc1");
    size_t n = (size_t)fc1->out * fc1->in;
    for (size_t i = 0; i < n; i++) f.m.params[fc1->w_off + i] = (i % 2) ? -0.5f : 0.5f;
    cr_assert_eq(elag_mask_update(&f.m, ELAG_PRUNE_SCOPE_LAYER, 0.25), ELAG_OK);
    size_t k = (size_t)llround(0.25 * (double)n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(f.m.masks[fc1->mask_off + i], i < k ? 0.0f : 1.0f, "entry %zu", i);
    teardown(&f);
}

Test(mask, deterministic_and_monotone)
{
    fixture a, b;
    setup(&a, "cpu", ELAG_OPTIMIZER_SGD);
    setup(&b, "cpu-ref", ELAG_OPTIMIZER_SGD);
    float *before = malloc(a.m.n_masked * sizeof(float));
    cr_assert_eq(elag_mask_update(&a.m, ELAG_PRUNE_SCOPE_LAYER, 0.5), ELAG_OK);
    cr_assert_eq(elag_mask_update(&b.m, ELAG_PRUNE_SCOPE_LAYER, 0.5), ELAG_OK);
    cr_assert_eq(memcmp(a.m.masks, b.m.masks, a.m.n_masked * sizeof(float)), 0,
                 "fast and reference backends choose the same entries");
    memcpy(before, a.m.masks, a.m.n_masked * sizeof(float));
    cr_assert_eq(elag_mask_update(&a.m, ELAG_PRUNE_SCOPE_LAYER, 0.8), ELAG_OK);
    for (size_t i = 0; i < a.m.n_masked; i++)
        if (before[i] == 0.0f) cr_assert_eq(a.m.masks[i], 0.0f, "entry %zu regrew", i);
    free(before);
    teardown(&a);
    teardown(&b);
}

static void pruned_stay_zero(elag_optimizer_kind opt)
{
    fixture f;
    setup(&f, "cpu", opt);
    f.cfg.train.optimizer.weight_decay = 0.01;
    cr_assert_eq(elag_mask_update(&f.m, ELAG_PRUNE_SCOPE_LAYER, 0.7), ELAG_OK);
    for (int step = 1; step <= 5; step++) {
        for (int r = 0; r < 8; r++) {
            for (int c = 0; c < 16; c++) f.m.input[r * 16 + c] = sinf((float)(r * 16 + c + step));
            f.m.labels[r] = r % 4;
        }
        cr_assert_eq(elag_model_step(&f.m, 8, 1), ELAG_OK);
        cr_assert_eq(elag_optimizer_step(&f.m, &f.cfg, 0.1, step, 1), ELAG_OK);
    }
    size_t live_moved = 0;
    for (int p = 0; p < f.m.n_prunable; p++) {
        const elag_layer *l = &f.m.layers[f.m.prunable_layers[p]];
        for (size_t i = 0; i < (size_t)l->out * l->in; i++) {
            int pruned = f.m.masks[l->mask_off + i] == 0.0f;
            for (int s = 0; s < f.m.opt_slots; s++) {
                float st = f.m.opt_state[(size_t)s * f.m.n_params + l->w_off + i];
                if (pruned) cr_assert_eq(st, 0.0f, "%s state %d at %zu", l->name, s, i);
            }
            if (pruned)
                cr_assert_eq(f.m.params[l->w_off + i], 0.0f, "%s weight %zu", l->name, i);
            else
                live_moved += f.m.opt_state[l->w_off + i] != 0.0f;
        }
    }
    cr_assert(live_moved > 100, "live weights must still train (%zu moved)", live_moved);
    teardown(&f);
}

Test(mask, pruned_weights_stay_zero_sgd_momentum) { pruned_stay_zero(ELAG_OPTIMIZER_SGD); }
Test(mask, pruned_weights_stay_zero_adamw) { pruned_stay_zero(ELAG_OPTIMIZER_ADAMW); }
