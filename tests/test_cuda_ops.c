/*
 * The CUDA backend against the CPU reference: every op of the table (backend.h) runs on
 * "cuda:0" and on "cpu-ref" with the same random inputs on odd shapes, compared with the
 * named CUDA tolerances, or bit for bit where the backends promise identical results
 * (init_uniform, mask_select, count_nonzero, the elementwise ops). test_cuda_coverage
 * fails when an op of the table has no CUDA implementation or no test here.
 * Tests that need a GPU start with cr_skip_test("no CUDA device"), so a machine without
 * one shows visible skips; the checks of the error path and of the table's layout need no
 * device and always run.
 */
#include "backend/backend.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#ifdef ELAG_HAVE_CUDA

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG 100003     /* odd, prime: partial blocks and tiles everywhere */
#define HUGE_N 1000003 /* mask_select on a realistic layer size */
#define MAX_KEEP 512

static elag_backend *ref, *cu;
static void *host_keep[MAX_KEEP], *dev_keep[MAX_KEEP];
static int n_host, n_dev;

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define CLOSE(what, got, want, n)                                                                  \
    cr_expect_eq(elag_test_compare(what, got, want, n, ELAG_TOL_CUDA_ABS, ELAG_TOL_CUDA_REL), 0)
/* Bit-identical (memcmp); elag_test_compare prints where, when they differ. */
#define IDENTICAL(what, got, want, n)                                                              \
    cr_expect(memcmp(got, want, (n) * sizeof(float)) == 0 ||                                       \
                  (elag_test_compare(what, got, want, n, 0.0, 0.0), 0),                            \
              "%s: not bit-identical", what)
#define NEED_CUDA()                                                                                \
    do {                                                                                           \
        if (elag_cuda_count_devices() == 0) cr_skip_test("no CUDA device");                        \
        OK(elag_cuda_backend_init(0, &cu));                                                        \
    } while (0)

static void setup(void) { OK(elag_cpu_ref_backend_init(&ref)); }
static void teardown(void)
{
    for (int i = 0; i < n_dev; i++) cu->release(cu, dev_keep[i]);
    for (int i = 0; i < n_host; i++) free(host_keep[i]);
    elag_backend_free(cu), elag_backend_free(ref);
    n_dev = n_host = 0, cu = ref = NULL;
}

TestSuite(cuda, .init = setup, .fini = teardown);

/* Host buffer of n floats (or int32), zeroed, freed at teardown. */
static void *hbuf(size_t bytes)
{
    cr_assert_lt(n_host, MAX_KEEP);
    void *p = calloc(1, bytes ? bytes : 1);
    cr_assert_not_null(p);
    return host_keep[n_host++] = p;
}

static float *hrnd(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = hbuf(n * sizeof *x);
    elag_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

/* Device copy of a host buffer, released at teardown. */
static void *dcopy(const void *h, size_t bytes)
{
    void *d = NULL;
    cr_assert_lt(n_dev, MAX_KEEP);
    OK(cu->alloc(cu, bytes, &d));
    if (bytes) OK(cu->to_device(cu, d, h, bytes));
    return dev_keep[n_dev++] = d;
}

static void fetch(void *h, const void *d, size_t bytes) { OK(cu->to_host(cu, h, d, bytes)); }
/* A 0/1 mask with about `zero_frac` zeros. */
static float *hmask(size_t n, double zero_frac, uint64_t seed)
{
    float *m = hrnd(n, 0.0f, 1.0f, seed);
    for (size_t i = 0; i < n; i++) m[i] = m[i] < zero_frac ? 0.0f : 1.0f;
    return m;
}

/* ---- dense linear algebra ---- */

static void check_gemm(int ta, int tb, int m, int n, int k, float alpha, float beta, int pad)
{
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
    float *a = hrnd(na, -1.0f, 1.0f, 11), *b = hrnd(nb, -1.0f, 1.0f, 12);
    float *want = hrnd(nc, -1.0f, 1.0f, 13), *got = hbuf(nc * sizeof *got);
    float *da = dcopy(a, na * 4), *db = dcopy(b, nb * 4), *dc = dcopy(want, nc * 4);
    OK(ref->gemm(ref, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc));
    OK(cu->gemm(cu, ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc));
    fetch(got, dc, nc * 4);
    char what[96];
    snprintf(what, sizeof what, "gemm %dx%dx%d ta=%d tb=%d alpha=%g beta=%g pad=%d", m, k, n, ta,
             tb, (double)alpha, (double)beta, pad);
    CLOSE(what, got, want, nc);
}

static void gemm_all(int m, int n, int k)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(ta, tb, m, n, k, 1.0f, 0.0f, 0);
            check_gemm(ta, tb, m, n, k, 0.75f, -1.5f, 3);
        }
}

Test(cuda, gemm_7x96x40_all_transposes)
{
    NEED_CUDA();
    gemm_all(7, 40, 96);
}

Test(cuda, gemm_33x17x65_all_transposes)
{
    NEED_CUDA();
    gemm_all(33, 65, 17);
}

Test(cuda, gemm_edges_k0_beta0_nan_and_tf32_toggle)
{
    NEED_CUDA();
    check_gemm(0, 0, 5, 9, 0, 1.0f, 0.5f, 2); /* k = 0: C = beta C */
    check_gemm(1, 0, 5, 9, 0, 1.0f, 0.0f, 0);
    check_gemm(0, 1, 1, 1, 1, 2.0f, 0.0f, 0);
    /* beta == 0: C is written, never read, even when it holds NaN */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[4] = {NAN, NAN, NAN, NAN};
    float want[4] = {4, 5, 10, 11}, got[4];
    float *da = dcopy(a, sizeof a), *db = dcopy(b, sizeof b), *dc = dcopy(c, sizeof c);
    OK(cu->gemm(cu, 0, 0, 2, 2, 3, 1.0f, da, 3, db, 2, 0.0f, dc, 2));
    fetch(got, dc, sizeof got);
    CLOSE("gemm beta=0 over NaN", got, want, 4);
    /* TF32 on and off again: the setter returns the previous setting, FP32 parity is back */
    cr_expect_eq(elag_cuda_set_tf32(cu, 1), 0);
    cr_expect_eq(elag_cuda_set_tf32(cu, 0), 1);
    check_gemm(0, 1, 33, 65, 17, 1.0f, 0.0f, 0);
    cr_expect_lt(elag_cuda_set_tf32(ref, 1), 0, "set_tf32 on a CPU backend must fail");
}

/* ---- memory, fill, elementwise ---- */

Test(cuda, memory_roundtrip_and_fill)
{
    NEED_CUDA();
    float *x = hrnd(BIG, -3.0f, 3.0f, 21), *got = hbuf(BIG * 4), *want = hbuf(BIG * 4);
    void *d0 = NULL;
    OK(cu->alloc(cu, BIG * 4, &d0));
    fetch(got, d0, BIG * 4);
    IDENTICAL("alloc is zeroed", got, want, BIG);
    OK(cu->to_device(cu, d0, x, BIG * 4));
    float *d1 = dcopy(want, BIG * 4);
    OK(cu->copy(cu, d1, d0, BIG * 4));
    OK(cu->sync(cu));
    fetch(got, d1, BIG * 4);
    IDENTICAL("to_device, copy, to_host", got, x, BIG);
    OK(cu->fill(cu, d1, BIG - 2, -0.25f));
    OK(ref->fill(ref, x, BIG - 2, -0.25f));
    fetch(got, d1, BIG * 4);
    IDENTICAL("fill", got, x, BIG);
    cu->release(cu, d0);
    cu->release(cu, NULL);
    OK(cu->fill(cu, d1, 0, 1.0f)); /* n = 0 launches nothing */
}

Test(cuda, relu_forward_backward_in_place)
{
    NEED_CUDA();
    float *x = hrnd(BIG, -1.0f, 1.0f, 31), *dy = hrnd(BIG, -2.0f, 2.0f, 32);
    x[0] = -0.0f, x[1] = 0.0f, x[2] = INFINITY, x[3] = -INFINITY;
    float *y = hbuf(BIG * 4), *dx = hbuf(BIG * 4), *got = hbuf(BIG * 4);
    float *dyd = dcopy(dy, BIG * 4), *dyy = dcopy(x, BIG * 4);
    OK(ref->relu_forward(ref, y, x, BIG));
    OK(cu->relu_forward(cu, dyy, dyy, BIG)); /* in place */
    fetch(got, dyy, BIG * 4);
    IDENTICAL("relu_forward", got, y, BIG);
    OK(ref->relu_backward(ref, dx, dy, y, BIG));
    OK(cu->relu_backward(cu, dyd, dyd, dyy, BIG)); /* dx == dy */
    fetch(got, dyd, BIG * 4);
    IDENTICAL("relu_backward", got, dx, BIG);
}

Test(cuda, mask_apply_and_score_magnitude)
{
    NEED_CUDA();
    float *w = hrnd(BIG, -1.0f, 1.0f, 41), *mask = hmask(BIG, 0.5, 42);
    w[0] = -0.0f, w[1] = -INFINITY, w[2] = NAN, mask[1] = 0.0f, mask[2] = 0.0f;
    float *score = hbuf(BIG * 4), *got = hbuf(BIG * 4);
    float *dw = dcopy(w, BIG * 4), *dm = dcopy(mask, BIG * 4), *ds = dcopy(score, BIG * 4);
    OK(ref->score_magnitude(ref, score, w, mask, BIG));
    OK(cu->score_magnitude(cu, ds, dw, dm, BIG));
    fetch(got, ds, BIG * 4);
    IDENTICAL("score_magnitude masked", got, score, BIG);
    OK(ref->score_magnitude(ref, score, w, NULL, BIG));
    OK(cu->score_magnitude(cu, ds, dw, NULL, BIG));
    fetch(got, ds, BIG * 4);
    IDENTICAL("score_magnitude unmasked", got, score, BIG);
    OK(ref->mask_apply(ref, w, mask, BIG));
    OK(cu->mask_apply(cu, dw, dm, BIG));
    fetch(got, dw, BIG * 4);
    IDENTICAL("mask_apply", got, w, BIG);
}

/* ---- bias, xent, gather ---- */

Test(cuda, bias_add_and_grad_odd_shapes)
{
    NEED_CUDA();
    const int shapes[][2] = {{37, 129}, {1, 1}, {257, 10}, {0, 7}, {1000, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        float *y = hrnd(n, -1.0f, 1.0f, 51 + s), *bias = hrnd((size_t)cols, -1.0f, 1.0f, 61 + s);
        float *db = hrnd((size_t)cols, 5.0f, 6.0f, 71), *got = hbuf((n + cols) * 4);
        float *dy = dcopy(y, n * 4), *dbias = dcopy(bias, cols * 4u), *ddb = dcopy(db, cols * 4u);
        OK(ref->bias_add(ref, y, bias, rows, cols));
        OK(cu->bias_add(cu, dy, dbias, rows, cols));
        fetch(got, dy, n * 4);
        IDENTICAL("bias_add", got, y, n);
        OK(ref->bias_grad(ref, db, y, rows, cols)); /* overwrites db; rows 0 gives zeros */
        OK(cu->bias_grad(cu, ddb, dy, rows, cols));
        fetch(got, ddb, cols * 4u);
        CLOSE("bias_grad", got, db, (size_t)cols);
    }
}

static void check_xent(int rows, int cols, int with_grad, uint64_t seed)
{
    size_t n = (size_t)rows * cols;
    float *x = hrnd(n, -4.0f, 4.0f, seed);
    int32_t *lab = hbuf((size_t)rows * sizeof *lab);
    for (int r = 0; r < rows; r++) {
        lab[r] = (int32_t)((r * 7 + 3) % cols);
        if (r % 5 == 0) /* ties: the first maximum decides the hit */
            for (int c = 0; c < cols; c++) x[(size_t)r * cols + c] = (float)(c % 3);
        if (r % 5 == 1) x[(size_t)r * cols + lab[r]] = 10.0f; /* sure hits */
    }
    float stats[2] = {1.5f, 2.0f}, gstats[2], *dl = hbuf(n * 4), *got = hbuf(n * 4);
    float *dx = dcopy(x, n * 4), *dst = dcopy(stats, 8);
    int32_t *dlab = dcopy(lab, (size_t)rows * 4);
    float *ddl = with_grad ? dcopy(dl, n * 4) : NULL;
    OK(ref->xent(ref, x, lab, rows, cols, with_grad ? dl : NULL, stats));
    OK(cu->xent(cu, dx, dlab, rows, cols, ddl, dst));
    fetch(gstats, dst, 8);
    char what[64];
    snprintf(what, sizeof what, "xent %dx%d loss/hits", rows, cols);
    CLOSE(what, gstats, stats, 2);
    cr_expect_eq(gstats[1], stats[1], "%s: hits %g, want %g", what, (double)gstats[1],
                 (double)stats[1]);
    if (with_grad) {
        fetch(got, ddl, n * 4);
        CLOSE("xent dlogits", got, dl, n);
    }
}

Test(cuda, xent_ten_classes_with_ties)
{
    NEED_CUDA();
    check_xent(67, 10, 1, 81);
    check_xent(67, 10, 0, 82);
    check_xent(1, 3, 1, 83);
}

Test(cuda, xent_wide_rows)
{
    NEED_CUDA();
    check_xent(5, 1001, 1, 91);
    check_xent(9, 33, 1, 92); /* one column past a warp */
    check_xent(300, 32, 1, 93);
}

Test(cuda, gather_rows_and_labels)
{
    NEED_CUDA();
    enum { SRC = 50, COLS = 13, ROWS = 37, NF = ROWS * COLS };
    float *src = hrnd(SRC * COLS, -1.0f, 1.0f, 101), *want = hbuf(NF * 4), *got = hbuf(NF * 4);
    int32_t *lsrc = hbuf(SRC * 4), *idx = hbuf(ROWS * 4), *lgot = hbuf(ROWS * 4);
    int32_t *lwant = hbuf(ROWS * 4);
    for (int i = 0; i < SRC; i++) lsrc[i] = i * 3 - 7;
    for (int r = 0; r < ROWS; r++) idx[r] = (r * 7 + 5) % 29; /* with repeats */
    float *dsrc = dcopy(src, SRC * COLS * 4), *ddst = dcopy(want, NF * 4);
    int32_t *didx = dcopy(idx, ROWS * 4), *dls = dcopy(lsrc, SRC * 4), *dld = dcopy(lgot, ROWS * 4);
    OK(ref->gather_rows(ref, want, src, idx, ROWS, COLS));
    OK(cu->gather_rows(cu, ddst, dsrc, didx, ROWS, COLS));
    fetch(got, ddst, NF * 4);
    IDENTICAL("gather_rows", got, want, NF);
    OK(ref->gather_i32(ref, lwant, lsrc, idx, ROWS));
    OK(cu->gather_i32(cu, dld, dls, didx, ROWS));
    fetch(lgot, dld, ROWS * 4);
    cr_expect(memcmp(lgot, lwant, ROWS * 4) == 0, "gather_i32 differs");
}

/* ---- initialisation ---- */

Test(cuda, init_uniform_bit_identical)
{
    NEED_CUDA();
    const size_t sizes[] = {1, 3, 4, 5, 784 * 300 + 1, BIG};
    const uint64_t seeds[] = {0, 42, 0xDEADBEEFCAFEull};
    const uint64_t streams[] = {0x1000, 0x1003, (1ull << 40) + 7};
    const float bounds[][2] = {{-0.0874f, 0.0874f}, {0.0f, 1.0f}, {-3.0f, 0.5f}};
    float *got = hbuf(BIG * 4), *want = hbuf(BIG * 4), *d = dcopy(want, BIG * 4);
    for (size_t s = 0; s < 6; s++)
        for (int q = 0; q < 3; q++) {
            size_t n = sizes[s];
            float lo = bounds[q][0], hi = bounds[q][1];
            OK(ref->init_uniform(ref, want, n, lo, hi, seeds[q], streams[(s + q) % 3]));
            OK(cu->init_uniform(cu, d, n, lo, hi, seeds[q], streams[(s + q) % 3]));
            fetch(got, d, n * 4);
            char what[64];
            snprintf(what, sizeof what, "init_uniform n=%zu bounds %d", n, q);
            IDENTICAL(what, got, want, n);
        }
}

/* ---- optimizers ---- */

static size_t count_bit_diffs(const float *a, const float *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof *a) != 0;
    return d;
}

Test(cuda, sgd_step_masked_momentum_nesterov)
{
    NEED_CUDA();
    const size_t n = BIG;
    for (int variant = 0; variant < 3; variant++) {
        int nesterov = variant == 1;
        float *w = hrnd(n, -1.0f, 1.0f, 111), *v = hbuf(n * 4);
        float *mask = variant == 2 ? NULL : hmask(n, 0.9, 112 + variant);
        float *dw = dcopy(w, n * 4), *dv = dcopy(v, n * 4), *dm = mask ? dcopy(mask, n * 4) : NULL;
        for (int step = 0; step < 5; step++) {
            float *g = hrnd(n, -0.5f, 0.5f, 120 + step), *dg = dcopy(g, n * 4);
            OK(ref->sgd_step(ref, w, g, v, mask, n, 0.05f, 0.9f, 1e-4f, nesterov));
            OK(cu->sgd_step(cu, dw, dg, dv, dm, n, 0.05f, 0.9f, 1e-4f, nesterov));
        }
        float *gw = hbuf(n * 4), *gv = hbuf(n * 4);
        fetch(gw, dw, n * 4), fetch(gv, dv, n * 4);
        CLOSE("sgd w", gw, w, n);
        CLOSE("sgd v", gv, v, n);
        cr_log_info("sgd variant %d: %zu of %zu weights not bit-identical", variant,
                    count_bit_diffs(gw, w, n), n);
        for (size_t i = 0; mask && i < n; i++)
            if (mask[i] == 0.0f && (gw[i] != 0.0f || gv[i] != 0.0f))
                cr_expect(0, "sgd: pruned entry %zu is not zero (w %g v %g)", i, (double)gw[i],
                        (double)gv[i]);
    }
}

Test(cuda, adamw_step_masked_steps_1_to_6)
{
    NEED_CUDA();
    const size_t n = BIG;
    for (int masked = 0; masked < 2; masked++) {
        float *w = hrnd(n, -1.0f, 1.0f, 131), *m = hbuf(n * 4), *v = hbuf(n * 4);
        float *mask = masked ? hmask(n, 0.5, 132) : NULL;
        float *dw = dcopy(w, n * 4), *dm = dcopy(m, n * 4), *dv = dcopy(v, n * 4);
        float *dmask = mask ? dcopy(mask, n * 4) : NULL;
        for (int t = 1; t <= 6; t++) {
            float *g = hrnd(n, -0.5f, 0.5f, 140 + t), *dg = dcopy(g, n * 4);
            OK(ref->adamw_step(ref, w, g, m, v, mask, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t));
            OK(cu->adamw_step(cu, dw, dg, dm, dv, dmask, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t));
        }
        float *gw = hbuf(n * 4), *gm = hbuf(n * 4), *gv = hbuf(n * 4);
        fetch(gw, dw, n * 4), fetch(gm, dm, n * 4), fetch(gv, dv, n * 4);
        CLOSE("adamw w", gw, w, n);
        CLOSE("adamw m", gm, m, n);
        CLOSE("adamw v", gv, v, n);
        cr_log_info("adamw masked=%d: %zu of %zu weights not bit-identical", masked,
                    count_bit_diffs(gw, w, n), n);
        for (size_t i = 0; mask && i < n; i++)
            if (mask[i] == 0.0f && (gw[i] != 0.0f || gm[i] != 0.0f || gv[i] != 0.0f))
                cr_expect(0, "adamw: pruned entry %zu is not zero", i);
    }
}

/* ---- pruning: selection and counting ---- */

/* mask_select on both backends for each k; masks must be identical and hold k zeros. */
static void check_select(const float *score, size_t n, const size_t *ks, int nk, const char *tag)
{
    float *want = hbuf(n * 4), *got = hbuf(n * 4);
    float *ds = dcopy(score, n * 4), *dm = dcopy(want, n * 4);
    for (int j = 0; j < nk; j++) {
        size_t k = ks[j], zeros = 0;
        OK(ref->mask_select(ref, want, score, n, k));
        OK(cu->mask_select(cu, dm, ds, n, k));
        fetch(got, dm, n * 4);
        for (size_t i = 0; i < n; i++) zeros += got[i] == 0.0f;
        char what[96];
        snprintf(what, sizeof what, "mask_select %s n=%zu k=%zu", tag, n, k);
        cr_expect_eq(zeros, k, "%s: %zu zeros", what, zeros);
        IDENTICAL(what, got, want, n);
    }
}

Test(cuda, mask_select_random_scores)
{
    NEED_CUDA();
    const size_t n = BIG;
    float *s = hrnd(n, -1.0f, 1.0f, 151);
    const size_t ks[] = {0, 1, 2, n / 2, (size_t)(0.9 * n), n - 1, n};
    check_select(s, n, ks, 7, "random");
    const size_t ks_small[] = {0, 1, 3, 5};
    check_select(s, 5, ks_small, 4, "tiny");
}

Test(cuda, mask_select_ties_zeros_nan_inf)
{
    NEED_CUDA();
    const size_t n = BIG;
    float *s = hrnd(n, 0.0f, 1.0f, 161);
    const float vals[] = {-1.0f, 0.0f, -0.0f, 0.25f, 0.5f, INFINITY, NAN, -INFINITY};
    for (size_t i = 0; i < n; i++) s[i] = vals[(size_t)(s[i] * 7.999f)];
    const size_t ks[] = {0, 1, 12345, n / 2, (size_t)(0.9 * n), n - 3, n};
    check_select(s, n, ks, 7, "8 values");
    for (size_t i = 0; i < n; i++) s[i] = 0.125f; /* all equal: the lowest k indices go */
    const size_t ks2[] = {1, 777, n / 3, n - 1};
    check_select(s, n, ks2, 4, "all equal");
}

Test(cuda, mask_select_1e6_realistic)
{
    NEED_CUDA();
    const size_t n = HUGE_N;
    /* magnitude scores of a half-pruned layer: -1 for pruned, |w| for live, some exact ties */
    float *w = hrnd(n, -0.1f, 0.1f, 171), *mask = hmask(n, 0.5, 172), *s = hbuf(n * 4);
    for (size_t i = 0; i < n; i += 97) w[i] = 0.0625f;
    OK(ref->score_magnitude(ref, s, w, mask, n));
    const size_t ks[] = {0, n / 2, (size_t)(0.9 * n), n};
    check_select(s, n, ks, 4, "1e6");
}

Test(cuda, count_nonzero_sparsities)
{
    NEED_CUDA();
    const double sp[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    for (int j = 0; j < 5; j++) {
        float *x = hrnd(BIG, -1.0f, 1.0f, 181), *mask = hmask(BIG, sp[j], 182 + j);
        OK(ref->mask_apply(ref, x, mask, BIG));
        x[0] = NAN, x[1] = -0.0f; /* NaN counts as nonzero, -0 as zero */
        size_t want = 0, got = 1;
        float *dx = dcopy(x, BIG * 4);
        OK(ref->count_nonzero(ref, x, BIG, &want));
        OK(cu->count_nonzero(cu, dx, BIG, &got));
        cr_expect_eq(got, want, "count_nonzero sparsity %g: %zu, want %zu", sp[j], got, want);
    }
    size_t got = 1;
    OK(cu->count_nonzero(cu, NULL, 0, &got));
    cr_expect_eq(got, 0);
}

/* ---- errors ---- */

Test(cuda, errors_oom_and_bad_arguments)
{
    NEED_CUDA();
    void *p = NULL;
    elag_status st = cu->alloc(cu, (size_t)1 << 52, &p); /* 4 PiB */
    cr_expect_eq(st, ELAG_ERR_NOMEM, "%s", elag_last_error());
    cr_expect(strncmp(elag_last_error(), "CUDA out of memory: requested ", 30) == 0, "%s",
              elag_last_error());
    cr_expect_null(p);
    float one = 1.0f, *d = dcopy(&one, 4); /* the backend still works after an OOM */
    OK(cu->fill(cu, d, 1, 2.0f));
    fetch(&one, d, 4);
    cr_expect_eq(one, 2.0f);
    cr_expect_eq(cu->gemm(cu, 0, 0, 2, 2, 2, 1.0f, d, 1, d, 2, 0.0f, d, 2), ELAG_ERR_INTERNAL);
    cr_expect_eq(cu->mask_select(cu, d, d, 1, 2), ELAG_ERR_INTERNAL);
    cr_expect_eq(cu->adamw_step(cu, d, d, d, d, NULL, 1, 0.1f, 0.9f, 0.9f, 0.1f, 0.0f, 0),
                 ELAG_ERR_INTERNAL);
}

/* Needs no device: the message format of the generic check, for each library. (Enum
 * constants are ints in C, so they go through variables of their status type, as a call's
 * result would.) */
Test(cuda, check_messages_name_call_and_place)
{
    cudaError_t e = cudaErrorInvalidValue;
    cr_expect_eq(ELAG_CUDA_STATUS(e, "cudaFoo(x)"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "cuda: cudaFoo(x) failed: cudaErrorInvalidValue") != NULL,
              "%s", elag_last_error());
    cr_expect(strstr(elag_last_error(), "test_cuda_ops.c:") != NULL, "%s", elag_last_error());
    cublasStatus_t s = CUBLAS_STATUS_INVALID_VALUE;
    cr_expect_eq(ELAG_CUDA_STATUS(s, "cublasBar()"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "CUBLAS_STATUS_INVALID_VALUE") != NULL, "%s",
              elag_last_error());
    cusparseStatus_t z = CUSPARSE_STATUS_NOT_SUPPORTED;
    cr_expect_eq(ELAG_CUDA_STATUS(z, "cusparseBaz()"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "CUSPARSE_STATUS_NOT_SUPPORTED") != NULL, "%s",
              elag_last_error());
    e = cudaSuccess;
    cr_expect_eq(ELAG_CUDA_STATUS(e, "ok()"), ELAG_OK);
}

/* Needs no device: no GPU means 0 devices and a clear ELAG_ERR_NO_DEVICE, no crash. */
Test(cuda, no_device_is_a_clean_error)
{
    int n = elag_cuda_count_devices();
    cr_expect_geq(n, 0);
    elag_backend *b = NULL;
    elag_status st = elag_cuda_backend_init(n, &b); /* one past the last device */
    cr_expect_eq(st, ELAG_ERR_NO_DEVICE, "%s", elag_last_error());
    cr_expect_null(b);
    cr_expect(strstr(elag_last_error(), "CUDA device") != NULL, "%s", elag_last_error());
}

/* ---- coverage ---- */

typedef void (*elag_test_fn)(void);
#define FIRST_OP offsetof(elag_backend, alloc) /* every member from alloc on is an op */
#define N_OPS ((sizeof(elag_backend) - FIRST_OP) / sizeof(elag_test_fn))
#define COVER(op, test) {offsetof(elag_backend, op), #op, #test}

/* Which test above checks each op. Adding an op to backend.h without a line here (and a
 * test) fails test_cuda_coverage_list. */
static const struct {
    size_t off;
    const char *op, *test;
} covered[] = {
    COVER(alloc, memory_roundtrip_and_fill),
    COVER(release, memory_roundtrip_and_fill),
    COVER(to_device, memory_roundtrip_and_fill),
    COVER(to_host, memory_roundtrip_and_fill),
    COVER(copy, memory_roundtrip_and_fill),
    COVER(fill, memory_roundtrip_and_fill),
    COVER(sync, memory_roundtrip_and_fill),
    COVER(destroy, every test: teardown),
    COVER(gemm, gemm_7x96x40_all_transposes),
    COVER(bias_add, bias_add_and_grad_odd_shapes),
    COVER(bias_grad, bias_add_and_grad_odd_shapes),
    COVER(relu_forward, relu_forward_backward_in_place),
    COVER(relu_backward, relu_forward_backward_in_place),
    COVER(xent, xent_ten_classes_with_ties),
    COVER(gather_rows, gather_rows_and_labels),
    COVER(gather_i32, gather_rows_and_labels),
    COVER(init_uniform, init_uniform_bit_identical),
    COVER(sgd_step, sgd_step_masked_momentum_nesterov),
    COVER(adamw_step, adamw_step_masked_steps_1_to_6),
    COVER(mask_apply, mask_apply_and_score_magnitude),
    COVER(score_magnitude, mask_apply_and_score_magnitude),
    COVER(mask_select, mask_select_ties_zeros_nan_inf),
    COVER(count_nonzero, count_nonzero_sparsities),
    /* sparse ops: their parity tests are in tests/test_cuda_sparse.c */
    COVER(sparse_create, cuda_sparse/csr_each_alg_odd_shapes),
    COVER(sparse_destroy, cuda_sparse/csr_each_alg_odd_shapes),
    COVER(sparse_mm, cuda_sparse/bell_16_and_32_padded_shapes),
    COVER(bias_relu_rows, cuda_sparse/bias_relu_rows_odd_shapes),
};
#define N_COVERED (sizeof covered / sizeof *covered)

static const char *covered_name(size_t off)
{
    for (size_t j = 0; j < N_COVERED; j++)
        if (covered[j].off == off) return covered[j].op;
    return NULL;
}

/* Needs no device: the list above against the layout of elag_backend. */
Test(cuda, test_cuda_coverage_list)
{
    cr_expect_eq((sizeof(elag_backend) - FIRST_OP) % sizeof(elag_test_fn), 0,
                 "elag_backend has a non-pointer member after alloc");
    cr_expect_eq(N_COVERED, N_OPS,
                 "backend.h has %zu ops but the CUDA coverage list names %zu: add the new op "
                 "to `covered` with a parity test",
                 (size_t)N_OPS, (size_t)N_COVERED);
    for (size_t j = 0; j < N_COVERED; j++) {
        cr_expect_geq(covered[j].off, FIRST_OP, "%s is not an op", covered[j].op);
        cr_expect_eq((covered[j].off - FIRST_OP) % sizeof(elag_test_fn), 0);
        for (size_t i = 0; i < j; i++)
            cr_expect_neq(covered[i].off, covered[j].off, "%s listed twice", covered[j].op);
    }
}

/* Every function pointer of the CUDA table is set, and each is in the coverage list. */
Test(cuda, test_cuda_coverage)
{
    NEED_CUDA();
    for (size_t off = FIRST_OP; off + sizeof(elag_test_fn) <= sizeof(elag_backend);
         off += sizeof(elag_test_fn)) {
        elag_test_fn f;
        memcpy(&f, (const char *)cu + off, sizeof f);
        const char *name = covered_name(off);
        cr_expect_not_null(name, "op at offset %zu has no CUDA parity test", off);
        cr_expect(f != NULL, "cuda backend lacks op %s (offset %zu)", name ? name : "?", off);
    }
    cr_expect_eq(cu->kind, ELAG_DEVICE_CUDA);
    cr_expect_str_eq(cu->name, "cuda:0");
    cr_log_info("device: %s", elag_cuda_device_name(cu));
}

#else /* !ELAG_HAVE_CUDA */

Test(cuda, built_without_cuda) { cr_skip_test("built without CUDA"); }

#endif
