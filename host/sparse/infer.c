/*
 * Sparse inference (infer.h): layers of an export on a backend, the feature-major
 * forward pass, evaluation over a dataset with per-batch latencies, and the error
 * measure --verify uses.
 */
#define _POSIX_C_SOURCE 200809L
#include "sparse/infer.h"

#include "core/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void elag_net_layer_free(elag_backend *be, elag_net_layer *l)
{
    if (!l || !be) return;
    be->sparse_destroy(be, l->sp);
    be->release(be, l->w);
    be->release(be, l->bias);
    memset(l, 0, sizeof *l);
}

elag_status elag_net_layer_init(elag_backend *be, const elag_export_layer *l, int max_n,
                                int force_dense, elag_net_layer *out)
{
    memset(out, 0, sizeof *out);
    ELAG_ASSERT(l->type == ELAG_LAYER_LINEAR);
    out->type = l->type;
    out->in = l->in;
    out->out = l->out;
    elag_status st = ELAG_OK;
    if (force_dense || l->w.format == ELAG_SPARSE_FORMAT_DENSE) {
        size_t n = (size_t)l->out * l->in;
        float *host = malloc((n ? n : 1) * sizeof *host); /* (out, in) */
        if (!host) return elag_fail(ELAG_ERR_NOMEM, "infer: out of host memory");
        out->format = ELAG_SPARSE_FORMAT_DENSE;
        st = elag_sparse_to_dense(&l->w, host);
        if (st == ELAG_OK) st = be->alloc(be, (n ? n : 1) * sizeof(float), (void **)&out->w);
        if (st == ELAG_OK) st = be->to_device(be, out->w, host, n * sizeof(float));
        free(host);
    } else {
        elag_sparse_opts opts = {.max_n = max_n, .alg = 0};
        out->format = l->w.format;
        st = be->sparse_create(be, &l->w, &opts, &out->sp);
    }
    if (st == ELAG_OK && l->bias) {
        st = be->alloc(be, (size_t)l->out * sizeof(float), (void **)&out->bias);
        if (st == ELAG_OK)
            st = be->to_device(be, out->bias, l->bias, (size_t)l->out * sizeof(float));
    }
    if (st != ELAG_OK) elag_net_layer_free(be, out);
    return st;
}

elag_status elag_net_layer_forward(elag_backend *be, const elag_net_layer *l, const float *x,
                                   int n, float *y)
{
    if (l->sp) return be->sparse_mm(be, l->sp, x, n, l->bias, l->relu, y);
    /* y (out, n) = W (out, in) x (in, n) */
    ELAG_TRY(be->gemm(be, 0, 0, l->out, n, l->in, 1.0f, l->w, l->in, x, n, 0.0f, y, n));
    if (!l->bias && !l->relu) return ELAG_OK;
    return be->bias_relu_rows(be, y, l->bias, l->out, n, l->relu);
}

void elag_sparse_net_free(elag_sparse_net *net)
{
    if (!net || !net->be) return;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].type == ELAG_LAYER_LINEAR) elag_net_layer_free(net->be, &net->layers[i]);
    net->be->release(net->be, net->act[0]);
    net->be->release(net->be, net->act[1]);
    free(net->host_fm);
    memset(net, 0, sizeof *net);
}

elag_status elag_sparse_net_init(elag_sparse_net *net, const elag_export *e, elag_backend *be,
                                 int max_n, int force_dense)
{
    memset(net, 0, sizeof *net);
    if (max_n < 1) return elag_fail(ELAG_ERR_USAGE, "infer: batch %d (must be >= 1)", max_n);
    net->be = be;
    net->input_dim = e->input_dim;
    net->classes = e->classes;
    net->max_n = max_n;
    net->widest = e->input_dim;
    elag_status st = ELAG_OK;
    for (int i = 0; i < e->n_layers && st == ELAG_OK; i++) {
        const elag_export_layer *l = &e->layers[i];
        elag_net_layer *nl = &net->layers[i];
        net->n_layers = i + 1;
        if (l->out > net->widest) net->widest = l->out;
        if (l->type == ELAG_LAYER_LINEAR) {
            st = elag_net_layer_init(be, l, max_n, force_dense, nl);
            /* a ReLU right after a linear layer runs in its epilogue */
            if (i + 1 < e->n_layers && e->layers[i + 1].type == ELAG_LAYER_RELU) nl->relu = 1;
        } else {
            nl->type = l->type;
            nl->in = l->in;
            nl->out = l->out;
            nl->relu = l->type == ELAG_LAYER_RELU;
            nl->skip = l->type == ELAG_LAYER_FLATTEN ||
                       (i > 0 && l->type == ELAG_LAYER_RELU && net->layers[i - 1].relu &&
                        e->layers[i - 1].type == ELAG_LAYER_LINEAR);
        }
    }
    size_t acts = (size_t)net->widest * (size_t)max_n;
    if (st == ELAG_OK) st = be->alloc(be, acts * sizeof(float), (void **)&net->act[0]);
    if (st == ELAG_OK) st = be->alloc(be, acts * sizeof(float), (void **)&net->act[1]);
    if (st == ELAG_OK && !(net->host_fm = malloc(acts * sizeof(float))))
        st = elag_fail(ELAG_ERR_NOMEM, "infer: out of host memory");
    if (st != ELAG_OK) elag_sparse_net_free(net);
    return st;
}

/* dst (cols, rows) = src (rows, cols)^T, in 32 x 32 tiles so both sides stay in cache
 * (a plain loop writes a new cache line per element once rows is large); large ones on
 * `threads` OpenMP threads, each writing its own rows of dst. */
static void transpose(const float *src, int rows, int cols, float *dst, int threads)
{
    enum { T = 32 };
    const int jblocks = (cols + T - 1) / T;
#pragma omp parallel for num_threads(threads) if ((double)rows * cols >= 262144.0)             \
    schedule(static)
    for (int jb = 0; jb < jblocks; jb++) {
        const int j0 = jb * T, j1 = j0 + T < cols ? j0 + T : cols;
        for (int i0 = 0; i0 < rows; i0 += T) {
            const int i1 = i0 + T < rows ? i0 + T : rows;
            for (int j = j0; j < j1; j++)
                for (int i = i0; i < i1; i++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
        }
    }
}

elag_status elag_sparse_net_forward(elag_sparse_net *net, const float *x, int n, float *logits)
{
    elag_backend *be = net->be;
    if (n < 1 || n > net->max_n)
        return elag_fail(ELAG_ERR_USAGE, "infer: batch of %d rows (1..%d)", n, net->max_n);
    const int d = net->input_dim, c = net->classes;
    /* CPU backends compute in host memory: transpose straight into the activations */
    const int host_mem = be->kind != ELAG_DEVICE_CUDA;
    float *fm = host_mem ? net->act[0] : net->host_fm; /* (d, n) */
    const int threads = be->threads > 0 ? be->threads : 1;
    transpose(x, n, d, fm, threads);
    if (!host_mem) ELAG_TRY(be->to_device(be, net->act[0], fm, (size_t)d * n * sizeof(float)));
    int cur = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const elag_net_layer *l = &net->layers[i];
        if (l->skip) continue;
        if (l->type == ELAG_LAYER_LINEAR) {
            ELAG_TRY(elag_net_layer_forward(be, l, net->act[cur], n, net->act[cur ^ 1]));
            cur ^= 1;
        } else if (l->type == ELAG_LAYER_RELU) {
            ELAG_TRY(be->bias_relu_rows(be, net->act[cur], NULL, l->out, n, 1));
        }
    }
    fm = host_mem ? net->act[cur] : net->host_fm; /* (c, n) */
    if (!host_mem) ELAG_TRY(be->to_host(be, fm, net->act[cur], (size_t)c * n * sizeof(float)));
    ELAG_TRY(be->sync(be));
    transpose(fm, c, n, logits, threads);
    return ELAG_OK;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void elag_latency_percentiles(double *v, int n, double *median, double *p99)
{
    if (n <= 0) {
        *median = *p99 = 0.0;
        return;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    int rank = (int)ceil(0.99 * n); /* nearest rank, 1-based */
    *p99 = v[(rank < 1 ? 1 : rank) - 1];
}

elag_status elag_sparse_net_evaluate(elag_sparse_net *net, const elag_dataset *d, int batch,
                                     elag_infer_stats *stats, float *logits_all)
{
    memset(stats, 0, sizeof *stats);
    if (batch < 1 || batch > net->max_n)
        return elag_fail(ELAG_ERR_USAGE, "infer: batch %d (1..%d)", batch, net->max_n);
    if (d->features != net->input_dim || d->classes != net->classes)
        return elag_fail(ELAG_ERR_INPUT, "infer: the model takes %d features and %d classes, the "
                                         "dataset has %d and %d", net->input_dim, net->classes,
                         d->features, d->classes);
    if (d->n == 0) return ELAG_OK;
    const int c = net->classes;
    long nb = (d->n + batch - 1) / batch;
    float *logits = malloc((size_t)batch * c * sizeof *logits); /* (batch, classes) */
    double *lat = malloc((size_t)nb * sizeof *lat);
    if (!logits || !lat) {
        free(logits);
        free(lat);
        return elag_fail(ELAG_ERR_NOMEM, "infer: out of host memory");
    }
    elag_status st = ELAG_OK;
    /* warm-up: first touches of buffers, thread pools, CUDA kernels */
    int first = (int)(d->n < batch ? d->n : batch);
    st = elag_sparse_net_forward(net, d->x, first, logits);
    long correct = 0;
    double total = 0.0;
    int n_lat = 0;
    for (long start = 0; st == ELAG_OK && start < d->n; start += batch) {
        int b = (int)(d->n - start < batch ? d->n - start : batch);
        double t0 = now_seconds();
        st = elag_sparse_net_forward(net, d->x + (size_t)start * d->features, b, logits);
        double secs = now_seconds() - t0;
        total += secs;
        if (b == batch || nb == 1) lat[n_lat++] = 1e3 * secs;
        for (int s = 0; st == ELAG_OK && s < b; s++) {
            const float *row = logits + (size_t)s * c;
            int arg = 0; /* first maximum, as xent counts hits */
            for (int k = 1; k < c; k++)
                if (row[k] > row[arg]) arg = k;
            correct += arg == d->y[start + s];
        }
        if (st == ELAG_OK && logits_all)
            memcpy(logits_all + (size_t)start * c, logits, (size_t)b * c * sizeof *logits);
    }
    if (st == ELAG_OK) {
        stats->samples = d->n;
        stats->batches = (int)nb;
        stats->accuracy = (double)correct / (double)d->n;
        stats->samples_per_second = total > 0 ? (double)d->n / total : 0.0;
        elag_latency_percentiles(lat, n_lat, &stats->latency_ms_median, &stats->latency_ms_p99);
    }
    free(logits);
    free(lat);
    return st;
}

double elag_logits_max_rel_err(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) return INFINITY;
        double den = fabs((double)b[i]) > 1.0 ? fabs((double)b[i]) : 1.0;
        double e = fabs((double)a[i] - (double)b[i]) / den;
        if (e > worst) worst = e;
    }
    return worst;
}
