/*
 * Where a product runs in TF32, the outputs say so and compare it fairly: `bench spmm`
 * rows carry `math` (tf32 rows get a dense-tf32 baseline, measured even when the format
 * list lacks it, with speedups and crossovers against it), and `infer --verify` holds a
 * network to ELAG_INFER_VERIFY_TOL_TF32 when any of its products is TF32. Without a GPU
 * this runs on a stub: the CPU backend with supports() answering as CUDA does on an
 * Ampere-or-later device (Blocked-ELL TF32, TF32 GEMMs when asked), so the labels and the
 * choice of baseline and tolerance, which follow supports() alone, are tested here. The
 * plain CPU backend must label everything fp32 and add nothing.
 */
#include "api/api.h"
#include "backend/backend.h"
#include "sparse/bench.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

/* ---- a CPU backend that answers supports() like CUDA on compute capability 8.0+ ---- */

static elag_support (*cpu_supports)(elag_backend *, elag_op, const elag_op_query *, char *,
                                    size_t);

static elag_support tensor_core_supports(elag_backend *b, elag_op op, const elag_op_query *q,
                                         char *why, size_t why_len)
{
    if (op == ELAG_OP_SPARSE_MM && q->format == ELAG_SPARSE_FORMAT_BELL) return ELAG_SUPPORT_TF32;
    if (op == ELAG_OP_GEMM && q->tf32) return ELAG_SUPPORT_TF32;
    if (op == ELAG_OP_SPARSE_MM && q->alg != 0) return ELAG_SUPPORT_FP32; /* cuSPARSE algs */
    return cpu_supports(b, op, q, why, why_len);
}

static elag_backend *open_backend(int stub)
{
    elag_backend *b = NULL;
    OK(elag_backend_open("cpu", 1, &b, NULL, 0));
    if (stub) {
        cpu_supports = b->supports;
        b->supports = tensor_core_supports;
    }
    return b;
}

/* ---- bench spmm ---- */

typedef struct collected {
    elag_bench_row rows[128];
    char fmt[128][16];
    int n, notes;
    char note_text[1024];
} collected;

static int collect(const elag_bench_row *rows, int n, void *user)
{
    collected *c = user;
    for (int i = 0; i < n && c->n < 128; i++) {
        c->rows[c->n] = rows[i];
        snprintf(c->fmt[c->n], 16, "%s", rows[i].format);
        c->n++;
    }
    return 0;
}

static void collect_note(const char *text, void *user)
{
    collected *c = user;
    c->notes++;
    strncat(c->note_text, text, sizeof c->note_text - strlen(c->note_text) - 1);
}

static collected *run_engine(elag_backend *b, const char *fmts)
{
    static elag_bench_format formats[8];
    static const int batches[] = {4, 7};
    static const double sparsities[] = {0.5, 0.9};
    static const elag_bench_shape shape = {.name = "odd", .m = 37, .k = 29};
    collected *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    char buf[128], *save = NULL;
    snprintf(buf, sizeof buf, "%s", fmts);
    int nf = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        OK(elag_bench_format_parse(t, &formats[nf++]));
    elag_bench_config cfg = {.shapes = &shape, .n_shapes = 1, .batches = batches,
                             .n_batches = 2, .sparsities = sparsities, .n_sparsities = 2,
                             .formats = formats, .n_formats = nf, .repeat = 3, .warmup = 1,
                             .min_sample_ms = 0.0, .mask = ELAG_BENCH_MASK_RANDOM,
                             .seed = 7, .emit = collect, .note = collect_note, .user = c};
    OK(elag_bench_spmm(b, &cfg));
    return c;
}

static int count_format(const collected *c, const char *fmt)
{
    int k = 0;
    for (int i = 0; i < c->n; i++) k += strcmp(c->fmt[i], fmt) == 0;
    return k;
}

Test(tf32_labels, bench_tf32_rows_get_a_tf32_baseline)
{
    elag_backend *b = open_backend(1);
    collected *c = run_engine(b, "dense,csr,bell:16"); /* no dense-tf32 asked for */
    cr_expect_eq(count_format(c, "dense-tf32"), 2, "dense-tf32 added, one row per batch");
    cr_expect(strstr(c->note_text, "dense-tf32 added") && strstr(c->note_text, "bell:16"),
              "notes: %s", c->note_text);
    cr_expect_eq(c->n, 2 * 2 + 2 * 2 * 2, "rows: %d", c->n);
    for (int i = 0; i < c->n; i++) {
        const elag_bench_row *r = &c->rows[i];
        const char *want = strcmp(c->fmt[i], "bell:16") == 0 || strcmp(c->fmt[i], "dense-tf32") == 0
                               ? "tf32"
                               : "fp32";
        cr_assert_not_null(r->math, "%s: no math", c->fmt[i]);
        cr_expect_str_eq(r->math, want, "%s n=%d", c->fmt[i], r->n);
        cr_expect_eq(r->version, ELAG_BENCH_ROW_VERSION);
        cr_expect(!isnan(r->speedup_vs_tf32), "%s: no speedup against dense-tf32", c->fmt[i]);
        if (r->is_sparse) {
            cr_expect(r->has_crossover_tf32 >= 0 && r->has_crossover_tf32 <= 2, "%s: %d",
                      c->fmt[i], r->has_crossover_tf32);
            cr_expect(r->has_crossover_tf32 >= 1 ? !isnan(r->crossover_tf32)
                                                 : isnan(r->crossover_tf32));
        }
    }
    free(c);
    /* asked for: measured once, not twice, and no note */
    c = run_engine(b, "dense,dense-tf32,bell:16");
    cr_expect_eq(count_format(c, "dense-tf32"), 2);
    cr_expect(strstr(c->note_text, "dense-tf32 added") == NULL, "notes: %s", c->note_text);
    free(c);
    /* no TF32 format: nothing added */
    c = run_engine(b, "dense,csr");
    cr_expect_eq(count_format(c, "dense-tf32"), 0);
    free(c);
    elag_backend_free(b);
}

Test(tf32_labels, bench_on_the_cpu_is_fp32_throughout)
{
    elag_backend *b = open_backend(0);
    collected *c = run_engine(b, "dense,csr,bell:16");
    cr_expect_eq(count_format(c, "dense-tf32"), 0, "the CPU has no TF32");
    for (int i = 0; i < c->n; i++) {
        const elag_bench_row *r = &c->rows[i];
        cr_expect_str_eq(r->math, "fp32", "%s", c->fmt[i]);
        cr_expect(isnan(r->speedup_vs_tf32));
        if (r->is_sparse) cr_expect_eq(r->has_crossover_tf32, -1, "%s", c->fmt[i]);
    }
    free(c);
    elag_backend_free(b);
}

/* ---- infer --verify's tolerance ---- */

/* A network of one linear weight (4, 8) in `format` (the arrays are not read). */
static elag_net_t *one_weight_net(elag_sparse_format format)
{
    elag_net_t *net = calloc(1, sizeof *net);
    cr_assert_not_null(net);
    net->e.n_tensors = 2;
    elag_export_tensor *w = &net->e.t[0];
    snprintf(w->name, sizeof w->name, "fc1.weight");
    w->is_weight = 1;
    w->w.format = format;
    w->w.rows = 4, w->w.cols = 8;
    w->w.block = format == ELAG_SPARSE_FORMAT_BELL ? 16 : 0;
    snprintf(net->e.t[1].name, sizeof net->e.t[1].name, "fc1.bias"); /* not a weight */
    return net;
}

Test(tf32_labels, verify_tolerance_follows_the_arithmetic)
{
    elag_device_t cpu = {.be = open_backend(0)}, tc = {.be = open_backend(1)};
    elag_net_t *bell = one_weight_net(ELAG_SPARSE_FORMAT_BELL);
    elag_net_t *csr = one_weight_net(ELAG_SPARSE_FORMAT_CSR);
    elag_net_t *dense = one_weight_net(ELAG_SPARSE_FORMAT_DENSE);
    /* Blocked-ELL on tensor cores: TF32, so the TF32 tolerance; its dense run is FP32 */
    cr_expect_str_eq(elag_net_math(bell, &tc, 0), "tf32");
    cr_expect_str_eq(elag_net_math(bell, &tc, 1), "fp32");
    cr_expect_eq(elag_net_verify_tol(bell, &tc), ELAG_INFER_VERIFY_TOL_TF32);
    /* CSR and dense: FP32 there */
    cr_expect_str_eq(elag_net_math(csr, &tc, 0), "fp32");
    cr_expect_eq(elag_net_verify_tol(csr, &tc), ELAG_INFER_VERIFY_TOL);
    cr_expect_eq(elag_net_verify_tol(dense, &tc), ELAG_INFER_VERIFY_TOL);
    /* every format on the CPU: FP32 */
    cr_expect_str_eq(elag_net_math(bell, &cpu, 0), "fp32");
    cr_expect_eq(elag_net_verify_tol(bell, &cpu), ELAG_INFER_VERIFY_TOL);
    cr_expect_gt(ELAG_INFER_VERIFY_TOL_TF32, ELAG_INFER_VERIFY_TOL);
    free(bell), free(csr), free(dense);
    elag_backend_free(cpu.be);
    elag_backend_free(tc.be);
}
