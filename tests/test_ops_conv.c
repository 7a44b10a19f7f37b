/*
 * The direct convolution ops against cpu-ref (the harness: tests/support/ops_harness.h):
 * conv_forward, conv_backward_data, conv_backward_filter (stride 1, backend.h). Geometries
 * are odd: rows wider than one 16-float vector with a tail, kernels of 25 taps and of 2x3
 * with one-sided padding, output channel counts that are not multiples of the fast tiles
 * (8 and 3), slices of samples inside a batch, a slice adding to an earlier one. By hand,
 * the gradients are computed by scattering (each output's terms pushed to the inputs it
 * read), not by the gathering sums cpu-ref writes, and the three ops must satisfy the
 * adjoint identities <fwd(x), dy> = <x, data(dy)> = <w, filter(dy, x)>. Where the backend
 * has no direct convolution (cuda, or a CPU without AVX-512), supports() must say so and
 * the ops must refuse with ELAG_ERR_UNSUPPORTED; conv2d then runs im2col + gemm.
 */
#include "support/ops_harness.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

OPS_TEST_FILE(OPS_CASES_CONV);

typedef struct ccase {
    const char *name;
    int C, O, N, n0, nb;
    elag_window g; /* {H, W, kh, kw, sh, sw, ph, pw, oh, ow}: oh, ow resolved by win() */
} ccase;

static const ccase ccases[] = {
    {"C3 O5 7x19 k3 p1, samples 1..2 of 4", 3, 5, 4, 1, 2, {7, 19, 3, 3, 1, 1, 1, 1, 0, 0}},
    {"C2 O11 5x5 k5 p2 (25 taps)", 2, 11, 3, 0, 3, {5, 5, 5, 5, 1, 1, 2, 2, 0, 0}},
    {"C4 O3 6x33 k2x3 p1x0", 4, 3, 2, 0, 2, {6, 33, 2, 3, 1, 1, 1, 0, 0, 0}},
    {"C1 O8 28x28 k3 p0, samples 2..4 of 5", 1, 8, 5, 2, 3, {28, 28, 3, 3, 1, 1, 0, 0, 0, 0}},
    {"C16 O32 14x14 k3 p1 (threads)", 16, 32, 6, 0, 6, {14, 14, 3, 3, 1, 1, 1, 1, 0, 0}},
    {"C5 O4 16x16 k3 p1 (one full vector)", 5, 4, 3, 0, 3, {16, 16, 3, 3, 1, 1, 1, 1, 0, 0}},
    {"C3 O7 1x1 k1 p0", 3, 7, 2, 0, 2, {1, 1, 1, 1, 1, 1, 0, 0, 0, 0}},
};
#define N_CCASES (sizeof ccases / sizeof *ccases)

static elag_window win(const elag_window *g0)
{
    elag_window g = *g0;
    cr_assert_eq(elag_window_resolve(&g), ELAG_OK, "%s", elag_last_error());
    return g;
}

typedef struct sizes {
    size_t x, y, w, work; /* floats of x (C,N,H,W), y (O,N,oh,ow), w (O,C,kh,kw), work */
    int taps;
} sizes;

static sizes sizes_of(const ccase *cc, const elag_window *g)
{
    sizes s;
    s.taps = g->kh * g->kw;
    s.x = (size_t)cc->C * cc->N * g->H * g->W;
    s.y = (size_t)cc->O * cc->N * g->oh * g->ow;
    s.w = (size_t)cc->O * cc->C * s.taps;
    s.work = elag_conv_work_floats(cc->C, cc->O, cc->nb, g);
    return s;
}

/* Whether the backend under test has a direct convolution for g; if not, it must say so
 * and refuse each op (returns 0: the case has nothing more to compare). */
static int offered(const elag_window *g)
{
    elag_backend *b = T.b;
    char why[160];
    elag_op_query q = {.window = g};
    if (elag_be_supports(b, ELAG_OP_CONV, &q, why, sizeof why) != ELAG_SUPPORT_NO) return 1;
    cr_expect_neq(b->kind, ELAG_DEVICE_CPU_REF, "cpu-ref must run every stride-1 window");
    cr_expect_neq(why[0], '\0', "%s: supports(CONV) says no without a reason", b->name);
    float *d = fout(b, 4096, "scratch");
    elag_status st[3] = {b->conv_forward(b, d, d, d, 1, 1, 1, 0, 1, g, d),
                         b->conv_backward_data(b, d, d, d, 1, 1, 1, 0, 1, g, d),
                         b->conv_backward_filter(b, d, d, d, 1, 1, 1, 0, 1, g, 0.0f, d)};
    for (int k = 0; k < 3; k++)
        cr_expect_eq(st[k], ELAG_ERR_UNSUPPORTED, "%s: op %d without support returned %s", b->name,
                     k, elag_status_name(st[k]));
    cr_log_info("%s: no direct convolution (%s): conv2d runs im2col + gemm", b->name, why);
    return 0;
}

/* x entry (c, n, h, w), 0 outside the plane */
static double xat(const float *x, const ccase *cc, const elag_window *g, int c, int n, int h, int w)
{
    if (h < 0 || h >= g->H || w < 0 || w >= g->W) return 0.0;
    return x[(((size_t)c * cc->N + n) * g->H + h) * g->W + w];
}

static size_t yi(const ccase *cc, const elag_window *g, int o, int n, int v, int u)
{
    return (((size_t)o * cc->N + n) * g->oh + v) * g->ow + u;
}

static size_t wi(const ccase *cc, const elag_window *g, int o, int c, int i, int j)
{
    return (((size_t)o * cc->C + c) * g->kh + i) * g->kw + j;
}

/* ---- forward ---- */

OPS_CASE(conv_forward)
{
    for (size_t k = 0; k < N_CCASES; k++) {
        const ccase *cc = &ccases[k];
        elag_window g = win(&cc->g);
        if (!offered(&g)) return;
        sizes s = sizes_of(cc, &g);
        float *x = hrnd(s.x, -1, 1, 300 + k), *w = hrnd(s.w, -1, 1, 400 + k);
        float *y0 = hrnd(s.y, -1, 1, 500 + k); /* samples outside the slice must stay */
        float *got = hbuf(s.y), *want = hbuf(s.y);
        double *hand = dbuf(s.y);
        elag_backend *pair[2] = {T.ref, T.b};
        for (int p = 0; p < 2; p++) {
            elag_backend *be = pair[p];
            float *dy = fio(be, y0, s.y, "y");
            OKB(be, be->conv_forward(be, dy, fin(be, x, s.x, "x"), fin(be, w, s.w, "w"), cc->C,
                                     cc->O, cc->N, cc->n0, cc->nb, &g, fout(be, s.work, "work")));
            fget(p ? got : want, dy, s.y);
        }
        for (size_t i = 0; i < s.y; i++) hand[i] = y0[i];
        for (int o = 0; o < cc->O; o++)
            for (int n = cc->n0; n < cc->n0 + cc->nb; n++)
                for (int v = 0; v < g.oh; v++)
                    for (int u = 0; u < g.ow; u++) {
                        double sum = 0.0;
                        for (int c = 0; c < cc->C; c++)
                            for (int i = 0; i < g.kh; i++)
                                for (int j = 0; j < g.kw; j++)
                                    sum += w[wi(cc, &g, o, c, i, j)] *
                                           xat(x, cc, &g, c, n, v - g.ph + i, u - g.pw + j);
                        hand[yi(cc, &g, o, n, v, u)] = sum;
                    }
        char what[160];
        snprintf(what, sizeof what, "conv_forward %s", cc->name);
        double scale = sqrt((double)cc->C * s.taps + 1.0);
        expect_close(what, got, want, s.y, scale);
        expect_hand(what, got, to_float(hand, s.y), s.y, scale);
    }
}

/* ---- gradient for x ---- */

OPS_CASE(conv_backward_data)
{
    for (size_t k = 0; k < N_CCASES; k++) {
        const ccase *cc = &ccases[k];
        elag_window g = win(&cc->g);
        if (!offered(&g)) return;
        sizes s = sizes_of(cc, &g);
        float *dyh = hrnd(s.y, -1, 1, 600 + k), *w = hrnd(s.w, -1, 1, 700 + k);
        float *dx0 = hrnd(s.x, -1, 1, 800 + k);
        float *got = hbuf(s.x), *want = hbuf(s.x);
        double *hand = dbuf(s.x);
        elag_backend *pair[2] = {T.ref, T.b};
        for (int p = 0; p < 2; p++) {
            elag_backend *be = pair[p];
            float *dx = fio(be, dx0, s.x, "dx");
            OKB(be,
                be->conv_backward_data(be, dx, fin(be, dyh, s.y, "dy"), fin(be, w, s.w, "w"), cc->C,
                                       cc->O, cc->N, cc->n0, cc->nb, &g, fout(be, s.work, "work")));
            fget(p ? got : want, dx, s.x);
        }
        /* by scattering: each output's gradient pushed to the inputs its window read */
        for (size_t i = 0; i < s.x; i++) hand[i] = dx0[i];
        for (int c = 0; c < cc->C; c++)
            for (int n = cc->n0; n < cc->n0 + cc->nb; n++)
                for (int h = 0; h < g.H; h++)
                    for (int u = 0; u < g.W; u++)
                        hand[(((size_t)c * cc->N + n) * g.H + h) * g.W + u] = 0;
        for (int o = 0; o < cc->O; o++)
            for (int n = cc->n0; n < cc->n0 + cc->nb; n++)
                for (int v = 0; v < g.oh; v++)
                    for (int u = 0; u < g.ow; u++)
                        for (int c = 0; c < cc->C; c++)
                            for (int i = 0; i < g.kh; i++)
                                for (int j = 0; j < g.kw; j++) {
                                    int h = v - g.ph + i, ww = u - g.pw + j;
                                    if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) continue;
                                    hand[(((size_t)c * cc->N + n) * g.H + h) * g.W + ww] +=
                                        (double)w[wi(cc, &g, o, c, i, j)] *
                                        dyh[yi(cc, &g, o, n, v, u)];
                                }
        char what[160];
        snprintf(what, sizeof what, "conv_backward_data %s", cc->name);
        double scale = sqrt((double)cc->O * s.taps + 1.0);
        expect_close(what, got, want, s.x, scale);
        expect_hand(what, got, to_float(hand, s.x), s.x, scale);
    }
}

/* ---- gradient for w, overwriting and then adding a second slice ---- */

OPS_CASE(conv_backward_filter)
{
    for (size_t k = 0; k < N_CCASES; k++) {
        const ccase *cc = &ccases[k];
        elag_window g = win(&cc->g);
        if (!offered(&g)) return;
        sizes s = sizes_of(cc, &g);
        float *x = hrnd(s.x, -1, 1, 900 + k), *dyh = hrnd(s.y, -1, 1, 1000 + k);
        float *got = hbuf(s.w), *want = hbuf(s.w);
        double *hand = dbuf(s.w);
        /* slice [n0, n0+nb) overwrites (beta 0, over NaN), then samples [0, n0) add (beta 1) */
        elag_backend *pair[2] = {T.ref, T.b};
        for (int p = 0; p < 2; p++) {
            elag_backend *be = pair[p];
            int most = cc->nb > cc->n0 ? cc->nb : cc->n0;
            float *dw = fout(be, s.w, "dw");
            float *work = fout(be, elag_conv_work_floats(cc->C, cc->O, most, &g), "work");
            const float *dx = fin(be, x, s.x, "x"), *ddy = fin(be, dyh, s.y, "dy");
            OKB(be, be->conv_backward_filter(be, dw, ddy, dx, cc->C, cc->O, cc->N, cc->n0, cc->nb,
                                             &g, 0.0f, work));
            OKB(be, be->conv_backward_filter(be, dw, ddy, dx, cc->C, cc->O, cc->N, 0, cc->n0, &g,
                                             1.0f, work));
            fget(p ? got : want, dw, s.w);
        }
        for (int o = 0; o < cc->O; o++)
            for (int n = 0; n < cc->n0 + cc->nb; n++)
                for (int v = 0; v < g.oh; v++)
                    for (int u = 0; u < g.ow; u++)
                        for (int c = 0; c < cc->C; c++)
                            for (int i = 0; i < g.kh; i++)
                                for (int j = 0; j < g.kw; j++)
                                    hand[wi(cc, &g, o, c, i, j)] +=
                                        (double)dyh[yi(cc, &g, o, n, v, u)] *
                                        xat(x, cc, &g, c, n, v - g.ph + i, u - g.pw + j);
        char what[160];
        snprintf(what, sizeof what, "conv_backward_filter %s", cc->name);
        double scale = sqrt((double)(cc->n0 + cc->nb) * g.oh * g.ow + 1.0);
        expect_close(what, got, want, s.w, scale);
        expect_hand(what, got, to_float(hand, s.w), s.w, scale);
    }
}

/* ---- the three ops are one linear map and its two adjoints; refusals ---- */

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

OPS_CASE(conv_adjoint)
{
    elag_backend *b = T.b;
    for (size_t k = 0; k < N_CCASES; k++) {
        const ccase *cc = &ccases[k];
        elag_window g = win(&cc->g);
        if (!offered(&g)) break;
        sizes s = sizes_of(cc, &g);
        /* the whole batch, so every entry of x and y takes part */
        size_t work = elag_conv_work_floats(cc->C, cc->O, cc->N, &g);
        float *x = hrnd(s.x, -1, 1, 1100 + k), *w = hrnd(s.w, -1, 1, 1200 + k);
        float *dyh = hrnd(s.y, -1, 1, 1300 + k);
        float *y = hbuf(s.y), *dx = hbuf(s.x), *dw = hbuf(s.w);
        float *d_x = fin(b, x, s.x, "x"), *d_w = fin(b, w, s.w, "w"),
              *d_dy = fin(b, dyh, s.y, "dy");
        float *d_y = fout(b, s.y, "y"), *d_dx = fout(b, s.x, "dx"), *d_dw = fout(b, s.w, "dw");
        float *d_work = fout(b, work, "work");
        OKB(b, b->conv_forward(b, d_y, d_x, d_w, cc->C, cc->O, cc->N, 0, cc->N, &g, d_work));
        OKB(b,
            b->conv_backward_data(b, d_dx, d_dy, d_w, cc->C, cc->O, cc->N, 0, cc->N, &g, d_work));
        OKB(b, b->conv_backward_filter(b, d_dw, d_dy, d_x, cc->C, cc->O, cc->N, 0, cc->N, &g, 0.0f,
                                       d_work));
        fget(y, d_y, s.y), fget(dx, d_dx, s.x), fget(dw, d_dw, s.w);
        double fwd = dot(y, dyh, s.y), data = dot(x, dx, s.x), filt = dot(w, dw, s.w);
        double tol = 1e-5 * (fabs(fwd) + sqrt((double)s.y * cc->C * s.taps));
        cr_expect_leq(fabs(fwd - data), tol, "%s: %s: <fwd(x), dy> %.9g vs <x, data(dy)> %.9g",
                      b->name, cc->name, fwd, data);
        cr_expect_leq(fabs(fwd - filt), tol, "%s: %s: <fwd(x), dy> %.9g vs <w, filter> %.9g",
                      b->name, cc->name, fwd, filt);
    }
    /* misuse, refused alike by every backend's wrapper */
    elag_window g = win(&ccases[0].g), s2 = g, p3 = g;
    s2.sw = 2;
    s2.ow = (g.W + 2 * g.pw - g.kw) / 2 + 1;
    p3.ph = 3, p3.oh = g.H + 6 - g.kh + 1; /* padding >= kernel */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_conv_forward(be, df, df, df, 1, 1, 1, 0, 1, &s2, df));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_conv_backward_data(be, df, df, df, 1, 1, 1, 0, 1, &p3, df));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_conv_backward_filter(be, df, df, df, 1, 1, 1, 0, 1, &g, 0.5f, df));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_conv_forward(be, df, df, df, 1, -1, 1, 0, 1, &g, df));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_conv_forward(be, df, df, df, 1, 1, 2, 1, 2, &g, df));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_conv_forward(be, df, df, NULL, 1, 1, 1, 0, 1, &g, df));
    ALL_RETURN(ELAG_OK, elag_be_conv_forward(be, df, df, df, 1, 1, 1, 0, 0, &g, df)); /* nb 0 */
    /* nb 0 with beta 0 zeroes dw (an empty sum) on every backend that runs it */
    if (offered(&g)) {
        size_t nw = (size_t)g.kh * g.kw; /* C = O = 1 */
        float *dw = fio(b, hrnd(nw, 1, 2, 7), nw, "dw"), *got = hbuf(nw);
        OKB(b, elag_be_conv_backward_filter(b, dw, NULL, NULL, 1, 1, 1, 0, 0, &g, 0.0f, NULL));
        fget(got, dw, nw);
        cr_expect_eq(zeros(got, nw), nw, "%s: an empty slice with beta 0 leaves dw nonzero",
                     b->name);
    }
}
