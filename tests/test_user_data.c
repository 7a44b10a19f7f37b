/*
 * The user's own data through the CLI: `data.dataset: npy` trains on .npy files, and
 * `elag infer FILE --inputs X --output Y` writes the logits of the user's inputs (.npy or
 * .safetensors, (N, features) or (N, C, H, W)), equal to what the public API computes on
 * the same inputs. Bad inputs exit 2 without writing the output (the corpus in
 * tests/data/bad/ has the file-level refusals).
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define FEATURES 16
#define CLASSES  3
#define N_TRAIN  300
#define N_TEST   61 /* odd: the last batch of --batch 16 is partial */

static char *dir;
static char out_file[600];

static int elag(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    return elag_test_run(cmd, out_file);
}

static char *at(const char *name)
{
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void expect_output(const char *needle)
{
    char *o = elag_test_slurp(out_file);
    cr_assert(strstr(o, needle) != NULL, "expected '%s' in output:\n%s", needle, o);
    free(o);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Class c's samples are centre c plus noise: learnable in a few epochs. x (n, FEATURES). */
static void make_set(float *x, int64_t *y, long n, uint64_t seed, float scale, float shift)
{
    float centres[CLASSES * FEATURES], noise[FEATURES];
    elag_test_fill_uniform(centres, CLASSES * FEATURES, -2, 2, 7);
    for (long i = 0; i < n; i++) {
        y[i] = (i * 7 + 1) % CLASSES;
        elag_test_fill_uniform(noise, FEATURES, -0.5f, 0.5f, seed + (uint64_t)i);
        for (int j = 0; j < FEATURES; j++)
            x[i * FEATURES + j] = (centres[y[i] * FEATURES + j] + noise[j]) * scale + shift;
    }
}

/* data/{train,test}_{x,y}.npy; the features as (N, 1, 4, 4) when four_d */
static void put_dataset(float scale, float shift, int four_d)
{
    static float x[N_TRAIN * FEATURES];
    static int64_t y[N_TRAIN];
    mkdir(at("data"), 0755);
    int64_t flat[2] = {N_TRAIN, FEATURES}, img[4] = {N_TRAIN, 1, 4, 4};
    make_set(x, y, N_TRAIN, 100, scale, shift);
    OK(elag_npy_write_f32(at("data/train_x.npy"), x, four_d ? 4 : 2, four_d ? img : flat));
    elag_test_put_npy_ints(at("data/train_y.npy"), "<i8", y, sizeof *y, N_TRAIN);
    flat[0] = img[0] = N_TEST;
    make_set(x, y, N_TEST, 5000, scale, shift);
    OK(elag_npy_write_f32(at("data/test_x.npy"), x, four_d ? 4 : 2, four_d ? img : flat));
    elag_test_put_npy_ints(at("data/test_y.npy"), "<i8", y, sizeof *y, N_TEST);
}

static void put_config(const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text,
             "name: mine\nseed: 2\ndevice: cpu\n"
             "data: {dataset: npy, path: data%s}\n"
             "model:\n  layers:\n"
             "    - {type: linear, out_features: 24}\n    - {type: relu}\n"
             "    - {type: linear, out_features: %d}\n"
             "train: {epochs: 4, batch_size: 20, threads: 1}\n"
             "prune: {method: gmp, target: 0.5, start: 0, end: 0.5, frequency: 5}\n",
             extra, CLASSES);
    elag_test_put(dir, "mine.yaml", text);
}

static void setup(void)
{
    dir = elag_test_tmpdir("userdata");
    cr_assert_not_null(dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(user_data, .init = setup, .fini = teardown);

static double json_number(const char *key)
{
    char *o = elag_test_slurp(out_file);
    cJSON *j = cJSON_Parse(o);
    cr_assert_not_null(j, "not JSON: %s", o);
    cJSON *v = cJSON_GetObjectItem(j, key);
    cr_assert(cJSON_IsNumber(v), "no number '%s' in %s", key, o);
    double d = v->valuedouble;
    cJSON_Delete(j);
    free(o);
    return d;
}

/* Trains mine.yaml and exports it as CSR to m.csr.safetensors. */
static void train_and_export(void)
{
    cr_assert_eq(elag("train mine.yaml --out run"), 0, "%s", elag_test_slurp(out_file));
    cr_assert_eq(elag("export run/model.safetensors --format csr -o m.csr.safetensors"), 0);
}

/* The public API's logits of inputs x (n, FEATURES) on the export. */
static float *api_logits(const float *x, long n)
{
    elag_net_t *net;
    elag_infer_t *s;
    OK(elag_net_open(&net, at("m.csr.safetensors")));
    elag_infer_options o = ELAG_INFER_OPTIONS_INIT;
    o.device = "cpu";
    o.max_batch = 7;
    OK(elag_infer_open(&s, net, NULL, &o));
    float *logits = malloc((size_t)n * CLASSES * sizeof *logits);
    OK(elag_infer_run(s, x, (int)n, logits));
    elag_infer_free(s);
    elag_net_free(net);
    return logits;
}

static void expect_logits(const char *npy, const float *want, long n)
{
    elag_npy_array a;
    OK(elag_npy_read(npy, ELAG_NPY_AS_F32, &a));
    cr_assert_eq(a.ndim, 2);
    cr_assert_eq(a.shape[0], n);
    cr_assert_eq(a.shape[1], CLASSES);
    size_t bad = elag_test_compare(npy, a.f32, want, (size_t)n * CLASSES, 1e-5, 1e-5);
    cr_assert_eq(bad, 0, "%zu logits differ", bad);
    elag_npy_free(&a);
}

Test(user_data, npy_dataset_trains_and_infer_writes_its_logits)
{
    put_dataset(1, 0, 0);
    put_config("");
    train_and_export();
    char *resolved = elag_test_slurp(at("run/config.yaml"));
    cr_assert(strstr(resolved, "normalize: false") != NULL,
              "npy data is not normalised unless asked:\n%s", resolved);
    free(resolved);
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --json"), 0);
    double acc = json_number("test_accuracy");
    cr_assert_geq(acc, 0.9, "the clusters are separable: accuracy %g", acc);

    cr_assert_eq(
        elag("infer m.csr.safetensors --device cpu --inputs data/test_x.npy --output y.npy "
             "--batch 16 --verify"),
        0);
    expect_output("wrote the logits of 61 samples");
    elag_npy_array x;
    OK(elag_npy_read(at("data/test_x.npy"), ELAG_NPY_AS_F32, &x));
    float *want = api_logits(x.f32, N_TEST);
    expect_logits(at("y.npy"), want, N_TEST);

    /* the accuracy of those logits is the test-set run's: same data, same network */
    elag_npy_array y;
    OK(elag_npy_read(at("data/test_y.npy"), ELAG_NPY_AS_I64, &y));
    long hits = 0;
    for (long i = 0; i < N_TEST; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (want[i * CLASSES + c] > want[i * CLASSES + best]) best = c;
        hits += best == y.i64[i];
    }
    cr_assert_float_eq((double)hits / N_TEST, acc, 1e-9);

    /* without --output: the predicted classes, one a line */
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --inputs data/test_x.npy"), 0);
    char *o = elag_test_slurp(out_file), *p = o;
    for (long i = 0; i < N_TEST; i++) {
        char *end;
        long c = strtol(p, &end, 10);
        cr_assert(end != p && *end == '\n', "line %ld of the predictions: %s", i, o);
        int best = 0;
        for (int k = 1; k < CLASSES; k++)
            if (want[i * CLASSES + k] > want[i * CLASSES + best]) best = k;
        cr_assert_eq(c, best, "sample %ld", i);
        p = end + 1;
    }
    free(o);
    free(want);
    elag_npy_free(&x);
    elag_npy_free(&y);
}

Test(user_data, four_d_and_safetensors_inputs_give_the_same_logits)
{
    put_dataset(1, 0, 1); /* (N, 1, 4, 4) features: the network is still an MLP */
    put_config("");
    train_and_export();
    elag_npy_array x;
    OK(elag_npy_read(at("data/test_x.npy"), ELAG_NPY_AS_F32, &x));
    cr_assert_eq(x.ndim, 4);
    float *want = api_logits(x.f32, N_TEST);
    cr_assert_eq(
        elag("infer m.csr.safetensors --device cpu --inputs data/test_x.npy --output a.npy"), 0);
    expect_logits(at("a.npy"), want, N_TEST);
    int64_t flat[2] = {N_TEST, FEATURES};
    OK(elag_npy_write_f32(at("flat.npy"), x.f32, 2, flat));
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --inputs flat.npy --output b.npy"), 0);
    expect_logits(at("b.npy"), want, N_TEST);
    elag_st_writer *w;
    OK(elag_st_writer_init(&w));
    OK(elag_st_writer_add(w, "pixels", ELAG_DTYPE_F32, 4, x.shape, x.f32));
    OK(elag_st_writer_save(w, at("x.safetensors")));
    elag_st_writer_free(w);
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --inputs x.safetensors --output c.npy"),
                 0);
    expect_logits(at("c.npy"), want, N_TEST);
    free(want);
    elag_npy_free(&x);
}

Test(user_data, normalize_applies_the_data_config)
{
    /* raw features x; the network trains on (x - 3) / 2 */
    put_dataset(2, 3, 0);
    put_config(", normalize: true, mean: 3, std: 2");
    train_and_export();
    elag_npy_array x;
    OK(elag_npy_read(at("data/test_x.npy"), ELAG_NPY_AS_F32, &x));
    for (size_t i = 0; i < x.count; i++) x.f32[i] = (x.f32[i] - 3.0f) / 2.0f;
    float *want = api_logits(x.f32, N_TEST);
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --inputs data/test_x.npy --normalize "
                      "--output n.npy"),
                 0);
    expect_logits(at("n.npy"), want, N_TEST);
    /* without --normalize the raw inputs go in as they are: other logits */
    cr_assert_eq(
        elag("infer m.csr.safetensors --device cpu --inputs data/test_x.npy --output r.npy"), 0);
    elag_npy_array r;
    OK(elag_npy_read(at("r.npy"), ELAG_NPY_AS_F32, &r));
    double diff = 0;
    for (size_t i = 0; i < r.count; i++) diff += fabs(r.f32[i] - want[i]);
    cr_assert_gt(diff, 1.0, "normalisation changed nothing");
    elag_npy_free(&r);
    free(want);
    elag_npy_free(&x);
}

Test(user_data, bad_inputs_exit_2_and_write_nothing)
{
    put_dataset(1, 0, 0);
    put_config("");
    train_and_export();
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --output y.npy"), 2);
    expect_output("--output needs --inputs");
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --normalize"), 2);
    float x[5 * 15] = {0};
    int64_t shape[2] = {5, 15};
    OK(elag_npy_write_f32(at("x15.npy"), x, 2, shape));
    elag_test_put(dir, "keep.npy", "old");
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --inputs x15.npy --output keep.npy"),
                 2);
    expect_output("x15.npy: inputs of shape (5, 15) do not fit the network: it takes (N, 16)");
    cr_assert_eq(elag("infer m.csr.safetensors --inputs x15.npy"), 2);
    char *kept = elag_test_slurp(at("keep.npy"));
    cr_assert_str_eq(kept, "old", "a failed run replaced the output");
    free(kept);
    cr_assert_eq(elag("infer m.csr.safetensors --device cpu --inputs nothere.npy --output y.npy"),
                 2);
    expect_output("nothere.npy");
    cr_assert(!exists(at("y.npy")));
    /* npy needs data.path; the config names the key */
    elag_test_put(dir, "nopath.yaml", "data: {dataset: npy}\n");
    cr_assert_eq(elag("train nopath.yaml --out r2"), 2);
    expect_output("'data.path' is required when data.dataset is npy");
}
