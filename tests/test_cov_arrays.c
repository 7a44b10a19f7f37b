/*
 * The user's arrays (elag/array.h) against a network: which shapes an MLP and a CNN take
 * (an MLP any (N, ...) of its input's values per sample, a CNN (N, C, H, W), (N, H, W)
 * when C is 1, or (N, C*H*W)), and the refusals, which name the file and both shapes;
 * .safetensors inputs (exactly one F32 tensor of at least one dimension); NULL
 * arguments; and whether a network wants normalised inputs.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/array.h"
#include "elag/elag.h"
#include "io/safetensors.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static char *dir;
static elag_net_t *mlp, *cnn; /* inputs (6, 1, 1) and (1, 1, 8) */

static elag_net_t *trained(const char *name, const char *yaml)
{
    char cfg[600], run[600], ckpt[700];
    snprintf(cfg, sizeof cfg, "%s.yaml", name);
    elag_test_put(dir, cfg, yaml);
    snprintf(cfg, sizeof cfg, "%s/%s.yaml", dir, name);
    snprintf(run, sizeof run, "%s/%s", dir, name);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    OK(elag_run_train(cfg, run, NULL, NULL));
    elag_net_t *net = NULL;
    OK(elag_net_from_checkpoint(&net, ckpt));
    return net;
}

static void setup(void)
{
    dir = elag_test_tmpdir("cov-arrays");
    mlp = trained("m", "name: m\ndevice: cpu-ref\n"
                       "data: {dataset: synthetic, synthetic: {train: 32, test: 16, features: 6, "
                       "classes: 3}}\n"
                       "model: {layers: [{type: linear, out_features: 3}]}\n"
                       "train: {epochs: 1, batch_size: 16, threads: 1}\n");
    cnn = trained("c", "name: c\ndevice: cpu-ref\n"
                       "data: {dataset: synthetic, synthetic: {train: 32, test: 16, features: 8, "
                       "classes: 3}}\n"
                       "model: {layers: [{type: conv2d, out_channels: 2, kernel: [1, 3]},\n"
                       "                 {type: flatten}, {type: linear, out_features: 3}]}\n"
                       "train: {epochs: 1, batch_size: 16, threads: 1}\n");
}

static void teardown(void)
{
    elag_net_free(mlp);
    elag_net_free(cnn);
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_arrays, .init = setup, .fini = teardown, .timeout = 120);

typedef struct shape_case {
    int cnn, ndim;
    int64_t shape[5];
    int ok;
} shape_case;

static const shape_case shapes[] = {
    {0, 2, {5, 6}, 1},          {0, 4, {5, 1, 1, 6}, 1},
    {0, 3, {5, 2, 3}, 1},       {0, 2, {0, 6}, 1},
    {0, 2, {5, 7}, 0},          {0, 3, {5, 7, 1}, 0},
    {0, 3, {5, 2, 2}, 0},       {0, 1, {6}, 0},
    {1, 4, {5, 1, 1, 8}, 1},    {1, 3, {5, 1, 8}, 1},
    {1, 2, {5, 8}, 1},          {1, 4, {5, 2, 1, 8}, 0},
    {1, 3, {5, 8, 1}, 0},       {1, 2, {5, 9}, 0},
    {1, 5, {5, 1, 1, 1, 8}, 0}, {0, 2, {-1, 6}, 0},
    {0, 2, {1LL << 32, 6}, 0},
};

Test(cov_arrays, which_shapes_each_network_takes)
{
    float data[1];
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape_case *c = &shapes[i];
        elag_array x = {c->ndim, {0}, data};
        memcpy(x.shape, c->shape, sizeof c->shape);
        long n = -7;
        elag_status st = elag_net_check_inputs(c->cnn ? cnn : mlp, &x, "x.npy", &n);
        if (c->ok) {
            cr_expect_eq(st, ELAG_OK, "case %zu: %s", i, elag_last_error());
            cr_expect_eq(n, (long)c->shape[0], "case %zu: n %ld", i, n);
            continue;
        }
        cr_expect_eq(st, ELAG_ERR_INPUT, "case %zu: status %d", i, st);
        cr_expect_eq(n, -7, "case %zu: n was written on a refusal", i);
        const char *msg = elag_last_error();
        cr_expect(strncmp(msg, "x.npy: inputs of shape (", 24) == 0, "case %zu: %s", i, msg);
        cr_expect(strstr(msg, c->cnn ? "it takes (N, 1, 1, 8) or (N, 8)"
                                     : "it takes (N, 6) (or any (N, ...) of 6 values per "
                                       "sample)") != NULL,
                  "case %zu: %s", i, msg);
    }
    /* numpy's spelling of a 1-D shape, and the default name */
    elag_array x = {1, {6}, data};
    cr_assert_eq(elag_net_check_inputs(mlp, &x, NULL, NULL), ELAG_ERR_INPUT);
    cr_expect_str_eq(elag_last_error(), "inputs: inputs of shape (6,) do not fit the network: "
                                        "it takes (N, 6) (or any (N, ...) of 6 values per "
                                        "sample)");
    cr_expect_eq(elag_net_check_inputs(NULL, &x, NULL, NULL), ELAG_ERR_USAGE);
    cr_expect(strstr(elag_last_error(), "net is NULL") != NULL, "%s", elag_last_error());
    cr_expect_eq(elag_net_check_inputs(mlp, NULL, NULL, NULL), ELAG_ERR_USAGE);
    cr_expect(strstr(elag_last_error(), "inputs is NULL") != NULL, "%s", elag_last_error());
}

Test(cov_arrays, input_shape_and_normalization)
{
    int s[3];
    elag_net_input_shape(cnn, s);
    cr_expect(s[0] == 1 && s[1] == 1 && s[2] == 8, "(%d, %d, %d)", s[0], s[1], s[2]);
    elag_net_input_shape(mlp, s);
    cr_expect(s[0] * s[1] * s[2] == 6, "(%d, %d, %d)", s[0], s[1], s[2]);
    double mean = -1, std = -1;
    /* synthetic sets are never normalised */
    cr_expect_eq(elag_net_normalization(mlp, &mean, &std), 0);
    cr_expect(mean == 0.0 && std == 1.0, "%g %g", mean, std);
    cr_expect_eq(elag_net_normalization(cnn, NULL, NULL), 0);
}

/* Writes one safetensors file of the given tensors: names[i] of dtype, shape dims. */
static void put_st(const char *name, int n, const char *const *names, const elag_dtype *dtypes,
                   const int *ndims, const int64_t (*dims)[2])
{
    static float data[64];
    for (int i = 0; i < 64; i++) data[i] = (float)i;
    elag_st_writer *w = NULL;
    OK(elag_st_writer_init(&w));
    for (int i = 0; i < n; i++)
        OK(elag_st_writer_add(w, names[i], dtypes[i], ndims[i], dims[i], data));
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    OK(elag_st_writer_save(w, path));
    elag_st_writer_free(w);
}

Test(cov_arrays, safetensors_inputs)
{
    const char *two[] = {"x", "y"};
    const elag_dtype f32[] = {ELAG_DTYPE_F32, ELAG_DTYPE_F32}, i32[] = {ELAG_DTYPE_I32};
    const int nd2[] = {2, 2}, nd0[] = {0};
    const int64_t d[][2] = {{5, 6}, {5, 6}};
    put_st("ok.safetensors", 1, two, f32, nd2, d);
    put_st("two.safetensors", 2, two, f32, nd2, d);
    put_st("int.safetensors", 1, two, i32, nd2, d);
    put_st("scalar.safetensors", 1, two, f32, nd0, d);
    put_st("none.safetensors", 0, two, f32, nd2, d);
    static const struct {
        const char *file, *want;
    } bad[] = {
        {"two.safetensors", "holds 2 tensors; inputs need exactly one"},
        {"none.safetensors", "holds 0 tensors; inputs need exactly one"},
        {"int.safetensors", "tensor 'x' is I32; inputs must be F32"},
        {"scalar.safetensors", "tensor 'x' is a scalar"},
    };
    char path[700], want[1000];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, bad[i].file);
        snprintf(want, sizeof want, "%s: %s", path, bad[i].want);
        elag_array x = ELAG_ARRAY_INIT;
        cr_expect_eq(elag_array_load(&x, path), ELAG_ERR_INPUT, "%s", bad[i].file);
        cr_expect_str_eq(elag_last_error(), want);
        cr_expect_null(x.data);
    }
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    elag_array x = ELAG_ARRAY_INIT;
    OK(elag_array_load(&x, path));
    cr_expect(x.ndim == 2 && x.shape[0] == 5 && x.shape[1] == 6 && x.data[29] == 29.0f);
    long n = 0;
    OK(elag_net_check_inputs(mlp, &x, path, &n));
    cr_expect_eq(n, 5);
    elag_array_free(&x);
    cr_expect(x.data == NULL && x.ndim == 0);
    elag_array_free(NULL);
    /* NULL arguments are usage errors naming the argument */
    cr_expect_eq(elag_array_load(NULL, path), ELAG_ERR_USAGE);
    cr_expect(strstr(elag_last_error(), "out is NULL") != NULL, "%s", elag_last_error());
    cr_expect_eq(elag_array_load(&x, NULL), ELAG_ERR_USAGE);
    cr_expect(strstr(elag_last_error(), "path is NULL") != NULL, "%s", elag_last_error());
    cr_expect_eq(elag_array_save(path, NULL), ELAG_ERR_USAGE);
    cr_expect(strstr(elag_last_error(), "array is NULL") != NULL, "%s", elag_last_error());
    cr_expect_eq(elag_array_save(NULL, &x), ELAG_ERR_USAGE);
    cr_expect(strstr(elag_last_error(), "path is NULL") != NULL, "%s", elag_last_error());
}

/* `elag infer FILE --inputs X` as a user runs it: the predictions one a line, the logits
 * to --output with --verify, one JSON object, the test set in JSON, and inputs of the
 * wrong shape (exit 2, one line naming the file, nothing written). */
Test(cov_arrays, infer_on_the_users_inputs)
{
    char exp[700], x[700], y[700], bad[700], outf[700], cmd[3000];
    snprintf(exp, sizeof exp, "%s/m.csr.safetensors", dir);
    OK(elag_net_convert(mlp, "csr", NULL));
    OK(elag_net_save(mlp, exp));
    float data[5 * 6];
    for (int i = 0; i < 30; i++) data[i] = (float)(i % 7) / 3.0f - 1.0f;
    elag_array a = {2, {5, 6}, data};
    snprintf(x, sizeof x, "%s/x.npy", dir);
    OK(elag_array_save(x, &a));
    elag_array b = {3, {5, 2, 3}, data}; /* 6 values per sample too: an MLP flattens it */
    snprintf(bad, sizeof bad, "%s/x3.npy", dir);
    OK(elag_array_save(bad, &b));
    snprintf(y, sizeof y, "%s/y.npy", dir);
    snprintf(outf, sizeof outf, "%s/infer.out", dir);
    static const struct {
        const char *args; /* after FILE; %s: x, then y */
        int rc, lines;    /* exit status, lines of output */
        const char *want;
    } runs[] = {
        {"--inputs '%s' --device cpu-ref --threads 1", 0, 5, NULL},
        {"--inputs '%s' --output '%s' --verify --batch 2 --device cpu-ref", 0, 2,
         "wrote the logits of 5 samples (5 x 3) to "},
        {"--inputs '%s' --json --verify --normalize --device cpu-ref", 0, 1,
         "\"samples\":5,\"classes\":3,\"normalized\":false"},
        {"--json --verify --device cpu-ref --batch 7", 0, 1, "\"verified\":true"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char args[1600];
        snprintf(args, sizeof args, runs[i].args, x, y);
        snprintf(cmd, sizeof cmd, "'%s' infer '%s' %s", ELAG_CLI_PATH, exp, args);
        int rc = elag_test_run(cmd, outf);
        char *o = elag_test_slurp(outf);
        int lines = 0;
        for (const char *p = o; *p; p++) lines += *p == '\n';
        cr_expect_eq(rc, runs[i].rc, "%s: exit %d: %s", args, rc, o);
        cr_expect_eq(lines, runs[i].lines, "%s: %d lines: %s", args, lines, o);
        cr_expect(!runs[i].want || strstr(o, runs[i].want), "%s: '%s' not in %s", args,
                  runs[i].want, o);
        free(o);
    }
    elag_array logits = ELAG_ARRAY_INIT;
    OK(elag_array_load(&logits, y));
    cr_expect(logits.ndim == 2 && logits.shape[0] == 5 && logits.shape[1] == 3);
    elag_array_free(&logits);
    /* (5, 2, 3) is 6 values per sample: taken; (5, 7) is not */
    snprintf(cmd, sizeof cmd, "'%s' infer '%s' --inputs '%s' --device cpu-ref", ELAG_CLI_PATH, exp,
             bad);
    cr_expect_eq(elag_test_run(cmd, NULL), 0);
    float seven[35] = {0};
    elag_array c = {2, {5, 7}, seven};
    OK(elag_array_save(bad, &c));
    remove(y);
    snprintf(cmd, sizeof cmd, "'%s' infer '%s' --inputs '%s' --output '%s' --device cpu-ref",
             ELAG_CLI_PATH, exp, bad, y);
    int rc = elag_test_run(cmd, outf);
    char *o = elag_test_slurp(outf);
    cr_expect_eq(rc, 2, "%s", o);
    cr_expect(strstr(o, "x3.npy: inputs of shape (5, 7) do not fit the network") != NULL, "%s", o);
    cr_expect_eq(strchr(o, '\n'), o + strlen(o) - 1, "one line: %s", o);
    cr_expect_neq(access(y, F_OK), 0, "a refused run wrote its --output");
    free(o);
}
