/*
 * `elag train`'s progress display (host/cli/progress.c): plain lines when stderr is not a
 * terminal (a line every train.log_every steps, one per epoch end with the validation and
 * test accuracies when there are any), a bar redrawn in place on a terminal, and nothing
 * with --quiet. The terminal is util-linux's script(1), which runs the command on a
 * pseudo-terminal; the test skips visibly without it.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("cov-progress");
    elag_test_put(dir, "p.yaml",
                  "name: p\n"
                  "device: cpu-ref\n"
                  "data: {dataset: synthetic, val_split: 0.25,\n"
                  "       synthetic: {train: 64, test: 32, features: 6, classes: 3}}\n"
                  "model:\n"
                  "  layers:\n"
                  "    - {type: linear, out_features: 8}\n"
                  "    - {type: relu}\n"
                  "    - {type: linear, out_features: 3}\n"
                  "train: {epochs: 2, batch_size: 16, threads: 1, log_every: 1,\n"
                  "        eval_every_epoch: true}\n");
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_progress, .init = setup, .fini = teardown, .timeout = 600);

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
    return n;
}

/* 48 training samples (64 less a quarter held out), batch 16: 3 steps an epoch */
Test(cov_progress, plain_lines_off_a_terminal)
{
    char cmd[2048], out[600];
    snprintf(out, sizeof out, "%s/log", dir);
    /* stderr into a pipe (the parentheses: elag_test_run's "< /dev/null" is for them, not
     * for cat) */
    snprintf(cmd, sizeof cmd, "(cd '%s' && '%s' train p.yaml --out run1 2>&1 | cat)", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out), 0);
    char *log = elag_test_slurp(out);
    cr_expect_eq(count(log, "\r"), 0, "no redraws off a terminal: %s", log);
    /* every step but the last of an epoch (that one is the epoch's line) */
    cr_expect_eq(count(log, "\nstep ") + (strncmp(log, "step ", 5) == 0), 2 * 2, "%s", log);
    cr_expect(strstr(log, "step 1/6 epoch 1/2 loss ") != NULL, "%s", log);
    cr_expect_eq(count(log, "epoch 1/2 done: train loss "), 1, "%s", log);
    cr_expect_eq(count(log, "epoch 2/2 done: train loss "), 1, "%s", log);
    cr_expect_eq(count(log, " val acc "), 2, "validation accuracy at each epoch end: %s", log);
    cr_expect_eq(count(log, " test acc "), 2, "eval_every_epoch: %s", log);
    free(log);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' train p.yaml --out run2 --quiet 2>&1", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out), 0);
    log = elag_test_slurp(out);
    cr_expect_eq(count(log, "step "), 0, "--quiet: %s", log);
    cr_expect_eq(count(log, "done: train loss"), 0, "--quiet: %s", log);
    free(log);
}

Test(cov_progress, a_bar_on_a_terminal)
{
    if (access("/usr/bin/script", X_OK) != 0)
        cr_skip_test("needs script(1) (util-linux, Debian's bsdutils) for a terminal");
    char cmd[2048], out[600];
    snprintf(out, sizeof out, "%s/log", dir);
    /* script -q: no banner; -e: its exit status is the command's; -c: the command */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && script -qec \"'%s' train p.yaml --out run1\" /dev/null </dev/null", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out), 0);
    char *log = elag_test_slurp(out);
    /* a redraw per step: \r, the bar, the figures, and clear to the end of the line */
    cr_expect_eq(count(log, "\r["), 6, "%s", log);
    cr_expect(strstr(log, "\r[######..............] epoch 1/2 step 2/6 loss ") != NULL, "%s", log);
    cr_expect(strstr(log, "\r[####################] epoch 2/2 step 6/6 loss ") != NULL, "%s", log);
    cr_expect_eq(count(log, "\033[K"), 6, "%s", log);
    cr_expect_eq(count(log, " ETA "), 6, "%s", log);
    cr_expect_eq(count(log, "epoch 2/2 done: train loss "), 1, "%s", log);
    cr_expect_eq(count(log, "\nstep "), 0, "no plain step lines on a terminal: %s", log);
    free(log);
}
