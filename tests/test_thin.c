/*
 * Thinning (host/sparse/thin.h, `elag export --thin`): checkpoints built here with chosen
 * units zeroed (weight rows, conv filters) and chosen biases and batch-norm shifts, so
 * that every way a constant unit can go is exercised: removed as 0, folded into the next
 * layer's bias (a layer without one gains it), merged into one kept unit ahead of a
 * padded convolution or after a padded average pool, held when nothing else is exact, and
 * the classes never removed. Each case checks the widths and counts the rule gives and
 * that the thinned model's logits equal the masked model's on the test set within
 * THIN_TOL; the CLI cases check the file (smaller, "thinned" metadata, infer --verify,
 * bench model) and that bad input is one line and exit 2.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "io/atomic.h"
#include "sparse/export.h"
#include "sparse/thin.h"
#include "support/testutil.h"
#include "train/checkpoint.h"
#include "train/train.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
/* FP32 gemms of the same weights, with folded biases and merged columns rounded once:
 * these small models agree to about 1e-7. */
#define THIN_TOL 1e-5

static char *dir;
static char out_file[700];

static void setup(void)
{
    dir = elag_test_tmpdir("thin");
    cr_assert_not_null(dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(thin, .init = setup, .fini = teardown);

/* ---- building checkpoints by hand ---- */

typedef void (*edit_fn)(elag_model *m);

static float *param(elag_model *m, const char *name)
{
    const elag_param *p = elag_model_find_param(m, name);
    cr_assert_not_null(p, "no tensor %s", name);
    return m->params + p->offset; /* the cpu backend: host memory */
}

/* Zeroes unit u (weight row or filter) of layer L and sets its bias (when it has one). */
static void zero_unit(elag_model *m, const char *layer, int u, float bias)
{
    char name[128];
    snprintf(name, sizeof name, "%s.weight", layer);
    const elag_param *p = elag_model_find_param(m, name);
    cr_assert_not_null(p);
    memset(m->params + p->offset + (size_t)u * p->cols, 0, (size_t)p->cols * sizeof(float));
    snprintf(name, sizeof name, "%s.bias", layer);
    if (elag_model_find_param(m, name)) param(m, name)[u] = bias;
}

/* A model of `yaml` over `input` with seeded weights, edited, saved as a checkpoint at
 * dir/name. Biases and batch-norm statistics get nonzero values first (training would
 * give them some), so nothing is accidentally zero. */
static void make_checkpoint(const char *yaml, elag_fshape input, const char *name, edit_fn edit,
                            char *path, size_t len)
{
    elag_config c;
    OK(elag_config_parse(yaml, strlen(yaml), name, NULL, 0, &c));
    elag_backend *be;
    OK(elag_backend_open("cpu", 1, &be, NULL, 0));
    elag_model m;
    OK(elag_model_init(&m, &c, input, c.data.synthetic.classes, 1, 0, be));
    OK(elag_model_init_params(&m, 11));
    for (int j = 0; j < m.n_reg; j++) {
        const elag_param *p = &m.reg[j];
        float *v = m.params + p->offset;
        const char *suffix = strrchr(p->name, '.');
        for (size_t i = 0; i < p->count; i++) {
            float wave = (float)((i * 37 + (size_t)j * 11) % 17) / 17.0f; /* [0, 1) */
            if (strcmp(suffix, ".running_var") == 0) v[i] = 0.5f + wave;
            else if (strcmp(suffix, ".running_mean") == 0) v[i] = wave - 0.5f;
            else if (p->role == ELAG_PARAM_NORM && strstr(p->name, ".weight")) v[i] = 0.7f + wave;
            else if (p->role != ELAG_PARAM_WEIGHT) v[i] = 0.4f * (wave - 0.3f);
        }
    }
    if (edit) edit(&m);
    snprintf(path, len, "%s/%s", dir, name);
    elag_checkpoint_counters cn;
    memset(&cn, 0, sizeof cn);
    OK(elag_checkpoint_save(&m, &c, &cn, path));
    elag_model_free(&m);
    elag_backend_free(be);
}

/* Exports ckpt, thins it, and compares the logits of both on up to 256 test samples. */
static double thin_checkpoint(const char *ckpt, elag_export *e)
{
    OK(elag_export_from_checkpoint(ckpt, e));
    elag_run_data d;
    OK(elag_run_data_load_test(&e->cfg, &d));
    int n = d.test.n < 256 ? (int)d.test.n : 256;
    size_t count = (size_t)n * e->classes;
    float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
    elag_backend *be;
    OK(elag_backend_open("cpu", 1, &be, NULL, 0));
    OK(elag_export_logits(e, be, d.test.x, n, ref));
    OK(elag_export_thin(e));
    OK(elag_export_logits(e, be, d.test.x, n, got));
    double err = elag_logits_max_rel_err(got, ref, count);
    /* the masked model must not be constant (a vacuous comparison) */
    int varies = 0;
    for (size_t i = e->classes; i < count && !varies; i++) varies = ref[i] != ref[i % e->classes];
    cr_expect(varies, "the masked model's logits do not depend on the input");
    elag_backend_free(be);
    elag_run_data_free(&d);
    free(ref);
    free(got);
    return err;
}

static const elag_thin_layer *thin_of(const elag_export *e, const char *layer)
{
    for (int i = 0; i < e->n_thin; i++)
        if (strcmp(e->thin[i].name, layer) == 0) return &e->thin[i];
    cr_assert_fail("no thinning entry for %s", layer);
    return NULL;
}

static void expect_counts(const elag_export *e, const char *layer, int original, int kept,
                          int zero, int folded, int merged, int held)
{
    const elag_thin_layer *t = thin_of(e, layer);
    cr_expect(t->original == original && t->kept == kept && t->zero == zero &&
                  t->folded == folded && t->merged == merged && t->held == held,
              "%s: original %d kept %d zero %d folded %d merged %d held %d; expected %d %d %d %d "
              "%d %d",
              layer, t->original, t->kept, t->zero, t->folded, t->merged, t->held, original, kept,
              zero, folded, merged, held);
}

static const elag_export_tensor *tensor(const elag_export *e, const char *name)
{
    for (int i = 0; i < e->n_tensors; i++)
        if (strcmp(e->t[i].name, name) == 0) return &e->t[i];
    return NULL;
}

static void expect_shape(const elag_export *e, const char *name, int ndim, int64_t a, int64_t b,
                         int64_t c, int64_t d)
{
    const elag_export_tensor *t = tensor(e, name);
    cr_assert_not_null(t, "no tensor %s", name);
    int64_t want[4] = {a, b, c, d};
    int same = t->ndim == ndim;
    for (int k = 0; same && k < ndim; k++) same = t->shape[k] == want[k];
    cr_expect(same, "%s: shape [%lld, %lld, ...] (%d dims)", name, (long long)t->shape[0],
              (long long)(t->ndim > 1 ? t->shape[1] : 0), t->ndim);
}

/* ---- MLPs ---- */

static const char mlp_yaml[] =
    "name: mlp\ndevice: cpu\nseed: 1\n"
    "data: {dataset: synthetic, synthetic: {features: 16, classes: 4, test: 300}}\n"
    "model:\n  layers:\n"
    "    - {type: linear, name: fc1, out_features: 24}\n    - {type: relu, name: relu1}\n"
    "    - {type: linear, name: fc2, out_features: 12}\n    - {type: relu, name: relu2}\n"
    "    - {type: linear, name: fc3, out_features: 4}\n";

static void edit_mlp(elag_model *m)
{
    zero_unit(m, "fc1", 1, -0.5f); /* relu -> 0: removed */
    zero_unit(m, "fc1", 5, 0.0f);  /* 0: removed */
    zero_unit(m, "fc1", 7, 0.8f);  /* relu(0.8) folded into fc2's bias */
    zero_unit(m, "fc1", 20, 0.3f);
    zero_unit(m, "fc2", 0, 0.4f); /* folded into fc3's bias */
    zero_unit(m, "fc2", 3, 0.25f);
    zero_unit(m, "fc3", 2, 0.1f); /* a class: never removed */
}

Test(thin, mlp_removes_zero_rows_and_folds_nonzero_biases)
{
    char ckpt[800];
    make_checkpoint(mlp_yaml, (elag_fshape){16, 1, 1}, "mlp.st", edit_mlp, ckpt, sizeof ckpt);
    elag_export e;
    double err = thin_checkpoint(ckpt, &e);
    cr_expect_leq(err, THIN_TOL, "max relative logit difference %g", err);
    cr_assert_eq(e.n_thin, 3);
    expect_counts(&e, "fc1", 24, 20, 2, 2, 0, 0);
    /* fc2's zeroed rows: their bias now includes what fc1's folded units gave them */
    const elag_thin_layer *t2 = thin_of(&e, "fc2");
    cr_expect(t2->original == 12 && t2->kept == 12 - t2->zero - t2->folded && t2->kept <= 10 &&
                  t2->zero + t2->folded == 2,
              "fc2: kept %d zero %d folded %d", t2->kept, t2->zero, t2->folded);
    expect_counts(&e, "fc3", 4, 4, 0, 0, 0, 1);
    expect_shape(&e, "fc1.weight", 2, 20, 16, 0, 0);
    expect_shape(&e, "fc1.bias", 1, 20, 0, 0, 0);
    expect_shape(&e, "fc2.weight", 2, t2->kept, 20, 0, 0);
    expect_shape(&e, "fc3.weight", 2, 4, t2->kept, 0, 0);
    cr_expect_eq(e.cfg.model.layers[0].out_features, 20);
    cr_expect_eq(e.cfg.model.layers[4].out_features, 4);
    cr_expect_eq(e.n_tensors, 6);
    /* saved and read back: the same widths, the metadata, a smaller file */
    char thin_path[800], dense_path[800];
    snprintf(thin_path, sizeof thin_path, "%s/mlp.thin.st", dir);
    snprintf(dense_path, sizeof dense_path, "%s/mlp.dense.st", dir);
    OK(elag_export_save(&e, thin_path));
    elag_export_free(&e);
    OK(elag_export_from_checkpoint(ckpt, &e));
    OK(elag_export_save(&e, dense_path));
    elag_export_free(&e);
    struct stat a, b;
    cr_assert(stat(thin_path, &a) == 0 && stat(dense_path, &b) == 0);
    cr_expect_lt(a.st_size, b.st_size, "thinned %lld bytes, unthinned %lld", (long long)a.st_size,
                 (long long)b.st_size);
    OK(elag_export_load(thin_path, &e));
    cr_assert_eq(e.n_thin, 3);
    cr_expect(e.thin[0].kept == 20 && e.thin[0].original == 24 && e.thin[0].zero == -1);
    cr_expect(e.thin[2].kept == 4 && e.thin[2].original == 4);
    elag_export_free(&e);
}

static void edit_all_fc1(elag_model *m)
{
    for (int u = 0; u < 24; u++) zero_unit(m, "fc1", u, 0.05f * (float)(u % 5) - 0.1f);
}

Test(thin, a_layer_whose_every_unit_is_constant_keeps_one)
{
    char ckpt[800];
    make_checkpoint(mlp_yaml, (elag_fshape){16, 1, 1}, "allzero.st", edit_all_fc1, ckpt,
                    sizeof ckpt);
    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    OK(elag_export_thin(&e));
    const elag_thin_layer *t = thin_of(&e, "fc1");
    cr_expect(t->original == 24 && t->kept == 1 && t->held == 1 && t->zero + t->folded == 23,
              "fc1: kept %d held %d zero %d folded %d", t->kept, t->held, t->zero, t->folded);
    cr_expect_eq(e.cfg.model.layers[0].out_features, 1);
    expect_shape(&e, "fc2.weight", 2, 12, 1, 0, 0); /* fc2 reads the one unit fc1 kept */
    expect_counts(&e, "fc2", 12, 12, 0, 0, 0, 0);
    elag_export_free(&e);
}

static const char nobias_yaml[] =
    "name: nobias\ndevice: cpu\nseed: 1\n"
    "data: {dataset: synthetic, synthetic: {features: 16, classes: 4, test: 300}}\n"
    "model:\n  layers:\n"
    "    - {type: linear, name: fc1, out_features: 10}\n    - {type: relu, name: relu1}\n"
    "    - {type: linear, name: fc2, out_features: 4, bias: false}\n";

static void edit_nobias(elag_model *m)
{
    zero_unit(m, "fc1", 2, 0.9f);
    zero_unit(m, "fc1", 6, 0.35f);
}

Test(thin, a_fold_gives_the_next_layer_a_bias)
{
    char ckpt[800];
    make_checkpoint(nobias_yaml, (elag_fshape){16, 1, 1}, "nobias.st", edit_nobias, ckpt,
                    sizeof ckpt);
    elag_export e;
    double err = thin_checkpoint(ckpt, &e);
    cr_expect_leq(err, THIN_TOL, "max relative logit difference %g", err);
    expect_counts(&e, "fc1", 10, 8, 0, 2, 0, 0);
    cr_expect_eq(e.cfg.model.layers[2].bias, 1);
    cr_assert_eq(e.n_tensors, 4);
    cr_expect_str_eq(e.t[2].name, "fc2.weight");
    cr_expect_str_eq(e.t[3].name, "fc2.bias", "registry order: weight, then bias");
    cr_expect(e.t[3].data[0] != 0.0f, "the folded constants are in the new bias");
    elag_export_free(&e);
}

/* ---- CNNs ---- */

/* conv -> bn -> relu -> maxpool -> conv -> bn -> relu -> flatten -> linear, on (2, 8, 8) */
static const char cnn_yaml[] =
    "name: cnn\ndevice: cpu\nseed: 1\n"
    "data: {dataset: synthetic, synthetic: {features: 128, classes: 4, test: 300}}\n"
    "model:\n  layers:\n"
    "    - {type: conv2d, name: conv1, out_channels: 6, kernel: 3, padding: 1, bias: false}\n"
    "    - {type: batchnorm, name: bn1}\n    - {type: relu, name: relu1}\n"
    "    - {type: maxpool, name: pool1, kernel: 2}\n"
    "    - {type: conv2d, name: conv2, out_channels: 8, kernel: 3, padding: 1, bias: false}\n"
    "    - {type: batchnorm, name: bn2}\n    - {type: relu, name: relu2}\n"
    "    - {type: flatten, name: flatten}\n"
    "    - {type: dropout, name: drop, p: 0.3}\n"
    "    - {type: linear, name: fc, out_features: 4}\n";

/* A batch norm's shift for channel c with its mean 0: the folded bias is then beta. */
static void bn_shift(elag_model *m, const char *bn, int c, float beta)
{
    char name[128];
    snprintf(name, sizeof name, "%s.bias", bn);
    param(m, name)[c] = beta;
    snprintf(name, sizeof name, "%s.running_mean", bn);
    param(m, name)[c] = 0.0f;
}

static void edit_cnn(elag_model *m)
{
    zero_unit(m, "conv1", 0, 0.0f);
    zero_unit(m, "conv1", 2, 0.0f);
    zero_unit(m, "conv1", 4, 0.0f);
    bn_shift(m, "bn1", 0, 0.5f);  /* constant 0.5 into a padded conv: merged */
    bn_shift(m, "bn1", 2, -0.3f); /* relu -> 0: removed */
    bn_shift(m, "bn1", 4, 0.2f);  /* merged into channel 0 */
    zero_unit(m, "conv2", 1, 0.0f);
    zero_unit(m, "conv2", 5, 0.0f);
    bn_shift(m, "bn2", 1, 0.7f); /* through flatten into fc's bias: folded */
    bn_shift(m, "bn2", 5, -1.0f);
}

Test(thin, cnn_conv_bn_relu_pool_conv_flatten_linear)
{
    char ckpt[800];
    make_checkpoint(cnn_yaml, (elag_fshape){2, 8, 8}, "cnn.st", edit_cnn, ckpt, sizeof ckpt);
    elag_export e;
    double err = thin_checkpoint(ckpt, &e);
    cr_expect_leq(err, THIN_TOL, "max relative logit difference %g", err);
    expect_counts(&e, "conv1", 6, 4, 1, 0, 1, 1);
    expect_counts(&e, "conv2", 8, 6, 1, 1, 0, 0);
    expect_counts(&e, "fc", 4, 4, 0, 0, 0, 0);
    expect_shape(&e, "conv1.weight", 4, 4, 2, 3, 3);
    expect_shape(&e, "conv1.bias", 1, 4, 0, 0, 0);
    expect_shape(&e, "conv2.weight", 4, 6, 4, 3, 3);
    expect_shape(&e, "fc.weight", 2, 4, 6 * 4 * 4, 0, 0); /* channel-major flatten */
    elag_export_free(&e);

    /* through the CLI: the file, its metadata, infer --verify and bench model on it */
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' export cnn.st --thin -o cnn.thin.st", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out_file), 0);
    char *text;
    size_t len;
    OK(elag_read_file(out_file, &text, &len));
    cr_expect(strstr(text, "thinned: conv1") && strstr(text, "checked:"), "output:\n%s", text);
    free(text);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' export cnn.st --format dense -o cnn.dense.st", dir,
             ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out_file), 0);
    char a[800], b[800];
    snprintf(a, sizeof a, "%s/cnn.thin.st", dir);
    snprintf(b, sizeof b, "%s/cnn.dense.st", dir);
    struct stat sa, sb;
    cr_assert(stat(a, &sa) == 0 && stat(b, &sb) == 0);
    cr_expect_lt(sa.st_size, sb.st_size);
    OK(elag_export_load(a, &e));
    cr_expect(e.n_thin == 3 && e.thin[0].kept == 4 && e.thin[0].original == 6 &&
              e.thin[1].kept == 6 && e.thin[1].original == 8);
    elag_export_free(&e);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' infer cnn.thin.st --device cpu --verify && '%s' bench model "
             "cnn.thin.st --device cpu --batch 1,3 --repeat 2",
             dir, ELAG_CLI_PATH, ELAG_CLI_PATH);
    cr_expect_eq(elag_test_run(cmd, out_file), 0);
    /* thin first, then any format */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' export cnn.st --thin --format csr -o cnn.thin.csr.st && '%s' infer "
             "cnn.thin.csr.st --device cpu --verify",
             dir, ELAG_CLI_PATH, ELAG_CLI_PATH);
    cr_expect_eq(elag_test_run(cmd, out_file), 0);
}

/* conv (bias) -> relu -> avgpool padded -> conv unpadded -> relu -> conv 1x1 (no bias) ->
 * relu -> global_avgpool -> linear, on (1, 8, 8) */
static const char pool_yaml[] =
    "name: pool\ndevice: cpu\nseed: 1\n"
    "data: {dataset: synthetic, synthetic: {features: 64, classes: 4, test: 300}}\n"
    "model:\n  layers:\n"
    "    - {type: conv2d, name: conv1, out_channels: 4, kernel: 3, padding: 1}\n"
    "    - {type: relu, name: relu1}\n"
    "    - {type: avgpool, name: pool1, kernel: 3, stride: 1, padding: 1}\n"
    "    - {type: conv2d, name: conv2, out_channels: 5, kernel: 3}\n"
    "    - {type: relu, name: relu2}\n"
    "    - {type: conv2d, name: conv3, out_channels: 6, kernel: 1, bias: false}\n"
    "    - {type: relu, name: relu3}\n"
    "    - {type: global_avgpool, name: gap}\n"
    "    - {type: linear, name: fc, out_features: 4}\n";

static void edit_pool(elag_model *m)
{
    zero_unit(m, "conv1", 0, 0.5f);  /* v times the pool's border profile: merged */
    zero_unit(m, "conv1", 1, 0.25f); /* merged into unit 0 */
    zero_unit(m, "conv1", 2, -1.0f); /* relu -> 0 */
    zero_unit(m, "conv2", 0, 0.0f);  /* bias after conv1's... none: conv1 merged, not folded */
    param(m, "conv2.bias")[0] = 0.6f;
}

Test(thin, padded_avgpool_merges_and_an_unpadded_conv_folds)
{
    char ckpt[800];
    make_checkpoint(pool_yaml, (elag_fshape){1, 8, 8}, "pool.st", edit_pool, ckpt, sizeof ckpt);
    elag_export e;
    double err = thin_checkpoint(ckpt, &e);
    cr_expect_leq(err, THIN_TOL, "max relative logit difference %g", err);
    expect_counts(&e, "conv1", 4, 2, 1, 0, 1, 1);
    expect_counts(&e, "conv2", 5, 4, 0, 1, 0, 0); /* relu(0.6) into the 1x1 conv's new bias */
    cr_expect_eq(e.cfg.model.layers[5].bias, 1);
    expect_shape(&e, "conv2.weight", 4, 4, 2, 3, 3);
    expect_shape(&e, "conv3.weight", 4, 6, 4, 1, 1);
    expect_shape(&e, "conv3.bias", 1, 6, 0, 0, 0);
    elag_export_free(&e);
}

/* conv (bias, no relu) -> avgpool padded -> maxpool -> conv padded, on (1, 8, 8): a
 * negative constant's border profile after the max is not the positive ones' */
static const char maxneg_yaml[] =
    "name: maxneg\ndevice: cpu\nseed: 1\n"
    "data: {dataset: synthetic, synthetic: {features: 64, classes: 4, test: 300}}\n"
    "model:\n  layers:\n"
    "    - {type: conv2d, name: conv1, out_channels: 5, kernel: 3, padding: 1}\n"
    "    - {type: avgpool, name: pool1, kernel: 3, stride: 1, padding: 1}\n"
    "    - {type: maxpool, name: pool2, kernel: 2}\n"
    "    - {type: conv2d, name: conv2, out_channels: 4, kernel: 3, padding: 1}\n"
    "    - {type: relu, name: relu2}\n"
    "    - {type: global_avgpool, name: gap}\n"
    "    - {type: linear, name: fc, out_features: 4}\n";

static void edit_maxneg(elag_model *m)
{
    zero_unit(m, "conv1", 0, -0.5f); /* shaped and negative at the max pool: held */
    zero_unit(m, "conv1", 1, 0.4f);  /* the merge target */
    zero_unit(m, "conv1", 2, 0.3f);  /* merged into unit 1 */
}

Test(thin, a_negative_shaped_constant_through_max_pooling_is_held)
{
    char ckpt[800];
    make_checkpoint(maxneg_yaml, (elag_fshape){1, 8, 8}, "maxneg.st", edit_maxneg, ckpt,
                    sizeof ckpt);
    elag_export e;
    double err = thin_checkpoint(ckpt, &e);
    cr_expect_leq(err, THIN_TOL, "max relative logit difference %g", err);
    expect_counts(&e, "conv1", 5, 4, 0, 0, 1, 2);
    expect_shape(&e, "conv2.weight", 4, 4, 4, 3, 3);
    elag_export_free(&e);
}

/* ---- refusals ---- */

Test(thin, bad_input_is_one_line_and_exit_2)
{
    char ckpt[800];
    make_checkpoint(mlp_yaml, (elag_fshape){16, 1, 1}, "m.safetensors", edit_mlp, ckpt,
                    sizeof ckpt);
    const char *bad[] = {"export m.safetensors --thin --format nope", "export m.thin.st --thin -o x.st",
                         "export nothere.st --thin"};
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' export m.safetensors --thin", dir, ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, out_file), 0);
    char p[800];
    snprintf(p, sizeof p, "%s/m.thin.dense.safetensors", dir);
    struct stat st;
    cr_expect_eq(stat(p, &st), 0, "the default name of a thinned dense export");
    snprintf(cmd, sizeof cmd, "cd '%s' && cp m.thin.dense.safetensors m.thin.st", dir);
    cr_assert_eq(elag_test_run(cmd, NULL), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, bad[i]);
        cr_expect_eq(elag_test_run(cmd, out_file), 2, "%s", bad[i]);
        char *text;
        size_t len;
        OK(elag_read_file(out_file, &text, &len));
        cr_expect(len > 0 && strchr(text, '\n') == text + len - 1, "%s: one line, got:\n%s",
                  bad[i], text);
        free(text);
    }
    /* the library refuses a sparse weight and a second thinning */
    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    OK(elag_export_convert_all(&e, ELAG_SPARSE_FORMAT_CSR, 16));
    cr_expect_eq(elag_export_thin(&e), ELAG_ERR_USAGE);
    OK(elag_export_convert_all(&e, ELAG_SPARSE_FORMAT_DENSE, 16));
    OK(elag_export_thin(&e));
    cr_expect_eq(elag_export_thin(&e), ELAG_ERR_USAGE);
    /* metadata that disagrees with the graph is refused on reading */
    e.thin[0].kept = 21;
    snprintf(p, sizeof p, "%s/bad.thin.st", dir);
    OK(elag_export_save(&e, p));
    elag_export_free(&e);
    cr_expect_eq(elag_export_load(p, &e), ELAG_ERR_INPUT);
    cr_expect(strstr(elag_last_error(), "thinned") != NULL, "%s", elag_last_error());
}

/* ---- the public API ---- */

Test(thin, net_thin_checks_and_describes_each_layer)
{
    char ckpt[800];
    make_checkpoint(mlp_yaml, (elag_fshape){16, 1, 1}, "api.st", edit_mlp, ckpt, sizeof ckpt);
    elag_net_t *net;
    OK(elag_net_from_checkpoint(&net, ckpt));
    cr_expect_eq(elag_net_thin_count(net), 0);
    elag_thin_options o = ELAG_THIN_OPTIONS_INIT;
    o.version = 99;
    cr_expect_eq(elag_net_thin(net, &o, NULL), ELAG_ERR_USAGE);
    OK(elag_thin_options_init(&o, ELAG_THIN_OPTIONS_VERSION));
    o.tolerance = -1.0;
    cr_expect_eq(elag_net_thin(net, &o, NULL), ELAG_ERR_USAGE);
    o.tolerance = 0.0;
    o.samples = 100;
    elag_thin_result r = ELAG_THIN_RESULT_INIT;
    OK(elag_net_thin(net, &o, &r));
    cr_expect_eq(r.samples, 100);
    cr_expect(r.tolerance == ELAG_THIN_VERIFY_TOL && r.max_rel_error <= THIN_TOL,
              "max rel error %g, tolerance %g", r.max_rel_error, r.tolerance);
    cr_assert_eq(elag_net_thin_count(net), 3);
    elag_thin_info t;
    OK(elag_net_thin_layer(net, 0, &t));
    cr_expect(strcmp(t.layer, "fc1") == 0 && t.original == 24 && t.kept == 20 && t.zero == 2 &&
              t.folded == 2);
    cr_expect_eq(elag_net_thin_layer(net, 3, &t), ELAG_ERR_USAGE);
    elag_weight_info w;
    OK(elag_net_weight(net, 0, &w));
    cr_expect(w.rows == 20 && w.cols == 16, "fc1 is %dx%d", w.rows, w.cols);
    cr_expect_eq(elag_net_thin(net, NULL, NULL), ELAG_ERR_USAGE, "thinned already");
    elag_net_free(net);
}
