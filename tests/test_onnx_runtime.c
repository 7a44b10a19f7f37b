/*
 * ONNX export checked in ONNX Runtime (issue 13's acceptance): the quickstart model
 * (configs/fashion_mlp_gmp.yaml, LeNet-300-100 pruned to 90% with GMP) and vgg-small
 * (configs/fashion_cnn_gmp.yaml), each trained briefly here, exported with
 * elag_net_save_onnx and run by tests/onnx_check.py in onnxruntime over the whole
 * Fashion-MNIST test set: logits within 1e-4 relative of elag's, and accuracy within
 * 0.002 of what `elag eval` (elag_run_eval) reports. onnxruntime comes from PyPI into
 * <build>/onnx-venv (scripts/setup.sh makes it, best effort) or $ELAG_ONNX_PYTHON; without
 * it, or without the data set, the tests skip visibly.
 */
#include "elag/elag.h"
#include "io/safetensors.h"
#include "sparse/export.h"
#include "sparse/thin.h"
#include "support/fixtures.h"
#include "support/testutil.h"
#include "train/train.h"

#include <criterion/criterion.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

/* The interpreter with onnxruntime, or NULL. */
static const char *ort_python(void)
{
    static char py[1200];
    const char *env = getenv("ELAG_ONNX_PYTHON");
    if (env && *env)
        snprintf(py, sizeof py, "%s", env);
    else {
        char cli[1024];
        snprintf(cli, sizeof cli, "%s", ELAG_CLI_PATH);
        snprintf(py, sizeof py, "%s/onnx-venv/bin/python", dirname(cli));
    }
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import onnxruntime, numpy'", py);
    return elag_test_run(cmd, NULL) == 0 ? py : NULL;
}

static void check_in_onnxruntime(const char *config, const char *const *sets, int n_sets,
                                 const char *tag)
{
    const char *py = ort_python();
    if (!py)
        cr_skip_test("no onnxruntime: scripts/setup.sh makes <build>/onnx-venv with it (pip), "
                     "or set ELAG_ONNX_PYTHON");
    if (access("/usr/share/datasets/fashion-mnist", R_OK) != 0)
        cr_skip_test("no Fashion-MNIST (apt-get install dataset-fashion-mnist)");
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", ELAG_SOURCE_DIR, config);
    elag_config cfg;
    OK(elag_config_load(path, sets, n_sets, &cfg));
    char *dir = elag_test_tmpdir(tag);
    elag_train_summary s;
    elag_test_train(&cfg, dir, NULL, 0, &s);
    char ckpt[700], onnx[700], want[700], log[700];
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", dir);
    snprintf(onnx, sizeof onnx, "%s/model.onnx", dir);
    snprintf(want, sizeof want, "%s/expected.safetensors", dir);
    snprintf(log, sizeof log, "%s/check.log", dir);

    elag_net_t *net;
    OK(elag_net_from_checkpoint(&net, ckpt));
    OK(elag_net_save_onnx(net, onnx));
    elag_net_free(net);
    elag_eval_options eo = ELAG_EVAL_OPTIONS_INIT;
    eo.device = "cpu";
    elag_eval_result ev = ELAG_EVAL_RESULT_INIT;
    OK(elag_run_eval(ckpt, &eo, &ev));

    /* elag's logits of the whole test set, with the inputs and labels */
    elag_run_data d;
    OK(elag_run_data_load_test(&cfg, &d));
    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    elag_backend *be;
    OK(elag_backend_open("cpu", 0, &be, NULL, 0));
    int n = (int)d.test.n;
    float *logits = malloc((size_t)n * e.classes * sizeof *logits);
    cr_assert_not_null(logits);
    OK(elag_export_logits(&e, be, d.test.x, n, logits));
    elag_st_writer *w;
    OK(elag_st_writer_init(&w));
    int64_t xs[2] = {n, d.test.features}, ys[2] = {n, e.classes}, ls[1] = {n};
    OK(elag_st_writer_add(w, "inputs", ELAG_DTYPE_F32, 2, xs, d.test.x));
    OK(elag_st_writer_add(w, "labels", ELAG_DTYPE_I32, 1, ls, d.test.y));
    OK(elag_st_writer_add(w, "logits", ELAG_DTYPE_F32, 2, ys, logits));
    OK(elag_st_writer_save(w, want));
    elag_st_writer_free(w);
    elag_export_free(&e);
    elag_backend_free(be);
    free(logits);
    elag_run_data_free(&d);

    char cmd[4000];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/onnx_check.py' '%s' '%s' %.17g", py, ELAG_SOURCE_DIR,
             onnx, want, ev.test_accuracy);
    int rc = elag_test_run(cmd, log);
    char *text = elag_test_slurp(log);
    cr_log_info("%s: %s", tag, text); /* the figures, in the verbose log */
    cr_assert_eq(rc, 0, "onnx_check.py exit %d:\n%s", rc, text);
    free(text);
    elag_test_rmtree(dir);
    free(dir);
}

Test(onnx_runtime, quickstart_model)
{
    const char *sets[] = {"train.epochs=1", "device=cpu", "train.threads=1"};
    check_in_onnxruntime("configs/fashion_mlp_gmp.yaml", sets, 3, "ort-mlp");
}

Test(onnx_runtime, vgg_small, .timeout = 600)
{
    /* a short run: the check is of the export, not of the accuracy training reaches */
    const char *sets[] = {"train.epochs=1", "data.train_limit=2048", "device=cpu",
                          "train.threads=1", "train.lr_schedule.warmup_steps=0"};
    check_in_onnxruntime("configs/fashion_cnn_gmp.yaml", sets, 5, "ort-vgg");
}
