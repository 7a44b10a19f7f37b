/*
 * `elag bench model` reports the spread of its timings (p10 and p90 beside the median,
 * elag_bench_net_result version 2) and warns on stderr when the machine is busy (the load
 * average before the run, pinned here with $ELAG_LOADAVG) or the spread is wide. A caller
 * built against version 1 of the result struct gets the medians and nothing past them.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static char *dir;
static char out_file[600];

static int sh(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", dir, args);
    return elag_test_run(cmd, out_file);
}

static void setup(void)
{
    dir = elag_test_tmpdir("spread");
    cr_assert_not_null(dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
    elag_test_put(dir, "t.yaml",
                  "name: t\nseed: 1\ndevice: cpu\n"
                  "data: {dataset: synthetic, synthetic: {train: 64, test: 16, features: 8, "
                  "classes: 3}}\n"
                  "model:\n  layers:\n    - {type: linear, out_features: 16}\n"
                  "    - {type: relu}\n    - {type: linear, out_features: 3}\n"
                  "train: {epochs: 1, batch_size: 16, threads: 1}\n"
                  "prune: {method: oneshot, target: 0.5}\n");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s' train t.yaml --out run --quiet && '%s' export "
             "run/model.safetensors --format csr -o m.csr.safetensors",
             ELAG_CLI_PATH, ELAG_CLI_PATH);
    cr_assert_eq(sh(cmd), 0, "%s", elag_test_slurp(out_file));
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(bench_spread, .init = setup, .fini = teardown);

Test(bench_spread, api_reports_p10_and_p90)
{
    char path[700];
    snprintf(path, sizeof path, "%s/m.csr.safetensors", dir);
    elag_net_t *net;
    OK(elag_net_open(&net, path));
    elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
    d.device = "cpu";
    d.threads = 1;
    elag_device_t *dev;
    OK(elag_device_open(&dev, &d));
    elag_bench_net_options o = ELAG_BENCH_NET_OPTIONS_INIT;
    o.batch = 8;
    o.repeat = 11;
    elag_bench_net_result r = ELAG_BENCH_NET_RESULT_INIT;
    OK(elag_bench_net(net, dev, &o, &r));
    cr_assert(r.dense_ms_p10 > 0 && r.dense_ms_p10 <= r.dense_ms && r.dense_ms <= r.dense_ms_p90,
              "dense %g %g %g", r.dense_ms_p10, r.dense_ms, r.dense_ms_p90);
    cr_assert(r.sparse_ms_p10 > 0 && r.sparse_ms_p10 <= r.sparse_ms &&
                  r.sparse_ms <= r.sparse_ms_p90,
              "sparse %g %g %g", r.sparse_ms_p10, r.sparse_ms, r.sparse_ms_p90);
    /* version 1: the library must not write past the medians */
    elag_bench_net_result v1 = {1, 0, 0, 0, -7, -7, -7, -7};
    OK(elag_bench_net(net, dev, &o, &v1));
    cr_assert(v1.dense_ms > 0 && v1.sparse_ms > 0);
    cr_assert(v1.dense_ms_p10 == -7 && v1.dense_ms_p90 == -7 && v1.sparse_ms_p10 == -7 &&
                  v1.sparse_ms_p90 == -7,
              "a version-1 result was written past its end");
    elag_device_free(dev);
    elag_net_free(net);
}

Test(bench_spread, cli_prints_the_spread_and_warns_when_busy)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "ELAG_LOADAVG=1000 '%s' bench model m.csr.safetensors --device cpu "
             "--batch 4 --repeat 5 --json",
             ELAG_CLI_PATH);
    cr_assert_eq(sh(cmd), 0);
    char *o = elag_test_slurp(out_file);
    cr_assert(strstr(o, "elag: warning: the machine is busy (load average 1000.00") != NULL,
              "no busy warning:\n%s", o);
    const char *keys[] = {"dense_ms_p10", "dense_ms_p90", "sparse_ms_p10", "sparse_ms_p90"};
    for (size_t i = 0; i < 4; i++)
        cr_assert(strstr(o, keys[i]) != NULL, "no %s in:\n%s", keys[i], o);
    free(o);
    snprintf(cmd, sizeof cmd,
             "ELAG_LOADAVG=0 '%s' bench model m.csr.safetensors --device cpu "
             "--batch 4 --repeat 5",
             ELAG_CLI_PATH);
    cr_assert_eq(sh(cmd), 0);
    o = elag_test_slurp(out_file);
    cr_assert(strstr(o, "machine is busy") == NULL, "a quiet machine called busy:\n%s", o);
    cr_assert(strstr(o, "sparse_p10-p90") != NULL, "no spread column:\n%s", o);
    free(o);
}
