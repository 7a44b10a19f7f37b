/*
 * `elag report` on a hand-made ledger (tests/data/sweep_fixture/results.jsonl: gmp at
 * 0.5 and 0.9 with three seeds, oneshot at 0.9 with two, one failed run, one failed run
 * retried to ok, and a torn last line): the means and sample standard deviations over
 * seeds, the per-layer table, failed runs, and plots skipped with a clear line (exit 0)
 * when the interpreter has no matplotlib.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/atomic.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *dir;
static char out_file[600];

static char *slurp(const char *rel)
{
    char path[800], *text = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (elag_read_file(path, &text, NULL) != ELAG_OK) return strdup("");
    return text;
}

static int report(const char *opts)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' report sw %s", dir, ELAG_CLI_PATH, opts);
    return elag_test_run(cmd, out_file);
}

static void setup(void)
{
    dir = elag_test_tmpdir("report");
    cr_assert_not_null(dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/sw' && cp '%s/tests/data/sweep_fixture/results.jsonl' "
             "'%s/sw/'", dir, ELAG_SOURCE_DIR, dir);
    cr_assert_eq(elag_test_run(cmd, NULL), 0);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(sweep_report, .init = setup, .fini = teardown);

#define EXPECT_IN(text, needle) cr_assert(strstr(text, needle), "no '%s' in:\n%s", needle, text)

/* The summary.csv row starting with `prefix`: sparsity, accuracy mean and std follow. */
static void expect_csv_row(const char *csv, const char *prefix, double sparsity, double mean,
                           double std)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s", prefix);
    const char *at = strstr(csv, needle);
    cr_assert_not_null(at, "no row '%s' in:\n%s", prefix, csv);
    double got[3];
    char *p = (char *)at + strlen(needle);
    for (int i = 0; i < 3; i++) {
        got[i] = strtod(p, &p);
        cr_assert_eq(*p, ',', "row '%s': bad field %d", prefix, i);
        p++;
    }
    const double tol = 1e-6; /* the CSV prints 17 digits; sums of 3 numbers differ in the last */
    cr_assert(fabs(got[0] - sparsity) < tol && fabs(got[1] - mean) < tol &&
                  fabs(got[2] - std) < tol,
              "row '%s': got %g %g %g, want %g %g %g", prefix, got[0], got[1], got[2], sparsity,
              mean, std);
}

Test(sweep_report, means_and_stds_over_seeds)
{
    cr_assert_eq(report("--no-plots"), 0);
    char *md = slurp("sw/report/summary.md");
    EXPECT_IN(md, "9 runs in `results.jsonl`: 8 ok, 1 failed");
    EXPECT_IN(md, "| gmp | 0.50 | 0.500 | 3 | 0.8200 ± 0.0200 | 133,100 / 266,200 | 3.20 MB | 82,000 |");
    EXPECT_IN(md, "| gmp | 0.90 | 0.900 | 3 | 0.7200 ± 0.0265 | 26,620 / 266,200 | 3.20 MB | 91,000 |");
    EXPECT_IN(md, "| oneshot | 0.90 | 0.900 | 2 | 0.6600 ± 0.0141 |");
    EXPECT_IN(md, "training samples/s");
    /* per-layer sparsity */
    EXPECT_IN(md, "| method | target sparsity | fc1 | fc2 | fc3 |");
    EXPECT_IN(md, "| gmp | 0.90 | 0.900 | 0.900 | 0.900 |");
    /* failed runs: the retried one is ok now, the other is listed */
    EXPECT_IN(md, "| 000000000008 | fashion-mnist: /nowhere");
    cr_assert_null(strstr(md, "| 000000000007 |"));
    cr_assert_null(strstr(md, "00000000000a"), "the torn line was read");
    free(md);

    char *csv = slurp("sw/report/summary.csv");
    EXPECT_IN(csv, "method,target_sparsity,settings,seeds,sparsity_mean,test_accuracy_mean,"
                   "test_accuracy_std,");
    expect_csv_row(csv, "gmp,0.5,\"\",3,", 0.5, 0.82, 0.02);
    expect_csv_row(csv, "gmp,0.9,\"\",3,", 0.9, 0.72, 0.0264575);
    expect_csv_row(csv, "oneshot,0.9,\"\",2,", 0.9, 0.66, 0.0141421);
    free(csv);
    char *layers = slurp("sw/report/layers.csv");
    EXPECT_IN(layers, "\ngmp,0.9,\"\",fc1,235200,23520,0.9,3\n");
    free(layers);
}

Test(sweep_report, plots_skipped_without_matplotlib)
{
    char py[700];
    snprintf(py, sizeof py, "%s/nompl-python", dir);
    FILE *f = fopen(py, "w");
    cr_assert_not_null(f);
    fputs("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'matplotlib'\" >&2\nexit 3\n", f);
    fclose(f);
    chmod(py, 0755);
    char opts[800];
    snprintf(opts, sizeof opts, "--python '%s'", py);
    cr_assert_eq(report(opts), 0);
    char *o = slurp(".out");
    EXPECT_IN(o, "Plots skipped");
    EXPECT_IN(o, "matplotlib");
    free(o);
    char *md = slurp("sw/report/summary.md");
    EXPECT_IN(md, "| gmp | 0.50 |");
    EXPECT_IN(md, "Plots skipped");
    free(md);

    cr_assert_eq(report("--python /nonexistent/python3"), 0);
    o = slurp(".out");
    EXPECT_IN(o, "Plots skipped: no Python interpreter at /nonexistent/python3");
    free(o);
}

Test(sweep_report, not_a_sweep_folder)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' report nowhere", dir, ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out_file), 2);
    char *o = slurp(".out");
    EXPECT_IN(o, "nowhere: no ledger results.jsonl there");
    free(o);
}
