/*
 * Direct convolution on the fast CPU backend (stride 1, backend.h's conv_* ops), with
 * AVX-512 kernels and no im2col columns.
 *
 * Why: conv2d by im2col + sgemm writes kh*kw copies of its input (9x for 3x3), which
 * OpenBLAS then packs a second time, and its products have few rows (the output channels,
 * 32 or 64 in small CNNs), so the copies cost as much as the arithmetic. Here the input is
 * copied once, zero-padded, and every tap is an offset into it:
 *   xp (C, nb, Hp, Wp) with Hp = H + 2ph, Wp = W + 2pw
 *   y[o][n][v][u0..u0+15] = sum over c, tap t = (i, j) of w[o][c][t] * xp[c][n][v+i][u0+j..]
 * so the inner loop loads 16 consecutive inputs, broadcasts one weight per output channel
 * and accumulates a tile of 3 position vectors x 8 output channels in 24 registers.
 * A row of ow outputs takes ceil(ow / 16) vectors, the last one masked on store.
 *
 * The gradient for x is the same loop: dx is the convolution of dy zero-padded by
 * (kh-1-ph, kw-1-pw) with the kernel flipped and its channel axes swapped. The gradient for
 * w sums over positions instead: a tile of 3 output channels x up to 9 taps of one input
 * channel accumulates dy * shifted x over a block of samples, then reduces each register
 * to its weight. Masked loads (zero lanes past a row's end) keep the next row's inputs out.
 *
 * Work is split over threads by output position (forward, data) or by (output channels,
 * input channel) tile (filter), so each output entry is one thread's sum in a fixed order:
 * results do not depend on the thread count. Without AVX-512 the ops are not offered
 * (supports() says no) and conv2d runs im2col + gemm.
 */
#include "cpu/cpu_internal.h"
#include "cpu/cpu_sparse.h" /* ELAG_CPU_X86, elag_cpu_best_isa */

#include "core/check.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONV_MAX_TAPS 256 /* kernels up to 16x16: the tap offsets live on the stack */
#define CONV_FWD_PB   3   /* forward tile: position vectors ... */
#define CONV_FWD_OB   8   /* ... x output channels */
#define CONV_DW_OB    3   /* filter tile: output channels ... */
#define CONV_DW_TB    9   /* ... x taps of one input channel */
#define CONV_DW_BLOCK 4   /* samples per filter block: its inputs and dy stay in L2 */

int elag_cpu_conv_direct_ok(const elag_window *g, char *why, size_t why_len)
{
    const char *no = NULL;
    if (elag_cpu_best_isa() != ELAG_CPU_ISA_AVX512)
        no = "the fast CPU backend's direct convolution needs AVX-512F";
    else if (g != NULL && (g->sh != 1 || g->sw != 1))
        no = "the direct convolution takes stride 1 only";
    else if (g != NULL && (g->ph >= g->kh || g->pw >= g->kw))
        no = "the direct convolution needs padding below the kernel size";
    else if (g != NULL && (long)g->kh * g->kw > CONV_MAX_TAPS)
        no = "the direct convolution takes kernels of at most 256 taps";
    if (no == NULL) return 1;
    if (why && why_len) snprintf(why, why_len, "%s", no);
    return 0;
}

#if ELAG_CPU_X86
#include <immintrin.h>

/* Samples [n0, n0+nb) of t (ch, N, rows, cols) into dst (ch, nb, rows + 2pt, cols + 2pl),
 * zero-padded by pt rows and pl columns on each side, then 16 zero floats of slack (the
 * last vector of a plane may read past it). */
static void pad_slice(elag_backend *b, float *dst, const float *t, int ch, int N, int n0, int nb,
                      int rows, int cols, int pt, int pl)
{
    const int Hp = rows + 2 * pt, Wp = cols + 2 * pl;
    const long planes = (long)ch * nb;
    const size_t total = (size_t)planes * Hp * Wp;
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN) schedule(static)
    for (long p = 0; p < planes; p++) {
        const long c = p / nb, n = p % nb;
        const float *src = t + ((size_t)c * N + n0 + n) * rows * cols;
        float *d = dst + (size_t)p * Hp * Wp;
        memset(d, 0, sizeof(float) * (size_t)pt * Wp);
        for (int r = 0; r < rows; r++) {
            float *row = d + (size_t)(r + pt) * Wp;
            memset(row, 0, sizeof(float) * (size_t)pl);
            memcpy(row + pl, src + (size_t)r * cols, sizeof(float) * (size_t)cols);
            memset(row + pl + cols, 0, sizeof(float) * (size_t)pl);
        }
        memset(d + (size_t)(rows + pt) * Wp, 0, sizeof(float) * (size_t)pt * Wp);
    }
    memset(dst + total, 0, 16 * sizeof(float));
}

#define ELAG_AVX512 __attribute__((target("avx512f")))
#define INLINE      static inline __attribute__((always_inline))
#define UNROLL      _Pragma("GCC unroll 16")

/* The geometry of one direct pass: inputs xp (cin, nb, Hp, Wp) padded, weights
 * wt (cin * taps, cout) with wt[(c*taps + t)*cout + o], outputs (cout, ., oh, ow) at
 * out + o*ostride + n*oh*ow + v*ow + u. */
typedef struct conv_pass {
    const float *xp;
    size_t plane; /* nb * Hp * Wp: one input channel */
    int Hp, Wp, cin, cout, taps, nb, oh, ow, nv;
    int toff[CONV_MAX_TAPS]; /* tap t = (i, j) at offset i*Wp + j */
    const float *wt;
    float *out;
    size_t ostride;
} conv_pass;

/* One forward tile: PB position vectors (input offsets in[], output offsets at[], store
 * masks mk[]) x OB output channels from o0. */
#define FWD_TILE(PB, OB)                                                                           \
    INLINE ELAG_AVX512 void fwd_tile_##PB##_##OB(const conv_pass *p, int o0, const long *in,       \
                                                 const long *at, const __mmask16 *mk)              \
    {                                                                                              \
        __m512 acc[PB][OB];                                                                        \
        UNROLL for (int q = 0; q < PB; q++) UNROLL for (int k = 0; k < OB; k++) acc[q][k] =        \
            _mm512_setzero_ps();                                                                   \
        for (int c = 0; c < p->cin; c++) {                                                         \
            const float *xc = p->xp + (size_t)c * p->plane;                                        \
            const float *wc = p->wt + (size_t)c * p->taps * p->cout + o0;                          \
            for (int t = 0; t < p->taps; t++) {                                                    \
                __m512 a[PB];                                                                      \
                UNROLL for (int q = 0; q < PB; q++) a[q] =                                         \
                    _mm512_loadu_ps(xc + in[q] + p->toff[t]);                                      \
                const float *wr = wc + (size_t)t * p->cout;                                        \
                UNROLL for (int k = 0; k < OB; k++)                                                \
                {                                                                                  \
                    __m512 bk = _mm512_set1_ps(wr[k]);                                             \
                    UNROLL for (int q = 0; q < PB; q++) acc[q][k] =                                \
                        _mm512_fmadd_ps(a[q], bk, acc[q][k]);                                      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int q = 0; q < PB; q++) UNROLL for (int k = 0; k < OB; k++)                    \
            _mm512_mask_storeu_ps(p->out + (size_t)(o0 + k) * p->ostride + at[q], mk[q],           \
                                  acc[q][k]);                                                      \
    }

#define FWD_TILES(PB) FWD_TILE(PB, 8) FWD_TILE(PB, 4) FWD_TILE(PB, 2) FWD_TILE(PB, 1)
FWD_TILES(3)
FWD_TILES(2)
FWD_TILES(1)

/* All output channels for PB position vectors: tiles of 8, then 4, 2, 1. */
#define FWD_COLUMN(PB)                                                                             \
    static ELAG_AVX512 void fwd_column_##PB(const conv_pass *p, const long *in, const long *at,    \
                                            const __mmask16 *mk)                                   \
    {                                                                                              \
        int o = 0;                                                                                 \
        for (; o + 8 <= p->cout; o += 8) fwd_tile_##PB##_8(p, o, in, at, mk);                      \
        if (o + 4 <= p->cout) fwd_tile_##PB##_4(p, o, in, at, mk), o += 4;                         \
        if (o + 2 <= p->cout) fwd_tile_##PB##_2(p, o, in, at, mk), o += 2;                         \
        if (o < p->cout) fwd_tile_##PB##_1(p, o, in, at, mk);                                      \
    }
FWD_COLUMN(3)
FWD_COLUMN(2)
FWD_COLUMN(1)

/* Position vector v of the pass: sample n, output row r, columns [16 xv, 16 xv + 16). */
static inline void position(const conv_pass *p, long v, long *in, long *at, __mmask16 *mk)
{
    const int xv = (int)(v % p->nv);
    const long r = v / p->nv;
    const int row = (int)(r % p->oh);
    const long n = r / p->oh;
    const int lanes = p->ow - 16 * xv;
    *in = n * p->Hp * p->Wp + (long)row * p->Wp + 16L * xv;
    *at = (n * p->oh + row) * p->ow + 16L * xv;
    *mk = lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1u);
}

static ELAG_AVX512 void direct_pass(elag_backend *b, const conv_pass *p)
{
    const long nvec = (long)p->nb * p->oh * p->nv;
    const long blocks = (nvec + CONV_FWD_PB - 1) / CONV_FWD_PB;
    const double flops = (double)nvec * p->cout * p->cin * p->taps;
#pragma omp parallel for num_threads(b->threads) if (flops >= 1e6) schedule(static)
    for (long blk = 0; blk < blocks; blk++) {
        long in[CONV_FWD_PB], at[CONV_FWD_PB];
        __mmask16 mk[CONV_FWD_PB];
        const long v0 = blk * CONV_FWD_PB;
        const int pb = nvec - v0 < CONV_FWD_PB ? (int)(nvec - v0) : CONV_FWD_PB;
        for (int q = 0; q < pb; q++) position(p, v0 + q, &in[q], &at[q], &mk[q]);
        if (pb == 3)
            fwd_column_3(p, in, at, mk);
        else if (pb == 2)
            fwd_column_2(p, in, at, mk);
        else
            fwd_column_1(p, in, at, mk);
    }
}

/* One filter tile: OB output channels (dy rows dy0 + k*dstride) x TB taps (toff[]) of the
 * input channel at xc, over nvec position vectors (input offsets xo[], dy offsets yo[],
 * masks mk[]); each sum is added to dw[k * dwstride + t]. */
#define DW_TILE(OB, TB)                                                                            \
    INLINE ELAG_AVX512 void dw_tile_##OB##_##TB(                                                   \
        const float *xc, const float *dy0, size_t dstride, const int *toff, const long *xo,        \
        const long *yo, const __mmask16 *mk, long nvec, float *dw, size_t dwstride)                \
    {                                                                                              \
        __m512 acc[OB][TB];                                                                        \
        UNROLL for (int k = 0; k < OB; k++) UNROLL for (int t = 0; t < TB; t++) acc[k][t] =        \
            _mm512_setzero_ps();                                                                   \
        for (long v = 0; v < nvec; v++) {                                                          \
            const float *xr = xc + xo[v], *dr = dy0 + yo[v];                                       \
            const __mmask16 m = mk[v];                                                             \
            __m512 d[OB];                                                                          \
            UNROLL for (int k = 0; k < OB; k++) d[k] =                                             \
                _mm512_maskz_loadu_ps(m, dr + (size_t)k * dstride);                                \
            UNROLL for (int t = 0; t < TB; t++)                                                    \
            {                                                                                      \
                const __m512 a = _mm512_maskz_loadu_ps(m, xr + toff[t]);                           \
                UNROLL for (int k = 0; k < OB; k++) acc[k][t] =                                    \
                    _mm512_fmadd_ps(d[k], a, acc[k][t]);                                           \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int k = 0; k < OB; k++) UNROLL for (int t = 0; t < TB; t++)                    \
            dw[(size_t)k * dwstride + t] += _mm512_reduce_add_ps(acc[k][t]);                       \
    }

#define DW_TILES(OB) DW_TILE(OB, 9) DW_TILE(OB, 4) DW_TILE(OB, 2) DW_TILE(OB, 1)
DW_TILES(3)
DW_TILES(2)
DW_TILES(1)

/* Taps in groups of 9, then 4, 2, 1, for OB output channels. */
#define DW_ROW(OB)                                                                                 \
    static ELAG_AVX512 void dw_row_##OB(const float *xc, const float *dy0, size_t dstride,         \
                                        const int *toff, int taps, const long *xo, const long *yo, \
                                        const __mmask16 *mk, long nvec, float *dw,                 \
                                        size_t dwstride)                                           \
    {                                                                                              \
        int t = 0;                                                                                 \
        for (; t + 9 <= taps; t += 9)                                                              \
            dw_tile_##OB##_9(xc, dy0, dstride, toff + t, xo, yo, mk, nvec, dw + t, dwstride);      \
        for (; t + 4 <= taps; t += 4)                                                              \
            dw_tile_##OB##_4(xc, dy0, dstride, toff + t, xo, yo, mk, nvec, dw + t, dwstride);      \
        for (; t + 2 <= taps; t += 2)                                                              \
            dw_tile_##OB##_2(xc, dy0, dstride, toff + t, xo, yo, mk, nvec, dw + t, dwstride);      \
        for (; t < taps; t++)                                                                      \
            dw_tile_##OB##_1(xc, dy0, dstride, toff + t, xo, yo, mk, nvec, dw + t, dwstride);      \
    }
DW_ROW(3)
DW_ROW(2)
DW_ROW(1)

/* dw (cout, cin, taps) += sums over the slice: p->out is dw, p->wt the slice's dy
 * (cout, ., oh, ow) with row stride p->ostride. */
static ELAG_AVX512 elag_status filter_pass(elag_backend *b, const conv_pass *p, const float *dy)
{
    const int ogroups = (p->cout + CONV_DW_OB - 1) / CONV_DW_OB;
    const long tiles = (long)ogroups * p->cin;
    const size_t per_block = (size_t)CONV_DW_BLOCK * p->oh * p->nv;
    const int threads = b->threads;
    long *offs = malloc(sizeof(long) * 2 * per_block * (size_t)threads);
    __mmask16 *masks = malloc(sizeof(__mmask16) * per_block * (size_t)threads);
    if (offs == NULL || masks == NULL) {
        free(offs), free(masks);
        return elag_fail(ELAG_ERR_NOMEM, "cpu: out of host memory (conv_backward_filter)");
    }
    const double flops = (double)p->nb * p->oh * p->ow * p->cout * p->cin * p->taps;
#pragma omp parallel num_threads(threads) if (flops >= 1e6)
    {
        const int th = omp_get_thread_num(), nth = omp_get_num_threads();
        const long lo = tiles * th / nth, hi = tiles * (th + 1) / nth;
        long *xo = offs + 2 * per_block * (size_t)th, *yo = xo + per_block;
        __mmask16 *mk = masks + per_block * (size_t)th;
        for (int n0 = 0; n0 < p->nb && lo < hi; n0 += CONV_DW_BLOCK) {
            const int n1 = n0 + CONV_DW_BLOCK < p->nb ? n0 + CONV_DW_BLOCK : p->nb;
            long nvec = 0;
            for (int n = n0; n < n1; n++)
                for (int r = 0; r < p->oh; r++)
                    for (int xv = 0; xv < p->nv; xv++, nvec++) {
                        const int lanes = p->ow - 16 * xv;
                        xo[nvec] = ((long)n * p->Hp + r) * p->Wp + 16L * xv;
                        yo[nvec] = ((long)n * p->oh + r) * p->ow + 16L * xv;
                        mk[nvec] =
                            lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1u);
                    }
            for (long tile = lo; tile < hi; tile++) {
                const int og = (int)(tile / p->cin), c = (int)(tile % p->cin);
                const int o0 = og * CONV_DW_OB;
                const int ob = p->cout - o0 < CONV_DW_OB ? p->cout - o0 : CONV_DW_OB;
                const float *xc = p->xp + (size_t)c * p->plane;
                const float *dy0 = dy + (size_t)o0 * p->ostride;
                float *dw = p->out + ((size_t)o0 * p->cin + c) * p->taps;
                const size_t dwstride = (size_t)p->cin * p->taps;
                if (ob == 3)
                    dw_row_3(xc, dy0, p->ostride, p->toff, p->taps, xo, yo, mk, nvec, dw, dwstride);
                else if (ob == 2)
                    dw_row_2(xc, dy0, p->ostride, p->toff, p->taps, xo, yo, mk, nvec, dw, dwstride);
                else
                    dw_row_1(xc, dy0, p->ostride, p->toff, p->taps, xo, yo, mk, nvec, dw, dwstride);
            }
        }
    }
    free(offs), free(masks);
    return ELAG_OK;
}
/* The pass over xp (cin, nb, Hp, Wp) for a kernel kh x kw giving (cout, ., oh, ow). */
static void pass_init(conv_pass *p, const float *xp, int cin, int cout, int nb, int Hp, int Wp,
                      int kh, int kw, int oh, int ow)
{
    *p = (conv_pass){.xp = xp,
                     .plane = (size_t)nb * Hp * Wp,
                     .Hp = Hp,
                     .Wp = Wp,
                     .cin = cin,
                     .cout = cout,
                     .taps = kh * kw,
                     .nb = nb,
                     .oh = oh,
                     .ow = ow,
                     .nv = (ow + 15) / 16};
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) p->toff[i * kw + j] = i * Wp + j;
}
#endif /* ELAG_CPU_X86 */

static elag_status refuse(const elag_window *g)
{
    char why[128];
    if (elag_cpu_conv_direct_ok(g, why, sizeof why)) return ELAG_OK;
    return elag_fail(ELAG_ERR_UNSUPPORTED, "cpu: %s", why);
}

#if ELAG_CPU_X86
elag_status elag_cpu_fast_conv_forward(elag_backend *b, float *y, const float *x, const float *w,
                                       int C, int O, int N, int n0, int nb, const elag_window *g,
                                       float *work)
{
    ELAG_TRY(refuse(g));
    const int T = g->kh * g->kw;
    float *wt = malloc(sizeof(float) * ((size_t)C * T * O + 1));
    if (wt == NULL) return elag_fail(ELAG_ERR_NOMEM, "cpu: out of host memory (conv_forward)");
    for (int o = 0; o < O; o++) /* wt (C*T, O): a tap's weights for all outputs side by side */
        for (int ct = 0; ct < C * T; ct++) wt[(size_t)ct * O + o] = w[(size_t)o * C * T + ct];
    pad_slice(b, work, x, C, N, n0, nb, g->H, g->W, g->ph, g->pw);
    conv_pass p;
    pass_init(&p, work, C, O, nb, g->H + 2 * g->ph, g->W + 2 * g->pw, g->kh, g->kw, g->oh, g->ow);
    p.wt = wt;
    p.out = y + (size_t)n0 * g->oh * g->ow;
    p.ostride = (size_t)N * g->oh * g->ow;
    direct_pass(b, &p);
    free(wt);
    return ELAG_OK;
}

elag_status elag_cpu_fast_conv_backward_data(elag_backend *b, float *dx, const float *dy,
                                             const float *w, int C, int O, int N, int n0, int nb,
                                             const elag_window *g, float *work)
{
    ELAG_TRY(refuse(g));
    /* dx = dy padded by (kh-1-ph, kw-1-pw), convolved with the flipped kernel, O -> C */
    const int T = g->kh * g->kw, qt = g->kh - 1 - g->ph, ql = g->kw - 1 - g->pw;
    float *wf = malloc(sizeof(float) * ((size_t)O * T * C + 1));
    if (wf == NULL)
        return elag_fail(ELAG_ERR_NOMEM, "cpu: out of host memory (conv_backward_data)");
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++)
                wf[((size_t)o * T + t) * C + c] = w[((size_t)o * C + c) * T + (T - 1 - t)];
    pad_slice(b, work, dy, O, N, n0, nb, g->oh, g->ow, qt, ql);
    conv_pass p;
    pass_init(&p, work, O, C, nb, g->oh + 2 * qt, g->ow + 2 * ql, g->kh, g->kw, g->H, g->W);
    p.wt = wf;
    p.out = dx + (size_t)n0 * g->H * g->W;
    p.ostride = (size_t)N * g->H * g->W;
    direct_pass(b, &p);
    free(wf);
    return ELAG_OK;
}

elag_status elag_cpu_fast_conv_backward_filter(elag_backend *b, float *dw, const float *dy,
                                               const float *x, int C, int O, int N, int n0, int nb,
                                               const elag_window *g, float beta, float *work)
{
    ELAG_TRY(refuse(g));
    if (beta == 0.0f) memset(dw, 0, sizeof(float) * (size_t)O * C * g->kh * g->kw);
    if (nb == 0) return ELAG_OK;
    pad_slice(b, work, x, C, N, n0, nb, g->H, g->W, g->ph, g->pw);
    conv_pass p;
    pass_init(&p, work, C, O, nb, g->H + 2 * g->ph, g->W + 2 * g->pw, g->kh, g->kw, g->oh, g->ow);
    p.out = dw;
    p.ostride = (size_t)N * g->oh * g->ow;
    return filter_pass(b, &p, dy + (size_t)n0 * g->oh * g->ow);
}
#else /* not x86: elag_cpu_conv_direct_ok says no, and the ops refuse */
elag_status elag_cpu_fast_conv_forward(elag_backend *b, float *y, const float *x, const float *w,
                                       int C, int O, int N, int n0, int nb, const elag_window *g,
                                       float *work)
{
    (void)b, (void)y, (void)x, (void)w, (void)C, (void)O, (void)N, (void)n0, (void)nb, (void)work;
    return refuse(g);
}

elag_status elag_cpu_fast_conv_backward_data(elag_backend *b, float *dx, const float *dy,
                                             const float *w, int C, int O, int N, int n0, int nb,
                                             const elag_window *g, float *work)
{
    (void)b, (void)dx, (void)dy, (void)w, (void)C, (void)O, (void)N, (void)n0, (void)nb;
    (void)work;
    return refuse(g);
}

elag_status elag_cpu_fast_conv_backward_filter(elag_backend *b, float *dw, const float *dy,
                                               const float *x, int C, int O, int N, int n0, int nb,
                                               const elag_window *g, float beta, float *work)
{
    (void)b, (void)dw, (void)dy, (void)x, (void)C, (void)O, (void)N, (void)n0, (void)nb;
    (void)beta, (void)work;
    return refuse(g);
}
#endif
