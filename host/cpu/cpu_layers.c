/*
 * The layer ops of the fast CPU backend ("cpu"): transpose, im2col / col2im, pooling,
 * batch norm and dropout (backend.h gives the contracts, cpu_ref_layers.c the reference).
 * Each op is cut into units that write disjoint memory, run over OpenMP threads when the
 * op is large (ELAG_CPU_PAR_MIN). The window ops work one contiguous row at a time: which
 * outputs of a row each window tap reads in bounds is computed once (tap_range), so inner
 * loops carry no per-element padding test; the outputs whose whole window row is in
 * bounds are done in one fused pass over their taps, the few at the edges output by
 * output. Usual strides and widths are passed to the inlined row kernels as constants, so
 * gcc unrolls and vectorizes them; global pooling (a window over the whole plane) works
 * several planes at a time. Each output or dx entry still takes its terms in
 * cpu-ref's order, so im2col, col2im, pooling and dropout are bit-identical to cpu-ref;
 * batch norm differs from it by rounding only.
 */
#include "cpu/cpu_internal.h"
#include "cpu/cpu_sparse.h" /* ELAG_CPU_X86, elag_cpu_best_isa */

#include "backend/philox.h"
#include "core/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Elements per unit of transpose for small blocks: a unit copies a run of rows of one
 * column, so its reads of src share cache lines with the next unit's (the next column). */
#define ELAG_TRANSPOSE_RUN 64
/* Planes pooled together by the whole-plane (global pooling) path: their chains of
 * dependent operations, kept in cpu-ref's order, overlap. */
#define ELAG_POOL_GROUP 8

/* ---- window ranges ---- */

/* The outputs o in [*lo, *hi) of one axis whose window tap k reads inside the input:
 * 0 <= o*s - p + k < n, for outputs o in [0, on). */
static inline void tap_range(int n, int s, int p, int k, int on, int *lo, int *hi)
{
    int first = p - k;     /* o*s >= first */
    int bound = n + p - k; /* o*s < bound */
    int l = first <= 0 ? 0 : (first + s - 1) / s;
    int h = bound <= 0 ? 0 : (bound + s - 1) / s;
    if (h > on) h = on;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* The outputs [*lo, *hi) of one axis whose window (k wide, stride s, padding p) covers
 * input position h: o*s - p <= h < o*s - p + k, for outputs o in [0, on). */
static inline void cover_range(int h, int s, int p, int k, int on, int *lo, int *hi)
{
    int bottom = h + p - k + 1; /* o*s >= bottom */
    int l = bottom <= 0 ? 0 : (bottom + s - 1) / s;
    int u = (h + p) / s + 1; /* o*s <= h + p */
    if (u > on) u = on;
    if (l > u) l = u;
    *lo = l;
    *hi = u;
}

/* The outputs [*xa, *xb) of a row whose every tap is in bounds: tap 0 from xa on, tap
 * kw-1 below xb (the taps between follow). */
static void interior_range(const elag_window *g, int *xa, int *xb)
{
    int unused;
    tap_range(g->W, g->sw, g->pw, 0, g->ow, xa, &unused);
    tap_range(g->W, g->sw, g->pw, g->kw - 1, g->ow, &unused, xb);
    if (*xb < *xa) *xb = *xa;
}

/* The taps [*jlo, *jhi) of output column ox that read inside a row of W (a window near
 * the edge is partly padding). */
static inline void edge_taps(int ox, int W, int kw, int sw, int pw, int *jlo, int *jhi)
{
    const int w0 = ox * sw - pw;
    *jlo = w0 < 0 ? -w0 : 0;
    *jhi = W - w0 < kw ? W - w0 : kw;
}

/* The in-bounds output columns [lo, hi) of each of the kw taps (tap_range along x), the
 * same for every row: computed once per call, not two divisions per row and tap. Up to
 * ELAG_SPAN_STACK taps live on the stack. */
typedef struct elag_span {
    int lo, hi;
} elag_span;
#define ELAG_SPAN_STACK 32

/* Fills spans (kw) for g, in `stack` when it fits, else in fresh memory (spans_free). */
static elag_status spans_init(const char *op, const elag_window *g, elag_span *stack,
                              elag_span **spans)
{
    *spans = g->kw <= ELAG_SPAN_STACK ? stack : malloc((size_t)g->kw * sizeof **spans);
    if (*spans == NULL) return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", op);
    for (int j = 0; j < g->kw; j++)
        tap_range(g->W, g->sw, g->pw, j, g->ow, &(*spans)[j].lo, &(*spans)[j].hi);
    return ELAG_OK;
}

static void spans_free(elag_span *stack, elag_span *spans)
{
    if (spans != stack) free(spans);
}

/* ---- row kernels ----
 * They take the stride and window width as arguments and are always inlined; the
 * dispatch macros call them with constants for the usual cases, where gcc unrolls the
 * taps and vectorizes over the outputs, and with the variables otherwise. */
#define ELAG_INLINE static inline __attribute__((always_inline))

/* Runs CALL with `stride` bound to the constant 1 or 2 when sw is one of them. */
#define WITH_STRIDE(sw, CALL)                                                                      \
    do {                                                                                           \
        if ((sw) == 1) {                                                                           \
            const int stride = 1;                                                                  \
            CALL;                                                                                  \
        } else if ((sw) == 2) {                                                                    \
            const int stride = 2;                                                                  \
            CALL;                                                                                  \
        } else {                                                                                   \
            const int stride = (sw);                                                               \
            CALL;                                                                                  \
        }                                                                                          \
    } while (0)

/* Runs CALL with the window width `k` and `stride` bound to constants for the usual
 * pooling windows (2 / 2, 3 / 2, 3 / 1). */
#define WITH_KW_STRIDE(kw, sw, CALL)                                                               \
    do {                                                                                           \
        if ((kw) == 2 && (sw) == 2) {                                                              \
            const int k = 2, stride = 2;                                                           \
            CALL;                                                                                  \
        } else if ((kw) == 3 && (sw) == 2) {                                                       \
            const int k = 3, stride = 2;                                                           \
            CALL;                                                                                  \
        } else if ((kw) == 3 && (sw) == 1) {                                                       \
            const int k = 3, stride = 1;                                                           \
            CALL;                                                                                  \
        } else {                                                                                   \
            const int k = (kw), stride = (sw);                                                     \
            CALL;                                                                                  \
        }                                                                                          \
    } while (0)

/* im2col: d[t] = s[t * stride], t < len. */
ELAG_INLINE void row_gather(float *restrict d, const float *restrict s, int len, int stride)
{
#pragma omp simd
    for (int t = 0; t < len; t++) d[t] = s[(size_t)t * stride];
}

/* col2im, one tap: d[t * stride] += s[t], t < len. */
ELAG_INLINE void row_scatter_add(float *restrict d, const float *restrict s, int len, int stride)
{
    for (int t = 0; t < len; t++) d[(size_t)t * stride] += s[t];
}

/* col2im, stride 1, the kw taps of one kernel row fused for dx columns whose taps are
 * all in bounds: tap j's output row is s + j*ld and column w of d takes its entry w - j,
 * the taps in order. */
ELAG_INLINE void row_taps_add(float *restrict d, const float *restrict s, size_t ld, int len,
                              int kw)
{
    for (int w = 0; w < len; w++) {
        float acc = d[w];
        for (int j = 0; j < kw; j++) acc += s[j * ld + w - j]; /* j*ld >= j: no wrap */
        d[w] = acc;
    }
}

/* col2im, stride 1, the same for one dx column near the edge: its in-bounds taps only. */
static inline void col_edge(float *d, const float *taps, size_t ld, int w, int pw, int kw, int ow)
{
    for (int j = 0; j < kw; j++) {
        int ox = w + pw - j;
        if (ox >= 0 && ox < ow) d[w] += taps[(size_t)j * ld + ox];
    }
}

/* Max pooling, one window row, outputs whose k taps are all in bounds: y[t], arg[t] take
 * tap j's entry s[t*stride + j] (plane index idx0 + t*stride + j) when nothing is taken
 * yet (arg < 0: the first in-bounds entry) or when it is strictly larger, so the first
 * maximum in row-major window order wins ties, as in cpu-ref. Selects, not branches; tap
 * 0, the only one that can meet arg < 0, is peeled (with that test inside the tap loop,
 * gcc does not vectorize). */
ELAG_INLINE void row_max_taps(float *restrict y, int32_t *restrict arg, const float *restrict s,
                              int32_t idx0, int len, int stride, int k)
{
    for (int t = 0; t < len; t++) {
        const float *st = s + (size_t)t * stride; /* (k) the output's taps in this row */
        const int32_t it = idx0 + t * stride;
        float o = y[t];
        int32_t a = arg[t];
        int take = (a < 0) | (st[0] > o);
        o = take ? st[0] : o;
        a = take ? it : a;
        for (int j = 1; j < k; j++) {
            take = st[j] > o;
            o = take ? st[j] : o;
            a = take ? it + j : a;
        }
        y[t] = o;
        arg[t] = a;
    }
}

/* Max pooling, one window row, outputs [lo, hi) near the edges: the in-bounds taps only,
 * by the same rule. */
static void edge_max(float *y, int32_t *arg, const float *xrow, int32_t rowidx, int lo, int hi,
                     int W, int kw, int sw, int pw)
{
    for (int ox = lo; ox < hi; ox++) {
        int jlo, jhi;
        edge_taps(ox, W, kw, sw, pw, &jlo, &jhi);
        const int w0 = ox * sw - pw;
        float o = y[ox];
        int32_t a = arg[ox];
        for (int j = jlo; j < jhi; j++) {
            float v = xrow[w0 + j];
            if (a < 0 || v > o) {
                o = v;
                a = rowidx + w0 + j;
            }
        }
        y[ox] = o;
        arg[ox] = a;
    }
}

/* Average pooling, one window row, in-bounds outputs: y[t] += the k taps, in order. */
ELAG_INLINE void row_sum_taps(float *restrict y, const float *restrict s, int len, int stride,
                              int k)
{
    for (int t = 0; t < len; t++) {
        float acc = y[t];
        for (int j = 0; j < k; j++) acc += s[(size_t)t * stride + j];
        y[t] = acc;
    }
}

/* Average pooling, one window row, outputs [lo, hi) near the edges. */
static void edge_sum(float *y, const float *xrow, int lo, int hi, int W, int kw, int sw, int pw)
{
    for (int ox = lo; ox < hi; ox++) {
        int jlo, jhi;
        edge_taps(ox, W, kw, sw, pw, &jlo, &jhi);
        float acc = y[ox];
        for (int j = jlo; j < jhi; j++) acc += xrow[ox * sw - pw + j];
        y[ox] = acc;
    }
}

/* Average-pool backward, one tap over a row of outputs: d[t * stride] += dy[t] / area. */
ELAG_INLINE void row_share(float *restrict d, const float *restrict dy, float area, int len,
                           int stride)
{
    for (int t = 0; t < len; t++) d[(size_t)t * stride] += dy[t] / area;
}

/* Average-pool backward, one window row, in-bounds outputs, outputs outer: d[t*stride + j]
 * += dy[t] / area for the k taps. */
ELAG_INLINE void row_share_taps(float *restrict d, const float *restrict dy, float area, int len,
                                int stride, int k)
{
    for (int t = 0; t < len; t++) {
        const float share = dy[t] / area;
        for (int j = 0; j < k; j++) d[(size_t)t * stride + j] += share;
    }
}

/* Average-pool backward, one window row, outputs [lo, hi) near the edges. */
static void edge_share(float *d, const float *dy, float area, int lo, int hi, int W, int kw, int sw,
                       int pw)
{
    for (int ox = lo; ox < hi; ox++) {
        int jlo, jhi;
        edge_taps(ox, W, kw, sw, pw, &jlo, &jhi);
        const float share = dy[ox] / area;
        for (int j = jlo; j < jhi; j++) d[ox * sw - pw + j] += share;
    }
}

/* ---- transpose ---- */

#if ELAG_CPU_X86
void elag_cpu_transpose_tile16_avx512(const float *src, size_t lds, float *dst, size_t ldd);

/* inner == 1 on AVX-512: unit (t, 16-row block), its full 16 x 16 tiles in registers
 * (cpu_transpose_x86.c), the rest element by element. Units write disjoint rows [i0, i0+16)
 * of every column of dst. */
static void transpose_tiles_avx512(elag_backend *b, float *dst, const float *src, int batch,
                                   int rows, int cols)
{
    const int blocks = (rows + 15) / 16, full = cols / 16 * 16;
    const size_t total = (size_t)batch * rows * cols;
#pragma omp parallel for collapse(2) num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN)        \
    schedule(static)
    for (int t = 0; t < batch; t++)
        for (int k = 0; k < blocks; k++) {
            const int i0 = 16 * k, h = rows - i0 < 16 ? rows - i0 : 16;
            const float *s = src + ((size_t)t * rows + i0) * cols; /* (h, cols) */
            float *d = dst + (size_t)t * cols * rows + i0;          /* (cols, rows) */
            int j = 0;
            if (h == 16)
                for (; j < full; j += 16)
                    elag_cpu_transpose_tile16_avx512(s + j, (size_t)cols, d + (size_t)j * rows,
                                                     (size_t)rows);
            for (; j < cols; j++)
                for (int i = 0; i < h; i++) d[(size_t)j * rows + i] = s[(size_t)i * cols + j];
        }
}
#endif

void elag_cpu_transpose_serial(float *dst, const float *src, int rows, int cols)
{
    int i0 = 0;
#if ELAG_CPU_X86
    if (cols >= 16 && elag_cpu_best_isa() == ELAG_CPU_ISA_AVX512)
        for (const int full = cols / 16 * 16; i0 + 16 <= rows; i0 += 16) {
            const float *s = src + (size_t)i0 * cols; /* (16, cols) */
            float *d = dst + i0;                      /* (cols, rows) */
            int j = 0;
            for (; j < full; j += 16)
                elag_cpu_transpose_tile16_avx512(s + j, (size_t)cols, d + (size_t)j * rows,
                                                 (size_t)rows);
            for (; j < cols; j++)
                for (int i = 0; i < 16; i++) d[(size_t)j * rows + i] = s[(size_t)i * cols + j];
        }
#endif
    for (int j = 0; j < cols; j++)
        for (int i = i0; i < rows; i++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}

elag_status elag_cpu_fast_transpose(elag_backend *b, float *dst, const float *src, int batch,
                                    int rows, int cols, int inner)
{
    if (batch == 0 || rows == 0 || cols == 0 || inner == 0) return ELAG_OK;
    if (rows == 1 || cols == 1) { /* the same layout both ways (a batch of one sample): a copy */
        if (dst != src) memcpy(dst, src, (size_t)batch * rows * cols * inner * sizeof *dst);
        return ELAG_OK;
    }
#if ELAG_CPU_X86
    if (inner == 1 && rows >= 16 && cols >= 16 && elag_cpu_best_isa() == ELAG_CPU_ISA_AVX512) {
        transpose_tiles_avx512(b, dst, src, batch, rows, cols);
        return ELAG_OK;
    }
#endif
    /* unit (t, row run, j): rows [i0, i0 + run) of column j of block t, which land
     * contiguously in dst; consecutive units take consecutive j, so src lines fetched for
     * one column serve the next ones (inner 1: the flatten's (N, HW) -> (HW, N)) */
    int run = inner >= ELAG_TRANSPOSE_RUN ? 1 : ELAG_TRANSPOSE_RUN / inner;
    if (run > rows) run = rows;
    const int runs = (rows + run - 1) / run;
    const size_t total = (size_t)batch * rows * cols * inner;
#pragma omp parallel for collapse(3) num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN)        \
    schedule(static)
    for (int t = 0; t < batch; t++)
        for (int r = 0; r < runs; r++)
            for (int j = 0; j < cols; j++) {
                const int i0 = r * run;
                const int i1 = i0 + run < rows ? i0 + run : rows;
                const size_t ld = (size_t)cols * inner; /* src's row stride */
                const float *s =
                    src + (((size_t)t * rows + i0) * cols + j) * inner; /* rows ld apart */
                float *d =
                    dst + (((size_t)t * cols + j) * rows + i0) * inner; /* (i1 - i0, inner) */
                if (inner == 1) {
                    for (int i = 0; i < i1 - i0; i++) d[i] = s[(size_t)i * ld];
                } else {
                    for (int i = 0; i < i1 - i0; i++)
                        memcpy(d + (size_t)i * inner, s + (size_t)i * ld,
                               (size_t)inner * sizeof *d);
                }
            }
    return ELAG_OK;
}

/* ---- im2col / col2im ---- */

/* im2col of one unit: input plane xp (H, W) of sample n, kernel row i, into the kw blocks
 * col[(c*kh + i)*kw + j][n*oh*ow ...] (oh, ow) that no other unit writes. band: stride 1
 * and ow == W (a "same" convolution, kw == 2pw + 1), where a tap's output rows are
 * consecutive input rows, as far apart as in x. */
static void im2col_unit(float *col, const float *xp, const elag_window *g, const elag_span *xs,
                        size_t ncols, int c, int n, int i, int band)
{
    const int W = g->W, kw = g->kw, oh = g->oh, ow = g->ow;
    const size_t plane = (size_t)oh * ow;
    int ylo, yhi; /* output rows reading inside x; the others read padding only */
    tap_range(g->H, g->sh, g->ph, i, oh, &ylo, &yhi);
    for (int j = 0; j < kw; j++) {
        float *blk = col + (((size_t)c * g->kh + i) * kw + j) * ncols + (size_t)n * plane;
        const int xlo = xs[j].lo, xhi = xs[j].hi;
        memset(blk, 0, (size_t)ylo * ow * sizeof *blk);
        if (band && ylo < yhi && xlo < xhi) {
            /* the in-bounds entries of rows [ylo, yhi) are one run of x shifted by (i - ph)
             * rows and (j - pw) columns: one copy from the first to the last, then the few
             * columns that wrapped into a neighbouring row (padding) are zeroed */
            const size_t d0 = (size_t)ylo * ow + xlo, d1 = (size_t)(yhi - 1) * ow + xhi;
            const long shift = (long)(i - g->ph) * W + (j - g->pw);
            memcpy(blk + d0, xp + (long)d0 + shift, (d1 - d0) * sizeof *blk);
            for (int oy = ylo; oy < yhi; oy++) {
                float *d = blk + (size_t)oy * ow; /* (ow) */
                for (int ox = 0; ox < xlo; ox++) d[ox] = 0.0f;
                for (int ox = xhi; ox < ow; ox++) d[ox] = 0.0f;
            }
        } else {
            for (int oy = ylo; oy < yhi; oy++) {
                float *d = blk + (size_t)oy * ow; /* (ow) */
                for (int ox = 0; ox < xlo; ox++) d[ox] = 0.0f;
                if (xlo < xhi) { /* from the row's first in-bounds tap */
                    const int h = oy * g->sh - g->ph + i;
                    const float *s = xp + (size_t)h * W + (xlo * g->sw - g->pw + j);
                    WITH_STRIDE(g->sw, row_gather(d + xlo, s, xhi - xlo, stride));
                }
                for (int ox = xhi; ox < ow; ox++) d[ox] = 0.0f;
            }
        }
        memset(blk + (size_t)yhi * ow, 0, (size_t)(oh - yhi) * ow * sizeof *blk);
    }
}

elag_status elag_cpu_fast_im2col(elag_backend *b, float *col, const float *x, int C, int N, int n0,
                                 int nb, const elag_window *g)
{
    if (C == 0 || nb == 0) return ELAG_OK;
    elag_span stack[ELAG_SPAN_STACK], *xs; /* (kw) */
    ELAG_TRY(spans_init("im2col", g, stack, &xs));
    const size_t plane = (size_t)g->oh * g->ow, ncols = (size_t)nb * plane;
    const size_t in_plane = (size_t)g->H * g->W;
    const int band = g->sh == 1 && g->sw == 1 && g->ow == g->W;
    /* unit (c, n, i): one input plane, one kernel row. Units of one plane are neighbours,
     * so the plane stays in cache while its rows are copied (a split over (c, i) alone
     * would give 9 units to 2 threads for RGB 3x3) */
    const double total = (double)C * g->kh * g->kw * ncols;
#pragma omp parallel for collapse(3) num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN)        \
    schedule(static)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < nb; n++)
            for (int i = 0; i < g->kh; i++)
                im2col_unit(col, x + ((size_t)c * N + n0 + n) * in_plane, g, xs, ncols, c, n, i,
                            band);
    spans_free(stack, xs);
    return ELAG_OK;
}

/* col2im of one unit: row h of dx plane d (W) of channel c, sample n, gathers its terms from
 * every tap (i, j) whose im2col read it, kernel rows ascending, then taps ascending, the
 * order in which cpu-ref adds them: the same sums, bit for bit. */
static void col2im_row(float *d, const float *col, const elag_window *g, const elag_span *xs,
                       size_t ncols, int c, int n, int h)
{
    const int W = g->W, kw = g->kw, sw = g->sw, pw = g->pw, ow = g->ow;
    int olo, ohi; /* the output rows whose windows cover row h */
    cover_range(h, g->sh, g->ph, g->kh, g->oh, &olo, &ohi);
    for (int oy = ohi - 1; oy >= olo; oy--) { /* their kernel rows i ascending */
        const int i = h + g->ph - oy * g->sh;
        /* tap j's output row (ow) is at taps + j*ncols */
        const float *taps =
            col + ((size_t)c * g->kh + i) * kw * ncols + ((size_t)n * g->oh + oy) * ow;
        if (sw == 1) {
            /* dx column w takes tap j's output w + pw - j; [wa, wb) is where every tap is in
             * bounds, one fused pass; the few columns outside it tap by tap */
            int wa = kw - 1 - pw, wb = ow - pw < W ? ow - pw : W;
            wa = wa < 0 ? 0 : wa > W ? W : wa;
            wb = wb < wa ? wa : wb;
            for (int w = 0; w < wa; w++) col_edge(d, taps, ncols, w, pw, kw, ow);
            for (int w = wb; w < W; w++) col_edge(d, taps, ncols, w, pw, kw, ow);
            if (wa < wb && kw == 3)
                row_taps_add(d + wa, taps + wa + pw, ncols, wb - wa, 3);
            else if (wa < wb)
                row_taps_add(d + wa, taps + wa + pw, ncols, wb - wa, kw);
            continue;
        }
        for (int j = 0; j < kw; j++) {
            const int xlo = xs[j].lo, xhi = xs[j].hi;
            if (xlo >= xhi) continue;
            const float *s = taps + (size_t)j * ncols + xlo; /* (xhi - xlo) */
            WITH_STRIDE(sw, row_scatter_add(d + (xlo * sw - pw + j), s, xhi - xlo, stride));
        }
    }
}

elag_status elag_cpu_fast_col2im(elag_backend *b, float *dx, const float *col, int C, int N, int n0,
                                 int nb, const elag_window *g)
{
    if (C == 0 || nb == 0) return ELAG_OK;
    elag_span stack[ELAG_SPAN_STACK], *xs; /* (kw) */
    ELAG_TRY(spans_init("col2im", g, stack, &xs));
    const size_t ncols = (size_t)nb * g->oh * g->ow;
    /* unit (c, n, h): one row of dx. Kernel rows overlap in dx when kh > sh, so a scatter
     * split over (c, i) would race; gathering by dx row needs no atomics */
    const double total = (double)C * g->kh * g->kw * ncols;
#pragma omp parallel for collapse(3) num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN)        \
    schedule(static)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < nb; n++)
            for (int h = 0; h < g->H; h++)
                col2im_row(dx + (((size_t)c * N + n0 + n) * g->H + h) * g->W, col, g, xs, ncols, c,
                           n, h);
    spans_free(stack, xs);
    return ELAG_OK;
}

/* ---- pooling ---- */

/* Pooling with a window over the whole plane (global pooling: one output per plane, the
 * window's row-major order is the plane's order): x(planes, hw) -> y(planes). The rule of
 * cpu-ref, entry by entry: max takes the first entry, then strictly larger ones; avg sums
 * from 0 in order and divides by hw. */
static elag_status pool_whole_forward(elag_backend *b, elag_pool_mode mode, float *y,
                                      int32_t *argmax, const float *x, int planes, int hw)
{
    const int groups = (planes + ELAG_POOL_GROUP - 1) / ELAG_POOL_GROUP;
    const float area = (float)hw;
    const double total = (double)planes * hw;
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN) schedule(static)
    for (int gi = 0; gi < groups; gi++) {
        const int p0 = gi * ELAG_POOL_GROUP;
        const int np = planes - p0 < ELAG_POOL_GROUP ? planes - p0 : ELAG_POOL_GROUP;
        const float *xg = x + (size_t)p0 * hw; /* (np, hw) */
        float acc[ELAG_POOL_GROUP];            /* (np) */
        int32_t arg[ELAG_POOL_GROUP];          /* (np) */
        if (mode == ELAG_POOL_MAX) {
            for (int q = 0; q < np; q++) {
                acc[q] = xg[(size_t)q * hw]; /* the first entry is taken whatever it is */
                arg[q] = 0;
            }
            for (int e = 1; e < hw; e++)
                for (int q = 0; q < np; q++) {
                    const float v = xg[(size_t)q * hw + e];
                    const int take = v > acc[q];
                    acc[q] = take ? v : acc[q];
                    arg[q] = take ? e : arg[q];
                }
            for (int q = 0; q < np; q++) {
                y[p0 + q] = acc[q];
                argmax[p0 + q] = arg[q];
            }
        } else {
            for (int q = 0; q < np; q++) acc[q] = 0.0f;
            for (int e = 0; e < hw; e++)
                for (int q = 0; q < np; q++) acc[q] += xg[(size_t)q * hw + e];
            for (int q = 0; q < np; q++) y[p0 + q] = acc[q] / area;
        }
    }
    return ELAG_OK;
}

elag_status elag_cpu_fast_pool_forward(elag_backend *b, elag_pool_mode mode, float *y,
                                       int32_t *argmax, const float *x, int planes,
                                       const elag_window *g)
{
    if (planes == 0) return ELAG_OK;
    const int H = g->H, W = g->W, kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw;
    const int ph = g->ph, pw = g->pw, oh = g->oh, ow = g->ow;
    const float area = (float)(kh * kw);          /* padding counts as zeros */
    if (kh == H && kw == W && ph == 0 && pw == 0) /* global pooling */
        return pool_whole_forward(b, mode, y, argmax, x, planes, H * W);
    /* outputs [xa, xb) of a row have every tap in bounds (tap 0 from xa, tap kw-1 below xb):
     * one fused pass over them; the few outside, whose windows hang into the padding, go
     * output by output */
    int xa, xb;
    interior_range(g, &xa, &xb);
    /* unit (p, oy): one output row, built window row by window row; each output takes its
     * taps in row-major window order, as in cpu-ref, so ties and sums agree exactly */
    const double total = (double)planes * oh * ow * kh * kw;
#pragma omp parallel for collapse(2) num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN)        \
    schedule(static)
    for (int p = 0; p < planes; p++)
        for (int oy = 0; oy < oh; oy++) {
            const size_t u = (size_t)p * oh + oy;    /* the output row */
            const float *xp = x + (size_t)p * H * W; /* (H, W) */
            float *yr = y + u * ow;                  /* (ow) */
            const int h0 = oy * sh - ph;
            const int ilo = h0 < 0 ? -h0 : 0, ihi = H - h0 < kh ? H - h0 : kh; /* rows in bounds */
            if (mode == ELAG_POOL_MAX) {
                int32_t *ar = argmax + u * ow; /* (ow) */
                for (int ox = 0; ox < ow; ox++) {
                    yr[ox] = 0.0f; /* what a window with no in-bounds entry keeps */
                    ar[ox] = -1;
                }
                for (int i = ilo; i < ihi; i++) {
                    const int32_t rowidx = (h0 + i) * W; /* plane index of the row's start */
                    const float *xrow = xp + rowidx;     /* (W) */
                    edge_max(yr, ar, xrow, rowidx, 0, xa, W, kw, sw, pw);
                    if (xa < xb) {
                        const int32_t idx0 = rowidx + xa * sw - pw;
                        WITH_KW_STRIDE(
                            kw, sw,
                            row_max_taps(yr + xa, ar + xa, xp + idx0, idx0, xb - xa, stride, k));
                    }
                    edge_max(yr, ar, xrow, rowidx, xb, ow, W, kw, sw, pw);
                }
            } else {
                for (int ox = 0; ox < ow; ox++) yr[ox] = 0.0f;
                for (int i = ilo; i < ihi; i++) {
                    const float *xrow = xp + (size_t)(h0 + i) * W; /* (W) */
                    edge_sum(yr, xrow, 0, xa, W, kw, sw, pw);
                    if (xa < xb)
                        WITH_KW_STRIDE(
                            kw, sw,
                            row_sum_taps(yr + xa, xrow + (xa * sw - pw), xb - xa, stride, k));
                    edge_sum(yr, xrow, xb, ow, W, kw, sw, pw);
                }
                for (int ox = 0; ox < ow; ox++) yr[ox] /= area;
            }
        }
    return ELAG_OK;
}

elag_status elag_cpu_fast_pool_backward(elag_backend *b, elag_pool_mode mode, float *dx,
                                        const float *dy, const int32_t *argmax, int planes,
                                        const elag_window *g)
{
    if (planes == 0) return ELAG_OK;
    const int H = g->H, W = g->W, kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw;
    const int ph = g->ph, pw = g->pw, oh = g->oh, ow = g->ow;
    const size_t in_plane = (size_t)H * W, out_plane = (size_t)oh * ow;
    if (mode == ELAG_POOL_MAX) {
        /* unit: one plane, its outputs scattered in order (windows may overlap, so planes
         * are the smallest units with disjoint writes) */
        const double total = (double)planes * (in_plane + out_plane);
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN) schedule(static)
        for (int p = 0; p < planes; p++) {
            float *dxp = dx + (size_t)p * in_plane;             /* (H, W) */
            const float *dyp = dy + (size_t)p * out_plane;      /* (oh, ow) */
            const int32_t *ap = argmax + (size_t)p * out_plane; /* (oh, ow) */
            memset(dxp, 0, in_plane * sizeof *dxp);
            for (size_t o = 0; o < out_plane; o++)
                if (ap[o] >= 0) dxp[ap[o]] += dyp[o]; /* -1: an all-padding window */
        }
        return ELAG_OK;
    }
    const float area = (float)(kh * kw);
    if (kh == H && kw == W && ph == 0 && pw == 0) { /* global pooling: dx = dy / area */
#pragma omp parallel for num_threads(b->threads) if (planes * in_plane >= ELAG_CPU_PAR_MIN)        \
    schedule(static)
        for (int p = 0; p < planes; p++) {
            const float share = dy[p] / area;
            float *dxp = dx + (size_t)p * in_plane; /* (H, W) */
            /* 0 + share, as cpu-ref adds the share to a zeroed dx: -0 becomes +0 */
            for (size_t e = 0; e < in_plane; e++) dxp[e] = 0.0f + share;
        }
        return ELAG_OK;
    }
    elag_span stack[ELAG_SPAN_STACK], *xs; /* (kw) */
    ELAG_TRY(spans_init("pool_backward", g, stack, &xs));
    /* unit (p, h): one row of dx gathers its shares from the outputs whose windows cover
     * it, in ascending (oy, ox), the order cpu-ref adds them in, so the sums are the same
     * bit for bit. Within one output row, either outputs outer (ascending ox), one pass
     * whose taps vectorize when windows do not overlap along the row, and the longer loop
     * inside when a window is wider than the output row; or, for overlapping windows
     * (a pass over outputs would carry a dependence), taps outer, descending j giving
     * ascending ox, a strided pass over the outputs per tap */
    const int outputs_outer = kw <= sw || kw > ow;
    int xa, xb; /* outputs [xa, xb) have every tap in bounds */
    interior_range(g, &xa, &xb);
    const double total = (double)planes * (in_plane + out_plane * kh * kw);
#pragma omp parallel for collapse(2) num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN)        \
    schedule(static)
    for (int p = 0; p < planes; p++)
        for (int h = 0; h < H; h++) {
            const float *dyp = dy + (size_t)p * out_plane; /* (oh, ow) */
            float *d = dx + ((size_t)p * H + h) * W;       /* (W) */
            for (int w = 0; w < W; w++) d[w] = 0.0f;
            int olo, ohi; /* the output rows whose windows cover row h, ascending */
            cover_range(h, sh, ph, kh, oh, &olo, &ohi);
            for (int oy = olo; oy < ohi; oy++) {
                const float *dyr = dyp + (size_t)oy * ow; /* (ow) */
                if (outputs_outer) {
                    edge_share(d, dyr, area, 0, xa, W, kw, sw, pw);
                    if (xa < xb)
                        WITH_KW_STRIDE(
                            kw, sw,
                            row_share_taps(d + (xa * sw - pw), dyr + xa, area, xb - xa, stride, k));
                    edge_share(d, dyr, area, xb, ow, W, kw, sw, pw);
                    continue;
                }
                for (int j = kw - 1; j >= 0; j--) {
                    const int xlo = xs[j].lo, xhi = xs[j].hi;
                    if (xlo >= xhi) continue;
                    WITH_STRIDE(
                        sw, row_share(d + (xlo * sw - pw + j), dyr + xlo, area, xhi - xlo, stride));
                }
            }
        }
    spans_free(stack, xs);
    return ELAG_OK;
}

/* ---- batch norm ---- */

elag_status elag_cpu_fast_batchnorm_forward(elag_backend *b, int flags, float *y, const float *x,
                                            int C, int L, const float *gamma, const float *beta,
                                            float *run_mean, float *run_var, float momentum,
                                            float eps, float *save_mean, float *save_invstd)
{
    if (C == 0 || L == 0) return ELAG_OK; /* no samples: no statistics (as cpu-ref) */
    const size_t total = (size_t)C * L;
    const int training = flags & ELAG_BN_TRAINING, relu = flags & ELAG_BN_RELU;
    /* unit: one channel. Statistics in double, two passes (mean, then squared deviations:
     * no cancellation when the mean is large against the spread); the row is L floats,
     * read again from cache when it fits */
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN) schedule(static)
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * L; /* (L) */
        float *yr = y + (size_t)c * L;       /* (L), may be xr */
        float mean, mean_lo = 0.0f, invstd; /* the mean is mean + mean_lo */
        if (training) {
            double sum = 0.0, sq = 0.0;
#pragma omp simd reduction(+ : sum)
            for (int l = 0; l < L; l++) sum += xr[l];
            const double m = sum / L;
#pragma omp simd reduction(+ : sq)
            for (int l = 0; l < L; l++) {
                double dev = (double)xr[l] - m;
                sq += dev * dev;
            }
            const double var = sq / L, unbiased = L > 1 ? var * L / (L - 1) : var;
            const double is = 1.0 / sqrt(var + (double)eps);
            save_mean[c] = mean = (float)m;
            mean_lo = (float)(m - (double)mean); /* what rounding the mean to float lost */
            save_invstd[c] = invstd = (float)is;
            run_mean[c] = (float)((1.0 - (double)momentum) * run_mean[c] + (double)momentum * m);
            run_var[c] =
                (float)((1.0 - (double)momentum) * run_var[c] + (double)momentum * unbiased);
        } else {
            mean = run_mean[c];
            invstd = (float)(1.0 / sqrt((double)run_var[c] + (double)eps));
        }
        /* centred first, unlike x*scale + shift, and on the double mean: x - mean is exact
         * when x is near the mean, then mean_lo is taken off, so a mean large against the
         * spread costs no accuracy */
        const float scale = invstd * gamma[c], shift = beta[c];
        if (relu) {
#pragma omp simd
            for (int l = 0; l < L; l++) {
                float v = ((xr[l] - mean) - mean_lo) * scale + shift;
                yr[l] = v > 0.0f ? v : 0.0f; /* NaN gives 0, as ELAG_EW_RELU */
            }
        } else {
#pragma omp simd
            for (int l = 0; l < L; l++) yr[l] = ((xr[l] - mean) - mean_lo) * scale + shift;
        }
    }
    return ELAG_OK;
}

elag_status elag_cpu_fast_batchnorm_backward(elag_backend *b, float *dx, float *dgamma,
                                             float *dbeta, const float *dy, const float *x, int C,
                                             int L, const float *gamma, const float *save_mean,
                                             const float *save_invstd)
{
    const size_t total = (size_t)C * L;
    /* unit: one channel; sums in double, then dx = gamma*invstd * (dy - mean(dy) -
     * xhat*mean(dy*xhat)), the contract's formula with 1/L moved inside, so no term is L
     * times larger than the result */
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN) schedule(static)
    for (int c = 0; c < C; c++) {
        const float *xr = x + (size_t)c * L, *dyr = dy + (size_t)c * L; /* (L) */
        float *dxr = dx + (size_t)c * L;                                /* (L), may be dyr */
        const float mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
        for (int l = 0; l < L; l++) {
            float xhat = (xr[l] - mean) * invstd;
            sum_dy += dyr[l];
            sum_dy_xhat += (double)dyr[l] * xhat;
        }
        dbeta[c] = (float)sum_dy;
        dgamma[c] = (float)sum_dy_xhat;
        if (L == 0) continue;
        const float k = gamma[c] * invstd;
        const float mean_dy = (float)(sum_dy / L), mean_dy_xhat = (float)(sum_dy_xhat / L);
#pragma omp simd
        for (int l = 0; l < L; l++) {
            float xhat = (xr[l] - mean) * invstd;
            dxr[l] = k * (dyr[l] - mean_dy - xhat * mean_dy_xhat);
        }
    }
    return ELAG_OK;
}

/* ---- dropout ---- */

/* v where live is all ones, +0 where it is 0. */
static inline float masked(float v, uint32_t live)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= live;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* One Philox call gives the 4 elements that share a counter (philox.h: element index g uses
 * counter g/4 and word g%4), converted exactly as elag_philox_uniform does, so keep is
 * bit-identical to cpu-ref and CUDA. The counters run over [offset, offset + n), which
 * need not start on a multiple of 4. */
elag_status elag_cpu_fast_dropout_forward(elag_backend *b, float *y, float *keep, const float *x,
                                          size_t n, float p, uint64_t seed, uint64_t stream,
                                          uint64_t offset)
{
    if (n == 0) return ELAG_OK;
    const float scale = 1.0f / (1.0f - p);
    const uint64_t first = offset / 4, blocks = (offset + n - 1) / 4 - first + 1;
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
    for (uint64_t k = 0; k < blocks; k++) {
        const uint64_t blk = first + k;
        elag_philox_ctr ctr = {
            {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)}};
        elag_philox_ctr r = elag_philox4x32_10(ctr, seed);
        /* the block's words [w0, w1) fall in [offset, offset + n): all 4 but at the ends */
        const uint64_t g0 = blk * 4;
        const unsigned w0 = g0 < offset ? (unsigned)(offset - g0) : 0;
        const unsigned w1 = g0 + 4 > offset + n ? (unsigned)(offset + n - g0) : 4;
        for (unsigned word = w0; word < w1; word++) {
            const size_t i = (size_t)(g0 + word - offset);
            const float u = (float)(r.v[word] >> 8) * (1.0f / 16777216.0f);
            /* keep = scale or +0, y = x * scale or +0 (as elementwise MUL): bit masks, as a
             * select on a random bit would be a branch mispredicted half the time */
            const uint32_t live = 0u - (uint32_t)(u >= p);
            keep[i] = masked(scale, live);
            y[i] = masked(x[i] * scale, live); /* y may be x: read before written */
        }
    }
    return ELAG_OK;
}
