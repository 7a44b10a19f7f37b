/*
 * The engine of `elag bench spmm` (bench.h). Per shape: random activations x (k, max_n)
 * and the dense baseline (the backend's gemm, y = W x feature-major; TF32 as a separate
 * variant on CUDA) timed for every batch; then for every sparsity one masked W, converted
 * once per sparse format, prepared by the backend once per batch (sparse_create with
 * max_n = n, so CUDA picks its algorithm for that batch) and timed; then the baseline
 * again, keeping the faster of its two timings (dense at its best, not a straw man).
 * A timed sample runs the product `inner` times between two synchronisations, inner
 * chosen after warm-up so a sample lasts at least min_sample_ms (GPU launches of
 * microseconds are not lost in the cost of one sync); the median, p10 and p90 are over
 * `repeat` samples.
 * Masks: Philox with a fixed seed, one uniform per weight (or per block) compared with the
 * sparsity, so the mask at 0.9 is a subset of the mask at 0.5 and every run is the same.
 * Arithmetic: every row says what the device computed it in (`math`, from supports()):
 * "tf32" for dense-tf32 and for Blocked-ELL on CUDA (cuSPARSE runs it on tensor cores
 * only, so FP32 inputs are rounded to TF32), else "fp32". A TF32 sparse row is compared
 * with dense-tf32 as well as with FP32 dense (speedup and crossover against each), so
 * dense-tf32 is measured whenever a TF32 format runs, asked for or not.
 */
#define _POSIX_C_SOURCE 200809L
#include "sparse/bench.h"

#include "backend/philox.h"
#include "core/check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Philox streams of the benchmark (apart from philox.h's training streams). */
#define BENCH_STREAM_MASK 0x7100u
#define BENCH_STREAM_VALUES 0x7200u
#define BENCH_STREAM_X 0x7300u
#define BENCH_MAX_INNER 100000

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

elag_status elag_bench_format_parse(const char *text, elag_bench_format *out)
{
    memset(out, 0, sizeof *out);
    if (strlen(text) >= sizeof out->name)
        return elag_fail(ELAG_ERR_USAGE, "unknown format '%s'", text);
    snprintf(out->name, sizeof out->name, "%s", text);
    if (strcmp(text, "dense") == 0 || strcmp(text, "dense-tf32") == 0) {
        out->format = ELAG_SPARSE_FORMAT_DENSE;
        out->tf32 = text[5] != '\0';
        return ELAG_OK;
    }
    if (strcmp(text, "csr") == 0 ||
        (strncmp(text, "csr-alg", 7) == 0 && text[7] >= '1' && text[7] <= '3' && !text[8])) {
        out->format = ELAG_SPARSE_FORMAT_CSR;
        out->alg = text[3] ? text[7] - '0' : 0;
        return ELAG_OK;
    }
    if (strcmp(text, "bell") == 0 || strcmp(text, "bell:16") == 0 || strcmp(text, "bell:32") == 0) {
        out->format = ELAG_SPARSE_FORMAT_BELL;
        out->block = text[4] ? (int)strtol(text + 5, NULL, 10) : 32;
        snprintf(out->name, sizeof out->name, "bell:%d", out->block);
        return ELAG_OK;
    }
    return elag_fail(ELAG_ERR_USAGE,
                     "unknown format '%s' (expected dense, dense-tf32, csr, csr-alg1, csr-alg2, "
                     "csr-alg3, bell:16 or bell:32)", text);
}

int elag_bench_crossover(const double *s, const double *sp, int n, double *out)
{
    if (n < 1 || !(sp[n - 1] > 1.0)) return 0;
    int j = n - 1; /* first index of the winning tail */
    while (j > 0 && sp[j - 1] > 1.0) j--;
    if (j == 0) { /* it wins at every measured sparsity: the crossover is s[0] or below */
        *out = s[0];
        return 2;
    }
    double s0 = s[j - 1], s1 = s[j], p0 = sp[j - 1], p1 = sp[j];
    *out = s0 + (1.0 - p0) * (s1 - s0) / (p1 - p0); /* p1 > 1 >= p0, so p1 > p0 */
    return 1;
}

/* ---- weights and activations ---- */

/* Masked weights W (m, k) for sparsity s (unused with model masks), values uniform in
 * [-1, 1) and never exactly 0 where kept; `unmasked` keeps every weight (the dense baseline). */
static void make_weights(const elag_bench_config *c, const elag_bench_shape *sh, double s,
                         int unmasked, float *w, int64_t *nnz_out)
{
    const int m = sh->m, k = sh->k, B = c->mask_block > 0 ? c->mask_block : 32;
    const int bcols = (k + B - 1) / B;
    const uint64_t seed = c->seed;
    int64_t nnz = 0;
#pragma omp parallel for schedule(static) reduction(+ : nnz)
    for (int r = 0; r < m; r++) {
        for (int col = 0; col < k; col++) {
            size_t i = (size_t)r * k + col;
            int keep = 1;
            if (!unmasked) {
                if (c->mask == ELAG_BENCH_MASK_MODEL && sh->mask)
                    keep = sh->mask[i] != 0;
                else if (c->mask == ELAG_BENCH_MASK_BLOCK)
                    keep = (double)elag_philox_uniform(seed, BENCH_STREAM_MASK,
                                                       (uint64_t)(r / B) * bcols + col / B) >= s;
                else
                    keep = (double)elag_philox_uniform(seed, BENCH_STREAM_MASK, i) >= s;
            }
            float v = -1.0f + 2.0f * elag_philox_uniform(seed, BENCH_STREAM_VALUES, i);
            w[i] = keep ? (v != 0.0f ? v : 0.5f) : 0.0f;
            nnz += keep;
        }
    }
    *nnz_out = nnz;
}

/* ---- timing ---- */

typedef struct bench_op {
    elag_backend *b;
    int m, k, n;
    const float *w;     /* device (m, k): the dense product */
    elag_sparse_dev *a; /* the sparse product when not NULL */
    const float *x;     /* device (k, n) */
    float *y;           /* device (m, n) */
} bench_op;

static elag_status op_run(const bench_op *o)
{
    if (o->a) return elag_be_sparse_mm(o->b, o->a, o->x, o->n, NULL, 0, o->y);
    return elag_be_gemm(o->b, 0, 0, o->m, o->n, o->k, 1.0f, o->w, o->k, o->x, o->n, 0.0f, o->y,
                        o->n);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile of sorted[0..n), linearly interpolated. */
static double quantile(const double *sorted, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
}

static elag_status time_op(const bench_op *o, const elag_bench_config *c, double *samples,
                           elag_bench_row *row)
{
    for (int i = 0; i < c->warmup; i++) ELAG_TRY(op_run(o));
    ELAG_TRY(elag_be_sync(o->b));
    double t0 = now_ms();
    ELAG_TRY(op_run(o));
    ELAG_TRY(elag_be_sync(o->b));
    double one = now_ms() - t0;
    int inner = 1;
    if (one < c->min_sample_ms) {
        double want = ceil(c->min_sample_ms / (one > 1e-4 ? one : 1e-4));
        inner = want > BENCH_MAX_INNER ? BENCH_MAX_INNER : (int)want;
    }
    for (int r = 0; r < c->repeat; r++) {
        t0 = now_ms();
        for (int i = 0; i < inner; i++) ELAG_TRY(op_run(o));
        ELAG_TRY(elag_be_sync(o->b));
        samples[r] = (now_ms() - t0) / inner;
    }
    qsort(samples, (size_t)c->repeat, sizeof *samples, cmp_double);
    row->median_ms = quantile(samples, c->repeat, 0.5);
    row->p10_ms = quantile(samples, c->repeat, 0.1);
    row->p90_ms = quantile(samples, c->repeat, 0.9);
    row->inner = inner;
    return ELAG_OK;
}

/* ---- one shape ---- */

typedef struct bench_shape_run {
    elag_backend *b;
    const elag_bench_config *c;
    const elag_bench_shape *sh;
    const char *mask_name;
    float *w;            /* host (m, k) */
    float *dw;           /* device (m, k): dense weights */
    float *dx, *dy;      /* device (k, max_n), (m, max_n) */
    double *samples;     /* (repeat) */
    int *dense_row;      /* (n_batches) index in rows of the FP32 baseline */
    int *tf32_row;       /* (n_batches) index of the TF32 row, -1 when not measured */
    elag_bench_row *rows;
    int n_rows, cap_rows;
    int failures;
} bench_shape_run;

/* What backend b answers for format f (dense: a GEMM, with f->tf32 as asked). */
static elag_support format_support(elag_backend *b, const elag_bench_format *f, char *why,
                                   size_t why_len)
{
    elag_op_query q = {.format = f->format, .block = f->block, .alg = f->alg, .tf32 = f->tf32};
    elag_op op = f->format == ELAG_SPARSE_FORMAT_DENSE ? ELAG_OP_GEMM : ELAG_OP_SPARSE_MM;
    return elag_be_supports(b, op, &q, why, why_len);
}

/* The row label of a supports() answer (rows are only made for formats that run). */
static const char *support_math(elag_support a) { return a == ELAG_SUPPORT_TF32 ? "tf32" : "fp32"; }

static elag_bench_row *new_row(bench_shape_run *s, const elag_bench_format *f, int n)
{
    ELAG_ASSERT(s->n_rows < s->cap_rows);
    elag_bench_row *r = &s->rows[s->n_rows++];
    memset(r, 0, sizeof *r);
    r->version = ELAG_BENCH_ROW_VERSION;
    r->shape = s->sh->name, r->format = f->name, r->device = s->b->name, r->mask = s->mask_name;
    r->m = s->sh->m, r->k = s->sh->k, r->n = n;
    r->threads = s->b->threads, r->repeat = s->c->repeat, r->warmup = s->c->warmup;
    r->speedup_vs_tf32 = NAN;
    r->math = support_math(format_support(s->b, f, NULL, 0));
    r->has_crossover_tf32 = -1;
    r->crossover_tf32 = NAN;
    return r;
}

/* Fills the rates of a timed row. */
static void finish_row(elag_bench_row *r, double dense_ms, double tf32_ms)
{
    double t = r->median_ms * 1e-3, mkn = 2.0 * r->m * (double)r->k * r->n;
    r->gflops = t > 0 ? 2.0 * (double)r->nnz * r->n / t * 1e-9 : 0;
    r->effective_gflops = t > 0 ? mkn / t * 1e-9 : 0;
    r->gbps = t > 0 ? (double)r->bytes / t * 1e-9 : 0;
    r->speedup_vs_dense = r->median_ms > 0 ? dense_ms / r->median_ms : 0;
    r->speedup_vs_tf32 = isnan(tf32_ms) || r->median_ms <= 0 ? NAN : tf32_ms / r->median_ms;
    r->actual_sparsity = 1.0 - (double)r->nnz / ((double)r->m * r->k);
}

static void note(const elag_bench_config *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void note(const elag_bench_config *c, const char *fmt, ...)
{
    if (c == NULL || c->note == NULL) return; /* c == NULL: the check without its note */
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->note(buf, c->user);
}

/* The baseline shown when the format list has no plain "dense": measured, not emitted. */
static const elag_bench_format dense_hidden = {.name = "dense", .format = ELAG_SPARSE_FORMAT_DENSE};
/* The TF32 baseline of TF32 sparse rows when the list has no dense-tf32: measured and emitted. */
static const elag_bench_format dense_tf32_added = {
    .name = "dense-tf32", .format = ELAG_SPARSE_FORMAT_DENSE, .tf32 = 1};

/* Times the dense product (and TF32 when asked) for every batch. Pass 0 makes the rows;
 * pass 1, after the sparse series, times again and keeps the faster of the two, so a noisy
 * moment during one dense measurement cannot flatter every sparse row of the shape. */
static elag_status dense_pass(bench_shape_run *s, const elag_bench_format *dense,
                              const elag_bench_format *tf32, int pass)
{
    const elag_bench_config *c = s->c;
    /* the device's own setting (opened with tf32 on, its plain GEMMs are TF32 already), put
     * back after each TF32 timing */
    elag_op_query plain = {.tf32 = 0};
    int was_tf32 = elag_be_supports(s->b, ELAG_OP_GEMM, &plain, NULL, 0) == ELAG_SUPPORT_TF32;
    for (int bi = 0; bi < c->n_batches; bi++) {
        int n = c->batches[bi];
        bench_op o = {s->b, s->sh->m, s->sh->k, n, s->dw, NULL, s->dx, s->dy};
        for (int t = 0; t < 2; t++) {
            const elag_bench_format *f = t ? tf32 : dense;
            if (f == NULL) continue;
            elag_bench_row tmp;
            memset(&tmp, 0, sizeof tmp);
            if (c->progress) c->progress(s->sh->name, n, f->name, 0.0, c->user);
            if (t) ELAG_TRY(elag_backend_set_tf32(s->b, 1));
            elag_status st = time_op(&o, c, s->samples, &tmp);
            if (t) {
                elag_status st2 = elag_backend_set_tf32(s->b, was_tf32);
                if (st == ELAG_OK) st = st2;
            }
            ELAG_TRY(st);
            int *at = t ? &s->tf32_row[bi] : &s->dense_row[bi];
            if (pass == 0) {
                elag_bench_row *r = new_row(s, f, n);
                *at = (int)(r - s->rows);
                r->nnz = (int64_t)r->m * r->k;
                r->bytes = 4 * ((int64_t)r->m * r->k + (int64_t)r->k * n + (int64_t)r->m * n);
            }
            elag_bench_row *r = &s->rows[*at];
            if (pass == 0 || tmp.median_ms < r->median_ms) {
                r->median_ms = tmp.median_ms, r->p10_ms = tmp.p10_ms, r->p90_ms = tmp.p90_ms;
                r->inner = tmp.inner;
            }
        }
    }
    return ELAG_OK;
}

/* Rates and speedups of every row, from the final dense baselines. */
static void finish_rows(bench_shape_run *s)
{
    const elag_bench_config *c = s->c;
    for (int i = 0; i < s->n_rows; i++) {
        elag_bench_row *r = &s->rows[i];
        int bi = 0;
        while (c->batches[bi] != r->n) bi++;
        double tf = s->tf32_row[bi] >= 0 ? s->rows[s->tf32_row[bi]].median_ms : NAN;
        finish_row(r, s->rows[s->dense_row[bi]].median_ms, tf);
    }
}

/* One sparse format at one sparsity, every batch. A failure of the backend on this
 * matrix (cuSPARSE refusing it, out of memory) is noted and counted, and the run goes on. */
static elag_status sparse_series(bench_shape_run *s, const elag_bench_format *f, double sparsity)
{
    const elag_bench_config *c = s->c;
    elag_sparse_host h;
    elag_status st = elag_sparse_from_dense(s->w, s->sh->m, s->sh->k, f->format, f->block, &h);
    if (st != ELAG_OK) return st;
    for (int bi = 0; bi < c->n_batches && st == ELAG_OK; bi++) {
        int n = c->batches[bi];
        if (c->progress) c->progress(s->sh->name, n, f->name, sparsity, c->user);
        elag_sparse_opts opts = {.max_n = n, .alg = f->alg};
        elag_sparse_dev *a = NULL;
        elag_bench_row row;
        memset(&row, 0, sizeof row);
        elag_status e = elag_be_sparse_create(s->b, &h, &opts, &a);
        if (e == ELAG_OK) {
            bench_op o = {s->b, s->sh->m, s->sh->k, n, NULL, a, s->dx, s->dy};
            e = time_op(&o, c, s->samples, &row);
        }
        if (a) elag_be_sparse_destroy(s->b, a);
        if (e == ELAG_ERR_NOMEM || e == ELAG_ERR_DEVICE || e == ELAG_ERR_UNSUPPORTED) {
            note(c, "%s %dx%d n=%d %s sparsity %g: %s; no row", s->sh->name, s->sh->m, s->sh->k,
                 n, f->name, sparsity, elag_last_error());
            s->failures++;
            continue;
        }
        if (e != ELAG_OK) st = e;
        if (st != ELAG_OK) break;
        elag_bench_row *r = new_row(s, f, n);
        r->median_ms = row.median_ms, r->p10_ms = row.p10_ms, r->p90_ms = row.p90_ms;
        r->inner = row.inner;
        r->sparsity = sparsity;
        r->nnz = h.nnz;
        r->bytes = elag_sparse_bytes(&h) + 4 * ((int64_t)r->k * n + (int64_t)r->m * n);
        r->is_sparse = 1;
    }
    elag_sparse_host_free(&h);
    return st;
}

/* Crossover of every sparse row's (batch, format) series, over this shape's rows: against
 * FP32 dense, and against dense-tf32 where every point of the series has it. Out of memory
 * is an error: rows without their crossovers would read as "none". */
static elag_status crossovers(bench_shape_run *s)
{
    int n = s->n_rows;
    double *sv = malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *pv = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int *idx = malloc(sizeof(int) * (size_t)(n ? n : 1));
    elag_status st = ELAG_OK;
    if (!sv || !pv || !idx) {
        st = elag_fail(ELAG_ERR_NOMEM, "bench: out of host memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        elag_bench_row *r = &s->rows[i];
        if (!r->is_sparse) continue;
        int cnt = 0;
        for (int j = 0; j < n; j++) {
            elag_bench_row *q = &s->rows[j];
            if (q->is_sparse && q->n == r->n && strcmp(q->format, r->format) == 0) idx[cnt++] = j;
        }
        for (int a = 1; a < cnt; a++) /* insertion sort by sparsity: short lists */
            for (int b = a; b > 0 && s->rows[idx[b - 1]].sparsity > s->rows[idx[b]].sparsity;
                 b--) {
                int t = idx[b];
                idx[b] = idx[b - 1], idx[b - 1] = t;
            }
        for (int a = 0; a < cnt; a++)
            sv[a] = s->rows[idx[a]].sparsity, pv[a] = s->rows[idx[a]].speedup_vs_dense;
        r->has_crossover = elag_bench_crossover(sv, pv, cnt, &r->crossover);
        int all_tf32 = 1;
        for (int a = 0; a < cnt; a++) {
            pv[a] = s->rows[idx[a]].speedup_vs_tf32;
            all_tf32 &= !isnan(pv[a]);
        }
        r->has_crossover_tf32 =
            all_tf32 ? elag_bench_crossover(sv, pv, cnt, &r->crossover_tf32) : -1;
        if (r->has_crossover_tf32 < 1) r->crossover_tf32 = NAN;
    }
done:
    free(sv), free(pv), free(idx);
    return st;
}

/* Whether backend b can run format f, as its supports() answers (TF32 needs a GPU that has
 * it, csr-algN cuSPARSE, Blocked-ELL TF32 tensor cores on CUDA); when c is not NULL a skip
 * is also noted. */
static int format_runs(elag_backend *b, const elag_bench_format *f, const elag_bench_config *c)
{
    char why[160];
    if (format_support(b, f, why, sizeof why) != ELAG_SUPPORT_NO) return 1;
    note(c, "%s: %s; skipped on %s", f->name, why, b->name);
    return 0;
}

/* The dense-tf32 row a TF32 sparse format needs when the list has none: &dense_tf32_added
 * when some sparse format of the list runs in TF32 on b and b runs dense-tf32, else NULL.
 * *tf32_format (when not NULL) names that format, for the note. */
static const elag_bench_format *tf32_baseline_to_add(elag_backend *b, const elag_bench_config *c,
                                                     const char **tf32_format)
{
    const elag_bench_format *sparse_tf32 = NULL;
    for (int f = 0; f < c->n_formats; f++) {
        const elag_bench_format *fm = &c->formats[f];
        if (fm->format == ELAG_SPARSE_FORMAT_DENSE && fm->tf32) return NULL; /* listed */
        if (fm->format != ELAG_SPARSE_FORMAT_DENSE && !sparse_tf32 &&
            format_support(b, fm, NULL, 0) == ELAG_SUPPORT_TF32)
            sparse_tf32 = fm;
    }
    if (!sparse_tf32 || !format_runs(b, &dense_tf32_added, NULL)) return NULL;
    if (tf32_format) *tf32_format = sparse_tf32->name;
    return &dense_tf32_added;
}

/* Everything of one shape; rows handed to c->emit at the end. */
static elag_status run_shape(elag_backend *b, const elag_bench_config *c,
                             const elag_bench_shape *sh, const char *mask_name, int max_n,
                             int *failures)
{
    bench_shape_run s = {.b = b, .c = c, .sh = sh, .mask_name = mask_name};
    const elag_bench_format *want_dense = NULL, *want_tf32 = NULL;
    int n_sparse = 0;
    for (int f = 0; f < c->n_formats; f++) {
        const elag_bench_format *fm = &c->formats[f];
        if (fm->format != ELAG_SPARSE_FORMAT_DENSE) continue;
        if (!fm->tf32) want_dense = fm;
        else if (format_runs(b, fm, NULL))
            want_tf32 = fm;
    }
    if (!want_tf32) want_tf32 = tf32_baseline_to_add(b, c, NULL);
    for (int f = 0; f < c->n_formats; f++)
        n_sparse += c->formats[f].format != ELAG_SPARSE_FORMAT_DENSE &&
                    format_runs(b, &c->formats[f], NULL);
    int model = c->mask == ELAG_BENCH_MASK_MODEL && sh->mask;
    int n_sp = model ? 1 : c->n_sparsities;
    size_t mk = (size_t)sh->m * sh->k;
    s.cap_rows = c->n_batches * (2 + n_sp * n_sparse);
    s.rows = calloc((size_t)s.cap_rows, sizeof *s.rows);
    s.samples = calloc((size_t)c->repeat, sizeof *s.samples);
    s.dense_row = calloc((size_t)c->n_batches, sizeof *s.dense_row);
    s.tf32_row = calloc((size_t)c->n_batches, sizeof *s.tf32_row);
    s.w = malloc(sizeof(float) * (mk ? mk : 1));
    float *x = malloc(sizeof(float) * ((size_t)sh->k * max_n + 1));
    elag_status st = ELAG_OK;
    void *p = NULL;
    if (!s.rows || !s.samples || !s.dense_row || !s.tf32_row || !s.w || !x) {
        st = elag_fail(ELAG_ERR_NOMEM, "bench: out of host memory for %s (%dx%d)", sh->name,
                       sh->m, sh->k);
        goto done;
    }
    const long nx = (long)sh->k * max_n;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < nx; i++)
        x[i] = -1.0f + 2.0f * elag_philox_uniform(c->seed, BENCH_STREAM_X, (uint64_t)i);
    int64_t nnz = 0;
    make_weights(c, sh, 0.0, 1, s.w, &nnz);
    ELAG_TRY_GOTO(st, elag_be_alloc(b, sizeof(float) * mk, &p), done);
    s.dw = p;
    ELAG_TRY_GOTO(st, elag_be_alloc(b, sizeof(float) * (size_t)sh->k * max_n, &p), done);
    s.dx = p;
    ELAG_TRY_GOTO(st, elag_be_alloc(b, sizeof(float) * (size_t)sh->m * max_n, &p), done);
    s.dy = p;
    ELAG_TRY_GOTO(st, elag_be_to_device(b, s.dw, s.w, sizeof(float) * mk), done);
    ELAG_TRY_GOTO(st, elag_be_to_device(b, s.dx, x, sizeof(float) * (size_t)sh->k * max_n), done);

    for (int bi = 0; bi < c->n_batches; bi++) s.tf32_row[bi] = -1;
    const elag_bench_format *dense = want_dense ? want_dense : &dense_hidden;
    ELAG_TRY_GOTO(st, dense_pass(&s, dense, want_tf32, 0), done);
    for (int si = 0; si < n_sp && n_sparse > 0; si++) {
        double sp = model ? 0.0 : c->sparsities[si];
        make_weights(c, sh, sp, 0, s.w, &nnz);
        if (model) sp = mk ? 1.0 - (double)nnz / (double)mk : 0.0;
        for (int f = 0; f < c->n_formats; f++) {
            const elag_bench_format *fm = &c->formats[f];
            if (fm->format == ELAG_SPARSE_FORMAT_DENSE || !format_runs(b, fm, NULL)) continue;
            ELAG_TRY_GOTO(st, sparse_series(&s, fm, sp), done);
        }
    }
    if (n_sparse > 0) ELAG_TRY_GOTO(st, dense_pass(&s, dense, want_tf32, 1), done);
    finish_rows(&s);
    ELAG_TRY_GOTO(st, crossovers(&s), done);
    if (!want_dense) { /* drop the hidden baseline rows */
        int kept = 0;
        for (int i = 0; i < s.n_rows; i++)
            if (s.rows[i].format != dense_hidden.name) s.rows[kept++] = s.rows[i];
        s.n_rows = kept;
    }
    if (c->emit && c->emit(s.rows, s.n_rows, c->user))
        st = elag_fail(ELAG_ERR_IO, "bench: stopped while writing results");
done:
    *failures += s.failures;
    if (s.dw) elag_be_release(b, s.dw);
    if (s.dx) elag_be_release(b, s.dx);
    if (s.dy) elag_be_release(b, s.dy);
    free(s.rows), free(s.samples), free(s.dense_row), free(s.tf32_row), free(s.w), free(x);
    return st;
}

elag_status elag_bench_spmm(elag_backend *b, const elag_bench_config *c)
{
    if (c->n_shapes < 1 || c->n_batches < 1 || c->n_formats < 1 || c->repeat < 1 ||
        c->warmup < 0 || (c->mask != ELAG_BENCH_MASK_MODEL && c->n_sparsities < 1))
        return elag_fail(ELAG_ERR_USAGE, "bench: nothing to measure (empty shape, batch, sparsity "
                                         "or format list, or repeat < 1)");
    int max_n = 0;
    for (int i = 0; i < c->n_batches; i++) {
        if (c->batches[i] < 1)
            return elag_fail(ELAG_ERR_USAGE, "bench: batch %d < 1", c->batches[i]);
        if (c->batches[i] > max_n) max_n = c->batches[i];
    }
    for (int i = 0; i < c->n_sparsities; i++)
        if (!(c->sparsities[i] >= 0.0 && c->sparsities[i] <= 1.0))
            return elag_fail(ELAG_ERR_USAGE, "bench: sparsity %g outside [0, 1]", c->sparsities[i]);
    for (int i = 0; i < c->n_shapes; i++)
        if (c->shapes[i].m < 1 || c->shapes[i].k < 1)
            return elag_fail(ELAG_ERR_USAGE, "bench: shape %s is %dx%d", c->shapes[i].name,
                             c->shapes[i].m, c->shapes[i].k);
    for (int f = 0; f < c->n_formats; f++) (void)format_runs(b, &c->formats[f], c); /* notes */
    const char *tf32_format = NULL;
    if (tf32_baseline_to_add(b, c, &tf32_format))
        note(c, "dense-tf32 added: %s runs in TF32 on %s (tensor cores), so its rows are also "
                "compared with cuBLAS TF32", tf32_format, b->name);
    char mask_name[32];
    if (c->mask == ELAG_BENCH_MASK_MODEL)
        snprintf(mask_name, sizeof mask_name, "model");
    else if (c->mask == ELAG_BENCH_MASK_BLOCK)
        snprintf(mask_name, sizeof mask_name, "block:%d", c->mask_block > 0 ? c->mask_block : 32);
    else
        snprintf(mask_name, sizeof mask_name, "random");
    int failures = 0;
    for (int i = 0; i < c->n_shapes; i++)
        ELAG_TRY(run_shape(b, c, &c->shapes[i], mask_name, max_n, &failures));
    if (failures)
        return elag_fail(ELAG_ERR_DEVICE, "bench: %d measurement%s failed (see the notes above)",
                         failures, failures == 1 ? "" : "s");
    return ELAG_OK;
}
