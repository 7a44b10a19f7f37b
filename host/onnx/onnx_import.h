/*
 * What the two halves of the ONNX import share (onnx.h): the walk over the graph and the
 * checkpoint it writes (onnx_import.c), and the mapping of one node onto an elag layer
 * (onnx_ops.c). Private to host/onnx/.
 */
#ifndef ELAG_ONNX_ONNX_IMPORT_H
#define ELAG_ONNX_ONNX_IMPORT_H

#include "model/layer.h"
#include "onnx/onnx.pb-c.h"

#define YAML_ITEM 320

typedef struct elag_onnx_layer {
    char yaml[YAML_ITEM]; /* its model.layers item */
    char desc[160];       /* "linear 300 <- Gemm 'fc1'" (the elag name is added later) */
    int n_t;              /* tensors, in elag's registry order */
    float *t[4];
    size_t count[4];
    int has_bias; /* linear from MatMul: an Add may still bring the bias */
    int linear;
} elag_onnx_layer;

typedef struct elag_onnx_imp {
    const char *path;
    const Onnx__GraphProto *g;
    const Onnx__NodeProto *node; /* the node being mapped (for messages) */
    char what[600];              /* "<path>: node '<name>' (<op>)" */
    const char *cur;             /* the value the chain has reached */
    elag_fshape shape;           /* its per-sample shape */
    int rank4;                   /* (N, C, H, W), else (N, features) */
    int n;
    elag_onnx_layer l[ELAG_MAX_LAYERS];
    int n_const;
    const Onnx__TensorProto *consts[256]; /* Constant nodes' values (name: node output) */
    const char *const_names[256];
} elag_onnx_imp;

/* The initializer or Constant value called name, or NULL. */
const Onnx__TensorProto *elag_onnx_find_tensor(const elag_onnx_imp *s, const char *name);

/* Maps s->node (s->what names it) onto the layers in s->l and moves s->cur, s->shape and
 * s->rank4 past it; ELAG_ERR_INPUT naming the node when elag has no equivalent. */
elag_status elag_onnx_map_node(elag_onnx_imp *s);

#endif /* ELAG_ONNX_ONNX_IMPORT_H */
