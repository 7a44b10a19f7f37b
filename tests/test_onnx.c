/*
 * ONNX export and import (host/onnx/, elag/onnx.h) without any Python: a trained model
 * exported to ONNX and imported back gives the same logits bit for bit (the same F32
 * weights through the same code), for an MLP and for a CNN with every layer kind the
 * export writes; the import refuses, with ELAG_ERR_INPUT naming the node or file, an
 * unknown operator, a truncated or corrupt file, shapes that do not fit, a branch, and a
 * tensor type it does not convert; it converts DOUBLE and FLOAT16 weights; and
 * train.init_from copies weights by position and shape and names the layer that does not
 * match. The ONNX files are mutated through the protobuf-c code the library uses.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "io/safetensors.h"
#include "onnx/onnx.pb-c.h"
#include "sparse/export.h"
#include "sparse/thin.h"
#include "support/fixtures.h"
#include "support/testutil.h"
#include "train/checkpoint.h"
#include "train/init_from.h"
#include "train/train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr)          cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define P(buf, dir, name) snprintf(buf, sizeof buf, "%s/%s", dir, name)

/* Trains cfg into dir; returns the checkpoint path in ckpt. */
static void train_into(const elag_config *cfg, const char *dir, char *ckpt, size_t len)
{
    elag_train_summary s;
    elag_test_train(cfg, dir, NULL, 0, &s);
    snprintf(ckpt, len, "%s/model.safetensors", dir);
}

static void export_onnx(const char *ckpt, const char *onnx)
{
    elag_net_t *net;
    OK(elag_net_from_checkpoint(&net, ckpt));
    OK(elag_net_save_onnx(net, onnx));
    elag_net_free(net);
}

/* Logits (n, classes) of a checkpoint's inference graph for rows x; malloc'd. */
static float *logits_of(const char *ckpt, const float *x, int n, int *classes)
{
    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    elag_backend *be;
    OK(elag_backend_open("cpu", 1, &be, NULL, 0));
    float *out = malloc((size_t)n * e.classes * sizeof *out);
    cr_assert_not_null(out);
    OK(elag_export_logits(&e, be, x, n, out));
    *classes = e.classes;
    elag_backend_free(be);
    elag_export_free(&e);
    return out;
}

/* Export, import, and the same logits on the test set's first rows. */
static void round_trip(const elag_config *cfg, const char *tag, const char *const *sets, int n_sets)
{
    char *dir = elag_test_tmpdir(tag);
    char ckpt[600], onnx[600], back[600];
    train_into(cfg, dir, ckpt, sizeof ckpt);
    P(onnx, dir, "model.onnx");
    P(back, dir, "imported.safetensors");
    export_onnx(ckpt, onnx);
    elag_import_options o = ELAG_IMPORT_OPTIONS_INIT;
    o.overrides = sets;
    o.n_overrides = n_sets;
    elag_import_result r = ELAG_IMPORT_RESULT_INIT;
    OK(elag_import_onnx(onnx, back, &o, &r));
    cr_assert_gt(r.n_layers, 0);

    elag_run_data d;
    OK(elag_run_data_load_test(cfg, &d));
    int n = d.test.n < 64 ? (int)d.test.n : 64, c1, c2;
    float *want = logits_of(ckpt, d.test.x, n, &c1);
    float *got = logits_of(back, d.test.x, n, &c2);
    cr_assert_eq(c1, c2);
    cr_assert_eq(elag_test_compare("imported logits", got, want, (size_t)n * c1, ELAG_TOL_EXACT_ABS,
                                   ELAG_TOL_EXACT_REL),
                 0, "the imported model's logits differ from the exported model's");
    free(want);
    free(got);
    elag_run_data_free(&d);
    elag_test_rmtree(dir);
    free(dir);
}

Test(onnx, round_trip_mlp)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 20);
    cfg.prune.method = ELAG_PRUNE_METHOD_GMP;
    cfg.prune.target = 0.7;
    cfg.prune.start = (elag_when){0.0, 1};
    cfg.prune.end = (elag_when){0.5, 1};
    cfg.prune.frequency = 4;
    round_trip(&cfg, "onnx-mlp", NULL, 0);
}

/* conv2d (strided, padded, no bias), batch norm folded and one not foldable (after a
 * pool: a BatchNormalization node), max and average pooling, dropout, flatten. */
static const char cnn_yaml[] =
    "name: cnn\ndevice: cpu\nseed: 5\n"
    "data: {train_limit: 512, test_limit: 64}\n"
    "model:\n  layers:\n"
    "    - {type: conv2d, out_channels: 4, kernel: [3, 5], padding: [1, 2], bias: false}\n"
    "    - {type: batchnorm}\n    - {type: relu}\n"
    "    - {type: maxpool, kernel: 3, stride: 2, padding: 1}\n"
    "    - {type: batchnorm}\n"
    "    - {type: conv2d, out_channels: 6, kernel: 3, stride: 2}\n    - {type: relu}\n"
    "    - {type: avgpool, kernel: 2, padding: 1}\n    - {type: dropout, p: 0.1}\n"
    "    - {type: flatten}\n    - {type: linear, out_features: 10}\n"
    "train: {epochs: 1, batch_size: 64, threads: 1}\n"
    "prune: {method: gmp, target: 0.6, start: 0.0, end: 0.5, frequency: 2}\n";

Test(onnx, round_trip_cnn_and_eval)
{
    elag_config cfg;
    OK(elag_config_parse(cnn_yaml, strlen(cnn_yaml), "cnn.yaml", NULL, 0, &cfg));
    const char *sets[] = {"data.test_limit=64", "device=cpu"};
    round_trip(&cfg, "onnx-cnn", sets, 2);
}

/* The checkpoint import writes evaluates like the original under `elag eval`. */
Test(onnx, imported_checkpoint_evaluates_alike)
{
    elag_config cfg;
    OK(elag_config_parse(cnn_yaml, strlen(cnn_yaml), "cnn.yaml", NULL, 0, &cfg));
    char *dir = elag_test_tmpdir("onnx-eval");
    char ckpt[600], onnx[600], back[600];
    train_into(&cfg, dir, ckpt, sizeof ckpt);
    P(onnx, dir, "m.onnx");
    P(back, dir, "m.safetensors");
    export_onnx(ckpt, onnx);
    const char *sets[] = {"data.test_limit=64", "device=cpu"};
    elag_import_options o = ELAG_IMPORT_OPTIONS_INIT;
    o.overrides = sets;
    o.n_overrides = 2;
    OK(elag_import_onnx(onnx, back, &o, NULL));
    elag_eval_options eo = ELAG_EVAL_OPTIONS_INIT;
    eo.device = "cpu";
    elag_eval_result a = ELAG_EVAL_RESULT_INIT, b = ELAG_EVAL_RESULT_INIT;
    OK(elag_run_eval(ckpt, &eo, &a));
    OK(elag_run_eval(back, &eo, &b));
    cr_assert_eq(a.test_accuracy, b.test_accuracy, "accuracy %g vs imported %g", a.test_accuracy,
                 b.test_accuracy);
    elag_test_rmtree(dir);
    free(dir);
}

/* ---- refusals: an exported MLP, mutated ---- */

typedef struct fixture {
    char *dir;
    char onnx[600], out[600], bad[600];
    Onnx__ModelProto *m;
} fixture;

static void fixture_init(fixture *f, const char *tag)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 12);
    cfg.train.epochs = 1;
    f->dir = elag_test_tmpdir(tag);
    char ckpt[600];
    train_into(&cfg, f->dir, ckpt, sizeof ckpt);
    P(f->onnx, f->dir, "m.onnx");
    P(f->out, f->dir, "out.safetensors");
    P(f->bad, f->dir, "bad.onnx");
    export_onnx(ckpt, f->onnx);
    size_t len;
    char *bytes;
    FILE *fp = fopen(f->onnx, "rb");
    cr_assert_not_null(fp);
    fseek(fp, 0, SEEK_END);
    len = (size_t)ftell(fp);
    rewind(fp);
    bytes = malloc(len);
    cr_assert_eq(fread(bytes, 1, len, fp), len);
    fclose(fp);
    f->m = onnx__model_proto__unpack(NULL, len, (uint8_t *)bytes);
    free(bytes);
    cr_assert_not_null(f->m);
    /* fc1 relu1 fc2: three nodes */
    cr_assert_eq(f->m->graph->n_node, 3);
}

static void fixture_write(fixture *f)
{
    size_t len = onnx__model_proto__get_packed_size(f->m);
    uint8_t *buf = malloc(len);
    onnx__model_proto__pack(f->m, buf);
    FILE *fp = fopen(f->bad, "wb");
    cr_assert_eq(fwrite(buf, 1, len, fp), len);
    fclose(fp);
    free(buf);
}

static void fixture_free(fixture *f)
{
    onnx__model_proto__free_unpacked(f->m, NULL);
    elag_test_rmtree(f->dir);
    free(f->dir);
}

/* Imports f->bad and expects ELAG_ERR_INPUT with every needle in the message. */
static void refused(fixture *f, const char *n1, const char *n2)
{
    elag_status st = elag_import_onnx(f->bad, f->out, NULL, NULL);
    cr_assert_eq(st, ELAG_ERR_INPUT, "status %d: %s", st, elag_last_error());
    const char *msg = elag_last_error();
    cr_assert_not_null(strstr(msg, n1), "'%s' not in: %s", n1, msg);
    if (n2) cr_assert_not_null(strstr(msg, n2), "'%s' not in: %s", n2, msg);
    cr_assert_null(strchr(msg, '\n'), "more than one line: %s", msg);
    FILE *fp = fopen(f->out, "rb");
    cr_assert_null(fp, "a refused import wrote %s", f->out);
}

static void replace_string(char **field, const char *text)
{
    free(*field);
    *field = strdup(text);
}

Test(onnx, refuses_unknown_operator)
{
    fixture f;
    fixture_init(&f, "onnx-op");
    replace_string(&f.m->graph->node[1]->op_type, "Sigmoid");
    fixture_write(&f);
    refused(&f, "unsupported operator Sigmoid", "node 'relu1'");
    fixture_free(&f);
}

Test(onnx, refuses_truncated_and_corrupt_files)
{
    fixture f;
    fixture_init(&f, "onnx-trunc");
    char *bytes = elag_test_slurp(f.onnx);
    FILE *in = fopen(f.onnx, "rb");
    fseek(in, 0, SEEK_END);
    long len = ftell(in);
    fclose(in);
    for (long cut = len - 7; cut > 0; cut = cut * 2 / 3) { /* ends inside a message */
        FILE *fp = fopen(f.bad, "wb");
        cr_assert_eq(fwrite(bytes, 1, (size_t)cut, fp), (size_t)cut);
        fclose(fp);
        elag_status st = elag_import_onnx(f.bad, f.out, NULL, NULL);
        cr_assert_eq(st, ELAG_ERR_INPUT, "cut at %ld of %ld: status %d", cut, len, st);
        cr_assert_not_null(strstr(elag_last_error(), f.bad), "%s", elag_last_error());
    }
    elag_test_put(f.dir, "bad.onnx", "name: not protobuf at all\n");
    refused(&f, "not an ONNX model", NULL);
    free(bytes);
    fixture_free(&f);
}

Test(onnx, refuses_shapes_that_do_not_fit)
{
    fixture f;
    fixture_init(&f, "onnx-shape");
    /* fc2's weight (4, 12) declared (4, 11): it no longer takes fc1's 12 outputs */
    Onnx__TensorProto *w = NULL;
    for (size_t i = 0; i < f.m->graph->n_initializer; i++)
        if (strcmp(f.m->graph->initializer[i]->name, "fc2.weight") == 0)
            w = f.m->graph->initializer[i];
    cr_assert_not_null(w);
    w->dims[1] = 11;
    fixture_write(&f);
    refused(&f, "node 'fc2' (Gemm)", "does not take 12 input features");
    w->dims[1] = 12;
    /* a graph input of 3 dimensions */
    Onnx__TensorShapeProto *shape = f.m->graph->input[0]->type->tensor_type->shape;
    cr_assert_eq(shape->n_dim, 2);
    /* a dimension array of our own for the write (the unpacked one holds 2 entries; writing
     * a third past it is what ASan caught), then the original back for fixture_free */
    Onnx__TensorShapeProto__Dimension *dims3[3] = {shape->dim[0], shape->dim[1], shape->dim[1]};
    Onnx__TensorShapeProto__Dimension **dims2 = shape->dim;
    shape->dim = dims3;
    shape->n_dim = 3;
    fixture_write(&f);
    shape->dim = dims2;
    shape->n_dim = 2;
    refused(&f, "has 3 dimensions", NULL);
    fixture_free(&f);
}

Test(onnx, refuses_a_branch)
{
    fixture f;
    fixture_init(&f, "onnx-branch");
    /* fc2 reads the graph input, not relu1's output */
    replace_string(&f.m->graph->node[2]->input[0], "input");
    fixture_write(&f);
    refused(&f, "node 'fc2'", "no branches");
    fixture_free(&f);
}

static Onnx__TensorProto *initializer(fixture *f, const char *name)
{
    for (size_t i = 0; i < f->m->graph->n_initializer; i++)
        if (strcmp(f->m->graph->initializer[i]->name, name) == 0)
            return f->m->graph->initializer[i];
    cr_assert_fail("no initializer %s", name);
    return NULL;
}

/* The F32 values of tensor `name` in checkpoint path. */
static void read_tensor(const char *path, const char *name, float *out, size_t n)
{
    elag_st_file *sf;
    OK(elag_st_open(path, &sf));
    const elag_st_tensor *t = elag_st_find(sf, name);
    cr_assert_not_null(t, "no %s in %s", name, path);
    cr_assert_eq(t->nbytes, n * sizeof(float));
    memcpy(out, t->data, t->nbytes);
    elag_st_close(sf);
}

Test(onnx, converts_double_and_float16_refuses_int8)
{
    fixture f;
    fixture_init(&f, "onnx-types");
    /* fc1.weight as DOUBLE: converted back to the same floats */
    Onnx__TensorProto *w = initializer(&f, "fc1.weight");
    size_t n = w->raw_data.len / 4;
    float *w32 = malloc(n * sizeof *w32), *got = malloc(n * sizeof *got);
    double *w64 = malloc(n * sizeof *w64);
    memcpy(w32, w->raw_data.data, n * 4);
    for (size_t i = 0; i < n; i++) w64[i] = w32[i];
    free(w->raw_data.data);
    w->raw_data.data = (uint8_t *)w64;
    w->raw_data.len = n * 8;
    w->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    /* fc2.bias (4) as FLOAT16 bit patterns in int32_data: 1, -2.5, 2^-14, 2^-24 (subnormal) */
    Onnx__TensorProto *b = initializer(&f, "fc2.bias");
    static const uint16_t half[4] = {0x3c00, 0xc100, 0x0400, 0x0001};
    const float want_b[4] = {1.0f, -2.5f, 6.103515625e-05f, 5.9604644775390625e-08f};
    free(b->raw_data.data);
    b->has_raw_data = 0;
    b->raw_data.data = NULL;
    b->raw_data.len = 0;
    b->n_int32_data = 4;
    b->int32_data = malloc(4 * sizeof(int32_t));
    for (int i = 0; i < 4; i++) b->int32_data[i] = half[i];
    b->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    fixture_write(&f);
    OK(elag_import_onnx(f.bad, f.out, NULL, NULL));
    read_tensor(f.out, "fc1.weight", got, n);
    cr_assert_eq(memcmp(got, w32, n * sizeof *got), 0, "DOUBLE weights changed in conversion");
    float gb[4];
    read_tensor(f.out, "fc2.bias", gb, 4);
    cr_assert_eq(elag_test_compare("float16 bias", gb, want_b, 4, 0, 0), 0);
    /* INT8 weights are refused, naming the type */
    remove(f.out);
    b->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
    fixture_write(&f);
    refused(&f, "'fc2.bias' is INT8", "node 'fc2'");
    /* a NaN (FLOAT16 0x7e00) is refused, naming the tensor and the index */
    b->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    b->int32_data[2] = 0x7e00;
    fixture_write(&f);
    refused(&f, "'fc2.bias' holds NaN at 2", NULL);
    free(w32);
    free(got);
    fixture_free(&f);
}

/* The CLI: exit 2 and one line for a bad file; 0 and a checkpoint for a good one. */
Test(onnx, cli_import_and_export)
{
    fixture f;
    fixture_init(&f, "onnx-cli");
    char cmd[2400], log[700];
    P(log, f.dir, "log");
    snprintf(cmd, sizeof cmd, "'%s' import '%s' -o '%s'", ELAG_CLI_PATH, f.onnx, f.out);
    cr_assert_eq(elag_test_run(cmd, log), 0, "%s", elag_test_slurp(log));
    char *text = elag_test_slurp(log);
    cr_assert_not_null(strstr(text, "fc1      linear 12 <- Gemm 'fc1'"), "%s", text);
    free(text);
    replace_string(&f.m->graph->node[1]->op_type, "Tanh");
    fixture_write(&f);
    snprintf(cmd, sizeof cmd, "'%s' import '%s' -o '%s' --force 2>&1 >/dev/null", ELAG_CLI_PATH,
             f.bad, f.out);
    cr_assert_eq(elag_test_run(cmd, log), 2);
    text = elag_test_slurp(log);
    cr_assert_not_null(strstr(text, "unsupported operator Tanh"), "%s", text);
    cr_assert_eq(strchr(text, '\n'), text + strlen(text) - 1, "not one line: %s", text);
    free(text);
    /* export --format onnx writes next to the checkpoint by default */
    snprintf(cmd, sizeof cmd, "'%s' export '%s/model.safetensors' --format onnx", ELAG_CLI_PATH,
             f.dir);
    cr_assert_eq(elag_test_run(cmd, log), 0, "%s", elag_test_slurp(log));
    char def[700];
    P(def, f.dir, "model.onnx");
    FILE *fp = fopen(def, "rb");
    cr_assert_not_null(fp, "no %s", def);
    fclose(fp);
    fixture_free(&f);
}

/* ---- train.init_from ---- */

/* A model of cfg started from cfg->train.init_from; its parameters in *out (host). */
static elag_status init_model(const elag_config *cfg, elag_model *m, elag_backend *be)
{
    elag_fshape in = {16, 1, 1};
    OK(elag_model_init(m, cfg, in, 4, 8, 1, be));
    OK(elag_model_init_params(m, 99)); /* another seed than the checkpoint's */
    return elag_train_init_from(m, cfg);
}

Test(onnx, init_from_copies_weights_by_position)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 10);
    cfg.train.epochs = 1;
    char *dir = elag_test_tmpdir("onnx-init");
    char ckpt[600];
    train_into(&cfg, dir, ckpt, sizeof ckpt);
    elag_backend *be;
    OK(elag_backend_open("cpu", 1, &be, NULL, 0));
    /* the same shapes under other names */
    elag_config c2 = cfg;
    snprintf(c2.model.layers[0].name, ELAG_NAME_LEN, "hidden");
    snprintf(c2.model.layers[2].name, ELAG_NAME_LEN, "out");
    snprintf(c2.train.init_from, sizeof c2.train.init_from, "%s", ckpt);
    elag_model *m = calloc(1, sizeof *m);
    OK(init_model(&c2, m, be));
    const char *pairs[4][2] = {{"hidden.weight", "fc1.weight"},
                               {"hidden.bias", "fc1.bias"},
                               {"out.weight", "fc2.weight"},
                               {"out.bias", "fc2.bias"}};
    for (int i = 0; i < 4; i++) {
        const elag_param *p = elag_model_find_param(m, pairs[i][0]);
        cr_assert_not_null(p);
        float *want = malloc(p->count * sizeof *want), *got = malloc(p->count * sizeof *got);
        read_tensor(ckpt, pairs[i][1], want, p->count);
        OK(elag_be_to_host(be, got, m->params + p->offset, p->count * sizeof *got));
        cr_assert_eq(memcmp(got, want, p->count * sizeof *got), 0, "%s differs from %s",
                     pairs[i][0], pairs[i][1]);
        free(want);
        free(got);
    }
    elag_model_free(m);

    /* a wider hidden layer: refused, naming it */
    elag_config c3 = c2;
    c3.model.layers[0].out_features = 11;
    memset(m, 0, sizeof *m);
    elag_status st = init_model(&c3, m, be);
    cr_assert_eq(st, ELAG_ERR_INPUT, "%s", elag_last_error());
    cr_assert_not_null(strstr(elag_last_error(), "layer 'hidden'"), "%s", elag_last_error());
    elag_model_free(m);
    /* one layer more: refused */
    elag_config c4 = c2;
    c4.model.layers[3] = c4.model.layers[1];
    c4.model.layers[4] = c4.model.layers[2];
    snprintf(c4.model.layers[3].name, ELAG_NAME_LEN, "relu2");
    snprintf(c4.model.layers[4].name, ELAG_NAME_LEN, "out2");
    c4.model.layers[2].out_features = 4;
    c4.model.n_layers = 5;
    memset(m, 0, sizeof *m);
    st = init_model(&c4, m, be);
    cr_assert_eq(st, ELAG_ERR_INPUT, "%s", elag_last_error());
    cr_assert_not_null(strstr(elag_last_error(), "'out2'"), "%s", elag_last_error());
    elag_model_free(m);
    free(m);
    elag_backend_free(be);
    elag_test_rmtree(dir);
    free(dir);
}

/* Transposes initializer t (rows, cols) F32 in place: (cols, rows). */
static void transpose_init(Onnx__TensorProto *t)
{
    int64_t r = t->dims[0], c = t->dims[1];
    float *a = malloc((size_t)(r * c) * sizeof *a), *b = malloc((size_t)(r * c) * sizeof *b);
    memcpy(a, t->raw_data.data, (size_t)(r * c) * sizeof *a);
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) b[j * r + i] = a[i * c + j];
    memcpy(t->raw_data.data, b, (size_t)(r * c) * sizeof *b);
    t->dims[0] = c;
    t->dims[1] = r;
    free(a);
    free(b);
}

/* Logits of checkpoint path on the small config's first test rows. */
static float *small_logits(const char *path, int *classes)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 12);
    elag_run_data d;
    OK(elag_run_data_load_test(&cfg, &d));
    float *l = logits_of(path, d.test.x, 32, classes);
    elag_run_data_free(&d);
    return l;
}

/* The same network as Gemm (transB = 0 with W stored (in, out)) and as MatMul + Add, the
 * forms other exporters write: the same logits as elag's own Gemm (transB = 1). */
Test(onnx, imports_gemm_untransposed_and_matmul_add)
{
    fixture f;
    fixture_init(&f, "onnx-matmul");
    char ref[700];
    P(ref, f.dir, "ref.safetensors");
    OK(elag_import_onnx(f.onnx, ref, NULL, NULL));
    int c;
    float *want = small_logits(ref, &c);

    /* fc2: Gemm with transB = 0 */
    transpose_init(initializer(&f, "fc2.weight"));
    Onnx__NodeProto *g = f.m->graph->node[2];
    cr_assert_str_eq(g->attribute[0]->name, "transB");
    g->attribute[0]->i = 0;
    /* fc1: MatMul(input, W (in, out)) then Add(bias) */
    transpose_init(initializer(&f, "fc1.weight"));
    Onnx__NodeProto *mm = f.m->graph->node[0];
    replace_string(&mm->op_type, "MatMul");
    char *bias = mm->input[2], *out = mm->output[0];
    mm->n_input = 2;
    mm->output[0] = strdup("fc1.product");
    Onnx__NodeProto *add = malloc(sizeof *add);
    onnx__node_proto__init(add);
    add->name = strdup("fc1_add");
    add->op_type = strdup("Add");
    add->n_input = 2;
    add->input = malloc(2 * sizeof(char *));
    add->input[0] = bias; /* the constant first: Add is commutative */
    add->input[1] = strdup("fc1.product");
    add->n_output = 1;
    add->output = malloc(sizeof(char *));
    add->output[0] = out;
    Onnx__GraphProto *gr = f.m->graph;
    gr->node = realloc(gr->node, (gr->n_node + 1) * sizeof *gr->node);
    memmove(gr->node + 2, gr->node + 1, (gr->n_node - 1) * sizeof *gr->node);
    gr->node[1] = add;
    gr->n_node++;
    fixture_write(&f);
    OK(elag_import_onnx(f.bad, f.out, NULL, NULL));
    float *got = small_logits(f.out, &c);
    cr_assert_eq(elag_test_compare("MatMul+Add / Gemm transB=0 logits", got, want, (size_t)32 * c,
                                   ELAG_TOL_EXACT_ABS, ELAG_TOL_EXACT_REL),
                 0);
    free(want);
    free(got);
    fixture_free(&f);
}
