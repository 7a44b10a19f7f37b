/*
 * The training ops against cpu-ref (the harness: tests/support/ops_harness.h): init_uniform
 * (Philox, bit for bit everywhere), the sgd and adamw steps (by hand, then many steps of
 * fresh gradients, masked and not: pruned entries stay +0), and the pruning ops
 * score_magnitude, mask_select (exactly k zeros, the k smallest (score, index), ties,
 * signed zeros, non-finite scores, a million weights; the fast CPU path's radix fallback
 * too) and count_nonzero at sparsity 0, 0.5, 0.9, 0.99 and 1.
 */
#include "backend/philox.h"
#include "cpu/cpu_internal.h"
#include "support/ops_harness.h"

#include <criterion/logging.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define HUGE_N 1000003 /* mask_select on a realistic layer size */

OPS_TEST_FILE(OPS_CASES_TRAIN);

/* ---- initialisation ---- */

static void init_on(elag_backend *be, size_t n, float lo, float hi, uint64_t seed, uint64_t stream,
                    float *out)
{
    float *d = fout(be, n, "x");
    OKB(be, be->init_uniform(be, d, n, lo, hi, seed, stream));
    fget(out, d, n);
}

OPS_CASE(init_uniform)
{
    const size_t sizes[] = {1, 3, 4, 5, 7, 784 * 300 + 1, BIG};
    const uint64_t seeds[] = {0, 42, 0xDEADBEEFCAFEull, 1234};
    const uint64_t streams[] = {0x1000, 0x1003, (1ull << 40) + 7, ELAG_STREAM_INIT_BASE + 3};
    const float bounds[][2] = {{-0.0874f, 0.0874f}, {0.0f, 1.0f}, {-3.0f, 0.5f},
                               {-0.0625f, 0.1875f}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int q = 0; q < 4; q++) {
            size_t n = sizes[s];
            float lo = bounds[q][0], hi = bounds[q][1];
            uint64_t seed = seeds[q], stream = streams[(s + q) % 4];
            float *want = hbuf(n), *got = hbuf(n), *hand = hbuf(n);
            init_on(T.ref, n, lo, hi, seed, stream, want);
            init_on(T.b, n, lo, hi, seed, stream, got);
            for (size_t i = 0; i < n; i++)
                hand[i] = lo + (hi - lo) * elag_philox_uniform(seed, stream, i);
            char what[64];
            snprintf(what, sizeof what, "init_uniform n=%zu bounds %d", n, q);
            expect_identical(what, got, want, n);
            expect_identical(what, got, hand, n);
            double mean = 0.0;
            for (size_t i = 0; i < n; i++) {
                cr_assert(got[i] >= lo && got[i] <= hi, "%s: x[%zu] = %g", what, i, (double)got[i]);
                mean += got[i];
            }
            if (n == BIG)
                cr_expect(fabs(mean / n - 0.5 * (lo + hi)) < 4e-3 * (hi - lo), "%s: mean %g", what,
                          mean / n);
            if (n == BIG) { /* another stream gives other numbers */
                float *other = hbuf(n);
                init_on(T.b, n, lo, hi, seed, stream + 1, other);
                cr_expect_neq(memcmp(other, got, n * 4), 0, "streams differ");
            }
        }
    float none;
    init_on(T.b, 0, 0.0f, 1.0f, 1, 1, &none); /* n = 0 */
}

/* ---- optimizers ---- */

static void sgd_on(elag_backend *be, float *w, float *v, const float *mask, size_t n,
                   float *const *gs, int steps, float lr, float mom, float wd, int nesterov)
{
    float *dw = fio(be, w, n, "w"), *dv = fio(be, v, n, "v");
    float *dm = mask ? fin(be, mask, n, "mask") : NULL;
    for (int s = 0; s < steps; s++) {
        float *dg = fin(be, gs[s], n, "g");
        OKB(be, be->sgd_step(be, dw, dg, dv, dm, n, lr, mom, wd, nesterov));
    }
    fget(w, dw, n);
    fget(v, dv, n);
}

static size_t count_bit_diffs(const float *a, const float *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof *a) != 0;
    return d;
}

/* pruned entries (mask 0) exactly +0 in every array given */
static void expect_pruned_zero(const char *what, const float *mask, size_t n, const float *a,
                               const float *b, const float *c)
{
    for (size_t i = 0; i < n; i++) {
        if (mask[i] != 0.0f) continue;
        const float *arr[3] = {a, b, c};
        for (int k = 0; k < 3; k++)
            if (arr[k] && (arr[k][i] != 0.0f || signbit(arr[k][i]))) {
                cr_expect(0, "%s: %s: pruned entry %zu is %g, want +0", T.b->name, what, i,
                          (double)arr[k][i]);
                return;
            }
    }
}

OPS_CASE(sgd_step)
{
    /* the formula of backend.h by hand, 3 steps of one gradient */
    const struct {
        float mom, wd;
        int nesterov;
    } cases[] = {{0, 0, 0}, {0.9f, 0, 0}, {0.9f, 0, 1}, {0.9f, 5e-4f, 0}, {0.5f, 1e-2f, 1}};
    const size_t n = 1001;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float *w0 = hrnd(n, -1, 1, 61), *g = hrnd(n, -1, 1, 62);
        float *wh = hdup(w0, n), *vh = hbuf(n);
        for (int t = 0; t < 3; t++)
            for (size_t i = 0; i < n; i++) {
                float gp = g[i] + cases[c].wd * wh[i];
                vh[i] = cases[c].mom * vh[i] + gp;
                wh[i] -= 0.1f * (cases[c].nesterov ? gp + cases[c].mom * vh[i] : vh[i]);
            }
        float *w = hdup(w0, n), *v = hbuf(n), *gs[3] = {g, g, g};
        sgd_on(T.b, w, v, NULL, n, gs, 3, 0.1f, cases[c].mom, cases[c].wd, cases[c].nesterov);
        expect_hand("sgd w by hand", w, wh, n, 1.0);
        expect_hand("sgd v by hand", v, vh, n, 1.0);
        if (c == 0) { /* the backend's plain SGD is w - lr g per step: 3 steps, w0 - 0.3 g */
            float *plain = hbuf(n);
            for (size_t i = 0; i < n; i++) plain[i] = (float)(w0[i] - 3 * 0.1 * (double)g[i]);
            expect_hand("plain sgd w", w, plain, n, 1.0);
        }
    }
    /* against cpu-ref: 5 steps of fresh gradients, masked (90% pruned), nesterov, unmasked */
    const size_t nb = BIG;
    float *gs[5];
    for (int s = 0; s < 5; s++) gs[s] = hrnd(nb, -0.5f, 0.5f, 120 + s);
    for (int variant = 0; variant < 3; variant++) {
        int nesterov = variant == 1;
        float *mask = variant == 2 ? NULL : hmask(nb, 0.9, 112 + variant);
        float *w0 = hrnd(nb, -1.0f, 1.0f, 111), *v0 = hrnd(nb, -0.1f, 0.1f, 113);
        float *wr = hdup(w0, nb), *vr = hdup(v0, nb), *wb = hdup(w0, nb), *vb = hdup(v0, nb);
        sgd_on(T.ref, wr, vr, mask, nb, gs, 5, 0.05f, 0.9f, 1e-4f, nesterov);
        sgd_on(T.b, wb, vb, mask, nb, gs, 5, 0.05f, 0.9f, 1e-4f, nesterov);
        expect_close("sgd w", wb, wr, nb, 1.0);
        expect_close("sgd v", vb, vr, nb, 1.0);
        cr_log_info("%s: sgd variant %d: %zu of %zu weights not bit-identical", T.b->name, variant,
                    count_bit_diffs(wb, wr, nb), nb);
        if (mask) {
            expect_pruned_zero("sgd", mask, nb, wb, vb, NULL);
            size_t live_nonzero = 0;
            for (size_t i = 0; i < nb; i++) live_nonzero += mask[i] != 0.0f && wb[i] != 0.0f;
            cr_expect_eq(live_nonzero, nb - zeros(mask, nb), "live weights stay nonzero");
        }
    }
    float none;
    sgd_on(T.b, &none, &none, NULL, 0, gs, 1, 0.1f, 0.9f, 0.0f, 0); /* n = 0 */
}

static void adamw_on(elag_backend *be, float *w, float *m, float *v, const float *mask, size_t n,
                     float *const *gs, int steps, float lr, float b1, float b2, float eps, float wd)
{
    float *dw = fio(be, w, n, "w"), *dm = fio(be, m, n, "m"), *dv = fio(be, v, n, "v");
    float *dmask = mask ? fin(be, mask, n, "mask") : NULL;
    for (int t = 1; t <= steps; t++) {
        float *dg = fin(be, gs[t - 1], n, "g");
        OKB(be, be->adamw_step(be, dw, dg, dm, dv, dmask, n, lr, b1, b2, eps, wd, t));
    }
    fget(w, dw, n);
    fget(m, dm, n);
    fget(v, dv, n);
}

OPS_CASE(adamw_step)
{
    /* the formula by hand in double, 3 steps */
    const size_t n = 999;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.05f;
    float *w0 = hrnd(n, -1, 1, 71);
    double *wh = dbuf(n), *mh = dbuf(n), *vh = dbuf(n);
    for (size_t i = 0; i < n; i++) wh[i] = w0[i];
    float *g3[3] = {hrnd(n, -1, 1, 72), hrnd(n, -1e-3f, 1e-3f, 73), hrnd(n, -5, 5, 74)};
    for (int t = 1; t <= 3; t++)
        for (size_t i = 0; i < n; i++) {
            double g = g3[t - 1][i];
            wh[i] *= 1.0 - (double)lr * wd;
            mh[i] = b1 * mh[i] + (1 - (double)b1) * g;
            vh[i] = b2 * vh[i] + (1 - (double)b2) * g * g;
            wh[i] -= lr * (mh[i] / (1 - pow(b1, t))) / (sqrt(vh[i] / (1 - pow(b2, t))) + eps);
        }
    float *w = hdup(w0, n), *m = hbuf(n), *v = hbuf(n);
    adamw_on(T.b, w, m, v, NULL, n, g3, 3, lr, b1, b2, eps, wd);
    expect_hand("adamw w by hand", w, to_float(wh, n), n, 1.0);
    expect_hand("adamw m by hand", m, to_float(mh, n), n, 1.0);
    expect_hand("adamw v by hand", v, to_float(vh, n), n, 1.0);
    /* against cpu-ref: 6 steps, masked (half pruned, stale state under the mask) or not */
    const size_t nb = BIG;
    float *gs[6];
    for (int t = 0; t < 6; t++) gs[t] = hrnd(nb, -0.5f, 0.5f, 141 + t);
    for (int masked = 0; masked < 2; masked++) {
        float *mask = masked ? hmask(nb, 0.5, 132) : NULL;
        float *ws = hrnd(nb, -1.0f, 1.0f, 131), *ms = hrnd(nb, -0.1f, 0.1f, 133);
        float *vs = hrnd(nb, 0.0f, 0.01f, 134);
        float *wr = hdup(ws, nb), *mr = hdup(ms, nb), *vr = hdup(vs, nb);
        float *wb = hdup(ws, nb), *mb = hdup(ms, nb), *vb = hdup(vs, nb);
        adamw_on(T.ref, wr, mr, vr, mask, nb, gs, 6, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
        adamw_on(T.b, wb, mb, vb, mask, nb, gs, 6, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
        expect_close("adamw w", wb, wr, nb, 1.0);
        expect_close("adamw m", mb, mr, nb, 1.0);
        expect_close("adamw v", vb, vr, nb, 1.0);
        cr_log_info("%s: adamw masked=%d: %zu of %zu weights not bit-identical", T.b->name,
                    masked, count_bit_diffs(wb, wr, nb), nb);
        if (mask) expect_pruned_zero("adamw", mask, nb, wb, mb, vb);
    }
    float none;
    adamw_on(T.b, &none, &none, &none, NULL, 0, gs, 1, 0.1f, 0.9f, 0.9f, 0.1f, 0.0f); /* n = 0 */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_adamw_step(be, df, df + 8, df + 16, df + 24, NULL, 4,
                                                     0.1f, 0.9f, 0.9f, 0.1f, 0.0f, 0));
}

/* ---- pruning ---- */

static void score_on(elag_backend *be, const float *w, const float *mask, size_t n, float *out)
{
    float *dw = fin(be, w, n, "w"), *dm = mask ? fin(be, mask, n, "mask") : NULL;
    float *ds = fout(be, n, "score");
    OKB(be, be->score_magnitude(be, ds, dw, dm, n));
    fget(out, ds, n);
}

OPS_CASE(score_magnitude)
{
    const size_t n = BIG;
    float *w = hrnd(n, -1.0f, 1.0f, 91), *mask = hmask(n, 0.4, 92);
    for (size_t i = 0; i < n; i += 3) mask[i] = 0.0f;
    w[0] = -0.0f, w[1] = -INFINITY, w[2] = NAN, w[4] = 0.0f, w[5] = NAN, w[7] = -0.0f;
    mask[1] = mask[2] = 0.0f, mask[4] = mask[5] = mask[7] = 1.0f; /* live zeros score 0 > -1 */
    for (int masked = 0; masked < 2; masked++) {
        const float *mk = masked ? mask : NULL;
        float *want = hbuf(n), *got = hbuf(n), *hand = hbuf(n);
        score_on(T.ref, w, mk, n, want);
        score_on(T.b, w, mk, n, got);
        for (size_t i = 0; i < n; i++) hand[i] = (!mk || mk[i] != 0.0f) ? fabsf(w[i]) : -1.0f;
        const char *what = masked ? "score_magnitude masked" : "score_magnitude unmasked";
        expect_identical(what, got, want, n);
        expect_identical(what, got, hand, n);
    }
    float none;
    score_on(T.b, &none, &none, 0, &none);
}

/* (score[i], i) < (score[j], j), with NaN above every number (backend.h's order) */
static int ranks_below(const float *score, size_t i, size_t j)
{
    float a = score[i], b = score[j];
    if (isnan(a) || isnan(b)) return isnan(a) == isnan(b) ? i < j : isnan(b);
    return a < b || (a == b && i < j);
}

static void select_on(elag_backend *be, const float *ds, size_t n, size_t k, int radix, float *out)
{
    float *dm = fout(be, n, "mask");
    if (radix)
        OKB(be, elag_cpu_mask_select_radix(be, dm, ds, n, k));
    else
        OKB(be, be->mask_select(be, dm, ds, n, k));
    fget(out, dm, n);
}

/* mask_select for each k: exactly k zeros, the mask of cpu-ref bit for bit (on the fast
 * CPU backend its radix fallback too), and the pruned set is the k smallest (score, index):
 * every pruned pair ranks below every kept pair. */
static void check_select(const float *score, size_t n, const size_t *ks, int nk, const char *tag)
{
    float *sr = fin(T.ref, score, n, "score"), *sb = fin(T.b, score, n, "score");
    float *want = hbuf(n), *got = hbuf(n);
    for (int j = 0; j < nk; j++) {
        size_t k = ks[j];
        char what[96];
        snprintf(what, sizeof what, "mask_select %s n=%zu k=%zu", tag, n, k);
        select_on(T.ref, sr, n, k, 0, want);
        select_on(T.b, sb, n, k, 0, got);
        cr_expect_eq(zeros(got, n), k, "%s: %s: %zu zeros", T.b->name, what, zeros(got, n));
        expect_identical(what, got, want, n);
        if (T.b->kind == ELAG_DEVICE_CPU) {
            select_on(T.b, sb, n, k, 1, got);
            expect_identical("radix fallback", got, want, n);
        }
        size_t hi_pruned = n, lo_kept = n; /* the largest pruned, the smallest kept */
        for (size_t i = 0; i < n; i++) {
            cr_assert(want[i] == 0.0f || want[i] == 1.0f);
            if (want[i] == 0.0f && (hi_pruned == n || !ranks_below(score, i, hi_pruned)))
                hi_pruned = i;
            if (want[i] == 1.0f && (lo_kept == n || ranks_below(score, i, lo_kept))) lo_kept = i;
        }
        cr_expect_eq(zeros(want, n), k, "cpu-ref: %s: %zu zeros", what, zeros(want, n));
        if (hi_pruned < n && lo_kept < n)
            cr_expect(ranks_below(score, hi_pruned, lo_kept),
                      "%s: pruned (%g, %zu) ranks above kept (%g, %zu)", what,
                      (double)score[hi_pruned], hi_pruned, (double)score[lo_kept], lo_kept);
    }
}

OPS_CASE(mask_select)
{
    /* random, with already-pruned entries (-1) */
    size_t n = 266200 + 7;
    float *s = hrnd(n, 0.0f, 1.0f, 101);
    for (size_t i = 0; i < n; i += 5) s[i] = -1.0f;
    const size_t k1[] = {0, n / 2, (size_t)(0.9 * n), (size_t)(0.99 * n), n, 1, n - 1};
    check_select(s, n, k1, 7, "random");
    const size_t k_one[] = {1}, k_small[] = {6};
    check_select(s, 1, k_one, 1, "n=1");
    check_select(s, 13, k_small, 1, "small");
    n = BIG;
    s = hrnd(n, -1.0f, 1.0f, 151);
    const size_t k2[] = {0, 1, 2, n / 2, (size_t)(0.9 * n), n - 1, n};
    check_select(s, n, k2, 7, "random signed");
    const size_t k_tiny[] = {0, 1, 3, 5};
    check_select(s, 5, k_tiny, 4, "tiny");

    /* ties: all equal, the lowest indices go first */
    n = 70001;
    s = hbuf(n);
    for (size_t i = 0; i < n; i++) s[i] = 0.25f;
    const size_t k3[] = {0, n / 2, (size_t)(0.9 * n), (size_t)(0.99 * n), n, 1234, 777, n / 3};
    check_select(s, n, k3, 8, "all equal");
    float *m = hbuf(n);
    select_on(T.b, fin(T.b, s, n, "score"), n, 1234, 0, m);
    for (size_t i = 0; i < n; i++)
        if (m[i] != (i < 1234 ? 0.0f : 1.0f)) {
            cr_expect(0, "%s: ties must go by index: entry %zu", T.b->name, i);
            break;
        }
    /* four values, the smallest being the pruned marker */
    const float q[4] = {-1.0f, 0.0f, 0.5f, 3.0f};
    for (size_t i = 0; i < n; i++) s[i] = q[elag_philox_u32(3, 3, i) & 3];
    const size_t k4[] = {0, n / 2, (size_t)(0.9 * n), (size_t)(0.99 * n), n, n / 4};
    check_select(s, n, k4, 6, "4 values");
    /* -0 and +0 are one value: ties broken by index, like the float compare of cpu-ref */
    for (size_t i = 0; i < n; i++) s[i] = (i % 2) ? -0.0f : (i % 3 ? 0.0f : 1.0f);
    const size_t k5[] = {n / 4, n / 3, n * 6 / 10};
    check_select(s, n, k5, 3, "signed zeros");
    /* NaN ranks above +inf (pruned last), -inf below everything */
    for (size_t i = 0; i < n; i++) s[i] = elag_philox_uniform(4, 4, i);
    for (size_t i = 0; i < n; i += 7) s[i] = NAN;
    for (size_t i = 3; i < n; i += 11) s[i] = INFINITY;
    for (size_t i = 5; i < n; i += 13) s[i] = -INFINITY;
    const size_t k6[] = {n / 2, n - n / 14, n / 20};
    check_select(s, n, k6, 3, "non-finite");
    /* eight values incl. both zeros, infinities and NaN */
    n = BIG;
    s = hrnd(n, 0.0f, 1.0f, 161);
    const float vals[] = {-1.0f, 0.0f, -0.0f, 0.25f, 0.5f, INFINITY, NAN, -INFINITY};
    for (size_t i = 0; i < n; i++) s[i] = vals[(size_t)(s[i] * 7.999f)];
    const size_t k7[] = {0, 1, 12345, n / 2, (size_t)(0.9 * n), n - 3, n};
    check_select(s, n, k7, 7, "8 values");
    /* magnitude scores of a half-pruned layer of a million weights, some exact ties */
    n = HUGE_N;
    float *w = hrnd(n, -0.1f, 0.1f, 171), *mask = hmask(n, 0.5, 172);
    for (size_t i = 0; i < n; i += 97) w[i] = 0.0625f;
    s = hbuf(n);
    for (size_t i = 0; i < n; i++) s[i] = mask[i] != 0.0f ? fabsf(w[i]) : -1.0f;
    const size_t k8[] = {0, n / 2, (size_t)(0.9 * n), n};
    check_select(s, n, k8, 4, "1e6");

    float none;
    select_on(T.b, fin(T.b, &none, 0, "score"), 0, 0, 0, &none); /* n = 0 */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_mask_select(be, df, df + 8, 1, 2)); /* k > n */
}

OPS_CASE(count_nonzero)
{
    const double sp[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    for (int j = 0; j < 5; j++) {
        float *x = hrnd(BIG, -1.0f, 1.0f, 181), *mask = hmask(BIG, sp[j], 182 + j);
        size_t hand = 0;
        for (size_t i = 0; i < BIG; i++) {
            if (mask[i] == 0.0f) x[i] = 0.0f;
            if (i == 0) x[i] = NAN;   /* NaN counts as nonzero */
            if (i == 1) x[i] = -0.0f; /* -0 as zero */
            if (i == 2) x[i] = -INFINITY;
            hand += x[i] != 0.0f;
        }
        size_t want = 1, got = 2;
        OK(T.ref->count_nonzero(T.ref, fin(T.ref, x, BIG, "x"), BIG, &want));
        OK(T.b->count_nonzero(T.b, fin(T.b, x, BIG, "x"), BIG, &got));
        cr_expect_eq(want, hand, "cpu-ref: count_nonzero %zu, want %zu", want, hand);
        cr_expect_eq(got, hand, "%s: count_nonzero at sparsity %g: %zu, want %zu", T.b->name,
                     sp[j], got, hand);
        OK(T.b->count_nonzero(T.b, fin(T.b, x + 3, 5, "x"), 5, &got));
        size_t five = 0;
        for (int i = 3; i < 8; i++) five += x[i] != 0.0f;
        cr_expect_eq(got, five);
    }
    size_t got = 7;
    float none;
    OK(T.b->count_nonzero(T.b, fin(T.b, &none, 0, "x"), 0, &got));
    cr_expect_eq(got, 0, "n = 0 counts 0");
}
