/*
 * Sparse inference: an export (export.h) built as an elag_model on a backend, in
 * evaluation mode, with each weight in its export format: a CSR or Blocked-ELL weight is
 * prepared once (sparse_create) and the layer's own forward runs it as one SpMM with the
 * bias and a following ReLU fused; dense weights run as GEMMs. It is the same forward as
 * training (model.h), on the same feature-major activations, so nothing about a layer kind
 * is written twice. Callers see row-major (n, input_dim) inputs and (n, classes) logits.
 */
#ifndef ELAG_SPARSE_INFER_H
#define ELAG_SPARSE_INFER_H

#include "backend/backend.h"
#include "data/dataset.h"
#include "model/model.h"
#include "sparse/export.h"

typedef struct elag_sparse_net {
    elag_backend *be;          /* not owned */
    elag_model m;              /* evaluation-mode model, max_batch = max_n */
    int input_dim, classes, max_n;
    int tile; /* > 0: batches that are a multiple of it run tile-major (infer.c), else 0 */
    elag_tiled_link *links; /* tile > 0: the chain run tile-major, one link per layer */
    int nlinks;
} elag_sparse_net;

/* Builds `e` on `be` for batches of up to max_n (force_dense: the dense masked model built
 * from the same file, for --verify and the dense side of bench model). */
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

/* elag_logits_max_rel_err and ELAG_INFER_VERIFY_TOL (--verify) are public:
 * include/elag/infer.h. */

/* Median and 99th percentile (nearest rank) of v[0..n), sorting v in place. */
void elag_latency_percentiles(double *v, int n, double *median, double *p99);

#endif /* ELAG_SPARSE_INFER_H */
