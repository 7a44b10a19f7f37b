/*
 * The layer-kind table: everything elag knows about one kind of layer lives in its own
 * file host/model/layers/<kind>.c as one elag_layer_kind_def (its YAML name and keys,
 * defaults, shape inference, parameters, forward and backward), and kinds.c lists them.
 * Config, model, checkpoint, export, infer and reports walk this table and the model's
 * parameter registry; none of them switches on the kind.
 *
 * Activation layout, everywhere (training, evaluation and sparse inference): feature-major,
 * (C, N, H, W) row-major for a batch of N samples of shape (C, H, W), and (F, N) for flat
 * features (= (F, N, 1, 1)). With this one layout:
 *   - a linear layer is W (out, in) x X (in, N) and a conv2d is W (out, C*kh*kw) x
 *     im2col(X) (C*kh*kw, N*oh*ow): one product over the whole batch whose left operand is
 *     the weight, so a pruned weight runs as a sparse matrix (CSR SpMM) with no change to
 *     the layer (the same forward serves training and inference);
 *   - a channel is one contiguous row of N*H*W values (batch norm statistics and bias
 *     gradients are row reductions);
 *   - each (channel, sample) plane is contiguous (pooling runs over C*N planes).
 * The cost is a transpose of the input batch and of the logits (both small), and flatten of
 * a (C, N, H, W) tensor with H*W > 1 is a transpose to (C*H*W, N), not a no-op.
 */
#ifndef ELAG_MODEL_LAYER_H
#define ELAG_MODEL_LAYER_H

#include "backend/backend.h"
#include "config/config.h"

typedef struct elag_model elag_model;
typedef struct elag_layer elag_layer;
typedef struct elag_sparse_step_layer elag_sparse_step_layer; /* host/train/sparse_step.h */

/* Per-sample feature shape (c, h, w); flat features are (features, 1, 1). */
typedef struct elag_fshape {
    int c, h, w;
} elag_fshape;

static inline size_t elag_fshape_count(elag_fshape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

/* One forward or backward pass. */
typedef struct elag_pass {
    int n;        /* batch: columns of every activation */
    int training; /* batch statistics and dropout on; off in evaluation and inference */
    long step;    /* training step (dropout's Philox offset) */
    uint64_t seed;
} elag_pass;

typedef struct elag_layer_kind_def {
    const char *name;            /* YAML `type` */
    const char *prefix;          /* automatic layer names: <prefix><count> ("fc1", "conv2") */
    const char *const *keys;     /* layer keys it takes besides type and name (NULL-terminated) */
    const char *const *required; /* those that must be given (NULL-terminated, may be NULL) */
    /* Defaults of its keys, before the given ones are read. May be NULL. */
    void (*defaults)(elag_layer_config *lc);
    /* Defaults that depend on given keys (pool stride = kernel), after reading. May be NULL. */
    void (*resolve)(elag_layer_config *lc);
    /* Checks the layer against its input shape l->in and sets l->out (and any geometry);
     * ELAG_ERR_INPUT naming the layer when it does not fit. */
    elag_status (*infer)(elag_model *m, elag_layer *l);
    /* Registers its tensors (elag_model_add_param) and its scratch needs (l->aux_floats,
     * l->work_floats). May be NULL. */
    elag_status (*params)(elag_model *m, elag_layer *l);
    /* y = layer(x), both device, feature-major (see above). */
    elag_status (*forward)(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                           float *y);
    /* From dy (the gradient of y): the gradients of the layer's trainable tensors (written
     * into m->grads, overwriting) and, when dx is not NULL, the gradient of x. x and y are
     * the forward pass's. NULL for layers that only alias their input. */
    elag_status (*backward)(elag_model *m, elag_layer *l, const elag_pass *p, const float *x,
                            const float *y, const float *dy, float *dx);
    int fuses_relu;    /* a following relu can be applied in this layer's epilogue */
    int fusable;       /* this kind (relu) can be applied in the previous layer's epilogue */
    int view;          /* when it aliases its input, forward and backward are identities */
    int spatial;       /* works on (C, H, W) planes: a model with none takes flat input */
    int sparse_weight; /* its first tensor is a weight the sparse formats can hold */
    int sparse_train;  /* forward and backward run l->train_sp when the trainer set it */
} elag_layer_kind_def;

/* The table (kinds.c), indexed by elag_layer_kind. */
const elag_layer_kind_def *elag_layer_kind_get(elag_layer_kind k);
/* The kind called `name`, or -1. */
int elag_layer_kind_find(const char *name);

struct elag_layer {
    const elag_layer_kind_def *kind;
    elag_layer_config cfg; /* its resolved config (name, kernel, ...) */
    int index;             /* position in the model */
    int input;             /* layer whose output feeds it; -1 = the model input */
    elag_fshape in, out;
    int alias;                  /* its output is its input's buffer (no storage of its own) */
    int relu;                   /* the following relu is applied in this layer's epilogue */
    int first_param, n_params;  /* its entries in the parameter registry */
    size_t act_off;             /* output: m->acts + act_off, (out.c, n, out.h, out.w) */
    size_t aux_off, aux_floats; /* what forward keeps for backward: m->aux + aux_off,
                                 * aux_floats per sample (argmax, dropout keep) + aux_fixed */
    size_t aux_fixed;
    size_t work_floats;  /* scratch it needs in m->work (im2col columns) */
    int chunk;           /* conv2d: samples per im2col (or direct) chunk */
    int direct;          /* conv2d: runs the backend's direct convolution, not im2col */
    elag_window win;     /* conv2d, pools */
    elag_sparse_dev *sp; /* inference: the weight as a prepared sparse matrix, or NULL */
    elag_sparse_step_layer *train_sp; /* training: the weight's live sparse pattern and
                                       * values (sparse_step.h), or NULL: dense */
    int pattern_cols; /* sparse_train kinds: the widest product its pattern must take
                       * (conv2d: im2col columns of one chunk); 0: the batch */
};

/* ---- the parameter registry ---- */

typedef enum elag_param_role {
    ELAG_PARAM_WEIGHT = 0, /* linear / conv weight */
    ELAG_PARAM_BIAS,
    ELAG_PARAM_NORM,  /* batch norm scale and shift */
    ELAG_PARAM_BUFFER /* running statistics: saved, not trained */
} elag_param_role;

typedef enum elag_param_init {
    ELAG_INIT_KAIMING = 0, /* uniform(-sqrt(6/fan_in), +sqrt(6/fan_in)) */
    ELAG_INIT_ZERO,
    ELAG_INIT_ONE
} elag_param_init;

#define ELAG_PARAM_NAME_LEN (ELAG_NAME_LEN + 24)

typedef struct elag_param {
    char name[ELAG_PARAM_NAME_LEN]; /* "<layer>.<suffix>": conv1.weight, bn1.running_mean */
    int layer;
    int ndim;
    int64_t shape[4]; /* weight: (out, in) or (out, C, kh, kw) */
    size_t count;
    size_t offset; /* into params, grads and each optimizer slot */
    elag_param_role role;
    int trainable;      /* the optimizer steps it */
    int prunable;       /* it has a mask */
    size_t mask_off;    /* into masks (count entries) when prunable */
    int structure_axis; /* the axis structured pruning removes along (0: out) */
    int rows, cols;     /* as the matrix products see it: shape[0] x count/shape[0] */
    elag_param_init init;
    int fan_in;
} elag_param;

/* Adds a tensor of `ndim` dims to the registry for layer l ("<l name>.<suffix>");
 * returns its index in *index (may be NULL). */
elag_status elag_model_add_param(elag_model *m, elag_layer *l, const char *suffix, int ndim,
                                 const int64_t *shape, elag_param_role role, int prunable,
                                 elag_param_init init, int fan_in, int *index);

/* Helpers the kind files share. */
/* l's parameter j (0-based within the layer), device pointer into m->params. */
float *elag_layer_param(elag_model *m, const elag_layer *l, int j);
float *elag_layer_grad(elag_model *m, const elag_layer *l, int j);
/* ELAG_ERR_INPUT "model: layer '<name>' (<kind>): <msg>" */
elag_status elag_layer_fail(const elag_layer *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Bias (may be NULL) and fused ReLU epilogue on y (rows, cols) feature-major. */
elag_status elag_layer_epilogue(elag_backend *be, float *y, const float *bias, int rows, int cols,
                                int relu);

#endif /* ELAG_MODEL_LAYER_H */
