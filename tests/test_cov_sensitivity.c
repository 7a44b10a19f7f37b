/*
 * `elag sensitivity` on inputs and output folders test_sensitivity.c leaves out: a folder
 * given as the input, an output folder that is not empty (refused without force), the
 * checkpoint's own run folder as the output (refused even with force), a checkpoint
 * pruned N:M (its layers are measured element-wise, with a note saying so), and the
 * accessors' range checks.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static char *dir;
static char ckpt[700], run[600];

static void setup(void)
{
    dir = elag_test_tmpdir("cov-sens");
    elag_test_put(dir, "nm.yaml",
                  "name: nm\ndevice: cpu-ref\n"
                  "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 8, "
                  "classes: 4}}\n"
                  "model: {layers: [{type: linear, out_features: 8}, {type: relu},\n"
                  "                 {type: linear, out_features: 4}]}\n"
                  "train: {epochs: 1, batch_size: 16, threads: 1}\n"
                  "prune: {method: oneshot, granularity: nm, n: 2, m: 4}\n");
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/nm.yaml", dir);
    snprintf(run, sizeof run, "%s/nm", dir);
    OK(elag_run_train(cfg, run, NULL, NULL));
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_sensitivity, .init = setup, .fini = teardown, .timeout = 300);

static char notes[2048];

static void keep_note(const char *text, void *user)
{
    (void)user;
    strncat(notes, text, sizeof notes - strlen(notes) - 2);
    strcat(notes, "\n");
}

static elag_sensitivity_options options(void)
{
    static const double levels[] = {0.5};
    elag_sensitivity_options o = ELAG_SENSITIVITY_OPTIONS_INIT;
    o.device = "cpu-ref", o.threads = 1, o.levels = levels, o.n_levels = 1;
    o.finetune_steps = 0, o.note = keep_note;
    return o;
}

Test(cov_sensitivity, inputs_and_output_folders)
{
    elag_sensitivity_options o = options();
    elag_sensitivity_t *s = NULL;
    char out[700], want[1600];
    snprintf(out, sizeof out, "%s/out", dir);
    /* a folder as the input */
    cr_expect_eq(elag_sensitivity_run(&s, run, out, &o), ELAG_ERR_INPUT);
    snprintf(want, sizeof want,
             "%s: a folder (give a config file, or a checkpoint such as "
             "%s/model.safetensors)",
             run, run);
    cr_expect_str_eq(elag_last_error(), want);
    cr_expect_null(s);
    /* an output folder in use */
    cr_assert_eq(mkdir(out, 0755), 0);
    elag_test_put(out, "keep.txt", "mine");
    cr_expect_eq(elag_sensitivity_run(&s, ckpt, out, &o), ELAG_ERR_INPUT);
    snprintf(want, sizeof want, "%s: the folder exists and is not empty (use --force", out);
    cr_expect(strncmp(elag_last_error(), want, strlen(want)) == 0, "%s", elag_last_error());
    /* the checkpoint's own folder, even with force */
    o.force = 1;
    cr_expect_eq(elag_sensitivity_run(&s, ckpt, run, &o), ELAG_ERR_INPUT);
    cr_expect(strstr(elag_last_error(), "that is the checkpoint's own folder") != NULL, "%s",
              elag_last_error());
    /* with force, into the folder in use: N:M layers are measured element-wise */
    notes[0] = '\0';
    OK(elag_sensitivity_run(&s, ckpt, out, &o));
    cr_expect(strstr(notes,
                     "sensitivity: prune.granularity nm has one sparsity of its own (1 - "
                     "N/M); the layers are pruned weight by weight (element) instead") != NULL,
              "notes: %s", notes);
    char keep_path[800];
    snprintf(keep_path, sizeof keep_path, "%s/keep.txt", out);
    char *keep = elag_test_slurp(keep_path);
    cr_expect_str_eq(keep, "mine", "force does not empty the folder");
    free(keep);
    elag_sensitivity_info info = ELAG_SENSITIVITY_INFO_INIT;
    OK(elag_sensitivity_describe(s, &info));
    cr_expect_eq(info.n_layers, 2);
    cr_expect_eq(info.n_levels, 1);
    elag_sensitivity_layer_info layer;
    cr_expect_eq(elag_sensitivity_layer(s, 2, &layer), ELAG_ERR_USAGE);
    cr_expect_eq(elag_sensitivity_layer(s, -1, &layer), ELAG_ERR_USAGE);
    OK(elag_sensitivity_layer(s, 1, &layer));
    cr_expect(layer.rows == 4 && layer.cols == 8, "%d x %d", layer.rows, layer.cols);
    elag_sensitivity_point pt;
    cr_expect_eq(elag_sensitivity_result(s, 0, 2, &pt), ELAG_ERR_USAGE);
    cr_expect_eq(elag_sensitivity_result(s, 0, -1, &pt), ELAG_ERR_USAGE);
    OK(elag_sensitivity_result(s, 0, 1, &pt));
    cr_expect(pt.sparsity >= 0.5, "element-wise to 0.5: %g", pt.sparsity);
    elag_sensitivity_free(s);
}

/* `elag sensitivity` draws sensitivity.png through the Python that ELAG_PYTHON names
 * (here stand-ins, shell scripts given the same arguments): drawn; skipped with one line
 * when the interpreter or matplotlib is missing (exit 0: the results are there); not
 * drawn, exit 1, when the script fails or is killed (a bug, not a missing package). */
Test(cov_sensitivity, the_plot_through_each_kind_of_python)
{
    static const struct {
        const char *name, *body; /* body of a stand-in for python: $3 json, $4 png */
        int rc;
        const char *want; /* in the output */
    } pythons[] = {
        {"ok.sh", "test -f \"$3\" && : > \"$4\"\n", 0, "sensitivity.png)"},
        {"noimport.sh", "echo \"No module named 'matplotlib'\" >&2\nexit 3\n", 0,
         "sensitivity.png skipped: "},
        {"fails.sh", "echo 'Traceback: boom' >&2\nexit 1\n", 1, "sensitivity.png not drawn: "},
        {"killed.sh", "kill -9 $$\n", 1, "did not finish (could not start, or killed by a signal)"},
        {"no-such-python-here", NULL, 0, "skipped: no Python interpreter at no-such-python-here"},
    };
    for (size_t i = 0; i < sizeof pythons / sizeof *pythons; i++) {
        char py[700], cmd[3000], outf[700];
        if (pythons[i].body) {
            char text[400];
            snprintf(text, sizeof text, "#!/bin/sh\n%s", pythons[i].body);
            elag_test_put(dir, pythons[i].name, text);
            snprintf(py, sizeof py, "%s/%s", dir, pythons[i].name);
            cr_assert_eq(chmod(py, 0755), 0);
        } else {
            snprintf(py, sizeof py, "%s", pythons[i].name);
        }
        snprintf(outf, sizeof outf, "%s/cli.out", dir);
        snprintf(cmd, sizeof cmd,
                 "ELAG_PYTHON='%s' '%s' sensitivity '%s' --levels 0.5 --finetune-steps 0 "
                 "--threads 1 --out '%s/s%zu'",
                 py, ELAG_CLI_PATH, ckpt, dir, i);
        int rc = elag_test_run(cmd, outf);
        char *o = elag_test_slurp(outf);
        cr_expect_eq(rc, pythons[i].rc, "%s: exit %d: %s", pythons[i].name, rc, o);
        cr_expect(strstr(o, pythons[i].want) != NULL, "%s: '%s' not in: %s", pythons[i].name,
                  pythons[i].want, o);
        if (i == 1)
            cr_expect(strstr(o, "cannot import matplotlib (No module named 'matplotlib'") != NULL,
                      "%s", o);
        if (i == 2) cr_expect(strstr(o, "exited with status 1: Traceback: boom") != NULL, "%s", o);
        free(o);
        char png[800];
        snprintf(png, sizeof png, "%s/s%zu/sensitivity.png", dir, i);
        cr_expect_eq(access(png, F_OK) == 0, i == 0, "%s: sensitivity.png %s", pythons[i].name,
                     i == 0 ? "missing" : "written");
    }
}
