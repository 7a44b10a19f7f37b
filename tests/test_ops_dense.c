/*
 * The dense backend ops against cpu-ref (the harness: tests/support/ops_harness.h): memory
 * (alloc, release, to_device, to_host, copy, fill, sync), gemm (both transposes, padded
 * strides, k = 0, TF32 off again), row_sum, elementwise (every op, special values, in place),
 * transpose (there and back), xent (loss, hits, gradient, ties) and the gathers. Shapes are
 * odd (partial tiles, uneven thread splits); zero sizes must be no-ops and negative sizes
 * ELAG_ERR_INTERNAL on every backend.
 */
#include "backend/philox.h"
#include "support/ops_harness.h"

#ifdef ELAG_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

OPS_TEST_FILE(OPS_CASES_DENSE);

/* ---- memory ---- */

OPS_CASE(memory)
{
    elag_backend *b = T.b;
    const size_t n = BIG;
    float *h = hrnd(n, -3.0f, 3.0f, 1), *back = hbuf(n), *want = hbuf(n);
    float *d = NULL, *e = NULL;
    OK(b->alloc(b, n * 4, (void **)&d));
    OK(b->alloc(b, n * 4, (void **)&e));
    if (b->kind != ELAG_DEVICE_CUDA) cr_expect_eq((uintptr_t)d % 64, 0, "alloc is 64-byte aligned");
    OK(b->to_host(b, back, d, n * 4));
    OK(b->sync(b));
    cr_expect_eq(zeros(back, n), n, "alloc is zeroed");
    expect_identical("alloc is +0", back, want, n);
    OK(b->to_device(b, d, h, n * 4));
    OK(b->copy(b, e, d, n * 4));
    OK(b->to_host(b, back, e, n * 4));
    OK(b->sync(b));
    expect_identical("to_device, copy, to_host", back, h, n);
    OK(b->fill(b, e, n - 2, -0.25f)); /* the last two entries stay */
    OK(b->fill(b, e, 0, 1.0f));       /* n = 0 does nothing */
    OK(b->to_host(b, back, e, n * 4));
    OK(b->sync(b));
    for (size_t i = 0; i < n; i++) want[i] = i < n - 2 ? -0.25f : h[i];
    expect_identical("fill", back, want, n);
    OK(b->copy(b, e, d, 0)); /* 0 bytes */
    void *empty = NULL;
    OK(b->alloc(b, 0, &empty));
    if (b->kind != ELAG_DEVICE_CUDA) cr_expect_not_null(empty, "alloc(0) gives a pointer");
    b->release(b, empty);
    b->release(b, NULL);
    /* out of memory: a clean error, and the backend still works */
    void *p = NULL;
    elag_status st = b->alloc(b, (size_t)1 << 52, &p); /* 4 PiB */
    cr_expect_eq(st, ELAG_ERR_NOMEM, "%s: 4 PiB gives %s (%s)", b->name, elag_status_name(st),
                 elag_last_error());
    cr_expect_null(p);
    if (b->kind == ELAG_DEVICE_CUDA)
        cr_expect(strncmp(elag_last_error(), "CUDA out of memory: requested ", 30) == 0, "%s",
                  elag_last_error());
    float one = 1.0f;
    OK(b->fill(b, d, 1, 2.0f));
    OK(b->to_host(b, &one, d, 4));
    OK(b->sync(b));
    cr_expect_eq(one, 2.0f);
    b->release(b, d);
    b->release(b, e);
}

/* ---- dense linear algebra ---- */

static void gemm_on(elag_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *bm, int ldb, float beta, const float *c0,
                    int ldc, float *out)
{
    size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
    float *da = fin(be, a, na, "A"), *db = fin(be, bm, nb, "B"), *dc = fio(be, c0, nc, "C");
    OKB(be, be->gemm(be, ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc));
    fget(out, dc, nc);
}

/* C (m, n) with row strides padded by `pad`; the padding of A and B holds NaN (never read),
 * the padding of C must stay as it was. */
static void check_gemm(int ta, int tb, int m, int n, int k, float alpha, float beta, int pad)
{
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    int lda = (ac > 1 ? ac : 1) + pad, ldb = (bc > 1 ? bc : 1) + 2 * pad, ldc = n + 3 * pad;
    size_t na = (size_t)ar * lda, nb = (size_t)br * ldb, nc = (size_t)m * ldc;
    float *a = hrnd(na, -1, 1, 11), *bm = hrnd(nb, -1, 1, 12), *c0 = hrnd(nc, -1, 1, 13);
    for (size_t i = 0; i < na; i++)
        if ((int)(i % lda) >= ac) a[i] = NAN;
    for (size_t i = 0; i < nb; i++)
        if ((int)(i % ldb) >= bc) bm[i] = NAN;
    float *want = hbuf(nc), *got = hbuf(nc);
    gemm_on(T.ref, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c0, ldc, want);
    gemm_on(T.b, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c0, ldc, got);
    char what[128];
    snprintf(what, sizeof what, "gemm %dx%dx%d ta=%d tb=%d alpha=%g beta=%g pad=%d", m, n, k, ta,
             tb, (double)alpha, (double)beta, pad);
    expect_close(what, got, want, nc, sqrt(k + 1.0)); /* includes C's padding */
    /* the reference against the definition, in double */
    double *hand = dbuf(nc);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            size_t o = (size_t)i * ldc + j;
            if (j >= n) {
                hand[o] = c0[o];
                continue;
            }
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]) *
                     (tb ? bm[(size_t)j * ldb + p] : bm[(size_t)p * ldb + j]);
            hand[o] = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)c0[o]);
        }
    expect_hand(what, got, to_float(hand, nc), nc, sqrt(k + 1.0));
}

OPS_CASE(gemm)
{
    elag_backend *b = T.b;
    const int shapes[][3] = {{7, 96, 40},  {7, 40, 96}, {1, 1, 1},  {33, 17, 65},
                             {33, 65, 17}, {5, 1, 9},   {1, 33, 2}, {64, 300, 257}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                check_gemm(ta, tb, m, n, k, 1.0f, 0.0f, 0);
                check_gemm(ta, tb, m, n, k, -0.75f, 0.5f, 1);
                if (s < 3) check_gemm(ta, tb, m, n, k, 0.75f, -1.5f, 3);
            }
    /* k = 0: C = beta C */
    check_gemm(0, 0, 5, 9, 0, 1.0f, 0.5f, 2);
    check_gemm(1, 0, 5, 9, 0, 1.0f, 0.0f, 0);
    /* by hand, (2,3) x (3,2) = [[58, 64], [139, 154]]: exact; beta = 0 never reads C (NaN) */
    const float a[6] = {1, 2, 3, 4, 5, 6}, bm[6] = {7, 8, 9, 10, 11, 12};
    const float nan4[4] = {NAN, NAN, NAN, NAN}, want[4] = {58, 64, 139, 154};
    float got[4];
    gemm_on(b, 0, 0, 2, 2, 3, 1.0f, a, 3, bm, 2, 0.0f, nan4, 2, got);
    expect_identical("gemm by hand, beta 0 over NaN", got, want, 4);
    const float c2[4] = {1, 2, 3, 4}, want2[4] = {0.5f, 1, 1.5f, 2};
    gemm_on(b, 0, 0, 2, 2, 0, 1.0f, a, 1, bm, 2, 0.5f, c2, 2, got);
    expect_identical("gemm k=0", got, want2, 4);
    /* m = 0 and n = 0: no-ops */
    gemm_on(b, 0, 0, 0, 5, 3, 1.0f, a, 3, hrnd(15, -1, 1, 14), 5, 0.5f, NULL, 5, got);
    float c3[3] = {1, 2, 3}, got3[3];
    gemm_on(b, 0, 1, 3, 0, 2, 1.0f, a, 2, bm, 2, 0.5f, c3, 1, got3);
    expect_identical("gemm n=0 leaves C", got3, c3, 3);
    /* refusals: strides below the rows they hold, negative sizes */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gemm(be, 0, 0, 2, 2, 3, 1.0f, df, 2, df, 2, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gemm(be, 0, 0, 2, 2, 2, 1.0f, df, 1, df, 2, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gemm(be, 0, 0, 2, 3, 2, 1.0f, df, 2, df, 3, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_gemm(be, 0, 0, -1, 2, 2, 1.0f, df, 2, df, 2, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_gemm(be, 0, 0, 2, -1, 2, 1.0f, df, 2, df, 2, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_gemm(be, 1, 1, 2, 2, -3, 1.0f, df, 2, df, 2, 0.0f, df, 2));
    /* TF32: only a CUDA switch; FP32 parity is back once it is off again */
    OK(elag_backend_set_tf32(T.ref, 1)); /* nothing on a CPU backend */
#ifdef ELAG_HAVE_CUDA
    cr_expect_lt(elag_cuda_set_tf32(T.ref, 1), 0, "set_tf32 on a CPU backend must fail");
    if (b->kind == ELAG_DEVICE_CUDA) {
        cr_expect_eq(elag_cuda_set_tf32(b, 1), 0);
        cr_expect_eq(elag_cuda_set_tf32(b, 0), 1);
        check_gemm(0, 1, 33, 65, 17, 1.0f, 0.0f, 0);
    }
#endif
}

/* ---- row_sum ---- */

static void row_sum_on(elag_backend *be, const float *x, int rows, int cols, float *out)
{
    float *dx = fin(be, x, (size_t)rows * cols, "x"), *dout = fout(be, (size_t)rows, "out");
    OKB(be, be->row_sum(be, dout, dx, rows, cols));
    fget(out, dout, (size_t)rows);
}

OPS_CASE(row_sum)
{
    const int shapes[][2] = {{5, 7},  {1, 1},    {300, 129}, {3, 200}, {37, 129},
                             {257, 10}, {1000, 33}, {3, 40009}, {40009, 3}, {4, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        float *x = hrnd((size_t)rows * cols, -1.0f, 1.0f, 21 + s);
        float *want = hbuf(rows), *got = hbuf(rows);
        double *hand = dbuf(rows);
        row_sum_on(T.ref, x, rows, cols, want);
        row_sum_on(T.b, x, rows, cols, got);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) hand[r] += x[(size_t)r * cols + c];
        char what[64];
        snprintf(what, sizeof what, "row_sum %dx%d", rows, cols);
        expect_close(what, got, want, (size_t)rows, sqrt(cols + 1.0));
        expect_hand(what, got, to_float(hand, rows), (size_t)rows, sqrt(cols + 1.0));
        if (cols == 0) cr_expect_eq(zeros(got, rows), (size_t)rows, "cols 0: zeros");
    }
    float none;
    row_sum_on(T.b, &none, 0, 5, &none); /* rows 0: nothing written */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_row_sum(be, df, df, -1, 3));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_row_sum(be, df, df, 3, -1));
}

/* ---- elementwise ---- */

static const char *ew_name(elag_ew_op op)
{
    static const char *names[] = {"RELU", "RELU_BACKWARD", "MUL", "AXPY", "SCALE"};
    return (unsigned)op < 5 ? names[op] : "?";
}
static int ew_reads_b(elag_ew_op op) { return op == ELAG_EW_RELU_BACKWARD || op == ELAG_EW_MUL; }

/* alias 0: y separate (an output, or y0 for AXPY); 1: y == a; 2: y == b */
static void ew_on(elag_backend *be, elag_ew_op op, size_t n, const float *y0, const float *a,
                  const float *bb, float alpha, int alias, float *out)
{
    float *dy, *da, *db = NULL;
    if (alias == 1) {
        dy = da = fio(be, a, n, "y = a");
        if (ew_reads_b(op)) db = fin(be, bb, n, "b");
    } else if (alias == 2) {
        dy = db = fio(be, bb, n, "y = b");
        da = fin(be, a, n, "a");
    } else {
        dy = op == ELAG_EW_AXPY ? fio(be, y0, n, "y") : fout(be, n, "y");
        da = fin(be, a, n, "a");
        if (ew_reads_b(op)) db = fin(be, bb, n, "b");
    }
    OKB(be, be->elementwise(be, op, n, dy, da, db, alpha));
    fget(out, dy, n);
}

/* what y[i] must become, from the comment of elag_ew_op */
static float ew_hand(elag_ew_op op, float y, float a, float b, float alpha)
{
    switch (op) {
    case ELAG_EW_RELU: return a > 0.0f ? a : 0.0f;
    case ELAG_EW_RELU_BACKWARD: return b > 0.0f ? a : 0.0f;
    case ELAG_EW_MUL: return b == 0.0f ? 0.0f : a * b;
    case ELAG_EW_AXPY: return y + alpha * a;
    case ELAG_EW_SCALE: return alpha * a;
    }
    return NAN;
}

OPS_CASE(elementwise)
{
    /* special pairs first: (inf, 0) (NaN, 0) (NaN, -0) must MUL to +0; NaN b is not > 0 */
    const float sa[] = {-0.0f, 0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 3.0f, -2.5f, NAN,
                        INFINITY, 1.0f};
    const float sb[] = {0.0f, -0.0f, 0.0f, 0.0f, 0.0f, 2.0f, -0.0f, NAN, NAN, -0.0f, 1.5f,
                        -INFINITY};
    const size_t ns = sizeof sa / sizeof *sa;
    const size_t sizes[] = {1, ns, 37, BIG};
    const float alpha = -0.375f;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        float *a = hrnd(n, -2.0f, 2.0f, 31), *bb = hrnd(n, -2.0f, 2.0f, 32);
        float *y0 = hrnd(n, -1.0f, 1.0f, 33), *u = hrnd(n, 0.0f, 1.0f, 34);
        for (size_t i = 0; i < n; i++)
            if (u[i] < 0.3f) bb[i] = 0.0f; /* a mask's or a dropout's zeros */
        for (size_t i = 0; i < n && i < ns; i++) a[i] = sa[i], bb[i] = sb[i];
        for (int op = ELAG_EW_RELU; op <= ELAG_EW_SCALE; op++) {
            elag_ew_op o = (elag_ew_op)op;
            /* only AXPY sums two roundings (a backend may fuse them): the others are exact */
            int exact = o != ELAG_EW_AXPY;
            float *want = hbuf(n), *got = hbuf(n), *hand = hbuf(n);
            for (int alias = 0; alias <= (ew_reads_b(o) ? 2 : 1); alias++) {
                ew_on(T.ref, o, n, y0, a, bb, alpha, alias, want);
                ew_on(T.b, o, n, y0, a, bb, alpha, alias, got);
                for (size_t i = 0; i < n; i++) {
                    float yin = alias == 1 ? a[i] : alias == 2 ? bb[i] : y0[i];
                    hand[i] = ew_hand(o, yin, a[i], bb[i], alpha);
                }
                char what[96];
                snprintf(what, sizeof what, "elementwise %s n=%zu%s", ew_name(o), n,
                         alias == 1 ? " y=a" : alias == 2 ? " y=b" : "");
                if (exact) {
                    expect_identical(what, got, want, n);
                    cr_expect_eq(elag_test_compare(what, got, hand, n, 0.0, 0.0), 0,
                                 "%s: %s against the formula", T.b->name, what);
                } else {
                    expect_close(what, got, want, n, 1.0);
                    expect_hand(what, got, hand, n, 1.0);
                }
                if (o == ELAG_EW_MUL)
                    for (size_t i = 0; i < n; i++)
                        if (bb[i] == 0.0f && (got[i] != 0.0f || signbit(got[i]))) {
                            cr_expect(0, "%s: %s[%zu] = %g where b == 0, want +0", T.b->name,
                                      what, i, (double)got[i]);
                            break;
                        }
                if (o == ELAG_EW_RELU)
                    for (size_t i = 0; i < n; i++)
                        if (isnan(got[i])) {
                            cr_expect(0, "%s: RELU of NaN must give 0 (entry %zu)", T.b->name, i);
                            break;
                        }
            }
        }
    }
    /* n = 0: nothing read or written */
    for (int op = ELAG_EW_RELU; op <= ELAG_EW_SCALE; op++) {
        float none;
        ew_on(T.b, (elag_ew_op)op, 0, &none, &none, &none, 2.0f, 0, &none);
    }
    ALL_REFUSE(elag_be_elementwise(be, (elag_ew_op)99, 4, df, df, df, 1.0f));
}

/* ---- transpose ---- */

static void transpose_on(elag_backend *be, const float *src, int batch, int rows, int cols,
                         int inner, float *out)
{
    size_t n = (size_t)batch * rows * cols * inner;
    float *ds = fin(be, src, n, "src"), *dd = fout(be, n, "dst");
    OKB(be, be->transpose(be, dd, ds, batch, rows, cols, inner));
    fget(out, dd, n);
}

OPS_CASE(transpose)
{
    const struct {
        const char *name;
        int batch, rows, cols, inner;
    } cases[] = {
        {"(N, C, HW) -> (C, N, HW): N 5, C 3, HW 63", 1, 5, 3, 63},
        {"flatten (C, N, HW) -> (C, HW, N): C 3, N 5, HW 63", 3, 5, 63, 1},
        {"odd tiles", 2, 37, 41, 1},
        {"large", 1, 129, 257, 1},
        {"large, 16 channels of 8 x 196", 16, 8, 196, 1},
        {"inner 7", 4, 33, 1, 7},
        {"inner 5", 3, 1, 17, 5},
        {"1x1", 1, 1, 1, 1},
        {"one sample in: (1, 784) -> (784, 1), a copy", 2, 1, 784, 1},
        {"one sample out: (10, 1) -> (1, 10), a copy", 3, 10, 1, 1},
        {"rows 2 cols 33 inner 3", 5, 2, 33, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int B = cases[c].batch, R = cases[c].rows, C = cases[c].cols, I = cases[c].inner;
        size_t n = (size_t)B * R * C * I;
        float *src = hrnd(n, -1.0f, 1.0f, 41 + c), *want = hbuf(n), *got = hbuf(n);
        float *hand = hbuf(n), *back = hbuf(n);
        for (int t = 0; t < B; t++)
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++)
                    for (int e = 0; e < I; e++)
                        hand[(((size_t)t * C + j) * R + i) * I + e] =
                            src[(((size_t)t * R + i) * C + j) * I + e];
        transpose_on(T.ref, src, B, R, C, I, want);
        transpose_on(T.b, src, B, R, C, I, got);
        expect_identical(cases[c].name, got, want, n);
        expect_identical(cases[c].name, got, hand, n);
        transpose_on(T.b, got, B, C, R, I, back); /* and back */
        expect_identical("transpose there and back", back, src, n);
    }
    /* zero sizes: nothing written (dst holds 8 NaNs that must stay) */
    const int zero[][4] = {{0, 3, 4, 5}, {2, 0, 4, 5}, {2, 3, 0, 5}, {2, 3, 4, 0}};
    for (int z = 0; z < 4; z++) {
        float src[8] = {0}, got[8];
        float *ds = fin(T.b, src, 8, "src"), *dd = fout(T.b, 8, "dst");
        OK(T.b->transpose(T.b, dd, ds, zero[z][0], zero[z][1], zero[z][2], zero[z][3]));
        fget(got, dd, 8);
        for (int i = 0; i < 8; i++) cr_expect(isnan(got[i]), "transpose with a zero size wrote");
    }
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_transpose(be, df, df, -1, 2, 2, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_transpose(be, df, df, 2, -1, 2, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_transpose(be, df, df, 2, 2, -1, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_transpose(be, df, df, 2, 2, 2, -1));
}

/* ---- cross-entropy ---- */

static void xent_on(elag_backend *be, const float *x, const int32_t *lab, int rows, int cols,
                    int grad, float *stats, float *dl)
{
    size_t n = (size_t)rows * cols;
    float *dx = fin(be, x, n, "logits"), *dst = fio(be, stats, 2, "stats");
    int32_t *dlab = iin(be, lab, (size_t)rows, "labels");
    float *ddl = grad ? fout(be, n, "dlogits") : NULL;
    OKB(be, be->xent(be, dx, dlab, rows, cols, ddl, dst));
    fget(stats, dst, 2);
    if (grad) fget(dl, ddl, n);
}

static void check_xent(int rows, int cols, int ties, uint64_t seed)
{
    size_t n = (size_t)rows * cols;
    float *x = hrnd(n, -6.0f, 6.0f, seed);
    int32_t *lab = ibuf(rows);
    for (int r = 0; r < rows; r++) {
        lab[r] = (int32_t)(elag_philox_u32(5, 6, r) % cols);
        if (ties && r % 5 == 0) /* ties: the first maximum decides the hit */
            for (int c = 0; c < cols; c++) x[(size_t)r * cols + c] = (float)(c % 3);
        if (ties && r % 5 == 1) x[(size_t)r * cols + lab[r]] = 10.0f; /* sure hits */
    }
    float s_ref[2] = {1.5f, 2.0f}, s_b[2] = {1.5f, 2.0f}, s_ng[2] = {1.5f, 2.0f};
    float *want = hbuf(n), *got = hbuf(n);
    xent_on(T.ref, x, lab, rows, cols, 1, s_ref, want);
    xent_on(T.b, x, lab, rows, cols, 1, s_b, got);
    xent_on(T.b, x, lab, rows, cols, 0, s_ng, NULL); /* no gradient wanted */
    char what[64];
    snprintf(what, sizeof what, "xent %dx%d", rows, cols);
    expect_close(what, &s_b[0], &s_ref[0], 1, sqrt(rows + 1.0));
    expect_close(what, &s_ng[0], &s_ref[0], 1, sqrt(rows + 1.0));
    cr_expect_eq(s_b[1], s_ref[1], "%s: %s hits %g, want %g", T.b->name, what, (double)s_b[1],
                 (double)s_ref[1]);
    cr_expect_eq(s_ng[1], s_ref[1]);
    expect_close(what, got, want, n, 1.0);
    /* the reference by hand: loss, hits, gradient (softmax - onehot) / rows */
    double loss = 1.5, hits = 2.0;
    double *hand = dbuf(n);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        int am = 0;
        for (int c = 1; c < cols; c++)
            if (xr[c] > xr[am]) am = c;
        double z = 0.0;
        for (int c = 0; c < cols; c++) z += exp((double)xr[c] - xr[am]);
        loss += xr[am] + log(z) - xr[lab[r]];
        hits += am == lab[r];
        for (int c = 0; c < cols; c++)
            hand[(size_t)r * cols + c] = (exp((double)xr[c] - xr[am]) / z - (c == lab[r])) / rows;
    }
    float fl = (float)loss, fh = (float)hits;
    expect_hand(what, &s_ref[0], &fl, 1, sqrt(rows + 1.0));
    cr_expect_eq(s_ref[1], fh, "cpu-ref hits %g, want %g", (double)s_ref[1], (double)fh);
    expect_hand(what, got, to_float(hand, n), n, 1.0);
    for (int r = 0; r < rows; r += 37) { /* each gradient row sums to 0, up to rounding */
        double sum = 0.0, l1 = 0.0;
        for (int c = 0; c < cols; c++) {
            sum += got[(size_t)r * cols + c];
            l1 += fabs(got[(size_t)r * cols + c]);
        }
        cr_expect(fabs(sum) <= T.hrel * l1, "%s: %s row %d of the gradient sums to %g (|row| %g)",
                  T.b->name, what, r, sum, l1);
    }
}

OPS_CASE(xent)
{
    /* by hand, 2x3: row 0 label 1, argmax 2 (miss); row 1 all equal, first max 0 == label 0 */
    const float logits[6] = {1, 2, 3, 0.5f, 0.5f, 0.5f};
    const int32_t labels[2] = {1, 0};
    double z0 = exp(1.0) + exp(2.0) + exp(3.0);
    float loss = (float)(10.0 + (log(z0) - 2.0) + log(3.0));
    float want_d[6] = {(float)(exp(1.0) / z0 / 2), (float)((exp(2.0) / z0 - 1) / 2),
                       (float)(exp(3.0) / z0 / 2), (float)((1.0 / 3 - 1) / 2),
                       (float)(1.0 / 3 / 2),       (float)(1.0 / 3 / 2)};
    float d[6], stats[2] = {10.0f, 5.0f}; /* stats accumulate */
    xent_on(T.b, logits, labels, 2, 3, 1, stats, d);
    expect_hand("xent 2x3 loss", &stats[0], &loss, 1, 1.0);
    cr_expect_eq(stats[1], 6.0f, "%s: correct %g", T.b->name, (double)stats[1]);
    expect_hand("xent 2x3 gradient", d, want_d, 6, 1.0);

    check_xent(257, 10, 0, 41);
    check_xent(4099, 10, 0, 42);
    check_xent(3, 1, 0, 43);
    check_xent(17, 1000, 0, 44);
    check_xent(67, 10, 1, 45);
    check_xent(1, 3, 1, 46);
    check_xent(5, 1001, 1, 47);
    check_xent(9, 33, 1, 48); /* one column past a warp */
    check_xent(300, 32, 1, 49);

    /* rows 0: stats unchanged, nothing written */
    float s0[2] = {3.0f, 4.0f}, none;
    int32_t nolab = 0;
    xent_on(T.b, &none, &nolab, 0, 5, 1, s0, &none);
    cr_expect(s0[0] == 3.0f && s0[1] == 4.0f, "xent with rows 0 changed the stats");
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_xent(be, df, di, -1, 3, df, df + 8));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_xent(be, df, di, 3, -1, df, df + 8));
    ALL_REFUSE(elag_be_xent(be, df, di, 2, 0, NULL, df + 8)); /* rows with no classes */
    /* a label outside [0, cols): the CPU backends check (the CUDA one does not read labels
     * back to the host; backend.h makes them the caller's promise) */
    if (T.b->kind != ELAG_DEVICE_CUDA) {
        const int32_t bad[2] = {1, 2};
        float st[2] = {0, 0};
        float *dl = fin(T.b, logits, 4, "logits"), *ds = fio(T.b, st, 2, "stats");
        int32_t *dlab = iin(T.b, bad, 2, "labels");
        cr_expect_eq(T.b->xent(T.b, dl, dlab, 2, 2, NULL, ds), ELAG_ERR_INPUT);
        cr_expect(strstr(elag_last_error(), "label 2") != NULL, "%s", elag_last_error());
    }
}

/* ---- gathers ---- */

OPS_CASE(gather)
{
    enum { SRC = 50, COLS = 13, ROWS = 37, NF = ROWS * COLS };
    float *src = hrnd(SRC * COLS, -1.0f, 1.0f, 51), *want = hbuf(NF), *got = hbuf(NF);
    int32_t *isrc = ibuf(SRC), *idx = ibuf(ROWS), *lwant = ibuf(ROWS), *lgot = ibuf(ROWS);
    for (int i = 0; i < SRC; i++) isrc[i] = 1000 + i * 3 - 7;
    for (int r = 0; r < ROWS; r++) idx[r] = (r * 7 + 5) % 29; /* with repeats */
    idx[ROWS - 1] = SRC - 1;
    elag_backend *bs[2] = {T.ref, T.b};
    float *outs[2] = {want, got};
    int32_t *louts[2] = {lwant, lgot};
    for (int k = 0; k < 2; k++) {
        elag_backend *be = bs[k];
        float *ds = fin(be, src, SRC * COLS, "src"), *dd = fout(be, NF, "dst");
        int32_t *di = iin(be, idx, ROWS, "idx"), *dls = iin(be, isrc, SRC, "labels");
        int32_t *dld = iout(be, ROWS, "dst labels");
        OKB(be, be->gather_rows(be, dd, ds, di, ROWS, COLS));
        OKB(be, be->gather_i32(be, dld, dls, di, ROWS));
        fget(outs[k], dd, NF);
        iget(louts[k], dld, ROWS);
        /* zero rows, zero cols: nothing written */
        OKB(be, be->gather_rows(be, fout(be, 0, "empty"), ds, di, 0, COLS));
        OKB(be, be->gather_rows(be, fout(be, 0, "empty"), ds, di, ROWS, 0));
        OKB(be, be->gather_i32(be, iout(be, 0, "empty"), dls, di, 0));
    }
    expect_identical("gather_rows", got, want, NF);
    expect_identical_i32("gather_i32", lgot, lwant, ROWS);
    for (int r = 0; r < ROWS; r++) {
        cr_expect_eq(memcmp(got + r * COLS, src + idx[r] * COLS, COLS * 4), 0, "gather_rows row %d",
                     r);
        cr_expect_eq(lgot[r], isrc[idx[r]], "gather_i32 row %d", r);
    }
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gather_rows(be, df, df, di, -1, 3));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gather_rows(be, df, df, di, 3, -1));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gather_i32(be, di, di, di, -1));
}
