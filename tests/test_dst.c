/*
 * Dynamic sparse training (host/prune/dst.c): RigL's drop and grow on a hand-checked
 * example, sparsity held exactly per tensor over many updates (RigL and SET), grown weights
 * and their optimizer state at zero right after growth, the cosine drop fraction, and
 * resuming bit for bit through drop-and-grow updates.
 */
#include "io/safetensors.h"
#include "prune/dst.h"
#include "prune/schedule.h"
#include "support/fixtures.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct net {
    elag_config cfg;
    elag_backend *be;
    elag_model m;
    elag_prune_setup s;
} net;

static void net_init(net *n, int hidden, elag_prune_method method)
{
    elag_test_small_config(&n->cfg, hidden);
    n->cfg.prune.method = method;
    cr_assert_eq(elag_backend_open("cpu", 1, &n->be, NULL, 0), ELAG_OK);
    cr_assert_eq(elag_model_init(&n->m, &n->cfg, (elag_fshape){16, 1, 1}, 4, 8, 1, n->be), ELAG_OK,
                 "%s", elag_last_error());
    cr_assert_eq(elag_model_init_params(&n->m, 3), ELAG_OK);
    cr_assert_eq(elag_prune_setup_init(&n->s, &n->cfg, &n->m), ELAG_OK, "%s", elag_last_error());
}

static void net_free(net *n)
{
    elag_prune_setup_free(&n->s);
    elag_model_free(&n->m);
    elag_backend_free(n->be);
}

/* fc2 (4, 2): 4 live of 8; drop half the live (2): the smallest |w| are entries 1 (-0.1)
 * and 3 (0.2); grow 2 of the 4 pruned by |g|: entries 5 (|-0.7|) and 6 (0.4), not 4 (0.1)
 * or 7 (0.05). The weights and momentum of grown entries start at 0 whatever was there. */
Test(dst, rigl_hand_checked_drop_and_grow)
{
    net n;
    net_init(&n, 2, ELAG_PRUNE_METHOD_RIGL);
    const elag_param *p0 = &n.m.reg[n.m.prunable[0]], *p = &n.m.reg[n.m.prunable[1]];
    float *w = n.m.params + p->offset, *g = n.m.grads + p->offset;
    float *mask = n.m.masks + p->mask_off, *v = n.m.opt_state + p->offset;
    const float w0[8] = {0.5f, -0.1f, 0.3f, 0.2f, 5.0f, 5.0f, 5.0f, 5.0f};
    const float g0[8] = {9, 9, 9, 9, 0.1f, -0.7f, 0.4f, 0.05f};
    const float m0[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    const float v0[8] = {1, 2, 3, 4, 7, 7, 7, 7};
    memcpy(w, w0, sizeof w0);
    memcpy(g, g0, sizeof g0);
    memcpy(mask, m0, sizeof m0);
    memcpy(v, v0, sizeof v0);
    float fc1_before[32];
    memcpy(fc1_before, n.m.params + p0->offset, sizeof fc1_before); /* dense: nothing to grow */
    cr_assert_eq(elag_dst_update(&n.m, &n.s, ELAG_DST_GROW_GRADIENT, 0.5), ELAG_OK, "%s",
                 elag_last_error());
    const float m1[8] = {1, 0, 1, 0, 0, 1, 1, 0};
    const float w1[8] = {0.5f, 0, 0.3f, 0, 0, 0, 0, 0};
    const float v1[8] = {1, 0, 3, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(mask[i], m1[i], "mask[%d] = %g", i, mask[i]);
        cr_expect_eq(w[i], w1[i], "w[%d] = %g", i, w[i]);
        cr_expect_eq(v[i], v1[i], "momentum[%d] = %g", i, v[i]);
    }
    cr_expect_eq(memcmp(fc1_before, n.m.params + p0->offset, sizeof fc1_before), 0);
    net_free(&n);
}

static size_t zeros(const float *x, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += x[i] == 0.0f;
    return z;
}

/* Many updates from an ERK start at 80%: every tensor keeps its count of zeros exactly;
 * exactly llround(f * live) entries grow each time, each at weight 0 and momentum 0 right
 * after (the buffers are filled with junk before each update so a missing reset shows). */
static void constant_sparsity(elag_prune_method method, elag_dst_grow grow)
{
    net n;
    net_init(&n, 37, method);
    n.s.distribution = ELAG_PRUNE_DISTRIBUTION_ERK;
    cr_assert_eq(elag_mask_update(&n.m, &n.s, 0.8), ELAG_OK, "%s", elag_last_error());
    size_t z0[2], total = n.m.n_masked;
    for (int q = 0; q < 2; q++) {
        const elag_param *p = &n.m.reg[n.m.prunable[q]];
        z0[q] = zeros(n.m.masks + p->mask_off, p->count);
    }
    cr_assert_neq(z0[0], z0[1] * 592 / 148, "ERK gives the layers different sparsities");
    float *before = malloc(total * sizeof(float));
    for (int u = 0; u < 12; u++) {
        n.s.step = 100 + u;
        cr_assert_eq(elag_be_init_uniform(n.be, n.m.grads, n.m.n_params, -1, 1, 9, (uint64_t)u),
                     ELAG_OK);
        cr_assert_eq(elag_be_fill(n.be, n.m.opt_state, n.m.n_params, 0.5f), ELAG_OK);
        memcpy(before, n.m.masks, total * sizeof(float));
        double f = 0.3 * (1 - u / 12.0);
        size_t expect_grow[2];
        for (int q = 0; q < 2; q++) {
            const elag_param *p = &n.m.reg[n.m.prunable[q]];
            float *w = n.m.params + p->offset;
            for (size_t i = 0; i < p->count; i++)
                if (before[p->mask_off + i] == 0) w[i] = 3.0f; /* junk where pruned */
            size_t live = p->count - z0[q];
            expect_grow[q] = (size_t)llround(f * (double)live);
        }
        cr_assert_eq(elag_dst_update(&n.m, &n.s, grow, f), ELAG_OK, "%s", elag_last_error());
        for (int q = 0; q < 2; q++) {
            const elag_param *p = &n.m.reg[n.m.prunable[q]];
            const float *mask = n.m.masks + p->mask_off, *w = n.m.params + p->offset;
            const float *v = n.m.opt_state + p->offset;
            cr_assert_eq(zeros(mask, p->count), z0[q], "%s update %d: %zu zeros, not %zu", p->name,
                         u, zeros(mask, p->count), z0[q]);
            size_t grown = 0;
            for (size_t i = 0; i < p->count; i++) {
                if (mask[i] == 0) {
                    cr_assert_eq(w[i], 0.0f);
                    cr_assert_eq(v[i], 0.0f);
                } else if (before[p->mask_off + i] == 0) {
                    grown++;
                    cr_assert_eq(w[i], 0.0f, "%s[%zu] grown at %g", p->name, i, w[i]);
                    cr_assert_eq(v[i], 0.0f, "%s[%zu] grown with momentum %g", p->name, i, v[i]);
                }
            }
            cr_assert_eq(grown, expect_grow[q], "%s update %d: %zu grown, want %zu", p->name, u,
                         grown, expect_grow[q]);
        }
    }
    free(before);
    net_free(&n);
}

Test(dst, rigl_constant_sparsity_and_zero_regrowth) { constant_sparsity(ELAG_PRUNE_METHOD_RIGL, ELAG_DST_GROW_GRADIENT); }
Test(dst, set_constant_sparsity_and_zero_regrowth) { constant_sparsity(ELAG_PRUNE_METHOD_SET, ELAG_DST_GROW_RANDOM); }

/* RigL grows where |g| is largest: with g = index among the pruned, the grown ones are the
 * last pruned entries. */
Test(dst, rigl_grows_the_top_gradient_set)
{
    net n;
    net_init(&n, 37, ELAG_PRUNE_METHOD_RIGL);
    cr_assert_eq(elag_mask_update(&n.m, &n.s, 0.5), ELAG_OK);
    const elag_param *p = &n.m.reg[n.m.prunable[0]];
    float *g = n.m.grads + p->offset, *mask = n.m.masks + p->mask_off;
    float *before = malloc(p->count * sizeof(float));
    memcpy(before, mask, p->count * sizeof(float));
    for (size_t i = 0; i < p->count; i++) g[i] = (float)i * (i % 2 ? 1.0f : -1.0f);
    size_t live = p->count - zeros(mask, p->count), k = (size_t)llround(0.25 * (double)live);
    cr_assert_eq(elag_dst_update(&n.m, &n.s, ELAG_DST_GROW_GRADIENT, 0.25), ELAG_OK);
    size_t seen = 0;
    for (size_t i = p->count; i-- > 0;) { /* pruned before, from the largest |g| down */
        if (before[i] != 0) continue;
        cr_expect_eq(mask[i], seen < k ? 1.0f : 0.0f, "entry %zu (|g| rank %zu of the pruned)", i,
                     seen);
        seen++;
    }
    free(before);
    net_free(&n);
}

Test(dst, drop_fraction_cosine_decay)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 8);
    cfg.prune.method = ELAG_PRUNE_METHOD_RIGL;
    cfg.prune.drop_fraction = 0.4;
    cfg.prune.start = (elag_when){10, 0};
    cfg.prune.end = (elag_when){90, 0};
    cfg.prune.frequency = 20;
    elag_prune_plan p;
    cr_assert_eq(elag_prune_plan_init(&p, &cfg, 100), ELAG_OK);
    cr_expect(elag_prune_plan_is_update(&p, 0) && !elag_prune_plan_is_regrow(&p, 0));
    const long regrow[] = {10, 30, 50, 70, 90};
    for (long t = 0; t < 100; t++) {
        int want = 0;
        for (size_t i = 0; i < 5; i++) want |= regrow[i] == t;
        cr_expect_eq(elag_prune_plan_is_regrow(&p, t), want, "step %ld", t);
        cr_expect_eq(elag_prune_plan_sparsity(&p, t), 0.9, "held from step 0");
    }
    cr_expect_float_eq(elag_prune_plan_drop_fraction(&p, 10), 0.4, 1e-15);
    cr_expect_float_eq(elag_prune_plan_drop_fraction(&p, 50), 0.2, 1e-15);
    cr_expect_float_eq(elag_prune_plan_drop_fraction(&p, 30), 0.2 * (1 + cos(3.14159265358979323846 / 4)), 1e-15);
    cr_expect_float_eq(elag_prune_plan_drop_fraction(&p, 90), 0.0, 1e-15);
}

/* Stopped after epoch 1 (16 steps) and resumed: drop-and-grow at 20, 25, 30, 35 on both
 * sides end in the same bits; the sparsity is the target's at the end. */
static void resume_through_updates(elag_prune_method method)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 24);
    cfg.prune.method = method;
    cfg.prune.target = 0.8;
    cfg.prune.end = (elag_when){0.75, 1};
    cfg.prune.frequency = 5;
    cfg.prune.distribution = ELAG_PRUNE_DISTRIBUTION_ERK;
    char *full = elag_test_tmpdir("full"), *part = elag_test_tmpdir("part");
    elag_train_summary a, b;
    elag_test_train(&cfg, full, NULL, 0, &a);
    cr_expect_eq(a.mask_updates, 1 + 7, "the first mask and drop-and-grow at 5 .. 35");
    cr_expect_float_eq(a.sparsity, 0.8, 2e-3, "%g", a.sparsity);
    elag_test_train(&cfg, part, NULL, 1, &b);
    char ck[600];
    snprintf(ck, sizeof ck, "%s/model.safetensors", part);
    elag_test_train(&cfg, part, ck, 0, &b);
    unsigned char *wa, *wb;
    size_t na, nb;
    elag_test_checkpoint_bytes(full, &wa, &na);
    elag_test_checkpoint_bytes(part, &wb, &nb);
    cr_assert_eq(na, nb);
    cr_expect_eq(memcmp(wa, wb, na), 0, "resumed run differs from the uninterrupted one");
    cr_expect_eq(a.mask_updates, b.mask_updates);
    for (int i = 0; i < a.n_layers; i++)
        cr_expect_eq(a.layers[i].nonzero, b.layers[i].nonzero);
    free(wa);
    free(wb);
    elag_test_rmtree(full);
    elag_test_rmtree(part);
    free(full);
    free(part);
}

Test(dst, rigl_resume_bit_exact) { resume_through_updates(ELAG_PRUNE_METHOD_RIGL); }
Test(dst, set_resume_bit_exact) { resume_through_updates(ELAG_PRUNE_METHOD_SET); }
