/*
 * Pruning criteria (host/prune/criterion.c): each score against a worked example on a
 * 4 x 2 weight (fc2 of a 16-2-4 MLP), the per-step state updates (Taylor EMA, movement
 * sum, SNIP's sum over batches), the refusal to rank all-zero gradients, a step-0 Taylor
 * and SNIP prune through the trainer (gradients computed first), and resuming bit for bit
 * with criterion state in the checkpoint.
 */
#include "backend/philox.h"
#include "io/safetensors.h"
#include "prune/mask.h"
#include "support/fixtures.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct net {
    elag_config cfg;
    elag_backend *be;
    elag_model m;
    elag_prune_setup s;
    float *w, *g, *mask, *state; /* fc2's (8 entries; cpu: device = host memory) */
} net;

static const float W[8] = {0.5f, -0.25f, 2.0f, 0.0f, -1.0f, 0.75f, 0.0f, -0.5f};
static const float G[8] = {0.25f, 1.0f, -0.5f, 3.0f, 0.5f, 0.0f, -2.0f, -1.0f};
static const float MASK[8] = {1, 1, 1, 1, 1, 1, 0, 1};
static const float STATE[8] = {1.0f, 0.0f, 0.5f, 2.0f, 0.0f, 0.25f, 4.0f, 0.0f};

static void net_init(net *n, elag_prune_criterion c)
{
    elag_test_small_config(&n->cfg, 2); /* fc1 (2, 16), fc2 (4, 2) */
    n->cfg.prune.method = ELAG_PRUNE_METHOD_GMP;
    n->cfg.prune.criterion = c;
    n->cfg.prune.taylor_beta = 0.5; /* exact in binary: the examples are exact */
    cr_assert_eq(elag_backend_open("cpu", 1, &n->be, NULL, 0), ELAG_OK);
    cr_assert_eq(elag_model_init(&n->m, &n->cfg, (elag_fshape){16, 1, 1}, 4, 8, 1, n->be), ELAG_OK,
                 "%s", elag_last_error());
    cr_assert_eq(elag_model_init_params(&n->m, 3), ELAG_OK);
    cr_assert_eq(elag_prune_setup_init(&n->s, &n->cfg, &n->m), ELAG_OK, "%s", elag_last_error());
    const elag_param *p = &n->m.reg[n->m.prunable[1]];
    cr_assert_eq(p->count, 8);
    n->w = n->m.params + p->offset;
    n->g = n->m.grads + p->offset;
    n->mask = n->m.masks + p->mask_off;
    n->state = n->s.state ? n->s.state + p->mask_off : NULL;
    memcpy(n->w, W, sizeof W);
    memcpy(n->g, G, sizeof G);
    memcpy(n->mask, MASK, sizeof MASK);
    if (n->state) memcpy(n->state, STATE, sizeof STATE);
}

static void net_free(net *n)
{
    elag_prune_setup_free(&n->s);
    elag_model_free(&n->m);
    elag_backend_free(n->be);
}

static void expect_eq8(const float *got, const float *want, const char *what)
{
    for (int i = 0; i < 8; i++)
        cr_expect_eq(got[i], want[i], "%s[%d] = %.9g, want %.9g", what, i, got[i], want[i]);
}

static void score_fc2(net *n, float *out)
{
    cr_assert_eq(n->s.criterion->score(&n->m, &n->s, 1, out), ELAG_OK, "%s", elag_last_error());
}

/* w g = {0.125, -0.25, -1, 0, -0.5, 0, 0, 0.5} */

Test(criteria, magnitude_worked_example)
{
    net n;
    net_init(&n, ELAG_PRUNE_CRITERION_MAGNITUDE);
    float sc[8];
    score_fc2(&n, sc);
    const float want[8] = {0.5f, 0.25f, 2.0f, 0.0f, 1.0f, 0.75f, -1.0f, 0.5f};
    expect_eq8(sc, want, "magnitude");
    net_free(&n);
}

Test(criteria, random_is_philox_of_seed_tensor_and_step)
{
    net n;
    net_init(&n, ELAG_PRUNE_CRITERION_RANDOM);
    float a[8], b[8], c[8];
    n.s.step = 5;
    score_fc2(&n, a);
    score_fc2(&n, c);
    n.s.step = 6;
    score_fc2(&n, b);
    int differ = 0;
    for (int i = 0; i < 8; i++) {
        float u = elag_philox_uniform(n.cfg.seed, elag_prune_random_stream(1, 5), (uint64_t)i);
        cr_expect_eq(a[i], MASK[i] ? u : -1.0f, "[%d] %.9g", i, a[i]);
        cr_expect(a[i] >= -1.0f && a[i] < 1.0f);
        cr_expect_eq(a[i], c[i], "the same step scores the same");
        differ += MASK[i] && a[i] != b[i];
    }
    cr_expect_gt(differ, 0, "another step draws other scores");
    net_free(&n);
}

Test(criteria, taylor_worked_example_and_ema)
{
    net n;
    net_init(&n, ELAG_PRUNE_CRITERION_TAYLOR);
    float sc[8];
    score_fc2(&n, sc); /* 0.5 state + 0.5 |w g|, pruned -1 */
    const float want[8] = {0.5625f, 0.125f, 0.75f, 1.0f, 0.25f, 0.125f, -1.0f, 0.25f};
    expect_eq8(sc, want, "taylor score");
    expect_eq8(n.state, STATE, "state after scoring (unchanged)");
    cr_assert_eq(elag_prune_observe(&n.m, &n.s), ELAG_OK);
    const float ema[8] = {0.5625f, 0.125f, 0.75f, 1.0f, 0.25f, 0.125f, 2.0f, 0.25f};
    expect_eq8(n.state, ema, "taylor EMA");
    net_free(&n);
}

Test(criteria, snip_sums_over_batches)
{
    net n;
    net_init(&n, ELAG_PRUNE_CRITERION_SNIP);
    cr_assert_eq(elag_prune_gather_reset(&n.s, &n.m), ELAG_OK);
    cr_assert_eq(elag_prune_gather(&n.m, &n.s), ELAG_OK);
    for (int i = 0; i < 8; i++) n.g[i] = 2.0f * G[i]; /* a second batch */
    cr_assert_eq(elag_prune_gather(&n.m, &n.s), ELAG_OK);
    float sc[8];
    score_fc2(&n, sc); /* |w g1| + |w g2| = 3 |w g| */
    const float want[8] = {0.375f, 0.75f, 3.0f, 0.0f, 1.5f, 0.0f, -1.0f, 1.5f};
    expect_eq8(sc, want, "snip");
    net_free(&n);
}

Test(criteria, movement_hard_and_soft)
{
    net n;
    net_init(&n, ELAG_PRUNE_CRITERION_MOVEMENT);
    float sc[8];
    score_fc2(&n, sc); /* state - w g, pruned lowest */
    const float want[8] = {0.875f, 0.25f, 1.5f, 2.0f, 0.5f, 0.25f, -FLT_MAX, -0.5f};
    expect_eq8(sc, want, "movement");
    cr_assert_eq(elag_prune_observe(&n.m, &n.s), ELAG_OK);
    const float sum[8] = {0.875f, 0.25f, 1.5f, 2.0f, 0.5f, 0.25f, 4.0f, -0.5f};
    expect_eq8(n.state, sum, "movement sum");
    net_free(&n);

    net_init(&n, ELAG_PRUNE_CRITERION_SOFT_MOVEMENT);
    score_fc2(&n, sc); /* the pruned entry keeps its frozen score 4 */
    const float soft[8] = {0.875f, 0.25f, 1.5f, 2.0f, 0.5f, 0.25f, 4.0f, -0.5f};
    expect_eq8(sc, soft, "soft_movement");
    /* the 2 lowest of fc2 at 25%: -0.5 (7) and the first 0.25 (1); entry 6 comes back */
    memset(n.m.grads, 0, n.m.n_params * sizeof(float));
    memcpy(n.g, G, sizeof G);
    cr_assert_eq(elag_mask_update(&n.m, &n.s, 0.25), ELAG_OK, "%s", elag_last_error());
    const float mask[8] = {1, 0, 1, 1, 1, 1, 1, 0};
    expect_eq8(n.mask, mask, "soft_movement mask");
    cr_expect_eq(n.w[6], 0.0f, "a weight that comes back starts at 0");
    net_free(&n);
}

Test(criteria, all_zero_gradients_are_refused)
{
    const elag_prune_criterion c[] = {ELAG_PRUNE_CRITERION_TAYLOR, ELAG_PRUNE_CRITERION_MOVEMENT,
                                      ELAG_PRUNE_CRITERION_SNIP};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        net n;
        net_init(&n, c[i]);
        memset(n.m.grads, 0, n.m.n_params * sizeof(float));
        cr_expect_eq(elag_mask_update(&n.m, &n.s, 0.5), ELAG_ERR_INTERNAL, "%s",
                     n.s.criterion->name);
        cr_expect(strstr(elag_last_error(), "every gradient of the prunable weights is zero"), "%s",
                  elag_last_error());
        net_free(&n);
    }
}

Test(criteria, signed_scores_refuse_group_norms)
{
    net n;
    net_init(&n, ELAG_PRUNE_CRITERION_MAGNITUDE);
    elag_config c = n.cfg;
    c.prune.criterion = ELAG_PRUNE_CRITERION_MOVEMENT;
    c.prune.granularity = ELAG_PRUNE_GRANULARITY_NEURON;
    elag_prune_setup s;
    cr_expect_eq(elag_prune_setup_init(&s, &c, &n.m), ELAG_ERR_INPUT);
    cr_expect(strstr(elag_last_error(), "signed scores"), "%s", elag_last_error());
    elag_prune_setup_free(&s);
    net_free(&n);
}

/* Fraction of fc1's zeros among its llround(s n) lowest indices: 1 means "by index". */
static double index_ordered(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    elag_st_file *f;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    const elag_st_tensor *t = elag_st_find(f, "fc1.mask");
    cr_assert_not_null(t);
    const unsigned char *m = t->data;
    size_t zeros = 0, low = 0;
    for (size_t i = 0; i < t->nbytes; i++) zeros += m[i] == 0;
    for (size_t i = 0; i < zeros; i++) low += m[i] == 0;
    elag_st_close(f);
    return (double)low / (double)zeros;
}

/* Step 0, before any training step: the gradients come from a pass on the step's batch. */
Test(criteria, step_zero_prune_uses_computed_gradients)
{
    const elag_prune_criterion c[] = {ELAG_PRUNE_CRITERION_TAYLOR, ELAG_PRUNE_CRITERION_SNIP,
                                      ELAG_PRUNE_CRITERION_MOVEMENT};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        elag_config cfg;
        elag_test_small_config(&cfg, 24);
        cfg.train.epochs = 1;
        cfg.prune.method = ELAG_PRUNE_METHOD_ONESHOT;
        cfg.prune.criterion = c[i];
        cfg.prune.target = 0.5;
        cfg.prune.snip_batches = 3;
        char *dir = elag_test_tmpdir("crit0");
        elag_train_summary sum;
        elag_test_train(&cfg, dir, NULL, 0, &sum);
        cr_expect_eq(sum.mask_updates, 1);
        cr_expect_float_eq(sum.layers[0].params - sum.layers[0].nonzero,
                           (double)llround(0.5 * 384), 0.5, "%s", elag_prune_criterion_name(c[i]));
        cr_expect_lt(index_ordered(dir), 0.9, "%s pruned by index", elag_prune_criterion_name(c[i]));
        elag_test_rmtree(dir);
        free(dir);
    }
}

/* A run stopped after epoch 1 and resumed ends bit for bit like an uninterrupted one. */
static void expect_resume_exact(const elag_config *cfg)
{
    char *full = elag_test_tmpdir("full"), *part = elag_test_tmpdir("part");
    elag_train_summary a, b;
    elag_test_train(cfg, full, NULL, 0, &a);
    elag_test_train(cfg, part, NULL, 1, &b);
    char ck[600];
    snprintf(ck, sizeof ck, "%s/model.safetensors", part);
    elag_test_train(cfg, part, ck, 0, &b);
    unsigned char *wa, *wb;
    size_t na, nb;
    elag_test_checkpoint_bytes(full, &wa, &na);
    elag_test_checkpoint_bytes(part, &wb, &nb);
    cr_assert_eq(na, nb);
    cr_expect_eq(memcmp(wa, wb, na), 0, "resumed run differs from the uninterrupted one");
    cr_expect_eq(a.mask_updates, b.mask_updates);
    free(wa);
    free(wb);
    elag_test_rmtree(full);
    elag_test_rmtree(part);
    free(full);
    free(part);
}

Test(criteria, resume_bit_exact_with_criterion_state)
{
    const elag_prune_criterion c[] = {ELAG_PRUNE_CRITERION_TAYLOR, ELAG_PRUNE_CRITERION_MOVEMENT,
                                      ELAG_PRUNE_CRITERION_RANDOM};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        elag_config cfg;
        elag_test_small_config(&cfg, 24); /* 16 steps an epoch */
        cfg.prune.method = ELAG_PRUNE_METHOD_GMP;
        cfg.prune.criterion = c[i];
        cfg.prune.target = 0.8;
        cfg.prune.start = (elag_when){0.25, 1};
        cfg.prune.end = (elag_when){0.75, 1};
        cfg.prune.frequency = 3;
        expect_resume_exact(&cfg);
    }
}
