/*
 * `elag sweep` and `elag report` as a user runs them, for what test_sweep*.c leave out:
 * --dry-run of a shard with entries that resolve to one run; two jobs on named devices
 * where one run fails (exit 1, the failure in the ledger with the child's message, a
 * second pass and --retry-failed); report and --collect of the result; a sweep stopped by
 * SIGINT (its children stopped, exit 130, no row for a run that did not finish, both
 * still to do for a rerun); and reading a ledger that cannot be read (an error naming it, never
 * an empty ledger).
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("cov-sweep-cli");
    elag_test_put(dir, "base.yaml",
                  "name: b\ndevice: cpu-ref\n"
                  "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 6, "
                  "classes: 3}}\n"
                  "model: {layers: [{type: linear, out_features: 5}, {type: relu}, "
                  "{type: linear, out_features: 3}]}\n"
                  "train: {epochs: 1, batch_size: 16, threads: 1}\n");
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_sweep_cli, .init = setup, .fini = teardown, .timeout = 300);

/* `cd dir && elag ARGS`; its exit code, and its output (stdout and stderr) in *text. */
static int elag(char **text, const char *args)
{
    char cmd[4096], out[700];
    snprintf(out, sizeof out, "%s/.out", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    int rc = elag_test_run(cmd, out);
    *text = elag_test_slurp(out);
    remove(out);
    return rc;
}

static int lines_with(const char *path, const char *needle)
{
    char *t = elag_test_slurp(path);
    int n = 0;
    for (char *p = t; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    free(t);
    return n;
}

static int exists(const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

Test(cov_sweep_cli, dry_run_of_a_shard_writes_nothing)
{
    elag_test_put(dir, "s.yaml",
                  "base: base.yaml\nruns: [{seed: 1}, {seed: 2}, {seed: 3}, {seed: 1}]\n");
    char *o;
    int rc = elag(&o, "sweep s.yaml --dry-run --shard 1/2 --out o");
    cr_assert_eq(rc, 0, "%s", o);
    cr_expect(strstr(o, "sweep s.yaml: 3 runs, 1 in shard 1/2") != NULL, "%s", o);
    cr_expect(strstr(o, "note: 1 more entries resolve to the config of an earlier run") != NULL,
              "%s", o);
    cr_expect(strstr(o, "todo") != NULL, "%s", o);
    cr_expect(!exists("o"), "--dry-run made its --out folder");
    free(o);
    /* without --out: the default folder, named after the sweep file, is not made either */
    rc = elag(&o, "sweep s.yaml --dry-run -q");
    cr_assert_eq(rc, 0, "%s", o);
    cr_expect(strstr(o, "(base base.yaml, out runs/sweep-s)") != NULL, "%s", o);
    cr_expect(!exists("runs"), "--dry-run made runs/");
    free(o);
}

/* The notes a real run starts with: more jobs than cores, --devices that the sweep file
 * overrides, and entries that resolve to one run. */
Test(cov_sweep_cli, notes_before_a_run)
{
    elag_test_put(dir, "s.yaml",
                  "base: base.yaml\nset: {device: cpu-ref}\nruns: [{seed: 1}, {seed: 1}]\n");
    char *o;
    int rc = elag(&o, "sweep s.yaml --out o --jobs 1024 --devices cpu --no-infer");
    cr_assert_eq(rc, 0, "%s", o);
    cr_expect(strstr(o, "elag: note: --jobs 1024 is more than the ") != NULL, "%s", o);
    cr_expect(strstr(o, "elag: note: the sweep file sets 'device', so --devices is not used") !=
                  NULL,
              "%s", o);
    cr_expect(strstr(o, "elag: note: 1 entries resolve to the config of an earlier run") != NULL,
              "%s", o);
    cr_expect(strstr(o, "1 ran now (1 ok, 0 failed)") != NULL, "%s", o);
    free(o);
}

Test(cov_sweep_cli, a_failed_run_retry_report_and_collect)
{
    /* run 2 reads an IDX folder that does not exist: its training fails with exit 2 */
    elag_test_put(dir, "s.yaml",
                  "base: base.yaml\nruns: [{seed: 1}, {data.dataset: idx, "
                  "data.path: /nonexistent/idx}]\n");
    char *o, ledger[700];
    snprintf(ledger, sizeof ledger, "%s/o/results.jsonl", dir);
    int rc = elag(&o, "sweep s.yaml --out o --jobs 2 --devices cpu-ref,cpu --no-infer");
    cr_assert_eq(rc, 1, "one run failed: want exit 1, got %d: %s", rc, o);
    cr_expect(strstr(o, "2 ran now (1 ok, 1 failed)") != NULL, "%s", o);
    cr_expect(strstr(o, "1 failed run in the ledger") != NULL, "%s", o);
    free(o);
    cr_expect_eq(lines_with(ledger, "\"status\":\"ok\""), 1);
    cr_expect_eq(lines_with(ledger, "\"status\":\"failed\""), 1);
    cr_expect_eq(lines_with(ledger, "\"error\":\"fashion-mnist: "
                                    "/nonexistent/idx/train-images-idx3-ubyte.gz not found"),
                 1, "the failed row has the child's message");

    /* again: nothing to do, the failure is still reported */
    rc = elag(&o, "sweep s.yaml --out o --quiet");
    cr_expect_eq(rc, 1, "%s", o);
    cr_expect_eq(o[0], '\0', "--quiet printed: %s", o);
    free(o);
    rc = elag(&o, "sweep s.yaml --out o --dry-run");
    cr_expect_eq(rc, 0, "%s", o);
    cr_expect(strstr(o, "done") != NULL && strstr(o, "failed") != NULL, "%s", o);
    free(o);
    rc = elag(&o, "sweep s.yaml --out o --retry-failed --no-infer");
    cr_expect_eq(rc, 1, "%s", o);
    cr_expect(strstr(o, "1 ran now (0 ok, 1 failed), 1 already in the ledger") != NULL, "%s", o);
    free(o);
    cr_expect_eq(lines_with(ledger, "\"status\":\"failed\""), 2, "the retry appends its row");

    rc = elag(&o, "report o --no-plots");
    cr_expect_eq(rc, 0, "%s", o);
    char md[700];
    snprintf(md, sizeof md, "%s/o/report/summary.md", dir);
    cr_expect_eq(lines_with(md, "2 runs in `results.jsonl`: 1 ok, 1 failed"), 1);
    free(o);

    /* plots by a stand-in for plot.py, run by an interpreter named without a path (looked
     * up in PATH): its PNG names come back into summary.md; a script that is killed or
     * fails leaves the tables, says why, and exits 1 */
    elag_test_put(dir, "plot.sh",
                  "echo 'a note from the script' >&2\n: > \"$1/report/acc.png\"\n"
                  "echo report/acc.png\necho not-a-plot.txt\n");
    rc = elag(&o, "report o --python sh --plot-script plot.sh");
    cr_expect_eq(rc, 0, "%s", o);
    cr_expect(strstr(o, "a note from the script") != NULL, "%s", o);
    cr_expect(strstr(o, "report: 1 plots in o/report/: report/acc.png") != NULL, "%s", o);
    cr_expect_eq(lines_with(md, "![report/acc.png](report/acc.png)"), 1, "summary.md shows it");
    free(o);
    elag_test_put(dir, "killed.sh", "kill -9 $$\n");
    rc = elag(&o, "report o --python sh --plot-script killed.sh");
    cr_expect_eq(rc, 1, "%s", o);
    cr_expect(strstr(o, "killed.sh did not finish (could not start, or killed by a signal)") !=
                  NULL,
              "%s", o);
    free(o);
    elag_test_put(dir, "fails.sh", "echo 'plot.py: no data' >&2\nexit 5\n");
    rc = elag(&o, "report o --python sh --plot-script fails.sh");
    cr_expect_eq(rc, 1, "%s", o);
    cr_expect(strstr(o, "plot.py: no data") != NULL && strstr(o, "exited with status 5") != NULL,
              "%s", o);
    cr_expect_eq(lines_with(md, "Plots not drawn: "), 1, "summary.md says why");
    free(o);
    rc = elag(&o, "report o --python no-such-interpreter-here");
    cr_expect_eq(rc, 2, "%s", o);
    cr_expect(strstr(o, "--python no-such-interpreter-here: not an executable file") != NULL, "%s",
              o);
    free(o);

    rc = elag(&o, "sweep --collect o --out merged");
    cr_expect_eq(rc, 0, "%s", o);
    cr_expect(strstr(o, "collected 1 folder into merged: 2 runs") != NULL, "%s", o);
    free(o);
    snprintf(ledger, sizeof ledger, "%s/merged/results.jsonl", dir);
    cr_expect_eq(lines_with(ledger, "\"run_id\""), 2, "one row per run after the merge");
}

/* A ledger of failed runs only: the report has tables and no plots (there is nothing to
 * plot), exit 0. (It sorted a NULL array of groups: undefined behaviour, UBSan.) */
Test(cov_sweep_cli, a_report_of_failed_runs_only)
{
    char p[700];
    snprintf(p, sizeof p, "%s/o", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    elag_test_put(p, "results.jsonl",
                  "{\"run_id\": \"a\", \"status\": \"failed\", \"error\": \"x (exit 2)\"}\n"
                  "{\"run_id\": \"b\", \"status\": \"diverged\"}\n");
    char *o;
    int rc = elag(&o, "report o");
    cr_expect_eq(rc, 0, "%s", o);
    cr_expect(strstr(o, "(0 runs ok, 2 failed)") != NULL, "%s", o);
    cr_expect(strstr(o, "report: no finished runs, so no plots") != NULL, "%s", o);
    free(o);
    snprintf(p, sizeof p, "%s/o/report/summary.md", dir);
    cr_expect_eq(lines_with(p, "2 runs in `results.jsonl`: 0 ok, 2 failed (1 of them diverged)"),
                 1);
}

/* A ledger that cannot be read (here a folder where the file should be): report and
 * collect fail naming it, and collect makes no --out folder. */
Test(cov_sweep_cli, an_unreadable_ledger_is_an_error_naming_it)
{
    char p[700];
    snprintf(p, sizeof p, "%s/o", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/o/results.jsonl", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    char *o;
    int rc = elag(&o, "report o --no-plots");
    cr_expect_eq(rc, 1, "%s", o);
    cr_expect(strstr(o, "o/results.jsonl: read failed: Is a directory") != NULL, "%s", o);
    free(o);
    rc = elag(&o, "sweep --collect o --out merged");
    cr_expect_eq(rc, 1, "%s", o);
    cr_expect(strstr(o, "o/results.jsonl: read failed: Is a directory") != NULL, "%s", o);
    cr_expect(!exists("merged"), "a failed collect made its --out folder");
    free(o);
}

/* The number of run folders under dir/o/runs that hold a log. */
static int started_runs(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/o/runs", dir);
    DIR *d = opendir(p);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char log[1200];
        snprintf(log, sizeof log, "%s/%s/log.txt", p, e->d_name);
        n += e->d_name[0] != '.' && access(log, F_OK) == 0;
    }
    closedir(d);
    return n;
}

Test(cov_sweep_cli, sigint_stops_the_children_and_leaves_the_runs_to_do)
{
    /* runs that would take hours: they are stopped long before */
    elag_test_put(dir, "s.yaml",
                  "base: base.yaml\nset: {train.epochs: 1000000}\n"
                  "runs: [{seed: 1}, {seed: 2}]\n");
    char out[700];
    snprintf(out, sizeof out, "%s/.sweep.out", dir);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (chdir(dir) != 0 || !freopen(out, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(99);
        execl(ELAG_CLI_PATH, ELAG_CLI_PATH, "sweep", "s.yaml", "--out", "o", "--jobs", "2",
              "--no-infer", (char *)NULL);
        _exit(98);
    }
    /* wait for both children to have started (each run's log.txt exists) */
    for (int i = 0; i < 600 && started_runs() < 2; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(started_runs(), 2, "the runs did not start");
    kill(pid, SIGINT);
    int ws = 0;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    char *o = elag_test_slurp(out);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 130, "want exit 130: status %d: %s", ws, o);
    cr_expect(strstr(o, "sweep: stopped by signal 2; rerun the same command to resume") != NULL,
              "%s", o);
    free(o);
    char ledger[700];
    snprintf(ledger, sizeof ledger, "%s/o/results.jsonl", dir);
    cr_expect(access(ledger, F_OK) != 0 || lines_with(ledger, "\"run_id\"") == 0,
              "a run stopped by the signal got a row");
    /* both runs are still to do: a rerun of the same command resumes them */
    int rc = elag(&o, "sweep s.yaml --out o --dry-run");
    cr_expect_eq(rc, 0, "%s", o);
    int todo = 0;
    for (char *p = o; (p = strstr(p, " todo ")) != NULL; p++) todo++;
    cr_expect_eq(todo, 2, "%s", o);
    free(o);
}
