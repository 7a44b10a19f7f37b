/*
 * `elag bench layer` (elag_bench_layer_run, include/elag/bench.h) and the layer step both
 * paths run (bench_layer.h). Per sparsity: one layer with that mask; the sparse path's
 * pattern built once (timed: prepare_ms, the cost at a mask update); then warm-up and
 * `repeat` steps of each path, alternating dense and sparse so that machine load hits both
 * alike; each part of a step ends with a sync and is timed; medians over the repeats.
 * Both paths start from the same weights; the timed steps keep training them (the same
 * learning rate both ways), so the work is a real step's, not a replay of one state.
 * scatter_ms: the median time of writing the kept values back into the dense W, what the
 * other design (the dense W as the master, scattered every step) would add to a step.
 */
#define _POSIX_C_SOURCE 200809L
#include "sparse/bench_layer.h"

#include "api/api.h"
#include "backend/philox.h"
#include "core/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAYER_STREAM_MASK 0x7400u
#define LAYER_STREAM_W    0x7500u
#define LAYER_STREAM_X    0x7600u
#define LAYER_STREAM_DY   0x7700u
#define LAYER_LR          0.01f
#define LAYER_MOMENTUM    0.9f

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

void elag_layer_step_free(elag_layer_step *s)
{
    if (!s || !s->be) return;
    elag_be_sparse_pattern_destroy(s->be, s->p);
    float *bufs[] = {s->w, s->v, s->mask, s->x, s->dy, s->y, s->dx, s->g, s->wv, s->vv, s->gv};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) elag_be_release(s->be, bufs[i]);
    memset(s, 0, sizeof *s);
}

static elag_status alloc_f(elag_backend *be, size_t n, float **out)
{
    return elag_be_alloc(be, (n ? n : 1) * sizeof(float), (void **)out);
}

elag_status elag_layer_step_init(elag_layer_step *s, elag_backend *be, int out, int in, int n,
                                 double sparsity, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->be = be, s->out = out, s->in = in, s->n = n;
    const size_t oi = (size_t)out * in;
    elag_status st = ELAG_OK;
    float *host = malloc(oi * sizeof *host);
    if (!host) return elag_fail(ELAG_ERR_NOMEM, "bench layer: out of host memory");
    if ((st = alloc_f(be, oi, &s->w)) != ELAG_OK || (st = alloc_f(be, oi, &s->v)) != ELAG_OK ||
        (st = alloc_f(be, oi, &s->mask)) != ELAG_OK ||
        (st = alloc_f(be, (size_t)in * n, &s->x)) != ELAG_OK ||
        (st = alloc_f(be, (size_t)out * n, &s->dy)) != ELAG_OK ||
        (st = alloc_f(be, (size_t)out * n, &s->y)) != ELAG_OK ||
        (st = alloc_f(be, (size_t)in * n, &s->dx)) != ELAG_OK ||
        (st = alloc_f(be, oi, &s->g)) != ELAG_OK)
        goto fail;
    for (size_t i = 0; i < oi; i++)
        host[i] = elag_philox_uniform(seed, LAYER_STREAM_MASK, i) >= sparsity ? 1.0f : 0.0f;
    if ((st = elag_be_to_device(be, s->mask, host, oi * sizeof *host)) != ELAG_OK) goto fail;
    const float a = 1.0f / sqrtf((float)(in > 0 ? in : 1));
    if ((st = elag_be_init_uniform(be, s->w, oi, -a, a, seed, LAYER_STREAM_W)) != ELAG_OK ||
        (st = elag_be_elementwise(be, ELAG_EW_MUL, oi, s->w, s->w, s->mask, 0.0f)) != ELAG_OK ||
        (st = elag_be_init_uniform(be, s->x, (size_t)in * n, -1, 1, seed, LAYER_STREAM_X)) !=
            ELAG_OK ||
        (st = elag_be_init_uniform(be, s->dy, (size_t)out * n, -1, 1, seed, LAYER_STREAM_DY)) !=
            ELAG_OK)
        goto fail;
    free(host);
    return elag_be_sync(be);
fail:
    free(host);
    elag_layer_step_free(s);
    return st;
}

/* Runs one part, then stores its time in *ms (ms: a double *, or NULL). */
#define PART(ms, call)                                                                             \
    do {                                                                                           \
        double *ms_ = (ms);                                                                        \
        double t0_ = now_ms();                                                                     \
        ELAG_TRY(call);                                                                            \
        ELAG_TRY(elag_be_sync(s->be));                                                             \
        if (ms_) *ms_ = now_ms() - t0_;                                                            \
    } while (0)

elag_status elag_layer_step_dense(elag_layer_step *s, float lr, float momentum,
                                  elag_layer_step_times *t)
{
    elag_backend *be = s->be;
    const int out = s->out, in = s->in, n = s->n;
    PART(t ? &t->forward : NULL,
         elag_be_gemm(be, 0, 0, out, n, in, 1.0f, s->w, in, s->x, n, 0.0f, s->y, n));
    PART(t ? &t->input_grad : NULL,
         elag_be_gemm(be, 1, 0, in, n, out, 1.0f, s->w, in, s->dy, n, 0.0f, s->dx, n));
    PART(t ? &t->weight_grad : NULL,
         elag_be_gemm(be, 0, 1, out, in, n, 1.0f, s->dy, n, s->x, n, 0.0f, s->g, in));
    PART(t ? &t->optimizer : NULL,
         elag_be_sgd_step(be, s->w, s->g, s->v, s->mask, (size_t)out * in, lr, momentum, 0.0f, 0));
    return ELAG_OK;
}

elag_status elag_layer_step_sparse_begin(elag_layer_step *s)
{
    elag_backend *be = s->be;
    ELAG_TRY(elag_be_sparse_pattern_create(be, s->mask, s->out, s->in, s->n, &s->p));
    s->nnz = elag_sparse_pattern_nnz(s->p);
    ELAG_TRY(alloc_f(be, (size_t)s->nnz, &s->wv));
    ELAG_TRY(alloc_f(be, (size_t)s->nnz, &s->vv));
    ELAG_TRY(alloc_f(be, (size_t)s->nnz, &s->gv));
    ELAG_TRY(elag_be_sparse_gather(be, s->p, s->w, s->wv));
    ELAG_TRY(elag_be_sparse_gather(be, s->p, s->v, s->vv));
    ELAG_TRY(elag_be_sparse_values_set(be, s->p, s->wv));
    return elag_be_sync(be);
}

elag_status elag_layer_step_sparse(elag_layer_step *s, float lr, float momentum,
                                   elag_layer_step_times *t)
{
    elag_backend *be = s->be;
    ELAG_ASSERT(s->p != NULL);
    PART(t ? &t->forward : NULL, elag_be_sparse_pattern_mm(be, s->p, 0, s->x, s->n, s->y));
    PART(t ? &t->input_grad : NULL, elag_be_sparse_pattern_mm(be, s->p, 1, s->dy, s->n, s->dx));
    PART(t ? &t->weight_grad : NULL, elag_be_sddmm(be, s->p, s->dy, s->x, s->n, s->gv));
    /* the optimizer on the kept values only, then the pattern's values for the next step */
    double opt = 0.0, set = 0.0;
    PART(&opt,
         elag_be_sgd_step(be, s->wv, s->gv, s->vv, NULL, (size_t)s->nnz, lr, momentum, 0.0f, 0));
    PART(&set, elag_be_sparse_values_set(be, s->p, s->wv));
    if (t) t->optimizer = opt + set;
    return ELAG_OK;
}

elag_status elag_layer_step_sparse_end(elag_layer_step *s)
{
    elag_backend *be = s->be;
    ELAG_ASSERT(s->p != NULL);
    ELAG_TRY(elag_be_sparse_scatter(be, s->p, s->wv, s->w));
    ELAG_TRY(elag_be_sparse_scatter(be, s->p, s->vv, s->v));
    ELAG_TRY(elag_be_sync(be));
    elag_be_sparse_pattern_destroy(be, s->p);
    s->p = NULL;
    elag_be_release(be, s->wv);
    elag_be_release(be, s->vv);
    elag_be_release(be, s->gv);
    s->wv = s->vv = s->gv = NULL;
    return ELAG_OK;
}

/* ---------------------------------------------------------------- the benchmark ---- */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile of samples[0..n) (sorted in place), nearest rank. */
static double quantile(double *samples, int n, double q)
{
    qsort(samples, (size_t)n, sizeof *samples, cmp_double);
    int i = (int)floor(q * (n - 1) + 0.5);
    return samples[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* samples: (6, repeat) per path: step, forward, input_grad, weight_grad, optimizer, scatter */
static void fill_row(elag_bench_layer_row *r, double *samples, int repeat)
{
    r->p10_ms = quantile(samples, repeat, 0.1);
    r->p90_ms = quantile(samples, repeat, 0.9);
    r->median_ms = quantile(samples, repeat, 0.5);
    r->forward_ms = quantile(samples + repeat, repeat, 0.5);
    r->input_grad_ms = quantile(samples + 2 * repeat, repeat, 0.5);
    r->weight_grad_ms = quantile(samples + 3 * repeat, repeat, 0.5);
    r->optimizer_ms = quantile(samples + 4 * repeat, repeat, 0.5);
}

static void record(double *samples, int repeat, int i, const elag_layer_step_times *t)
{
    samples[i] = t->forward + t->input_grad + t->weight_grad + t->optimizer;
    samples[repeat + i] = t->forward;
    samples[2 * repeat + i] = t->input_grad;
    samples[3 * repeat + i] = t->weight_grad;
    samples[4 * repeat + i] = t->optimizer;
}

static elag_status one_sparsity(elag_backend *be, const elag_bench_layer_options *o, double sp,
                                double *dense_s, double *sparse_s, int *stop)
{
    elag_layer_step s;
    ELAG_TRY(elag_layer_step_init(&s, be, o->out, o->in, o->batch, sp, o->seed));
    elag_bench_layer_row rows[2];
    memset(rows, 0, sizeof rows);
    const int R = o->repeat;
    double t0 = now_ms();
    elag_status st = elag_layer_step_sparse_begin(&s);
    const double prepare = now_ms() - t0;
    elag_layer_step_times t;
    for (int i = 0; st == ELAG_OK && i < o->warmup + R; i++) {
        st = elag_layer_step_dense(&s, LAYER_LR, LAYER_MOMENTUM, &t);
        if (st == ELAG_OK && i >= o->warmup) record(dense_s, R, i - o->warmup, &t);
        if (st == ELAG_OK) st = elag_layer_step_sparse(&s, LAYER_LR, LAYER_MOMENTUM, &t);
        if (st == ELAG_OK && i >= o->warmup) record(sparse_s, R, i - o->warmup, &t);
        if (st == ELAG_OK && i >= o->warmup) { /* the dense-master design's extra cost */
            t0 = now_ms();
            st = elag_be_sparse_scatter(be, s.p, s.wv, s.g); /* g: scratch, rewritten */
            if (st == ELAG_OK) st = elag_be_sync(be);
            sparse_s[5 * R + i - o->warmup] = now_ms() - t0;
        }
    }
    if (st == ELAG_OK) {
        for (int k = 0; k < 2; k++) {
            elag_bench_layer_row *r = &rows[k];
            r->version = ELAG_BENCH_LAYER_ROW_VERSION;
            r->path = k ? "sparse" : "dense";
            r->out = o->out, r->in = o->in, r->batch = o->batch, r->sparsity = sp;
            r->nnz = s.nnz;
            r->threads = be->threads, r->repeat = R, r->warmup = o->warmup;
            fill_row(r, k ? sparse_s : dense_s, R);
        }
        rows[1].prepare_ms = prepare;
        rows[1].scatter_ms = quantile(sparse_s + 5 * R, R, 0.5);
        rows[0].speedup_vs_dense = 1.0;
        rows[1].speedup_vs_dense =
            rows[1].median_ms > 0 ? rows[0].median_ms / rows[1].median_ms : 0.0;
        for (int k = 0; k < 2 && !*stop && o->emit; k++) *stop = o->emit(&rows[k], o->user);
    }
    elag_layer_step_free(&s);
    return st;
}

elag_status elag_bench_layer_run(elag_device_t *device, const elag_bench_layer_options *o)
{
    if (device == NULL || o == NULL)
        return elag_fail(ELAG_ERR_USAGE, "bench layer: %s is NULL", device ? "opts" : "device");
    if (o->version != ELAG_BENCH_LAYER_OPTIONS_VERSION)
        return elag_fail(ELAG_ERR_USAGE, "bench layer: options version %u (this library has %u)",
                         o->version, ELAG_BENCH_LAYER_OPTIONS_VERSION);
    if (o->out < 1 || o->in < 1 || o->batch < 1 || o->repeat < 1 || o->warmup < 0 ||
        o->n_sparsities < 1 || o->sparsities == NULL)
        return elag_fail(ELAG_ERR_USAGE,
                         "bench layer: shape %dx%d, batch %d, repeat %d, warmup %d, %d "
                         "sparsities (each >= 1, warmup >= 0)",
                         o->out, o->in, o->batch, o->repeat, o->warmup, o->n_sparsities);
    for (int i = 0; i < o->n_sparsities; i++)
        if (!(o->sparsities[i] >= 0.0 && o->sparsities[i] <= 1.0))
            return elag_fail(ELAG_ERR_USAGE, "bench layer: sparsity %g outside [0, 1]",
                             o->sparsities[i]);
    elag_backend *be = device->be;
    char why[200];
    if (elag_be_supports(be, ELAG_OP_SPARSE_TRAIN, NULL, why, sizeof why) == ELAG_SUPPORT_NO)
        return elag_fail(ELAG_ERR_UNSUPPORTED, "bench layer: %s: %s", be->name, why);
    double *samples = malloc((size_t)o->repeat * 11 * sizeof *samples);
    if (!samples) return elag_fail(ELAG_ERR_NOMEM, "bench layer: out of host memory");
    elag_status st = ELAG_OK;
    int stop = 0;
    for (int i = 0; st == ELAG_OK && !stop && i < o->n_sparsities; i++)
        st = one_sparsity(be, o, o->sparsities[i], samples, samples + 5 * o->repeat, &stop);
    free(samples);
    return st;
}
