/*
 * The network: layers from the layer-kind table (layer.h) over one backend, a parameter
 * registry that lists every tensor, and one device allocation per category (parameters,
 * gradients, optimizer state, masks, activations, what forward keeps for backward,
 * scratch), with every tensor pointing into it, as in llm.c. Masks of all prunable
 * tensors are one contiguous buffer in registry order, so global-scope pruning is one
 * selection over it and layer scope one selection per segment. Activations are
 * feature-major (layer.h); the model transposes the input batch in and the logits out, so
 * callers see row-major (batch, features) and (batch, classes).
 */
#ifndef ELAG_MODEL_MODEL_H
#define ELAG_MODEL_MODEL_H

#include "backend/backend.h"
#include "config/config.h"
#include "model/layer.h"

#define ELAG_MAX_PARAMS (4 * ELAG_MAX_LAYERS)

/* elag_model_init flags */
#define ELAG_MODEL_TRAIN       1u /* gradients, optimizer state, pruning scores */
#define ELAG_MODEL_WHOLE_BATCH 2u /* one im2col chunk per batch (weights run as one SpMM) */

struct elag_model {
    elag_backend *be; /* not owned */
    int n_layers;
    elag_layer layers[ELAG_MAX_LAYERS];
    elag_fshape input; /* per-sample input shape */
    int input_dim;     /* its element count */
    int classes, max_batch;
    int training;    /* gradients and optimizer state exist (ELAG_MODEL_TRAIN) */
    int whole_batch; /* ELAG_MODEL_WHOLE_BATCH */
    int opt_slots;   /* optimizer state tensors per parameter: sgd 1, adamw 2 */

    int n_reg; /* the parameter registry */
    elag_param reg[ELAG_MAX_PARAMS];
    int n_prunable;
    int prunable[ELAG_MAX_PARAMS]; /* registry index of each prunable tensor, in order */

    size_t n_params; /* floats of all tensors (weights, biases, norms, buffers) */
    size_t n_masked; /* entries of all prunable tensors */
    size_t n_acts, n_aux, n_work, n_grad_buf, n_rows;

    float *params;          /* device (n_params) */
    float *grads;           /* device (n_params), training only */
    float *opt_state;       /* device (opt_slots, n_params), training only */
    float *masks;           /* device (n_masked) 0/1 */
    float *scores;          /* device (n_masked) pruning scores, training only */
    float *acts;            /* device (n_acts) layer outputs */
    float *aux;             /* device (n_aux) what forward keeps for backward */
    float *work;            /* device (n_work) scratch (im2col columns) */
    float *grad_a, *grad_b; /* device (n_grad_buf) backward ping-pong, training only */
    float *x_in;            /* device (input.c, max_batch, input.h, input.w) */
    float *rows;            /* device (n_rows): a batch (n, input_dim) as the data holds it,
                             * then the logits (n, classes) */
    float *drows;           /* device (max_batch, classes) gradient of the logits, training */
    int32_t *labels;        /* device (max_batch) */
    float *stats;           /* device (2): loss sum, correct count (see backend xent) */
};

/* Builds the layers from cfg->model over an input of shape `input` (per sample), infers
 * every shape, registers the tensors and allocates all buffers on `be`; `flags` are
 * ELAG_MODEL_* (TRAIN: gradients, optimizer state and pruning scores too). A model without
 * spatial layers takes its input flat. Tensors start at zero; call elag_model_init_params.
 * Shape errors are ELAG_ERR_INPUT naming the layer. */
elag_status elag_model_init(elag_model *m, const elag_config *cfg, elag_fshape input, int classes,
                            int max_batch, unsigned flags, elag_backend *be);
void elag_model_free(elag_model *m); /* NULL safe; releases prepared sparse weights too */

/* Whether cfg's model builds over `input` with `classes` outputs (shape inference only:
 * nothing is allocated on `be`); the ELAG_ERR_INPUT of elag_model_init naming the layer
 * when it does not. Callers run it before they write anything. */
elag_status elag_model_check(const elag_config *cfg, elag_fshape input, int classes,
                             elag_backend *be);

/* Weights Kaiming-uniform (bound sqrt(6 / fan_in), for ReLU), biases 0, batch-norm scale 1
 * and shift 0, running mean 0 and variance 1, masks 1, optimizer state 0. Registry entry j
 * uses Philox stream ELAG_STREAM_INIT_BASE + j. */
elag_status elag_model_init_params(elag_model *m, uint64_t seed);

/* Loads n rows of m->rows (a batch (n, input_dim) row-major, already on the device) into
 * the feature-major input. */
elag_status elag_model_load_rows(elag_model *m, int n);

/* Forward pass of the input loaded by elag_model_load_rows; *logits receives the logits,
 * device, feature-major (classes, n). */
elag_status elag_model_forward(elag_model *m, const elag_pass *p, const float **logits);

/* Backward pass from dlogits (device, (classes, n)); fills m->grads. Uses the activations
 * of the last forward. Stops below the lowest layer with trainable tensors. */
elag_status elag_model_backward(elag_model *m, const elag_pass *p, const float *dlogits);

/* Loads m->rows, runs forward + softmax cross-entropy against m->labels (+ backward when
 * p->training); stats accumulate into m->stats. */
elag_status elag_model_step(elag_model *m, const elag_pass *p);

/* Logits (n, classes) row-major into m->rows after a forward pass (device). */
elag_status elag_model_logits_rows(elag_model *m, int n, const float *logits_fm);

/* Nonzero entries among all prunable tensors (host value; synchronises). */
elag_status elag_model_count_nonzero(elag_model *m, size_t *nonzero_masked);

/* The layer called `name`, or NULL. */
const elag_layer *elag_model_find_layer(const elag_model *m, const char *name);
/* The registry entry called `name` ("fc1.weight"), or NULL. */
const elag_param *elag_model_find_param(const elag_model *m, const char *name);

/* Output of layer i (device): its own buffer or, for an aliasing layer, its input's;
 * i = -1 is the model input. */
float *elag_model_layer_output(const elag_model *m, int i);

/* 1 when a layer at or below i has trainable tensors. */
int elag_model_trainable_below(const elag_model *m, int i);

#endif /* ELAG_MODEL_MODEL_H */
