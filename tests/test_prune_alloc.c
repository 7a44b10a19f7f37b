/*
 * Scope and allocation (host/prune/allocation.c, mask.c): ERK against hand-computed
 * densities (a capped layer included), prune.layers overrides (glob, first match, exclude,
 * target scaled with the schedule, min/max), keep_first_last, global vs layer scope with
 * an excluded layer, and the config errors of prune.* (file:line:column, one line).
 */
#include "model/model.h"
#include "prune/mask.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* fc1 (16, 2) = 32, fc2 (16, 16) = 256, fc3 (4, 16) = 64 weights: 352. */
static const char mlp[] = "device: cpu\n"
                          "model:\n  layers:\n"
                          "    - {type: linear, out_features: 16}\n    - {type: relu}\n"
                          "    - {type: linear, out_features: 16}\n    - {type: relu}\n"
                          "    - {type: linear, out_features: 4}\n";

typedef struct net {
    elag_config cfg;
    elag_backend *be;
    elag_model m;
    elag_prune_setup s;
} net;

static void net_open(net *n, const char *prune)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%sprune:\n%s", mlp, prune);
    cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "mlp.yaml", NULL, 0, &n->cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_backend_open("cpu", 1, &n->be, NULL, 0), ELAG_OK);
    cr_assert_eq(
        elag_model_init(&n->m, &n->cfg, (elag_fshape){2, 1, 1}, 4, 2, ELAG_MODEL_TRAIN, n->be),
        ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_model_init_params(&n->m, 5), ELAG_OK);
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

static size_t zeros_of(const net *n, int q)
{
    const elag_param *p = tensor(n, q);
    size_t z = 0;
    for (size_t i = 0; i < p->count; i++) z += n->m.masks[p->mask_off + i] == 0.0f;
    return z;
}

static void scale(net *n, int q, float f)
{
    const elag_param *p = tensor(n, q);
    for (size_t i = 0; i < p->count; i++) n->m.params[p->offset + i] *= f;
}

/* Updates to s and checks the zeros of fc1, fc2, fc3. */
static void expect_zeros(net *n, double s, size_t z1, size_t z2, size_t z3)
{
    cr_assert_eq(elag_mask_update(&n->m, &n->s, s), ELAG_OK, "%s", elag_last_error());
    size_t got[3] = {zeros_of(n, 0), zeros_of(n, 1), zeros_of(n, 2)};
    cr_assert(got[0] == z1 && got[1] == z2 && got[2] == z3,
              "at %.3f: zeros (%zu, %zu, %zu), want (%zu, %zu, %zu)", s, got[0], got[1], got[2], z1,
              z2, z3);
}

Test(alloc, erk_raw_is_sum_over_product_of_dims)
{
    elag_param conv = {.ndim = 4, .shape = {4, 2, 3, 3}};
    cr_assert_float_eq(elag_prune_erk_raw(&conv), 12.0 / 72.0, 1e-15);
    elag_param lin = {.ndim = 2, .shape = {300, 784}};
    cr_assert_float_eq(elag_prune_erk_raw(&lin), 1084.0 / 235200.0, 1e-15);
}

/* By hand, raw = (18/32, 32/256, 20/64), counts (32, 256, 64), N = 352.
 * s = 0.5: 176 nonzeros; c = 176/70 gives fc1 a density 1.41 > 1, so fc1 is dense and
 *   c = (176 - 32) / (32 + 20) = 144/52: fc2 18/52, fc3 45/52 (< 1).
 * s = 0.9: 35.2 nonzeros; c = 35.2/70, no density above 1. */
Test(alloc, erk_matches_its_formula_with_a_capped_layer)
{
    net n;
    net_open(&n, "  method: gmp\n  distribution: erk\n  target: 0.9\n");
    double t[3], lo[3], hi[3];
    elag_prune_alloc_targets(&n.m, n.s.tensors, n.s.scope, n.s.distribution, 0.5, 0.9, t, lo, hi);
    cr_assert_float_eq(t[0], 0.0, 1e-12, "fc1 capped: dense");
    cr_assert_float_eq(t[1], 1.0 - 18.0 / 52.0, 1e-12);
    cr_assert_float_eq(t[2], 1.0 - 45.0 / 52.0, 1e-12);
    double nnz = 32 * (1 - t[0]) + 256 * (1 - t[1]) + 64 * (1 - t[2]);
    cr_assert_float_eq(nnz, 176.0, 1e-9, "the budget is kept");
    expect_zeros(&n, 0.5, 0, (size_t)llround(256 * (1 - 18.0 / 52)),
                 (size_t)llround(64 * (1 - 45.0 / 52)));

    elag_prune_alloc_targets(&n.m, n.s.tensors, n.s.scope, n.s.distribution, 0.9, 0.9, t, lo, hi);
    const double raw[3] = {18.0 / 32, 32.0 / 256, 20.0 / 64}, c = 35.2 / 70.0;
    for (int q = 0; q < 3; q++) cr_assert_float_eq(t[q], 1.0 - raw[q] * c, 1e-12, "tensor %d", q);
    net_close(&n);
}

Test(alloc, erk_solver_iterates_until_no_density_exceeds_one)
{
    /* one tiny tensor capped in the first round, a second only once the first is */
    const double raw[3] = {1.0, 0.15, 0.01};
    const size_t count[3] = {10, 100, 1000};
    double d[3];
    elag_prune_erk(raw, count, 3, 0.2, d); /* 222 nonzeros */
    /* round 1: c = 222/35: raw 1 -> 6.34 capped, raw 0.15 -> 0.95 not yet; round 2:
     * c = 212/25 = 8.48: raw 0.15 -> 1.27 capped; round 3: c = 112/10 = 11.2: 0.112 */
    cr_assert_float_eq(d[0], 1.0, 0);
    cr_assert_float_eq(d[1], 1.0, 0);
    cr_assert_float_eq(d[2], 0.112, 1e-12);
}

Test(alloc, overrides_exclude_target_and_max)
{
    net n;
    net_open(&n, "  method: gmp\n  target: 0.9\n  layers:\n"
                 "    - {name: fc1, exclude: true}\n"
                 "    - {name: fc2, target: 0.3}\n"
                 "    - {name: 'fc*', max: 0.6}\n");
    cr_assert_eq(n.s.tensors[0].rule, 0);
    cr_assert_eq(n.s.tensors[1].rule, 1);
    cr_assert_eq(n.s.tensors[2].rule, 2, "fc3 matches the glob");
    /* at the final target: fc1 dense, fc2 its own 0.3, fc3 0.9 clamped to 0.6 */
    expect_zeros(&n, 0.9, 0, (size_t)llround(0.3 * 256), (size_t)llround(0.6 * 64));
    net_close(&n);

    /* half-way through the schedule targets and bounds scale by s / target */
    net_open(&n, "  method: gmp\n  target: 0.9\n  layers:\n"
                 "    - {name: fc1, exclude: true}\n"
                 "    - {name: fc2, target: 0.3}\n"
                 "    - {name: 'fc*', max: 0.6}\n");
    expect_zeros(&n, 0.45, 0, (size_t)llround(0.15 * 256), (size_t)llround(0.3 * 64));
    net_close(&n);
}

Test(alloc, override_min_and_first_match_wins)
{
    net n;
    net_open(&n, "  method: gmp\n  target: 0.9\n  layers:\n    - {name: fc3, min: 0.95}\n");
    expect_zeros(&n, 0.9, (size_t)llround(0.9 * 32), (size_t)llround(0.9 * 256),
                 (size_t)llround(0.95 * 64));
    net_close(&n);

    net_open(&n, "  method: gmp\n  target: 0.9\n  layers:\n"
                 "    - {name: fc2, exclude: true}\n    - {name: 'fc?', target: 0.5}\n");
    expect_zeros(&n, 0.9, 16, 0, 32);
    net_close(&n);
}

Test(alloc, keep_first_last)
{
    net n;
    net_open(&n, "  method: gmp\n  target: 0.5\n  keep_first_last: true\n");
    cr_assert_eq(n.s.tensors[0].rule, ELAG_PRUNE_RULE_EDGE);
    cr_assert_eq(n.s.tensors[2].rule, ELAG_PRUNE_RULE_EDGE);
    expect_zeros(&n, 0.5, 0, 128, 0);
    net_close(&n);
    /* an override for the first layer wins over the policy */
    net_open(&n, "  method: gmp\n  target: 0.5\n  keep_first_last: true\n"
                 "  layers:\n    - {name: fc1, target: 0.25}\n");
    expect_zeros(&n, 0.5, 8, 128, 0);
    net_close(&n);
    /* off by default: every layer is pruned */
    net_open(&n, "  method: gmp\n  target: 0.5\n");
    expect_zeros(&n, 0.5, 16, 128, 32);
    net_close(&n);
}

/* fc2 is excluded and holds the smallest weights of all: neither scope may touch it. */
Test(alloc, global_vs_layer_scope_with_an_excluded_layer)
{
    net n;
    net_open(&n, "  method: gmp\n  target: 0.5\n  scope: global\n"
                 "  layers:\n    - {name: fc2, exclude: true}\n");
    scale(&n, 1, 1e-6f);
    scale(&n, 2, 1e-3f);
    /* pool: fc1 + fc3 = 96 entries, 48 pruned, all from fc3 (the smaller) */
    cr_assert_eq(n.s.n_pool, 2);
    cr_assert_eq(n.s.pool_count, 96);
    expect_zeros(&n, 0.5, 0, 0, 48);
    net_close(&n);

    net_open(&n, "  method: gmp\n  target: 0.5\n  scope: layer\n"
                 "  layers:\n    - {name: fc2, exclude: true}\n");
    scale(&n, 1, 1e-6f);
    scale(&n, 2, 1e-3f);
    expect_zeros(&n, 0.5, 16, 0, 32);
    net_close(&n);
}

Test(alloc, global_scope_with_own_target_and_max)
{
    net n;
    /* fc1 has its own target; the pool is fc2 + fc3 = 320 entries, 160 pruned */
    net_open(&n, "  method: gmp\n  target: 0.5\n  scope: global\n"
                 "  layers:\n    - {name: fc1, target: 0.25}\n");
    scale(&n, 2, 1e-3f);
    expect_zeros(&n, 0.5, 8, 96, 64);
    net_close(&n);

    /* fc3 would go whole (it is the smallest); its max keeps it at 0.2 */
    net_open(&n, "  method: gmp\n  target: 0.5\n  scope: global\n"
                 "  layers:\n    - {name: fc3, max: 0.2}\n");
    scale(&n, 2, 1e-3f);
    cr_assert_eq(elag_mask_update(&n.m, &n.s, 0.5), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(zeros_of(&n, 2), (size_t)llround(0.2 * 64));
    cr_assert_eq(zeros_of(&n, 0) + zeros_of(&n, 1), 176 - 64, "the others keep their share");
    net_close(&n);
}

/* Config errors: one line, file:line:column, naming the key. */
Test(alloc, config_errors)
{
    static const struct {
        const char *prune, *want;
    } cases[] = {
        {"  n: 5\n", "mlp.yaml:10:6: 'prune.n' (5) must be < 'prune.m' (4)"},
        {"  n: 0\n", "mlp.yaml:10:6: 'prune.n' must be in [1, 65536], got 0"},
        {"  m: 2\n  n: 2\n", "mlp.yaml:11:6: 'prune.n' (2) must be < 'prune.m' (2)"},
        {"  block: [2, 0]\n", "mlp.yaml:10:14: 'prune.block[1]' must be in [1, 65536], got 0"},
        {"  granularity: blocks\n",
         "mlp.yaml:10:16: 'prune.granularity' must be one of element, nm, block, neuron, "
         "channel, got 'blocks'"},
        {"  granularity: nm\n  scope: global\n",
         "mlp.yaml:11:10: 'prune.scope' global does not apply to prune.granularity nm: every "
         "group of M inputs keeps its N best (use layer)"},
        {"  distribution: erk\n  scope: global\n",
         "mlp.yaml:10:17: 'prune.distribution' erk gives each layer its own sparsity and cannot "
         "be combined with prune.scope global (use layer)"},
        {"  layers:\n    - {name: 'conv*', target: 0.5}\n",
         "mlp.yaml:11:14: 'prune.layers[0].name' 'conv*' names no prunable layer (they are: "
         "fc1, fc2, fc3)"},
        {"  layers:\n    - {name: 'fc*', target: 0.5}\n    - {name: fc2, exclude: true}\n",
         "mlp.yaml:12:14: 'prune.layers[1].name' 'fc2' matches only layers that "
         "prune.layers[0] already covers (the first match wins)"},
        {"  layers:\n    - {name: fc1, exclude: true, target: 0.5}\n",
         "mlp.yaml:11:28: 'prune.layers[0]' sets exclude: true and a sparsity; an excluded "
         "layer stays dense"},
        {"  layers:\n    - {name: fc1, min: 0.5, max: 0.2}\n",
         "mlp.yaml:11:24: 'prune.layers[0].min' (0.5) must be <= 'prune.layers[0].max' (0.2)"},
        {"  layers:\n    - {name: fc1, targt: 0.5}\n",
         "mlp.yaml:11:19: unknown key 'prune.layers[0].targt' (did you mean "
         "'prune.layers[0].target'?) (an override takes name, target, exclude, min, max)"},
        {"  layers:\n    - {name: fc1, target: 1.0}\n",
         "mlp.yaml:11:27: 'prune.layers[0].target' must be in [0, 1), got 1.0"},
        {"  layers:\n    - {target: 0.5}\n",
         "mlp.yaml:11:7: 'prune.layers[0].name' is required (a layer name or a glob such as "
         "'conv*')"},
        {"  layers: fc1\n",
         "mlp.yaml:10:11: 'prune.layers' expects a list of overrides such as [{name: fc1, "
         "target: 0.5}], got 'fc1'"},
        {"  drop_fraction: 1.5\n", "mlp.yaml:10:18: 'prune.drop_fraction' must be in [0, 1], "
                                   "got 1.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[2048];
        elag_config cfg;
        snprintf(yaml, sizeof yaml, "%sprune:\n%s", mlp, cases[i].prune);
        cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "mlp.yaml", NULL, 0, &cfg),
                     ELAG_ERR_INPUT, "case %zu parsed", i);
        cr_assert_str_eq(elag_last_error(), cases[i].want, "case %zu", i);
        cr_assert_null(strchr(elag_last_error(), '\n'), "one line");
    }
}
