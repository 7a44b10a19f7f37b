/*
 * Sparse inference (infer.h): an export built as an evaluation-mode model with its
 * weights prepared in their formats, the forward pass, evaluation over a dataset with
 * per-batch latencies, and the error measure --verify uses.
 */
#define _POSIX_C_SOURCE 200809L
#include "sparse/infer.h"

#include "core/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void elag_sparse_net_free(elag_sparse_net *net)
{
    if (!net) return;
    elag_model_free(&net->m); /* also the prepared sparse weights */
    free(net->links);
    memset(net, 0, sizeof *net);
}

/* Puts tensor t of the export into registry entry j of the model. */
static elag_status place_tensor(elag_sparse_net *net, const elag_export_tensor *t, int j,
                                int force_dense)
{
    elag_model *m = &net->m;
    elag_backend *be = net->be;
    const elag_param *p = &m->reg[j];
    size_t count = 1;
    for (int d = 0; d < t->ndim; d++) count *= (size_t)t->shape[d];
    if (strcmp(p->name, t->name) != 0 || p->count != count)
        return elag_fail(ELAG_ERR_INTERNAL, "infer: tensor %d is '%s', the model expects '%s'", j,
                         t->name, p->name);
    float *dst = m->params + p->offset;
    if (!t->is_weight) return elag_be_to_device(be, dst, t->data, p->count * sizeof(float));
    if (force_dense || t->w.format == ELAG_SPARSE_FORMAT_DENSE) {
        float *host = malloc(p->count * sizeof *host); /* (rows, cols) */
        if (!host) return elag_fail(ELAG_ERR_NOMEM, "infer: out of host memory");
        elag_status st = elag_sparse_to_dense(&t->w, host);
        if (st == ELAG_OK) st = elag_be_to_device(be, dst, host, p->count * sizeof(float));
        free(host);
        return st;
    }
    elag_layer *l = &m->layers[p->layer];
    elag_sparse_opts opts = {.max_n = net->max_n * t->columns_per_sample, .alg = 0};
    /* asked first, so a format this device cannot run fails here with the way out rather
     * than deep inside cuSPARSE: the CPU backends run every format */
    elag_op_query q = {.format = t->w.format, .block = t->w.block, .max_n = opts.max_n};
    char why[160];
    if (elag_be_supports(be, ELAG_OP_SPARSE_MM, &q, why, sizeof why) == ELAG_SUPPORT_NO)
        return elag_fail(ELAG_ERR_UNSUPPORTED,
                         "infer: tensor '%s' (%s) cannot run on %s: %s; run it with --device cpu, "
                         "or export it with --format auto, which skips what the device refuses",
                         t->name, elag_sparse_format_name(t->w.format), be->name, why);
    return elag_be_sparse_create(be, &t->w, &opts, &l->sp);
}

/* A net whose every computing layer is a linear layer with a prepared sparse weight (an MLP
 * export in CSR; relus run in their epilogues, flattens of flat input are views), each
 * reading the previous one's output, can run tile-major: the input transposed once into
 * tiles of T batch columns, (n/T, features, T), every product reading and writing that
 * layout, the logits transposed back from it (the backend's sparse_chain_tiled; on the fast
 * CPU backend each thread takes whole tiles through the whole net). sparse_mm would repack
 * each layer's input into the same tiles; here nothing is repacked. Sets net->tile to T when
 * the backend has it for every weight, with net->links, else leaves 0. */
static elag_status net_tile(elag_sparse_net *net)
{
    elag_model *m = &net->m;
    int tile = 0, nlinks = 0;
    if (m->input.h * m->input.w != 1) return ELAG_OK;
    for (int i = 0; i < m->n_layers; i++) {
        const elag_layer *l = &m->layers[i];
        if (l->alias) continue;
        if (!l->kind->sparse_weight || l->kind->spatial || !l->sp) return ELAG_OK;
        const int t = elag_be_sparse_tile(net->be, l->sp);
        if (t <= 0 || (tile && t != tile)) return ELAG_OK;
        tile = t;
        nlinks++;
    }
    if (nlinks == 0) return ELAG_OK;
    elag_tiled_link *links = calloc((size_t)nlinks, sizeof *links);
    if (!links) return elag_fail(ELAG_ERR_NOMEM, "infer: out of host memory");
    const float *prev = m->x_in;
    for (int i = 0, k = 0; i < m->n_layers; i++) {
        elag_layer *l = &m->layers[i];
        if (l->alias) continue;
        if (elag_model_layer_output(m, l->input) != prev) { /* not a chain: run layer by layer */
            free(links);
            return ELAG_OK;
        }
        links[k] = (elag_tiled_link){.a = l->sp,
                                     .bias = l->cfg.bias ? elag_layer_param(m, l, 1) : NULL,
                                     .relu = l->relu,
                                     .y = elag_model_layer_output(m, i)};
        prev = links[k++].y;
    }
    net->links = links;
    net->nlinks = nlinks;
    net->tile = tile;
    return ELAG_OK;
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
    unsigned flags = force_dense ? 0u : ELAG_MODEL_WHOLE_BATCH;
    elag_status st = elag_model_init(&net->m, &e->cfg, e->input, e->classes, max_n, flags, be);
    if (st == ELAG_OK && net->m.n_reg != e->n_tensors)
        st = elag_fail(ELAG_ERR_INTERNAL, "infer: the model has %d tensors, the export %d",
                       net->m.n_reg, e->n_tensors);
    for (int j = 0; st == ELAG_OK && j < e->n_tensors; j++)
        st = place_tensor(net, &e->t[j], j, force_dense);
    if (st == ELAG_OK) st = net_tile(net);
    if (st != ELAG_OK) elag_sparse_net_free(net);
    return st;
}

elag_status elag_sparse_net_forward(elag_sparse_net *net, const float *x, int n, float *logits)
{
    elag_backend *be = net->be;
    elag_model *m = &net->m;
    if (n < 1 || n > net->max_n)
        return elag_fail(ELAG_ERR_USAGE, "infer: batch of %d rows (1..%d)", n, net->max_n);
    const float *out;
    elag_pass pass = {.n = n, .training = 0};
    if (net->tile > 0 && n % net->tile == 0) {
        ELAG_ASSERT(be->kind != ELAG_DEVICE_CUDA); /* tiles read and write host memory */
        return elag_be_sparse_chain_tiled(be, net->links, net->nlinks, x, m->x_in, n,
                                          net->input_dim, logits);
    }
    ELAG_TRY(elag_be_to_device(be, m->rows, x, (size_t)n * net->input_dim * sizeof(float)));
    ELAG_TRY(elag_model_load_rows(m, n));
    ELAG_TRY(elag_model_forward(m, &pass, &out));
    ELAG_TRY(elag_model_logits_rows(m, n, out));
    ELAG_TRY(elag_be_to_host(be, logits, m->rows, (size_t)n * net->classes * sizeof(float)));
    return elag_be_sync(be);
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
