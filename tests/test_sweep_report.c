/*
 * `elag report` on a hand-made ledger (tests/data/sweep_fixture/results.jsonl: gmp at
 * 0.5 and 0.9 with three seeds, oneshot at 0.9 with two, one failed run, one failed run
 * retried to ok, and a torn last line): the means and sample standard deviations over
 * seeds, the per-layer table, failed runs; and, when plots cannot be drawn (no
 * matplotlib, plot.py failing), the tables written, one line on stderr naming what is
 * missing and the package, and exit 1; an interpreter or plot script named by the user
 * that is not there is bad usage (exit 2, nothing written).
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
    if (!dir) return;
    elag_test_rmtree(dir);
    free(dir);
    dir = NULL;
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

/* A sweep that names its runs (`name` on an axis) and thins its exports: groups are labelled
 * by name (nothing else of the swept keys), the file column is the export's size. */
Test(sweep_report, named_runs_and_thinned_exports)
{
    char path[800];
    snprintf(path, sizeof path, "%s/sw/results.jsonl", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    const char *row = "{\"run_id\":\"%012d\",\"status\":\"ok\",\"name\":\"%s\","
                      "\"prune.criterion\":\"%s\",\"seed\":%d,\"swept\":[\"name\","
                      "\"prune.criterion\",\"seed\"],\"prune_method\":\"gmp\","
                      "\"prune_target\":0.9,\"test_accuracy\":%.2f,\"sparsity\":0.9,"
                      "\"params_nonzero\":100,\"params_prunable\":1000,\"model_bytes\":9000,"
                      "\"infer_samples_per_second\":5000,\"infer_latency_ms\":0.5,"
                      "\"export\":\"thin,csr\",\"export_file_bytes\":%d}\n";
    fprintf(f, row, 1, "gmp90", "magnitude", 1, 0.80, 2000);
    fprintf(f, row, 2, "gmp90", "magnitude", 2, 0.82, 4000);
    fprintf(f, row, 3, "taylor90", "taylor", 1, 0.70, 3000);
    fclose(f);
    cr_assert_eq(report("--no-plots"), 0);
    char *md = slurp("sw/report/summary.md");
    EXPECT_IN(md, "| export file | checkpoint |");
    EXPECT_IN(md, "| run |");
    EXPECT_IN(md, "| gmp | 0.90 | 0.900 | 2 | 0.8100 ± 0.0141 | 100 / 1,000 | 3.0 kB | 9.0 kB |");
    EXPECT_IN(md, "| gmp90 |\n");
    EXPECT_IN(md, "| taylor90 |\n");
    EXPECT_IN(md, "(`thin,csr`)");
    cr_assert_null(strstr(md, "prune.criterion="), "named groups list only the name");
    free(md);
}

/* Writes an executable shell script dir/name with `body` after the #! line; returns its
 * path (static). */
static const char *put_script(const char *name, const char *body)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    fclose(f);
    cr_assert_eq(chmod(path, 0755), 0);
    return path;
}

/* Lines of text that start with prefix. */
static int lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, strlen(prefix)) == 0;
    return n;
}

Test(sweep_report, no_matplotlib_is_one_line_and_exit_1)
{
    /* what scripts/plot.py does without matplotlib: one line on stderr, exit 3 */
    const char *py = put_script("nompl-python", "echo \"plot.py: No module named 'matplotlib' "
                                                "(Debian: apt-get install python3-matplotlib)\" "
                                                ">&2\nexit 3\n");
    char opts[800];
    snprintf(opts, sizeof opts, "--python '%s'", py);
    cr_assert_eq(report(opts), 1);
    char *o = slurp(".out");
    char want[1200];
    snprintf(want, sizeof want, "elag report: plots not drawn: %s cannot import matplotlib "
             "(Debian: apt-get install python3-matplotlib); the tables are in sw/report/", py);
    EXPECT_IN(o, want);
    cr_assert_eq(lines_starting(o, "elag report:"), 1, "not one line:\n%s", o);
    cr_assert_null(strstr(o, "plot.py:"), "plot.py's own line repeated:\n%s", o);
    free(o);
    char *md = slurp("sw/report/summary.md");
    EXPECT_IN(md, "| gmp | 0.50 |");
    EXPECT_IN(md, "Plots not drawn: ");
    EXPECT_IN(md, "cannot import matplotlib");
    free(md);

    /* ELAG_PYTHON does the same; a bare name is looked up in PATH */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && PATH='%s':\"$PATH\" ELAG_PYTHON=nompl-python '%s' "
             "report sw", dir, dir, ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out_file), 1);
    o = slurp(".out");
    EXPECT_IN(o, want);
    free(o);

    /* --no-plots asks for the tables only: exit 0, nothing about plots */
    cr_assert_eq(report(strcat(opts, " --no-plots")), 0);
    o = slurp(".out");
    cr_assert_null(strstr(o, "plots not drawn"), "%s", o);
    free(o);
}

/* The real scripts/plot.py under an interpreter that cannot import matplotlib (a package
 * of that name earlier on PYTHONPATH that fails to import, as on a machine without
 * python3-matplotlib). */
Test(sweep_report, real_plot_script_without_matplotlib)
{
    if (!elag_test_python_has("sys")) {
        teardown(); /* a skipped test does not reach .fini */
        cr_skip_test("no Python interpreter at %s (needs python3-matplotlib)",
                     elag_test_python());
    }
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/hide/matplotlib'", dir);
    cr_assert_eq(elag_test_run(cmd, NULL), 0);
    elag_test_put(dir, "hide/matplotlib/__init__.py",
                  "raise ModuleNotFoundError(\"No module named 'matplotlib'\")\n");
    char body[1400];
    snprintf(body, sizeof body, "PYTHONPATH='%s/hide' exec '%s' \"$@\"\n", dir,
             elag_test_python());
    const char *py = put_script("hiding-python", body);
    char opts[800];
    snprintf(opts, sizeof opts, "--python '%s'", py);
    cr_assert_eq(report(opts), 1);
    char *o = slurp(".out");
    EXPECT_IN(o, "elag report: plots not drawn: ");
    EXPECT_IN(o, " cannot import "); /* numpy first when that is missing too */
    EXPECT_IN(o, "apt-get install python3-matplotlib");
    cr_assert_eq(lines_starting(o, "elag report:"), 1, "not one line:\n%s", o);
    free(o);
    char *md = slurp("sw/report/summary.md");
    EXPECT_IN(md, "| gmp | 0.50 |");
    free(md);
}

Test(sweep_report, failing_plot_script_is_exit_1_with_its_messages)
{
    const char *py = put_script("bad-python", "echo 'Traceback: boom' >&2\nexit 5\n");
    char opts[800];
    snprintf(opts, sizeof opts, "--python '%s'", py);
    cr_assert_eq(report(opts), 1);
    char *o = slurp(".out");
    EXPECT_IN(o, "Traceback: boom");
    EXPECT_IN(o, "exited with status 5");
    free(o);
}

/* An interpreter or plot script that the user named and is not there: exit 2 before
 * anything is written. The default interpreter missing is exit 1 (as above). */
Test(sweep_report, named_interpreter_or_script_missing_is_bad_usage)
{
    char report_dir[700];
    snprintf(report_dir, sizeof report_dir, "%s/sw/report", dir);
    struct stat sb;
    cr_assert_eq(report("--python /nonexistent/python3"), 2);
    char *o = slurp(".out");
    EXPECT_IN(o, "elag report: --python /nonexistent/python3: not an executable file");
    free(o);
    cr_assert_neq(stat(report_dir, &sb), 0, "the report was written");

    cr_assert_eq(report("--plot-script /nonexistent/plot.py"), 2);
    o = slurp(".out");
    EXPECT_IN(o, "elag report: --plot-script /nonexistent/plot.py: not a readable file");
    free(o);

    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cd '%s' && ELAG_PYTHON=/nonexistent/python3 '%s' report sw", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out_file), 2);
    o = slurp(".out");
    EXPECT_IN(o, "elag report: ELAG_PYTHON /nonexistent/python3: not an executable file");
    free(o);
    cr_assert_neq(stat(report_dir, &sb), 0, "the report was written");

    snprintf(cmd, sizeof cmd, "cd '%s' && ELAG_PYTHON=no-such-python '%s' report sw", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out_file), 2);
    o = slurp(".out");
    EXPECT_IN(o, "elag report: ELAG_PYTHON no-such-python: not an executable file");
    free(o);

    /* tables only: the interpreter is not needed */
    snprintf(cmd, sizeof cmd, "cd '%s' && ELAG_PYTHON=/nonexistent/python3 '%s' report sw "
             "--no-plots", dir, ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out_file), 0);
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
