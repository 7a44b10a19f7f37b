/*
 * A CSR export is readable without elag: tests/test_export_python.py parses it with
 * numpy alone (the safetensors header by hand), rebuilds the network from the "graph"
 * metadata and must reproduce the logits elag computes here on a few test inputs
 * within 1e-4. Skips visibly when /usr/bin/python3 lacks numpy.
 */
#include "io/safetensors.h"
#include "sparse/export.h"
#include "sparse/infer.h"
#include "support/fixtures.h"
#include "support/testutil.h"
#include "train/train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define PY "/usr/bin/python3"
#define SAMPLES 8

Test(export_numpy, python_reproduces_logits)
{
    if (elag_test_run(PY " -c 'import numpy'", NULL) != 0)
        cr_skip_test("no numpy for " PY " (install python3-numpy)");
    char *dir = elag_test_tmpdir("numpy");
    cr_assert_not_null(dir);
    elag_config cfg;
    elag_test_small_config(&cfg, 20);
    cfg.prune.method = ELAG_PRUNE_METHOD_GMP;
    cfg.prune.target = 0.7;
    cfg.prune.start = (elag_when){0.0, 1};
    cfg.prune.end = (elag_when){0.5, 1};
    cfg.prune.frequency = 4;
    elag_backend *be;
    OK(elag_backend_open("cpu", 1, &be, NULL, 0));
    elag_run_data data;
    OK(elag_run_data_load(&cfg, &data));
    elag_train_options opts = {.out_dir = dir};
    elag_train_summary s;
    OK(elag_train_run(&cfg, be, &data, &opts, &s));

    char ckpt[600], exp_path[600], want_path[600];
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", dir);
    snprintf(exp_path, sizeof exp_path, "%s/model.csr.safetensors", dir);
    snprintf(want_path, sizeof want_path, "%s/expected.safetensors", dir);
    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    for (int i = 0; i < e.n_layers; i++)
        if (e.layers[i].type == ELAG_LAYER_LINEAR)
            OK(elag_export_convert(&e, i, ELAG_SPARSE_FORMAT_CSR, 0));
    OK(elag_export_save(&e, exp_path));
    elag_export_free(&e);

    /* elag's logits of the first test inputs, from the file just written */
    OK(elag_export_load(exp_path, &e));
    elag_sparse_net net;
    OK(elag_sparse_net_init(&net, &e, be, SAMPLES, 0));
    float logits[SAMPLES * 4];
    OK(elag_sparse_net_forward(&net, data.test.x, SAMPLES, logits));
    elag_sparse_net_free(&net);
    elag_st_writer *w;
    OK(elag_st_writer_init(&w));
    int64_t xs[2] = {SAMPLES, data.test.features}, ys[2] = {SAMPLES, e.classes};
    OK(elag_st_writer_add(w, "inputs", ELAG_DTYPE_F32, 2, xs, data.test.x));
    OK(elag_st_writer_add(w, "logits", ELAG_DTYPE_F32, 2, ys, logits));
    OK(elag_st_writer_save(w, want_path));
    elag_st_writer_free(w);
    elag_export_free(&e);

    char cmd[2048], out[700];
    snprintf(out, sizeof out, "%s/python.out", dir);
    snprintf(cmd, sizeof cmd, PY " '%s/tests/test_export_python.py' '%s' '%s'", ELAG_SOURCE_DIR,
             exp_path, want_path);
    int rc = elag_test_run(cmd, out);
    if (rc != 0) {
        char buf[4096] = "";
        FILE *f = fopen(out, "r");
        if (f) {
            buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
            fclose(f);
        }
        cr_assert_fail("python reader exit %d:\n%s", rc, buf);
    }
    elag_run_data_free(&data);
    elag_backend_free(be);
    free(dir);
}
