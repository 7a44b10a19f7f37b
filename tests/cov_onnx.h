/*
 * What tests/test_cov_onnx*.c share: two ONNX files elag exported (an MLP and a small
 * CNN), made once per test, and the edits made to copies of them through the protobuf-c
 * code the library uses (everything malloc'd, so free_unpacked frees what an edit adds).
 * Functions are static inline: each test file uses a different part of them.
 */
#ifndef ELAG_TESTS_COV_ONNX_H
#define ELAG_TESTS_COV_ONNX_H

#include "elag/elag.h"
#include "onnx/onnx.pb-c.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static char *dir;
static char *mlp, *cnn; /* the exported files' bytes */
static size_t mlp_len, cnn_len;
static char bad[600], out[600];

static const char mlp_yaml[] =
    "name: m\ndevice: cpu-ref\nseed: 3\n"
    "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 6, classes: 3}}\n"
    "model: {layers: [{type: linear, out_features: 5}, {type: relu},\n"
    "                 {type: linear, out_features: 3}]}\n"
    "train: {epochs: 1, batch_size: 16, threads: 1}\n";

/* synthetic features are a (1, 1, 8) image: Conv, Relu, MaxPool, BatchNormalization (after
 * a pool: not folded), AveragePool with pads, Flatten, Gemm */
static const char cnn_yaml[] =
    "name: c\ndevice: cpu-ref\nseed: 3\n"
    "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 8, classes: 3}}\n"
    "model:\n  layers:\n"
    "    - {type: conv2d, out_channels: 2, kernel: [1, 3], padding: [0, 1]}\n"
    "    - {type: relu}\n"
    "    - {type: maxpool, kernel: [1, 2]}\n"
    "    - {type: batchnorm}\n"
    "    - {type: avgpool, kernel: [1, 3], stride: 1, padding: [0, 1]}\n"
    "    - {type: flatten}\n"
    "    - {type: linear, out_features: 3}\n"
    "train: {epochs: 1, batch_size: 16, threads: 1}\n";

/* Trains `yaml` into dir/NAME, exports it as ONNX, returns the file's bytes. */
static inline char *exported(const char *name, const char *yaml, size_t *len)
{
    char cfg[600], run[600], ckpt[700], onnx[600];
    snprintf(cfg, sizeof cfg, "%s.yaml", name);
    elag_test_put(dir, cfg, yaml);
    snprintf(cfg, sizeof cfg, "%s/%s.yaml", dir, name);
    snprintf(run, sizeof run, "%s/%s", dir, name);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    snprintf(onnx, sizeof onnx, "%s/%s.onnx", dir, name);
    OK(elag_run_train(cfg, run, NULL, NULL));
    elag_net_t *net = NULL;
    OK(elag_net_from_checkpoint(&net, ckpt));
    OK(elag_net_save_onnx(net, onnx));
    elag_net_free(net);
    FILE *f = fopen(onnx, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    char *bytes = malloc(*len);
    cr_assert(bytes && fread(bytes, 1, *len, f) == *len);
    fclose(f);
    return bytes;
}

static inline void cov_onnx_setup(void)
{
    dir = elag_test_tmpdir("cov-onnx");
    mlp = exported("m", mlp_yaml, &mlp_len);
    cnn = exported("c", cnn_yaml, &cnn_len);
    snprintf(bad, sizeof bad, "%s/bad.onnx", dir);
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
}

static inline void cov_onnx_teardown(void)
{
    free(mlp);
    free(cnn);
    elag_test_rmtree(dir);
    free(dir);
}

/* ---- editing a model (everything malloc'd, so free_unpacked frees what is added) ---- */

static inline Onnx__NodeProto *node(Onnx__ModelProto *m, const char *op)
{
    for (size_t i = 0; i < m->graph->n_node; i++)
        if (strcmp(m->graph->node[i]->op_type, op) == 0) return m->graph->node[i];
    cr_assert_fail("no %s node", op);
    return NULL;
}

static inline Onnx__TensorProto *tensor(Onnx__ModelProto *m, const char *name)
{
    for (size_t i = 0; i < m->graph->n_initializer; i++)
        if (strcmp(m->graph->initializer[i]->name, name) == 0) return m->graph->initializer[i];
    cr_assert_fail("no initializer %s", name);
    return NULL;
}

static inline void set_str(char **field, const char *text)
{
    free(*field);
    *field = strdup(text);
}

/* The attribute `name` of n, added when missing. */
static inline Onnx__AttributeProto *attr(Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
    Onnx__AttributeProto *a = malloc(sizeof *a);
    cr_assert_not_null(a);
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    n->attribute = realloc(n->attribute, (n->n_attribute + 1) * sizeof *n->attribute);
    n->attribute[n->n_attribute++] = a;
    return a;
}

static inline void attr_i(Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(n, name);
    a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1, a->i = v;
}

static inline void attr_f(Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(n, name);
    a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1, a->f = v;
}

static inline void attr_s(Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = attr(n, name);
    a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    free(a->s.data);
    a->has_s = 1, a->s.len = strlen(v), a->s.data = (uint8_t *)strdup(v);
}

static inline void attr_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v)
{
    Onnx__AttributeProto *a = attr(n, name);
    a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    free(a->ints);
    a->ints = malloc((size_t)count * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)count * sizeof *v);
    a->n_ints = (size_t)count;
}

/* Replaces t's data by `count` values of `type` in raw_data (width bytes each, from v). */
static inline void raw(Onnx__TensorProto *t, int type, const void *v, size_t width, size_t count)
{
    t->data_type = type, t->has_data_type = 1;
    free(t->raw_data.data);
    t->raw_data.data = malloc(width * count + 1);
    memcpy(t->raw_data.data, v, width * count);
    t->raw_data.len = width * count;
    t->has_raw_data = 1;
}

static inline void drop_attributes(Onnx__NodeProto *n)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        onnx__attribute_proto__free_unpacked(n->attribute[i], NULL);
    n->n_attribute = 0;
}

static inline void drop_input(Onnx__NodeProto *n, size_t k)
{
    free(n->input[k]);
    for (size_t i = k + 1; i < n->n_input; i++) n->input[i - 1] = n->input[i];
    n->n_input--;
}

typedef void (*edit_fn)(Onnx__ModelProto *m);

#define EDIT(name) static void name(Onnx__ModelProto *m)

/* A copy of the MLP (cnn 0) or the CNN (1) with `edit` made, written to `bad`. */
static inline void put_edited(int use_cnn, edit_fn edit)
{
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, use_cnn ? cnn_len : mlp_len,
                                                    (const uint8_t *)(use_cnn ? cnn : mlp));
    cr_assert_not_null(m);
    edit(m);
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(len);
    onnx__model_proto__pack(m, buf);
    onnx__model_proto__free_unpacked(m, NULL);
    FILE *f = fopen(bad, "wb");
    cr_assert(f && fwrite(buf, 1, len, f) == len);
    fclose(f);
    free(buf);
}

typedef struct bad_case {
    const char *what;
    int cnn; /* 0: the MLP (Gemm fc1, Relu, Gemm fc2), 1: the CNN */
    edit_fn edit;
    const char *want; /* in the message, besides the file */
} bad_case;

/* Each case is ELAG_ERR_INPUT, one line naming the file and `want`, nothing written. */
static inline void expect_refusals(const bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const bad_case *c = &cases[i];
        put_edited(c->cnn, c->edit);
        elag_status st = elag_import_onnx(bad, out, NULL, NULL);
        const char *msg = elag_last_error();
        cr_expect_eq(st, ELAG_ERR_INPUT, "%s: status %d: %s", c->what, st, msg);
        cr_expect(strstr(msg, bad) != NULL, "%s: the file is not named: %s", c->what, msg);
        cr_expect(strstr(msg, c->want) != NULL, "%s: '%s' not in: %s", c->what, c->want, msg);
        cr_expect_null(strchr(msg, '\n'), "%s: more than one line: %s", c->what, msg);
        cr_expect_neq(access(out, F_OK), 0, "%s: a refused import wrote %s", c->what, out);
        remove(out);
    }
}

/* Flatten becomes Reshape(x, "nowhere"): a shape that is no constant */
static inline void reshape_not_constant(Onnx__ModelProto *m)
{
    Onnx__NodeProto *fl = node(m, "Flatten");
    set_str(&fl->op_type, "Reshape");
    fl->input = realloc(fl->input, 2 * sizeof *fl->input);
    fl->input[1] = strdup("nowhere");
    fl->n_input = 2;
}

/* Flatten becomes Reshape(x, shape) with `shape` an INT64 initializer of the values */
static inline void reshape_to(Onnx__ModelProto *m, int n, const int64_t *v, int i32)
{
    reshape_not_constant(m);
    Onnx__GraphProto *g = m->graph;
    Onnx__TensorProto *t = malloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup("shape");
    t->n_dims = 1;
    t->dims = malloc(sizeof *t->dims);
    t->dims[0] = n;
    if (i32) {
        int32_t w[4];
        for (int i = 0; i < n; i++) w[i] = (int32_t)v[i];
        raw(t, ONNX__TENSOR_PROTO__DATA_TYPE__INT32, w, 4, (size_t)n);
    } else {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64, t->has_data_type = 1;
        t->int64_data = malloc((size_t)n * sizeof *t->int64_data);
        memcpy(t->int64_data, v, (size_t)n * sizeof *v);
        t->n_int64_data = (size_t)n;
    }
    g->initializer = realloc(g->initializer, (g->n_initializer + 1) * sizeof *g->initializer);
    g->initializer[g->n_initializer++] = t;
    set_str(&node(m, "Reshape")->input[1], "shape");
}

#endif
