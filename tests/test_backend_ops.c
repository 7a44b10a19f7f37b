/*
 * Every op of the backend table (host/backend/backend.h) on both CPU backends: the
 * fast path ("cpu", 3 threads so OpenMP splits unevenly) against the naive reference
 * ("cpu-ref") on odd shapes, and both against the formulas of backend.h computed
 * here by hand. Arrays are plain host memory: "device" memory is host memory on the
 * CPU. Large sizes (> ELAG_CPU_PAR_MIN = 32768) exercise the parallel loops.
 */
#include "backend/backend.h"
#include "backend/philox.h"
#include "cpu/cpu_internal.h"
#include "support/testutil.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAST_THREADS 3
#define BIG 100003 /* odd, prime, above the parallel threshold */

static elag_backend *ref, *fast;

static void open_both(void)
{
    cr_assert_eq(elag_backend_open("cpu-ref", 1, &ref, NULL, 0), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_backend_open("cpu", FAST_THREADS, &fast, NULL, 0), ELAG_OK, "%s",
                 elag_last_error());
}

static void close_both(void)
{
    elag_backend_free(ref);
    elag_backend_free(fast);
}

TestSuite(ops, .init = open_both, .fini = close_both);

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define SAME(what, got, want, n)                                                                   \
    cr_expect_eq(elag_test_compare(what, got, want, n, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL), 0)
#define EXACT(what, got, want, n) cr_expect_eq(elag_test_compare(what, got, want, n, 0.0, 0.0), 0)

static float *rnd(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert_not_null(x);
    elag_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

static float *dup(const float *x, size_t n)
{
    float *y = malloc((n ? n : 1) * sizeof *y);
    cr_assert_not_null(y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static size_t zeros(const float *x, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += x[i] == 0.0f;
    return z;
}

/* ---- the table and opening ---- */

/* Names every member explicitly; the size check catches a member added to backend.h
 * but not listed here. */
static void expect_table_complete(const elag_backend *b)
{
    typedef void (*fn)(void);
#define ELAG_OP(f) {#f, (fn)b->f}
    const struct {
        const char *name;
        fn f;
    } ops[] = {
        ELAG_OP(alloc),         ELAG_OP(release),       ELAG_OP(to_device),
        ELAG_OP(to_host),       ELAG_OP(copy),          ELAG_OP(fill),
        ELAG_OP(sync),          ELAG_OP(destroy),       ELAG_OP(gemm),
        ELAG_OP(bias_add),      ELAG_OP(bias_grad),     ELAG_OP(relu_forward),
        ELAG_OP(relu_backward), ELAG_OP(xent),          ELAG_OP(gather_rows),
        ELAG_OP(gather_i32),    ELAG_OP(init_uniform),  ELAG_OP(sgd_step),
        ELAG_OP(adamw_step),    ELAG_OP(mask_apply),    ELAG_OP(score_magnitude),
        ELAG_OP(mask_select),   ELAG_OP(count_nonzero), ELAG_OP(sparse_create),
        ELAG_OP(sparse_destroy), ELAG_OP(sparse_mm),    ELAG_OP(bias_relu_rows),
    };
#undef ELAG_OP
    size_t listed = sizeof ops / sizeof ops[0];
    cr_expect_eq(sizeof(elag_backend) - offsetof(elag_backend, alloc), listed * sizeof(fn),
                 "backend.h has ops this test does not list");
    for (size_t i = 0; i < listed; i++)
        cr_expect(ops[i].f != NULL, "%s: %s is NULL", b->name, ops[i].name);
}

Test(ops, table_complete)
{
    expect_table_complete(ref);
    expect_table_complete(fast);
    cr_expect_str_eq(ref->name, "cpu-ref");
    cr_expect_str_eq(fast->name, "cpu");
    cr_expect_eq(ref->kind, ELAG_DEVICE_CPU_REF);
    cr_expect_eq(fast->kind, ELAG_DEVICE_CPU);
    cr_expect_eq(fast->threads, FAST_THREADS);
}

Test(open, names_and_errors)
{
    elag_backend *b = NULL;
    char note[128] = "stale";
    cr_expect_eq(elag_backend_open("xyz", 1, &b, note, sizeof note), ELAG_ERR_USAGE);
    cr_expect_null(b);
    cr_expect_str_eq(elag_last_error(),
                     "unknown device 'xyz' (expected auto, cpu, cpu-ref, cuda or cuda:N)");
    cr_expect_eq(elag_backend_open("cuda:x", 1, &b, NULL, 0), ELAG_ERR_USAGE);
    cr_expect_eq(elag_backend_open("cuda:-1", 1, &b, NULL, 0), ELAG_ERR_USAGE);
    cr_expect_eq(elag_backend_open("cuda:99", 1, &b, NULL, 0), ELAG_ERR_NO_DEVICE);

    cr_assert_eq(elag_backend_open("cpu", 0, &b, NULL, 0), ELAG_OK);
    cr_expect_geq(b->threads, 1, "threads <= 0 means all cores");
    elag_backend_free(b);

    if (elag_cuda_device_count() == 0) {
        cr_expect_eq(elag_backend_open("cuda", 1, &b, NULL, 0), ELAG_ERR_NO_DEVICE);
        cr_expect(strstr(elag_last_error(), "--device cuda: no CUDA device found") != NULL, "%s",
                  elag_last_error());
        cr_assert_eq(elag_backend_open("auto", 2, &b, note, sizeof note), ELAG_OK);
        cr_expect_str_eq(b->name, "cpu");
        cr_expect_str_eq(note, "no CUDA device found, using the CPU (2 threads)");
    } else {
        cr_assert_eq(elag_backend_open("auto", 2, &b, note, sizeof note), ELAG_OK);
        cr_expect_eq(b->kind, ELAG_DEVICE_CUDA);
    }
    elag_backend_free(b);
    elag_backend_free(NULL);
}

Test(ops, memory)
{
    elag_backend *bs[2] = {ref, fast};
    for (int t = 0; t < 2; t++) {
        elag_backend *b = bs[t];
        float *d = NULL, *e = NULL;
        OK(b->alloc(b, 1001 * sizeof(float), (void **)&d));
        OK(b->alloc(b, 1001 * sizeof(float), (void **)&e));
        cr_expect_eq((uintptr_t)d % 64, 0, "alloc is 64-byte aligned");
        cr_expect_eq(zeros(d, 1001), 1001, "alloc is zeroed");
        float *h = rnd(1001, -1, 1, 1), back[1001];
        OK(b->to_device(b, d, h, 1001 * sizeof(float)));
        OK(b->copy(b, e, d, 1001 * sizeof(float)));
        OK(b->to_host(b, back, e, 1001 * sizeof(float)));
        OK(b->sync(b));
        EXACT("roundtrip", back, h, 1001);
        OK(b->fill(b, d, 1001, 2.5f));
        for (int i = 0; i < 1001; i++) cr_expect_eq(d[i], 2.5f);
        void *empty = NULL;
        OK(b->alloc(b, 0, &empty));
        cr_expect_not_null(empty);
        b->release(b, empty);
        b->release(b, NULL);
        b->release(b, d);
        b->release(b, e);
        free(h);
    }
}

/* ---- dense linear algebra ---- */

/* C (m, n) with row stride n + 3; A and B stored per trans with strides padded too. */
static void check_gemm(int ta, int tb, int m, int n, int k, float alpha, float beta)
{
    int lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
    size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
    float *a = rnd(na, -1, 1, 11), *bm = rnd(nb, -1, 1, 12), *c_ref = rnd(nc, -1, 1, 13);
    float *c_fast = dup(c_ref, nc), *c_orig = dup(c_ref, nc);
    OK(ref->gemm(ref, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c_ref, ldc));
    OK(fast->gemm(fast, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c_fast, ldc));
    char what[96];
    snprintf(what, sizeof what, "gemm ta=%d tb=%d %dx%dx%d", ta, tb, m, n, k);
    SAME(what, c_fast, c_ref, nc); /* includes the padding columns: must be untouched */
    /* and the reference against the definition, one entry */
    if (m > 0 && n > 0) {
        int i = m / 2, j = n - 1;
        double s = 0.0;
        for (int p = 0; p < k; p++)
            s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                 (tb ? bm[j * ldb + p] : bm[p * ldb + j]);
        double want = alpha * s + beta * c_orig[i * ldc + j];
        cr_expect(fabs(c_ref[i * ldc + j] - want) < 1e-5 + 1e-5 * fabs(want), "%s: %g vs %g",
                  what, (double)c_ref[i * ldc + j], want);
    }
    free(c_orig);
    free(a);
    free(bm);
    free(c_ref);
    free(c_fast);
}

Test(ops, gemm_odd_shapes_all_transposes)
{
    const int shapes[][3] = {{7, 96, 40}, {1, 1, 1}, {33, 17, 65}, {64, 300, 257}, {5, 1, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                check_gemm(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f, 0.0f);
                check_gemm(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], -0.75f, 0.5f);
            }
}

Test(ops, gemm_hand_beta_zero_and_empty_k)
{
    /* (2,3) x (3,2) = [[58, 64], [139, 154]]; beta = 0 must not read C (NaN stays out) */
    const float a[6] = {1, 2, 3, 4, 5, 6}, bm[6] = {7, 8, 9, 10, 11, 12};
    const float want[4] = {58, 64, 139, 154};
    elag_backend *bs[2] = {ref, fast};
    for (int t = 0; t < 2; t++) {
        float c[4] = {NAN, NAN, NAN, NAN};
        OK(bs[t]->gemm(bs[t], 0, 0, 2, 2, 3, 1.0f, a, 3, bm, 2, 0.0f, c, 2));
        EXACT(bs[t]->name, c, want, 4);
        float c2[4] = {1, 2, 3, 4}, want2[4] = {0.5f, 1, 1.5f, 2};
        OK(bs[t]->gemm(bs[t], 0, 0, 2, 2, 0, 1.0f, a, 1, bm, 2, 0.5f, c2, 2)); /* k = 0 */
        EXACT("k=0", c2, want2, 4);
        cr_expect_neq(bs[t]->gemm(bs[t], 0, 0, 2, 2, 3, 1.0f, a, 2, bm, 2, 0.0f, c, 2), ELAG_OK,
                      "lda < k is refused");
    }
}

Test(ops, bias_add_and_grad)
{
    const int shapes[][2] = {{5, 7}, {1, 1}, {300, 129}, {3, 200}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        float *y = rnd(n, -1, 1, 21), *bias = rnd(cols, -1, 1, 22), *y2 = dup(y, n);
        float last = y[n - 1];
        OK(ref->bias_add(ref, y, bias, rows, cols));
        OK(fast->bias_add(fast, y2, bias, rows, cols));
        EXACT("bias_add", y2, y, n);
        cr_expect_eq(y[n - 1], last + bias[cols - 1]);
        float *db = rnd(cols, 5, 6, 1), *db2 = rnd(cols, 5, 6, 2);
        OK(ref->bias_grad(ref, db, y, rows, cols));
        OK(fast->bias_grad(fast, db2, y, rows, cols));
        SAME("bias_grad", db2, db, (size_t)cols);
        double s0 = 0.0;
        for (int r = 0; r < rows; r++) s0 += y[(size_t)r * cols];
        cr_expect(fabs(db[0] - s0) < 1e-6 * (1 + fabs(s0)));
        free(y), free(y2), free(bias), free(db), free(db2);
    }
}

Test(ops, relu_forward_backward)
{
    const size_t sizes[] = {1, 37, BIG};
    for (size_t s = 0; s < 3; s++) {
        size_t n = sizes[s];
        float *x = rnd(n, -1, 1, 31), *dy = rnd(n, -2, 2, 32);
        float *y1 = rnd(n, 0, 1, 3), *y2 = rnd(n, 0, 1, 4), *dx1 = rnd(n, 0, 1, 5);
        float *dx2 = dup(dy, n); /* in place: dx == dy */
        OK(ref->relu_forward(ref, y1, x, n));
        OK(fast->relu_forward(fast, y2, x, n));
        EXACT("relu_forward", y2, y1, n);
        for (size_t i = 0; i < n; i++) cr_assert_eq(y1[i], x[i] > 0 ? x[i] : 0.0f);
        OK(ref->relu_backward(ref, dx1, dy, y1, n));
        OK(fast->relu_backward(fast, dx2, dx2, y2, n));
        EXACT("relu_backward", dx2, dx1, n);
        for (size_t i = 0; i < n; i++) cr_assert_eq(dx1[i], x[i] > 0 ? dy[i] : 0.0f);
        OK(fast->relu_forward(fast, x, x, n)); /* y == x */
        EXACT("relu in place", x, y1, n);
        free(x), free(dy), free(y1), free(y2), free(dx1), free(dx2);
    }
}

/* ---- cross-entropy ---- */

Test(ops, xent_hand_2x3)
{
    /* row 0: label 1, argmax 2 (miss); row 1: all equal, first max 0 == label 0 (hit) */
    const float logits[6] = {1, 2, 3, 0.5f, 0.5f, 0.5f};
    const int32_t labels[2] = {1, 0};
    double z0 = exp(1.0) + exp(2.0) + exp(3.0);
    double loss = (log(z0) - 2.0) + log(3.0);
    float want_d[6] = {(float)(exp(1.0) / z0 / 2), (float)((exp(2.0) / z0 - 1) / 2),
                       (float)(exp(3.0) / z0 / 2), (float)((1.0 / 3 - 1) / 2),
                       (float)(1.0 / 3 / 2), (float)(1.0 / 3 / 2)};
    elag_backend *bs[2] = {ref, fast};
    for (int t = 0; t < 2; t++) {
        float d[6], stats[2] = {10.0f, 5.0f}; /* stats accumulate */
        OK(bs[t]->xent(bs[t], logits, labels, 2, 3, d, stats));
        cr_expect(fabs(stats[0] - (10.0 + loss)) < 1e-5, "%s loss %.7g want %.7g", bs[t]->name,
                  (double)stats[0], 10.0 + loss);
        cr_expect_eq(stats[1], 6.0f, "%s correct %g", bs[t]->name, (double)stats[1]);
        SAME(bs[t]->name, d, want_d, 6);
    }
}

Test(ops, xent_fast_vs_ref)
{
    const int shapes[][2] = {{257, 10}, {4099, 10}, {3, 1}, {17, 1000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        float *x = rnd(n, -6, 6, 41), *d1 = rnd(n, 0, 1, 1), *d2 = rnd(n, 0, 1, 2);
        int32_t *lab = malloc((size_t)rows * sizeof *lab);
        for (int r = 0; r < rows; r++) lab[r] = (int32_t)(elag_philox_u32(5, 6, r) % cols);
        float s1[2] = {0, 0}, s2[2] = {0, 0}, s3[2] = {0, 0};
        OK(ref->xent(ref, x, lab, rows, cols, d1, s1));
        OK(fast->xent(fast, x, lab, rows, cols, d2, s2));
        OK(fast->xent(fast, x, lab, rows, cols, NULL, s3)); /* no gradient wanted */
        SAME("xent loss", &s2[0], &s1[0], 1);
        SAME("xent loss without grad", &s3[0], &s1[0], 1);
        cr_expect_eq(s2[1], s1[1], "accuracy: %g vs %g", (double)s2[1], (double)s1[1]);
        cr_expect_eq(s3[1], s1[1]);
        SAME("xent grad", d2, d1, n);
        for (int r = 0; r < rows; r += 37) { /* each gradient row sums to 0 */
            double sum = 0.0;
            for (int c = 0; c < cols; c++) sum += d2[(size_t)r * cols + c];
            cr_expect(fabs(sum) < 1e-6, "row %d grad sums to %g", r, sum);
        }
        free(x), free(d1), free(d2), free(lab);
    }
}

Test(ops, xent_rejects_bad_label)
{
    const float logits[4] = {0, 1, 2, 3};
    const int32_t labels[2] = {1, 2};
    float stats[2] = {0, 0};
    cr_expect_eq(ref->xent(ref, logits, labels, 2, 2, NULL, stats), ELAG_ERR_INPUT);
    cr_expect_eq(fast->xent(fast, logits, labels, 2, 2, NULL, stats), ELAG_ERR_INPUT);
    cr_expect(strstr(elag_last_error(), "label 2") != NULL, "%s", elag_last_error());
}

Test(ops, gather)
{
    const int src_rows = 50, cols = 13, rows = 23;
    float *src = rnd((size_t)src_rows * cols, -1, 1, 51);
    int32_t isrc[50], idx[23], o1[23], o2[23];
    for (int i = 0; i < src_rows; i++) isrc[i] = 1000 + i;
    for (int r = 0; r < rows; r++) idx[r] = (r * 7 + 3) % src_rows;
    float *d1 = rnd((size_t)rows * cols, 0, 1, 1), *d2 = rnd((size_t)rows * cols, 0, 1, 2);
    OK(ref->gather_rows(ref, d1, src, idx, rows, cols));
    OK(fast->gather_rows(fast, d2, src, idx, rows, cols));
    EXACT("gather_rows", d2, d1, (size_t)rows * cols);
    EXACT("gather_rows vs src", d1 + 5 * cols, src + idx[5] * cols, cols);
    OK(ref->gather_i32(ref, o1, isrc, idx, rows));
    OK(fast->gather_i32(fast, o2, isrc, idx, rows));
    for (int r = 0; r < rows; r++) {
        cr_expect_eq(o1[r], 1000 + idx[r]);
        cr_expect_eq(o2[r], o1[r]);
    }
    free(src), free(d1), free(d2);
}

/* ---- initialisation ---- */

Test(ops, init_uniform_identical_and_in_range)
{
    const size_t sizes[] = {1, 7, BIG};
    for (size_t s = 0; s < 3; s++) {
        size_t n = sizes[s];
        float *x1 = rnd(n, 0, 1, 1), *x2 = rnd(n, 0, 1, 2);
        const float lo = -0.0625f, hi = 0.1875f;
        OK(ref->init_uniform(ref, x1, n, lo, hi, 1234, ELAG_STREAM_INIT_BASE + 3));
        OK(fast->init_uniform(fast, x2, n, lo, hi, 1234, ELAG_STREAM_INIT_BASE + 3));
        cr_expect_eq(memcmp(x1, x2, n * sizeof *x1), 0, "init_uniform must be bit-identical");
        double mean = 0.0;
        for (size_t i = 0; i < n; i++) {
            cr_assert(x1[i] >= lo && x1[i] < hi, "x[%zu] = %g", i, (double)x1[i]);
            cr_assert_eq(x1[i], lo + (hi - lo) * elag_philox_uniform(1234, 0x1003, i));
            mean += x1[i];
        }
        if (n == BIG) cr_expect(fabs(mean / n - 0.0625) < 2e-3, "mean %g", mean / n);
        OK(fast->init_uniform(fast, x2, n, lo, hi, 1234, ELAG_STREAM_INIT_BASE + 4));
        if (n > 1) cr_expect_neq(memcmp(x1, x2, n * sizeof *x1), 0, "streams differ");
        free(x1), free(x2);
    }
}

/* ---- optimizers ---- */

/* w, v after `steps` SGD steps computed here from the formula of backend.h */
static void sgd_by_hand(float *w, float *v, const float *g, size_t n, int steps, float lr,
                        float mom, float wd, int nesterov)
{
    for (int t = 0; t < steps; t++)
        for (size_t i = 0; i < n; i++) {
            float gp = g[i] + wd * w[i];
            v[i] = mom * v[i] + gp;
            w[i] -= lr * (nesterov ? gp + mom * v[i] : v[i]);
        }
}

Test(ops, sgd_plain_momentum_nesterov_decay)
{
    const struct {
        float mom, wd;
        int nesterov;
    } cases[] = {{0, 0, 0}, {0.9f, 0, 0}, {0.9f, 0, 1}, {0.9f, 5e-4f, 0}, {0.5f, 1e-2f, 1}};
    const size_t n = 1001;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *w0 = rnd(n, -1, 1, 61), *g = rnd(n, -1, 1, 62);
        float *wh = dup(w0, n), *vh = calloc(n, sizeof *vh);
        sgd_by_hand(wh, vh, g, n, 3, 0.1f, cases[c].mom, cases[c].wd, cases[c].nesterov);
        elag_backend *bs[2] = {ref, fast};
        for (int t = 0; t < 2; t++) {
            float *w = dup(w0, n), *v = calloc(n, sizeof *v);
            for (int s = 0; s < 3; s++)
                OK(bs[t]->sgd_step(bs[t], w, g, v, NULL, n, 0.1f, cases[c].mom, cases[c].wd,
                                   cases[c].nesterov));
            SAME(bs[t]->name, w, wh, n);
            SAME(bs[t]->name, v, vh, n);
            free(w), free(v);
        }
        /* plain SGD, one step, is w - lr g exactly */
        if (c == 0) cr_expect_eq(wh[5], (w0[5] - 0.1f * g[5]) - 0.1f * g[5] - 0.1f * g[5]);
        free(w0), free(g), free(wh), free(vh);
    }
}

Test(ops, adamw_matches_formula)
{
    const size_t n = 999;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.05f;
    float *w0 = rnd(n, -1, 1, 71);
    double *wh = malloc(n * sizeof *wh), *mh = calloc(n, sizeof *mh), *vh = calloc(n, sizeof *vh);
    for (size_t i = 0; i < n; i++) wh[i] = w0[i];
    float *gs[3] = {rnd(n, -1, 1, 72), rnd(n, -1e-3f, 1e-3f, 73), rnd(n, -5, 5, 74)};
    for (int t = 1; t <= 3; t++)
        for (size_t i = 0; i < n; i++) {
            double g = gs[t - 1][i];
            wh[i] *= 1.0 - (double)lr * wd;
            mh[i] = b1 * mh[i] + (1 - (double)b1) * g;
            vh[i] = b2 * vh[i] + (1 - (double)b2) * g * g;
            wh[i] -= lr * (mh[i] / (1 - pow(b1, t))) / (sqrt(vh[i] / (1 - pow(b2, t))) + eps);
        }
    float *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) want[i] = (float)wh[i];
    elag_backend *bs[2] = {ref, fast};
    for (int s = 0; s < 2; s++) {
        float *w = dup(w0, n), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
        for (int t = 1; t <= 3; t++)
            OK(bs[s]->adamw_step(bs[s], w, gs[t - 1], m, v, NULL, n, lr, b1, b2, eps, wd, t));
        SAME(bs[s]->name, w, want, n);
        cr_expect(fabs(v[0] - vh[0]) < 1e-6 + 1e-4 * vh[0]);
        cr_expect_neq(bs[s]->adamw_step(bs[s], w, gs[0], m, v, NULL, n, lr, b1, b2, eps, wd, 0),
                      ELAG_OK, "t = 0 is refused");
        free(w), free(m), free(v);
    }
    for (int t = 0; t < 3; t++) free(gs[t]);
    free(w0), free(wh), free(mh), free(vh), free(want);
}

Test(ops, masked_steps_keep_pruned_exactly_zero)
{
    const size_t n = BIG;
    float *mask = malloc(n * sizeof *mask);
    for (size_t i = 0; i < n; i++) mask[i] = elag_philox_uniform(9, 9, i) < 0.7f ? 0.0f : 1.0f;
    float *w0 = rnd(n, -1, 1, 81), *g = rnd(n, -1, 1, 82);
    elag_backend *bs[2] = {ref, fast};
    float *out_w[2], *out_v[2], *out_aw[2];
    for (int s = 0; s < 2; s++) {
        elag_backend *b = bs[s];
        float *w = dup(w0, n), *v = rnd(n, -1, 1, 83); /* stale state under the mask */
        float *aw = dup(w0, n), *m = rnd(n, -1, 1, 84), *av = rnd(n, 0, 1, 85);
        for (int t = 1; t <= 2; t++) {
            OK(b->sgd_step(b, w, g, v, mask, n, 0.1f, 0.9f, 1e-3f, t == 2));
            OK(b->adamw_step(b, aw, g, m, av, mask, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t));
        }
        size_t live_nonzero = 0;
        for (size_t i = 0; i < n; i++) {
            if (mask[i] == 0.0f) {
                cr_assert(w[i] == 0.0f && v[i] == 0.0f && aw[i] == 0.0f && m[i] == 0.0f &&
                              av[i] == 0.0f,
                          "%s: pruned entry %zu not zero", b->name, i);
                cr_assert(!signbit(w[i]) && !signbit(aw[i]), "pruned entries are +0");
            } else {
                live_nonzero += w[i] != 0.0f && aw[i] != 0.0f;
            }
        }
        cr_expect_eq(live_nonzero, n - zeros(mask, n));
        out_w[s] = w, out_v[s] = v, out_aw[s] = aw;
        free(m), free(av);
    }
    SAME("masked sgd w", out_w[1], out_w[0], n);
    SAME("masked sgd v", out_v[1], out_v[0], n);
    SAME("masked adamw w", out_aw[1], out_aw[0], n);
    float *x1 = rnd(n, -1, 1, 86), *x2 = dup(x1, n);
    OK(ref->mask_apply(ref, x1, mask, n));
    OK(fast->mask_apply(fast, x2, mask, n));
    EXACT("mask_apply", x2, x1, n);
    cr_expect_eq(zeros(x1, n), zeros(mask, n));
    for (int s = 0; s < 2; s++) free(out_w[s]), free(out_v[s]), free(out_aw[s]);
    free(mask), free(w0), free(g), free(x1), free(x2);
}

/* ---- pruning ---- */

Test(ops, score_magnitude_and_count_nonzero)
{
    const size_t n = BIG;
    float *w = rnd(n, -1, 1, 91), *mask = malloc(n * sizeof *mask);
    for (size_t i = 0; i < n; i++) mask[i] = (i % 3 == 0) ? 0.0f : 1.0f;
    w[1] = 0.0f; /* a live zero weight scores 0, above the pruned -1 */
    float *s1 = rnd(n, 0, 1, 1), *s2 = rnd(n, 0, 1, 2);
    OK(ref->score_magnitude(ref, s1, w, mask, n));
    OK(fast->score_magnitude(fast, s2, w, mask, n));
    EXACT("score_magnitude", s2, s1, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(s1[i], i % 3 == 0 ? -1.0f : fabsf(w[i]), "score %zu", i);
    OK(fast->score_magnitude(fast, s2, w, NULL, n));
    cr_expect_eq(s2[3], fabsf(w[3]), "no mask: every entry is live");
    size_t c1 = 0, c2 = 0;
    OK(ref->count_nonzero(ref, mask, n, &c1));
    OK(fast->count_nonzero(fast, mask, n, &c2));
    cr_expect_eq(c1, n - (n + 2) / 3);
    cr_expect_eq(c2, c1);
    OK(fast->count_nonzero(fast, w, 5, &c2));
    cr_expect_eq(c2, 4);
    free(w), free(mask), free(s1), free(s2);
}

/* (score[i], i) < (score[j], j), with NaN above every number (backend.h's order) */
static int ranks_below(const float *score, size_t i, size_t j)
{
    float a = score[i], b = score[j];
    if (isnan(a) || isnan(b)) return isnan(a) == isnan(b) ? i < j : isnan(b);
    return a < b || (a == b && i < j);
}

/* mask_select on both backends (and the fast one's radix fallback on its own): exactly
 * k zeros, identical masks, and the pruned set is the k smallest (score, index): every
 * pruned pair ranks below every kept pair. */
static void check_select(const float *score, size_t n, size_t k, const char *what)
{
    float *m1 = rnd(n, 0, 1, 1), *m2 = rnd(n, 0, 1, 2), *m3 = rnd(n, 0, 1, 3);
    OK(ref->mask_select(ref, m1, score, n, k));
    OK(fast->mask_select(fast, m2, score, n, k));
    OK(elag_cpu_mask_select_radix(fast, m3, score, n, k));
    cr_expect_eq(zeros(m1, n), k, "%s: ref pruned %zu, want %zu", what, zeros(m1, n), k);
    cr_expect_eq(zeros(m2, n), k, "%s: fast pruned %zu, want %zu", what, zeros(m2, n), k);
    EXACT(what, m2, m1, n);
    EXACT(what, m3, m1, n);
    free(m3);
    size_t hi_pruned = n, lo_kept = n; /* the largest pruned, the smallest kept */
    for (size_t i = 0; i < n; i++) {
        cr_assert(m1[i] == 0.0f || m1[i] == 1.0f);
        if (m1[i] == 0.0f && (hi_pruned == n || !ranks_below(score, i, hi_pruned))) hi_pruned = i;
        if (m1[i] == 1.0f && (lo_kept == n || ranks_below(score, i, lo_kept))) lo_kept = i;
    }
    if (hi_pruned < n && lo_kept < n)
        cr_expect(ranks_below(score, hi_pruned, lo_kept),
                  "%s: pruned (%g, %zu) ranks above kept (%g, %zu)", what,
                  (double)score[hi_pruned], hi_pruned, (double)score[lo_kept], lo_kept);
    free(m1), free(m2);
}

Test(ops, mask_select_exact_counts)
{
    const size_t n = 266200 + 7;
    float *score = rnd(n, 0, 1, 101);
    for (size_t i = 0; i < n; i += 5) score[i] = -1.0f; /* already pruned entries */
    const double sparsity[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    for (size_t s = 0; s < 5; s++) check_select(score, n, (size_t)(sparsity[s] * n), "random");
    check_select(score, n, 1, "k=1");
    check_select(score, n, n - 1, "k=n-1");
    check_select(score, 1, 1, "n=1");
    check_select(score, 13, 6, "small");
    float one = 0;
    OK(fast->mask_select(fast, &one, score, 0, 0)); /* n = 0 */
    cr_expect_neq(fast->mask_select(fast, &one, score, 1, 2), ELAG_OK, "k > n is refused");
    free(score);
}

Test(ops, mask_select_ties)
{
    const size_t n = 70001;
    float *score = malloc(n * sizeof *score);
    for (size_t i = 0; i < n; i++) score[i] = 0.25f;
    const double sparsity[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    for (size_t s = 0; s < 5; s++) check_select(score, n, (size_t)(sparsity[s] * n), "all equal");
    float *m = rnd(n, 0, 1, 1);
    OK(fast->mask_select(fast, m, score, n, 1234));
    for (size_t i = 0; i < n; i++) cr_assert_eq(m[i], i < 1234 ? 0.0f : 1.0f, "ties: index %zu", i);
    /* four values, the smallest being the pruned marker */
    const float q[4] = {-1.0f, 0.0f, 0.5f, 3.0f};
    for (size_t i = 0; i < n; i++) score[i] = q[elag_philox_u32(3, 3, i) & 3];
    for (size_t s = 0; s < 5; s++) check_select(score, n, (size_t)(sparsity[s] * n), "4 values");
    check_select(score, n, n / 4, "4 values, n/4");
    /* -0 and +0 are one value: ties broken by index, like the float compare of cpu-ref */
    for (size_t i = 0; i < n; i++) score[i] = (i % 2) ? -0.0f : (i % 3 ? 0.0f : 1.0f);
    check_select(score, n, n / 4, "signed zeros");
    check_select(score, n, n / 3, "signed zeros, n/3");
    check_select(score, n, n * 6 / 10, "signed zeros, past the -0s");
    /* NaN ranks above +inf (pruned last), -inf below everything */
    for (size_t i = 0; i < n; i++) score[i] = elag_philox_uniform(4, 4, i);
    for (size_t i = 0; i < n; i += 7) score[i] = NAN;
    for (size_t i = 3; i < n; i += 11) score[i] = INFINITY;
    for (size_t i = 5; i < n; i += 13) score[i] = -INFINITY;
    check_select(score, n, n / 2, "non-finite");
    check_select(score, n, n - n / 14, "non-finite, into the NaNs");
    check_select(score, n, n / 20, "non-finite, into -inf");
    free(score), free(m);
}
