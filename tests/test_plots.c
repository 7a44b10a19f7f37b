/*
 * The plots' look (issue 13): tests/check_plots.py draws every figure of scripts/plot.py
 * and scripts/plot_bench.py from made-up rows and checks one title size, legend text of
 * at least 9 points, no "1e7" axis offsets, whole-number ticks on the mask panels, the
 * crossover markers in the bench legend, and old and new ledger names. Skips visibly
 * without matplotlib and numpy.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

Test(plots, one_look_for_every_figure)
{
    if (!elag_test_python_has("matplotlib, numpy"))
        cr_skip_test("%s lacks matplotlib or numpy (install python3-matplotlib)",
                     elag_test_python());
    char *dir = elag_test_tmpdir("plots");
    char cmd[2048], out[700];
    snprintf(out, sizeof out, "%s/.out", dir);
    snprintf(cmd, sizeof cmd, "MPLBACKEND=Agg '%s' '%s/tests/check_plots.py' '%s'",
             elag_test_python(), ELAG_SOURCE_DIR, dir);
    int rc = elag_test_run(cmd, out);
    char *text = elag_test_slurp(out);
    cr_assert_eq(rc, 0, "check_plots.py exit %d:\n%s", rc, text);
    free(text);
    elag_test_rmtree(dir);
    free(dir);
}
