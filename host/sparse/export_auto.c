/*
 * `elag export --format auto`: every weight's product (out, in) x (in, batch * oh * ow) is
 * timed on the target backend in each candidate format (dense gemm + bias/ReLU
 * epilogue, CSR and Blocked-ELL with B = 16 and 32 through sparse_mm with the epilogue
 * fused), exactly as inference will run it, and the fastest is kept. Blocked-ELL
 * candidates that would store more values than the dense matrix are skipped: they do
 * at least the dense work. So is a sparse candidate the device refuses, asked first
 * through supports() (cuSPARSE's Blocked-ELL before compute capability 8.0) or refused by
 * sparse_create itself (ELAG_ERR_UNSUPPORTED): the export then takes the fastest format
 * the device runs instead of failing, and the timing says why (as `bench` notes it).
 * An MLP left in mixed formats is then timed whole, as chosen and all CSR (a CSR chain runs
 * tile-major: elag_export_prefer_csr_chain).
 */
#define _POSIX_C_SOURCE 200809L
#include "sparse/export.h"

#include "core/check.h"
#include "sparse/infer.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUTO_MIN_REPEAT 5
#define AUTO_MAX_REPEAT 50
#define AUTO_BUDGET_SECONDS 0.25 /* per candidate, after the minimum repeats */

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One candidate on the device: the weight dense or prepared sparse, its bias. */
typedef struct candidate {
    const elag_export_tensor *t;
    elag_sparse_dev *sp;       /* sparse formats */
    float *w;                  /* dense: device (rows, cols) */
    const float *bias;         /* device (rows) or NULL */
} candidate;

static elag_status run_candidate(elag_backend *be, const candidate *c, const float *x, int n,
                                 float *y)
{
    const elag_export_tensor *t = c->t;
    if (c->sp) return elag_be_sparse_mm(be, c->sp, x, n, c->bias, t->relu, y);
    ELAG_TRY(
        elag_be_gemm(be, 0, 0, t->w.rows, n, t->w.cols, 1.0f, c->w, t->w.cols, x, n, 0.0f, y, n));
    return elag_layer_epilogue(be, y, c->bias, t->w.rows, n, t->relu);
}

/* Median milliseconds of weight t's product in the format of `w` over n columns. */
static elag_status time_candidate(elag_backend *be, const elag_export_tensor *t,
                                  const elag_sparse_host *w, const float *bias, const float *x,
                                  int n, float *y, double *ms)
{
    candidate c = {.t = t, .bias = bias};
    size_t count = (size_t)w->rows * w->cols;
    elag_status st = ELAG_OK;
    if (w->format == ELAG_SPARSE_FORMAT_DENSE) {
        st = elag_be_alloc(be, (count ? count : 1) * sizeof(float), (void **)&c.w);
        if (st == ELAG_OK) st = elag_be_to_device(be, c.w, w->dense, count * sizeof(float));
    } else {
        elag_sparse_opts opts = {.max_n = n, .alg = 0};
        st = elag_be_sparse_create(be, w, &opts, &c.sp);
    }
    double t_ms[AUTO_MAX_REPEAT];
    int reps = 0;
    if (st == ELAG_OK) st = run_candidate(be, &c, x, n, y); /* warm-up */
    if (st == ELAG_OK) st = elag_be_sync(be);
    double start = now_seconds();
    while (st == ELAG_OK && reps < AUTO_MAX_REPEAT &&
           (reps < AUTO_MIN_REPEAT || now_seconds() - start < AUTO_BUDGET_SECONDS)) {
        double t0 = now_seconds();
        st = run_candidate(be, &c, x, n, y);
        if (st == ELAG_OK) st = elag_be_sync(be);
        t_ms[reps++] = 1e3 * (now_seconds() - t0);
    }
    elag_be_sparse_destroy(be, c.sp);
    elag_be_release(be, c.w);
    if (st != ELAG_OK) return st;
    double p99;
    elag_latency_percentiles(t_ms, reps, ms, &p99);
    return ELAG_OK;
}

/* Appends "<name>: <why>" to the timing's list of refused candidates. */
static void note_refused(elag_export_timing *tm, const char *name, const char *why)
{
    size_t used = strlen(tm->refused);
    if (used + 1 >= sizeof tm->refused) return; /* full: the first reasons are kept */
    snprintf(tm->refused + used, sizeof tm->refused - used, "%s%s: %s", used ? "; " : "", name,
             why);
}

/* Whether the device refuses sparse candidate (f, block) for products of n columns, asked
 * before anything is prepared; the reason goes to tm. */
static int refused_up_front(elag_backend *be, elag_sparse_format f, int block, int n,
                            const char *name, elag_export_timing *tm)
{
    if (f == ELAG_SPARSE_FORMAT_DENSE) return 0; /* gemm: every backend runs it */
    elag_op_query q = {.format = f, .block = block, .max_n = n};
    char why[160];
    if (elag_be_supports(be, ELAG_OP_SPARSE_MM, &q, why, sizeof why) != ELAG_SUPPORT_NO) return 0;
    note_refused(tm, name, why);
    return 1;
}

/* The bias tensor of weight i's layer, or NULL. */
static const elag_export_tensor *bias_of(const elag_export *e, int i)
{
    char want[ELAG_PARAM_NAME_LEN];
    snprintf(want, sizeof want, "%s.bias", e->cfg.model.layers[e->t[i].layer].name);
    for (int j = 0; j < e->n_tensors; j++)
        if (e->t[j].layer == e->t[i].layer && strcmp(e->t[j].name, want) == 0) return &e->t[j];
    return NULL;
}

static elag_status choose_tensor(elag_export *e, int i, elag_backend *be, int batch, float *x,
                                 float *y, elag_export_timing *tm)
{
    const elag_export_tensor *t = &e->t[i];
    const int rows = t->w.rows, cols = t->w.cols, n = batch * t->columns_per_sample;
    size_t count = (size_t)rows * cols;
    const elag_export_tensor *b = bias_of(e, i);
    float *dense = malloc((count ? count : 1) * sizeof *dense); /* (rows, cols) */
    float *bias = NULL;                                         /* device (rows) */
    if (!dense) return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
    elag_status st = elag_sparse_to_dense(&t->w, dense);
    if (st == ELAG_OK && b) st = elag_be_alloc(be, (size_t)rows * sizeof(float), (void **)&bias);
    if (st == ELAG_OK && b) st = elag_be_to_device(be, bias, b->data, (size_t)rows * sizeof(float));
    struct {
        elag_sparse_format f;
        int block;
        const char *name;
        double *ms;
    } cand[] = {{ELAG_SPARSE_FORMAT_DENSE, 0, "dense", &tm->dense_ms},
                {ELAG_SPARSE_FORMAT_CSR, 0, "csr", &tm->csr_ms},
                {ELAG_SPARSE_FORMAT_BELL, 16, "bell:16", &tm->bell16_ms},
                {ELAG_SPARSE_FORMAT_BELL, 32, "bell:32", &tm->bell32_ms}};
    double best = -1.0;
    tm->refused[0] = '\0';
    for (size_t c = 0; st == ELAG_OK && c < ELAG_ARRAY_LEN(cand); c++) {
        *cand[c].ms = -1.0; /* skipped, until timed */
        elag_sparse_host h;
        st = elag_sparse_from_dense(dense, rows, cols, cand[c].f, cand[c].block, &h);
        if (st != ELAG_OK) break;
        int skip = cand[c].f == ELAG_SPARSE_FORMAT_BELL &&
                   (int64_t)h.block_rows * h.ell_cols * h.block * h.block > (int64_t)count;
        if (!skip) skip = refused_up_front(be, cand[c].f, cand[c].block, n, cand[c].name, tm);
        if (!skip) st = time_candidate(be, t, &h, bias, x, n, y, cand[c].ms);
        if (st == ELAG_ERR_UNSUPPORTED && cand[c].f != ELAG_SPARSE_FORMAT_DENSE) {
            /* supports() said yes, but cuSPARSE refused this very matrix: skipped too */
            note_refused(tm, cand[c].name, elag_last_error());
            elag_clear_error();
            *cand[c].ms = -1.0;
            skip = 1;
            st = ELAG_OK;
        }
        elag_sparse_host_free(&h);
        if (st == ELAG_OK && !skip && (best < 0 || *cand[c].ms < best)) {
            best = *cand[c].ms;
            tm->chosen = cand[c].f;
            tm->block = cand[c].block;
        }
    }
    free(dense);
    elag_be_release(be, bias);
    if (st != ELAG_OK) return st;
    return elag_export_convert(e, i, tm->chosen, tm->block ? tm->block : 16);
}

elag_status elag_export_choose_auto(elag_export *e, elag_backend *be, int batch,
                                    elag_export_timing *timings)
{
    size_t widest = 1; /* largest operand of any product: rows or cols times its columns */
    for (int i = 0; i < e->n_tensors; i++) {
        const elag_export_tensor *t = &e->t[i];
        if (!t->is_weight) continue;
        size_t side = (size_t)(t->w.rows > t->w.cols ? t->w.rows : t->w.cols);
        size_t need = side * (size_t)t->columns_per_sample * (size_t)batch;
        if (need > widest) widest = need;
    }
    float *x = NULL, *y = NULL; /* device (widest) */
    elag_status st;
    ELAG_TRY_GOTO(st, elag_be_alloc(be, widest * sizeof(float), (void **)&x), done);
    ELAG_TRY_GOTO(st, elag_be_alloc(be, widest * sizeof(float), (void **)&y), done);
    ELAG_TRY_GOTO(st, elag_be_init_uniform(be, x, widest, -1.0f, 1.0f, 12345, 0), done);
    for (int i = 0; i < e->n_tensors; i++) {
        memset(&timings[i], 0, sizeof timings[i]);
        if (e->t[i].is_weight)
            ELAG_TRY_GOTO(st, choose_tensor(e, i, be, batch, x, y, &timings[i]), done);
    }
done:
    elag_be_release(be, x);
    elag_be_release(be, y);
    return st;
}

/* Median ms of the whole forward pass of e on be at `batch` random rows. */
static elag_status time_net(const elag_export *e, elag_backend *be, int batch, double *ms)
{
    elag_sparse_net net;
    ELAG_TRY(elag_sparse_net_init(&net, e, be, batch, 0));
    float *x = malloc((size_t)batch * net.input_dim * sizeof *x);
    float *logits = malloc((size_t)batch * net.classes * sizeof *logits);
    double t[AUTO_MAX_REPEAT];
    int n = 0;
    elag_status st = x && logits ? ELAG_OK : elag_fail(ELAG_ERR_NOMEM, "export: out of memory");
    for (size_t i = 0; x && i < (size_t)batch * net.input_dim; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int w = 0; st == ELAG_OK && w < 2; w++) st = elag_sparse_net_forward(&net, x, batch, logits);
    const double start = now_seconds();
    while (st == ELAG_OK && n < AUTO_MAX_REPEAT &&
           (n < AUTO_MIN_REPEAT || now_seconds() - start < AUTO_BUDGET_SECONDS)) {
        const double t0 = now_seconds();
        st = elag_sparse_net_forward(&net, x, batch, logits);
        t[n++] = (now_seconds() - t0) * 1e3;
    }
    free(x);
    free(logits);
    elag_sparse_net_free(&net);
    if (st != ELAG_OK) return st;
    double p99;
    elag_latency_percentiles(t, n, ms, &p99);
    return ELAG_OK;
}

elag_status elag_export_prefer_csr_chain(elag_export *e, elag_backend *be, int batch,
                                         elag_export_timing *timings, char *note, size_t size)
{
    note[0] = '\0';
    int mixed = 0;
    for (int i = 0; i < e->n_tensors; i++) {
        const elag_export_tensor *t = &e->t[i];
        if (!t->is_weight) continue;
        if (t->columns_per_sample != 1) return ELAG_OK; /* a convolution: no CSR chain */
        mixed |= t->w.format != ELAG_SPARSE_FORMAT_CSR;
    }
    if (!mixed) return ELAG_OK;
    double chosen_ms, csr_ms;
    ELAG_TRY(time_net(e, be, batch, &chosen_ms));
    for (int i = 0; i < e->n_tensors; i++)
        if (e->t[i].is_weight) ELAG_TRY(elag_export_convert(e, i, ELAG_SPARSE_FORMAT_CSR, 16));
    ELAG_TRY(time_net(e, be, batch, &csr_ms));
    const int keep_csr = csr_ms < chosen_ms;
    for (int i = 0; i < e->n_tensors; i++) {
        if (!e->t[i].is_weight) continue;
        if (keep_csr) {
            timings[i].chosen = ELAG_SPARSE_FORMAT_CSR;
            timings[i].block = 0;
        } else {
            ELAG_TRY(elag_export_convert(e, i, timings[i].chosen,
                                         timings[i].block ? timings[i].block : 16));
        }
    }
    snprintf(note, size, "whole forward pass at batch %d: every layer csr %.4f ms, the layers' "
             "own choices %.4f ms: kept %s", batch, csr_ms, chosen_ms,
             keep_csr ? "every layer csr" : "the layers' own choices");
    return ELAG_OK;
}
