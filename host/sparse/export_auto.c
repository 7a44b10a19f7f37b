/*
 * `elag export --format auto`: every weight is timed in each candidate format (dense, CSR,
 * Blocked-ELL with B = 16 and 32) through its own layer's forward, in the model inference
 * builds (infer.h: evaluation mode, one chunk per batch), at `batch` samples, and the
 * fastest is kept. Why the layer's forward and not the product alone: that is what
 * inference runs. A dense convolution runs the backend's direct convolution where it has
 * one (supports(ELAG_OP_CONV): no columns at all) or im2col + GEMM, while a sparse one is
 * im2col over the whole batch + one SpMM; timing a dense im2col GEMM against the SpMM (as
 * auto did before) made sparse formats win on filters where the direct dense convolution is
 * faster (vgg-small's dense model exported auto ran at 0.90x of --format dense, docs/results.md).
 * Blocked-ELL candidates that would store more values than the dense matrix are skipped:
 * they do at least the dense work. So is a sparse candidate the device refuses, asked first
 * through supports() (cuSPARSE's Blocked-ELL before compute capability 8.0) or refused by
 * sparse_create itself (ELAG_ERR_UNSUPPORTED): the export then takes the fastest format
 * the device runs instead of failing, and the timing says why (as `bench` notes it).
 * A net left in mixed formats is then timed whole (elag_export_prefer_csr_chain): an MLP as
 * chosen and all CSR (a CSR chain runs tile-major), a CNN as chosen and all dense (layers
 * timed alone miss what they do to each other: caches, the columns a sparse layer writes).
 */
#define _POSIX_C_SOURCE 200809L
#include "sparse/export.h"

#include "core/check.h"
#include "sparse/infer.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUTO_MIN_REPEAT     5
#define AUTO_MAX_REPEAT     50
#define AUTO_BUDGET_SECONDS 0.25 /* per candidate, after the minimum repeats */
/* A CNN keeps the layers' own choices over every layer dense only when they are this much
 * faster whole: a sparse convolution runs im2col first, which costs relatively more at
 * small batches (vgg-small's conv1 in CSR: 0.3-0.46x of the direct convolution at batch 1,
 * 0.6-0.8x at 256), so on a near tie dense is the one that stays fast at every batch. */
#define AUTO_CNN_MARGIN 0.03

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One run of layer l's forward over `batch` samples of the model's activations with the
 * weight `sp` (a prepared sparse matrix; NULL: the dense weight in m->params), synchronised;
 * its milliseconds in *ms. The layer's output is its own buffer: no other layer's input
 * changes. */
static elag_status run_layer(elag_model *m, elag_layer *l, elag_sparse_dev *sp, int batch,
                             double *ms)
{
    const elag_pass pass = {.n = batch, .training = 0};
    l->sp = sp;
    const double t0 = now_seconds();
    elag_status st = l->kind->forward(m, l, &pass, elag_model_layer_output(m, l->input),
                                      elag_model_layer_output(m, l->index));
    if (st == ELAG_OK) st = elag_be_sync(m->be);
    *ms = 1e3 * (now_seconds() - t0);
    l->sp = NULL;
    return st;
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

/* How layer l's forward runs a dense weight: a convolution's direct path or im2col + GEMM
 * (conv2d.c decides at shape inference; a 1x1 stride-1 unpadded one needs no columns). */
static const char *dense_route(const elag_layer *l)
{
    if (!l->kind->spatial) return "gemm";
    if (l->direct) return "direct";
    const elag_window *g = &l->win;
    int pointwise =
        g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
    return pointwise ? "gemm" : "im2col";
}

/* One candidate format of a weight: its timing slot, and while timed its prepared matrix
 * and one time per round. */
typedef struct candidate {
    elag_sparse_format f;
    int block;
    const char *name;
    double *ms;          /* the timing's median; -1: skipped */
    int live;            /* prepared (dense: always) and being timed */
    elag_sparse_dev *sp; /* sparse: prepared as inference prepares it (infer.c) */
    double t[AUTO_MAX_REPEAT];
} candidate;

/* Prepares sparse candidate c of weight t (dense on the host, (rows, cols)) for products of
 * n columns, or leaves it not live: a Blocked-ELL storing more than the dense matrix, or a
 * format the device refuses (up front, or sparse_create's ELAG_ERR_UNSUPPORTED). */
static elag_status prepare(elag_backend *be, const elag_export_tensor *t, const float *dense, int n,
                           candidate *c, elag_export_timing *tm)
{
    const int rows = t->w.rows, cols = t->w.cols;
    elag_sparse_host h;
    ELAG_TRY(elag_sparse_from_dense(dense, rows, cols, c->f, c->block, &h));
    int skip = c->f == ELAG_SPARSE_FORMAT_BELL &&
               (int64_t)h.block_rows * h.ell_cols * h.block * h.block > (int64_t)rows * cols;
    if (!skip) skip = refused_up_front(be, c->f, c->block, n, c->name, tm);
    elag_status st = ELAG_OK;
    if (!skip) {
        elag_sparse_opts opts = {.max_n = n, .alg = 0};
        st = elag_be_sparse_create(be, &h, &opts, &c->sp);
        if (st == ELAG_ERR_UNSUPPORTED) {
            /* supports() said yes, but cuSPARSE refused this very matrix: skipped too */
            note_refused(tm, c->name, elag_last_error());
            elag_clear_error();
            c->sp = NULL;
            skip = 1;
            st = ELAG_OK;
        }
    }
    c->live = st == ELAG_OK && !skip;
    elag_sparse_host_free(&h);
    return st;
}

/* Times weight i (registry entry i of net's model, dense there) in every candidate format
 * through its layer's forward and records the fastest in tm; the export's tensor is left as
 * it is. The candidates run in turn, one pass each per round, so that a change of load on
 * the machine (other work shares the CPU) moves them alike instead of favouring whichever
 * ran in a quiet moment. */
static elag_status choose_tensor(const elag_export *e, int i, elag_sparse_net *net, int batch,
                                 elag_export_timing *tm)
{
    elag_model *m = &net->m;
    elag_backend *be = m->be;
    const elag_export_tensor *t = &e->t[i];
    elag_layer *l = &m->layers[m->reg[i].layer];
    const size_t count = (size_t)t->w.rows * t->w.cols;
    float *dense = malloc((count ? count : 1) * sizeof *dense); /* (rows, cols) */
    candidate *c = calloc(4, sizeof *c);
    if (!dense || !c) {
        free(dense);
        free(c);
        return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
    }
    c[0] = (candidate){ELAG_SPARSE_FORMAT_DENSE, 0, "dense", &tm->dense_ms, 1, NULL, {0}};
    c[1] = (candidate){ELAG_SPARSE_FORMAT_CSR, 0, "csr", &tm->csr_ms, 0, NULL, {0}};
    c[2] = (candidate){ELAG_SPARSE_FORMAT_BELL, 16, "bell:16", &tm->bell16_ms, 0, NULL, {0}};
    c[3] = (candidate){ELAG_SPARSE_FORMAT_BELL, 32, "bell:32", &tm->bell32_ms, 0, NULL, {0}};
    tm->refused[0] = '\0';
    snprintf(tm->dense_route, sizeof tm->dense_route, "%s", dense_route(l));
    elag_status st = elag_sparse_to_dense(&t->w, dense);
    int live = 1;
    for (int k = 1; st == ELAG_OK && k < 4; k++) {
        st = prepare(be, t, dense, batch * t->columns_per_sample, &c[k], tm);
        live += c[k].live;
    }
    double warm;
    for (int k = 0; st == ELAG_OK && k < 4; k++)
        if (c[k].live) st = run_layer(m, l, c[k].sp, batch, &warm);
    int reps = 0;
    const double start = now_seconds();
    while (st == ELAG_OK && reps < AUTO_MAX_REPEAT &&
           (reps < AUTO_MIN_REPEAT || now_seconds() - start < live * AUTO_BUDGET_SECONDS)) {
        for (int k = 0; st == ELAG_OK && k < 4; k++)
            if (c[k].live) st = run_layer(m, l, c[k].sp, batch, &c[k].t[reps]);
        reps++;
    }
    double best = -1.0;
    for (int k = 0; k < 4; k++) {
        *c[k].ms = -1.0;
        if (st == ELAG_OK && c[k].live) {
            double p99;
            elag_latency_percentiles(c[k].t, reps, c[k].ms, &p99);
            if (best < 0 || *c[k].ms < best) {
                best = *c[k].ms;
                tm->chosen = c[k].f;
                tm->block = c[k].block;
            }
        }
        elag_be_sparse_destroy(be, c[k].sp);
    }
    free(dense);
    free(c);
    return st;
}

elag_status elag_export_choose_auto(elag_export *e, elag_backend *be, int batch,
                                    elag_export_timing *timings)
{
    if (batch < 1) return elag_fail(ELAG_ERR_USAGE, "export: auto batch %d (must be >= 1)", batch);
    /* every weight dense first: the net is then what a dense export builds, and each
     * candidate replaces one layer's weight at a time */
    for (int i = 0; i < e->n_tensors; i++) {
        memset(&timings[i], 0, sizeof timings[i]);
        if (e->t[i].is_weight) ELAG_TRY(elag_export_convert(e, i, ELAG_SPARSE_FORMAT_DENSE, 16));
    }
    elag_sparse_net net;
    ELAG_TRY(elag_sparse_net_init(&net, e, be, batch, 0));
    elag_model *m = &net.m;
    /* one forward pass of random input: every layer's input then holds activations of the
     * right shape (a ReLU's zeros included) */
    const elag_pass pass = {.n = batch, .training = 0};
    const float *logits;
    elag_status st =
        elag_be_init_uniform(be, m->x_in, (size_t)m->input_dim * batch, -1.0f, 1.0f, 12345, 0);
    if (st == ELAG_OK) st = elag_model_forward(m, &pass, &logits);
    for (int i = 0; st == ELAG_OK && i < e->n_tensors; i++)
        if (e->t[i].is_weight) st = choose_tensor(e, i, &net, batch, &timings[i]);
    elag_sparse_net_free(&net);
    for (int i = 0; st == ELAG_OK && i < e->n_tensors; i++)
        if (e->t[i].is_weight)
            st = elag_export_convert(e, i, timings[i].chosen,
                                     timings[i].block ? timings[i].block : 16);
    return st;
}

/* Median ms of the whole forward pass of two nets at `batch` random rows, alternated pass
 * by pass so that a change of load on the machine moves both alike (the sweeps and other
 * work share the CPU auto times on). */
static elag_status time_nets(elag_sparse_net *net, int batch, double *ms)
{
    const int in = net[0].input_dim;
    float *x = malloc((size_t)batch * in * sizeof *x);                       /* (batch, in) */
    float *logits = malloc((size_t)batch * net[0].classes * sizeof *logits); /* (batch, classes) */
    double t[2][AUTO_MAX_REPEAT];
    int n = 0;
    elag_status st = x && logits ? ELAG_OK : elag_fail(ELAG_ERR_NOMEM, "export: out of memory");
    for (size_t i = 0; x && i < (size_t)batch * in; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int w = 0; st == ELAG_OK && w < 4; w++)
        st = elag_sparse_net_forward(&net[w % 2], x, batch, logits);
    const double start = now_seconds();
    while (st == ELAG_OK && n < AUTO_MAX_REPEAT &&
           (n < AUTO_MIN_REPEAT || now_seconds() - start < 2 * AUTO_BUDGET_SECONDS)) {
        for (int k = 0; st == ELAG_OK && k < 2; k++) {
            const double t0 = now_seconds();
            st = elag_sparse_net_forward(&net[k], x, batch, logits);
            t[k][n] = (now_seconds() - t0) * 1e3;
        }
        n++;
    }
    free(x);
    free(logits);
    if (st != ELAG_OK) return st;
    double p99;
    elag_latency_percentiles(t[0], n, &ms[0], &p99);
    elag_latency_percentiles(t[1], n, &ms[1], &p99);
    return ELAG_OK;
}

/* The whole net as auto chose it against every weight in `all` (its fallback): both built
 * as inference builds them and timed whole at `batch`; the choices are kept when they are
 * faster by more than `margin` (a fraction of all's time), else `all` (the weights' formats
 * and their timings' `chosen`). *kept_all says which; the two medians go to *chosen_ms and
 * *all_ms. */
static elag_status prefer_uniform(elag_export *e, elag_backend *be, int batch,
                                  elag_export_timing *timings, elag_sparse_format all,
                                  double margin, double *chosen_ms, double *all_ms, int *kept_all)
{
    elag_sparse_net net[2]; /* as chosen, all */
    memset(net, 0, sizeof net);
    double ms[2];
    elag_status st = elag_sparse_net_init(&net[0], e, be, batch, 0);
    for (int i = 0; st == ELAG_OK && i < e->n_tensors; i++)
        if (e->t[i].is_weight) st = elag_export_convert(e, i, all, 16);
    if (st == ELAG_OK) st = elag_sparse_net_init(&net[1], e, be, batch, 0);
    if (st == ELAG_OK) st = time_nets(net, batch, ms);
    elag_sparse_net_free(&net[0]);
    elag_sparse_net_free(&net[1]);
    *kept_all = st == ELAG_OK && !(ms[0] < ms[1] * (1.0 - margin));
    *chosen_ms = st == ELAG_OK ? ms[0] : -1.0;
    *all_ms = st == ELAG_OK ? ms[1] : -1.0;
    for (int i = 0; i < e->n_tensors; i++) { /* on failure too: back to the layers' choices */
        if (!e->t[i].is_weight) continue;
        if (*kept_all) {
            timings[i].chosen = all;
            timings[i].block = 0;
            continue;
        }
        elag_status cs =
            elag_export_convert(e, i, timings[i].chosen, timings[i].block ? timings[i].block : 16);
        if (st == ELAG_OK) st = cs;
    }
    return st;
}

/* "N direct, M im2col" over the convolutions' dense routes (buf of size bytes). */
static void conv_routes(const elag_export *e, const elag_export_timing *timings, char *buf,
                        size_t size)
{
    const char *names[] = {"direct", "im2col", "gemm"};
    int count[3] = {0, 0, 0};
    for (int i = 0; i < e->n_tensors; i++) {
        if (!e->t[i].is_weight || e->t[i].ndim != 4) continue;
        for (int k = 0; k < 3; k++) count[k] += strcmp(timings[i].dense_route, names[k]) == 0;
    }
    buf[0] = '\0';
    for (int k = 0; k < 3; k++) {
        size_t used = strlen(buf);
        if (count[k] && used < size)
            snprintf(buf + used, size - used, "%s%d %s", used ? ", " : "", count[k], names[k]);
    }
}

elag_status elag_export_prefer_csr_chain(elag_export *e, elag_backend *be, int batch,
                                         elag_export_timing *timings, char *note, size_t size)
{
    note[0] = '\0';
    int conv = 0, csr_only = 1, dense_only = 1;
    for (int i = 0; i < e->n_tensors; i++) {
        const elag_export_tensor *t = &e->t[i];
        if (!t->is_weight) continue;
        conv |= t->ndim == 4;
        csr_only &= t->w.format == ELAG_SPARSE_FORMAT_CSR;
        dense_only &= t->w.format == ELAG_SPARSE_FORMAT_DENSE;
    }
    double chosen_ms, all_ms;
    int kept_all;
    if (!conv) { /* an MLP: no CSR chain unless every layer is CSR */
        if (csr_only) return ELAG_OK;
        ELAG_TRY(prefer_uniform(e, be, batch, timings, ELAG_SPARSE_FORMAT_CSR, 0.0, &chosen_ms,
                                &all_ms, &kept_all));
        snprintf(note, size,
                 "whole forward pass at batch %d: every layer csr %.4f ms, the "
                 "layers' own choices %.4f ms: kept %s",
                 batch, all_ms, chosen_ms,
                 kept_all ? "every layer csr" : "the layers' own choices");
        return ELAG_OK;
    }
    char routes[64];
    conv_routes(e, timings, routes, sizeof routes);
    int used = snprintf(note, size,
                        "layers timed in their own forward at batch %d (dense "
                        "convolutions: %s)",
                        batch, routes);
    if (used < 0 || (size_t)used >= size) return ELAG_OK;
    if (dense_only) {
        snprintf(note + used, size - used, ": every layer dense");
        return ELAG_OK;
    }
    ELAG_TRY(prefer_uniform(e, be, batch, timings, ELAG_SPARSE_FORMAT_DENSE, AUTO_CNN_MARGIN,
                            &chosen_ms, &all_ms, &kept_all));
    snprintf(note + used, size - used,
             "; whole pass: every layer dense %.3f ms, the layers' own "
             "choices %.3f ms: kept %s (dense within %.0f%%)",
             all_ms, chosen_ms, kept_all ? "every layer dense" : "the layers' own choices",
             100.0 * AUTO_CNN_MARGIN);
    return ELAG_OK;
}
