/*
 * Pruning granularities (host/prune/granularity.c): N:M exact in every group at every
 * update of a GMP run, whole zero blocks, whole zero rows (neurons, conv filters) in the
 * number asked for and chosen by their norm (l1 or l2), group scores that ignore pruned
 * entries, no regrowth across updates, and structured global scope across layers.
 */
#include "backend/philox.h"
#include "model/model.h"
#include "prune/mask.h"
#include "prune/schedule.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* conv1 (4, 2, 2, 2) -> (4, 8) as a matrix; fc1 (8, 64); fc2 (4, 8). */
static const char conv_net[] = "device: cpu\n"
                               "model:\n  layers:\n"
                               "    - {type: conv2d, out_channels: 4, kernel: 2}\n"
                               "    - {type: relu}\n    - {type: flatten}\n"
                               "    - {type: linear, out_features: 8}\n"
                               "    - {type: relu}\n"
                               "    - {type: linear, out_features: 4}\n";

typedef struct net {
    elag_config cfg;
    elag_backend *be;
    elag_model m;
    elag_prune_setup s;
} net;

/* Builds conv_net (input (2, 5, 5), 4 classes) with `prune` appended (YAML lines under
 * "prune:") and its prune setup. */
static void net_open(net *n, const char *prune)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%sprune:\n%s", conv_net, prune);
    cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "net.yaml", NULL, 0, &n->cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_backend_open("cpu", 1, &n->be, NULL, 0), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(
        elag_model_init(&n->m, &n->cfg, (elag_fshape){2, 5, 5}, 4, 2, ELAG_MODEL_TRAIN, n->be),
        ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_model_init_params(&n->m, 11), ELAG_OK);
    cr_assert_eq(n->m.n_prunable, 3);
    cr_assert_eq(elag_prune_setup_init(&n->s, &n->cfg, &n->m), ELAG_OK, "%s", elag_last_error());
}

static void net_close(net *n)
{
    elag_prune_setup_free(&n->s);
    elag_model_free(&n->m);
    elag_backend_free(n->be);
}

static const elag_param *tensor(const net *n, int q)
{
    return &n->m.reg[n->m.prunable[q]];
}

/* New values for the live weights (as training would give), so each update has other
 * scores to choose from; pruned weights stay 0. */
static void perturb(net *n, uint64_t round)
{
    for (int q = 0; q < n->m.n_prunable; q++) {
        const elag_param *p = tensor(n, q);
        for (size_t i = 0; i < p->count; i++) {
            uint32_t r = elag_philox_u32(round, (uint64_t)q, i);
            float v = (float)r / 4294967296.0f * 2.0f - 1.0f;
            if (n->m.masks[p->mask_off + i] != 0.0f) n->m.params[p->offset + i] = v;
        }
    }
}

/* Every pruned entry of `before` is still pruned, and every pruned weight is 0. */
static void assert_no_regrowth(const net *n, const float *before, const char *what)
{
    for (size_t i = 0; i < n->m.n_masked; i++)
        cr_assert(!(before[i] == 0.0f && n->m.masks[i] != 0.0f), "%s: entry %zu regrew", what, i);
    for (int q = 0; q < n->m.n_prunable; q++) {
        const elag_param *p = tensor(n, q);
        for (size_t i = 0; i < p->count; i++)
            if (n->m.masks[p->mask_off + i] == 0.0f)
                cr_assert_eq(n->m.params[p->offset + i], 0.0f, "%s: %s[%zu] not zero", what,
                             p->name, i);
    }
}

static size_t zeros(const float *x, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += x[i] == 0.0f;
    return z;
}

/* Runs the config's GMP plan over `steps` steps, perturbing weights between updates and
 * calling check(n, sparsity) after each update; also checks no regrowth. */
static void gmp_run(net *n, long steps, void (*check)(const net *, double))
{
    elag_prune_plan plan;
    cr_assert_eq(elag_prune_plan_init(&plan, &n->cfg, steps), ELAG_OK, "%s", elag_last_error());
    float *before = malloc(n->m.n_masked * sizeof(float));
    int updates = 0;
    for (long t = 0; t < steps; t++) {
        if (!elag_prune_plan_is_update(&plan, t)) continue;
        memcpy(before, n->m.masks, n->m.n_masked * sizeof(float));
        double s = elag_prune_plan_sparsity(&plan, t);
        cr_assert_eq(elag_mask_update(&n->m, &n->s, s), ELAG_OK, "%s", elag_last_error());
        assert_no_regrowth(n, before, "gmp");
        check(n, s);
        perturb(n, (uint64_t)t + 1);
        updates++;
    }
    cr_assert(updates >= 5, "only %d updates", updates);
    free(before);
}

static int nm_n, nm_m;

static void check_nm(const net *n, double s)
{
    (void)s;
    for (int q = 0; q < n->m.n_prunable; q++) {
        const elag_param *p = tensor(n, q);
        cr_assert_eq(p->cols % nm_m, 0);
        for (size_t g = 0; g < p->count; g += (size_t)nm_m)
            cr_assert_eq(zeros(n->m.masks + p->mask_off + g, (size_t)nm_m), (size_t)(nm_m - nm_n),
                         "%s group at %zu: %d:%d not exact", p->name, g, nm_n, nm_m);
    }
}

static void nm_case(int N, int M)
{
    char prune[256];
    snprintf(prune, sizeof prune,
             "  method: gmp\n  granularity: nm\n  n: %d\n  m: %d\n  frequency: 10\n"
             "  target: 0.9\n  end: 0.8\n",
             N, M);
    net n;
    net_open(&n, prune);
    cr_assert_float_eq(n.cfg.prune.target, 1.0 - (double)N / M, 1e-15, "target is 1 - N/M");
    cr_assert_float_eq(n.cfg.prune.initial, 1.0 - (double)N / M, 1e-15, "in full at once");
    nm_n = N;
    nm_m = M;
    gmp_run(&n, 100, check_nm);
    net_close(&n);
}

Test(granularity, nm_2_4_exact_every_update)
{
    nm_case(2, 4);
}
Test(granularity, nm_1_4_exact_every_update)
{
    nm_case(1, 4);
}
Test(granularity, nm_4_8_exact_every_update)
{
    nm_case(4, 8);
}

static int blk_r, blk_c;

/* Every (blk_r, blk_c) block is all zero or all one, and the zeros are the fewest whole
 * blocks that reach llround(s * count). */
static void check_blocks(const net *n, double s)
{
    for (int q = 0; q < n->m.n_prunable; q++) {
        const elag_param *p = tensor(n, q);
        const float *mk = n->m.masks + p->mask_off;
        size_t gsize = (size_t)blk_r * (size_t)blk_c, pruned = 0;
        for (int r0 = 0; r0 < p->rows; r0 += blk_r)
            for (int c0 = 0; c0 < p->cols; c0 += blk_c) {
                size_t z = 0;
                for (int i = 0; i < blk_r; i++)
                    for (int j = 0; j < blk_c; j++)
                        z += mk[(size_t)(r0 + i) * (size_t)p->cols + (size_t)(c0 + j)] == 0.0f;
                cr_assert(z == 0 || z == gsize, "%s block (%d, %d) has %zu of %zu zeros", p->name,
                          r0, c0, z, gsize);
                pruned += z == gsize;
            }
        size_t k = (size_t)llround(s * (double)p->count);
        cr_assert_eq(pruned, (k + gsize - 1) / gsize, "%s at %.3f", p->name, s);
    }
}

Test(granularity, block_whole_blocks_every_update)
{
    net n;
    net_open(&n, "  method: gmp\n  granularity: block\n  block: [2, 4]\n  frequency: 10\n"
                 "  target: 0.75\n  end: 0.8\n");
    blk_r = 2;
    blk_c = 4;
    gmp_run(&n, 100, check_blocks);
    net_close(&n);
}

Test(granularity, neuron_rows_every_update)
{
    net n;
    net_open(&n, "  method: gmp\n  granularity: neuron\n  frequency: 10\n  target: 0.5\n"
                 "  end: 0.8\n");
    elag_prune_plan plan;
    cr_assert_eq(elag_prune_plan_init(&plan, &n.cfg, 100), ELAG_OK);
    for (long t = 0; t < 100; t++) {
        if (!elag_prune_plan_is_update(&plan, t)) continue;
        double s = elag_prune_plan_sparsity(&plan, t);
        cr_assert_eq(elag_mask_update(&n.m, &n.s, s), ELAG_OK, "%s", elag_last_error());
        for (int q = 0; q < n.m.n_prunable; q++) {
            const elag_param *p = tensor(&n, q);
            size_t rows_zero = 0;
            for (int r = 0; r < p->rows; r++) {
                size_t z = zeros(n.m.masks + p->mask_off + (size_t)r * p->cols, (size_t)p->cols);
                cr_assert(z == 0 || z == (size_t)p->cols, "%s row %d partly pruned", p->name, r);
                rows_zero += z != 0;
            }
            size_t k = (size_t)llround(s * (double)p->count);
            cr_assert_eq(rows_zero, (k + p->cols - 1) / p->cols, "%s at %.3f", p->name, s);
        }
        perturb(&n, (uint64_t)t + 7);
    }
    /* at the end: half the filters of conv1 and half the neurons of each linear layer */
    cr_assert_eq(zeros(n.m.masks + tensor(&n, 0)->mask_off, 32), 2 * 8);
    cr_assert_eq(zeros(n.m.masks + tensor(&n, 1)->mask_off, 512), 4 * 64);
    cr_assert_eq(zeros(n.m.masks + tensor(&n, 2)->mask_off, 32), 2 * 8);
    net_close(&n);
}

/* Sets the rows of tensor q: row r = vals[r] (cols values each, repeated from a pattern). */
static void set_rows(net *n, int q, const float *row_patterns, int pattern_len)
{
    const elag_param *p = tensor(n, q);
    for (int r = 0; r < p->rows; r++)
        for (int c = 0; c < p->cols; c++)
            n->m.params[p->offset + (size_t)r * p->cols + c] =
                row_patterns[(size_t)r * pattern_len + (size_t)(c % pattern_len)];
}

/* Channel = conv filters = rows; the lowest-norm filters go, and l1 and l2 differ: a row
 * with one large entry has the larger l2 (RMS) but the smaller l1 (mean |w|). */
static void channel_norm_case(const char *norm, int spiky_pruned)
{
    char prune[160];
    snprintf(prune, sizeof prune,
             "  method: oneshot\n  granularity: channel\n  norm: %s\n"
             "  target: 0.25\n",
             norm);
    net n;
    net_open(&n, prune);
    /* conv1 is (4, 8): rows 0 and 3 large, row 1 spiky [3, 0, 0, 0], row 2 flat [1, 1, 1, 1] */
    const float rows[4 * 4] = {5, 5, 5, 5, 3, 0, 0, 0, 1, 1, 1, 1, 5, 5, 5, 5};
    set_rows(&n, 0, rows, 4);
    cr_assert_eq(elag_mask_update(&n.m, &n.s, 0.25), ELAG_OK, "%s", elag_last_error());
    const elag_param *p = tensor(&n, 0);
    int pruned_row = -1;
    for (int r = 0; r < 4; r++)
        if (zeros(n.m.masks + p->mask_off + (size_t)r * 8, 8) == 8) {
            cr_assert_eq(pruned_row, -1, "one filter only");
            pruned_row = r;
        }
    cr_assert_eq(pruned_row, spiky_pruned ? 1 : 2, "norm %s pruned filter %d", norm, pruned_row);
    net_close(&n);
}

Test(granularity, channel_by_l2_norm)
{
    channel_norm_case("l2", 0);
}
Test(granularity, channel_by_l1_norm)
{
    channel_norm_case("l1", 1);
}

/* Pruned entries score -1 (magnitude): a group norm over raw scores would make a pruned
 * block look important once the live weights are small, and it would grow back. */
Test(granularity, group_scores_ignore_pruned_entries)
{
    net n;
    net_open(&n, "  method: gmp\n  granularity: block\n  block: 2\n");
    cr_assert_eq(elag_mask_update(&n.m, &n.s, 0.5), ELAG_OK, "%s", elag_last_error());
    float *before = malloc(n.m.n_masked * sizeof(float));
    memcpy(before, n.m.masks, n.m.n_masked * sizeof(float));
    for (int q = 0; q < n.m.n_prunable; q++) {
        const elag_param *p = tensor(&n, q);
        for (size_t i = 0; i < p->count; i++) n.m.params[p->offset + i] *= 1e-3f;
    }
    cr_assert_eq(elag_mask_update(&n.m, &n.s, 0.6), ELAG_OK, "%s", elag_last_error());
    assert_no_regrowth(&n, before, "after shrinking the live weights");
    free(before);
    net_close(&n);
}

/* Global scope with rows: groups of all pool tensors ranked by RMS norm together; an
 * excluded layer takes no part even when its rows are the smallest. */
Test(granularity, neuron_global_scope_with_excluded_layer)
{
    net n;
    net_open(&n, "  method: oneshot\n  granularity: neuron\n  scope: global\n"
                 "  layers:\n    - {name: fc2, exclude: true}\n");
    const elag_param *conv = tensor(&n, 0), *fc1 = tensor(&n, 1), *fc2 = tensor(&n, 2);
    for (size_t i = 0; i < fc2->count; i++) n.m.params[fc2->offset + i] = 1e-6f;
    /* conv1's filters are tiny too: a global ranking takes them before fc1's neurons */
    for (size_t i = 0; i < conv->count; i++) n.m.params[conv->offset + i] *= 1e-3f;
    size_t pool = conv->count + fc1->count; /* 32 + 512 */
    double s = 0.2;                         /* 109 entries: all 4 filters (32) + 2 neurons */
    cr_assert_eq(elag_mask_update(&n.m, &n.s, s), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(zeros(n.m.masks + fc2->mask_off, fc2->count), 0, "excluded fc2 stays dense");
    cr_assert_eq(zeros(n.m.params + fc2->offset, fc2->count), 0);
    cr_assert_eq(zeros(n.m.masks + conv->mask_off, conv->count), 32, "conv1's filters first");
    size_t k = (size_t)llround(s * (double)pool);
    size_t z = zeros(n.m.masks + fc1->mask_off, fc1->count);
    cr_assert_eq(z % 64, 0, "whole neurons");
    cr_assert_eq(32 + z, 32 + ((k - 32 + 63) / 64) * 64, "fewest rows reaching %zu zeros", k);
    net_close(&n);
}

/* Element granularity is unchanged: exact counts per tensor, device selection. */
Test(granularity, element_exact_every_update)
{
    net n;
    net_open(&n, "  method: gmp\n  frequency: 10\n  target: 0.9\n  end: 0.8\n");
    elag_prune_plan plan;
    cr_assert_eq(elag_prune_plan_init(&plan, &n.cfg, 100), ELAG_OK);
    float *before = malloc(n.m.n_masked * sizeof(float));
    for (long t = 0; t < 100; t++) {
        if (!elag_prune_plan_is_update(&plan, t)) continue;
        memcpy(before, n.m.masks, n.m.n_masked * sizeof(float));
        double s = elag_prune_plan_sparsity(&plan, t);
        cr_assert_eq(elag_mask_update(&n.m, &n.s, s), ELAG_OK);
        assert_no_regrowth(&n, before, "element");
        for (int q = 0; q < n.m.n_prunable; q++) {
            const elag_param *p = tensor(&n, q);
            cr_assert_eq(zeros(n.m.masks + p->mask_off, p->count),
                         (size_t)llround(s * (double)p->count));
        }
        perturb(&n, (uint64_t)t + 3);
    }
    free(before);
    net_close(&n);
}

/* Shapes that do not fit the pattern are refused when the setup is built, naming the layer. */
Test(granularity, misfit_shapes_name_the_layer)
{
    static const struct {
        const char *prune, *needle;
    } cases[] = {
        {"  method: gmp\n  granularity: block\n  block: [3, 4]\n",
         "layer 'conv1' (conv2d): prune.granularity block: its weight is (4, 8) as a matrix, "
         "and prune.block [3, 4] does not divide it"},
        {"  method: gmp\n  granularity: block\n  block: [4, 16]\n", "layer 'conv1'"},
        {"  method: gmp\n  granularity: nm\n  n: 1\n  m: 16\n",
         "layer 'conv1' (conv2d): prune.granularity nm needs rows of whole groups of prune.m 16, "
         "but its rows have 8 inputs"},
        /* an excluded layer need not fit: the next one is named */
        {"  method: gmp\n  granularity: block\n  block: [8, 8]\n"
         "  layers:\n    - {name: conv1, exclude: true}\n",
         "layer 'fc2' (linear)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[2048];
        elag_config cfg;
        elag_backend *be;
        elag_model m;
        elag_prune_setup s;
        snprintf(yaml, sizeof yaml, "%sprune:\n%s", conv_net, cases[i].prune);
        cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "net.yaml", NULL, 0, &cfg), ELAG_OK,
                     "%s", elag_last_error());
        cr_assert_eq(elag_backend_open("cpu", 1, &be, NULL, 0), ELAG_OK);
        cr_assert_eq(elag_model_init(&m, &cfg, (elag_fshape){2, 5, 5}, 4, 2, ELAG_MODEL_TRAIN, be),
                     ELAG_OK);
        cr_assert_eq(elag_prune_setup_init(&s, &cfg, &m), ELAG_ERR_INPUT, "case %zu", i);
        const char *msg = elag_last_error();
        cr_assert(strncmp(msg, "net.yaml: prune: ", 17) == 0, "case %zu: %s", i, msg);
        cr_assert(strstr(msg, cases[i].needle), "case %zu: %s", i, msg);
        elag_prune_setup_free(&s);
        elag_model_free(&m);
        elag_backend_free(be);
    }
}
