/*
 * `elag import` of ONNX graphs it must refuse, part 1 (tests/cov_onnx.h has the fixtures
 * and the edits; part 2 and the spellings it takes: test_cov_onnx_more.c): an MLP and a
 * small CNN exported by elag, each case a fresh copy of one of them with one thing
 * changed (an attribute, an input, a tensor's type or bytes, the graph's input or
 * output). Every case is ELAG_ERR_INPUT, one line naming the file and, for a node, the
 * node; nothing is written. test_onnx.c has the round trips and the first refusals
 * (unknown operator, truncation, a branch, widths that do not fit).
 */
#define _POSIX_C_SOURCE 200809L
#include "cov_onnx.h"

#include <math.h>

TestSuite(cov_onnx, .init = cov_onnx_setup, .fini = cov_onnx_teardown, .timeout = 300);

EDIT(gemm_alpha)
{
    attr_f(node(m, "Gemm"), "alpha", 2.0f);
}
EDIT(gemm_trans_a)
{
    attr_i(node(m, "Gemm"), "transA", 1);
}
EDIT(gemm_weight_1d)
{
    set_str(&node(m, "Gemm")->input[1], "fc1.bias");
}
EDIT(gemm_bias_count)
{
    set_str(&node(m, "Gemm")->input[2], "conv1.bias");
}
EDIT(gemm_bias_missing)
{
    set_str(&node(m, "Gemm")->input[2], "nowhere");
}
EDIT(gemm_on_planes)
{
    Onnx__NodeProto *fl = node(m, "Flatten");
    set_str(&fl->op_type, "Identity");
    drop_attributes(fl);
}
EDIT(matmul_not_2d)
{
    Onnx__NodeProto *g = node(m, "Gemm");
    set_str(&g->op_type, "MatMul");
    set_str(&g->input[1], "fc1.bias");
}
EDIT(matmul_width)
{
    Onnx__NodeProto *g = m->graph->node[2];
    set_str(&g->op_type, "MatMul");
    drop_input(g, 2);
    drop_attributes(g);
}
EDIT(add_after_relu)
{
    Onnx__NodeProto *r = node(m, "Relu");
    set_str(&r->op_type, "Add");
    r->input = realloc(r->input, 2 * sizeof *r->input);
    r->input[1] = strdup("fc1.bias");
    r->n_input = 2;
}
EDIT(relu_domain)
{
    set_str(&node(m, "Relu")->domain, "com.example");
}
EDIT(relu_no_output)
{
    Onnx__NodeProto *r = node(m, "Relu");
    free(r->output[0]);
    r->n_output = 0;
}
EDIT(constant_without_value)
{
    Onnx__NodeProto *r = node(m, "Relu");
    set_str(&r->op_type, "Constant");
}
EDIT(global_pool_flat)
{
    set_str(&node(m, "Relu")->op_type, "GlobalAveragePool");
}
EDIT(flatten_axis)
{
    attr_i(node(m, "Flatten"), "axis", 2);
}
EDIT(reshape_float_shape)
{
    reshape_not_constant(m);
    set_str(&node(m, "Reshape")->input[1], "fc1.bias");
}
EDIT(conv_weight_3d)
{
    set_str(&node(m, "Conv")->input[1], "fc1.bias");
}
EDIT(conv_group)
{
    attr_i(node(m, "Conv"), "group", 2);
}
EDIT(conv_kernel_3)
{
    attr_ints(node(m, "Conv"), "kernel_shape", 3, (int64_t[]){1, 3, 3});
}
EDIT(conv_kernel_other)
{
    attr_ints(node(m, "Conv"), "kernel_shape", 2, (int64_t[]){1, 1});
}
EDIT(conv_same)
{
    attr_s(node(m, "Conv"), "auto_pad", "SAME_UPPER");
}
EDIT(conv_dilated)
{
    attr_ints(node(m, "Conv"), "dilations", 2, (int64_t[]){2, 2});
}
EDIT(conv_asymmetric)
{
    attr_ints(node(m, "Conv"), "pads", 4, (int64_t[]){0, 1, 0, 0});
}
EDIT(conv_stride_0)
{
    attr_ints(node(m, "Conv"), "strides", 2, (int64_t[]){0, 1});
}
EDIT(conv_bias_count)
{
    set_str(&node(m, "Conv")->input[2], "fc1.bias");
}
EDIT(pool_ceil)
{
    attr_i(node(m, "MaxPool"), "ceil_mode", 1);
}
EDIT(pool_too_big)
{
    attr_ints(node(m, "MaxPool"), "kernel_shape", 2, (int64_t[]){3, 2});
}
EDIT(pool_indices)
{
    attr_i(node(m, "MaxPool"), "storage_order", 1);
}
EDIT(avgpool_exclude_pad)
{
    attr_i(node(m, "AveragePool"), "count_include_pad", 0);
}
EDIT(bn_training)
{
    attr_i(node(m, "BatchNormalization"), "training_mode", 1);
}
EDIT(bn_four_inputs)
{
    drop_input(node(m, "BatchNormalization"), 4);
}
EDIT(bn_epsilon)
{
    attr_f(node(m, "BatchNormalization"), "epsilon", 0.0f);
}
EDIT(two_graph_inputs)
{
    Onnx__GraphProto *g = m->graph;
    Onnx__ValueInfoProto *in = g->input[0];
    g->input = realloc(g->input, (g->n_input + 1) * sizeof *g->input);
    size_t len = onnx__value_info_proto__get_packed_size(in);
    uint8_t *buf = malloc(len);
    onnx__value_info_proto__pack(in, buf);
    Onnx__ValueInfoProto *copy = onnx__value_info_proto__unpack(NULL, len, buf);
    free(buf);
    set_str(&copy->name, "second");
    g->input[g->n_input++] = copy;
}
EDIT(no_graph_input)
{
    set_str(&m->graph->input[0]->name, "fc1.bias");
}
EDIT(input_double)
{
    m->graph->input[0]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
}
EDIT(input_symbolic)
{
    Onnx__TensorShapeProto__Dimension *d = m->graph->input[0]->type->tensor_type->shape->dim[1];
    d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    d->dim_param = strdup("features");
}
EDIT(output_elsewhere)
{
    set_str(&m->graph->output[0]->name, "somewhere");
}
EDIT(ends_in_planes)
{
    /* the chain stops after the pool: its output is the graph's */
    Onnx__GraphProto *g = m->graph;
    size_t k = 0;
    while (strcmp(g->node[k]->op_type, "MaxPool") != 0) k++;
    for (size_t i = k + 1; i < g->n_node; i++) onnx__node_proto__free_unpacked(g->node[i], NULL);
    g->n_node = k + 1;
    set_str(&g->output[0]->name, g->node[k]->output[0]);
}
EDIT(external_data)
{
    Onnx__TensorProto *t = tensor(m, "fc1.weight");
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}
EDIT(negative_dim)
{
    tensor(m, "fc1.bias")->dims[0] = -5;
}
EDIT(raw_odd_length)
{
    tensor(m, "fc1.weight")->raw_data.len -= 1;
}
EDIT(float_data_count)
{
    Onnx__TensorProto *t = tensor(m, "fc1.bias");
    t->has_raw_data = 0;
    t->n_float_data = 2;
    t->float_data = calloc(2, sizeof *t->float_data);
}
EDIT(double_too_big)
{
    double v[5] = {0, 1, 1e39, 0, 0};
    raw(tensor(m, "fc1.bias"), ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, v, 8, 5);
}
EDIT(float_nan)
{
    float v[5] = {0, 1, 2, NAN, 0};
    raw(tensor(m, "fc1.bias"), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, v, 4, 5);
}
EDIT(half_inf)
{
    uint16_t v[5] = {0, 0x3c00, 0x7c00, 0, 0}; /* 0, 1, +Inf */
    raw(tensor(m, "fc1.bias"), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, v, 2, 5);
}
EDIT(bf16_nan_in_int32_data)
{
    Onnx__TensorProto *t = tensor(m, "fc1.bias");
    t->has_raw_data = 0;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
    t->n_int32_data = 5;
    t->int32_data = calloc(5, sizeof *t->int32_data);
    t->int32_data[4] = 0x7fc0; /* bfloat16 NaN */
}
EDIT(reshape_int32_bad_shape)
{
    reshape_not_constant(m);
    Onnx__GraphProto *g = m->graph;
    Onnx__TensorProto *t = malloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup("shape");
    t->n_dims = 1;
    t->dims = malloc(sizeof *t->dims);
    t->dims[0] = 3;
    int32_t v[3] = {0, -1, 1};
    raw(t, ONNX__TENSOR_PROTO__DATA_TYPE__INT32, v, 4, 3);
    g->initializer = realloc(g->initializer, (g->n_initializer + 1) * sizeof *g->initializer);
    g->initializer[g->n_initializer++] = t;
    set_str(&node(m, "Reshape")->input[1], "shape");
}

static const bad_case cases[] = {
    {"Gemm alpha 2", 0, gemm_alpha, "only Gemm with alpha = beta = 1 and transA = 0"},
    {"Gemm transA", 0, gemm_trans_a, "only Gemm with alpha = beta = 1 and transA = 0"},
    {"Gemm of a 1-D weight", 0, gemm_weight_1d, "the weight B must be a 2-D initializer"},
    {"Gemm bias of another width", 1, gemm_bias_count, "has 2 values, expected 3"},
    {"Gemm bias not a constant", 0, gemm_bias_missing, "input 'nowhere' is not a constant"},
    {"Gemm on planes", 1, gemm_on_planes, "Gemm on a 4-D value; flatten it first"},
    {"MatMul of a 1-D weight", 0, matmul_not_2d, "only MatMul(x, W) with W a 2-D initializer"},
    {"MatMul of (out, in)", 0, matmul_width, "the weight's first dimension is not the input's"},
    {"Add after Relu", 0, add_after_relu, "Add is imported only as the bias of the MatMul"},
    {"another domain", 0, relu_domain, "unsupported operator domain 'com.example'"},
    {"a node without output", 0, relu_no_output, "a node without input or output"},
    {"Constant without value", 0, constant_without_value, "only a Constant with a tensor value"},
    {"GlobalAveragePool on features", 0, global_pool_flat, "GlobalAveragePool on flat features"},
    {"Flatten axis 2", 1, flatten_axis, "only Flatten with axis = 1"},
    {"Reshape to a computed shape", 1, reshape_not_constant, "Reshape's shape must be a constant"},
    {"Reshape by a FLOAT tensor", 1, reshape_float_shape, "is FLOAT, expected INT64"},
    {"Reshape to 3 dimensions", 1, reshape_int32_bad_shape, "only Reshape to (N, -1)"},
    {"Conv of a 1-D weight", 1, conv_weight_3d, "the weight W must be a 4-D initializer"},
    {"Conv in groups", 1, conv_group, "grouped convolutions have no elag layer"},
    {"Conv kernel_shape of 3", 1, conv_kernel_3, "kernel_shape, strides, pads or dilations"},
    {"Conv kernel_shape not the weight's", 1, conv_kernel_other, "kernel_shape differs"},
    {"Conv SAME_UPPER", 1, conv_same, "auto_pad SAME_* has no elag equivalent"},
    {"Conv dilated", 1, conv_dilated, "dilations other than 1 have no elag layer"},
    {"Conv asymmetric pads", 1, conv_asymmetric, "asymmetric pads have no elag equivalent"},
    {"Conv stride 0", 1, conv_stride_0, "kernel, stride or padding out of range"},
    {"Conv bias of another width", 1, conv_bias_count, "has 3 values, expected 2"},
    {"MaxPool ceil_mode", 1, pool_ceil, "ceil_mode = 1 has no elag equivalent"},
    {"MaxPool taller than its input", 1, pool_too_big, "the window does not fit its input"},
    {"MaxPool indices", 1, pool_indices, "MaxPool's indices output has no elag equivalent"},
    {"AveragePool without the pads", 1, avgpool_exclude_pad, "count_include_pad = 0"},
    {"BatchNormalization training", 1, bn_training, "only BatchNormalization in inference"},
    {"BatchNormalization of 4 inputs", 1, bn_four_inputs, "only BatchNormalization in inference"},
    {"BatchNormalization epsilon 0", 1, bn_epsilon, "epsilon must be in (0, 1)"},
    {"two graph inputs", 0, two_graph_inputs, "more than one graph input"},
    {"no graph input", 0, no_graph_input, "the graph has no input"},
    {"a DOUBLE graph input", 0, input_double, "must be a FLOAT tensor with a shape"},
    {"a symbolic feature count", 0, input_symbolic, "dimension 1 must be a fixed size"},
    {"the output elsewhere", 0, output_elsewhere, "the graph output is not the end of the chain"},
    {"ending in planes", 1, ends_in_planes, "the graph must end in flat logits"},
    {"external data", 0, external_data, "keeps its data in an external file"},
    {"a negative dimension", 0, negative_dim, "tensor 'fc1.bias' has a bad shape"},
    {"raw bytes not whole floats", 0, raw_odd_length, "tensor 'fc1.weight' holds"},
    {"float_data of another count", 0, float_data_count, "holds 2 values, its shape says 5"},
    {"DOUBLE beyond F32", 0, double_too_big, "outside F32's range"},
    {"a NaN weight", 0, float_nan, "tensor 'fc1.bias' holds NaN at 3"},
    {"a FLOAT16 Inf", 0, half_inf, "tensor 'fc1.bias' holds Inf at 2"},
    {"a BFLOAT16 NaN in int32_data", 0, bf16_nan_in_int32_data, "holds NaN at 4"},
};

Test(cov_onnx, refusals_name_the_file_and_write_nothing)
{
    expect_refusals(cases, sizeof cases / sizeof *cases);
}

/* The unedited files import (so each refusal above is the edit's). */
Test(cov_onnx, the_fixtures_import)
{
    const char *files[] = {"m.onnx", "c.onnx"};
    for (int i = 0; i < 2; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        OK(elag_import_onnx(path, out, NULL, NULL));
        cr_assert_eq(access(out, F_OK), 0);
        remove(out);
    }
}
