/*
 * TF32 for the tests: the error bound a product computed on tensor cores in TF32 is held
 * to, and an emulation of TF32 on the CPU that tests/test_tf32_bound.c checks the bound
 * against. cuSPARSE runs Blocked-ELL SpMM on tensor cores only (NVIDIA/CUDALibrarySamples
 * #125), so tests/test_cuda_sparse.c compares Blocked-ELL products with this bound rather
 * than with the FP32 tolerances of testutil.h.
 *
 * Derivation. TF32 keeps FP32's 8-bit exponent and 10 of its 23 mantissa bits. Converting
 * an FP32 input x gives x (1 + d) with |d| <= 2^-11 when rounding to nearest and
 * |d| < 2^-10 when truncating; NVIDIA does not document which cuSPARSE's tensor-core path
 * does, so the bound takes truncation: u = ELAG_TF32_INPUT_REL = 2^-10. A product of two
 * converted inputs is then a b (1 + d_a)(1 + d_b), off by at most (2u + u^2) |a b| (the
 * product itself is exact: two 11-bit significands fit in FP32's 24). Tensor cores add
 * the products in FP32, in an order the library does not document, and their adders are
 * not documented to round to nearest, so each addition may lose up to v =
 * ELAG_TF32_ACC_REL = 2^-23 (truncation) instead of 2^-24. A sum of k terms in any order
 * is off by at most gamma_k = k v / (1 - k v) times the sum of the terms' magnitudes. So
 * for y = sum_{j<k} a_j b_j and S = sum_j |a_j| |b_j|:
 *
 *     |y_tf32 - y| <= ((2u + u^2)(1 + gamma_k) + gamma_k) S = elag_tf32_dot_rel(k) S
 *
 * For k = 4096 that is about 2^-9 + 2^-11 (2.4e-3) of S, and S exceeds |y| whenever terms
 * cancel: a fixed relative tolerance such as 1e-4 cannot hold (the test shows a shape where
 * it fails), and none can be derived without S, which the tests compute with the reference.
 * Adding a bias in FP32 after the product, and rounding the double reference to float, add
 * at most 2^-24 |y + b| and 2^-24 |y| more: ELAG_TF32_EPILOGUE_REL = 2^-22 covers both with
 * a factor 2 to spare.
 */
#ifndef ELAG_TESTS_SUPPORT_TF32_H
#define ELAG_TESTS_SUPPORT_TF32_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define ELAG_TF32_MANTISSA_BITS 10
#define ELAG_TF32_INPUT_REL 0x1p-10    /* one FP32 -> TF32 conversion (truncating; 2^-11 RN) */
#define ELAG_TF32_ACC_REL 0x1p-23      /* one FP32 addition in the accumulator (truncating) */
#define ELAG_TF32_EPILOGUE_REL 0x1p-22 /* FP32 bias add + the reference's rounding, x2 */

/* The bound above as a fraction of S = sum |a_j| |b_j|, for a dot product of k terms. */
static inline double elag_tf32_dot_rel(long k)
{
    const double u = ELAG_TF32_INPUT_REL, kv = (double)k * ELAG_TF32_ACC_REL;
    const double gamma = kv < 1.0 ? kv / (1.0 - kv) : INFINITY;
    return (2.0 * u + u * u) * (1.0 + gamma) + gamma;
}

/* Largest error allowed for one output: product bound plus epilogue. abs_sum = S, want =
 * the double reference (bias included), bias = the bias added (0 without). */
static inline double elag_tf32_out_bound(long k, double abs_sum, double want, double bias)
{
    return elag_tf32_dot_rel(k) * abs_sum + ELAG_TF32_EPILOGUE_REL * (fabs(want) + fabs(bias));
}

/* x with its mantissa cut to `bits` (< 23) bits, to nearest (ties to even) or by
 * truncation; infinities and NaN unchanged. TF32 is bits = 10. */
static inline float elag_test_round_mantissa(float x, int bits, int nearest)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) return x;
    const int drop = 23 - bits;
    const uint32_t mask = (1u << drop) - 1u;
    if (nearest) u += (1u << (drop - 1)) - 1u + ((u >> drop) & 1u); /* may carry into the
                                                                      * exponent: correct */
    u &= ~mask;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline float elag_tf32_round_nearest(float x)
{
    return elag_test_round_mantissa(x, ELAG_TF32_MANTISSA_BITS, 1);
}

static inline float elag_tf32_truncate(float x)
{
    return elag_test_round_mantissa(x, ELAG_TF32_MANTISSA_BITS, 0);
}

#endif /* ELAG_TESTS_SUPPORT_TF32_H */
