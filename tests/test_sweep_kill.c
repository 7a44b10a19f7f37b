/*
 * A sweep SIGKILLed mid-way, rerun, ends with every run exactly once (issue 5's
 * acceptance): a 6-run sweep (about 0.8 s a run, 2 at a time) is killed with SIGKILL
 * once some rows have landed, twice; its children must die with it (no orphan may keep
 * writing a run folder); a torn last row (a writer killed inside write(2)) is planted
 * too; the rerun must finish with exactly 6 lines, 6 unique run ids, all ok, and `elag
 * report --no-plots` writes its tables. A second test draws the plots of a short sweep: it
 * needs matplotlib and numpy in the interpreter `elag report` uses (/usr/bin/python3 or
 * $ELAG_PYTHON; Debian's python3-matplotlib, which scripts/test installs) and is skipped
 * visibly without them.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/atomic.h"
#include "support/testutil.h"
#include "sweep/sweep.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* a run trains `epochs` epochs (40: about 0.8 s, long enough to be killed mid-way) */
#define BASE_YAML(epochs)                                                                          \
    "name: killme\n"                                                                               \
    "device: cpu\n"                                                                                \
    "data:\n"                                                                                      \
    "  dataset: synthetic\n"                                                                       \
    "  synthetic: {train: 8192, test: 512, features: 64, classes: 4}\n"                            \
    "model:\n"                                                                                     \
    "  layers:\n"                                                                                  \
    "    - {type: linear, out_features: 256}\n"                                                    \
    "    - {type: relu}\n"                                                                         \
    "    - {type: linear, out_features: 4}\n"                                                      \
    "train: {epochs: " #epochs ", batch_size: 32}\n"                                               \
    "prune: {method: gmp, target: 0.5}\n"

static const char sweep_yaml[] =
    "base: base.yaml\n"
    "grid:\n"
    "  prune.method: [gmp, oneshot]\n"
    "  prune.target: [0.5, 0.75, 0.9]\n";

static char *dir;

static int complete_lines(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/out/results.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

/* Starts `elag sweep` in the background; returns its pid. */
static pid_t start_sweep(void)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(127);
        FILE *devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        execl(ELAG_CLI_PATH, ELAG_CLI_PATH, "sweep", "s.yaml", "--out", "out", "--jobs", "2",
              "--quiet", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Number of live processes working in our folder (the sweep and its runs chdir there;
 * a zombie has no cwd link, so only live ones count). */
static int processes_in_dir(void)
{
    DIR *proc = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (proc && (e = readdir(proc)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], cwd[1024];
        snprintf(path, sizeof path, "/proc/%s/cwd", e->d_name);
        ssize_t len = readlink(path, cwd, sizeof cwd - 1);
        if (len <= 0) continue;
        cwd[len] = '\0';
        n += strcmp(cwd, dir) == 0;
    }
    if (proc) closedir(proc);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs the sweep until at least `rows` lines are in the ledger, then SIGKILLs it. */
static void kill_after(int rows)
{
    pid_t pid = start_sweep();
    double waited = 0;
    while (complete_lines() < rows && waited < 60000) {
        sleep_ms(20);
        waited += 20;
    }
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the sweep ended before the kill");
    int at_kill = complete_lines();
    cr_assert_lt(at_kill, 6, "the sweep finished before it could be killed mid-way");
    /* children die with the sweep (PR_SET_PDEATHSIG): an orphan would still be writing
     * its run folder while the rerun redoes that run */
    for (int i = 0; i < 15 && processes_in_dir() > 0; i++) sleep_ms(20); /* 0.3 s */
    cr_assert_eq(processes_in_dir(), 0, "runs outlived the killed sweep");
    cr_assert_eq(complete_lines(), at_kill);
}

static void setup(void)
{
    dir = elag_test_tmpdir("sweepkill");
    cr_assert_not_null(dir);
    elag_test_put(dir, "base.yaml", BASE_YAML(40));
    elag_test_put(dir, "s.yaml", sweep_yaml);
}

static void teardown(void)
{
    if (!dir) return;
    elag_test_rmtree(dir);
    free(dir);
    dir = NULL;
}

Test(sweep_kill, sigkill_and_rerun_gives_each_run_once, .init = setup, .fini = teardown,
     .timeout = 120)
{
    kill_after(1);
    kill_after(3);
    /* a row torn by a writer killed inside write(2) */
    char path[700];
    snprintf(path, sizeof path, "%s/out/results.jsonl", dir);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fputs("{\"run_id\":\"torn\",\"status\":\"ok\",\"test_accur", f);
    fclose(f);

    char cmd[1200], out[760];
    snprintf(out, sizeof out, "%s/.out", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sweep s.yaml --out out --jobs 2", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out), 0);

    /* exactly 6 lines, 6 unique ids, each a whole JSON row, all ok */
    char *text = NULL;
    cr_assert_eq(elag_read_file(path, &text, NULL), ELAG_OK);
    char ids[8][ELAG_SWEEP_ID_LEN + 1];
    int n = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        cJSON *row = cJSON_Parse(line);
        cr_assert_not_null(row, "torn or mixed line: %s", line);
        cr_assert_str_eq(elag_ledger_status(row), "ok");
        const char *id = cJSON_GetObjectItem(row, "run_id")->valuestring;
        cr_assert_lt(n, 6, "more than 6 rows");
        for (int i = 0; i < n; i++) cr_assert_str_neq(ids[i], id, "run %s twice", id);
        snprintf(ids[n++], sizeof ids[0], "%s", id);
        cJSON_Delete(row);
    }
    free(text);
    cr_assert_eq(n, 6);
    elag_ledger l;
    cr_assert_eq(elag_ledger_read(path, &l), ELAG_OK);
    cr_assert_eq(l.n, 6);
    cr_assert_eq(l.torn_tail, 0);
    elag_ledger_free(&l);

    /* the report's tables (the plots: report_draws_every_plot) */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' report out --no-plots", dir, ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out), 0);
    snprintf(path, sizeof path, "%s/out/report/summary.md", dir);
    cr_assert_eq(access(path, R_OK), 0);
}

/* The plots of a finished sweep, drawn by scripts/plot.py: needs matplotlib and numpy. */
Test(sweep_kill, report_draws_every_plot, .fini = teardown, .timeout = 120)
{
    /* checked before setup: a skipped test does not reach .fini */
    if (!elag_test_python_has("matplotlib, numpy"))
        cr_skip_test("plots not checked: %s cannot import matplotlib or numpy (needs "
                     "python3-matplotlib; scripts/test installs it)", elag_test_python());
    setup();
    elag_test_put(dir, "base.yaml", BASE_YAML(2)); /* short runs: the report is under test */

    char cmd[1200], out[760];
    snprintf(out, sizeof out, "%s/.out", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sweep s.yaml --out out --jobs 2 --quiet", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' report out", dir, ELAG_CLI_PATH);
    int rc = elag_test_run(cmd, out);
    char *text = NULL;
    cr_assert_eq(elag_read_file(out, &text, NULL), ELAG_OK);
    cr_assert_eq(rc, 0, "elag report exit %d:\n%s", rc, text);
    cr_assert(strstr(text, "report: 5 plots in out/report/:"), "no plot line in:\n%s", text);
    free(text);
    const char *pngs[] = {"accuracy_vs_sparsity.png", "throughput_vs_sparsity.png",
                          "pareto_accuracy_latency.png", "masks_gmp.png", "masks_oneshot.png"};
    char path[700];
    snprintf(path, sizeof path, "%s/out/report/summary.md", dir);
    cr_assert_eq(elag_read_file(path, &text, NULL), ELAG_OK);
    for (size_t i = 0; i < sizeof pngs / sizeof pngs[0]; i++) {
        cr_assert(strstr(text, pngs[i]), "summary.md does not link %s", pngs[i]);
        snprintf(path, sizeof path, "%s/out/report/%s", dir, pngs[i]);
        cr_assert_eq(access(path, R_OK), 0, "no %s", path);
    }
    free(text);
}
