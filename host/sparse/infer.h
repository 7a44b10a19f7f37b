/*
 * Sparse inference: an export (export.h) loaded onto a backend and run feature-major.
 * Activations are (features, n) row-major on the device, so a sparse layer is one
 * sparse_mm (bias and a following ReLU fused) and a dense layer one gemm
 * W (out, in) x X (in, n) plus bias_relu_rows. The input batch (n, input_dim) is
 * transposed once on the host and the logits (classes, n) transposed back, so callers
 * see the usual row-major layouts (on CPU backends, whose device memory is host memory,
 * straight into and out of the activation buffers).
 */
#ifndef ELAG_SPARSE_INFER_H
#define ELAG_SPARSE_INFER_H

#include "backend/backend.h"
#include "data/dataset.h"
#include "sparse/export.h"

/* A linear layer on the device, in the format of its export (or dense on request). */
typedef struct elag_net_layer {
    elag_layer_kind type;
    int in, out;
    int relu;                  /* ReLU applied by this layer (a following relu is fused) */
    int skip;                  /* a relu fused into the layer before, or a flatten */
    elag_sparse_format format;
    elag_sparse_dev *sp;       /* CSR / BELL prepared by the backend */
    float *w;                  /* dense: device (out, in) */
    float *bias;               /* device (out), or NULL */
} elag_net_layer;

/* Puts linear layer `l` on `be` for products of up to max_n columns; force_dense runs a
 * sparse weight as its dense expansion (to_dense) instead. */
elag_status elag_net_layer_init(elag_backend *be, const elag_export_layer *l, int max_n,
                                int force_dense, elag_net_layer *out);
void elag_net_layer_free(elag_backend *be, elag_net_layer *l); /* NULL safe */
/* y (out, n) = W x (in, n) + bias, ReLU when relu; device pointers. */
elag_status elag_net_layer_forward(elag_backend *be, const elag_net_layer *l, const float *x,
                                   int n, float *y);

typedef struct elag_sparse_net {
    elag_backend *be;          /* not owned */
    int n_layers;
    elag_net_layer layers[ELAG_MAX_LAYERS];
    int input_dim, classes, max_n, widest;
    float *act[2];             /* device (widest, max_n) ping-pong activations */
    float *host_fm;            /* host (widest, max_n) feature-major staging (CUDA) */
} elag_sparse_net;

/* Loads every layer of `e` onto `be` (force_dense: the dense masked model built from the
 * same file, for --verify and the dense side of bench model). */
elag_status elag_sparse_net_init(elag_sparse_net *net, const elag_export *e, elag_backend *be,
                                 int max_n, int force_dense);
void elag_sparse_net_free(elag_sparse_net *net); /* NULL safe */

/* logits (n, classes) host = net(x (n, input_dim) host), 1 <= n <= max_n. Synchronises. */
elag_status elag_sparse_net_forward(elag_sparse_net *net, const float *x, int n, float *logits);

typedef struct elag_infer_stats {
    long samples;              /* examples evaluated */
    double accuracy;           /* argmax (first maximum) == label */
    double samples_per_second; /* over all batches */
    double latency_ms_median, latency_ms_p99; /* per full batch (the partial tail batch
                                               * counts only when it is the only one) */
    int batches;
} elag_infer_stats;

/* Runs d through the net in batches of `batch` (<= max_n) after one warm-up batch.
 * logits_all (d->n, classes) host receives every logit when not NULL. */
elag_status elag_sparse_net_evaluate(elag_sparse_net *net, const elag_dataset *d, int batch,
                                     elag_infer_stats *stats, float *logits_all);

/* max_i |a_i - b_i| / max(1, |b_i|) over n values (b is the reference); NaN anywhere in
 * either array gives +inf. The --verify tolerance is ELAG_INFER_VERIFY_TOL. */
double elag_logits_max_rel_err(const float *a, const float *b, size_t n);
#define ELAG_INFER_VERIFY_TOL 1e-4

/* Median and 99th percentile (nearest rank) of v[0..n), sorting v in place. */
void elag_latency_percentiles(double *v, int n, double *median, double *p99);

#endif /* ELAG_SPARSE_INFER_H */
