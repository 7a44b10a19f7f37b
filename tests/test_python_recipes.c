/*
 * docs/python.md is run, not just read: tests/run_doc_recipes.py executes its recipes in
 * order (numpy data for `data.dataset: npy`, `elag train/export/infer --inputs
 * --output`, a checkpoint and an export read with numpy, CSR weights as scipy matrices,
 * the network rebuilt as a torch nn.Sequential whose logits must match `elag infer
 * --output` within 1e-4). Skips visibly where /usr/bin/python3 lacks numpy, scipy, yaml
 * or torch. A copy of the page whose elag logits are nudged must fail.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE   ELAG_SOURCE_DIR "/docs/python.md"
#define RUNNER ELAG_SOURCE_DIR "/tests/run_doc_recipes.py"

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("recipes");
    cr_assert_not_null(dir);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(python_recipes, .init = setup, .fini = teardown, .timeout = 600);

/* Runs the recipes of `page` in dir with `extra` runner arguments; the exit status, the
 * output in *text (the caller frees it). */
static int run_recipes(const char *page, const char *extra, char **text)
{
    char cli[1024], cmd[4096], out[700];
    snprintf(cli, sizeof cli, "%s", ELAG_CLI_PATH);
    snprintf(out, sizeof out, "%s/.recipes.out", dir);
    snprintf(cmd, sizeof cmd, "PATH='%s':\"$PATH\" '%s' '%s' '%s' '%s' %s", dirname(cli),
             elag_test_python(), RUNNER, page, dir, extra);
    int rc = elag_test_run(cmd, out);
    *text = elag_test_slurp(out);
    return rc;
}

Test(python_recipes, numpy_and_scipy_recipes_run)
{
    if (!elag_test_python_has("numpy, scipy, yaml"))
        cr_skip_test("%s lacks numpy, scipy or yaml (install python3-numpy python3-scipy "
                     "python3-yaml)",
                     elag_test_python());
    char *text;
    int rc = run_recipes(PAGE, "--skip torch", &text);
    cr_assert_eq(rc, 0, "recipes failed:\n%s", text);
    cr_assert(strstr(text, "recipe scipy (python)") != NULL, "%s", text);
    cr_assert(strstr(text, "fc1: 3 x 8, 12 nonzero") != NULL, "%s", text);
    free(text);
}

Test(python_recipes, torch_rebuilds_the_network_with_elags_logits)
{
    if (!elag_test_python_has("numpy, scipy, yaml, torch"))
        cr_skip_test("%s lacks numpy, scipy, yaml or torch (install python3-torch)",
                     elag_test_python());
    char *text;
    int rc = run_recipes(PAGE, "", &text);
    cr_assert_eq(rc, 0, "recipes failed:\n%s", text);
    cr_assert(strstr(text, "torch vs elag infer: max relative difference") != NULL, "%s", text);
    free(text);
}

Test(python_recipes, torch_recipe_fails_when_the_logits_differ)
{
    if (!elag_test_python_has("numpy, scipy, yaml, torch"))
        cr_skip_test("%s lacks numpy, scipy, yaml or torch (install python3-torch)",
                     elag_test_python());
    /* the page with one logit of elag's output moved by 1e-3 after `elag infer` */
    char *page = elag_test_slurp(PAGE);
    const char *anchor = "--output logits.npy\n";
    char *at = strstr(page, anchor);
    cr_assert_not_null(at, "docs/python.md no longer writes logits.npy");
    at += strlen(anchor);
    char nudge[512];
    snprintf(nudge, sizeof nudge,
             "'%s' -c \"import numpy as np; a = np.load('logits.npy'); a[7, 1] += 1e-3; "
             "np.save('logits.npy', a)\"\n",
             elag_test_python());
    size_t len = strlen(page) + strlen(nudge) + 1;
    char *copy = malloc(len);
    snprintf(copy, len, "%.*s%s%s", (int)(at - page), page, nudge, at);
    elag_test_put(dir, "nudged.md", copy);
    char path[700], *text;
    snprintf(path, sizeof path, "%s/nudged.md", dir);
    int rc = run_recipes(path, "", &text);
    cr_assert_eq(rc, 1, "a nudged logit went unnoticed:\n%s", text);
    cr_assert(strstr(text, "recipe torch failed") != NULL, "%s", text);
    free(text);
    free(copy);
    free(page);
}
