/*
 * Pruning through `elag train`: a short GMP run per granularity on a synthetic set reaches
 * its sparsity (summary.json layers[].sparsity), and bad prune settings exit 2 with one
 * line before any run folder exists.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* fc1 (32, 16), fc2 (4, 32) */
static const char mlp_yaml[] = "name: p\nseed: 2\ndevice: cpu\n"
                               "data:\n  dataset: synthetic\n"
                               "  synthetic: {train: 512, test: 128, features: 16, classes: 4}\n"
                               "model:\n  layers:\n"
                               "    - {type: linear, out_features: 32}\n    - {type: relu}\n"
                               "    - {type: linear, out_features: 4}\n"
                               "train: {epochs: 2, batch_size: 64, threads: 1}\n"
                               "prune: {method: gmp, start: 0, end: 0.5, frequency: 2}\n";

/* conv1 (8, 1, 1, 3) on (1, 1, 16) -> (8, 1, 14); fc1 (4, 112) */
static const char conv_yaml[] = "name: c\nseed: 2\ndevice: cpu\n"
                                "data:\n  dataset: synthetic\n"
                                "  synthetic: {train: 512, test: 128, features: 16, classes: 4}\n"
                                "model:\n  layers:\n"
                                "    - {type: conv2d, out_channels: 8, kernel: [1, 3]}\n"
                                "    - {type: relu}\n    - {type: flatten}\n"
                                "    - {type: linear, out_features: 4}\n"
                                "train: {epochs: 2, batch_size: 64, threads: 1}\n"
                                "prune: {method: gmp, start: 0, end: 0.5, frequency: 2}\n";

static char *dir;
static char out_file[700];

static void setup(void)
{
    dir = elag_test_tmpdir("prune-cli");
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
    elag_test_put(dir, "mlp.yaml", mlp_yaml);
    elag_test_put(dir, "conv.yaml", conv_yaml);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(prune_cli, .init = setup, .fini = teardown);

static int elag(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    return elag_test_run(cmd, out_file);
}

/* Trains `config` with `sets` into dir/run and checks each layer's sparsity. */
static void train_expect(const char *config, const char *sets, const double *want, int n_layers)
{
    char args[1024], path[800];
    snprintf(args, sizeof args, "train %s --out run --force --quiet %s", config, sets);
    int rc = elag(args);
    char *out = elag_test_slurp(out_file);
    cr_assert_eq(rc, 0, "elag %s: exit %d\n%s", args, rc, out);
    free(out);
    snprintf(path, sizeof path, "%s/run/summary.json", dir);
    char *text = elag_test_slurp(path);
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j);
    const cJSON *layers = cJSON_GetObjectItem(j, "layers");
    cr_assert_eq(cJSON_GetArraySize(layers), n_layers);
    for (int i = 0; i < n_layers; i++) {
        const cJSON *l = cJSON_GetArrayItem(layers, i);
        double s = cJSON_GetObjectItem(l, "sparsity")->valuedouble;
        cr_assert_float_eq(s, want[i], 1e-12, "%s: layer %s sparsity %.6f, want %.6f", sets,
                           cJSON_GetObjectItem(l, "name")->valuestring, s, want[i]);
    }
    cJSON_Delete(j);
    free(text);
}

Test(prune_cli, element_run_reaches_target)
{
    const double want[] = {0.5, 0.5};
    train_expect("mlp.yaml", "--set prune.target=0.5", want, 2);
}

Test(prune_cli, nm_run_is_one_minus_n_over_m)
{
    const double want[] = {0.5, 0.5}, want14[] = {0.75, 0.75};
    /* prune.target is ignored with nm: the resolved config says 1 - N/M */
    train_expect("mlp.yaml", "--set prune.granularity=nm --set prune.target=0.9", want, 2);
    char path[800];
    snprintf(path, sizeof path, "%s/run/config.yaml", dir);
    char *cfg = elag_test_slurp(path);
    cr_assert(strstr(cfg, "  initial: 0.5\n  target: 0.5\n"), "%s", cfg);
    free(cfg);
    train_expect("mlp.yaml", "--set prune.granularity=nm --set prune.n=1", want14, 2);
}

Test(prune_cli, block_run_whole_blocks)
{
    const double want[] = {0.75, 0.75};
    train_expect("mlp.yaml",
                 "--set prune.granularity=block --set prune.block=[2,4] --set prune.target=0.75",
                 want, 2);
}

Test(prune_cli, neuron_run_whole_rows)
{
    const double want[] = {0.5, 0.5};
    train_expect("mlp.yaml", "--set prune.granularity=neuron --set prune.target=0.5", want, 2);
}

Test(prune_cli, channel_run_whole_filters)
{
    const double want[] = {0.5, 0.5};
    train_expect("conv.yaml", "--set prune.granularity=channel --set prune.target=0.5", want, 2);
}

Test(prune_cli, override_and_erk_in_a_run)
{
    const double want[] = {410.0 / 512, 0.0}; /* llround(0.8 * 512) */
    train_expect("mlp.yaml",
                 "--set prune.target=0.8 --set 'prune.layers=[{name: fc2, exclude: true}]'", want,
                 2);
    char path[800];
    snprintf(path, sizeof path, "%s/run/config.yaml", dir);
    char *cfg = elag_test_slurp(path);
    cr_assert(strstr(cfg, "  layers:\n    - {name: \"fc2\", exclude: true}\n"), "%s", cfg);
    free(cfg);
    /* ERK: fc1 (32, 16) raw 48/512, fc2 (4, 32) raw 36/128, 640 weights, 128 nonzeros:
     * c = 128 / (48 + 36), densities c * raw = 0.143 and 0.429 (none capped) */
    double c = 128.0 / 84.0;
    const double erk[] = {(double)llround((1 - c * 48 / 512) * 512) / 512,
                          (double)llround((1 - c * 36 / 128) * 128) / 128};
    train_expect("mlp.yaml", "--set prune.target=0.8 --set prune.distribution=erk", erk, 2);
}

/* Exit 2, one line holding `needle`, no run folder. */
static void expect_refused(const char *sets, const char *needle)
{
    char args[1024], path[800];
    snprintf(args, sizeof args, "train mlp.yaml --out fresh %s", sets);
    int rc = elag(args);
    char *out = elag_test_slurp(out_file);
    cr_assert_eq(rc, 2, "%s: exit %d\n%s", sets, rc, out);
    cr_assert(strstr(out, needle), "%s: expected '%s' in:\n%s", sets, needle, out);
    size_t lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    cr_assert_eq(lines, 1, "one line:\n%s", out);
    free(out);
    struct stat sb;
    snprintf(path, sizeof path, "%s/fresh", dir);
    cr_assert_neq(stat(path, &sb), 0, "%s: the run folder was created", sets);
}

Test(prune_cli, bad_settings_exit_2_before_the_run_folder)
{
    expect_refused("--set prune.n=5", "--set prune.n=5: 'prune.n' (5) must be < 'prune.m' (4)");
    expect_refused("--set prune.granularity=block --set prune.block=3",
                   "elag: mlp.yaml: prune: layer 'fc1' (linear): prune.granularity block: its "
                   "weight is (32, 16) as a matrix, and prune.block [3, 3] does not divide it");
    expect_refused("--set prune.granularity=nm --set prune.m=3",
                   "layer 'fc1' (linear): prune.granularity nm needs rows of whole groups of "
                   "prune.m 3, but its rows have 16 inputs");
    expect_refused("--set prune.granularity=filters",
                   "'prune.granularity' must be one of element, nm, block, neuron, channel, "
                   "got 'filters'");
    expect_refused("--set 'prune.layers=[{name: conv1, target: 0.5}]'",
                   "'prune.layers[0].name' 'conv1' names no prunable layer (they are: fc1, fc2)");
}
