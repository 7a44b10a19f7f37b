/*
 * The public API (include/elag/, host/api/) through the public headers only: versioned
 * options, devices, a training run into a folder, and inference on the export the CLI
 * makes of it (sparse against the dense masked model, batches in pieces against one
 * piece, one sample against its row of a batch, a device shared by two sessions).
 * tests/install/ checks the same API from outside the build tree.
 */
#include <elag/elag.h>

#include "support/fixtures.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

#define SAMPLES 10

Test(api, options_are_versioned)
{
    elag_infer_options io;
    OK(elag_infer_options_init(&io, ELAG_INFER_OPTIONS_VERSION));
    cr_expect_eq(io.version, ELAG_INFER_OPTIONS_VERSION);
    cr_expect(io.device == NULL && io.threads == 0 && io.max_batch == 0 && io.dense == 0);
    elag_device_options dop;
    OK(elag_device_options_init(&dop, ELAG_DEVICE_OPTIONS_VERSION));
    cr_expect_eq(dop.version, ELAG_DEVICE_OPTIONS_VERSION);
    elag_run_options ro;
    OK(elag_run_options_init(&ro, ELAG_RUN_OPTIONS_VERSION));
    cr_expect_eq(ro.version, ELAG_RUN_OPTIONS_VERSION);

    cr_expect_eq(elag_infer_options_init(&io, 0), ELAG_ERR_USAGE);
    cr_expect_eq(elag_run_options_init(&ro, ELAG_RUN_OPTIONS_VERSION + 1), ELAG_ERR_USAGE);
    cr_expect(strstr(elag_last_error(), "elag_run_options") != NULL, "%s", elag_last_error());

    /* a struct a caller forgot to initialise is refused, not read */
    elag_device_t *dev = NULL;
    dop.version = 0;
    cr_expect_eq(elag_device_open(&dev, &dop), ELAG_ERR_USAGE);
    cr_expect_null(dev);
}

Test(api, devices)
{
    elag_device_options o = ELAG_DEVICE_OPTIONS_INIT;
    o.device = "cpu-ref";
    elag_device_t *dev = NULL;
    OK(elag_device_open(&dev, &o));
    cr_expect_str_eq(elag_device_name(dev), "cpu-ref");
    cr_expect_eq(elag_device_is_cuda(dev), 0);
    elag_device_free(dev);

    o.device = "cpu";
    o.threads = 2;
    OK(elag_device_open(&dev, &o));
    cr_expect_str_eq(elag_device_name(dev), "cpu");
    cr_expect_eq(elag_device_threads(dev), 2);
    elag_device_free(dev);

    o.device = "tpu";
    cr_expect_eq(elag_device_open(&dev, &o), ELAG_ERR_USAGE);
    cr_expect_null(dev);
    elag_device_free(NULL);

    /* the test programs link libelag_cuda whenever the build has it (CMakeLists.txt) */
#ifdef ELAG_HAVE_CUDA
    cr_expect_eq(elag_cuda_linked(), 1);
#else
    cr_expect_eq(elag_cuda_linked(), 0);
#endif
    if (elag_cuda_device_count() == 0) {
        o.device = "cuda";
        cr_expect_eq(elag_device_open(&dev, &o), ELAG_ERR_NO_DEVICE);
        o.device = "auto";
        OK(elag_device_open(&dev, &o));
        cr_expect_eq(elag_device_is_cuda(dev), 0);
        cr_expect(strstr(elag_device_note(dev), "using the CPU") != NULL, "%s",
                  elag_device_note(dev));
        elag_device_free(dev);
    }
}

Test(api, bad_files_are_refused)
{
    elag_net_t *net = NULL;
    cr_expect_neq(elag_net_open(&net, "/nonexistent/x.safetensors"), ELAG_OK);
    cr_expect_null(net);
    cr_expect(strstr(elag_last_error(), "/nonexistent/x.safetensors") != NULL, "%s",
              elag_last_error());
    char *dir = elag_test_tmpdir("api-bad");
    elag_test_put(dir, "tiny.yaml", elag_test_tiny_yaml);
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.yaml", dir);
    cr_expect_eq(elag_net_open(&net, path), ELAG_ERR_INPUT, "%s", elag_last_error());
    cr_expect_eq(elag_net_open(&net, NULL), ELAG_ERR_USAGE);
    elag_net_free(NULL);
    elag_test_rmtree(dir);
    free(dir);
}

static void count_progress(const elag_run_progress *p, void *user)
{
    cr_expect_eq(p->version, ELAG_RUN_PROGRESS_VERSION);
    cr_expect(p->epoch >= 1 && p->epoch <= p->epochs);
    ++*(int *)user;
}

/* x (n, dim): a fixed pattern in [-1, 1). */
static void fill_inputs(float *x, int n, int dim)
{
    for (int i = 0; i < n * dim; i++) x[i] = (float)((i * 37) % 23) / 11.5f - 1.0f;
}

/* logits (n, classes) of `net` on dev (NULL: opened by name) with buffers for max_batch. */
static void run_net(const elag_net_t *net, elag_device_t *dev, const char *device, int max_batch,
                    int dense, const float *x, int n, float *logits)
{
    elag_infer_options o = ELAG_INFER_OPTIONS_INIT;
    o.device = device;
    o.threads = 1;
    o.max_batch = max_batch;
    o.dense = dense;
    elag_infer_t *s = NULL;
    OK(elag_infer_open(&s, net, dev, &o));
    cr_expect_eq(elag_infer_max_batch(s), max_batch);
    if (dev) cr_expect_str_eq(elag_infer_device_name(s), elag_device_name(dev));
    OK(elag_infer_run(s, x, n, logits));
    elag_infer_free(s);
}

Test(api, train_export_infer)
{
    char *dir = elag_test_tmpdir("api");
    elag_test_put(dir, "tiny.yaml", elag_test_tiny_yaml);
    char cfg[512], run[512], exp[512], cmd[2048], log[512];
    snprintf(cfg, sizeof cfg, "%s/tiny.yaml", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(exp, sizeof exp, "%s/tiny.csr.safetensors", dir);
    snprintf(log, sizeof log, "%s/export.log", dir);

    /* train through the API */
    int reports = 0;
    const char *sets[] = {"train.threads=1"};
    elag_run_options ro = ELAG_RUN_OPTIONS_INIT;
    ro.overrides = sets;
    ro.n_overrides = 1;
    ro.progress = count_progress;
    ro.progress_user = &reports;
    elag_run_result r = ELAG_RUN_RESULT_INIT;
    OK(elag_run_train(cfg, run, &ro, &r));
    cr_expect_str_eq(r.name, "tiny");
    cr_expect_str_eq(r.device, "cpu");
    cr_expect_eq(r.steps, 4); /* 128 samples, batches of 32, one epoch */
    cr_expect_gt(reports, 0);
    cr_expect_float_eq(r.sparsity, 0.5, 1e-9);
    cr_expect_eq(r.params_prunable, 8 * 8 + 3 * 8);
    /* a used folder is refused without force, and left alone */
    cr_expect_eq(elag_run_train(cfg, run, &ro, NULL), ELAG_ERR_INPUT);
    cr_expect(strstr(elag_last_error(), "run folder exists") != NULL, "%s", elag_last_error());

    /* export with the CLI, open through the API */
    snprintf(cmd, sizeof cmd, "'%s' export '%s/model.safetensors' --format csr -o '%s'",
             ELAG_CLI_PATH, run, exp);
    cr_assert_eq(elag_test_run(cmd, log), 0, "%s failed (log in %s)", cmd, log);
    elag_net_t *net = NULL;
    OK(elag_net_open(&net, exp));
    cr_assert_eq(elag_net_input_dim(net), 8);
    cr_assert_eq(elag_net_classes(net), 3);
    int64_t params = 0, nonzero = 0;
    cr_expect_float_eq(elag_net_sparsity(net, &params, &nonzero), 0.5, 1e-9);
    cr_expect_eq(params, 88);
    cr_expect_eq(nonzero, 44);

    float x[SAMPLES * 8], sparse[SAMPLES * 3], dense[SAMPLES * 3], pieces[SAMPLES * 3],
        fast[SAMPLES * 3], one[3];
    fill_inputs(x, SAMPLES, 8);
    run_net(net, NULL, "cpu-ref", SAMPLES, 0, x, SAMPLES, sparse);
    run_net(net, NULL, "cpu-ref", SAMPLES, 1, x, SAMPLES, dense);
    cr_expect_eq(elag_test_compare("sparse vs dense", sparse, dense, SAMPLES * 3,
                                   ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL),
                 0);
    run_net(net, NULL, "cpu", 8, 0, x, SAMPLES, fast);
    cr_expect_eq(elag_test_compare("cpu vs cpu-ref", fast, sparse, SAMPLES * 3,
                                   ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL),
                 0);

    /* "auto" on an MLP: the whole-net check (every layer CSR against the layers' own
     * choices) and the formats agree, and the logits do not move */
    {
        elag_net_t *a = NULL;
        OK(elag_net_open(&a, exp));
        OK(elag_net_convert(a, "dense", NULL)); /* start from formats that are not all CSR */
        elag_device_options co = ELAG_DEVICE_OPTIONS_INIT;
        co.device = "cpu";
        elag_device_t *cpu = NULL;
        OK(elag_device_open(&cpu, &co));
        OK(elag_net_convert(a, "auto", cpu));
        const char *note = elag_net_auto_note(a);
        int all_csr = 1;
        for (int i = 0; i < elag_net_weight_count(a); i++) {
            elag_weight_info w;
            OK(elag_net_weight(a, i, &w));
            all_csr &= strcmp(w.format, "csr") == 0;
        }
        if (!note[0] || strstr(note, "kept every layer csr"))
            cr_expect(all_csr, "auto note '%s' but not every layer is csr", note);
        else
            cr_expect(strstr(note, "kept the layers' own choices") && !all_csr, "note '%s'", note);
        cr_expect(!note[0] || strstr(note, "whole forward pass at batch 256"), "%s", note);
        float got[SAMPLES * 3];
        run_net(a, NULL, "cpu-ref", SAMPLES, 0, x, SAMPLES, got);
        cr_expect_eq(elag_test_compare("auto vs csr", got, sparse, SAMPLES * 3, ELAG_TOL_FAST_ABS,
                                       ELAG_TOL_FAST_REL),
                     0);
        elag_device_free(cpu);
        elag_net_free(a);
    }

    /* one device, two sessions: 10 samples in pieces of 3, and sample 7 alone */
    elag_device_options dop = ELAG_DEVICE_OPTIONS_INIT;
    dop.device = "cpu-ref";
    elag_device_t *dev = NULL;
    OK(elag_device_open(&dev, &dop));
    run_net(net, dev, NULL, 3, 0, x, SAMPLES, pieces);
    cr_expect_eq(elag_test_compare("pieces of 3 vs one batch", pieces, sparse, SAMPLES * 3,
                                   ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL),
                 0);
    run_net(net, dev, NULL, 1, 0, x + 7 * 8, 1, one);
    cr_expect_eq(elag_test_compare("sample 7 alone", one, sparse + 7 * 3, 3, ELAG_TOL_FAST_ABS,
                                   ELAG_TOL_FAST_REL),
                 0);

    /* argument checks */
    elag_infer_t *s = NULL;
    OK(elag_infer_open(&s, net, dev, NULL));
    cr_expect_eq(elag_infer_max_batch(s), ELAG_INFER_DEFAULT_MAX_BATCH);
    OK(elag_infer_run(s, x, 0, sparse));
    cr_expect_eq(elag_infer_run(s, x, -1, sparse), ELAG_ERR_USAGE);
    cr_expect_eq(elag_infer_run(s, NULL, 2, sparse), ELAG_ERR_USAGE);
    elag_infer_free(s);
    elag_infer_options bad = ELAG_INFER_OPTIONS_INIT;
    bad.max_batch = -1;
    cr_expect_eq(elag_infer_open(&s, net, dev, &bad), ELAG_ERR_USAGE);
    cr_expect_null(s);
    cr_expect_eq(elag_infer_open(&s, NULL, dev, NULL), ELAG_ERR_USAGE);

    elag_device_free(dev);
    elag_net_free(net);
    elag_test_rmtree(dir);
    free(dir);
}
