/*
 * Fault injection (tests/cov_faults.c, the harness) over a sweep's bookkeeping: what
 * `elag sweep` does around its child processes (the sweep file's copy, claims, the
 * ledger, the CSV), then `elag report` and `--collect` of the result. Every call site of
 * the C library's allocation and file functions fails once: the step must fail with
 * that fault's status or, where it succeeds, report and collect must have read every row
 * (a failed read of a ledger is an error naming it, never a shorter ledger).
 */
#define _POSIX_C_SOURCE 200809L
#include "cov_faults.h"

#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

TestSuite(cov_faults_sweep, .init = elag_fault_setup, .fini = elag_fault_teardown,
          .timeout = 600);

#define CHECK(call)                                                                                \
    do {                                                                                           \
        elag_status c_ = (call);                                                                   \
        if (c_ != ELAG_OK) {                                                                       \
            st = c_;                                                                               \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* The sweep file `spec` started in `out` as `elag sweep` does it: its copy, the shard, two
 * runs claimed and ended (run 0 trained ok, its summary written here; run 1 failed), the
 * CSV, and the ledger read back. */
static elag_status books(const char *spec, const char *out)
{
    char folder[900];
    elag_status st = ELAG_OK;
    elag_sweep_t *sw = NULL;
    elag_sweep_shard_t *sh = NULL;
    elag_sweep_ledger_t *l = NULL;
    CHECK(elag_sweep_open(&sw, spec));
    CHECK(elag_sweep_copy_file(sw, out));
    elag_sweep_shard_options so = ELAG_SWEEP_SHARD_OPTIONS_INIT;
    so.out_dir = out, so.no_infer = 1;
    CHECK(elag_sweep_shard_open(&sh, sw, &so));
    for (int r = 0; r < 2; r++) {
        elag_sweep_claim claim;
        elag_sweep_job_t *job = NULL;
        CHECK(elag_sweep_shard_claim(sh, r, "cpu", &claim, &job));
        if (claim != ELAG_SWEEP_CLAIM_TAKEN || !job) { /* no Criterion assert in a child */
            elag_sweep_job_free(job);
            st = elag_fail(ELAG_ERR_INTERNAL, "run %d was not claimed", r);
            goto done;
        }
        elag_sweep_command c;
        elag_sweep_job_command(job, &c);
        snprintf(folder, sizeof folder, "%s", c.log);
        *strrchr(folder, '/') = '\0';
        if (r == 0) QUIET(elag_test_put(folder, "summary.json", "{\"test_accuracy\": 0.5}"));
        elag_sweep_job_state state;
        elag_status e = elag_sweep_job_ended(job, r == 0 ? 0 : 2, 0, 1.0, 0, &state);
        elag_sweep_job_free(job);
        CHECK(e);
    }
    CHECK(elag_sweep_shard_write_csv(sh));
    CHECK(elag_sweep_ledger_open(&l, out));
done:
    elag_sweep_ledger_free(l);
    elag_sweep_shard_free(sh);
    elag_sweep_free(sw);
    return st;
}

/* `elag report OUT` and `elag sweep --collect OUT --out <dir>/mergedN`: both must see the
 * two rows of books() when they succeed. */
static elag_status report_collect(const char *out, int iter)
{
    char merged[600];
    elag_fault_path_of(merged, sizeof merged, "merged", iter);
    int ok = 0, failed = 0, rows = 0;
    elag_status st = elag_sweep_report(out, NULL, 0, NULL, &ok, &failed);
    const char *dirs[] = {out};
    if (st == ELAG_OK) st = elag_sweep_collect(dirs, 1, merged, &rows);
    QUIET(elag_test_rmtree(merged));
    if (st == ELAG_OK && (ok != 1 || failed != 1 || rows != 2))
        st = elag_fail(ELAG_ERR_INTERNAL,
                       "report and collect succeeded with %d ok, %d failed and %d rows (want "
                       "1, 1, 2)",
                       ok, failed, rows);
    return st;
}

static elag_status sweep_books(const char *spec, int iter)
{
    char out[600];
    elag_fault_path_of(out, sizeof out, "sweep", iter);
    elag_status st = books(spec, out);
    if (st == ELAG_OK) st = report_collect(out, iter);
    QUIET(elag_test_rmtree(out));
    return st;
}

static elag_status prepare(const char *spec, int iter)
{
    (void)iter;
    char out[600];
    snprintf(out, sizeof out, "%s/prepared", elag_fault_dir);
    return books(spec, out);
}

static void put_spec(char *spec, size_t size)
{
    elag_test_put(elag_fault_dir, "base.yaml", elag_fault_rigl_yaml);
    elag_test_put(elag_fault_dir, "s.yaml",
                  "base: base.yaml\nset: {train.epochs: 1}\ngrid: {seed: [1, 2, 3]}\n");
    snprintf(spec, size, "%s/s.yaml", elag_fault_dir);
}

Test(cov_faults_sweep, sweep)
{
    char spec[600];
    put_spec(spec, sizeof spec);
    elag_fault_sweep_depth("sweep bookkeeping", sweep_books, spec, 3);
}

/* Report and collect alone, with sites told apart by three callers: a read of the ledger
 * through elag_ledger_read from report, from collect (each input, then out_dir's own) is
 * a site of its own here, so each of those reads fails once. */
Test(cov_faults_sweep, report_and_collect)
{
    char spec[600], out[600];
    put_spec(spec, sizeof spec);
    elag_fault_child_ok(prepare, spec);
    snprintf(out, sizeof out, "%s/prepared", elag_fault_dir);
    int n = elag_fault_sweep_depth("report and collect", report_collect, out, 3);
    cr_assert_geq(n, 10, "only %d call sites", n);
}
