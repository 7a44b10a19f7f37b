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
#include <stdio.h>
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
    cr_assert_eq(elag_model_init(&f->m, &f->cfg, (elag_fshape){16, 1, 1}, 4, 8, 1, f->be), ELAG_OK,
                 "%s", elag_last_error());
    cr_assert_eq(elag_model_init_params(&f->m, 3), ELAG_OK);
}

/* One magnitude mask update of m in `scope` (element granularity, cfg's other keys). */
static elag_status update(elag_model *m, const elag_config *cfg, elag_prune_scope scope,
                          double sparsity)
{
    elag_config c = *cfg;
    c.prune.scope = scope;
    elag_prune_setup s;
    elag_status st = elag_prune_setup_init(&s, &c, m);
    if (st == ELAG_OK) st = elag_mask_update(m, &s, sparsity);
    elag_prune_setup_free(&s);
    return st;
}

static void teardown(fixture *f)
{
    elag_model_free(&f->m);
    elag_backend_free(f->be);
}

/* The registry entry of layer `name`'s weight. */
static const elag_param *weight_of(const elag_model *m, const char *name)
{
    char full[96];
    snprintf(full, sizeof full, "%s.weight", name);
    const elag_param *p = elag_model_find_param(m, full);
    cr_assert_not_null(p, "no tensor %s", full);
    return p;
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
        cr_assert_eq(update(&f.m, &f.cfg, ELAG_PRUNE_SCOPE_LAYER, levels[s]),
                     ELAG_OK);
        for (int q = 0; q < f.m.n_prunable; q++) {
            const elag_param *p = &f.m.reg[f.m.prunable[q]];
            size_t want = (size_t)llround(levels[s] * (double)p->count);
            cr_assert_eq(zeros_in(f.m.masks + p->mask_off, p->count), want, "%s at %.2f", p->name,
                         levels[s]);
            cr_assert_eq(zeros_in(f.m.params + p->offset, p->count), want);
        }
    }
    teardown(&f);
}

Test(mask, global_scope_exact_total_and_ranks_across_layers)
{
    fixture f;
    setup(&f, "cpu", ELAG_OPTIMIZER_SGD);
    /* make fc2 weights tiny: a global threshold must prune them first */
    const elag_param *fc2 = weight_of(&f.m, "fc2");
    for (size_t i = 0; i < fc2->count; i++) f.m.params[fc2->offset + i] *= 1e-3f;
    double s = 148.0 / 740.0;
    cr_assert_eq(update(&f.m, &f.cfg, ELAG_PRUNE_SCOPE_GLOBAL, s),
                 ELAG_OK);
    cr_assert_eq(zeros_in(f.m.masks, f.m.n_masked), 148);
    cr_assert_eq(zeros_in(f.m.masks + fc2->mask_off, 148), 148, "all of fc2 pruned first");
    teardown(&f);
}

Test(mask, ties_break_by_lowest_index)
{
    fixture f;
    setup(&f, "cpu", ELAG_OPTIMIZER_SGD);
    const elag_param *fc1 = weight_of(&f.m, "fc1");
    size_t n = fc1->count;
    for (size_t i = 0; i < n; i++) f.m.params[fc1->offset + i] = (i % 2) ? -0.5f : 0.5f;
    cr_assert_eq(
        update(&f.m, &f.cfg, ELAG_PRUNE_SCOPE_LAYER, 0.25),
        ELAG_OK);
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
    cr_assert_eq(
        update(&a.m, &a.cfg, ELAG_PRUNE_SCOPE_LAYER, 0.5),
        ELAG_OK);
    cr_assert_eq(
        update(&b.m, &b.cfg, ELAG_PRUNE_SCOPE_LAYER, 0.5),
        ELAG_OK);
    cr_assert_eq(memcmp(a.m.masks, b.m.masks, a.m.n_masked * sizeof(float)), 0,
                 "fast and reference backends choose the same entries");
    memcpy(before, a.m.masks, a.m.n_masked * sizeof(float));
    /* Give every pruned weight the largest magnitude of all (as a stray write between
     * updates would). The update zeroed them, so without this a score that ignored the
     * old mask would still rank them first and regrowth could not show. */
    for (int q = 0; q < a.m.n_prunable; q++) {
        const elag_param *p = &a.m.reg[a.m.prunable[q]];
        for (size_t i = 0; i < p->count; i++)
            if (before[p->mask_off + i] == 0.0f) a.m.params[p->offset + i] = 100.0f;
    }
    cr_assert_eq(
        update(&a.m, &a.cfg, ELAG_PRUNE_SCOPE_LAYER, 0.8),
        ELAG_OK);
    size_t regrown = 0;
    for (size_t i = 0; i < a.m.n_masked; i++) regrown += before[i] == 0.0f && a.m.masks[i] != 0.0f;
    cr_assert_eq(regrown, 0, "%zu pruned entries regrew: once pruned, an entry stays pruned",
                 regrown);
    cr_assert_eq(zeros_in(a.m.masks, a.m.n_masked),
                 (size_t)(llround(0.8 * 592) + llround(0.8 * 148)), "layer scope: 0.8 of each");
    free(before);
    teardown(&a);
    teardown(&b);
}

static void pruned_stay_zero(elag_optimizer_kind opt)
{
    fixture f;
    setup(&f, "cpu", opt);
    f.cfg.train.optimizer.weight_decay = 0.01;
    cr_assert_eq(
        update(&f.m, &f.cfg, ELAG_PRUNE_SCOPE_LAYER, 0.7),
        ELAG_OK);
    for (int step = 1; step <= 5; step++) {
        for (int r = 0; r < 8; r++) {
            for (int c = 0; c < 16; c++) f.m.rows[r * 16 + c] = sinf((float)(r * 16 + c + step));
            f.m.labels[r] = r % 4;
        }
        elag_pass pass = {.n = 8, .training = 1, .step = step};
        cr_assert_eq(elag_model_step(&f.m, &pass), ELAG_OK);
        cr_assert_eq(elag_optimizer_step(&f.m, &f.cfg, 0.1, step, 1), ELAG_OK);
    }
    size_t live_moved = 0;
    for (int q = 0; q < f.m.n_prunable; q++) {
        const elag_param *p = &f.m.reg[f.m.prunable[q]];
        for (size_t i = 0; i < p->count; i++) {
            int pruned = f.m.masks[p->mask_off + i] == 0.0f;
            for (int s = 0; s < f.m.opt_slots; s++) {
                float st = f.m.opt_state[(size_t)s * f.m.n_params + p->offset + i];
                if (pruned) cr_assert_eq(st, 0.0f, "%s state %d at %zu", p->name, s, i);
            }
            if (pruned)
                cr_assert_eq(f.m.params[p->offset + i], 0.0f, "%s weight %zu", p->name, i);
            else
                live_moved += f.m.opt_state[p->offset + i] != 0.0f;
        }
    }
    cr_assert(live_moved > 100, "live weights must still train (%zu moved)", live_moved);
    teardown(&f);
}

Test(mask, pruned_weights_stay_zero_sgd_momentum)
{
    pruned_stay_zero(ELAG_OPTIMIZER_SGD);
}
Test(mask, pruned_weights_stay_zero_adamw)
{
    pruned_stay_zero(ELAG_OPTIMIZER_ADAMW);
}

/* Conv weights are pruned like linear ones: exact counts per tensor (4-D, biases and batch
 * norm untouched) and over all of them globally. */
Test(mask, conv_weights_layer_and_global)
{
    static const char yaml[] =
        "device: cpu\ndata: {dataset: synthetic}\nmodel:\n  layers:\n"
        "    - {type: conv2d, out_channels: 5, kernel: 3, padding: 1}\n"
        "    - {type: batchnorm}\n    - {type: relu}\n    - {type: maxpool, kernel: 2}\n"
        "    - {type: flatten}\n    - {type: linear, out_features: 3}\n";
    elag_config cfg;
    elag_backend *be;
    elag_model m;
    cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "conv.yaml", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_backend_open("cpu", 1, &be, NULL, 0), ELAG_OK);
    cr_assert_eq(elag_model_init(&m, &cfg, (elag_fshape){2, 6, 6}, 3, 4, 1, be), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_model_init_params(&m, 5), ELAG_OK);
    cr_assert_eq(m.n_prunable, 2);
    const elag_param *conv = weight_of(&m, "conv1");
    cr_assert_eq(conv->ndim, 4);
    cr_assert_eq(conv->count, 5 * 2 * 3 * 3);
    cr_assert_eq(m.n_masked, 90 + 3 * 45);
    cr_assert_eq(update(&m, &cfg, ELAG_PRUNE_SCOPE_LAYER, 0.6),
                 ELAG_OK);
    cr_assert_eq(zeros_in(m.params + conv->offset, conv->count), 54);
    cr_assert_eq(update(&m, &cfg, ELAG_PRUNE_SCOPE_GLOBAL, 0.8),
                 ELAG_OK);
    cr_assert_eq(zeros_in(m.masks, m.n_masked), 180);
    const elag_param *gamma = elag_model_find_param(&m, "bn1.weight");
    cr_assert_not_null(gamma);
    cr_assert_eq(zeros_in(m.params + gamma->offset, gamma->count), 0, "norms are not pruned");
    elag_model_free(&m);
    elag_backend_free(be);
}
