/*
 * Sparse training of masked linear and conv2d layers (issue 12, `train.sparse_compute`;
 * a convolution's products run over its im2col columns). While a
 * layer's mask is fixed between two mask updates its step runs on the mask's pattern
 * (backend.h, "sparse training of a linear layer"): the forward product W x and the input
 * gradient W^T dy as pattern products, the weight gradient by SDDMM at the kept entries
 * only, and the optimizer on values arrays in CSR order (optim.c, the same fused kernel as
 * the dense path, without a mask: pruned weights have no storage, so they stay exactly 0).
 *
 * The values arrays are the truth while a pattern is live. The dense registry
 * (m->params, m->opt_state) is brought up to date (scattered) before anything dense reads
 * it: a mask update (which then rebuilds the patterns: create + gather), a checkpoint, the
 * end of the run (evaluation, sparsity summary, final checkpoint), the rewind point, and a
 * criterion's per-step `observe` (which also gets the gradient scattered). The finite
 * checks sum the values arrays themselves (finite.c). Gradient passes of a mask update
 * run dense, because the patterns are released before it.
 */
#ifndef ELAG_TRAIN_SPARSE_STEP_H
#define ELAG_TRAIN_SPARSE_STEP_H

#include "backend/backend.h"
#include "config/config.h"
#include "model/model.h"

/* `auto`: a layer trains sparse when the density (kept / all entries) of its mask is
 * below this. Measured with `elag bench layer` (one linear layer's full step, forward +
 * both gradients + SGD, dense OpenBLAS against the pattern ops, 2 threads, alternating
 * dense and sparse steps; docs/sparse.md, "Training on the pattern"): see the figures
 * there. The crossover sits between 30% and 50% density on every shape measured, lower on
 * thin layers; 0.3 keeps every measured layer at least as fast as dense. */
#define ELAG_SPARSE_AUTO_DENSITY 0.3

/* `auto` for a layer over planes (conv2d): on the pattern its im2col columns go through the
 * pattern products, against the dense path's direct convolution (AVX-512, stride 1) or
 * im2col + GEMM. Measured with bench/conv_sparse_step.c on vgg-small's convolutions, a
 * stride-2 and a 1x1 one (docs/sparse.md, "Conv layers on the pattern"). On one thread the
 * sparse step breaks even between 50% and 70% sparsity and is 1.4x or more from 75% on
 * every shape; 0.25 leaves a margin against the direct convolution. With more threads it
 * lost on every shape and sparsity measured with libgomp's default wait policy (0.2-0.8x:
 * a chunk's pattern ops are short OpenMP regions, the direct convolution one long one), so
 * a CPU backend with more than ELAG_SPARSE_AUTO_CONV_MAX_THREADS threads, and any other
 * device (not measured), keeps convolutions dense in `auto` (`on` still runs them on the
 * pattern). */
#define ELAG_SPARSE_AUTO_DENSITY_CONV     0.25
#define ELAG_SPARSE_AUTO_CONV_MAX_THREADS 1

/* One layer's live pattern and values (set in elag_layer.train_sp). */
struct elag_sparse_step_layer {
    elag_sparse_pattern *p; /* the mask prepared by the backend, products up to max_n */
    int64_t nnz;            /* kept entries */
    int param;              /* registry index of the weight */
    int max_n;              /* widest product: the batch (conv2d: its chunk's columns) */
    float *w;               /* device (nnz): the weights in CSR order, the truth while live */
    float *g;               /* device (nnz): the weight gradient of the last backward */
    float *s0;              /* device (nnz): SGD momentum or AdamW exp_avg */
    float *s1;              /* device (nnz): AdamW exp_avg_sq; NULL for SGD */
};

typedef struct elag_sparse_step {
    elag_backend *be; /* not owned */
    elag_sparse_compute mode;
    int supported; /* layers may train on their pattern: the backend runs ELAG_OP_SPARSE_TRAIN
                    * (`auto`: by default, not only when asked for: ELAG_SUPPORT_OPT_IN) */
    int n_live;                                     /* layers with a live pattern */
    elag_sparse_step_layer layers[ELAG_MAX_LAYERS]; /* indexed like m->layers */
} elag_sparse_step;

/* Reads the mode. `on` on a backend that has no sparse training step is ELAG_ERR_INPUT
 * (source names the config): asked for, it cannot be honoured, and silently training
 * dense would make a speed comparison lie. `auto` there trains dense. Writes nothing. */
elag_status elag_sparse_step_init(elag_sparse_step *s, const elag_config *cfg, elag_backend *be);

/* After a mask update (or a resume with masks in force): every prunable, trainable weight
 * of a `sparse_train` layer kind whose mask qualifies (`on`: any; `auto`: density below
 * ELAG_SPARSE_AUTO_DENSITY) gets its pattern, the weights and optimizer state gathered
 * from the registry, and l->train_sp. Nothing may be live (elag_sparse_step_release). */
elag_status elag_sparse_step_build(elag_sparse_step *s, elag_model *m);

/* Writes the live weights and optimizer state into m->params and m->opt_state (their
 * pruned entries are 0 already); patterns stay live. */
elag_status elag_sparse_step_sync(elag_sparse_step *s, elag_model *m);

/* Also writes the live weight gradients into m->grads (pruned entries 0: zeroed when the
 * pattern was built), for a criterion that observes every step's gradient. */
elag_status elag_sparse_step_sync_grads(elag_sparse_step *s, elag_model *m);

/* elag_sparse_step_sync, then every pattern released: the layers run dense. */
elag_status elag_sparse_step_release(elag_sparse_step *s, elag_model *m);

/* Releases without syncing (a run that ends in an error). Safe on a zeroed struct. */
void elag_sparse_step_free(elag_sparse_step *s, elag_model *m);

/* The live layer whose weight is registry entry j, or NULL. */
const elag_sparse_step_layer *elag_sparse_step_of(const elag_model *m, int j);

#endif /* ELAG_TRAIN_SPARSE_STEP_H */
