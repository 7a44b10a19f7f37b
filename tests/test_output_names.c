/*
 * One name per figure (issue 13): summary.json names config values by their config keys
 * (prune.method, prune.scope, prune.target), a sweep's ledger names the inference median
 * infer_latency_ms_median after `elag infer`'s latency_ms_median, and `elag report` reads
 * ledgers with the names of before (prune_method, prune_target, infer_latency_ms) to the
 * same tables.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;
static char out_file[600];

static int sh(const char *fmt, const char *arg)
{
    char body[1024], cmd[2048];
    snprintf(body, sizeof body, fmt, arg);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", dir, body);
    return elag_test_run(cmd, out_file);
}

static void setup(void)
{
    dir = elag_test_tmpdir("names");
    cr_assert_not_null(dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(output_names, .init = setup, .fini = teardown);

Test(output_names, summary_uses_the_config_keys)
{
    elag_test_put(
        dir, "t.yaml",
        "name: t\ndevice: cpu\ndata: {dataset: synthetic, synthetic: {train: 64, classes: 10, "
        "test: 16}}\ntrain: {epochs: 1, threads: 1}\n"
        "prune: {method: oneshot, target: 0.5, scope: global}\n");
    cr_assert_eq(sh("'%s' train t.yaml --out run --quiet", ELAG_CLI_PATH), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/run/summary.json", dir);
    char *text = elag_test_slurp(path);
    cJSON *s = cJSON_Parse(text);
    cr_assert_not_null(s);
    cr_assert_str_eq(cJSON_GetObjectItem(s, "prune.method")->valuestring, "oneshot");
    cr_assert_str_eq(cJSON_GetObjectItem(s, "prune.scope")->valuestring, "global");
    cr_assert_float_eq(cJSON_GetObjectItem(s, "prune.target")->valuedouble, 0.5, 1e-12);
    cr_assert_null(cJSON_GetObjectItem(s, "prune_method"), "two names for one figure");
    cr_assert_null(cJSON_GetObjectItem(s, "prune_target"));
    cJSON_Delete(s);
    free(text);
}

/* Writes sw-<tag>/results.jsonl with two runs, named the old or the new way, reports it
 * and returns summary.md (the caller frees it). */
static char *report_of(const char *tag, int old)
{
    char path[800];
    snprintf(path, sizeof path, "%s/sw-%s", dir, tag);
    cr_assert_eq(sh("mkdir -p '%s'", path), 0);
    snprintf(path, sizeof path, "%s/sw-%s/results.jsonl", dir, tag);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 2; i++)
        fprintf(f,
                "{\"run_id\":\"00000000000%d\",\"status\":\"ok\",\"seed\":%d,\"swept\":[\"seed\"],"
                "\"%s\":\"gmp\",\"%s\":0.9,\"test_accuracy\":0.8,\"sparsity\":0.9,"
                "\"params_nonzero\":100,\"params_prunable\":1000,\"samples_per_second\":1000,"
                "\"infer_samples_per_second\":5000,\"%s\":%s,\"infer_latency_ms_p99\":0.75}\n",
                i, i, old ? "prune_method" : "prune.method", old ? "prune_target" : "prune.target",
                old ? "infer_latency_ms" : "infer_latency_ms_median", i ? "0.5" : "0.7");
    fclose(f);
    char rel[64];
    snprintf(rel, sizeof rel, "sw-%s", tag);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' report %s --no-plots", ELAG_CLI_PATH, rel);
    cr_assert_eq(sh("%s", cmd), 0, "%s", elag_test_slurp(out_file));
    snprintf(path, sizeof path, "%s/sw-%s/report/summary.md", dir, tag);
    return elag_test_slurp(path);
}

Test(output_names, report_reads_old_and_new_ledgers_alike)
{
    char *now = report_of("new", 0), *before = report_of("old", 1);
    cr_assert(strstr(now, "| gmp | 0.90 |") != NULL, "no gmp 0.90 group:\n%s", now);
    cr_assert(strstr(now, "0.600, 0.750") != NULL, "no latency mean 0.6 (p99 0.75):\n%s", now);
    /* the same but for the title, which names the folder */
    if (strcmp(strchr(now, '\n'), strchr(before, '\n')) != 0) {
        fprintf(stderr, "new names:\n%s\nold names:\n%s\n", now, before);
        cr_assert_fail("the old names read differently");
    }
    free(now);
    free(before);
}
