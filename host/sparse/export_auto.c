/*
 * `elag export --format auto`: every linear layer's product (out, in) x (in, batch) is
 * timed on the target backend in each candidate format (dense gemm + bias/ReLU
 * epilogue, CSR and Blocked-ELL with B = 16 and 32 through sparse_mm with the epilogue
 * fused), exactly as inference will run it, and the fastest is kept. Blocked-ELL
 * candidates that would store more values than the dense matrix are skipped: they do
 * at least the dense work.
 */
#define _POSIX_C_SOURCE 200809L
#include "sparse/export.h"

#include "core/check.h"
#include "sparse/infer.h"

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

/* Median milliseconds of one layer product in the format of `w`. */
static elag_status time_candidate(elag_backend *be, const elag_export_layer *l,
                                  const elag_sparse_host *w, int relu, const float *x, int n,
                                  float *y, double *ms)
{
    elag_export_layer tmp = *l; /* shallow: borrows w and bias, frees nothing */
    tmp.w = *w;
    elag_net_layer nl;
    ELAG_TRY(elag_net_layer_init(be, &tmp, n, 0, &nl));
    nl.relu = relu;
    double t[AUTO_MAX_REPEAT];
    int reps = 0;
    elag_status st = elag_net_layer_forward(be, &nl, x, n, y); /* warm-up */
    if (st == ELAG_OK) st = be->sync(be);
    double start = now_seconds();
    while (st == ELAG_OK && reps < AUTO_MAX_REPEAT &&
           (reps < AUTO_MIN_REPEAT || now_seconds() - start < AUTO_BUDGET_SECONDS)) {
        double t0 = now_seconds();
        st = elag_net_layer_forward(be, &nl, x, n, y);
        if (st == ELAG_OK) st = be->sync(be);
        t[reps++] = 1e3 * (now_seconds() - t0);
    }
    elag_net_layer_free(be, &nl);
    if (st != ELAG_OK) return st;
    double p99;
    elag_latency_percentiles(t, reps, ms, &p99);
    return ELAG_OK;
}

static elag_status choose_layer(elag_export *e, int i, elag_backend *be, int n, float *x,
                                float *y, elag_export_timing *tm)
{
    elag_export_layer *l = &e->layers[i];
    const int relu = i + 1 < e->n_layers && e->layers[i + 1].type == ELAG_LAYER_RELU;
    size_t count = (size_t)l->out * l->in;
    float *dense = malloc((count ? count : 1) * sizeof *dense); /* (out, in) */
    if (!dense) return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
    elag_status st = elag_sparse_to_dense(&l->w, dense);
    struct {
        elag_sparse_format f;
        int block;
        double *ms;
    } cand[] = {{ELAG_SPARSE_FORMAT_DENSE, 0, &tm->dense_ms},
                {ELAG_SPARSE_FORMAT_CSR, 0, &tm->csr_ms},
                {ELAG_SPARSE_FORMAT_BELL, 16, &tm->bell16_ms},
                {ELAG_SPARSE_FORMAT_BELL, 32, &tm->bell32_ms}};
    double best = -1.0;
    for (size_t c = 0; st == ELAG_OK && c < ELAG_ARRAY_LEN(cand); c++) {
        *cand[c].ms = -1.0;
        elag_sparse_host h;
        st = elag_sparse_from_dense(dense, l->out, l->in, cand[c].f, cand[c].block, &h);
        if (st != ELAG_OK) break;
        int skip = cand[c].f == ELAG_SPARSE_FORMAT_BELL &&
                   (int64_t)h.block_rows * h.ell_cols * h.block * h.block > (int64_t)count;
        if (!skip) st = time_candidate(be, l, &h, relu, x, n, y, cand[c].ms);
        elag_sparse_host_free(&h);
        if (st == ELAG_OK && !skip && (best < 0 || *cand[c].ms < best)) {
            best = *cand[c].ms;
            tm->chosen = cand[c].f;
            tm->block = cand[c].block;
        }
    }
    free(dense);
    if (st != ELAG_OK) return st;
    return elag_export_convert(e, i, tm->chosen, tm->block ? tm->block : 16);
}

elag_status elag_export_choose_auto(elag_export *e, elag_backend *be, int batch,
                                    elag_export_timing *timings)
{
    int widest = e->input_dim;
    for (int i = 0; i < e->n_layers; i++)
        if (e->layers[i].out > widest) widest = e->layers[i].out;
    size_t count = (size_t)widest * (size_t)batch;
    float *x = NULL, *y = NULL; /* device (widest, batch) */
    elag_status st;
    ELAG_TRY_GOTO(st, be->alloc(be, count * sizeof(float), (void **)&x), done);
    ELAG_TRY_GOTO(st, be->alloc(be, count * sizeof(float), (void **)&y), done);
    ELAG_TRY_GOTO(st, be->init_uniform(be, x, count, -1.0f, 1.0f, 12345, 0), done);
    for (int i = 0; i < e->n_layers; i++) {
        memset(&timings[i], 0, sizeof timings[i]);
        if (e->layers[i].type == ELAG_LAYER_LINEAR)
            ELAG_TRY_GOTO(st, choose_layer(e, i, be, batch, x, y, &timings[i]), done);
    }
done:
    be->release(be, x);
    be->release(be, y);
    return st;
}
