/*
 * Sparse inference ops of both CPU backends (backend.h: sparse_create, sparse_mm,
 * bias_relu_rows): the naive reference ("cpu-ref") and the fast path ("cpu", 3 threads
 * so OpenMP splits unevenly, every instruction set this machine runs) against a
 * double-precision dense product computed here, y = W x (+ bias) (ReLU), on odd
 * shapes, sparsity 0, 0.5, 0.9, 0.99 and 1.0, empty rows, CSR and Blocked-ELL with
 * B = 16, 32, 5 and 20, batches narrower than max_n, and shapes large enough for the
 * packed, panelled and parallel paths (narrow batches of 8 to 100 columns too).
 */
#include "backend/backend.h"
#include "cpu/cpu_sparse.h"
#include "sparse/sparse.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAST_THREADS 3
#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static elag_backend *ref, *fast;

static void open_both(void)
{
    OK(elag_backend_open("cpu-ref", 1, &ref, NULL, 0));
    OK(elag_backend_open("cpu", FAST_THREADS, &fast, NULL, 0));
}

static void close_both(void)
{
    elag_backend_free(ref);
    elag_backend_free(fast);
}

TestSuite(spmm, .init = open_both, .fini = close_both);

static float *rnd(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert_not_null(x);
    elag_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

/* W (rows, cols) with a fraction s of zeros; every empty_every-th row all zero. */
static float *weights(int rows, int cols, double s, int empty_every, uint64_t seed)
{
    size_t n = (size_t)rows * cols;
    float *w = rnd(n, -1.0f, 1.0f, seed), *u = rnd(n, 0.0f, 1.0f, seed + 100);
    for (size_t i = 0; i < n; i++) {
        int r = (int)(i / (size_t)cols);
        if (u[i] < s || (empty_every && r % empty_every == 1)) w[i] = 0.0f;
    }
    free(u);
    return w;
}

/* want (rows, n) = W (rows, cols) x (cols, n) (+ bias) (ReLU), in double. */
static float *dense_reference(const float *w, const float *x, const float *bias, int relu,
                              int rows, int cols, int n)
{
    float *y = malloc(((size_t)rows * n + 1) * sizeof *y);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < n; c++) {
            double s = 0.0;
            for (int j = 0; j < cols; j++)
                s += (double)w[(size_t)r * cols + j] * (double)x[(size_t)j * n + c];
            if (bias) s += bias[r];
            if (relu && s < 0.0) s = 0.0;
            y[(size_t)r * n + c] = (float)s;
        }
    return y;
}

typedef struct fmt_case {
    elag_sparse_format f;
    int block;
} fmt_case;

static const fmt_case formats[] = {
    {ELAG_SPARSE_FORMAT_CSR, 0},
    {ELAG_SPARSE_FORMAT_BELL, 16},
    {ELAG_SPARSE_FORMAT_BELL, 32},
    {ELAG_SPARSE_FORMAT_BELL, 5},
    {ELAG_SPARSE_FORMAT_BELL, 20}, /* more than 16 rows, not a multiple of 16 */
};

/* One product on one backend (and, on the fast one, every instruction set). */
static void check_backend(elag_backend *b, const elag_sparse_host *h, const float *x,
                          const float *bias, int relu, int n, int max_n, const float *want,
                          const char *what)
{
    elag_sparse_opts opts = {.max_n = max_n, .alg = 0};
    elag_sparse_dev *d;
    OK(b->sparse_create(b, h, &opts, &d));
    size_t ny = (size_t)h->rows * n;
    float *y = malloc((ny + 1) * sizeof *y);
    int isas = b->kind == ELAG_DEVICE_CPU ? ELAG_CPU_ISA_AVX512 + 1 : 1;
    for (int isa = 0; isa < isas; isa++) {
        if (b->kind == ELAG_DEVICE_CPU) {
            if (!elag_cpu_isa_supported((elag_cpu_isa)isa)) continue;
            d->isa = (elag_cpu_isa)isa;
        }
        for (size_t i = 0; i < ny; i++) y[i] = NAN; /* every output must be written */
        OK(b->sparse_mm(b, d, x, n, bias, relu, y));
        char label[300];
        snprintf(label, sizeof label, "%s %s isa=%s", what, b->name,
                 b->kind == ELAG_DEVICE_CPU ? elag_cpu_isa_name((elag_cpu_isa)isa) : "-");
        cr_expect_eq(elag_test_compare(label, y, want, ny, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL),
                     0, "%s", label);
    }
    b->sparse_destroy(b, d);
    free(y);
}

static void check_case(int rows, int cols, int n, double s, int empty_every, int relu,
                       int with_bias)
{
    float *w = weights(rows, cols, s, empty_every, 1000 + (uint64_t)(s * 100) + rows);
    float *x = rnd((size_t)cols * n, -1.0f, 1.0f, 7 + cols);
    float *bias = with_bias ? rnd((size_t)rows, -0.5f, 0.5f, 9) : NULL;
    float *want = dense_reference(w, x, bias, relu, rows, cols, n);
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        elag_sparse_host h;
        OK(elag_sparse_from_dense(w, rows, cols, formats[k].f, formats[k].block, &h));
        char what[200];
        snprintf(what, sizeof what, "%dx%d n=%d s=%.2f %s:%d relu=%d bias=%d", rows, cols, n, s,
                 elag_sparse_format_name(formats[k].f), formats[k].block, relu, with_bias);
        check_backend(ref, &h, x, bias, relu, n, n + 17, want, what);
        check_backend(fast, &h, x, bias, relu, n, n + 17, want, what);
        check_backend(fast, &h, x, bias, relu, n, n, want, what); /* n == max_n */
        elag_sparse_host_free(&h);
    }
    free(w);
    free(x);
    free(bias);
    free(want);
}

Test(spmm, odd_shapes_all_sparsities)
{
    const double sp[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++) {
        check_case(7, 96, 40, sp[k], 0, 0, 0);
        check_case(33, 17, 65, sp[k], 0, 1, 1);
    }
}

Test(spmm, empty_rows_bias_relu)
{
    check_case(33, 17, 65, 0.5, 3, 1, 1);
    check_case(33, 17, 65, 0.5, 3, 0, 1);
    check_case(45, 70, 13, 0.3, 2, 1, 0);
}

Test(spmm, narrow_batches)
{
    const int ns[] = {1, 2, 15, 16, 17, 31, 32, 33};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) check_case(19, 41, ns[k], 0.6, 4, 1, 1);
}

Test(spmm, packed_panelled_and_parallel_paths)
{
    /* ELAG_SPMM_TILE (128) columns per packed tile: n = 256 is two tiles, 300 adds an
     * unpacked tail of 44; 600 columns at 50% and 90% sparsity are cut into panels (64 and
     * 256 columns), at 99% not; all large enough to run on 3 threads */
    cr_assert_eq(ELAG_SPMM_TILE % 32, 0);
    check_case(130, 600, 2 * ELAG_SPMM_TILE, 0.5, 0, 1, 1);
    check_case(130, 600, 2 * ELAG_SPMM_TILE + 44, 0.9, 7, 0, 1);
    check_case(257, 300, ELAG_SPMM_TILE, 0.99, 0, 1, 0);
    check_case(64, 1000, ELAG_SPMM_TILE + 1, 0.7, 5, 1, 1);

    /* the cases above do reach the panelled and packed kernels */
    float *w = weights(130, 600, 0.5, 0, 3);
    elag_sparse_host h;
    OK(elag_sparse_from_dense(w, 130, 600, ELAG_SPARSE_FORMAT_CSR, 0, &h));
    elag_sparse_opts opts = {.max_n = 2 * ELAG_SPMM_TILE, .alg = 0};
    elag_sparse_dev *d;
    OK(fast->sparse_create(fast, &h, &opts, &d));
    cr_expect_gt(d->npanels, 1);
    cr_expect_not_null(d->xpack);
    cr_expect_eq(d->parts, FAST_THREADS);
    fast->sparse_destroy(fast, d);
    elag_sparse_host_free(&h);
    free(w);
}

Test(spmm, narrow_batches_panelled)
{
    /* batches under ELAG_SPMM_TILE read x unpacked, several panels per pass (as many as
     * the batch's columns fit the panel budget); 1200 columns at 50% and 90% sparsity are
     * cut into panels, so passes of 8 panels and a shorter last one occur */
    const int ns[] = {8, 16, 32, 64, 100};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        check_case(130, 1200, ns[k], 0.5, 0, 1, 1);
        check_case(130, 1200, ns[k], 0.9, 9, 0, 1);
    }
    float *w = weights(130, 1200, 0.5, 0, 3);
    elag_sparse_host h;
    OK(elag_sparse_from_dense(w, 130, 1200, ELAG_SPARSE_FORMAT_CSR, 0, &h));
    elag_sparse_opts opts = {.max_n = 32, .alg = 0};
    elag_sparse_dev *d;
    OK(fast->sparse_create(fast, &h, &opts, &d));
    cr_expect_gt(d->npanels, 1);
    cr_expect_null(d->xpack);
    fast->sparse_destroy(fast, d);
    elag_sparse_host_free(&h);
    free(w);
}

Test(spmm, bias_relu_rows_fast_vs_ref)
{
    const int shapes[][2] = {{7, 40}, {33, 65}, {300, 256}, {1, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int relu = 0; relu < 2; relu++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                int rows = shapes[s][0], n = shapes[s][1];
                size_t cnt = (size_t)rows * n;
                float *y0 = rnd(cnt, -1.0f, 1.0f, 3), *y1 = malloc(cnt * sizeof *y1);
                float *y2 = malloc(cnt * sizeof *y2);
                memcpy(y1, y0, cnt * sizeof *y1);
                float *bias = with_bias ? rnd((size_t)rows, -0.5f, 0.5f, 4) : NULL;
                OK(ref->bias_relu_rows(ref, y0, bias, rows, n, relu));
                OK(fast->bias_relu_rows(fast, y1, bias, rows, n, relu));
                cr_expect_eq(elag_test_bit_diffs("bias_relu_rows fast vs ref", y1, y0, cnt), 0);
                /* the formula, by hand */
                elag_test_fill_uniform(y2, cnt, -1.0f, 1.0f, 3);
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < n; c++) {
                        float v = y2[(size_t)r * n + c] + (bias ? bias[r] : 0.0f);
                        y2[(size_t)r * n + c] = relu && v < 0.0f ? 0.0f : v;
                    }
                cr_expect_eq(elag_test_compare("bias_relu_rows formula", y0, y2, cnt, 0.0, 0.0),
                             0);
                free(y0), free(y1), free(y2), free(bias);
            }
}

Test(spmm, refusals)
{
    float w[6] = {1, 0, 2, 0, 3, 0};
    elag_sparse_host h;
    elag_sparse_dev *d = NULL;
    elag_sparse_opts opts = {.max_n = 4, .alg = 0};
    elag_backend *both[2] = {ref, fast};
    for (int i = 0; i < 2; i++) {
        elag_backend *b = both[i];
        OK(elag_sparse_from_dense(w, 2, 3, ELAG_SPARSE_FORMAT_DENSE, 0, &h));
        cr_expect_eq(elag_be_sparse_create(b, &h, &opts, &d), ELAG_ERR_USAGE, "dense is refused");
        elag_sparse_host_free(&h);
        OK(elag_sparse_from_dense(w, 2, 3, ELAG_SPARSE_FORMAT_CSR, 0, &h));
        h.indices[1] = 7;
        cr_expect_eq(elag_be_sparse_create(b, &h, &opts, &d), ELAG_ERR_INPUT,
                     "invalid CSR refused");
        h.indices[1] = 1;
        elag_sparse_opts zero = {.max_n = 0, .alg = 0};
        cr_expect_eq(elag_be_sparse_create(b, &h, &zero, &d), ELAG_ERR_USAGE);
        OK(elag_be_sparse_create(b, &h, &opts, &d));
        float x[3 * 5] = {0}, y[2 * 5];
        cr_expect_eq(elag_be_sparse_mm(b, d, x, 5, NULL, 0, y), ELAG_ERR_INTERNAL, "n > max_n");
        OK(b->sparse_mm(b, d, x, 0, NULL, 0, y));
        b->sparse_destroy(b, d);
        b->sparse_destroy(b, NULL);
        elag_sparse_host_free(&h);
    }
}
