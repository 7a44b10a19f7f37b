/*
 * `elag import` of ONNX graphs, part 2 (part 1 and what is shared: test_cov_onnx.c,
 * tests/cov_onnx.h): more refusals (window attributes, Reshape and Constant forms,
 * graph inputs and tensor shapes), the spellings the import must take (each leaves the
 * network as it is), and --set, which may set data and training keys but never the
 * layers the graph gives.
 */
#define _POSIX_C_SOURCE 200809L
#include "cov_onnx.h"

TestSuite(cov_onnx_more, .init = cov_onnx_setup, .fini = cov_onnx_teardown, .timeout = 300);

EDIT(gemm_beta)
{
    attr_f(node(m, "Gemm"), "beta", 0.5f);
}
EDIT(add_first)
{
    Onnx__NodeProto *g = node(m, "Gemm");
    set_str(&g->op_type, "Add");
    drop_input(g, 2);
    drop_attributes(g);
    set_str(&g->input[1], "fc1.bias");
}
EDIT(add_three_inputs)
{
    Onnx__NodeProto *r = node(m, "Relu");
    set_str(&r->op_type, "Add");
    r->input = realloc(r->input, 3 * sizeof *r->input);
    r->input[1] = strdup("fc1.bias");
    r->input[2] = strdup("fc1.bias");
    r->n_input = 3;
}
EDIT(strides_3)
{
    attr_ints(node(m, "Conv"), "strides", 3, (int64_t[]){1, 1, 1});
}
EDIT(pads_2)
{
    attr_ints(node(m, "Conv"), "pads", 2, (int64_t[]){0, 1});
}
EDIT(dilations_1)
{
    attr_ints(node(m, "Conv"), "dilations", 1, (int64_t[]){1});
}
EDIT(dilations_w)
{
    attr_ints(node(m, "Conv"), "dilations", 2, (int64_t[]){1, 2});
}
EDIT(pads_w_asymmetric)
{
    attr_ints(node(m, "Conv"), "pads", 4, (int64_t[]){0, 1, 0, 2});
}
EDIT(kernel_huge)
{
    attr_ints(node(m, "MaxPool"), "kernel_shape", 2, (int64_t[]){1, 5000});
}
EDIT(stride_huge)
{
    attr_ints(node(m, "MaxPool"), "strides", 2, (int64_t[]){1, 5000});
}
EDIT(pads_negative)
{
    attr_ints(node(m, "MaxPool"), "pads", 4, (int64_t[]){0, -1, 0, -1});
}
EDIT(pool_on_features)
{
    Onnx__NodeProto *r = node(m, "Relu");
    set_str(&r->op_type, "MaxPool");
    attr_ints(r, "kernel_shape", 2, (int64_t[]){1, 1});
}
EDIT(conv_channels)
{
    tensor(m, "conv1.weight")->dims[1] = 2;
}
EDIT(conv_kernel_w)
{
    attr_ints(node(m, "Conv"), "kernel_shape", 2, (int64_t[]){1, 2});
}
EDIT(bn_epsilon_big)
{
    attr_f(node(m, "BatchNormalization"), "epsilon", 1.5f);
}
EDIT(maxpool_two_outputs)
{
    Onnx__NodeProto *p = node(m, "MaxPool");
    p->output = realloc(p->output, 2 * sizeof *p->output);
    p->output[1] = strdup("indices");
    p->n_output = 2;
}
EDIT(reshape_both_free)
{
    reshape_to(m, 2, (int64_t[]){-1, -1}, 0);
}
EDIT(reshape_7)
{
    reshape_to(m, 2, (int64_t[]){0, 7}, 0);
}
EDIT(reshape_allowzero)
{
    reshape_to(m, 2, (int64_t[]){0, -1}, 0);
    attr_i(node(m, "Reshape"), "allowzero", 1);
}
EDIT(reshape_one_input)
{
    Onnx__NodeProto *fl = node(m, "Flatten");
    set_str(&fl->op_type, "Reshape");
}
EDIT(shape_of_5)
{
    reshape_to(m, 2, (int64_t[]){0, -1}, 0);
    Onnx__TensorProto *t = tensor(m, "shape");
    t->dims[0] = 5;
}
EDIT(constant_two_outputs)
{
    Onnx__NodeProto *r = node(m, "Relu");
    set_str(&r->op_type, "Constant");
    Onnx__AttributeProto *a = attr(r, "value");
    a->t = malloc(sizeof *a->t);
    onnx__tensor_proto__init(a->t);
    r->output = realloc(r->output, 2 * sizeof *r->output);
    r->output[1] = strdup("second");
    r->n_output = 2;
}
EDIT(no_nodes)
{
    Onnx__GraphProto *g = m->graph;
    for (size_t i = 0; i < g->n_node; i++) onnx__node_proto__free_unpacked(g->node[i], NULL);
    g->n_node = 0;
}
EDIT(dims_overflow)
{
    Onnx__TensorProto *t = tensor(m, "fc1.bias");
    t->dims = realloc(t->dims, 3 * sizeof *t->dims);
    t->dims[0] = t->dims[1] = t->dims[2] = INT64_C(1) << 40;
    t->n_dims = 3;
}
EDIT(type_unknown)
{
    tensor(m, "fc1.bias")->data_type = 99;
}
EDIT(input_unnamed_type)
{
    Onnx__TypeProto *ty = m->graph->input[0]->type;
    onnx__type_proto__free_unpacked(ty, NULL);
    m->graph->input[0]->type = NULL;
}
EDIT(input_dim_missing)
{
    Onnx__TensorShapeProto__Dimension *d = m->graph->input[0]->type->tensor_type->shape->dim[1];
    d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE__NOT_SET;
}
EDIT(input_dim_huge)
{
    m->graph->input[0]->type->tensor_type->shape->dim[1]->dim_value = INT64_C(1) << 31;
}

static const bad_case cases[] = {
    {"Gemm beta 0.5", 0, gemm_beta, "only Gemm with alpha = beta = 1 and transA = 0"},
    {"Add as the first node", 0, add_first, "Add is imported only as the bias of the MatMul"},
    {"Add of three inputs", 0, add_three_inputs, "Add is imported only as the bias"},
    {"strides of 3", 1, strides_3, "kernel_shape, strides, pads or dilations is not 2-D"},
    {"pads of 2", 1, pads_2, "kernel_shape, strides, pads or dilations is not 2-D"},
    {"dilations of 1", 1, dilations_1, "kernel_shape, strides, pads or dilations is not 2-D"},
    {"dilated along W", 1, dilations_w, "dilations other than 1 have no elag layer"},
    {"W pads differ", 1, pads_w_asymmetric, "asymmetric pads have no elag equivalent"},
    {"a kernel of 5000", 1, kernel_huge, "kernel, stride or padding out of range"},
    {"a stride of 5000", 1, stride_huge, "kernel, stride or padding out of range"},
    {"negative pads", 1, pads_negative, "kernel, stride or padding out of range"},
    {"MaxPool on features", 0, pool_on_features, "the window does not fit its input"},
    {"Conv of 2 input channels", 1, conv_channels, "input channels do not match its input"},
    {"Conv kernel_shape (1, 2)", 1, conv_kernel_w, "kernel_shape differs from the weight's"},
    {"BatchNormalization epsilon 1.5", 1, bn_epsilon_big, "epsilon must be in (0, 1)"},
    {"MaxPool with indices", 1, maxpool_two_outputs, "MaxPool's indices output"},
    {"Reshape to (-1, -1)", 1, reshape_both_free, "only Reshape to (N, -1) or (N, features)"},
    {"Reshape to (N, 7)", 1, reshape_7, "only Reshape to (N, -1) or (N, features)"},
    {"Reshape allowzero", 1, reshape_allowzero, "only Reshape to (N, -1) or (N, features)"},
    {"Reshape of one input", 1, reshape_one_input, "Reshape's shape must be a constant"},
    {"a shape of 5 values", 1, shape_of_5, "holds 2 values (shape: 5, at most 4 expected)"},
    {"Constant of two outputs", 0, constant_two_outputs, "only a Constant with a tensor value"},
    {"no nodes", 0, no_nodes, "not an ONNX model (no graph or no nodes"},
    {"2^120 values", 0, dims_overflow, "tensor 'fc1.bias' has a bad shape"},
    {"an unknown data type", 0, type_unknown, "tensor 'fc1.bias' is unknown"},
    {"a graph input without type", 0, input_unnamed_type, "must be a FLOAT tensor with a shape"},
    {"a dimension without value", 0, input_dim_missing, "dimension 1 must be a fixed size"},
    {"a dimension of 2^31", 0, input_dim_huge, "dimension 1 must be a fixed size"},
};

Test(cov_onnx_more, refusals_name_the_file_and_write_nothing)
{
    expect_refusals(cases, sizeof cases / sizeof *cases);
}

/* Spellings the import must take: each edit keeps the network the same. */
EDIT(empty_bias_name)
{
    set_str(&node(m, "Gemm")->input[2], "");
}
EDIT(auto_pad_notset)
{
    attr_s(node(m, "Conv"), "auto_pad", "NOTSET");
}
EDIT(auto_pad_valid)
{
    attr_s(node(m, "MaxPool"), "auto_pad", "VALID");
}
EDIT(bn_odd_momentum)
{
    attr_f(node(m, "BatchNormalization"), "momentum", 5.0f);
}
EDIT(reshape_0_minus1)
{
    reshape_to(m, 2, (int64_t[]){0, -1}, 0);
}
EDIT(reshape_minus1_8_i32)
{
    reshape_to(m, 2, (int64_t[]){-1, 8}, 1);
}
EDIT(flatten_features)
{
    Onnx__NodeProto *r = node(m, "Relu");
    set_str(&r->op_type, "Flatten");
}
EDIT(dropout_for_relu)
{
    set_str(&node(m, "Relu")->op_type, "Dropout");
}
EDIT(domain_ai_onnx)
{
    set_str(&node(m, "Relu")->domain, "ai.onnx");
}

static const struct {
    const char *what;
    int cnn;
    edit_fn edit;
    int layers; /* what the import makes */
} accepted[] = {
    {"an empty bias name", 0, empty_bias_name, 3},
    {"auto_pad NOTSET", 1, auto_pad_notset, 7},
    {"auto_pad VALID", 1, auto_pad_valid, 7},
    {"a momentum out of range", 1, bn_odd_momentum, 7},
    {"Reshape to (N, -1)", 1, reshape_0_minus1, 7},
    {"Reshape to (-1, 8) by INT32", 1, reshape_minus1_8_i32, 7},
    {"Flatten of features", 0, flatten_features, 3},
    {"Dropout, skipped", 0, dropout_for_relu, 2},
    {"the ai.onnx domain", 0, domain_ai_onnx, 3},
};

Test(cov_onnx_more, spellings_it_takes)
{
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++) {
        put_edited(accepted[i].cnn, accepted[i].edit);
        elag_import_result r = ELAG_IMPORT_RESULT_INIT;
        elag_status st = elag_import_onnx(bad, out, NULL, &r);
        cr_expect_eq(st, ELAG_OK, "%s: %s", accepted[i].what, elag_last_error());
        cr_expect_eq(r.n_layers, accepted[i].layers, "%s: %d layers", accepted[i].what, r.n_layers);
        remove(out);
    }
}

/* --set may set data and training keys, never the layers the graph gives */
Test(cov_onnx_more, set_may_not_change_the_layers)
{
    char path[700];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    static const char *const layers[] = {"model.preset=lenet-5"};
    static const char *const bias[] = {"model.layers=[{type: linear, out_features: 3}]"};
    static const char *const ok[] = {"train.epochs=3", "name=renamed"};
    elag_import_options o = ELAG_IMPORT_OPTIONS_INIT;
    o.overrides = layers, o.n_overrides = 1;
    elag_status st = elag_import_onnx(path, out, &o, NULL);
    cr_expect_neq(st, ELAG_OK);
    cr_expect_neq(access(out, F_OK), 0, "a refused import wrote %s", out);
    o.overrides = bias;
    st = elag_import_onnx(path, out, &o, NULL);
    cr_expect_neq(st, ELAG_OK);
    cr_expect(strstr(elag_last_error(), "--set") != NULL ||
                  strstr(elag_last_error(), "model") != NULL,
              "%s", elag_last_error());
    o.overrides = ok, o.n_overrides = 2;
    OK(elag_import_onnx(path, out, &o, NULL));
    remove(out);
}
