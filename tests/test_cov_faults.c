/*
 * Fault injection (tests/cov_faults.c, the harness): training, resuming an interrupted
 * run, and the config's defaults. Training runs three configs: an MLP with batch norm,
 * dropout, AdamW and GMP; RigL with SGD; a small conv net pruned by channel. Every call
 * site of a backend op, elag_backend_open and the C library's allocation and file
 * functions fails once; the run must fail with that fault's status, never crash.
 * Eval, export, inference, sensitivity and the benchmarks: test_cov_faults_use.c; a
 * sweep's bookkeeping: test_cov_faults_sweep.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "cov_faults.h"

#include "support/testutil.h"

#include <criterion/criterion.h>
#include "config/config.h"
#include "elag/array.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

TestSuite(cov_faults, .init = elag_fault_setup, .fini = elag_fault_teardown, .timeout = 600);

/* ---- training ---- */

static elag_status train(const char *config, int iter)
{
    char out[600];
    elag_fault_path_of(out, sizeof out, "run", iter);
    elag_run_result r = ELAG_RUN_RESULT_INIT;
    elag_status st = elag_run_train(config, out, NULL, &r);
    QUIET(elag_test_rmtree(out));
    return st;
}

Test(cov_faults, train)
{
    const char *yamls[] = {elag_fault_mlp_yaml, elag_fault_rigl_yaml, elag_fault_conv_yaml};
    for (int i = 0; i < 3; i++) {
        char name[16], path[600];
        snprintf(name, sizeof name, "c%d.yaml", i);
        elag_test_put(elag_fault_dir, name, yamls[i]);
        snprintf(path, sizeof path, "%s/%s", elag_fault_dir, name);
        elag_fault_sweep_depth(name, train, path, 3);
    }
}

/* ---- every pruning choice ---- */

#define PRUNE_BASE                                                                                 \
    "device: cpu-ref\n"                                                                            \
    "data: {dataset: synthetic, synthetic: {train: 48, test: 16, features: 8, classes: 4}}\n"      \
    "model: {layers: [{type: linear, out_features: 8}, {type: relu},\n"                            \
    "                 {type: linear, out_features: 4}, {type: relu},\n"                            \
    "                 {type: linear, out_features: 4}]}\n"                                         \
    "train: {epochs: 2, batch_size: 16, threads: 1}\n"

/* The criteria, granularities, allocations and schedules the three training configs above
 * leave out, one config each (a fault in each of their steps must come back). */
static const char *const prune_yamls[] = {
    "name: p1\n" PRUNE_BASE "prune: {method: gmp, criterion: taylor, granularity: block,\n"
    "        block: [2, 2], scope: global, start: 0, end: 0.6, frequency: 1, target: 0.5}\n",
    "name: p2\n" PRUNE_BASE "prune: {method: gmp, criterion: movement, granularity: nm, n: 1,\n"
    "        m: 2, start: 0, end: 0.6, frequency: 2}\n",
    "name: p3\n" PRUNE_BASE "prune: {method: gmp, criterion: soft_movement, distribution: erk,\n"
    "        start: 0, end: 0.6, frequency: 1, target: 0.6}\n",
    "name: p4\n" PRUNE_BASE "prune: {method: oneshot, criterion: snip, granularity: neuron,\n"
    "        target: 0.5, keep_first_last: true, layers: [{name: fc2, target: 0.25}]}\n",
    "name: p5\n" PRUNE_BASE "prune: {method: set, criterion: random, target: 0.5, start: 0,\n"
    "        end: 0.75, frequency: 2}\n",
    "name: p6\n" PRUNE_BASE "prune: {method: iterative, target: 0.75, rewind_step: 1, start: 2,\n"
    "        end: 5, frequency: 3, granularity: channel, norm: l1}\n",
};

Test(cov_faults, train_prune_choices)
{
    for (size_t i = 0; i < sizeof prune_yamls / sizeof *prune_yamls; i++) {
        char name[16], path[600];
        snprintf(name, sizeof name, "p%zu.yaml", i + 1);
        elag_test_put(elag_fault_dir, name, prune_yamls[i]);
        snprintf(path, sizeof path, "%s/%s", elag_fault_dir, name);
        elag_fault_sweep_depth(name, train, path, 3);
    }
}

/* ---- training on the user's .npy files ---- */

/* int64 labels (N,) in the fault folder's npy/ */
static void put_labels(const char *name, const int64_t *y, int n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/npy/%s", elag_fault_dir, name);
    elag_test_put_npy_ints(path, "<i8", y, sizeof *y, n);
}

/* train_x (48, 6), test_x (16, 6) and their labels, in three classes */
static void put_npy_data(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/npy", elag_fault_dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    static float x[48 * 6];
    static int64_t y[48];
    for (int i = 0; i < 48; i++) {
        y[i] = i % 3;
        for (int j = 0; j < 6; j++)
            x[i * 6 + j] = (float)((i * 7 + j * 3) % 11) / 11.0f + (float)y[i];
    }
    const char *names[2][2] = {{"train_x.npy", "train_y.npy"}, {"test_x.npy", "test_y.npy"}};
    for (int k = 0; k < 2; k++) {
        int n = k ? 16 : 48;
        elag_array a = {2, {n, 6}, x};
        snprintf(path, sizeof path, "%s/npy/%s", elag_fault_dir, names[k][0]);
        cr_assert_eq(elag_array_save(path, &a), ELAG_OK, "%s", elag_last_error());
        put_labels(names[k][1], y, n);
    }
}

Test(cov_faults, train_on_npy_files)
{
    put_npy_data();
    char yaml[1200], path[600];
    snprintf(yaml, sizeof yaml,
             "name: fn\ndevice: cpu-ref\ndata: {dataset: npy, path: %s/npy, val_split: 0.25}\n"
             "model: {layers: [{type: linear, out_features: 5}, {type: relu},\n"
             "                 {type: linear, out_features: 3}]}\n"
             "train: {epochs: 1, batch_size: 8, threads: 1}\n",
             elag_fault_dir);
    elag_test_put(elag_fault_dir, "n.yaml", yaml);
    snprintf(path, sizeof path, "%s/n.yaml", elag_fault_dir);
    elag_fault_sweep_depth("npy data", train, path, 3);
}

/* ---- the config's defaults ---- */

/* static: the test's own allocations would be under the injector too */
static elag_config cfg_buf;

/* The default model is a preset, expanded by the YAML code (which allocates): out of
 * memory there is ELAG_ERR_NOMEM from elag_config_defaults, and from a parse, which
 * starts from the defaults; it used to abort (ELAG_ASSERT). */
static elag_status config_defaults(const char *yaml, int iter)
{
    (void)iter;
    elag_status st = elag_config_defaults(&cfg_buf);
    if (st == ELAG_OK &&
        (cfg_buf.model.n_layers != 5 || strcmp(cfg_buf.model.preset, "lenet-300-100") != 0))
        return elag_fail(ELAG_ERR_INTERNAL, "the defaults' model is %d layers of '%s'",
                         cfg_buf.model.n_layers, cfg_buf.model.preset);
    if (st == ELAG_OK) st = elag_config_parse(yaml, strlen(yaml), "f.yaml", NULL, 0, &cfg_buf);
    if (st == ELAG_OK && cfg_buf.train.epochs != 3)
        return elag_fail(ELAG_ERR_INTERNAL, "train.epochs is %d, not 3", cfg_buf.train.epochs);
    return st;
}

Test(cov_faults, config_defaults)
{
    int n = elag_fault_sweep_depth("config defaults", config_defaults, "train: {epochs: 3}\n", 3);
    /* the preset's parse alone allocates at several places */
    cr_assert_geq(n, 3, "only %d call sites: is the preset's expansion under the injector?", n);
}

/* ---- resuming an interrupted run ---- */

/* Trains elag_fault_dir/NAME.yaml into elag_fault_dir/NAME with an interrupt already raised: it
 * stops with a checkpoint at the first step boundary. */
static elag_status train_interrupted(const char *name, int iter)
{
    (void)iter;
    char file[600], out[600];
    snprintf(file, sizeof file, "%s/%s.yaml", elag_fault_dir, name);
    snprintf(out, sizeof out, "%s/%s", elag_fault_dir, name);
    static volatile sig_atomic_t stop = 1;
    elag_run_options o = ELAG_RUN_OPTIONS_INIT;
    o.interrupt = &stop;
    elag_status st = elag_run_train(file, out, &o, NULL);
    return st == ELAG_ERR_INTERRUPTED ? ELAG_OK : st == ELAG_OK ? ELAG_ERR_INTERNAL : st;
}

/* A copy of the interrupted run elag_fault_dir/NAME, resumed to the end. */
static elag_status resume(const char *name, int iter)
{
    char out[600], cmd[1400];
    elag_fault_path_of(out, sizeof out, "resumed", iter);
    snprintf(cmd, sizeof cmd, "cp -r '%s/%s' '%s'", elag_fault_dir, name, out);
    int rc;
    QUIET(rc = system(cmd));
    if (rc != 0) return elag_fail(ELAG_ERR_INTERNAL, "%s failed", cmd);
    elag_run_options o = ELAG_RUN_OPTIONS_INIT;
    o.resume = 1;
    elag_run_result r = ELAG_RUN_RESULT_INIT;
    elag_status st = elag_run_train(NULL, out, &o, &r);
    QUIET(elag_test_rmtree(out));
    return st;
}

Test(cov_faults, resume)
{
    elag_test_put(elag_fault_dir, "i.yaml", elag_fault_mlp_yaml);
    elag_fault_child_ok(train_interrupted, "i");
    elag_fault_sweep_depth("resume", resume, "i", 3);
    elag_test_put(elag_fault_dir, "j.yaml", elag_fault_rigl_yaml);
    elag_fault_child_ok(train_interrupted, "j");
    elag_fault_sweep_depth("resume rigl", resume, "j", 3);
}
