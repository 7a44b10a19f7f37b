/*
 * `export --format auto` on a CNN (host/sparse/export_auto.c): each convolution's dense
 * candidate is timed as inference runs it (the direct convolution where the backend has
 * one), the sparse candidates through the same layer forward (im2col + SpMM over the
 * batch), and a CNN left in mixed formats is timed whole against every layer dense.
 * Timings on a shared machine are noise, so the backend is a stub: cpu-ref (which has a
 * direct convolution for every stride-1 window) whose gemm sleeps STUB_GEMM_MS and whose
 * sparse_mm sleeps STUB_SPARSE_MS per call, far above what this small model computes (even
 * at -O0 in the coverage build, where cpu-ref's direct convolution of conv2 took 28 ms
 * against 12 ms of sleep, the figure these were raised from). The
 * direct convolution calls neither, so a dense convolution timed as inference runs it wins
 * over CSR, while timed as an im2col GEMM (what auto did before) it loses; the linear layer
 * (a gemm either way) goes to CSR. The export must then record those formats and give the
 * dense model's logits.
 */
#define _POSIX_C_SOURCE 200809L
#include "sparse/export.h"
#include "sparse/infer.h"
#include "support/fixtures.h"
#include "support/testutil.h"
#include "io/safetensors.h"
#include "train/train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

#define STUB_GEMM_MS   160
#define STUB_SPARSE_MS 80
#define BATCH          64

static int gemm_ms, sparse_ms; /* the stub's sleeps, per call */
static long conv_calls;        /* direct convolutions the stub ran */
static elag_backend *real;

static void sleep_ms(int ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&t, &t) != 0) {
    }
}

static elag_status stub_gemm(elag_backend *b, int ta, int tb, int m, int n, int k, float alpha,
                             const float *a, int lda, const float *bm, int ldb, float beta,
                             float *c, int ldc)
{
    sleep_ms(gemm_ms);
    return real->gemm(b, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc);
}

static elag_status stub_sparse_mm(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                                  const float *bias, int relu, float *y)
{
    sleep_ms(sparse_ms);
    return real->sparse_mm(b, a, x, n, bias, relu, y);
}

static elag_status stub_conv(elag_backend *b, float *y, const float *x, const float *w, int C,
                             int O, int N, int n0, int nb, const elag_window *g, float *work)
{
    conv_calls++;
    return real->conv_forward(b, y, x, w, C, O, N, n0, nb, g, work);
}

/* Two stride-1 padded convolutions (the direct path) on 7x7 maps and a linear layer,
 * trained one short epoch (not pruned: every candidate is a real one). */
static char *train_cnn(char *ckpt, size_t len, elag_config *c)
{
    static const char yaml[] =
        "name: cnn-auto\ndevice: cpu\nseed: 4\n"
        "data: {train_limit: 256, test_limit: 96}\n"
        "model:\n  layers:\n"
        "    - {type: maxpool, kernel: 4}\n"
        "    - {type: conv2d, out_channels: 4, kernel: 3, padding: 1}\n    - {type: relu}\n"
        "    - {type: conv2d, out_channels: 8, kernel: 3, padding: 1}\n    - {type: relu}\n"
        "    - {type: flatten}\n    - {type: linear, out_features: 10}\n"
        "train: {epochs: 1, batch_size: 64, threads: 1}\n";
    OK(elag_config_parse(yaml, strlen(yaml), "cnn.yaml", NULL, 0, c));
    char *d = elag_test_tmpdir("export-auto-cnn");
    cr_assert_not_null(d);
    elag_train_summary s;
    elag_test_train(c, d, NULL, 0, &s);
    snprintf(ckpt, len, "%s/model.safetensors", d);
    return d;
}

static elag_backend stub_over(elag_backend *base)
{
    elag_backend stub = *base; /* never freed: base owns the state */
    stub.gemm = stub_gemm;
    stub.sparse_mm = stub_sparse_mm;
    stub.conv_forward = stub_conv;
    return stub;
}

Test(export_auto_cnn, convolutions_timed_as_inference_runs_them)
{
    elag_config c;
    char ckpt[800], path[800];
    char *d = train_cnn(ckpt, sizeof ckpt, &c);
    snprintf(path, sizeof path, "%s/cnn.auto.safetensors", d);
    OK(elag_backend_open("cpu-ref", 1, &real, NULL, 0));
    elag_backend stub = stub_over(real);
    gemm_ms = STUB_GEMM_MS;
    sparse_ms = STUB_SPARSE_MS;
    conv_calls = 0;

    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    elag_export_timing tm[ELAG_MAX_PARAMS];
    OK(elag_export_choose_auto(&e, &stub, BATCH, tm));
    cr_expect_gt(conv_calls, 0, "no direct convolution was timed");
    const char *want[] = {"dense", "dense", "csr"}; /* conv1, conv2, fc1 */
    int w = 0;
    for (int i = 0; i < e.n_tensors; i++) {
        if (!e.t[i].is_weight) continue;
        cr_assert_lt(w, 3);
        const int conv = e.t[i].ndim == 4;
        cr_expect_str_eq(tm[i].dense_route, conv ? "direct" : "gemm", "%s", e.t[i].name);
        cr_expect(tm[i].dense_ms >= 0 && tm[i].csr_ms >= 0, "%s timed", e.t[i].name);
        if (conv)
            cr_expect_lt(tm[i].dense_ms, tm[i].csr_ms,
                         "%s: dense %.3f ms (a direct convolution "
                         "sleeps 0 ms) vs csr %.3f ms (sleeps %d)",
                         e.t[i].name, tm[i].dense_ms, tm[i].csr_ms, STUB_SPARSE_MS);
        else
            cr_expect_gt(tm[i].dense_ms, tm[i].csr_ms, "%s: dense gemm %.3f vs csr %.3f ms",
                         e.t[i].name, tm[i].dense_ms, tm[i].csr_ms);
        char fmt[16];
        cr_expect_str_eq(elag_export_tensor_format(&e.t[i], fmt, sizeof fmt), want[w], "%s",
                         e.t[i].name);
        w++;
    }
    cr_expect_eq(w, 3);

    /* mixed: the whole net as chosen (the linear layer's sleep halved) beats all dense */
    char note[256];
    OK(elag_export_prefer_csr_chain(&e, &stub, BATCH, tm, note, sizeof note));
    cr_expect(strstr(note, "at batch 64") && strstr(note, "2 direct") &&
                  strstr(note, "kept the layers' own choices"),
              "note '%s'", note);
    char formats[64];
    elag_export_formats(&e, formats, sizeof formats);
    cr_expect_str_eq(formats, "dense,dense,csr");
    OK(elag_export_save(&e, path));
    elag_export_free(&e);

    /* the file records the chosen formats and runs as the dense model does */
    elag_st_file *f;
    OK(elag_st_open(path, &f));
    cr_expect_str_eq(elag_st_meta(f, "conv1.weight.format"), "dense");
    cr_expect_str_eq(elag_st_meta(f, "conv2.weight.format"), "dense");
    cr_expect_str_eq(elag_st_meta(f, "fc1.weight.format"), "csr");
    elag_st_close(f);
    elag_backend *cpu;
    OK(elag_backend_open("cpu", 2, &cpu, NULL, 0));
    elag_run_data data;
    OK(elag_run_data_load_test(&c, &data));
    const int n = (int)data.test.n;
    OK(elag_export_load(path, &e));
    float *got = malloc((size_t)n * 10 * sizeof *got), *ref = malloc((size_t)n * 10 * sizeof *ref);
    cr_assert(got && ref);
    elag_sparse_net net;
    OK(elag_sparse_net_init(&net, &e, cpu, n, 0));
    OK(elag_sparse_net_forward(&net, data.test.x, n, got));
    elag_sparse_net_free(&net);
    elag_export dense; /* `--format dense` of the same checkpoint */
    OK(elag_export_from_checkpoint(ckpt, &dense));
    OK(elag_export_convert_all(&dense, ELAG_SPARSE_FORMAT_DENSE, 16));
    OK(elag_sparse_net_init(&net, &dense, cpu, n, 0));
    OK(elag_sparse_net_forward(&net, data.test.x, n, ref));
    elag_sparse_net_free(&net);
    elag_export_free(&dense);
    double err = elag_logits_max_rel_err(got, ref, (size_t)n * 10);
    cr_expect_leq(err, ELAG_INFER_VERIFY_TOL, "auto export vs dense: max rel err %g", err);
    free(got);
    free(ref);
    elag_export_free(&e);
    elag_run_data_free(&data);
    elag_backend_free(cpu);
    elag_backend_free(real);
    elag_test_rmtree(d);
    free(d);
}

Test(export_auto_cnn, whole_net_keeps_every_layer_dense_when_faster)
{
    /* every weight CSR as if auto had chosen it, on a backend whose sparse_mm is slow: the
     * whole-net check must put every layer back to dense */
    elag_config c;
    char ckpt[800];
    char *d = train_cnn(ckpt, sizeof ckpt, &c);
    OK(elag_backend_open("cpu-ref", 1, &real, NULL, 0));
    elag_backend stub = stub_over(real);
    gemm_ms = 0;
    sparse_ms = STUB_SPARSE_MS;
    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    elag_export_timing tm[ELAG_MAX_PARAMS];
    memset(tm, 0, sizeof tm);
    for (int i = 0; i < e.n_tensors; i++) {
        if (!e.t[i].is_weight) continue;
        OK(elag_export_convert(&e, i, ELAG_SPARSE_FORMAT_CSR, 16));
        tm[i].chosen = ELAG_SPARSE_FORMAT_CSR;
        snprintf(tm[i].dense_route, sizeof tm[i].dense_route, "%s",
                 e.t[i].ndim == 4 ? "direct" : "gemm");
    }
    char note[256];
    OK(elag_export_prefer_csr_chain(&e, &stub, BATCH, tm, note, sizeof note));
    cr_expect(strstr(note, "at batch 64") && strstr(note, "kept every layer dense"), "note '%s'",
              note);
    char formats[64];
    elag_export_formats(&e, formats, sizeof formats);
    cr_expect_str_eq(formats, "dense,dense,dense");
    for (int i = 0; i < e.n_tensors; i++)
        if (e.t[i].is_weight)
            cr_expect_eq(tm[i].chosen, ELAG_SPARSE_FORMAT_DENSE, "%s: timing not updated",
                         e.t[i].name);
    elag_export_free(&e);
    elag_backend_free(real);
    elag_test_rmtree(d);
    free(d);
}
