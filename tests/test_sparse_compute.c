/*
 * train.sparse_compute (host/train/sparse_step.c, the hooks in layers/linear.c, optim.c,
 * finite.c and train.c): masked linear layers training on their sparse pattern give the
 * dense masked path's weights and optimizer state within reassociation (SGD and AdamW,
 * weight decay, bias and ReLU, mask updates between steps, a criterion that observes every
 * step), keep pruned weights and their state exactly 0, follow the same loss curve, resume
 * bit for bit from a checkpoint, pick layers in `auto` by the density threshold, and `on`
 * is refused on a device without a sparse training step while `auto` trains dense there
 * (and on CUDA, whose step is opt-in, `on` runs it and `auto` trains dense).
 *
 * Tolerance: the two paths differ only in summation order (the pattern products and the
 * SDDMM skip the zero terms the dense GEMMs add, and sum in another order), so per step
 * the weights differ by a few float roundings of the gradient, relative to the sum of the
 * products' magnitudes; over the handful of steps here with lr <= 0.05 that stays within
 * ELAG_TOL_FAST_ABS / ELAG_TOL_FAST_REL (fast CPU against the reference uses the same
 * bound for the same reason). Bit for bit is only asked where the arithmetic is the same
 * (a resumed sparse run against an uninterrupted sparse run).
 */
#define _POSIX_C_SOURCE 200809L
#include "support/checkpoints.h"
#include "support/testutil.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Odd sizes: 37 features, 29 and 23 hidden (ReLU after each), 5 classes, batch 13. */
static void small_config(elag_config *cfg, const char *optimizer, const char *prune, int epochs)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "name: sc\ndevice: cpu\nseed: 5\n"
             "data: {dataset: synthetic, synthetic: {train: 104, test: 40, features: 37, "
             "classes: 5}}\n"
             "model:\n  layers:\n"
             "    - {type: linear, out_features: 29}\n    - {type: relu}\n"
             "    - {type: linear, out_features: 23}\n    - {type: relu}\n"
             "    - {type: linear, out_features: 5}\n"
             "train: {epochs: %d, batch_size: 13, threads: 1, log_every: 1,\n"
             "        optimizer: %s}\n"
             "prune: %s\n",
             epochs, optimizer, prune);
    cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "sc.yaml", NULL, 0, cfg), ELAG_OK, "%s",
                 elag_last_error());
}


/* Trains cfg into dir with `mode` (tests/support/checkpoints.h). */
static elag_status train(const elag_config *base, elag_sparse_compute mode, const char *dir,
                         const char *resume, long interrupt_at, int *live)
{
    return elag_test_train_mode(base, mode, 1, dir, resume, interrupt_at, live);
}

static void on_vs_off(const char *optimizer, const char *prune, int epochs, int want_live)
{
    elag_config cfg;
    small_config(&cfg, optimizer, prune, epochs);
    char *sp = elag_test_tmpdir("sparse"), *de = elag_test_tmpdir("dense");
    int live_sp, live_de;
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, sp, NULL, 0, &live_sp), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_OFF, de, NULL, 0, &live_de), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(live_sp, want_live, "%d layers trained on their pattern, not %d", live_sp,
                 want_live);
    cr_assert_eq(live_de, 0);
    cr_assert_gt(elag_test_compare_checkpoints(sp, de, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL), 6);
    cr_assert_gt(elag_test_pruned_are_zero(sp, ""), 100);
    cr_assert_gt(elag_test_pruned_are_zero(de, ""), 100);
    elag_test_rmtree(sp);
    elag_test_rmtree(de);
    free(sp);
    free(de);
}

#define SGD_WD   "{type: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.01}"
#define ADAMW_WD "{type: adamw, lr: 0.01, weight_decay: 0.05}"
#define ONESHOT  "{method: oneshot, target: 0.7, start: 0}"
/* 8 steps an epoch; updates at steps 2, 4, 6, 8: masks change between sparse steps */
#define GMP "{method: gmp, initial: 0.3, target: 0.8, start: 2, end: 8, frequency: 2}"

/* 104 / 13 = 8 steps in an epoch; one step: train 13 samples */
Test(sparse_compute, one_step_sgd_matches_dense)
{
    elag_config cfg;
    small_config(&cfg, SGD_WD, ONESHOT, 1);
    cfg.data.synthetic.train = 13;
    char *sp = elag_test_tmpdir("sparse1"), *de = elag_test_tmpdir("dense1");
    int live;
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, sp, NULL, 0, &live), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(live, 3);
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_OFF, de, NULL, 0, NULL), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_gt(elag_test_compare_checkpoints(sp, de, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL), 6);
    cr_assert_gt(elag_test_pruned_are_zero(sp, ""), 100);
    elag_test_rmtree(sp);
    elag_test_rmtree(de);
    free(sp);
    free(de);
}

Test(sparse_compute, sgd_oneshot_two_epochs_matches_dense)
{
    on_vs_off(SGD_WD, ONESHOT, 2, 3);
}
Test(sparse_compute, adamw_oneshot_two_epochs_matches_dense)
{
    on_vs_off(ADAMW_WD, ONESHOT, 2, 3);
}
Test(sparse_compute, sgd_gmp_mask_updates_between_steps)
{
    on_vs_off(SGD_WD, GMP, 2, 3);
}
Test(sparse_compute, adamw_gmp_mask_updates_between_steps)
{
    on_vs_off(ADAMW_WD, GMP, 2, 3);
}
Test(sparse_compute, nesterov_movement_criterion_observes_every_step)
{
    on_vs_off("{type: sgd, lr: 0.05, momentum: 0.9, nesterov: true}",
              "{method: gmp, criterion: movement, target: 0.8, start: 2, end: 8, "
              "frequency: 2}",
              2, 3);
}

/* RigL: drop-and-grow every 3 steps, its growth from a dense gradient pass at the update
 * (patterns released first), grown weights starting at 0 in the new pattern. */
Test(sparse_compute, rigl_drop_and_grow_matches_dense)
{
    on_vs_off(SGD_WD,
              "{method: rigl, target: 0.8, start: 0, end: 0.75, frequency: 3, "
              "drop_fraction: 0.3}",
              2, 3);
}

/* Rows of metrics.jsonl: the loss of every step row, in order. */
static int losses(const char *dir, double *out, int cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = elag_test_slurp(path);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o, "bad metrics line '%s'", line);
        const cJSON *loss = cJSON_GetObjectItem(o, "loss");
        if (loss && cJSON_IsNumber(loss) && n < cap) out[n++] = loss->valuedouble;
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

Test(sparse_compute, loss_curve_on_equals_off)
{
    elag_config cfg;
    small_config(&cfg, SGD_WD, GMP, 3);
    char *sp = elag_test_tmpdir("curve_sp"), *de = elag_test_tmpdir("curve_de");
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, sp, NULL, 0, NULL), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_OFF, de, NULL, 0, NULL), ELAG_OK, "%s",
                 elag_last_error());
    double a[64], b[64];
    int na = losses(sp, a, 64), nb = losses(de, b, 64);
    cr_assert_eq(na, nb);
    cr_assert_geq(na, 24, "%d loss rows", na);
    for (int i = 0; i < na; i++)
        cr_expect_leq(fabs(a[i] - b[i]), ELAG_TOL_FAST_ABS + ELAG_TOL_FAST_REL * fabs(b[i]),
                      "row %d: loss %.9g sparse, %.9g dense", i, a[i], b[i]);
    elag_test_rmtree(sp);
    elag_test_rmtree(de);
    free(sp);
    free(de);
}

/* Interrupted mid-epoch with patterns live, resumed (patterns rebuilt from the checkpoint):
 * the same bits as an uninterrupted sparse run. */
static void resume_bit_for_bit(const char *optimizer, const char *prune, long at)
{
    elag_config cfg;
    small_config(&cfg, optimizer, prune, 3);
    char *full = elag_test_tmpdir("full"), *part = elag_test_tmpdir("part");
    int live;
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, full, NULL, 0, &live), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(live, 3);
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, part, NULL, at, &live), ELAG_ERR_INTERRUPTED);
    cr_assert_eq(live, 3, "the interrupt was meant to land with patterns live");
    char ck[512];
    snprintf(ck, sizeof ck, "%s/model.safetensors", part);
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, part, ck, 0, &live), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(live, 3);
    elag_test_expect_same_checkpoint(full, part,
                                     "the resumed sparse run differs from the uninterrupted one");
    elag_test_rmtree(full);
    elag_test_rmtree(part);
    free(full);
    free(part);
}

Test(sparse_compute, resume_sgd_bit_for_bit)
{
    resume_bit_for_bit(SGD_WD, ONESHOT, 11);
}
Test(sparse_compute, resume_adamw_gmp_bit_for_bit)
{
    resume_bit_for_bit(ADAMW_WD, GMP, 13);
}

/* auto: a layer trains sparse only below ELAG_SPARSE_AUTO_DENSITY. */
Test(sparse_compute, auto_follows_the_density_threshold)
{
    const double below = 1.0 - ELAG_SPARSE_AUTO_DENSITY + 0.1,
                 above = 1.0 - ELAG_SPARSE_AUTO_DENSITY - 0.1;
    for (int k = 0; k < 2; k++) {
        char prune[128];
        snprintf(prune, sizeof prune, "{method: oneshot, target: %.3f, start: 0}",
                 k ? below : above);
        elag_config cfg;
        small_config(&cfg, SGD_WD, prune, 1);
        char *dir = elag_test_tmpdir("auto");
        int live;
        cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_AUTO, dir, NULL, 0, &live), ELAG_OK, "%s",
                     elag_last_error());
        cr_assert_eq(live, k ? 3 : 0, "sparsity %s the threshold: %d layers sparse",
                     k ? "above" : "below", live);
        elag_test_rmtree(dir);
        free(dir);
    }
}

/* A run without pruning has no mask, so nothing trains sparse even with `on`. */
Test(sparse_compute, no_masks_no_patterns)
{
    elag_config cfg;
    small_config(&cfg, SGD_WD, "{method: none}", 1);
    char *dir = elag_test_tmpdir("nomask");
    int live;
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, dir, NULL, 0, &live), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(live, 0);
    elag_test_rmtree(dir);
    free(dir);
}

/* A device without the sparse training step (as CUDA is now), made by hiding the op from
 * the CPU backend's `supports`. */
static elag_support (*real_supports)(elag_backend *, elag_op, const elag_op_query *, char *,
                                     size_t);

static elag_support refuse_sparse_train(elag_backend *b, elag_op op, const elag_op_query *q,
                                        char *why, size_t why_len)
{
    if (op == ELAG_OP_SPARSE_TRAIN) {
        snprintf(why, why_len, "no sparse training step here");
        return ELAG_SUPPORT_NO;
    }
    return real_supports(b, op, q, why, why_len);
}

static elag_status train_refusing(const elag_config *cfg, const char *dir, int *live)
{
    elag_backend *be;
    cr_assert_eq(elag_backend_open(cfg->device, 1, &be, NULL, 0), ELAG_OK, "%s", elag_last_error());
    real_supports = be->supports;
    be->supports = refuse_sparse_train;
    elag_run_data data;
    cr_assert_eq(elag_run_data_load(cfg, &data), ELAG_OK, "%s", elag_last_error());
    elag_train_options opts = {.out_dir = dir};
    elag_trainer *t = NULL;
    elag_train_summary sum;
    elag_status st = elag_trainer_init(&t, cfg, be, &data, &opts);
    if (st == ELAG_OK) st = elag_trainer_run(t, &sum);
    *live = t ? t->sparse.n_live : -1;
    elag_trainer_free(t);
    elag_run_data_free(&data);
    be->supports = real_supports;
    elag_backend_free(be);
    return st;
}

Test(sparse_compute, on_is_refused_where_the_device_has_no_sparse_step)
{
    elag_config cfg;
    small_config(&cfg, SGD_WD, ONESHOT, 1);
    char *dir = elag_test_tmpdir("refuse");
    int live;
    cfg.train.sparse_compute = ELAG_SPARSE_COMPUTE_ON;
    cr_assert_eq(train_refusing(&cfg, dir, &live), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "sc.yaml: train.sparse_compute is 'on'") &&
                  strstr(elag_last_error(), "no sparse training step here") &&
                  !strchr(elag_last_error(), '\n'),
              "%s", elag_last_error());
    cr_assert_eq(elag_status_exit_code(ELAG_ERR_INPUT), 2);
    cfg.train.sparse_compute = ELAG_SPARSE_COMPUTE_AUTO; /* trains dense there */
    cr_assert_eq(train_refusing(&cfg, dir, &live), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(live, 0);
    elag_test_rmtree(dir);
    free(dir);
}

/* cpu-ref has the step (the reference the fast kernels are tested against): `on` runs. */
Test(sparse_compute, on_runs_on_cpu_ref)
{
    elag_config cfg;
    small_config(&cfg, SGD_WD, ONESHOT, 1);
    snprintf(cfg.device, sizeof cfg.device, "cpu-ref");
    char *sp = elag_test_tmpdir("ref_sp"), *de = elag_test_tmpdir("ref_de");
    int live;
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, sp, NULL, 0, &live), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(live, 3);
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_OFF, de, NULL, 0, NULL), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_gt(elag_test_compare_checkpoints(sp, de, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL), 6);
    elag_test_rmtree(sp);
    elag_test_rmtree(de);
    free(sp);
    free(de);
}

Test(sparse_compute, config_key_parses_and_round_trips)
{
    static const char bad[] = "train: {sparse_compute: sometimes}\n";
    elag_config cfg;
    cr_assert_eq(elag_config_parse(bad, strlen(bad), "b.yaml", NULL, 0, &cfg), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "'train.sparse_compute' must be one of auto, on, off"),
              "%s", elag_last_error());
    static const char good[] = "train: {sparse_compute: off}\n";
    cr_assert_eq(elag_config_parse(good, strlen(good), "g.yaml", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(cfg.train.sparse_compute, ELAG_SPARSE_COMPUTE_OFF);
    char *text;
    cr_assert_eq(elag_config_to_yaml(&cfg, &text), ELAG_OK, "%s", elag_last_error());
    cr_assert(strstr(text, "sparse_compute: off"), "%s", text);
    free(text);
    elag_config_defaults(&cfg);
    cr_assert_eq(cfg.train.sparse_compute, ELAG_SPARSE_COMPUTE_AUTO);
}

/* The finite checks read the values arrays while they are the truth: a sparse run that
 * blows up stops at the same step naming the same tensor as the dense run. */
Test(sparse_compute, divergence_is_caught_on_the_pattern)
{
    elag_config cfg;
    char msg[2][1024];
    /* lr 1e18: the gradients overflow first; lr 1e39 (Inf as a float): the weights after
     * the first step, while its gradients were finite */
    for (int k = 0; k < 4; k++) {
        small_config(&cfg,
                     k < 2 ? "{type: sgd, lr: 1e18, momentum: 0.9}"
                           : "{type: sgd, lr: 1e39, momentum: 0.9}",
                     ONESHOT, 2);
        char *dir = elag_test_tmpdir("diverge");
        int live;
        elag_status st = train(&cfg, k % 2 ? ELAG_SPARSE_COMPUTE_OFF : ELAG_SPARSE_COMPUTE_ON, dir,
                               NULL, 0, &live);
        cr_assert_eq(st, ELAG_ERR_DIVERGED, "%s", elag_last_error());
        cr_assert_eq(live, k % 2 ? 0 : 3);
        snprintf(msg[k % 2], sizeof msg[0], "%s", elag_last_error());
        elag_test_rmtree(dir);
        free(dir);
        if (k % 2 == 0) continue;
        cr_assert(strstr(msg[0], k < 2 ? "the gradient of" : "weight is not finite"), "%s", msg[0]);
        /* the messages differ in the run folder only: compare up to "; " */
        *strchr(msg[0], ';') = *strchr(msg[1], ';') = '\0';
        cr_assert_str_eq(msg[0], msg[1]);
    }
}

/* CUDA's sparse training step is opt-in until verified on a GPU (supports() says OPT_IN):
 * `on` runs it, `auto` trains dense there (tests/test_cuda_sparse_train.c compares). */
Test(sparse_compute, cuda_runs_on_and_auto_trains_dense)
{
    /* elag_cuda_device_count: declared in CPU-only builds too (0 there) */
    if (elag_cuda_device_count() == 0) cr_skip_test("no CUDA device");
    elag_config cfg;
    small_config(&cfg, SGD_WD, ONESHOT, 1);
    snprintf(cfg.device, sizeof cfg.device, "cuda");
    char *dir = elag_test_tmpdir("cuda");
    int live;
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_ON, dir, NULL, 0, &live), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(live, 3);
    char *dir2 = elag_test_tmpdir("cuda_auto");
    cr_assert_eq(train(&cfg, ELAG_SPARSE_COMPUTE_AUTO, dir2, NULL, 0, &live), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(live, 0);
    elag_test_rmtree(dir);
    elag_test_rmtree(dir2);
    free(dir);
    free(dir2);
}
