/*
 * `elag sweep` end to end on tiny synthetic runs (milliseconds each): the ledger and
 * run folders, resume, failed runs and --retry-failed, redoing a run folder that has no
 * ledger row, shards merged by --collect, --jobs threads and --devices round-robin, the
 * sparse inference figures of each finished run (CSR export + `elag infer`) and --no-infer.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/fixtures.h"
#include "support/testutil.h"
#include "io/atomic.h"
#include "sweep/sweep.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static char *dir;
static char out_file[600];

static char *slurp(const char *path)
{
    char *text = NULL;
    size_t n = 0;
    if (elag_read_file(path, &text, &n) != ELAG_OK) return strdup("");
    return text;
}

static char *slurp_rel(const char *rel)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return slurp(path);
}

/* Runs `elag ARGS` in the test folder; exit code, output in out_file. */
static int elag(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    return elag_test_run(cmd, out_file);
}

static elag_ledger ledger(const char *out)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s/results.jsonl", dir, out);
    elag_ledger l;
    cr_assert_eq(elag_ledger_read(path, &l), ELAG_OK);
    return l;
}

static int count_lines(const char *rel)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static void setup(void)
{
    dir = elag_test_tmpdir("sweeprun");
    cr_assert_not_null(dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
    elag_test_put(dir, "base.yaml", elag_test_tiny_yaml);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(sweep_run, .init = setup, .fini = teardown);

Test(sweep_run, runs_then_resumes)
{
    elag_test_put(dir, "s.yaml", "base: base.yaml\ngrid: {prune.target: [0.25, 0.5], seed: [1, 2]}\n");
    int rc = elag("sweep s.yaml --out out --jobs 2");
    char *o = slurp(out_file);
    cr_assert_eq(rc, 0, "%s", o);
    cr_assert(strstr(o, "4/4 done"), "%s", o);
    free(o);
    elag_ledger l = ledger("out");
    cr_assert_eq(l.n, 4);
    for (int i = 0; i < l.n; i++) {
        const cJSON *r = l.rows[i];
        cr_assert_str_eq(elag_ledger_status(r), "ok");
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(r, "test_accuracy")));
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(r, "prune.target")));
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(r, "seed")));
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(r, "model_bytes")));
        const cJSON *lat = cJSON_GetObjectItem(r, "infer_latency_ms_median");
        const cJSON *csr = cJSON_GetObjectItem(r, "csr_file_bytes");
        cr_assert(cJSON_IsNumber(lat) && lat->valuedouble > 0, "no infer_latency_ms_median in the row");
        cr_assert(cJSON_IsNumber(csr) && csr->valuedouble > 0, "no csr_file_bytes in the row");
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(r, "infer_samples_per_second")));
        cr_assert_null(cJSON_GetObjectItem(r, "infer_error"));
        char p[900];
        snprintf(p, sizeof p, "%s/out/runs/%s/log.txt", dir,
                 cJSON_GetObjectItem(r, "run_id")->valuestring);
        cr_assert_eq(access(p, R_OK), 0, "no %s", p);
    }
    elag_ledger_free(&l);
    cr_assert_eq(count_lines("out/results.csv"), 5);
    cr_assert_eq(elag("report out --no-plots"), 0);
    o = slurp_rel("out/report/summary.md");
    cr_assert(strstr(o, "| CSR file | checkpoint | latency ms (median, p99) | inference samples/s |"),
              "%s", o);
    free(o);

    rc = elag("sweep s.yaml --out out --jobs 2");
    o = slurp(out_file);
    cr_assert_eq(rc, 0, "%s", o);
    cr_assert(strstr(o, "0 ran now"), "resume reran runs: %s", o);
    free(o);
    cr_assert_eq(count_lines("out/results.jsonl"), 4);

    /* a run folder without a ledger row is redone */
    elag_test_put(dir, "out/results.jsonl", "");
    cr_assert_eq(elag("sweep s.yaml --out out"), 0);
    cr_assert_eq(count_lines("out/results.jsonl"), 4);

    /* --dry-run shows the ledger's view */
    cr_assert_eq(elag("sweep s.yaml --out out --dry-run"), 0);
    o = slurp(out_file);
    cr_assert(strstr(o, "4 runs") && strstr(o, "done") && !strstr(o, "todo"), "%s", o);
    free(o);
}

Test(sweep_run, failed_runs_and_retry)
{
    elag_test_put(dir, "f.yaml", "base: base.yaml\n"
                  "runs:\n"
                  "  - {seed: 1}\n"
                  "  - {data.dataset: idx, data.path: /nonexistent-elag}\n"
                  "  - {seed: 2}\n");
    int rc = elag("sweep f.yaml --out out");
    char *o = slurp(out_file);
    cr_assert_eq(rc, 1, "a failed run makes exit 1: %s", o);
    cr_assert(strstr(o, "FAILED"), "%s", o);
    free(o);
    elag_ledger l = ledger("out");
    cr_assert_eq(l.n, 3, "the sweep went on after the failure");
    int failed = 0;
    for (int i = 0; i < l.n; i++)
        if (strcmp(elag_ledger_status(l.rows[i]), "failed") == 0) {
            failed++;
            const cJSON *e = cJSON_GetObjectItem(l.rows[i], "error");
            cr_assert(cJSON_IsString(e) && strstr(e->valuestring, "nonexistent-elag"),
                      "error names the cause");
        }
    cr_assert_eq(failed, 1);
    elag_ledger_free(&l);

    cr_assert_eq(elag("sweep f.yaml --out out"), 1);
    cr_assert_eq(count_lines("out/results.jsonl"), 3, "failed runs are not retried by default");
    cr_assert_eq(elag("sweep f.yaml --out out --retry-failed"), 1);
    cr_assert_eq(count_lines("out/results.jsonl"), 4, "the retry appends its outcome");
    l = ledger("out");
    cr_assert_eq(l.n, 3, "readers keep one row per run");
    elag_ledger_free(&l);
    cr_assert_eq(count_lines("out/results.csv"), 4, "results.csv: one row per run");
}

Test(sweep_run, shards_then_collect)
{
    elag_test_put(dir, "s.yaml", "base: base.yaml\ngrid: {prune.target: [0.1, 0.3, 0.5, 0.7, 0.9]}\n");
    cr_assert_eq(elag("sweep s.yaml --out a --shard 0/2"), 0);
    cr_assert_eq(elag("sweep s.yaml --out b --shard 1/2 --no-infer"), 0);
    cr_assert_eq(count_lines("a/results.jsonl"), 3);
    cr_assert_eq(count_lines("b/results.jsonl"), 2);
    elag_ledger nb = ledger("b");
    for (int i = 0; i < nb.n; i++) {
        cr_assert_str_eq(elag_ledger_status(nb.rows[i]), "ok");
        cr_assert_null(cJSON_GetObjectItem(nb.rows[i], "infer_latency_ms_median"), "--no-infer measured");
        cr_assert_null(cJSON_GetObjectItem(nb.rows[i], "csr_file_bytes"), "--no-infer exported");
    }
    elag_ledger_free(&nb);
    int rc = elag("sweep --collect a b --out merged");
    char *o = slurp(out_file);
    cr_assert_eq(rc, 0, "%s", o);
    free(o);
    cr_assert_eq(count_lines("merged/results.jsonl"), 5);
    elag_ledger l = ledger("merged");
    cr_assert_eq(l.n, 5);
    for (int i = 0; i < l.n; i++) {
        char p[900];
        snprintf(p, sizeof p, "%s/merged/runs/%s/model.safetensors", dir,
                 cJSON_GetObjectItem(l.rows[i], "run_id")->valuestring);
        cr_assert_eq(access(p, R_OK), 0, "no %s", p);
    }
    elag_ledger_free(&l);
    /* every run of the dry run is in the merged ledger */
    cr_assert_eq(elag("sweep s.yaml --out merged --dry-run"), 0);
    o = slurp(out_file);
    cr_assert(!strstr(o, "todo"), "%s", o);
    free(o);
    cr_assert_eq(elag("sweep --collect --out merged"), 2);
    cr_assert_eq(elag("sweep --collect nowhere --out merged"), 2);
}

Test(sweep_run, threads_and_devices)
{
    elag_test_put(dir, "s.yaml", "base: base.yaml\ngrid: {seed: [1, 2, 3, 4]}\n");
    cr_assert_eq(elag("sweep s.yaml --out out --jobs 2 --devices cpu,cpu-ref"), 0);
    elag_ledger l = ledger("out");
    cr_assert_eq(l.n, 4);
    int cores = elag_sweep_cores(), want = cores / 2 > 1 ? cores / 2 : 1;
    int seen_cpu = 0, seen_ref = 0;
    for (int i = 0; i < l.n; i++) {
        char p[900];
        snprintf(p, sizeof p, "%s/out/runs/%s/config.yaml", dir,
                 cJSON_GetObjectItem(l.rows[i], "run_id")->valuestring);
        char *cfg = slurp(p), want_line[64];
        snprintf(want_line, sizeof want_line, "  threads: %d\n", want);
        cr_assert(strstr(cfg, want_line), "train.threads is not %d in %s", want, p);
        seen_cpu += strstr(cfg, "device: \"cpu\"\n") != NULL;
        seen_ref += strstr(cfg, "device: \"cpu-ref\"\n") != NULL;
        free(cfg);
    }
    cr_assert(seen_cpu > 0 && seen_ref > 0, "devices not used round-robin (%d, %d)", seen_cpu,
              seen_ref);
    elag_ledger_free(&l);
    cr_assert_eq(elag("sweep s.yaml --out out --jobs 0"), 2);
    cr_assert_eq(elag("sweep s.yaml --out out --shard 2/2"), 2);
    cr_assert_eq(elag("sweep s.yaml --out out --devices ,"), 2);
}

Test(sweep_run, failed_export_keeps_the_run_ok)
{
    elag_test_put(dir, "s.yaml", "base: base.yaml\n");
    cr_assert_eq(elag("sweep s.yaml --out out --no-infer"), 0);
    elag_ledger l = ledger("out");
    cr_assert_eq(l.n, 1);
    char cmd[1200];
    /* a folder where the export should go makes `elag export` fail */
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/out/runs/%s/model.csr.safetensors/x' && : > '%s/out/results.jsonl'", dir,
             cJSON_GetObjectItem(l.rows[0], "run_id")->valuestring, dir);
    elag_ledger_free(&l);
    cr_assert_eq(elag_test_run(cmd, NULL), 0);
    int rc = elag("sweep s.yaml --out out");
    char *o = slurp(out_file);
    cr_assert_eq(rc, 0, "training succeeded, so the run is ok: %s", o);
    free(o);
    l = ledger("out");
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(elag_ledger_status(l.rows[0]), "ok");
    const cJSON *e = cJSON_GetObjectItem(l.rows[0], "infer_error");
    cr_assert(cJSON_IsString(e) && strncmp(e->valuestring, "export: ", 8) == 0, "no infer_error");
    cr_assert_null(cJSON_GetObjectItem(l.rows[0], "infer_latency_ms_median"));
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(l.rows[0], "test_accuracy")));
    elag_ledger_free(&l);
}
