/*
 * The x86 kernels of the fast CPU sparse path (AVX-512F and AVX2+FMA intrinsics),
 * compiled with target attributes so the library still runs on any x86-64; the
 * dispatcher in cpu_sparse.c calls them only after checking the CPU (elag_cpu_best_isa).
 * Layouts and tiling are described in cpu_sparse.c.
 */
#include "cpu/cpu_sparse.h"

#if ELAG_CPU_X86
#include <immintrin.h>

#define TILE ELAG_SPMM_TILE
#define ELAG_AVX512 __attribute__((target("avx512f")))
#define ELAG_AVX2 __attribute__((target("avx2,fma")))
#define ELAG_INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------- AVX-512 ---- */

ELAG_INLINE ELAG_AVX512 __mmask16 mask_512(int rem)
{
    return rem >= 16 ? (__mmask16)0xFFFF : rem > 0 ? (__mmask16)((1u << rem) - 1u) : 0;
}

/* Packed CSR, one row's nonzeros of one panel: a TILE-float tile of NV vectors, the
 * nonzeros unrolled U ways into NV*U = 8 accumulators (8 FMA chains in flight). The tiles
 * are read with unaligned loads: sparse_mm packs them 64-byte aligned, but the tiled
 * products read the caller's buffers, which need only float alignment (an aligned load
 * faulted on a malloc'd buffer at -O0, where it is not folded into the FMA). */
ELAG_INLINE ELAG_AVX512 void csr_packed_row_512(const int32_t *idx, const float *val, int cnt,
                                                const float *xp, float *yr, int first, int last,
                                                float bias, int relu)
{
    enum { NV = TILE / 16, U = NV >= 8 ? 1 : 8 / NV };
    __m512 acc[NV * U];
    for (int i = 0; i < NV * U; i++) acc[i] = _mm512_setzero_ps();
    if (!first)
        for (int v = 0; v < NV; v++) acc[v] = _mm512_loadu_ps(yr + 16 * v);
    int p = 0;
    for (; p + U <= cnt; p += U)
        for (int u = 0; u < U; u++) {
            const float *xr = xp + (size_t)idx[p + u] * TILE;
            const __m512 vv = _mm512_set1_ps(val[p + u]);
            for (int v = 0; v < NV; v++)
                acc[u * NV + v] = _mm512_fmadd_ps(vv, _mm512_loadu_ps(xr + 16 * v), acc[u * NV + v]);
        }
    for (; p < cnt; p++) {
        const float *xr = xp + (size_t)idx[p] * TILE;
        const __m512 vv = _mm512_set1_ps(val[p]);
        for (int v = 0; v < NV; v++)
            acc[v] = _mm512_fmadd_ps(vv, _mm512_loadu_ps(xr + 16 * v), acc[v]);
    }
    for (int u = 1; u < U; u++)
        for (int v = 0; v < NV; v++) acc[v] = _mm512_add_ps(acc[v], acc[u * NV + v]);
    for (int v = 0; v < NV; v++) {
        __m512 t = acc[v];
        if (last) {
            t = _mm512_add_ps(t, _mm512_set1_ps(bias));
            if (relu) t = _mm512_max_ps(t, _mm512_setzero_ps()); /* max(NaN, 0) = 0 */
        }
        _mm512_storeu_ps(yr + 16 * v, t);
    }
}

ELAG_AVX512 void elag_cpu_csr_packed_avx512(const elag_sparse_dev *a, const float *xp, int r0,
                                            int r1, int n, int c0, const float *bias, int relu,
                                            float *y)
{
    const int np = a->npanels;
    for (int q = 0; q < np; q++)
        for (int r = r0; r < r1; r++) {
            const int32_t lo = elag_cpu_panel_start(a, r, q);
            const int32_t hi = elag_cpu_panel_start(a, r, q + 1);
            csr_packed_row_512(a->indices + lo, a->values + lo, hi - lo, xp,
                               y + (size_t)r * n + c0, q == 0, q == np - 1,
                               bias ? bias[r] : 0.0f, relu);
        }
}

/* Unpacked CSR, one tile (w <= 16*NV columns) of one row, masked loads straight from x;
 * NV*U accumulators. */
ELAG_INLINE ELAG_AVX512 void csr_tile_512(const int32_t *idx, const float *val, int cnt,
                                          const float *x, size_t n, int w, float bias, int relu,
                                          float *y, const int NV, const int U)
{
    __mmask16 m[2];
    __m512 acc[8];
    for (int v = 0; v < NV; v++) m[v] = mask_512(w - 16 * v);
    for (int i = 0; i < NV * U; i++) acc[i] = _mm512_setzero_ps();
    int p = 0;
    for (; p + U <= cnt; p += U)
        for (int u = 0; u < U; u++) {
            const float *xr = x + (size_t)idx[p + u] * n;
            const __m512 vv = _mm512_set1_ps(val[p + u]);
            for (int v = 0; v < NV; v++)
                acc[u * NV + v] = _mm512_fmadd_ps(vv, _mm512_maskz_loadu_ps(m[v], xr + 16 * v),
                                                  acc[u * NV + v]);
        }
    for (; p < cnt; p++) {
        const float *xr = x + (size_t)idx[p] * n;
        const __m512 vv = _mm512_set1_ps(val[p]);
        for (int v = 0; v < NV; v++)
            acc[v] = _mm512_fmadd_ps(vv, _mm512_maskz_loadu_ps(m[v], xr + 16 * v), acc[v]);
    }
    for (int u = 1; u < U; u++)
        for (int v = 0; v < NV; v++) acc[v] = _mm512_add_ps(acc[v], acc[u * NV + v]);
    for (int v = 0; v < NV; v++) {
        __m512 t = _mm512_add_ps(acc[v], _mm512_set1_ps(bias));
        if (relu) t = _mm512_max_ps(t, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(y + 16 * v, m[v], t);
    }
}

ELAG_AVX512 void elag_cpu_csr_rows_avx512(const elag_sparse_dev *a, int r0, int r1, const float *x,
                                          int n, int c_begin, const float *bias, int relu, float *y)
{
    if (n == 1 && c_begin == 0) { /* 8-wide gathers beat 16-wide ones on Sapphire Rapids */
        elag_cpu_csr_rows_avx2(a, r0, r1, x, n, c_begin, bias, relu, y); /* AVX-512F has AVX2 */
        return;
    }
    for (int c0 = c_begin; c0 < n; c0 += 32) { /* 32 columns: 2 or 4 vectors */
        const int w = n - c0 < 32 ? n - c0 : 32;
        for (int r = r0; r < r1; r++) {
            const int32_t lo = a->indptr[r], cnt = a->indptr[r + 1] - lo;
            const float bv = bias ? bias[r] : 0.0f;
            float *yr = y + (size_t)r * n + c0;
            if (w > 16)
                csr_tile_512(a->indices + lo, a->values + lo, cnt, x + c0, (size_t)n, w, bv, relu,
                             yr, 2, 4);
            else
                csr_tile_512(a->indices + lo, a->values + lo, cnt, x + c0, (size_t)n, w, bv, relu,
                             yr, 1, 8);
        }
    }
}

/* Narrow CSR (batch columns [c0, c0 + w), w < TILE, read straight from x, rows n floats
 * apart): one row's nonzeros of a group of panels; the row's w columns stay in NV
 * vectors (the last masked), nonzeros unrolled U ways. */
ELAG_INLINE ELAG_AVX512 void csr_narrow_row_512(const int32_t *idx, const float *val, int cnt,
                                                const float *x, size_t n, int w, float *yr,
                                                int first, int last, float bias, int relu,
                                                const int NV, const int U)
{
    __mmask16 m[8];
    __m512 acc[16];
    for (int v = 0; v < NV; v++) m[v] = mask_512(w - 16 * v);
    for (int i = 0; i < NV * U; i++) acc[i] = _mm512_setzero_ps();
    if (!first)
        for (int v = 0; v < NV; v++) acc[v] = _mm512_maskz_loadu_ps(m[v], yr + 16 * v);
    int p = 0;
    for (; p + U <= cnt; p += U)
        for (int u = 0; u < U; u++) {
            const float *xr = x + (size_t)idx[p + u] * n;
            const __m512 vv = _mm512_set1_ps(val[p + u]);
            for (int v = 0; v < NV; v++)
                acc[u * NV + v] = _mm512_fmadd_ps(vv, _mm512_maskz_loadu_ps(m[v], xr + 16 * v),
                                                  acc[u * NV + v]);
        }
    for (; p < cnt; p++) {
        const float *xr = x + (size_t)idx[p] * n;
        const __m512 vv = _mm512_set1_ps(val[p]);
        for (int v = 0; v < NV; v++)
            acc[v] = _mm512_fmadd_ps(vv, _mm512_maskz_loadu_ps(m[v], xr + 16 * v), acc[v]);
    }
    for (int u = 1; u < U; u++)
        for (int v = 0; v < NV; v++) acc[v] = _mm512_add_ps(acc[v], acc[u * NV + v]);
    for (int v = 0; v < NV; v++) {
        __m512 t = acc[v];
        if (last) {
            t = _mm512_add_ps(t, _mm512_set1_ps(bias));
            if (relu) t = _mm512_max_ps(t, _mm512_setzero_ps());
        }
        _mm512_mask_storeu_ps(yr + 16 * v, m[v], t);
    }
}

ELAG_AVX512 void elag_cpu_csr_narrow_avx512(const elag_sparse_dev *a, int r0, int r1,
                                            const float *x, int n, int c_begin, const float *bias,
                                            int relu, float *y)
{
    const int w = n - c_begin, np = a->npanels, k = elag_cpu_narrow_group(a, w);
    const int NV = (w + 15) / 16;
    if (k >= np) { /* one pass: the unpacked kernel, 32 columns at a time */
        elag_cpu_csr_rows_avx512(a, r0, r1, x, n, c_begin, bias, relu, y);
        return;
    }
    for (int q0 = 0; q0 < np; q0 += k) {
        const int q1 = q0 + k < np ? q0 + k : np;
        for (int r = r0; r < r1; r++) {
            const int32_t lo = elag_cpu_panel_start(a, r, q0);
            const int32_t cnt = elag_cpu_panel_start(a, r, q1) - lo;
            const float bv = bias ? bias[r] : 0.0f;
            const int32_t *ir = a->indices + lo;
            const float *vr = a->values + lo, *xc = x + c_begin;
            float *yr = y + (size_t)r * n + c_begin;
            const int first = q0 == 0, last = q1 == np;
            switch (NV) {
            case 1: csr_narrow_row_512(ir, vr, cnt, xc, n, w, yr, first, last, bv, relu, 1, 8); break;
            case 2: csr_narrow_row_512(ir, vr, cnt, xc, n, w, yr, first, last, bv, relu, 2, 4); break;
            case 3: csr_narrow_row_512(ir, vr, cnt, xc, n, w, yr, first, last, bv, relu, 3, 3); break;
            case 4: csr_narrow_row_512(ir, vr, cnt, xc, n, w, yr, first, last, bv, relu, 4, 2); break;
            case 5: csr_narrow_row_512(ir, vr, cnt, xc, n, w, yr, first, last, bv, relu, 5, 2); break;
            case 6: csr_narrow_row_512(ir, vr, cnt, xc, n, w, yr, first, last, bv, relu, 6, 2); break;
            case 7: csr_narrow_row_512(ir, vr, cnt, xc, n, w, yr, first, last, bv, relu, 7, 2); break;
            default: csr_narrow_row_512(ir, vr, cnt, xc, n, w, yr, first, last, bv, relu, 8, 2); break;
            }
        }
    }
}

/* Sixteen (eight) named accumulators: an array of vectors indexed in nested loops with
 * a `break` was stored to the stack on every iteration by gcc 12. */
#define ELAG_ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define ELAG_ROWS16(X) ELAG_ROWS8(X) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* Blocked-ELL: rows i0 .. i0+g-1 (g <= 16) of block row br times a strip of w <= 16
 * columns: each x vector loaded serves 16 rows, whose values in one block column are
 * contiguous in the transposed blocks (bell_t), so their broadcasts share a cache line.
 * Rows past g (past the block when B < 16) are computed from whatever follows (bell_t has
 * ELAG_BELL_SLACK floats at its end) and not stored. */
ELAG_INLINE ELAG_AVX512 void bell_tile_512(const elag_sparse_dev *a, int br, int i0, int g,
                                           const float *x, size_t n, int w, const float *bias,
                                           int relu, float *y)
{
    const int B = a->block, ell = a->ell_cols;
    const __mmask16 m = mask_512(w);
#define ELAG_ZERO(k) __m512 acc##k = _mm512_setzero_ps();
    ELAG_ROWS16(ELAG_ZERO)
#undef ELAG_ZERO
    for (int e = 0; e < ell; e++) {
        const int32_t bc = a->col_ind[(size_t)br * ell + e];
        if (bc < 0) break; /* padding only at the end (validated) */
        const int len = a->head.cols - bc * B < B ? a->head.cols - bc * B : B;
        const float *xb = x + (size_t)bc * B * n; /* (len, n) rows of x */
        const float *bt = a->bell_t + ((size_t)br * ell + e) * B * B + i0; /* [j][k] */
        for (int j = 0; j < len; j++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, xb + (size_t)j * n);
            const float *bj = bt + (size_t)j * B;
#define ELAG_FMA(k) acc##k = _mm512_fmadd_ps(_mm512_set1_ps(bj[k]), xv, acc##k);
            ELAG_ROWS16(ELAG_FMA)
#undef ELAG_FMA
        }
    }
    const __m512 zero = _mm512_setzero_ps();
#define ELAG_STORE(k)                                                                              \
    if (k < g) {                                                                                   \
        const int r = br * B + i0 + k;                                                             \
        __m512 t = _mm512_add_ps(acc##k, _mm512_set1_ps(bias ? bias[r] : 0.0f));                   \
        if (relu) t = _mm512_max_ps(t, zero);                                                      \
        _mm512_mask_storeu_ps(y + (size_t)r * n, m, t);                                            \
    }
    ELAG_ROWS16(ELAG_STORE)
#undef ELAG_STORE
}

ELAG_AVX512 void elag_cpu_bell_rows_avx512(const elag_sparse_dev *a, int r0, int r1,
                                           const float *x, int n, const float *bias, int relu,
                                           float *y)
{
    const int B = a->block;
    for (int br = r0 / B; br * B < r1; br++)
        for (int c0 = 0; c0 < n; c0 += 16) {
            const int w = n - c0 < 16 ? n - c0 : 16;
            for (int i0 = 0; i0 < B && br * B + i0 < r1; i0 += 16) {
                int g = B - i0 < 16 ? B - i0 : 16;
                if (r1 - (br * B + i0) < g) g = r1 - (br * B + i0);
                bell_tile_512(a, br, i0, g, x + c0, (size_t)n, w, bias, relu, y + c0);
            }
        }
}

/* ---------------------------------------------------------------- AVX2 ---- */

/* Lane mask for the first `rem` of 8 floats (maskload/maskstore never touch the rest). */
ELAG_INLINE ELAG_AVX2 __m256i mask_256(int rem)
{
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(rem < 0 ? 0 : rem), lanes);
}

/* As csr_packed_row_512 for 32 columns of a packed tile (xp and yr point at them; the
 * packed rows are TILE floats apart): 4 vectors of 8 floats, nonzeros unrolled 2 ways. */
ELAG_INLINE ELAG_AVX2 void csr_packed_row_256(const int32_t *idx, const float *val, int cnt,
                                              const float *xp, float *yr, int first, int last,
                                              float bias, int relu)
{
    __m256 acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
    if (!first)
        for (int v = 0; v < 4; v++) acc[v] = _mm256_loadu_ps(yr + 8 * v);
    int p = 0;
    for (; p + 2 <= cnt; p += 2)
        for (int u = 0; u < 2; u++) {
            const float *xr = xp + (size_t)idx[p + u] * TILE;
            const __m256 vv = _mm256_set1_ps(val[p + u]);
            for (int v = 0; v < 4; v++)
                acc[4 * u + v] = _mm256_fmadd_ps(vv, _mm256_loadu_ps(xr + 8 * v), acc[4 * u + v]);
        }
    for (; p < cnt; p++) {
        const float *xr = xp + (size_t)idx[p] * TILE;
        const __m256 vv = _mm256_set1_ps(val[p]);
        for (int v = 0; v < 4; v++)
            acc[v] = _mm256_fmadd_ps(vv, _mm256_loadu_ps(xr + 8 * v), acc[v]);
    }
    for (int v = 0; v < 4; v++) {
        __m256 t = _mm256_add_ps(acc[v], acc[4 + v]);
        if (last) {
            t = _mm256_add_ps(t, _mm256_set1_ps(bias));
            if (relu) t = _mm256_max_ps(t, _mm256_setzero_ps());
        }
        _mm256_storeu_ps(yr + 8 * v, t);
    }
}

ELAG_AVX2 void elag_cpu_csr_packed_avx2(const elag_sparse_dev *a, const float *xp, int r0, int r1,
                                        int n, int c0, const float *bias, int relu, float *y)
{
    /* 16 ymm registers hold a 32-column tile: walk each row once per 32 columns */
    const int np = a->npanels;
    for (int q = 0; q < np; q++)
        for (int r = r0; r < r1; r++) {
            const int32_t lo = elag_cpu_panel_start(a, r, q);
            const int32_t hi = elag_cpu_panel_start(a, r, q + 1);
            for (int c = 0; c < TILE; c += 32)
                csr_packed_row_256(a->indices + lo, a->values + lo, hi - lo, xp + c,
                                   y + (size_t)r * n + c0 + c, q == 0, q == np - 1,
                                   bias ? bias[r] : 0.0f, relu);
        }
}

/* As csr_tile_512 with 8-float vectors, w <= 8*NV. */
ELAG_INLINE ELAG_AVX2 void csr_tile_256(const int32_t *idx, const float *val, int cnt,
                                        const float *x, size_t n, int w, float bias, int relu,
                                        float *y, const int NV, const int U)
{
    __m256i m[4];
    __m256 acc[8];
    for (int v = 0; v < NV; v++) m[v] = mask_256(w - 8 * v);
    for (int i = 0; i < NV * U; i++) acc[i] = _mm256_setzero_ps();
    int p = 0;
    for (; p + U <= cnt; p += U)
        for (int u = 0; u < U; u++) {
            const float *xr = x + (size_t)idx[p + u] * n;
            const __m256 vv = _mm256_set1_ps(val[p + u]);
            for (int v = 0; v < NV; v++)
                acc[u * NV + v] = _mm256_fmadd_ps(vv, _mm256_maskload_ps(xr + 8 * v, m[v]),
                                                  acc[u * NV + v]);
        }
    for (; p < cnt; p++) {
        const float *xr = x + (size_t)idx[p] * n;
        const __m256 vv = _mm256_set1_ps(val[p]);
        for (int v = 0; v < NV; v++)
            acc[v] = _mm256_fmadd_ps(vv, _mm256_maskload_ps(xr + 8 * v, m[v]), acc[v]);
    }
    for (int u = 1; u < U; u++)
        for (int v = 0; v < NV; v++) acc[v] = _mm256_add_ps(acc[v], acc[u * NV + v]);
    for (int v = 0; v < NV; v++) {
        __m256 t = _mm256_add_ps(acc[v], _mm256_set1_ps(bias));
        if (relu) t = _mm256_max_ps(t, _mm256_setzero_ps());
        _mm256_maskstore_ps(y + 8 * v, m[v], t);
    }
}

/* As csr_narrow_row_512 with 8-float vectors, w <= 8*NV <= 32 columns at yr / x. */
ELAG_INLINE ELAG_AVX2 void csr_narrow_row_256(const int32_t *idx, const float *val, int cnt,
                                              const float *x, size_t n, int w, float *yr,
                                              int first, int last, float bias, int relu,
                                              const int NV, const int U)
{
    __m256i m[4];
    __m256 acc[8];
    for (int v = 0; v < NV; v++) m[v] = mask_256(w - 8 * v);
    for (int i = 0; i < NV * U; i++) acc[i] = _mm256_setzero_ps();
    if (!first)
        for (int v = 0; v < NV; v++) acc[v] = _mm256_maskload_ps(yr + 8 * v, m[v]);
    int p = 0;
    for (; p + U <= cnt; p += U)
        for (int u = 0; u < U; u++) {
            const float *xr = x + (size_t)idx[p + u] * n;
            const __m256 vv = _mm256_set1_ps(val[p + u]);
            for (int v = 0; v < NV; v++)
                acc[u * NV + v] = _mm256_fmadd_ps(vv, _mm256_maskload_ps(xr + 8 * v, m[v]),
                                                  acc[u * NV + v]);
        }
    for (; p < cnt; p++) {
        const float *xr = x + (size_t)idx[p] * n;
        const __m256 vv = _mm256_set1_ps(val[p]);
        for (int v = 0; v < NV; v++)
            acc[v] = _mm256_fmadd_ps(vv, _mm256_maskload_ps(xr + 8 * v, m[v]), acc[v]);
    }
    for (int u = 1; u < U; u++)
        for (int v = 0; v < NV; v++) acc[v] = _mm256_add_ps(acc[v], acc[u * NV + v]);
    for (int v = 0; v < NV; v++) {
        __m256 t = acc[v];
        if (last) {
            t = _mm256_add_ps(t, _mm256_set1_ps(bias));
            if (relu) t = _mm256_max_ps(t, _mm256_setzero_ps());
        }
        _mm256_maskstore_ps(yr + 8 * v, m[v], t);
    }
}

ELAG_AVX2 void elag_cpu_csr_narrow_avx2(const elag_sparse_dev *a, int r0, int r1, const float *x,
                                        int n, int c_begin, const float *bias, int relu, float *y)
{
    const int np = a->npanels, k = elag_cpu_narrow_group(a, n - c_begin);
    if (k >= np) { /* one pass: the unpacked kernel */
        elag_cpu_csr_rows_avx2(a, r0, r1, x, n, c_begin, bias, relu, y);
        return;
    }
    for (int q0 = 0; q0 < np; q0 += k) {
        const int q1 = q0 + k < np ? q0 + k : np;
        for (int r = r0; r < r1; r++) {
            const int32_t lo = elag_cpu_panel_start(a, r, q0);
            const int32_t cnt = elag_cpu_panel_start(a, r, q1) - lo;
            const float bv = bias ? bias[r] : 0.0f;
            const int32_t *ir = a->indices + lo;
            const float *vr = a->values + lo;
            const int first = q0 == 0, last = q1 == np;
            for (int c0 = c_begin; c0 < n; c0 += 32) { /* 16 ymm registers: 32 columns */
                const int w = n - c0 < 32 ? n - c0 : 32;
                float *yr = y + (size_t)r * n + c0;
                if (w > 16)
                    csr_narrow_row_256(ir, vr, cnt, x + c0, n, w, yr, first, last, bv, relu, 4, 2);
                else if (w > 8)
                    csr_narrow_row_256(ir, vr, cnt, x + c0, n, w, yr, first, last, bv, relu, 2, 4);
                else
                    csr_narrow_row_256(ir, vr, cnt, x + c0, n, w, yr, first, last, bv, relu, 1, 8);
            }
        }
    }
}

/* One column (n == 1): y[r] = sum_p values[p] * x[indices[p]], 8 nonzeros per gather
 * instead of one nonzero per (mostly masked) vector. */
ELAG_INLINE ELAG_AVX2 void csr_dot_256(const elag_sparse_dev *a, int r0, int r1, const float *x,
                                       const float *bias, int relu, float *y)
{
    for (int r = r0; r < r1; r++) {
        const int32_t lo = a->indptr[r], hi = a->indptr[r + 1];
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        int32_t p = lo;
        for (; p + 16 <= hi; p += 16) {
            const __m256i i0 = _mm256_loadu_si256((const __m256i *)(a->indices + p));
            const __m256i i1 = _mm256_loadu_si256((const __m256i *)(a->indices + p + 8));
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a->values + p),
                                   _mm256_i32gather_ps(x, i0, 4), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a->values + p + 8),
                                   _mm256_i32gather_ps(x, i1, 4), acc1);
        }
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(_mm256_add_ps(acc0, acc1)),
                              _mm256_extractf128_ps(_mm256_add_ps(acc0, acc1), 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float t = _mm_cvtss_f32(h);
        for (; p < hi; p++) t += a->values[p] * x[a->indices[p]];
        t += bias ? bias[r] : 0.0f;
        y[r] = relu && !(t > 0.0f) ? 0.0f : t;
    }
}

ELAG_AVX2 void elag_cpu_csr_rows_avx2(const elag_sparse_dev *a, int r0, int r1, const float *x,
                                      int n, int c_begin, const float *bias, int relu, float *y)
{
    if (n == 1 && c_begin == 0) {
        csr_dot_256(a, r0, r1, x, bias, relu, y);
        return;
    }
    for (int c0 = c_begin; c0 < n; c0 += 32) { /* 32 columns: 2 or 4 vectors */
        const int w = n - c0 < 32 ? n - c0 : 32;
        for (int r = r0; r < r1; r++) {
            const int32_t lo = a->indptr[r], cnt = a->indptr[r + 1] - lo;
            const float bv = bias ? bias[r] : 0.0f;
            float *yr = y + (size_t)r * n + c0;
            if (w > 16)
                csr_tile_256(a->indices + lo, a->values + lo, cnt, x + c0, (size_t)n, w, bv, relu,
                             yr, 4, 2);
            else if (w > 8)
                csr_tile_256(a->indices + lo, a->values + lo, cnt, x + c0, (size_t)n, w, bv, relu,
                             yr, 2, 4);
            else
                csr_tile_256(a->indices + lo, a->values + lo, cnt, x + c0, (size_t)n, w, bv, relu,
                             yr, 1, 8);
        }
    }
}

/* As bell_tile_512: 8 rows x 1 vector of 8 floats. */
ELAG_INLINE ELAG_AVX2 void bell_tile_256(const elag_sparse_dev *a, int br, int i0, int g,
                                         const float *x, size_t n, int w, const float *bias,
                                         int relu, float *y)
{
    const int B = a->block, ell = a->ell_cols;
    const __m256i m = mask_256(w);
#define ELAG_ZERO(k) __m256 acc##k = _mm256_setzero_ps();
    ELAG_ROWS8(ELAG_ZERO)
#undef ELAG_ZERO
    for (int e = 0; e < ell; e++) {
        const int32_t bc = a->col_ind[(size_t)br * ell + e];
        if (bc < 0) break;
        const int len = a->head.cols - bc * B < B ? a->head.cols - bc * B : B;
        const float *xb = x + (size_t)bc * B * n;
        const float *bt = a->bell_t + ((size_t)br * ell + e) * B * B + i0; /* [j][k] */
        for (int j = 0; j < len; j++) {
            const __m256 xv = _mm256_maskload_ps(xb + (size_t)j * n, m);
            const float *bj = bt + (size_t)j * B;
#define ELAG_FMA(k) acc##k = _mm256_fmadd_ps(_mm256_set1_ps(bj[k]), xv, acc##k);
            ELAG_ROWS8(ELAG_FMA)
#undef ELAG_FMA
        }
    }
    const __m256 zero = _mm256_setzero_ps();
#define ELAG_STORE(k)                                                                              \
    if (k < g) {                                                                                   \
        const int r = br * B + i0 + k;                                                             \
        __m256 t = _mm256_add_ps(acc##k, _mm256_set1_ps(bias ? bias[r] : 0.0f));                   \
        if (relu) t = _mm256_max_ps(t, zero);                                                      \
        _mm256_maskstore_ps(y + (size_t)r * n, m, t);                                              \
    }
    ELAG_ROWS8(ELAG_STORE)
#undef ELAG_STORE
}

ELAG_AVX2 void elag_cpu_bell_rows_avx2(const elag_sparse_dev *a, int r0, int r1, const float *x,
                                       int n, const float *bias, int relu, float *y)
{
    const int B = a->block;
    for (int br = r0 / B; br * B < r1; br++)
        for (int c0 = 0; c0 < n; c0 += 8) {
            const int w = n - c0 < 8 ? n - c0 : 8;
            for (int i0 = 0; i0 < B && br * B + i0 < r1; i0 += 8) {
                int g = B - i0 < 8 ? B - i0 : 8;
                if (r1 - (br * B + i0) < g) g = r1 - (br * B + i0);
                bell_tile_256(a, br, i0, g, x + c0, (size_t)n, w, bias, relu, y + c0);
            }
        }
}
#endif /* ELAG_CPU_X86 */
