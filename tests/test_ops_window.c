/*
 * The window ops against cpu-ref (the harness: tests/support/ops_harness.h): im2col, col2im
 * (and the adjoint identity between them) and max/avg pooling forward and backward, with a
 * finite-difference gradient check. Geometries are odd: windows whose stride exceeds the
 * kernel, a kernel the size of the plane, padding wider than the kernel (empty windows),
 * sample ranges inside a batch. Zero sizes are no-ops, negative sizes ELAG_ERR_INTERNAL,
 * a wrong geometry refused alike by every backend; ops::window_resolve checks the geometry.
 */
#include "backend/philox.h"
#include "support/ops_harness.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

OPS_TEST_FILE(OPS_CASES_WINDOW);

/* ---- window ops: im2col, col2im ---- */

typedef struct wcase {
    const char *name;
    int C, N, n0, nb;
    elag_window g;
} wcase;

/* elag_window is {H, W, kh, kw, sh, sw, ph, pw, oh, ow}; oh, ow resolved by win() */
static const wcase wcases[] = {
    {"C3 N5 7x9 k3x2 s2x1 p1x0", 3, 5, 0, 5, {7, 9, 3, 2, 2, 1, 1, 0, 0, 0}},
    {"C3 N5 7x9 k3x2 s2x1 p1x0, samples 1..3", 3, 5, 1, 3, {7, 9, 3, 2, 2, 1, 1, 0, 0, 0}},
    {"kernel = plane 7x9", 2, 3, 0, 3, {7, 9, 7, 9, 1, 1, 0, 0, 0, 0}},
    {"kernel = plane, padded, strided", 2, 3, 2, 1, {7, 9, 7, 9, 2, 3, 1, 1, 0, 0}},
    {"stride > kernel: k2x3 s3x4 p0x1", 3, 4, 1, 2, {9, 11, 2, 3, 3, 4, 0, 1, 0, 0}},
    {"1x1 kernel", 5, 2, 0, 2, {5, 3, 1, 1, 1, 1, 0, 0, 0, 0}},
    {"padding >= kernel: k1x2 s1x2 p1x2", 2, 3, 0, 3, {3, 4, 1, 2, 1, 2, 1, 2, 0, 0}},
    {"1x1 planes", 1, 7, 3, 4, {1, 1, 1, 1, 1, 1, 0, 0, 0, 0}},
    {"C16 N8 14x14 k3x3 s1 p1 (parallel)", 16, 8, 0, 8, {14, 14, 3, 3, 1, 1, 1, 1, 0, 0}},
    {"C4 N6 12x10 k5x5 s2 p2, samples 2..5", 4, 6, 2, 4, {12, 10, 5, 5, 2, 2, 2, 2, 0, 0}},
};
#define N_WCASES (sizeof wcases / sizeof *wcases)

static elag_window win(const elag_window *g0)
{
    elag_window g = *g0;
    cr_assert_eq(elag_window_resolve(&g), ELAG_OK, "%s", elag_last_error());
    return g;
}

static size_t col_rows(int C, const elag_window *g) { return (size_t)C * g->kh * g->kw; }
static size_t col_cols(int nb, const elag_window *g) { return (size_t)nb * g->oh * g->ow; }

/* the index of x that col entry (row, column) reads, or -1 for padding (backend.h) */
static long im2col_src(int N, int n0, const elag_window *g, size_t row, size_t col)
{
    int c = (int)(row / ((size_t)g->kh * g->kw)), i = (int)(row / g->kw % g->kh),
        j = (int)(row % g->kw);
    int n = (int)(col / ((size_t)g->oh * g->ow)), y = (int)(col / g->ow % g->oh),
        x = (int)(col % g->ow);
    int h = y * g->sh - g->ph + i, w = x * g->sw - g->pw + j;
    if (h < 0 || h >= g->H || w < 0 || w >= g->W) return -1;
    return (long)((((size_t)c * N + n0 + n) * g->H + h) * g->W + w);
}

static void im2col_on(elag_backend *be, const float *x, int C, int N, int n0, int nb,
                      const elag_window *g, float *out)
{
    size_t nx = (size_t)C * N * g->H * g->W, ncol = col_rows(C, g) * col_cols(nb, g);
    float *dx = fin(be, x, nx, "x"), *dc = fout(be, ncol, "col");
    OKB(be, be->im2col(be, dc, dx, C, N, n0, nb, g));
    fget(out, dc, ncol);
}

static void col2im_on(elag_backend *be, const float *dx0, const float *col, int C, int N, int n0,
                      int nb, const elag_window *g, float *out)
{
    size_t nx = (size_t)C * N * g->H * g->W, ncol = col_rows(C, g) * col_cols(nb, g);
    float *dc = fin(be, col, ncol, "col"), *dx = fio(be, dx0, nx, "dx");
    OKB(be, be->col2im(be, dx, dc, C, N, n0, nb, g));
    fget(out, dx, nx);
}

/* zero sizes are no-ops, negative sizes ELAG_ERR_INTERNAL, samples out of range and a wrong
 * geometry refused alike everywhere */
static void window_refusals(int is_col2im)
{
    elag_window g = win(&wcases[0].g), bad = g;
    bad.oh += 1; /* not what elag_window_resolve gives */
    for (int k = 0; k < 2; k++) {
        elag_backend *be = k ? T.b : T.ref;
        float x[8] = {0};
        float *dx = is_col2im ? fio(be, x, 0, "dx") : fin(be, x, 0, "x");
        float *dc = is_col2im ? fin(be, x, 0, "col") : fout(be, 0, "col");
        if (is_col2im) {
            OKB(be, be->col2im(be, dx, dc, 0, 5, 0, 5, &g));
            OKB(be, be->col2im(be, dx, dc, 3, 0, 0, 0, &g));
        } else {
            OKB(be, be->im2col(be, dc, dx, 0, 5, 0, 5, &g));
            OKB(be, be->im2col(be, dc, dx, 3, 0, 0, 0, &g));
        }
        /* nb = 0 of N = 5: nothing read or written */
        float *dx5 = fin(be, hrnd(3 * 5 * 63, -1, 1, 5), 3 * 5 * 63, "x");
        if (is_col2im)
            OKB(be, be->col2im(be, fio(be, hrnd(3 * 5 * 63, -1, 1, 5), 3 * 5 * 63, "dx"), dc, 3,
                               5, 2, 0, &g));
        else
            OKB(be, be->im2col(be, dc, dx5, 3, 5, 2, 0, &g));
    }
    if (is_col2im) {
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_col2im(be, df, df, -1, 5, 0, 5, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_col2im(be, df, df, 3, -1, 0, 0, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_col2im(be, df, df, 3, 5, -1, 2, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_col2im(be, df, df, 3, 5, 0, -2, &g));
        ALL_REFUSE(elag_be_col2im(be, df, df, 1, 2, 1, 2, &g)); /* samples 1..2 of 2 */
        ALL_REFUSE(elag_be_col2im(be, df, df, 1, 1, 0, 1, &bad));
    } else {
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_im2col(be, df, df, -1, 5, 0, 5, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_im2col(be, df, df, 3, -1, 0, 0, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_im2col(be, df, df, 3, 5, -1, 2, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_im2col(be, df, df, 3, 5, 0, -2, &g));
        ALL_REFUSE(elag_be_im2col(be, df, df, 1, 2, 1, 2, &g));
        ALL_REFUSE(elag_be_im2col(be, df, df, 1, 1, 0, 1, &bad));
    }
}

OPS_CASE(im2col)
{
    for (size_t c = 0; c < N_WCASES; c++) {
        const wcase *wc = &wcases[c];
        elag_window g = win(&wc->g);
        size_t nx = (size_t)wc->C * wc->N * g.H * g.W;
        size_t rows = col_rows(wc->C, &g), cols = col_cols(wc->nb, &g), ncol = rows * cols;
        float *x = hrnd(nx, -1.0f, 1.0f, 200 + c), *want = hbuf(ncol), *got = hbuf(ncol);
        float *hand = hbuf(ncol);
        for (size_t r = 0; r < rows; r++)
            for (size_t q = 0; q < cols; q++) {
                long s = im2col_src(wc->N, wc->n0, &g, r, q);
                hand[r * cols + q] = s < 0 ? 0.0f : x[s];
            }
        im2col_on(T.ref, x, wc->C, wc->N, wc->n0, wc->nb, &g, want);
        im2col_on(T.b, x, wc->C, wc->N, wc->n0, wc->nb, &g, got);
        char what[128];
        snprintf(what, sizeof what, "im2col %s", wc->name);
        expect_identical(what, got, want, ncol);
        expect_identical(what, got, hand, ncol);
    }
    window_refusals(0);
}

OPS_CASE(col2im)
{
    for (size_t c = 0; c < N_WCASES; c++) {
        const wcase *wc = &wcases[c];
        elag_window g = win(&wc->g);
        size_t nx = (size_t)wc->C * wc->N * g.H * g.W, plane = (size_t)g.H * g.W;
        size_t rows = col_rows(wc->C, &g), cols = col_cols(wc->nb, &g), ncol = rows * cols;
        float *col = hrnd(ncol, -1.0f, 1.0f, 300 + c), *dx0 = hrnd(nx, -1.0f, 1.0f, 350 + c);
        float *want = hbuf(nx), *got = hbuf(nx);
        double *hand = dbuf(nx);
        for (size_t i = 0; i < nx; i++) hand[i] = dx0[i];
        for (size_t r = 0; r < rows; r++)
            for (size_t q = 0; q < cols; q++) {
                long s = im2col_src(wc->N, wc->n0, &g, r, q);
                if (s >= 0) hand[s] += col[r * cols + q];
            }
        col2im_on(T.ref, dx0, col, wc->C, wc->N, wc->n0, wc->nb, &g, want);
        col2im_on(T.b, dx0, col, wc->C, wc->N, wc->n0, wc->nb, &g, got);
        /* each entry sums at most ceil(kh/sh) * ceil(kw/sw) window entries onto dx */
        double terms = (double)((g.kh + g.sh - 1) / g.sh) * ((g.kw + g.sw - 1) / g.sw) + 1.0;
        char what[128];
        snprintf(what, sizeof what, "col2im %s", wc->name);
        expect_close(what, got, want, nx, sqrt(terms));
        expect_hand(what, got, to_float(hand, nx), nx, sqrt(terms));
        for (size_t i = 0; i < nx; i++) { /* samples outside [n0, n0 + nb) untouched */
            int n = (int)(i / plane % wc->N);
            if ((n < wc->n0 || n >= wc->n0 + wc->nb) && memcmp(&got[i], &dx0[i], 4) != 0) {
                cr_expect(0, "%s: %s changed sample %d (entry %zu)", T.b->name, what, n, i);
                break;
            }
        }
    }
    window_refusals(1);
}

/* <im2col(x), c> == <x, col2im(c)> (from dx = 0), in double, on the backend under test */
OPS_CASE(col2im_adjoint)
{
    elag_backend *b = T.b;
    for (size_t c = 0; c < N_WCASES; c++) {
        const wcase *wc = &wcases[c];
        elag_window g = win(&wc->g);
        size_t nx = (size_t)wc->C * wc->N * g.H * g.W;
        size_t ncol = col_rows(wc->C, &g) * col_cols(wc->nb, &g);
        float *x = hrnd(nx, -1.0f, 1.0f, 400 + c), *cv = hrnd(ncol, -1.0f, 1.0f, 450 + c);
        float *ax = hbuf(ncol), *atc = hbuf(nx), *z = hbuf(nx);
        im2col_on(b, x, wc->C, wc->N, wc->n0, wc->nb, &g, ax);
        col2im_on(b, z, cv, wc->C, wc->N, wc->n0, wc->nb, &g, atc);
        double lhs = 0.0, rhs = 0.0, mag = 0.0;
        for (size_t i = 0; i < ncol; i++) {
            lhs += (double)ax[i] * cv[i];
            mag += fabs((double)ax[i] * cv[i]);
        }
        for (size_t i = 0; i < nx; i++) rhs += (double)x[i] * atc[i];
        cr_expect(fabs(lhs - rhs) <= ELAG_TOL_ADJOINT_REL * mag + 1e-12,
                  "%s: %s: <im2col(x), c> = %.12g but <x, col2im(c)> = %.12g (|terms| %g)",
                  b->name, wc->name, lhs, rhs, mag);
    }
}

/* ---- pooling ---- */

typedef struct pcase {
    const char *name;
    int planes;
    elag_window g;
} pcase;

static const pcase pcases[] = {
    {"15 planes 7x9 k3x2 s2x1 p1x0", 15, {7, 9, 3, 2, 2, 1, 1, 0, 0, 0}},
    {"global: kernel = plane 7x9", 6, {7, 9, 7, 9, 1, 1, 0, 0, 0, 0}},
    {"stride > kernel: 9x11 k2x3 s3x4 p0x1", 4, {9, 11, 2, 3, 3, 4, 0, 1, 0, 0}},
    {"padding >= kernel (empty windows): 3x4 k1x2 s1x2 p1x2", 3, {3, 4, 1, 2, 1, 2, 1, 2, 0, 0}},
    {"overlapping 5x5 k3x3 s1 p1", 5, {5, 5, 3, 3, 1, 1, 1, 1, 0, 0}},
    {"64 planes 28x28 k2x2 s2 (parallel)", 64, {28, 28, 2, 2, 2, 2, 0, 0, 0, 0}},
    {"13 planes 10x10 k3x3 s2 p1", 13, {10, 10, 3, 3, 2, 2, 1, 1, 0, 0}},
};
#define N_PCASES (sizeof pcases / sizeof *pcases)

/* pool_forward by the words of backend.h; y in double for avg */
static void pool_hand(elag_pool_mode mode, const float *x, int planes, const elag_window *g,
                      float *y, int32_t *am)
{
    for (int p = 0; p < planes; p++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                double s = 0.0;
                float best = 0.0f;
                int32_t arg = -1;
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int h = oy * g->sh - g->ph + i, w = ox * g->sw - g->pw + j;
                        if (h < 0 || h >= g->H || w < 0 || w >= g->W) continue;
                        float v = x[((size_t)p * g->H + h) * g->W + w];
                        if (arg < 0 || v > best) best = v, arg = h * g->W + w;
                        s += v;
                    }
                size_t o = ((size_t)p * g->oh + oy) * g->ow + ox;
                if (mode == ELAG_POOL_MAX) {
                    y[o] = arg < 0 ? 0.0f : best;
                    am[o] = arg;
                } else {
                    y[o] = (float)(s / (g->kh * g->kw));
                }
            }
}

static void pool_back_hand(elag_pool_mode mode, const float *dy, const int32_t *am, int planes,
                           const elag_window *g, double *dx)
{
    size_t plane = (size_t)g->H * g->W;
    memset(dx, 0, planes * plane * sizeof *dx);
    for (int p = 0; p < planes; p++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                size_t o = ((size_t)p * g->oh + oy) * g->ow + ox;
                if (mode == ELAG_POOL_MAX) {
                    if (am[o] >= 0) dx[p * plane + am[o]] += dy[o];
                    continue;
                }
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int h = oy * g->sh - g->ph + i, w = ox * g->sw - g->pw + j;
                        if (h < 0 || h >= g->H || w < 0 || w >= g->W) continue;
                        dx[p * plane + (size_t)h * g->W + w] += (double)dy[o] / (g->kh * g->kw);
                    }
            }
}

static void pool_fwd_on(elag_backend *be, elag_pool_mode mode, const float *x, int planes,
                        const elag_window *g, float *y, int32_t *am)
{
    size_t nx = (size_t)planes * g->H * g->W, ny = (size_t)planes * g->oh * g->ow;
    float *dx = fin(be, x, nx, "x"), *dy = fout(be, ny, "y");
    int32_t *dam = mode == ELAG_POOL_MAX ? iout(be, ny, "argmax") : NULL;
    OKB(be, be->pool_forward(be, mode, dy, dam, dx, planes, g));
    fget(y, dy, ny);
    if (dam) iget(am, dam, ny);
}

static void pool_bwd_on(elag_backend *be, elag_pool_mode mode, const float *dy, const int32_t *am,
                        int planes, const elag_window *g, float *dx)
{
    size_t nx = (size_t)planes * g->H * g->W, ny = (size_t)planes * g->oh * g->ow;
    float *ddy = fin(be, dy, ny, "dy"), *ddx = fout(be, nx, "dx");
    int32_t *dam = mode == ELAG_POOL_MAX ? iin(be, am, ny, "argmax") : NULL;
    OKB(be, be->pool_backward(be, mode, ddx, ddy, dam, planes, g));
    fget(dx, ddx, nx);
}

/* x for pooling: random, or with many ties (values in {-1, 0, 1}) */
static float *pool_input(size_t n, int ties, uint64_t seed)
{
    float *x = hrnd(n, -1.0f, 1.0f, seed);
    if (ties)
        for (size_t i = 0; i < n; i++) x[i] = (float)((int)(elag_philox_u32(seed, 9, i) % 3) - 1);
    return x;
}

static void pool_refusals(int backward)
{
    elag_window g = win(&pcases[0].g), bad = g;
    bad.ow += 2;
    for (int k = 0; k < 2; k++) { /* planes 0: nothing read or written */
        elag_backend *be = k ? T.b : T.ref;
        float *dx = fout(be, 0, "x"), *dy = fout(be, 0, "y");
        int32_t *dam = iout(be, 0, "argmax");
        for (int mode = 0; mode < 2; mode++) {
            if (backward)
                OKB(be, be->pool_backward(be, (elag_pool_mode)mode, dx, dy, dam, 0, &g));
            else
                OKB(be, be->pool_forward(be, (elag_pool_mode)mode, dy, dam, dx, 0, &g));
        }
    }
    for (int mode = 0; mode < 2; mode++) {
        elag_pool_mode md = (elag_pool_mode)mode;
        if (backward) {
            ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_pool_backward(be, md, df, df, di, -1, &g));
            ALL_REFUSE(elag_be_pool_backward(be, md, df, df, di, 1, &bad));
        } else {
            ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_pool_forward(be, md, df, di, df, -1, &g));
            ALL_REFUSE(elag_be_pool_forward(be, md, df, di, df, 1, &bad));
        }
    }
    if (backward) {
        ALL_REFUSE(elag_be_pool_backward(be, (elag_pool_mode)7, df, df, di, 1, &g));
        ALL_REFUSE(elag_be_pool_backward(be, ELAG_POOL_MAX, df, df, NULL, 1, &g));
    } else {
        ALL_REFUSE(elag_be_pool_forward(be, (elag_pool_mode)7, df, di, df, 1, &g));
        ALL_REFUSE(elag_be_pool_forward(be, ELAG_POOL_MAX, df, NULL, df, 1, &g));
    }
}

OPS_CASE(pool_forward)
{
    for (size_t c = 0; c < N_PCASES; c++)
        for (int ties = 0; ties < 2; ties++) {
            const pcase *pc = &pcases[c];
            elag_window g = win(&pc->g);
            size_t nx = (size_t)pc->planes * g.H * g.W, ny = (size_t)pc->planes * g.oh * g.ow;
            float *x = pool_input(nx, ties, 500 + c);
            float *want = hbuf(ny), *got = hbuf(ny), *hand = hbuf(ny);
            int32_t *am_want = ibuf(ny), *am_got = ibuf(ny), *am_hand = ibuf(ny);
            char what[128];
            /* max: which entry is the maximum is data movement, so bit for bit */
            pool_hand(ELAG_POOL_MAX, x, pc->planes, &g, hand, am_hand);
            pool_fwd_on(T.ref, ELAG_POOL_MAX, x, pc->planes, &g, want, am_want);
            pool_fwd_on(T.b, ELAG_POOL_MAX, x, pc->planes, &g, got, am_got);
            snprintf(what, sizeof what, "max pool %s%s", pc->name, ties ? ", ties" : "");
            expect_identical(what, got, want, ny);
            expect_identical(what, got, hand, ny);
            expect_identical_i32(what, am_got, am_want, ny);
            expect_identical_i32(what, am_got, am_hand, ny);
            /* avg: a sum of the window over kh*kw */
            pool_hand(ELAG_POOL_AVG, x, pc->planes, &g, hand, am_hand);
            pool_fwd_on(T.ref, ELAG_POOL_AVG, x, pc->planes, &g, want, NULL);
            pool_fwd_on(T.b, ELAG_POOL_AVG, x, pc->planes, &g, got, NULL);
            snprintf(what, sizeof what, "avg pool %s%s", pc->name, ties ? ", ties" : "");
            expect_close(what, got, want, ny, 1.0);
            expect_hand(what, got, hand, ny, 1.0);
        }
    pool_refusals(0);
}

OPS_CASE(pool_backward)
{
    for (size_t c = 0; c < N_PCASES; c++)
        for (int mode = 0; mode < 2; mode++) {
            const pcase *pc = &pcases[c];
            elag_pool_mode md = (elag_pool_mode)mode;
            elag_window g = win(&pc->g);
            size_t nx = (size_t)pc->planes * g.H * g.W, ny = (size_t)pc->planes * g.oh * g.ow;
            float *x = pool_input(nx, 1, 600 + c), *y = hbuf(ny), *dy = hrnd(ny, -1, 1, 650 + c);
            int32_t *am = ibuf(ny);
            pool_hand(ELAG_POOL_MAX, x, pc->planes, &g, y, am); /* argmax with ties, -1s */
            float *want = hbuf(nx), *got = hbuf(nx);
            double *hand = dbuf(nx);
            pool_back_hand(md, dy, am, pc->planes, &g, hand);
            pool_bwd_on(T.ref, md, dy, am, pc->planes, &g, want);
            pool_bwd_on(T.b, md, dy, am, pc->planes, &g, got);
            /* each dx entry sums at most ceil(kh/sh) * ceil(kw/sw) windows' dy */
            double terms = (double)((g.kh + g.sh - 1) / g.sh) * ((g.kw + g.sw - 1) / g.sw);
            char what[128];
            snprintf(what, sizeof what, "%s pool backward %s", mode ? "avg" : "max", pc->name);
            expect_close(what, got, want, nx, sqrt(terms));
            expect_hand(what, got, to_float(hand, nx), nx, sqrt(terms));
        }
    pool_refusals(1);
}

/* d/dx of <w, pool(x)> by central differences against pool_backward(dy = w), on the backend
 * under test. Max pooling gets distinct values 0.05 apart (a permutation), so a step of
 * ELAG_FD_EPS never changes which entry is the maximum. */
static void pool_fd(elag_pool_mode mode, int planes, const elag_window *g0, const char *name)
{
    elag_backend *b = T.b;
    elag_window g = win(g0);
    size_t nx = (size_t)planes * g.H * g.W, ny = (size_t)planes * g.oh * g.ow;
    float *x = hrnd(nx, -1.0f, 1.0f, 700);
    if (mode == ELAG_POOL_MAX)
        for (size_t i = 0; i < nx; i++)
            x[i] = 0.05f * ((float)((i * 7919u) % nx) - (float)nx / 2);
    float *w = hrnd(ny, -1.0f, 1.0f, 701), *y = hbuf(ny);
    float *dx = fio(b, x, nx, "x"), *dy = fout(b, ny, "y"), *dw = fin(b, w, ny, "dy");
    float *dgx = fout(b, nx, "dx");
    int32_t *dam = mode == ELAG_POOL_MAX ? iout(b, ny, "argmax") : NULL;
    OK(b->pool_forward(b, mode, dy, dam, dx, planes, &g));
    OK(b->pool_backward(b, mode, dgx, dw, dam, planes, &g));
    float *analytic = hbuf(nx), *numeric = hbuf(nx);
    fget(analytic, dgx, nx);
    for (size_t i = 0; i < nx; i++) {
        double loss[2];
        for (int s = 0; s < 2; s++) {
            float v = x[i] + (s ? -ELAG_FD_EPS : ELAG_FD_EPS);
            OK(b->to_device(b, dx + i, &v, 4));
            OK(b->pool_forward(b, mode, dy, dam, dx, planes, &g));
            fget(y, dy, ny);
            loss[s] = 0.0;
            for (size_t o = 0; o < ny; o++) loss[s] += (double)w[o] * y[o];
        }
        OK(b->to_device(b, dx + i, &x[i], 4));
        numeric[i] = (float)((loss[0] - loss[1]) / (2.0 * ELAG_FD_EPS));
    }
    char what[128];
    snprintf(what, sizeof what, "%s pool gradient %s", mode ? "avg" : "max", name);
    expect_within(what, analytic, numeric, nx, ELAG_TOL_FD_ABS, ELAG_TOL_FD_REL, 1.0);
}

OPS_CASE(pool_gradcheck)
{
    const int planes[] = {3, 2, 2, 2, 2};
    const size_t which[] = {0, 1, 2, 3, 4};
    for (size_t k = 0; k < sizeof which / sizeof *which; k++)
        for (int mode = 0; mode < 2; mode++)
            pool_fd((elag_pool_mode)mode, planes[k], &pcases[which[k]].g, pcases[which[k]].name);
}

/* ---- needing no backend ---- */

Test(ops, window_resolve)
{
    for (size_t c = 0; c < N_WCASES; c++) {
        elag_window g = win(&wcases[c].g);
        cr_expect_eq(g.oh, (g.H + 2 * g.ph - g.kh) / g.sh + 1, "%s", wcases[c].name);
        cr_expect_eq(g.ow, (g.W + 2 * g.pw - g.kw) / g.sw + 1, "%s", wcases[c].name);
    }
    elag_window g = {7, 9, 3, 2, 2, 1, 1, 0, 0, 0};
    cr_expect_eq(elag_window_resolve(&g), ELAG_OK);
    cr_expect(g.oh == 4 && g.ow == 8, "7x9 k3x2 s2x1 p1x0 gives %dx%d, want 4x8", g.oh, g.ow);
    const elag_window bad[] = {
        {7, 9, 10, 2, 1, 1, 1, 0, 0, 0}, /* kernel taller than the padded input */
        {7, 9, 3, 2, 0, 1, 0, 0, 0, 0},  /* stride 0 */
        {7, 9, 3, 2, 1, 1, -1, 0, 0, 0}, /* negative padding */
        {0, 9, 1, 1, 1, 1, 0, 0, 0, 0},  /* empty input */
        {7, 9, 0, 2, 1, 1, 0, 0, 0, 0},  /* empty kernel */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        elag_window b = bad[i];
        cr_expect_eq(elag_window_resolve(&b), ELAG_ERR_INPUT, "bad window %zu accepted", i);
    }
}
