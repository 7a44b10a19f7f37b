/*
 * A 16 x 16 float tile transposed in AVX-512 registers, for the fast CPU transpose's
 * inner == 1 case (cpu_layers.c): the (N, features) <-> (features, N) conversions at the
 * ends of every forward pass and the flatten of conv features. Sixteen row loads, four
 * rounds of shuffles (pairs of floats, pairs of pairs, 128-bit lanes twice), sixteen row
 * stores: every cache line read and written whole, where the scalar copy it replaces read
 * one float per line. Compiled with a target attribute; called only after
 * elag_cpu_best_isa() said AVX-512.
 */
#include "cpu/cpu_sparse.h" /* ELAG_CPU_X86 */

#if ELAG_CPU_X86
#include <immintrin.h>
#include <stddef.h>

void elag_cpu_transpose_tile16_avx512(const float *src, size_t lds, float *dst, size_t ldd);

/* dst[j][i] = src[i][j] for i, j < 16; src rows lds floats apart, dst rows ldd apart. */
__attribute__((target("avx512f"))) void elag_cpu_transpose_tile16_avx512(const float *src,
                                                                        size_t lds, float *dst,
                                                                        size_t ldd)
{
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (size_t)i * lds);
    /* floats of row pairs: t[2k] = (r[2k][0], r[2k+1][0], r[2k][1], r[2k+1][1], ...) per lane */
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    /* pairs of float pairs: 4 rows x 1 column per 128-bit lane */
    for (int k = 0; k < 4; k++) {
        const __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * k + 2]), d = _mm512_castps_pd(t[4 * k + 3]);
        r[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* 128-bit lanes: rows 0-3 with 4-7, and 8-11 with 12-15 (even lanes, then odd) */
    for (int k = 0; k < 4; k++) {
        t[k] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0x88);
        t[k + 4] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0xdd);
        t[k + 8] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0x88);
        t[k + 12] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0xdd);
    }
    /* and the two halves of the rows together: column j whole in r[j] */
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
    for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + (size_t)j * ldd, r[j]);
}
#endif
