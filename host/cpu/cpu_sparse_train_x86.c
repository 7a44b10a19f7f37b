/*
 * The x86 SDDMM kernels of the fast CPU sparse training path (cpu_sparse_train.h), compiled
 * with target attributes and called only after elag_cpu_best_isa said the CPU runs them.
 * out[q] = dot(dy[i][:], x[j][:]) for the kept entries (i, j) of one slice of row i (the
 * caller walks rows and column panels): with feature-major activations both rows are
 * contiguous (n floats). Four kept entries of one row share each load of dy's row (which
 * stays in L1 while the row's entries stream past), with two accumulators each: eight FMA
 * chains in flight.
 */
#include "cpu/cpu_sparse_train.h"

#if ELAG_CPU_X86
#include <immintrin.h>

#define ELAG_AVX512 __attribute__((target("avx512f")))
#define ELAG_AVX2   __attribute__((target("avx2,fma")))

/* ---------------------------------------------------------------- AVX-512 ---- */

ELAG_AVX512 void elag_cpu_sddmm_slice_avx512(const int32_t *idx, int cnt, const float *dr,
                                             const float *x, int n, float *out)
{
    const int tail = n % 16;
    const __mmask16 tm = (__mmask16)((1u << tail) - 1u);
    const int full = n - tail;
    {
        int q = 0;
        for (; q + 4 <= cnt; q += 4) {
            const float *x0 = x + (size_t)idx[q] * n, *x1 = x + (size_t)idx[q + 1] * n;
            const float *x2 = x + (size_t)idx[q + 2] * n;
            const float *x3 = x + (size_t)idx[q + 3] * n;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            int c = 0;
            for (; c + 32 <= full; c += 32) {
                const __m512 d = _mm512_loadu_ps(dr + c), e = _mm512_loadu_ps(dr + c + 16);
                a0 = _mm512_fmadd_ps(d, _mm512_loadu_ps(x0 + c), a0);
                a1 = _mm512_fmadd_ps(d, _mm512_loadu_ps(x1 + c), a1);
                a2 = _mm512_fmadd_ps(d, _mm512_loadu_ps(x2 + c), a2);
                a3 = _mm512_fmadd_ps(d, _mm512_loadu_ps(x3 + c), a3);
                b0 = _mm512_fmadd_ps(e, _mm512_loadu_ps(x0 + c + 16), b0);
                b1 = _mm512_fmadd_ps(e, _mm512_loadu_ps(x1 + c + 16), b1);
                b2 = _mm512_fmadd_ps(e, _mm512_loadu_ps(x2 + c + 16), b2);
                b3 = _mm512_fmadd_ps(e, _mm512_loadu_ps(x3 + c + 16), b3);
            }
            for (; c < full; c += 16) {
                const __m512 d = _mm512_loadu_ps(dr + c);
                a0 = _mm512_fmadd_ps(d, _mm512_loadu_ps(x0 + c), a0);
                a1 = _mm512_fmadd_ps(d, _mm512_loadu_ps(x1 + c), a1);
                a2 = _mm512_fmadd_ps(d, _mm512_loadu_ps(x2 + c), a2);
                a3 = _mm512_fmadd_ps(d, _mm512_loadu_ps(x3 + c), a3);
            }
            if (tail) {
                const __m512 d = _mm512_maskz_loadu_ps(tm, dr + c);
                b0 = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(tm, x0 + c), b0);
                b1 = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(tm, x1 + c), b1);
                b2 = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(tm, x2 + c), b2);
                b3 = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(tm, x3 + c), b3);
            }
            out[q] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
            out[q + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
            out[q + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
            out[q + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
        }
        for (; q < cnt; q++) {
            const float *x0 = x + (size_t)idx[q] * n;
            __m512 a0 = _mm512_setzero_ps(), b0 = a0;
            int c = 0;
            for (; c + 32 <= full; c += 32) {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(dr + c), _mm512_loadu_ps(x0 + c), a0);
                b0 =
                    _mm512_fmadd_ps(_mm512_loadu_ps(dr + c + 16), _mm512_loadu_ps(x0 + c + 16), b0);
            }
            for (; c < full; c += 16)
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(dr + c), _mm512_loadu_ps(x0 + c), a0);
            if (tail)
                b0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, dr + c),
                                     _mm512_maskz_loadu_ps(tm, x0 + c), b0);
            out[q] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
        }
    }
}

/* ---------------------------------------------------------------- AVX2 ---- */

ELAG_AVX2 static inline float hsum_256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

ELAG_AVX2 void elag_cpu_sddmm_slice_avx2(const int32_t *idx, int cnt, const float *dr,
                                         const float *x, int n, float *out)
{
    const int full = n - n % 8;
    {
        int q = 0;
        for (; q + 4 <= cnt; q += 4) {
            const float *xs[4];
            for (int k = 0; k < 4; k++) xs[k] = x + (size_t)idx[q + k] * n;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < full; c += 8) {
                const __m256 d = _mm256_loadu_ps(dr + c);
                a0 = _mm256_fmadd_ps(d, _mm256_loadu_ps(xs[0] + c), a0);
                a1 = _mm256_fmadd_ps(d, _mm256_loadu_ps(xs[1] + c), a1);
                a2 = _mm256_fmadd_ps(d, _mm256_loadu_ps(xs[2] + c), a2);
                a3 = _mm256_fmadd_ps(d, _mm256_loadu_ps(xs[3] + c), a3);
            }
            float s[4] = {hsum_256(a0), hsum_256(a1), hsum_256(a2), hsum_256(a3)};
            for (int c = full; c < n; c++)
                for (int k = 0; k < 4; k++) s[k] += dr[c] * xs[k][c];
            for (int k = 0; k < 4; k++) out[q + k] = s[k];
        }
        for (; q < cnt; q++) {
            const float *x0 = x + (size_t)idx[q] * n;
            __m256 a0 = _mm256_setzero_ps();
            for (int c = 0; c < full; c += 8)
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(dr + c), _mm256_loadu_ps(x0 + c), a0);
            float s = hsum_256(a0);
            for (int c = full; c < n; c++) s += dr[c] * x0[c];
            out[q] = s;
        }
    }
}

#else
typedef int elag_cpu_sparse_train_x86_unused; /* ISO C: a translation unit is not empty */
#endif
