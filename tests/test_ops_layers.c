/*
 * Batch norm and dropout against cpu-ref (the harness: tests/support/ops_harness.h):
 * batchnorm_forward in training (batch statistics, running ones updated with the unbiased
 * variance) and eval mode, batchnorm_backward from the saved statistics, both in place
 * where the contract allows; dropout_forward, bit for bit on every backend, per (seed,
 * stream, offset). The backward ops are checked by central differences.
 */
#include "backend/philox.h"
#include "support/ops_harness.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

OPS_TEST_FILE(OPS_CASES_LAYERS);

/* ---- batch norm ---- */

typedef struct bncase {
    const char *name;
    int C, L;
    float lo, hi, momentum;
} bncase;

static const bncase bncases[] = {
    {"C3 L315", 3, 315, -1.0f, 1.0f, 0.1f},
    {"C5 L1", 5, 1, -1.0f, 1.0f, 0.1f},
    {"C1 L2", 1, 2, -1.0f, 1.0f, 0.1f},
    {"C7 L37, mean 3", 7, 37, 2.0f, 4.0f, 0.1f},
    {"C16 L4099", 16, 4099, -1.0f, 1.0f, 0.1f},
    {"C4 L4, momentum 1", 4, 4, -1.0f, 1.0f, 1.0f},
    {"C33 L10", 33, 10, -0.5f, 1.5f, 0.3f},
};
#define N_BNCASES (sizeof bncases / sizeof *bncases)
#define BN_EPS 1e-5f

typedef struct bn_io {
    float *y, *rm, *rv, *sm, *si; /* outputs (host) */
} bn_io;

static bn_io bn_alloc(int C, int L)
{
    bn_io o = {hbuf((size_t)C * L), hbuf(C), hbuf(C), hbuf(C), hbuf(C)};
    return o;
}

static void bn_fwd_on(elag_backend *be, int flags, int alias, const float *x, int C, int L,
                      const float *gamma, const float *beta, const float *rm0, const float *rv0,
                      float mom, bn_io *o)
{
    size_t n = (size_t)C * L;
    float *dx = alias ? fio(be, x, n, "x = y") : fin(be, x, n, "x");
    float *dy = alias ? dx : fout(be, n, "y");
    float *dg = fin(be, gamma, C, "gamma"), *db = fin(be, beta, C, "beta");
    float *drm = fio(be, rm0, C, "run_mean"), *drv = fio(be, rv0, C, "run_var");
    const int training = flags & ELAG_BN_TRAINING;
    float *dsm = training ? fout(be, C, "save_mean") : NULL;
    float *dsi = training ? fout(be, C, "save_invstd") : NULL;
    OKB(be, be->batchnorm_forward(be, flags, dy, dx, C, L, dg, db, drm, drv, mom, BN_EPS, dsm,
                                  dsi));
    fget(o->y, dy, n);
    fget(o->rm, drm, C);
    fget(o->rv, drv, C);
    if (training) fget(o->sm, dsm, C), fget(o->si, dsi, C);
}

/* training-mode statistics of row c in double */
static void bn_stats(const float *x, int L, double *mean, double *var)
{
    double s = 0.0, q = 0.0;
    for (int l = 0; l < L; l++) s += x[l];
    *mean = s / L;
    for (int l = 0; l < L; l++) q += (x[l] - *mean) * (x[l] - *mean);
    *var = q / L;
}

OPS_CASE(batchnorm_forward)
{
    for (size_t c = 0; c < N_BNCASES; c++) {
        const bncase *bc = &bncases[c];
        int C = bc->C, L = bc->L;
        size_t n = (size_t)C * L;
        float *x = hrnd(n, bc->lo, bc->hi, 800 + c), *gamma = hrnd(C, 0.5f, 1.5f, 810 + c);
        float *beta = hrnd(C, -0.5f, 0.5f, 820 + c), *rm0 = hrnd(C, -1.0f, 1.0f, 830 + c);
        float *rv0 = hrnd(C, 0.5f, 1.5f, 840 + c);
        /* by hand, in double */
        double *y = dbuf(n), *sm = dbuf(C), *si = dbuf(C), *rm = dbuf(C), *rv = dbuf(C);
        double *ye = dbuf(n), *hvar = dbuf(C);
        double m = bc->momentum;
        for (int ch = 0; ch < C; ch++) {
            double mean, var;
            bn_stats(x + (size_t)ch * L, L, &mean, &var);
            hvar[ch] = var;
            sm[ch] = mean, si[ch] = 1.0 / sqrt(var + BN_EPS);
            rm[ch] = (1 - m) * rm0[ch] + m * mean;
            rv[ch] = (1 - m) * rv0[ch] + m * (L > 1 ? var * L / (L - 1) : var);
            double eis = 1.0 / sqrt((double)rv0[ch] + BN_EPS);
            for (int l = 0; l < L; l++) {
                size_t i = (size_t)ch * L + l;
                y[i] = (x[i] - mean) * si[ch] * gamma[ch] + beta[ch];
                ye[i] = (x[i] - rm0[ch]) * eis * gamma[ch] + beta[ch];
            }
        }
        for (int alias = 0; alias < 2; alias++) {
            bn_io r = bn_alloc(C, L), o = bn_alloc(C, L);
            bn_fwd_on(T.ref, 1, 0, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &r);
            bn_fwd_on(T.b, 1, alias, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &o);
            char what[128];
            snprintf(what, sizeof what, "batchnorm training %s%s", bc->name, alias ? " y=x" : "");
            expect_close(what, o.y, r.y, n, 1.0);
            expect_close("save_mean", o.sm, r.sm, C, 1.0);
            expect_close("save_invstd", o.si, r.si, C, 1.0);
            expect_close("run_mean", o.rm, r.rm, C, 1.0);
            expect_close("run_var", o.rv, r.rv, C, 1.0);
            expect_hand(what, o.y, to_float(y, n), n, 1.0);
            expect_hand("save_mean by hand", o.sm, to_float(sm, C), C, 1.0);
            expect_hand("save_invstd by hand", o.si, to_float(si, C), C, 1.0);
            expect_hand("run_mean by hand", o.rm, to_float(rm, C), C, 1.0);
            expect_hand("run_var by hand (unbiased)", o.rv, to_float(rv, C), C, 1.0);
            if (L > 1 && L < 1000) /* the unbiased variance, told apart from the biased one */
                for (int ch = 0; ch < C; ch++) {
                    double biased = (1 - m) * rv0[ch] + m * hvar[ch];
                    if (!(fabs(o.rv[ch] - rv[ch]) < 0.25 * fabs(rv[ch] - biased))) {
                        cr_expect(0,
                                  "%s: %s channel %d: run_var %.9g, unbiased %.9g, biased %.9g",
                                  T.b->name, what, ch, (double)o.rv[ch], rv[ch], biased);
                        break;
                    }
                }
            /* eval: the running statistics, which stay as they were */
            bn_io e = bn_alloc(C, L);
            bn_fwd_on(T.b, 0, alias, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &e);
            snprintf(what, sizeof what, "batchnorm eval %s%s", bc->name, alias ? " y=x" : "");
            expect_hand(what, e.y, to_float(ye, n), n, 1.0);
            expect_identical("eval leaves run_mean", e.rm, rm0, C);
            expect_identical("eval leaves run_var", e.rv, rv0, C);
            /* ELAG_BN_RELU: the same outputs with max(y, 0), statistics unchanged */
            for (int training = 0; training < 2; training++) {
                bn_io f = bn_alloc(C, L), ref = bn_alloc(C, L);
                int flags = ELAG_BN_RELU | (training ? ELAG_BN_TRAINING : 0);
                bn_fwd_on(T.ref, flags, 0, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &ref);
                bn_fwd_on(T.b, flags, alias, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &f);
                double *hy = training ? y : ye, *hr = dbuf(n);
                for (size_t i = 0; i < n; i++) hr[i] = hy[i] > 0.0 ? hy[i] : 0.0;
                snprintf(what, sizeof what, "batchnorm %s + relu %s%s",
                         training ? "training" : "eval", bc->name, alias ? " y=x" : "");
                expect_close(what, f.y, ref.y, n, 1.0);
                expect_hand(what, f.y, to_float(hr, n), n, 1.0);
                size_t neg = 0;
                for (size_t i = 0; i < n; i++) neg += f.y[i] < 0.0f || signbit(f.y[i]);
                cr_expect_eq(neg, 0, "%s: %s: %zu outputs below +0 after the fused ReLU",
                             T.b->name, what, neg);
                if (training) expect_close("run_var with relu", f.rv, r.rv, C, 1.0);
            }
        }
    }
    /* C = 0: nothing read or written */
    float none;
    bn_io z = {&none, &none, &none, &none, &none};
    for (int training = 0; training < 2; training++)
        bn_fwd_on(T.b, training, 0, &none, 0, 5, &none, &none, &none, &none, 0.1f, &z);
    /* L = 0: no samples, no statistics: the running buffers stay */
    const float g3[3] = {1, 2, 3}, b3[3] = {0.5f, 0, -0.5f}, rm3[3] = {0.25f, -1, 2},
                rv3[3] = {1, 0.5f, 2};
    for (int training = 0; training < 2; training++) {
        float y, rm[3], rv[3], sm[3], si[3];
        bn_io o = {&y, rm, rv, sm, si};
        bn_fwd_on(T.b, training, 0, &none, 3, 0, g3, b3, rm3, rv3, 0.1f, &o);
        expect_identical("L = 0 leaves run_mean", rm, rm3, 3);
        expect_identical("L = 0 leaves run_var", rv, rv3, 3);
    }
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_batchnorm_forward(be, 1, df, df, -1, 4, df, df, df, df,
                                                            0.1f, BN_EPS, df, df));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_batchnorm_forward(be, 1, df, df, 2, -4, df, df, df, df,
                                                            0.1f, BN_EPS, df, df));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_batchnorm_forward(be, 0, df, df, -1, 4, df, df, df, df,
                                                            0.1f, BN_EPS, NULL, NULL));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_batchnorm_forward(be, 4, df, df, 2, 4, df, df, df, df,
                                                            0.1f, BN_EPS, df, df)); /* flags */
}

static void bn_bwd_on(elag_backend *be, int alias, const float *dy, const float *x, int C, int L,
                      const float *gamma, const float *sm, const float *si, float *dx,
                      float *dgamma, float *dbeta)
{
    size_t n = (size_t)C * L;
    float *ddy = alias ? fio(be, dy, n, "dy = dx") : fin(be, dy, n, "dy");
    float *ddx = alias ? ddy : fout(be, n, "dx");
    float *dxx = fin(be, x, n, "x"), *dg = fin(be, gamma, C, "gamma");
    float *dsm = fin(be, sm, C, "save_mean"), *dsi = fin(be, si, C, "save_invstd");
    float *ddg = fout(be, C, "dgamma"), *ddb = fout(be, C, "dbeta");
    OKB(be, be->batchnorm_backward(be, ddx, ddg, ddb, ddy, dxx, C, L, dg, dsm, dsi));
    fget(dx, ddx, n);
    fget(dgamma, ddg, C);
    fget(dbeta, ddb, C);
}

OPS_CASE(batchnorm_backward)
{
    for (size_t c = 0; c < N_BNCASES; c++) {
        const bncase *bc = &bncases[c];
        int C = bc->C, L = bc->L;
        size_t n = (size_t)C * L;
        float *x = hrnd(n, bc->lo, bc->hi, 900 + c), *gamma = hrnd(C, 0.5f, 1.5f, 910 + c);
        float *beta = hrnd(C, -0.5f, 0.5f, 920 + c), *rm0 = hrnd(C, -1.0f, 1.0f, 930 + c);
        float *rv0 = hrnd(C, 0.5f, 1.5f, 940 + c), *dy = hrnd(n, -1.0f, 1.0f, 950 + c);
        bn_io f = bn_alloc(C, L);
        bn_fwd_on(T.ref, 1, 0, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &f);
        /* by hand, in double, from the saved statistics */
        double *dx = dbuf(n), *dg = dbuf(C), *db = dbuf(C), scale = 0.0;
        for (int ch = 0; ch < C; ch++) {
            const float *xr = x + (size_t)ch * L, *dyr = dy + (size_t)ch * L;
            for (int l = 0; l < L; l++) {
                db[ch] += dyr[l];
                dg[ch] += dyr[l] * ((xr[l] - (double)f.sm[ch]) * f.si[ch]);
            }
            double k = gamma[ch] * (double)f.si[ch];
            for (int l = 0; l < L; l++) {
                double xhat = (xr[l] - (double)f.sm[ch]) * f.si[ch];
                dx[(size_t)ch * L + l] = k / L * (L * (double)dyr[l] - db[ch] - xhat * dg[ch]);
                if (fabs(k * dyr[l]) > scale) scale = fabs(k * dyr[l]);
            }
        }
        for (int alias = 0; alias < 2; alias++) {
            float *rdx = hbuf(n), *rdg = hbuf(C), *rdb = hbuf(C);
            float *gdx = hbuf(n), *gdg = hbuf(C), *gdb = hbuf(C);
            bn_bwd_on(T.ref, 0, dy, x, C, L, gamma, f.sm, f.si, rdx, rdg, rdb);
            bn_bwd_on(T.b, alias, dy, x, C, L, gamma, f.sm, f.si, gdx, gdg, gdb);
            char what[128];
            snprintf(what, sizeof what, "batchnorm backward %s%s", bc->name,
                     alias ? " dx=dy" : "");
            /* normalised: dx = gamma invstd / L (L dy - dbeta - xhat dgamma) is a difference
             * of terms of size L |dy| that cancel to size |dy|, so its bound scales with
             * max |gamma invstd dy|; the sums over a row with sqrt(L) */
            expect_close(what, gdx, rdx, n, scale);
            expect_close("dgamma", gdg, rdg, C, sqrt((double)L));
            expect_close("dbeta", gdb, rdb, C, sqrt((double)L));
            expect_hand(what, gdx, to_float(dx, n), n, scale);
            expect_hand("dgamma by hand", gdg, to_float(dg, C), C, sqrt((double)L));
            expect_hand("dbeta by hand", gdb, to_float(db, C), C, sqrt((double)L));
        }
    }
    float none;
    bn_bwd_on(T.b, 0, &none, &none, 0, 5, &none, &none, &none, &none, &none, &none); /* C = 0 */
    /* L = 0: sums over no samples, dgamma = dbeta = 0 */
    const float g3[3] = {1, 2, 3}, s3[3] = {0.5f, 0, -0.5f}, zero3[3] = {0, 0, 0};
    float dg3[3], db3[3];
    bn_bwd_on(T.b, 0, &none, &none, 3, 0, g3, s3, g3, &none, dg3, db3);
    expect_identical("L = 0: dgamma", dg3, zero3, 3);
    expect_identical("L = 0: dbeta", db3, zero3, 3);
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_batchnorm_backward(be, df, df, df, df, df, -1, 4, df, df, df));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_batchnorm_backward(be, df, df, df, df, df, 2, -4, df, df, df));
}

/* d/d(x, gamma, beta) of <w, batchnorm_training(x)> by central differences against
 * batchnorm_backward(dy = w), on the backend under test */
static void bn_fd(int C, int L, uint64_t seed)
{
    elag_backend *b = T.b;
    size_t n = (size_t)C * L;
    float *x = hrnd(n, -1.0f, 1.0f, seed), *gamma = hrnd(C, 0.5f, 1.5f, seed + 1);
    float *beta = hrnd(C, -0.5f, 0.5f, seed + 2), *w = hrnd(n, -1.0f, 1.0f, seed + 3);
    float *y = hbuf(n);
    float *dx = fio(b, x, n, "x"), *dg = fio(b, gamma, C, "gamma"), *db = fio(b, beta, C, "beta");
    float *dy = fout(b, n, "y"), *dw = fin(b, w, n, "dy");
    float *drm = fout(b, C, "run_mean"), *drv = fout(b, C, "run_var");
    float *dsm = fout(b, C, "save_mean"), *dsi = fout(b, C, "save_invstd");
    float *gx = fout(b, n, "dx"), *gg = fout(b, C, "dgamma"), *gb = fout(b, C, "dbeta");
    OK(b->batchnorm_forward(b, 1, dy, dx, C, L, dg, db, drm, drv, 0.1f, BN_EPS, dsm, dsi));
    OK(b->batchnorm_backward(b, gx, gg, gb, dw, dx, C, L, dg, dsm, dsi));
    size_t np = n + 2 * (size_t)C;
    float *analytic = hbuf(np), *numeric = hbuf(np);
    fget(analytic, gx, n);
    fget(analytic + n, gg, C);
    fget(analytic + n + C, gb, C);
    for (size_t i = 0; i < np; i++) {
        float *host = i < n ? x + i : i < n + C ? gamma + (i - n) : beta + (i - n - C);
        float *dev = i < n ? dx + i : i < n + C ? dg + (i - n) : db + (i - n - C);
        double loss[2];
        for (int s = 0; s < 2; s++) {
            float v = *host + (s ? -ELAG_FD_EPS : ELAG_FD_EPS);
            OK(b->to_device(b, dev, &v, 4));
            OK(b->batchnorm_forward(b, 1, dy, dx, C, L, dg, db, drm, drv, 0.1f, BN_EPS, dsm, dsi));
            fget(y, dy, n);
            loss[s] = 0.0;
            for (size_t o = 0; o < n; o++) loss[s] += (double)w[o] * y[o];
        }
        OK(b->to_device(b, dev, host, 4));
        numeric[i] = (float)((loss[0] - loss[1]) / (2.0 * ELAG_FD_EPS));
    }
    char what[64];
    snprintf(what, sizeof what, "batchnorm gradient C%d L%d (dx, dgamma, dbeta)", C, L);
    expect_within(what, analytic, numeric, np, ELAG_TOL_FD_ABS, ELAG_TOL_FD_REL, 1.0);
}

OPS_CASE(batchnorm_gradcheck)
{
    bn_fd(2, 15, 1000);
    bn_fd(3, 4, 1010);
    bn_fd(1, 35, 1020);
}

/* ---- dropout ---- */

static void dropout_on(elag_backend *be, int alias, const float *x, size_t n, float p,
                       uint64_t seed, uint64_t stream, uint64_t offset, float *y, float *keep)
{
    float *dx = alias ? fio(be, x, n, "x = y") : fin(be, x, n, "x");
    float *dy = alias ? dx : fout(be, n, "y"), *dk = fout(be, n, "keep");
    OKB(be, be->dropout_forward(be, dy, dk, dx, n, p, seed, stream, offset));
    fget(y, dy, n);
    fget(keep, dk, n);
}

OPS_CASE(dropout_forward)
{
    const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f};
    const size_t sizes[] = {1, 37, BIG};
    const uint64_t offsets[] = {0, 5, (1ull << 33) + 3};
    const uint64_t seed = 4321, stream = ELAG_STREAM_DROPOUT + 3;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int q = 0; q < 4; q++) {
            size_t n = sizes[s];
            float p = ps[q];
            uint64_t off = offsets[(s + q) % 3];
            float *x = hrnd(n, -2.0f, 2.0f, 1100 + s);
            float *yr = hbuf(n), *kr = hbuf(n), *yb = hbuf(n), *kb = hbuf(n);
            float *y2 = hbuf(n), *k2 = hbuf(n), *prod = hbuf(n);
            char what[96];
            snprintf(what, sizeof what, "dropout n=%zu p=%g offset %llu", n, (double)p,
                     (unsigned long long)off);
            dropout_on(T.ref, 0, x, n, p, seed, stream, off, yr, kr);
            dropout_on(T.b, 0, x, n, p, seed, stream, off, yb, kb);
            expect_identical(what, kb, kr, n); /* bit-identical on every backend */
            expect_identical(what, yb, yr, n);
            /* keep by hand: u >= p ? 1 / (1 - p) : 0, one value for every kept entry */
            float kept_value = 0.0f;
            size_t kept = 0, bad = 0;
            for (size_t i = 0; i < n; i++) {
                float u = elag_philox_uniform(seed, stream, off + i);
                int keep_it = u >= p;
                kept += keep_it;
                if (keep_it && kept == 1) kept_value = kb[i];
                if (keep_it ? kb[i] != kept_value : (kb[i] != 0.0f || signbit(kb[i]))) bad++;
                prod[i] = x[i] * kb[i];
            }
            cr_expect_eq(bad, 0, "%s: %s: %zu keep entries off the formula", T.b->name, what,
                         bad);
            if (kept)
                cr_expect(fabs(kept_value - 1.0 / (1.0 - p)) <= 1e-6 / (1.0 - p),
                          "%s: keep %.9g, want 1/(1-p) = %.9g", what, (double)kept_value,
                          1.0 / (1.0 - p));
            if (p == 0.0f) cr_expect(kept == n && kept_value == 1.0f, "p = 0 keeps everything");
            cr_expect_eq(elag_test_compare("dropout y = x * keep", yb, prod, n, 0.0, 0.0), 0,
                         "%s: %s: y is not x * keep", T.b->name, what);
            if (n == BIG)
                cr_expect(fabs((double)kept / n - (1.0 - p)) < 0.01, "%s: kept %zu", what, kept);
            /* deterministic: the same call again, and in place */
            dropout_on(T.b, 1, x, n, p, seed, stream, off, y2, k2);
            expect_identical("dropout again, y = x", k2, kb, n);
            expect_identical("dropout again, y = x", y2, yb, n);
            /* per (seed, stream, offset): an offset of 7 more is the same numbers 7 later */
            if (n > 7) {
                dropout_on(T.b, 0, x + 7, n - 7, p, seed, stream, off + 7, y2, k2);
                expect_identical("dropout offset + 7", k2, kb + 7, n - 7);
            }
            if (n == BIG && p > 0.0f) {
                dropout_on(T.b, 0, x, n, p, seed, stream + 1, off, y2, k2);
                cr_expect_neq(memcmp(k2, kb, n * 4), 0, "another stream drops others");
                dropout_on(T.b, 0, x, n, p, seed + 1, stream, off, y2, k2);
                cr_expect_neq(memcmp(k2, kb, n * 4), 0, "another seed drops others");
            }
        }
    float none;
    dropout_on(T.b, 0, &none, 0, 0.5f, seed, stream, 0, &none, &none); /* n = 0 */
    ALL_REFUSE(elag_be_dropout_forward(be, df, df + 8, df + 16, 4, 1.0f, 1, 1, 0));
    ALL_REFUSE(elag_be_dropout_forward(be, df, df + 8, df + 16, 4, -0.5f, 1, 1, 0));
}

/* d/dx of <w, dropout(x)> by central differences against dx = dy * keep, the elementwise MUL
 * of backend.h, on the backend under test */
OPS_CASE(dropout_gradcheck)
{
    elag_backend *b = T.b;
    const size_t n = 37;
    const float p = 0.3f;
    float *x = hrnd(n, -1.0f, 1.0f, 1200), *w = hrnd(n, -1.0f, 1.0f, 1201), *y = hbuf(n);
    float *dx = fio(b, x, n, "x"), *dy = fout(b, n, "y"), *dk = fout(b, n, "keep");
    float *dw = fin(b, w, n, "dy"), *dgx = fout(b, n, "dx");
    OK(b->dropout_forward(b, dy, dk, dx, n, p, 99, ELAG_STREAM_DROPOUT, 11));
    OK(b->elementwise(b, ELAG_EW_MUL, n, dgx, dw, dk, 0.0f));
    float *analytic = hbuf(n), *numeric = hbuf(n), *keep = hbuf(n), *hand = hbuf(n);
    fget(analytic, dgx, n);
    fget(keep, dk, n);
    for (size_t i = 0; i < n; i++) {
        hand[i] = keep[i] == 0.0f ? 0.0f : w[i] * keep[i];
        double loss[2];
        for (int s = 0; s < 2; s++) {
            float v = x[i] + (s ? -ELAG_FD_EPS : ELAG_FD_EPS);
            OK(b->to_device(b, dx + i, &v, 4));
            OK(b->dropout_forward(b, dy, dk, dx, n, p, 99, ELAG_STREAM_DROPOUT, 11));
            fget(y, dy, n);
            loss[s] = 0.0;
            for (size_t o = 0; o < n; o++) loss[s] += (double)w[o] * y[o];
        }
        OK(b->to_device(b, dx + i, &x[i], 4));
        numeric[i] = (float)((loss[0] - loss[1]) / (2.0 * ELAG_FD_EPS));
    }
    cr_expect(zeros(keep, n) > 0 && zeros(keep, n) < n, "p = 0.3 drops some, not all");
    expect_identical("dropout backward (MUL)", analytic, hand, n);
    expect_within("dropout gradient", analytic, numeric, n, ELAG_TOL_FD_ABS, ELAG_TOL_FD_REL, 1.0);
}
