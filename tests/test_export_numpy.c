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

/* Trains cfg for its epochs, exports it as CSR, and has the numpy reader reproduce the
 * logits of the first test inputs. */
static void python_reproduces(elag_config *cfg, const char *tag)
{
    if (elag_test_run(PY " -c 'import numpy'", NULL) != 0)
        cr_skip_test("no numpy for " PY " (install python3-numpy)");
    char *dir = elag_test_tmpdir(tag);
    cr_assert_not_null(dir);
    elag_backend *be;
    OK(elag_backend_open("cpu", 1, &be, NULL, 0));
    elag_run_data data;
    OK(elag_run_data_load(cfg, &data));
    elag_train_options opts = {.out_dir = dir};
    elag_train_summary s;
    OK(elag_train_run(cfg, be, &data, &opts, &s));

    char ckpt[600], exp_path[600], want_path[600];
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", dir);
    snprintf(exp_path, sizeof exp_path, "%s/model.csr.safetensors", dir);
    snprintf(want_path, sizeof want_path, "%s/expected.safetensors", dir);
    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    OK(elag_export_convert_all(&e, ELAG_SPARSE_FORMAT_CSR, 0));
    OK(elag_export_save(&e, exp_path));
    elag_export_free(&e);

    /* elag's logits of the first test inputs, from the file just written */
    OK(elag_export_load(exp_path, &e));
    elag_sparse_net net;
    OK(elag_sparse_net_init(&net, &e, be, SAMPLES, 0));
    float *logits = malloc((size_t)SAMPLES * e.classes * sizeof *logits);
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
    free(logits);

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
    elag_test_rmtree(dir);
    free(dir);
}

Test(export_numpy, python_reproduces_mlp_logits)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 20);
    cfg.prune.method = ELAG_PRUNE_METHOD_GMP;
    cfg.prune.target = 0.7;
    cfg.prune.start = (elag_when){0.0, 1};
    cfg.prune.end = (elag_when){0.5, 1};
    cfg.prune.frequency = 4;
    python_reproduces(&cfg, "numpy-mlp");
}

/* Conv (strided, padded), batch norm (folded) and one that is not foldable (after a pool),
 * max, average and global pooling, dropout, flatten: the reader follows PyTorch's NCHW
 * conventions, so this also checks elag's layout and flatten order against them. */
Test(export_numpy, python_reproduces_cnn_logits)
{
    static const char yaml[] =
        "name: cnn\ndevice: cpu\nseed: 5\n"
        "data: {train_limit: 512, test_limit: 64}\n"
        "model:\n  layers:\n"
        "    - {type: conv2d, out_channels: 4, kernel: [3, 5], padding: [1, 2], bias: false}\n"
        "    - {type: batchnorm}\n    - {type: relu}\n"
        "    - {type: maxpool, kernel: 3, stride: 2, padding: 1}\n"
        "    - {type: batchnorm}\n"
        "    - {type: conv2d, out_channels: 6, kernel: 3, stride: 2}\n    - {type: relu}\n"
        "    - {type: avgpool, kernel: 2}\n    - {type: dropout, p: 0.1}\n"
        "    - {type: flatten}\n    - {type: linear, out_features: 10}\n"
        "train: {epochs: 1, batch_size: 64, threads: 1}\n"
        "prune: {method: gmp, target: 0.6, start: 0.0, end: 0.5, frequency: 2}\n";
    elag_config cfg;
    OK(elag_config_parse(yaml, strlen(yaml), "cnn.yaml", NULL, 0, &cfg));
    python_reproduces(&cfg, "numpy-cnn");
}
