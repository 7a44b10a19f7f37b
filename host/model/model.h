/*
 * The network: a list of layers over one backend, with one device allocation per
 * category (parameters, gradients, optimizer state, masks, activations) and every
 * tensor pointing into it, as in llm.c. Masks of all prunable weights are one
 * contiguous buffer (in layer order), so global-scope pruning is one selection over
 * it and layer scope one selection per segment.
 */
#ifndef ELAG_MODEL_MODEL_H
#define ELAG_MODEL_MODEL_H

#include "backend/backend.h"
#include "config/config.h"

typedef struct elag_layer {
    elag_layer_kind type;
    char name[ELAG_NAME_LEN];
    int in, out;          /* features in and out of this layer */
    int has_bias;
    int prunable;         /* weight has a mask */
    int prunable_index;   /* index among prunable weights, -1 if none */
    size_t w_off, b_off;  /* float offsets into params: w (out, in), b (out) */
    size_t mask_off;      /* float offset into masks: (out, in) */
    size_t act_off;       /* float offset into acts: output (max_batch, out) */
} elag_layer;

typedef struct elag_model {
    elag_backend *be;     /* not owned */
    int n_layers;
    elag_layer layers[ELAG_MAX_LAYERS];
    int input_dim, classes, max_batch;
    int n_prunable;
    int prunable_layers[ELAG_MAX_LAYERS]; /* layer index of each prunable weight */

    size_t n_params;      /* all weights and biases */
    size_t n_masked;      /* entries of all prunable weights */
    size_t n_acts;
    int opt_slots;        /* optimizer state tensors per parameter: sgd 1, adamw 2 */

    float *params;        /* device (n_params) */
    float *grads;         /* device (n_params) */
    float *opt_state;     /* device (opt_slots, n_params) */
    float *masks;         /* device (n_masked) 0/1 */
    float *scores;        /* device (n_masked) pruning scores */
    float *acts;          /* device (n_acts) layer outputs */
    float *grad_a, *grad_b; /* device (max_batch, widest) backward ping-pong */
    float *input;         /* device (max_batch, input_dim) */
    int32_t *labels;      /* device (max_batch) */
    float *stats;         /* device (2): loss sum, correct count (see backend xent) */
} elag_model;

/* Builds the layer list from cfg->model, sizes and allocates all buffers on `be`.
 * Parameters start at zero; call elag_model_init_params to initialise. */
elag_status elag_model_init(elag_model *m, const elag_config *cfg, int input_dim, int classes,
                            int max_batch, elag_backend *be);
void elag_model_free(elag_model *m); /* NULL safe */

/* Kaiming-uniform weights (bound sqrt(6 / fan_in), for ReLU), zero biases, masks 1,
 * optimizer state 0. Parameter tensor j uses Philox stream ELAG_STREAM_INIT_BASE + j. */
elag_status elag_model_init_params(elag_model *m, uint64_t seed);

/* Forward pass of `batch` rows already in m->input; returns the logits (device,
 * (batch, classes)) in *logits. */
elag_status elag_model_forward(elag_model *m, int batch, const float **logits);

/* Backward pass from dlogits (device, (batch, classes)); fills m->grads. Uses the
 * activations of the last forward. The input gradient of the first layer is skipped. */
elag_status elag_model_backward(elag_model *m, int batch, const float *dlogits);

/* Forward + loss (+ backward when `train`); stats accumulate into m->stats. */
elag_status elag_model_step(elag_model *m, int batch, int train);

/* Nonzero entries among all prunable weights (host value; synchronises). */
elag_status elag_model_count_nonzero(elag_model *m, size_t *nonzero_masked);

/* The layer called `name`, or NULL. */
const elag_layer *elag_model_find_layer(const elag_model *m, const char *name);

#endif /* ELAG_MODEL_MODEL_H */
