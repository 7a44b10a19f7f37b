/*
 * `elag export MODEL --format onnx`: an elag_export's inference graph written as an ONNX
 * model (onnx.h says which nodes). The model is built as protobuf-c structs that point at
 * the export's own tensors (dense weights are converted into buffers owned here), packed
 * once and written through the atomic writer.
 */
#include "onnx/onnx.h"

#include "core/check.h"
#include "io/atomic.h"
#include "model/layer.h"
#include "onnx/onnx.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES (2 * ELAG_MAX_LAYERS)
#define MAX_ATTRS 5
#define NAME_LEN  (ELAG_PARAM_NAME_LEN + 16)

/* Everything the packed model points at; one per call, on the heap. */
typedef struct onnx_out {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__NodeProto nodes[MAX_NODES], *node_ptrs[MAX_NODES];
    char node_names[MAX_NODES][NAME_LEN];
    char values[MAX_NODES + 1][NAME_LEN]; /* values[k]: output of node k-1; [0] the input */
    char *node_in[MAX_NODES][5], *node_out[MAX_NODES][1];
    Onnx__AttributeProto attrs[MAX_NODES][MAX_ATTRS], *attr_ptrs[MAX_NODES][MAX_ATTRS];
    int64_t attr_ints[MAX_NODES][MAX_ATTRS][4];
    Onnx__TensorProto inits[ELAG_MAX_PARAMS], *init_ptrs[ELAG_MAX_PARAMS];
    float *owned[ELAG_MAX_PARAMS]; /* dense copies of weights held in a sparse format */
    Onnx__ValueInfoProto io[2], *io_ptrs[2];
    Onnx__TypeProto types[2];
    Onnx__TypeProto__Tensor tensor_types[2];
    Onnx__TensorShapeProto shapes[2];
    Onnx__TensorShapeProto__Dimension dims[2][4], *dim_ptrs[2][4];
    int n_nodes, n_inits;
} onnx_out;

static void set_attr_int(Onnx__AttributeProto *a, const char *name, int64_t v)
{
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
}

static void set_attr_float(Onnx__AttributeProto *a, const char *name, float v)
{
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1;
    a->f = v;
}

static void set_attr_ints(Onnx__AttributeProto *a, const char *name, int64_t *store,
                          const int64_t *v, int n)
{
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    memcpy(store, v, (size_t)n * sizeof *store);
    a->n_ints = (size_t)n;
    a->ints = store;
}

/* Appends node `op` reading the current value (and `params`) into a new value; returns its
 * index so the caller can add attributes. */
static int add_node(onnx_out *o, const char *op, const char *layer, const char *const *params,
                    int n_params)
{
    int k = o->n_nodes++;
    ELAG_ASSERT(k < MAX_NODES);
    Onnx__NodeProto *n = &o->nodes[k];
    onnx__node_proto__init(n);
    snprintf(o->node_names[k], NAME_LEN, "%s", layer);
    snprintf(o->values[k + 1], NAME_LEN, "%s.out", layer);
    n->name = o->node_names[k];
    n->op_type = (char *)op;
    o->node_in[k][0] = o->values[k];
    for (int i = 0; i < n_params; i++) o->node_in[k][1 + i] = (char *)params[i];
    n->n_input = (size_t)(1 + n_params);
    n->input = o->node_in[k];
    o->node_out[k][0] = o->values[k + 1];
    n->n_output = 1;
    n->output = o->node_out[k];
    o->node_ptrs[k] = n;
    return k;
}

static void finish_attrs(onnx_out *o, int k, int n_attrs)
{
    for (int i = 0; i < n_attrs; i++) o->attr_ptrs[k][i] = &o->attrs[k][i];
    o->nodes[k].n_attribute = (size_t)n_attrs;
    o->nodes[k].attribute = o->attr_ptrs[k];
}

/* Window attributes of a conv2d or pool layer: kernel_shape, strides, pads (ONNX pads are
 * begin then end per axis; elag pads both sides alike). Returns the count set. */
static int window_attrs(onnx_out *o, int k, const elag_layer_config *lc)
{
    int64_t ks[2] = {lc->kernel[0], lc->kernel[1]};
    int64_t st[2] = {lc->stride[0] ? lc->stride[0] : lc->kernel[0],
                     lc->stride[1] ? lc->stride[1] : lc->kernel[1]};
    int64_t pads[4] = {lc->padding[0], lc->padding[1], lc->padding[0], lc->padding[1]};
    set_attr_ints(&o->attrs[k][0], "kernel_shape", o->attr_ints[k][0], ks, 2);
    set_attr_ints(&o->attrs[k][1], "strides", o->attr_ints[k][1], st, 2);
    set_attr_ints(&o->attrs[k][2], "pads", o->attr_ints[k][2], pads, 4);
    return 3;
}

/* Adds export tensor t as a FLOAT initializer; returns its name. */
static elag_status add_init(onnx_out *o, const elag_export_tensor *t, const char **name)
{
    int k = o->n_inits++;
    Onnx__TensorProto *p = &o->inits[k];
    onnx__tensor_proto__init(p);
    p->name = (char *)t->name;
    p->has_data_type = 1;
    p->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    p->n_dims = (size_t)t->ndim;
    p->dims = (int64_t *)t->shape;
    size_t count = 1;
    for (int d = 0; d < t->ndim; d++) count *= (size_t)t->shape[d];
    const float *data = t->data;
    if (t->is_weight) {
        if (t->w.format == ELAG_SPARSE_FORMAT_DENSE) {
            data = t->w.dense;
        } else {
            o->owned[k] = malloc(count * sizeof(float)); /* (rows, cols) = its own shape */
            if (!o->owned[k]) return elag_fail(ELAG_ERR_NOMEM, "onnx export: out of host memory");
            ELAG_TRY(elag_sparse_to_dense(&t->w, o->owned[k]));
            data = o->owned[k];
        }
    }
    /* raw_data is little-endian IEEE 754; so is every machine elag builds for (x86-64,
     * aarch64), so the floats go as they are */
    p->has_raw_data = 1;
    p->raw_data.len = count * sizeof(float);
    p->raw_data.data = (uint8_t *)data;
    o->init_ptrs[k] = p;
    *name = t->name;
    return ELAG_OK;
}

/* The tensors of layer li, in registry order (weight, bias; batch norm's four). */
static int layer_tensors(const elag_export *e, int li, const elag_export_tensor **out, int max)
{
    int n = 0;
    for (int i = 0; i < e->n_tensors && n < max; i++)
        if (e->t[i].layer == li) out[n++] = &e->t[i];
    return n;
}

static void value_info(onnx_out *o, int which, const char *name, const int64_t *dims, int nd)
{
    Onnx__ValueInfoProto *v = &o->io[which];
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(&o->types[which]);
    onnx__type_proto__tensor__init(&o->tensor_types[which]);
    onnx__tensor_shape_proto__init(&o->shapes[which]);
    for (int d = 0; d < nd; d++) {
        Onnx__TensorShapeProto__Dimension *dim = &o->dims[which][d];
        onnx__tensor_shape_proto__dimension__init(dim);
        if (d == 0) { /* the batch: any size */
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = (char *)"N";
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d];
        }
        o->dim_ptrs[which][d] = dim;
    }
    o->shapes[which].n_dim = (size_t)nd;
    o->shapes[which].dim = o->dim_ptrs[which];
    o->tensor_types[which].has_elem_type = 1;
    o->tensor_types[which].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    o->tensor_types[which].shape = &o->shapes[which];
    o->types[which].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    o->types[which].tensor_type = &o->tensor_types[which];
    v->name = (char *)name;
    v->type = &o->types[which];
    o->io_ptrs[which] = v;
}

/* The nodes of layer li; *rank4 says whether the current value is (N, C, H, W). */
static elag_status add_layer(onnx_out *o, const elag_export *e, int li, int *rank4)
{
    const elag_layer_config *lc = &e->cfg.model.layers[li];
    const char *kind = elag_layer_kind_name(lc->type);
    const elag_export_tensor *ts[4];
    const char *names[4];
    int nt = layer_tensors(e, li, ts, 4);
    for (int i = 0; i < nt; i++) ELAG_TRY(add_init(o, ts[i], &names[i]));
    int k;
    switch (lc->type) {
    case ELAG_LAYER_LINEAR:
        if (*rank4) { /* a linear after a global pool without a flatten: Gemm needs 2-D */
            char fl[NAME_LEN];
            snprintf(fl, sizeof fl, "%s.flatten", lc->name);
            k = add_node(o, "Flatten", fl, NULL, 0);
            set_attr_int(&o->attrs[k][0], "axis", 1);
            finish_attrs(o, k, 1);
            *rank4 = 0;
        }
        k = add_node(o, "Gemm", lc->name, names, nt);
        set_attr_int(&o->attrs[k][0], "transB", 1); /* elag's weight is (out, in) */
        finish_attrs(o, k, 1);
        return ELAG_OK;
    case ELAG_LAYER_CONV2D:
        k = add_node(o, "Conv", lc->name, names, nt);
        finish_attrs(o, k, window_attrs(o, k, lc));
        return ELAG_OK;
    case ELAG_LAYER_BATCHNORM: /* one that follows no conv2d or linear (not folded) */
        k = add_node(o, "BatchNormalization", lc->name, names, nt);
        set_attr_float(&o->attrs[k][0], "epsilon", (float)lc->eps);
        set_attr_float(&o->attrs[k][1], "momentum", (float)(1.0 - lc->momentum));
        finish_attrs(o, k, 2);
        return ELAG_OK;
    case ELAG_LAYER_RELU:
        add_node(o, "Relu", lc->name, NULL, 0);
        return ELAG_OK;
    case ELAG_LAYER_MAXPOOL:
        k = add_node(o, "MaxPool", lc->name, NULL, 0);
        finish_attrs(o, k, window_attrs(o, k, lc));
        return ELAG_OK;
    case ELAG_LAYER_AVGPOOL:
        k = add_node(o, "AveragePool", lc->name, NULL, 0);
        set_attr_int(&o->attrs[k][3], "count_include_pad", 1);
        finish_attrs(o, k, window_attrs(o, k, lc) + 1);
        return ELAG_OK;
    case ELAG_LAYER_GLOBAL_AVGPOOL:
        add_node(o, "GlobalAveragePool", lc->name, NULL, 0);
        return ELAG_OK;
    case ELAG_LAYER_FLATTEN:
        if (!*rank4) return ELAG_OK; /* flat features already: the identity */
        k = add_node(o, "Flatten", lc->name, NULL, 0);
        set_attr_int(&o->attrs[k][0], "axis", 1);
        finish_attrs(o, k, 1);
        *rank4 = 0;
        return ELAG_OK;
    case ELAG_LAYER_DROPOUT: /* the identity in inference; exports leave it out anyway */
        return ELAG_OK;
    default:
        return elag_fail(ELAG_ERR_UNSUPPORTED,
                         "onnx export: layer '%s' of kind %s has no ONNX "
                         "mapping yet",
                         lc->name, kind);
    }
}

static void free_out(onnx_out *o)
{
    for (int i = 0; i < ELAG_MAX_PARAMS; i++) free(o->owned[i]);
    free(o);
}

elag_status elag_onnx_write(const elag_export *e, const char *path)
{
    onnx_out *o = calloc(1, sizeof *o);
    if (!o) return elag_fail(ELAG_ERR_NOMEM, "onnx export: out of host memory");
    elag_status st = ELAG_OK;
    /* a network with spatial layers takes (N, C, H, W); an MLP flat (N, features) */
    int spatial = 0;
    for (int i = 0; i < e->cfg.model.n_layers; i++) {
        const elag_layer_kind_def *k = elag_layer_kind_get(e->cfg.model.layers[i].type);
        spatial |= k && k->spatial;
    }
    int rank4 = spatial;
    snprintf(o->values[0], NAME_LEN, "input");
    for (int i = 0; i < e->cfg.model.n_layers && st == ELAG_OK; i++)
        st = add_layer(o, e, i, &rank4);
    if (st == ELAG_OK && (o->n_nodes == 0 || rank4))
        st = elag_fail(ELAG_ERR_UNSUPPORTED, "onnx export: the graph must end in flat logits");
    if (st != ELAG_OK) {
        free_out(o);
        return st;
    }
    snprintf(o->values[o->n_nodes], NAME_LEN, "logits"); /* the last node's output */
    int64_t in_dims[4] = {0, e->input.c, e->input.h, e->input.w};
    if (!spatial) in_dims[1] = e->input_dim;
    value_info(o, 0, "input", in_dims, spatial ? 4 : 2);
    int64_t out_dims[2] = {0, e->classes};
    value_info(o, 1, "logits", out_dims, 2);

    Onnx__GraphProto *g = &o->graph;
    onnx__graph_proto__init(g);
    g->name = (char *)e->cfg.name;
    g->n_node = (size_t)o->n_nodes;
    g->node = o->node_ptrs;
    g->n_initializer = (size_t)o->n_inits;
    g->initializer = o->init_ptrs;
    g->n_input = 1;
    g->input = &o->io_ptrs[0];
    g->n_output = 1;
    g->output = &o->io_ptrs[1];

    onnx__operator_set_id_proto__init(&o->opset);
    o->opset.domain = (char *)"";
    o->opset.has_version = 1;
    o->opset.version = ELAG_ONNX_OPSET;
    o->opsets[0] = &o->opset;
    Onnx__ModelProto *m = &o->model;
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = ELAG_ONNX_IR_VERSION;
    m->n_opset_import = 1;
    m->opset_import = o->opsets;
    m->producer_name = (char *)"elag";
    m->producer_version = (char *)ELAG_VERSION;
    m->graph = g;

    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        free_out(o);
        return elag_fail(ELAG_ERR_NOMEM, "onnx export: out of host memory (%zu bytes)", len);
    }
    size_t packed = onnx__model_proto__pack(m, buf);
    ELAG_ASSERT(packed == len);
    st = elag_atomic_write(path, buf, len);
    free(buf);
    free_out(o);
    return st;
}
