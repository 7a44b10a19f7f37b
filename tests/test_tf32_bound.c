/*
 * The TF32 tolerances, checked on the CPU against an emulation of TF32 (support/tf32.h):
 * inputs cut to 10 mantissa bits (to nearest, and truncated), exact products, FP32 sums.
 *  - the emulation itself, bit for bit;
 *  - the per-output bound (elag_tf32_out_bound, what tests/test_cuda_sparse.c holds
 *    Blocked-ELL to) holds on odd shapes, mixed magnitudes and sums that cancel, is not
 *    loose by orders of magnitude, and fails a device that keeps fewer bits than TF32;
 *  - the FP32 tolerance the CUDA tests used before (ELAG_TOL_CUDA_*, 1e-4 relative) fails
 *    TF32 results on a real layer shape, so Blocked-ELL could not be held to it;
 *  - ELAG_INFER_VERIFY_TOL_TF32 (`elag infer --verify` on TF32): emulated TF32 MLPs, dense
 *    and 90% sparse, stay within a quarter of it and beyond ELAG_INFER_VERIFY_TOL.
 * No GPU needed: this is the arithmetic, not the device.
 */
#include "elag/infer.h"
#include "support/testutil.h"
#include "support/tf32.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* xorshift64*: fixed seeds, independent of the library under test */
static uint64_t rng_state;
static double urand(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53;
}

/* y(m, n) = W(m, k) x(k, n) as TF32 tensor cores would do it: each input cut to `bits`
 * mantissa bits (nearest or truncated), products exact, summed in FP32 in index order.
 * exact(m, n) in double and abs_sum(m, n) = sum |w| |x| alongside. */
static void emulated_product(const float *w, const float *x, int m, int k, int n, int bits,
                             int nearest, float *y, double *exact, double *abs_sum)
{
    for (int r = 0; r < m; r++)
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            double s = 0.0, a = 0.0;
            for (int c = 0; c < k; c++) {
                float wv = w[(size_t)r * k + c], xv = x[(size_t)c * n + j];
                float p = elag_test_round_mantissa(wv, bits, nearest) *
                          elag_test_round_mantissa(xv, bits, nearest); /* exact for bits <= 11 */
                acc += p;
                s += (double)wv * xv;
                a += fabs((double)wv * xv);
            }
            y[(size_t)r * n + j] = acc;
            exact[(size_t)r * n + j] = s;
            abs_sum[(size_t)r * n + j] = a;
        }
}

typedef struct bound_stats {
    int over;          /* outputs beyond the bound */
    double worst_frac; /* max |err| / bound */
    int fp32_tol_fail; /* outputs beyond ELAG_TOL_CUDA_ABS + ELAG_TOL_CUDA_REL |want| */
} bound_stats;

/* kind 0: uniform [-1, 1); 1: all positive (errors of truncation add up, no cancellation);
 * 2: magnitudes spread over 2^-8 .. 2^8 with random signs. */
static float draw(int kind)
{
    double u = urand();
    if (kind == 1) return (float)(0.5 + 0.5 * u);
    if (kind == 2) return (float)((urand() < 0.5 ? -1 : 1) * ldexp(1.0 + u, (int)(urand() * 17) - 8));
    return (float)(2.0 * u - 1.0);
}

static bound_stats check_shape(int m, int k, int n, int kind, int bits, int nearest,
                               uint64_t seed)
{
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    float *w = malloc(sizeof(float) * (size_t)m * k), *x = malloc(sizeof(float) * (size_t)k * n);
    float *y = malloc(sizeof(float) * (size_t)m * n);
    double *ex = malloc(sizeof(double) * (size_t)m * n), *as = malloc(sizeof(double) * (size_t)m * n);
    cr_assert(w && x && y && ex && as);
    for (size_t i = 0; i < (size_t)m * k; i++) w[i] = draw(kind);
    for (size_t i = 0; i < (size_t)k * n; i++) x[i] = draw(kind);
    emulated_product(w, x, m, k, n, bits, nearest, y, ex, as);
    bound_stats s = {0, 0.0, 0};
    for (size_t i = 0; i < (size_t)m * n; i++) {
        float want = (float)ex[i]; /* the CUDA test's reference: exact, rounded once */
        double err = fabs((double)y[i] - (double)want);
        double bound = elag_tf32_out_bound(k, as[i], want, 0.0);
        if (!(err <= bound)) s.over++;
        if (bound > 0 && err / bound > s.worst_frac) s.worst_frac = err / bound;
        if (!(err <= ELAG_TOL_CUDA_ABS + ELAG_TOL_CUDA_REL * fabs((double)want))) s.fp32_tol_fail++;
    }
    free(w), free(x), free(y), free(ex), free(as);
    return s;
}

TestSuite(tf32);

Test(tf32, emulation_keeps_ten_mantissa_bits)
{
    /* 1 + 2^-11 is half an ulp of TF32 at 1: ties to even (down); 1 + 3 * 2^-11 ties up */
    cr_expect_eq(elag_tf32_round_nearest(1.0f + 0x1p-11f), 1.0f);
    cr_expect_eq(elag_tf32_round_nearest(1.0f + 3 * 0x1p-11f), 1.0f + 0x1p-9f);
    cr_expect_eq(elag_tf32_round_nearest(1.0f + 0x1p-11f + 0x1p-20f), 1.0f + 0x1p-10f);
    cr_expect_eq(elag_tf32_truncate(1.0f + 0x1p-10f - 0x1p-23f), 1.0f);
    cr_expect_eq(elag_tf32_truncate(-1.0f - 0x1p-10f - 0x1p-23f), -1.0f - 0x1p-10f);
    cr_expect_eq(elag_tf32_round_nearest(2.0f - 0x1p-23f), 2.0f, "carry into the exponent");
    cr_expect_eq(elag_tf32_round_nearest(1.0f + 0x1p-10f), 1.0f + 0x1p-10f, "kept as it is");
    cr_expect(isinf(elag_tf32_truncate(INFINITY)) && isnan(elag_tf32_round_nearest(NAN)));
    /* the relative error of one conversion: below 2^-10 truncating, 2^-11 to nearest */
    rng_state = 5;
    double worst_t = 0, worst_n = 0;
    for (int i = 0; i < 100000; i++) {
        float v = draw(2);
        worst_t = fmax(worst_t, fabs((double)elag_tf32_truncate(v) - v) / fabs((double)v));
        worst_n = fmax(worst_n, fabs((double)elag_tf32_round_nearest(v) - v) / fabs((double)v));
    }
    cr_expect_lt(worst_t, ELAG_TF32_INPUT_REL);
    cr_expect_leq(worst_n, ELAG_TF32_INPUT_REL / 2);
    cr_expect_gt(worst_t, 0.9 * ELAG_TF32_INPUT_REL, "truncation comes close to 2^-10");
}

Test(tf32, bound_holds_for_emulated_products)
{
    /* odd shapes of the CUDA test, a BERT-base layer's k, and k = 4096 */
    const int shapes[][3] = {{7, 96, 40}, {33, 17, 65}, {130, 200, 37}, {1, 1, 1}, {16, 768, 16},
                             {8, 4096, 8}};
    double worst = 0.0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int kind = 0; kind < 3; kind++)
            for (int nearest = 0; nearest < 2; nearest++) {
                const int *sh = shapes[i];
                bound_stats s = check_shape(sh[0], sh[1], sh[2], kind, ELAG_TF32_MANTISSA_BITS,
                                            nearest, 100 + i * 7 + kind);
                cr_expect_eq(s.over, 0, "%dx%dx%d kind %d %s: %d outputs over the TF32 bound",
                             sh[0], sh[1], sh[2], kind, nearest ? "nearest" : "truncated", s.over);
                worst = fmax(worst, s.worst_frac);
            }
    /* not vacuous: truncated all-positive sums come within a factor 4 of it */
    cr_expect_gt(worst, 0.25, "largest error / bound %.3g", worst);
}

Test(tf32, fp32_tolerance_fails_tf32_results)
{
    /* BERT-base's k = 768 with signs that cancel: 1e-4 relative cannot hold for TF32 */
    bound_stats s = check_shape(64, 768, 32, 0, ELAG_TF32_MANTISSA_BITS, 1, 7);
    cr_expect_gt(s.fp32_tol_fail, 0, "TF32 to nearest met the FP32 tolerance everywhere");
    cr_expect_eq(s.over, 0);
    /* and inputs kept to 22 bits (near FP32) are well inside the bound */
    bound_stats f = check_shape(64, 768, 32, 0, 22, 1, 7);
    cr_expect_eq(f.over, 0);
}

Test(tf32, bound_fails_a_device_with_fewer_bits)
{
    /* inputs cut to bfloat16's 7 mantissa bits: the bound must catch it */
    bound_stats s = check_shape(16, 768, 16, 1, 7, 0, 11);
    cr_expect_gt(s.over, 0, "bfloat16-like inputs passed the TF32 bound (worst %.3g)",
                 s.worst_frac);
}

/* One emulated MLP forward, 784-300-100-10 with ReLUs, Kaiming-uniform weights pruned at
 * `sparsity`, inputs like normalised Fashion-MNIST pixels; logits (n, 10) in TF32 (inputs
 * of every product cut to 10 bits, FP32 sums, FP32 bias) and in double (the dense FP32
 * reference, exact). */
static void mlp_logits(double sparsity, int nearest, int n, uint64_t seed, float *tf32_out,
                       float *ref_out)
{
    static const int dims[] = {784, 300, 100, 10};
    rng_state = seed;
    float *a = malloc(sizeof(float) * 784 * (size_t)n);
    double *b = malloc(sizeof(double) * 784 * (size_t)n);
    cr_assert(a && b);
    for (size_t i = 0; i < 784 * (size_t)n; i++) b[i] = a[i] = (float)(3.0 * urand() - 0.8);
    for (int l = 0; l < 3; l++) {
        int in = dims[l], out = dims[l + 1];
        double lim = sqrt(6.0 / in) / sqrt(1.0 - sparsity); /* pruned: keep the variance */
        float *w = malloc(sizeof(float) * (size_t)in * out), *bias = malloc(sizeof(float) * out);
        float *a2 = malloc(sizeof(float) * (size_t)out * n);
        double *b2 = malloc(sizeof(double) * (size_t)out * n);
        cr_assert(w && bias && a2 && b2);
        for (size_t i = 0; i < (size_t)in * out; i++)
            w[i] = urand() < sparsity ? 0.0f : (float)((2.0 * urand() - 1.0) * lim);
        for (int o = 0; o < out; o++) bias[o] = (float)(0.2 * urand() - 0.1);
        for (int s = 0; s < n; s++) /* activations (n, features) here: one sample per row */
            for (int o = 0; o < out; o++) {
                float acc = 0.0f;
                double d = 0.0;
                for (int i = 0; i < in; i++) {
                    float wv = w[(size_t)o * in + i];
                    acc += elag_test_round_mantissa(wv, ELAG_TF32_MANTISSA_BITS, nearest) *
                           elag_test_round_mantissa(a[(size_t)s * in + i], ELAG_TF32_MANTISSA_BITS,
                                                    nearest);
                    d += (double)wv * b[(size_t)s * in + i];
                }
                acc += bias[o];
                d += bias[o];
                if (l < 2) acc = acc > 0.0f ? acc : 0.0f, d = d > 0.0 ? d : 0.0;
                a2[(size_t)s * out + o] = acc;
                b2[(size_t)s * out + o] = d;
            }
        free(a), free(b), free(w), free(bias);
        a = a2, b = b2;
    }
    for (size_t i = 0; i < 10 * (size_t)n; i++) tf32_out[i] = a[i], ref_out[i] = (float)b[i];
    free(a), free(b);
}

Test(tf32, verify_tolerance_has_room_for_tf32_networks)
{
    const int n = 128;
    float *t = malloc(sizeof(float) * 10 * n), *r = malloc(sizeof(float) * 10 * n);
    cr_assert(t && r);
    double worst = 0.0, least = INFINITY;
    for (int sp = 0; sp < 2; sp++)
        for (int nearest = 0; nearest < 2; nearest++)
            for (uint64_t seed = 1; seed <= 3; seed++) {
                mlp_logits(sp ? 0.9 : 0.0, nearest, n, seed, t, r);
                double e = elag_logits_max_rel_err(t, r, 10 * (size_t)n);
                worst = fmax(worst, e);
                least = fmin(least, e);
            }
    cr_expect_leq(worst, ELAG_INFER_VERIFY_TOL_TF32 / 4, "worst emulated TF32 error %.3g", worst);
    cr_expect_gt(least, ELAG_INFER_VERIFY_TOL, "a TF32 network met the FP32 tolerance (%.3g)",
                 least);
    free(t), free(r);
}
