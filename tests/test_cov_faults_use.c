/*
 * Fault injection (tests/cov_faults.c, the harness) over what uses a trained model: eval,
 * export (CSR, Blocked-ELL, thinned), inference and test-set evaluation, sensitivity (of
 * a checkpoint and of a config) and the three benchmarks. Every call site of a backend op,
 * elag_backend_open and the C library's allocation and file functions fails once; the
 * operation must fail with that fault's status, never crash.
 */
#define _POSIX_C_SOURCE 200809L
#include "cov_faults.h"

#include "support/testutil.h"

#include <criterion/criterion.h>
#include <elag/array.h>
#include <elag/onnx.h>

#include <stdio.h>
#include <string.h>

TestSuite(cov_faults_use, .init = elag_fault_setup, .fini = elag_fault_teardown, .timeout = 600);

/* ---- eval, export, inference ---- */

static elag_status eval(const char *ckpt, int iter)
{
    (void)iter;
    elag_eval_options o = ELAG_EVAL_OPTIONS_INIT;
    o.device = "cpu-ref";
    elag_eval_result r = ELAG_EVAL_RESULT_INIT;
    return elag_run_eval(ckpt, &o, &r);
}

/* the export of `ckpt` in `format` ("thin+csr": thinned first) to elag_fault_dir/exportN */
static elag_status export_as(const char *ckpt, const char *format, int iter)
{
    char out[600];
    elag_fault_path_of(out, sizeof out, "export", iter);
    elag_net_t *net = NULL;
    elag_status st = elag_net_from_checkpoint(&net, ckpt);
    int thin = strncmp(format, "thin+", 5) == 0;
    if (st == ELAG_OK && thin) st = elag_net_thin(net, NULL, NULL);
    if (st == ELAG_OK) st = elag_net_convert(net, format + (thin ? 5 : 0), NULL);
    if (st == ELAG_OK) st = elag_net_save(net, out);
    elag_net_free(net);
    QUIET(remove(out));
    return st;
}

static elag_status export_csr(const char *ckpt, int iter)
{
    return export_as(ckpt, "csr", iter);
}
static elag_status export_bell(const char *ckpt, int iter)
{
    return export_as(ckpt, "bell:16", iter);
}
static elag_status export_thin(const char *ckpt, int iter)
{
    return export_as(ckpt, "thin+csr", iter);
}

static elag_status infer(const char *file, int iter)
{
    (void)iter;
    elag_net_t *net = NULL;
    elag_device_t *dev = NULL;
    elag_infer_t *s = NULL, *d = NULL;
    elag_testset_t *t = NULL;
    elag_device_options dopts = ELAG_DEVICE_OPTIONS_INIT;
    dopts.device = "cpu-ref", dopts.threads = 1;
    elag_infer_options io = ELAG_INFER_OPTIONS_INIT;
    io.max_batch = 8;
    float x[5 * 6], logits[5 * 3];
    for (int i = 0; i < 5 * 6; i++) x[i] = (float)(i % 7) / 7.0f - 0.5f;
    elag_infer_result r = ELAG_INFER_RESULT_INIT;
    elag_status st = elag_net_open(&net, file);
    if (st == ELAG_OK) st = elag_device_open(&dev, &dopts);
    if (st == ELAG_OK) st = elag_infer_open(&s, net, dev, &io);
    if (st == ELAG_OK) st = elag_infer_run(s, x, 5, logits);
    if (st == ELAG_OK) st = elag_testset_open(&t, net);
    if (st == ELAG_OK) st = elag_infer_evaluate(s, t, 8, &r, NULL);
    io.dense = 1, io.device = "cpu-ref", io.threads = 1;
    if (st == ELAG_OK) st = elag_infer_open(&d, net, NULL, &io); /* opens its own device */
    if (st == ELAG_OK) st = elag_infer_run(d, x, 5, logits);
    elag_infer_free(d);
    elag_testset_free(t);
    elag_infer_free(s);
    elag_device_free(dev);
    elag_net_free(net);
    return st;
}

Test(cov_faults_use, eval_export_infer)
{
    char mlp[600], conv[600];
    elag_fault_trained("mlp", elag_fault_mlp_yaml, mlp, sizeof mlp);
    elag_fault_trained("conv", elag_fault_conv_yaml, conv, sizeof conv);
    elag_fault_sweep_depth("eval", eval, mlp, 3);
    elag_fault_sweep_depth("eval conv", eval, conv, 3);
    elag_fault_sweep_depth("export csr", export_csr, mlp, 3);
    elag_fault_sweep_depth("export bell", export_bell, conv, 3);
    elag_fault_sweep_depth("export thin", export_thin, conv, 3);
    char file[600];
    elag_fault_child_ok(elag_fault_export_named, "mlp csr");
    snprintf(file, sizeof file, "%s/mlp.export", elag_fault_dir);
    elag_fault_sweep_depth("infer csr", infer, file, 3);
    elag_fault_child_ok(elag_fault_export_named, "conv bell:16");
    snprintf(file, sizeof file, "%s/conv.export", elag_fault_dir);
    elag_fault_sweep_depth("infer bell", infer, file, 3);
}

/* ---- sensitivity ---- */

static elag_status sensitivity(const char *input, int iter)
{
    char out[600];
    elag_fault_path_of(out, sizeof out, "sens", iter);
    static const double levels[] = {0.5, 0.75};
    elag_sensitivity_options o = ELAG_SENSITIVITY_OPTIONS_INIT;
    o.device = "cpu-ref", o.threads = 1, o.levels = levels, o.n_levels = 2;
    o.finetune_steps = 2, o.budget = 0.5;
    elag_sensitivity_t *s = NULL;
    elag_status st = elag_sensitivity_run(&s, input, out, &o);
    elag_sensitivity_free(s);
    QUIET(elag_test_rmtree(out));
    return st;
}

Test(cov_faults_use, sensitivity)
{
    char mlp[600];
    elag_fault_trained("mlp", elag_fault_mlp_yaml, mlp, sizeof mlp);
    elag_fault_sweep_depth("sensitivity", sensitivity, mlp, 3);
    /* from a config: the dense training first */
    char cfg[600];
    elag_test_put(elag_fault_dir, "r.yaml", elag_fault_rigl_yaml);
    snprintf(cfg, sizeof cfg, "%s/r.yaml", elag_fault_dir);
    elag_fault_sweep_depth("sensitivity of a config", sensitivity, cfg, 3);
}

/* ---- benchmarks ---- */

static int drop_rows(const elag_bench_row *rows, int n, void *user)
{
    (void)rows, (void)n, (void)user;
    return 0;
}

/* bench spmm reports a failed measurement in a note and goes on with the next; the run
 * then fails with a count of them. The note must carry the fault. */
static char notes[4096];

static void keep_note(const char *text, void *user)
{
    (void)user;
    strncat(notes, text, sizeof notes - strlen(notes) - 1);
}

static elag_status bench_spmm(const char *formats, int iter)
{
    (void)iter;
    static const int batches[] = {3};
    static const double sparsities[] = {0.5, 0.9};
    elag_device_options dopts = ELAG_DEVICE_OPTIONS_INIT;
    dopts.device = "cpu-ref", dopts.threads = 1;
    elag_device_t *dev = NULL;
    elag_bench_shape_list_t *l = NULL;
    elag_bench_spmm_options o = ELAG_BENCH_SPMM_OPTIONS_INIT;
    o.batches = batches, o.n_batches = 1, o.sparsities = sparsities, o.n_sparsities = 2;
    o.formats = formats, o.repeat = 1, o.warmup = 1, o.min_sample_ms = 0, o.emit = drop_rows;
    o.mask = ELAG_BENCH_MASK_BLOCK, o.mask_block = 2, o.note = keep_note;
    notes[0] = '\0';
    elag_status st = elag_device_open(&dev, &dopts);
    if (st == ELAG_OK) st = elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_LIST, "8x6");
    if (st == ELAG_OK) st = elag_bench_spmm_run(dev, l, &o);
    elag_bench_shape_list_free(l);
    elag_device_free(dev);
    /* the run says ELAG_ERR_DEVICE for any failed measurement; the note has the
     * measurement's own error, which is what is checked */
    if (st == ELAG_ERR_DEVICE && strstr(elag_last_error(), "measurement failed"))
        return elag_fail(strstr(notes, "injected") ? ELAG_ERR_DEVICE
                         : strstr(notes, "memory") ? ELAG_ERR_NOMEM
                                                   : ELAG_ERR_INTERNAL,
                         "%s", notes);
    return st;
}

static elag_status bench_layer(const char *unused, int iter)
{
    (void)unused, (void)iter;
    static const double sparsities[] = {0.5};
    elag_device_options dopts = ELAG_DEVICE_OPTIONS_INIT;
    dopts.device = "cpu-ref", dopts.threads = 1;
    elag_device_t *dev = NULL;
    elag_bench_layer_options o = ELAG_BENCH_LAYER_OPTIONS_INIT;
    o.out = 5, o.in = 4, o.batch = 3, o.sparsities = sparsities, o.n_sparsities = 1;
    o.repeat = 1, o.warmup = 1;
    elag_status st = elag_device_open(&dev, &dopts);
    if (st == ELAG_OK) st = elag_bench_layer_run(dev, &o);
    elag_device_free(dev);
    return st;
}

static elag_status bench_net(const char *file, int iter)
{
    (void)iter;
    elag_device_options dopts = ELAG_DEVICE_OPTIONS_INIT;
    dopts.device = "cpu-ref", dopts.threads = 1;
    elag_device_t *dev = NULL;
    elag_net_t *net = NULL;
    elag_bench_net_options o = ELAG_BENCH_NET_OPTIONS_INIT;
    o.batch = 4, o.repeat = 1, o.warmup = 1;
    elag_bench_net_result r = ELAG_BENCH_NET_RESULT_INIT;
    elag_status st = elag_device_open(&dev, &dopts);
    if (st == ELAG_OK) st = elag_net_open(&net, file);
    if (st == ELAG_OK) st = elag_bench_net(net, dev, &o, &r);
    elag_net_free(net);
    elag_device_free(dev);
    return st;
}

Test(cov_faults_use, benchmarks)
{
    elag_fault_sweep_depth("bench spmm", bench_spmm, "dense,csr,bell:16", 3);
    elag_fault_sweep_depth("bench layer", bench_layer, NULL, 3);
    char mlp[600], file[600];
    elag_fault_trained("mlp", elag_fault_mlp_yaml, mlp, sizeof mlp);
    elag_fault_child_ok(elag_fault_export_named, "mlp csr");
    snprintf(file, sizeof file, "%s/mlp.export", elag_fault_dir);
    elag_fault_sweep_depth("bench model", bench_net, file, 3);
}

/* ---- ONNX export and import, the user's arrays ---- */

/* `ckpt` exported as ONNX to <dir>/onnxN */
static elag_status onnx_export(const char *ckpt, int iter)
{
    char out[600];
    elag_fault_path_of(out, sizeof out, "onnx", iter);
    elag_net_t *net = NULL;
    elag_status st = elag_net_from_checkpoint(&net, ckpt);
    if (st == ELAG_OK) st = elag_net_save_onnx(net, out);
    elag_net_free(net);
    QUIET(remove(out));
    return st;
}

/* <dir>/NAME/model.safetensors exported as ONNX to <dir>/NAME.onnx */
static elag_status onnx_export_named(const char *name, int iter)
{
    (void)iter;
    char ckpt[600], out[600];
    snprintf(ckpt, sizeof ckpt, "%s/%s/model.safetensors", elag_fault_dir, name);
    snprintf(out, sizeof out, "%s/%s.onnx", elag_fault_dir, name);
    elag_net_t *net = NULL;
    elag_status st = elag_net_from_checkpoint(&net, ckpt);
    if (st == ELAG_OK) st = elag_net_save_onnx(net, out);
    elag_net_free(net);
    return st;
}

/* `file` imported into <dir>/importedN, then that checkpoint evaluated: the import must
 * have written what training would */
static elag_status onnx_import(const char *file, int iter)
{
    char out[600];
    elag_fault_path_of(out, sizeof out, "imported", iter);
    static const char *const sets[] = {"device=cpu-ref", "data.dataset=synthetic",
                                       "data.synthetic.features=6", "data.synthetic.classes=3"};
    elag_import_options o = ELAG_IMPORT_OPTIONS_INIT;
    o.overrides = sets, o.n_overrides = 4;
    elag_import_result r = ELAG_IMPORT_RESULT_INIT;
    elag_status st = elag_import_onnx(file, out, &o, &r);
    if (st == ELAG_OK && r.n_layers < 3)
        st = elag_fail(ELAG_ERR_INTERNAL, "the import made %d layers", r.n_layers);
    QUIET(remove(out));
    return st;
}

/* "X OUT": X.npy loaded as an array, checked against the MLP's input, saved as OUT; the
 * copy loaded back must be equal. */
static elag_status arrays(const char *file, int iter)
{
    char out[600], net_file[600];
    elag_fault_path_of(out, sizeof out, "array", iter);
    strcat(out, ".npy");
    snprintf(net_file, sizeof net_file, "%s/mlp/model.safetensors", elag_fault_dir);
    elag_array x = ELAG_ARRAY_INIT, y = ELAG_ARRAY_INIT;
    elag_net_t *net = NULL;
    long n = 0;
    elag_status st = elag_array_load(&x, file);
    if (st == ELAG_OK) st = elag_net_from_checkpoint(&net, net_file);
    if (st == ELAG_OK) st = elag_net_check_inputs(net, &x, file, &n);
    if (st == ELAG_OK) st = elag_array_save(out, &x);
    if (st == ELAG_OK) st = elag_array_load(&y, out);
    if (st == ELAG_OK && (n != 5 || y.ndim != 2 || memcmp(x.data, y.data, 30 * sizeof(float))))
        st = elag_fail(ELAG_ERR_INTERNAL, "the array came back otherwise");
    elag_array_free(&x);
    elag_array_free(&y);
    elag_net_free(net);
    QUIET(remove(out));
    return st;
}

Test(cov_faults_use, onnx_and_arrays)
{
    char mlp[600], conv[600], file[600];
    elag_fault_trained("mlp", elag_fault_mlp_yaml, mlp, sizeof mlp);
    elag_fault_trained("conv", elag_fault_conv_yaml, conv, sizeof conv);
    elag_fault_sweep_depth("onnx export", onnx_export, mlp, 3);
    elag_fault_sweep_depth("onnx export conv", onnx_export, conv, 3);
    /* the files to import: the exports, made without faults */
    elag_fault_child_ok(onnx_export_named, "mlp");
    elag_fault_child_ok(onnx_export_named, "conv");
    char mlp_onnx[600], conv_onnx[600];
    snprintf(mlp_onnx, sizeof mlp_onnx, "%s/mlp.onnx", elag_fault_dir);
    snprintf(conv_onnx, sizeof conv_onnx, "%s/conv.onnx", elag_fault_dir);
    elag_fault_sweep_depth("onnx import", onnx_import, mlp_onnx, 3);
    elag_fault_sweep_depth("onnx import conv", onnx_import, conv_onnx, 3);
    /* a (5, 6) batch for the MLP, as .npy (written here: no compute, no thread pool) */
    float x[30];
    for (int i = 0; i < 30; i++) x[i] = (float)i / 7.0f;
    elag_array a = {2, {5, 6}, x};
    snprintf(file, sizeof file, "%s/x.npy", elag_fault_dir);
    cr_assert_eq(elag_array_save(file, &a), ELAG_OK, "%s", elag_last_error());
    elag_fault_sweep_depth("arrays", arrays, file, 3);
}
