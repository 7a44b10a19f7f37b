/*
 * One linear layer's training step, dense and sparse, on one backend: the engine of
 * `elag bench layer` (elag_bench_layer_run, include/elag/bench.h) and of its test. The layer
 * is y = W x, feature-major: x (in, n), y (out, n), W (out, in) row-major, a fixed mask, a
 * fixed output gradient dy (out, n) standing in for the loss, SGD with momentum.
 *   dense:  y = W x, dx = W^T dy, g = dy x^T (three GEMMs), then the masked fused SGD over
 *           all out*in weights (pruned ones stay 0);
 *   sparse: the mask's pattern (sparse_pattern_create) with the weights and the momentum as
 *           values arrays in CSR order: y = W x and dx = W^T dy (sparse_pattern_mm), the
 *           gradient at the kept entries only (sddmm), SGD on the nnz values (the same fused
 *           sgd_step, no mask: pruned weights have no storage), values set for the next step.
 * The values arrays are the master between mask updates; sparse_end scatters them back
 * into the dense W and momentum (a mask update, a checkpoint or an evaluation needs those).
 */
#ifndef ELAG_SPARSE_BENCH_LAYER_H
#define ELAG_SPARSE_BENCH_LAYER_H

#include "backend/backend.h"

#include <stdint.h>

typedef struct elag_layer_step {
    elag_backend *be;
    int out, in, n;
    float *w;    /* (out, in) dense weights, masked */
    float *v;    /* (out, in) momentum */
    float *mask; /* (out, in) 0/1 */
    float *x;    /* (in, n) input */
    float *dy;   /* (out, n) output gradient */
    float *y;    /* (out, n) output */
    float *dx;   /* (in, n) input gradient */
    float *g;    /* (out, in) dense weight gradient */
    /* the sparse path, between sparse_begin and sparse_end */
    elag_sparse_pattern *p;
    int64_t nnz;
    float *wv, *vv, *gv; /* (nnz) weights, momentum, gradient in CSR order */
} elag_layer_step;

/* Device buffers of a layer W (out, in) with a random mask keeping each weight with
 * probability 1 - sparsity, W uniform in +-1/sqrt(in) then masked, x and dy uniform in
 * [-1, 1), momentum 0; all from Philox with `seed`. */
elag_status elag_layer_step_init(elag_layer_step *s, elag_backend *be, int out, int in, int n,
                                 double sparsity, uint64_t seed);
void elag_layer_step_free(elag_layer_step *s);

/* The per-part times of one step (ms; each part ends with a sync). */
typedef struct elag_layer_step_times {
    double forward, input_grad, weight_grad, optimizer;
} elag_layer_step_times;

/* One dense step (t may be NULL). */
elag_status elag_layer_step_dense(elag_layer_step *s, float lr, float momentum,
                                  elag_layer_step_times *t);
/* At a mask update: the pattern of the mask, W and momentum gathered into it. */
elag_status elag_layer_step_sparse_begin(elag_layer_step *s);
/* One sparse step (t may be NULL); between sparse_begin and sparse_end. */
elag_status elag_layer_step_sparse(elag_layer_step *s, float lr, float momentum,
                                   elag_layer_step_times *t);
/* W and momentum scattered back into the dense arrays; the pattern freed. */
elag_status elag_layer_step_sparse_end(elag_layer_step *s);

#endif /* ELAG_SPARSE_BENCH_LAYER_H */
