/*
 * Exports end to end (host/sparse/export.h, infer.h, `elag export | infer | bench
 * model`): a tiny model trained here with GMP to 80% is exported in every format; the
 * CSR export holds exactly the checkpoint's masked weights and is as large as
 * 8 nnz + 4 (rows + 1) per layer plus biases plus the header; inference gives the
 * same test accuracy as evaluating the checkpoint and logits within 1e-4 of the dense
 * masked model; corrupt exports (truncated, wrong dtype, indptr not monotone, index out
 * of range) are refused with exit 2 and a message naming the file and tensor; `auto` on a
 * device that refuses Blocked-ELL (a stub backend) skips that format and says why.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/atomic.h"
#include "io/safetensors.h"
#include "sparse/export.h"
#include "sparse/infer.h"
#include "support/fixtures.h"
#include "support/testutil.h"
#include "train/checkpoint.h"
#include "train/train.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static char *dir;
static char ckpt[800], out_file[700];
static elag_config cfg;

/* Trains fc1(24) relu1 fc2(4) on synthetic data, GMP to 80%, into a fresh folder. */
static void train_tiny(void)
{
    dir = elag_test_tmpdir("export");
    cr_assert_not_null(dir);
    elag_test_small_config(&cfg, 24);
    cfg.prune.method = ELAG_PRUNE_METHOD_GMP;
    cfg.prune.target = 0.8;
    cfg.prune.start = (elag_when){0.0, 1};
    cfg.prune.end = (elag_when){0.5, 1};
    cfg.prune.frequency = 4;
    elag_train_summary s;
    elag_test_train(&cfg, dir, NULL, 0, &s);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
}

static void remove_tiny(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(export, .init = train_tiny, .fini = remove_tiny);

static void export_as(const char *spec_text, const char *path)
{
    elag_export_spec spec;
    OK(elag_export_parse_spec(spec_text, &spec));
    elag_export e;
    OK(elag_export_from_checkpoint(ckpt, &e));
    if (spec.is_auto) {
        elag_backend *be;
        elag_export_timing tm[ELAG_MAX_PARAMS];
        OK(elag_backend_open("cpu", 2, &be, NULL, 0));
        OK(elag_export_choose_auto(&e, be, 64, tm));
        for (int i = 0; i < e.n_tensors; i++)
            if (e.t[i].is_weight)
                cr_expect(tm[i].dense_ms >= 0 && tm[i].csr_ms >= 0, "tensor %d timed", i);
        elag_backend_free(be);
    } else {
        OK(elag_export_convert_all(&e, spec.format, spec.block));
    }
    OK(elag_export_save(&e, path));
    elag_export_free(&e);
}

/* Test accuracy of the checkpoint as `elag eval` computes it. */
static double eval_accuracy(elag_backend *be, const elag_dataset *test)
{
    elag_checkpoint ck;
    OK(elag_checkpoint_open(ckpt, &ck));
    elag_model m;
    OK(elag_model_init(&m, &ck.cfg, ck.input, ck.classes, 100, 0, be));
    OK(elag_checkpoint_restore(&ck, &m, 0));
    double loss, acc;
    OK(elag_evaluate(&m, test, &loss, &acc));
    elag_model_free(&m);
    elag_checkpoint_close(&ck);
    return acc;
}

Test(export, csr_holds_exactly_the_masked_weights)
{
    char path[700];
    snprintf(path, sizeof path, "%s/m.csr.safetensors", dir);
    export_as("csr", path);
    elag_st_file *ck, *ex;
    OK(elag_st_open(ckpt, &ck));
    OK(elag_st_open(path, &ex));
    cr_expect_str_eq(elag_st_meta(ex, "format"), ELAG_EXPORT_FORMAT);
    cr_expect_str_eq(elag_st_meta(ex, "fc1.weight.format"), "csr");
    cr_expect_str_eq(elag_st_meta(ex, "fc1.weight.shape"), "[24, 16]");
    cr_expect_not_null(elag_st_meta(ex, "config"));
    cJSON *g = cJSON_Parse(elag_st_meta(ex, "graph"));
    cr_assert(cJSON_IsArray(g) && cJSON_GetArraySize(g) == 3, "graph lists fc1 relu1 fc2");
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 1), "type")->valuestring, "relu");
    cJSON_Delete(g);
    elag_export e;
    OK(elag_export_load(path, &e));
    int64_t data_bytes = 0;
    const char *names[] = {"fc1", "fc2"};
    const int ti[] = {0, 2}; /* registry: fc1.weight fc1.bias fc2.weight fc2.bias */
    for (int k = 0; k < 2; k++) {
        const elag_export_tensor *l = &e.t[ti[k]];
        cr_assert(l->is_weight);
        cr_assert_eq(strncmp(l->name, names[k], 3), 0, "%s", l->name);
        cr_assert_eq(l->w.format, ELAG_SPARSE_FORMAT_CSR);
        char name[64];
        snprintf(name, sizeof name, "%s.weight", names[k]);
        const elag_st_tensor *w = elag_st_find(ck, name);
        snprintf(name, sizeof name, "%s.mask", names[k]);
        const elag_st_tensor *m = elag_st_find(ck, name);
        cr_assert(w && m);
        size_t n = (size_t)l->w.rows * l->w.cols;
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        const float *wd = w->data;
        const uint8_t *md = m->data;
        int64_t nz = 0;
        for (size_t i = 0; i < n; i++) {
            want[i] = md[i] ? wd[i] : 0.0f;
            nz += want[i] != 0.0f;
        }
        OK(elag_sparse_to_dense(&l->w, got));
        cr_expect_eq(memcmp(got, want, n * sizeof *got), 0, "%s: CSR != masked weights", l->name);
        cr_expect_eq(l->w.nnz, nz);
        cr_expect_lt(nz, (int64_t)n / 2, "%s is pruned", l->name);
        data_bytes += 8 * nz + 4 * ((int64_t)l->w.rows + 1) + 4 * l->w.rows; /* + bias */
        free(want), free(got);
    }
    /* size: the 8-byte length, the JSON header, then exactly the arrays */
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    cr_assert_eq(fread(len8, 1, 8, f), 8);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | len8[i];
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_expect_eq((int64_t)sb.st_size, 8 + (int64_t)hlen + data_bytes,
                 "file %lld bytes, header %llu + data %lld", (long long)sb.st_size,
                 (unsigned long long)hlen, (long long)data_bytes);
    elag_export_free(&e);
    elag_st_close(ck);
    elag_st_close(ex);
}

Test(export, every_format_infers_like_eval)
{
    const char *specs[] = {"dense", "csr", "bell", "bell:32", "bell:5", "auto"};
    elag_backend *be;
    OK(elag_backend_open("cpu", 2, &be, NULL, 0));
    elag_run_data data;
    OK(elag_run_data_load(&cfg, &data));
    double want = eval_accuracy(be, &data.test);
    cr_expect_gt(want, 0.8, "the tiny model learned (accuracy %.3f)", want);
    size_t count = (size_t)data.test.n * 4;
    float *dense_logits = NULL;
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        char path[700];
        snprintf(path, sizeof path, "%s/m.%zu.safetensors", dir, k);
        export_as(specs[k], path);
        elag_export e;
        OK(elag_export_load(path, &e));
        for (int pass = 0; pass < 2; pass++) { /* batch 64 and 1000 (> test set) */
            int batch = pass ? 1000 : 64;
            elag_sparse_net net;
            elag_infer_stats st;
            float *logits = malloc(count * sizeof *logits);
            OK(elag_sparse_net_init(&net, &e, be, batch, 0));
            OK(elag_sparse_net_evaluate(&net, &data.test, batch, &st, logits));
            elag_sparse_net_free(&net);
            cr_expect_eq(st.accuracy, want, "%s batch %d: infer %.6f, eval %.6f", specs[k], batch,
                         st.accuracy, want);
            cr_expect_eq(st.samples, data.test.n);
            cr_expect(st.latency_ms_median > 0 && st.latency_ms_p99 >= st.latency_ms_median);
            if (!dense_logits) {
                dense_logits = logits; /* the dense export: the reference */
                continue;
            }
            double err = elag_logits_max_rel_err(logits, dense_logits, count);
            cr_expect_leq(err, ELAG_INFER_VERIFY_TOL, "%s: max rel err %g", specs[k], err);
            free(logits);
        }
        double sp;
        elag_export_sparsity(&e, NULL, NULL, &sp);
        cr_expect_float_eq(sp, 0.8, 0.01, "%s: sparsity %.4f", specs[k], sp);
        elag_export_free(&e);
    }
    free(dense_logits);
    elag_run_data_free(&data);
    elag_backend_free(be);
}

/* ---- through the CLI ---- */

static int elag(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    return elag_test_run(cmd, out_file);
}

static char *output(void)
{
    char *text;
    size_t len;
    if (elag_read_file(out_file, &text, &len) != ELAG_OK) return strdup("");
    return text;
}

static void expect_output(const char *needle)
{
    char *o = output();
    cr_expect(strstr(o, needle) != NULL, "expected '%s' in output:\n%s", needle, o);
    free(o);
}

Test(export, cli_export_infer_bench_model)
{
    cr_assert_eq(elag("export model.safetensors --format csr -o m.csr.st"), 0);
    expect_output("fc1");
    cr_assert_eq(elag("infer m.csr.st --device cpu --verify --json --batch 50"), 0);
    char *o = output();
    cJSON *j = cJSON_Parse(o);
    cr_assert_not_null(j, "infer --json printed: %s", o);
    const char *keys[] = {"test_accuracy", "samples_per_second", "sparsity", "latency_ms_median",
                          "latency_ms_p99", "batch", "device", "verified"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        cr_expect_not_null(cJSON_GetObjectItem(j, keys[k]), "infer --json lacks %s", keys[k]);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(j, "verified")));
    cJSON_Delete(j);
    free(o);
    /* batches that are a multiple of the backend's tile run tile-major (sparse_mm_tiled:
     * 128 columns on cpu, 8 on cpu-ref): --verify holds the logits to the dense model's */
    cr_assert_eq(elag("infer m.csr.st --device cpu --verify --batch 128"), 0);
    expect_output("(tolerance 0.0001): ok");
    cr_assert_eq(elag("infer m.csr.st --device cpu-ref --verify --batch 16"), 0);
    expect_output("(tolerance 0.0001): ok");
    cr_assert_eq(elag("export model.safetensors --format bell:8"), 0);
    expect_output("model.bell8.safetensors");
    cr_assert_eq(elag("infer model.bell8.safetensors --device cpu"), 0);
    expect_output("test accuracy");
    cr_assert_eq(elag("export model.safetensors --format auto --device cpu -o m.auto.st"), 0);
    expect_output("csr_ms");
    cr_assert_eq(elag("bench model m.csr.st --device cpu --batch 1,7 --repeat 3 --json"), 0);
    expect_output("\"speedup\"");
    cr_assert_eq(elag("export --help"), 0);
    cr_assert_eq(elag("infer --help"), 0);
    cr_assert_eq(elag("bench model --help"), 0);
    cr_assert_eq(elag("export model.safetensors --format csv"), 2);
    expect_output("--format");
    cr_assert_eq(elag("export model.safetensors"), 2);
    cr_assert_eq(elag("infer nothere.st"), 2);
    cr_assert_eq(elag("infer m.csr.st --batch 0"), 2);
    cr_assert_eq(elag("export model.safetensors --format csr -o ./model.safetensors"), 2);
    expect_output("is MODEL itself");
    cr_assert_eq(elag("export model.safetensors --format csr -o ./model.safetensors --force"), 2,
                 "--force never replaces MODEL itself");
    expect_output("is MODEL itself");
    /* an existing output is replaced only with --force; refused with one line, untouched */
    char path[900], *before, *after;
    size_t before_len, after_len;
    snprintf(path, sizeof path, "%s/m.csr.st", dir);
    OK(elag_read_file(path, &before, &before_len));
    cr_assert_eq(elag("export model.safetensors --format dense -o m.csr.st"), 2);
    char *msg = output();
    cr_assert_str_eq(msg, "elag export: m.csr.st exists; pass --force to replace it (see 'elag "
                          "export --help')\n");
    free(msg);
    OK(elag_read_file(path, &after, &after_len));
    cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0,
              "a refused export changed the existing file");
    free(after);
    cr_assert_eq(elag("export model.safetensors --format dense -o m.csr.st --force"), 0);
    OK(elag_read_file(path, &after, &after_len));
    cr_assert(after_len != before_len || memcmp(before, after, before_len) != 0,
              "--force did not replace the file");
    free(after);
    free(before);
    cr_assert_eq(elag("export model.safetensors --format bell:8"), 2, "default name exists");
    expect_output("model.bell8.safetensors exists; pass --force");
    cr_assert_eq(elag("eval model.safetensors --device cpu"), 0, "the checkpoint is untouched");
    cr_assert_eq(elag("infer model.safetensors"), 2, "a checkpoint is not an export");
    expect_output("not an elag export");
}

/* Copies `src` to `dst` inside dir, applying `edit` to the bytes first. */
static void write_variant(const char *src, const char *dst, size_t keep,
                          void (*edit)(unsigned char *buf, size_t len))
{
    char in[800], out[800];
    snprintf(in, sizeof in, "%s/%s", dir, src);
    snprintf(out, sizeof out, "%s/%s", dir, dst);
    char *buf;
    size_t len;
    OK(elag_read_file(in, &buf, &len));
    if (edit) edit((unsigned char *)buf, len);
    OK(elag_atomic_write(out, buf, keep && keep < len ? keep : len));
    free(buf);
}

/* Byte offset in the file of tensor `name`'s data. */
static size_t data_offset(const unsigned char *buf, const char *name)
{
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    char *json = strndup((const char *)buf + 8, hlen);
    cJSON *h = cJSON_Parse(json);
    cJSON *offs = cJSON_GetObjectItem(cJSON_GetObjectItem(h, name), "data_offsets");
    cr_assert_not_null(offs, "no tensor %s", name);
    size_t at = 8 + hlen + (size_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
    cJSON_Delete(h);
    free(json);
    return at;
}

static void edit_dtype(unsigned char *buf, size_t len)
{
    (void)len;
    char *p = strstr((char *)buf + 8, "\"fc1.weight.indices\":{\"dtype\":\"I32\"");
    cr_assert_not_null(p, "header layout");
    memcpy(strstr(p, "I32"), "F32", 3);
}

static void edit_indptr(unsigned char *buf, size_t len)
{
    (void)len;
    int32_t v[3];
    size_t at = data_offset(buf, "fc1.weight.indptr");
    memcpy(v, buf + at, sizeof v);
    v[1] = v[2] + 1; /* row 0 ends after row 1 */
    memcpy(buf + at, v, sizeof v);
}

static void edit_index(unsigned char *buf, size_t len)
{
    (void)len;
    int32_t big = 16; /* fc1 has 16 inputs: 0..15 */
    memcpy(buf + data_offset(buf, "fc1.weight.indices"), &big, sizeof big);
}

/* The weight's nnz metadata off by one (same length: the last digit changes). */
static void edit_nnz(unsigned char *buf, size_t len)
{
    (void)len;
    char *p = strstr((char *)buf + 8, "\"fc1.weight.nnz\":\"");
    cr_assert_not_null(p, "header layout");
    p += strlen("\"fc1.weight.nnz\":\"");
    while (p[1] != '"') p++;
    *p = *p == '9' ? '8' : (char)(*p + 1);
}

Test(export, corrupt_exports_exit_2)
{
    cr_assert_eq(elag("export model.safetensors --format csr -o good.st"), 0);
    struct {
        const char *file;
        size_t keep;
        void (*edit)(unsigned char *, size_t);
        const char *needle;
    } cases[] = {
        {"truncated.st", 300, NULL, "truncated"},
        {"dtype.st", 0, edit_dtype, "fc1.weight.indices"},
        {"indptr.st", 0, edit_indptr, "not monotone"},
        {"index.st", 0, edit_index, "out of range"},
        {"nnz.st", 0, edit_nnz, "fc1.weight.nnz"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_variant("good.st", cases[k].file, cases[k].keep, cases[k].edit);
        char args[256];
        snprintf(args, sizeof args, "infer %s --device cpu", cases[k].file);
        cr_expect_eq(elag(args), 2, "%s", cases[k].file);
        expect_output(cases[k].file);
        expect_output(cases[k].needle);
        snprintf(args, sizeof args, "bench model %s --device cpu", cases[k].file);
        cr_expect_eq(elag(args), 2, "bench model %s", cases[k].file);
    }
    expect_output("fc1.weight"); /* the index case names the tensor */
}

/* ---- a CNN: batch norm folded into its convolution, conv weights as CSR ---- */

Test(export, cnn_csr_export_folds_batchnorm_and_infers_like_eval)
{
    static const char yaml[] =
        "name: cnn\ndevice: cpu\nseed: 3\n"
        "data: {train_limit: 1024, test_limit: 300}\n"
        "model:\n  layers:\n"
        "    - {type: conv2d, out_channels: 6, kernel: 3, padding: 1, bias: false}\n"
        "    - {type: batchnorm}\n    - {type: relu}\n    - {type: maxpool, kernel: 2}\n"
        "    - {type: conv2d, out_channels: 8, kernel: 3, stride: 2}\n    - {type: relu}\n"
        "    - {type: global_avgpool}\n    - {type: flatten}\n    - {type: dropout, p: 0.2}\n"
        "    - {type: linear, out_features: 10}\n"
        "train: {epochs: 1, batch_size: 64, threads: 1}\n"
        "prune: {method: gmp, target: 0.7, start: 0.0, end: 0.5, frequency: 4}\n";
    elag_config c;
    OK(elag_config_parse(yaml, strlen(yaml), "cnn.yaml", NULL, 0, &c));
    char run[700], path[760], dense_path[760];
    snprintf(run, sizeof run, "%s/cnn", dir);
    cr_assert_eq(mkdir(run, 0755), 0);
    elag_train_summary s;
    elag_test_train(&c, run, NULL, 0, &s);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    snprintf(path, sizeof path, "%s/cnn.csr.st", dir);
    snprintf(dense_path, sizeof dense_path, "%s/cnn.dense.st", dir);
    export_as("csr", path);
    export_as("dense", dense_path);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", dir); /* back to the suite's model */

    elag_export e;
    OK(elag_export_load(path, &e));
    /* conv1 + bn1 + relu1 -> conv1 (with a bias) + relu1; dropout left out */
    cr_assert_eq(e.cfg.model.n_layers, 8);
    for (int i = 0; i < e.cfg.model.n_layers; i++) {
        cr_expect_neq(e.cfg.model.layers[i].type, ELAG_LAYER_BATCHNORM);
        cr_expect_neq(e.cfg.model.layers[i].type, ELAG_LAYER_DROPOUT);
    }
    cr_expect_eq(e.cfg.model.layers[0].bias, 1, "the folded norm's shift is conv1's bias");
    cr_assert(e.t[0].is_weight && e.t[0].ndim == 4 && e.t[0].w.rows == 6 && e.t[0].w.cols == 9);
    cr_expect_eq(e.t[0].columns_per_sample, 28 * 28);
    double sp;
    elag_export_sparsity(&e, NULL, NULL, &sp);
    cr_expect_float_eq(sp, 0.7, 0.01, "sparsity %.4f", sp);

    /* infer (sparse) = eval of the checkpoint (batch norm unfolded) in accuracy, and the
     * logits match the dense export's */
    elag_backend *be;
    OK(elag_backend_open("cpu", 2, &be, NULL, 0));
    elag_run_data data;
    OK(elag_run_data_load(&c, &data));
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    double want = eval_accuracy(be, &data.test);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", dir);
    size_t count = (size_t)data.test.n * 10;
    float *sparse_logits = malloc(count * sizeof(float)), *dense_logits = malloc(count * 4);
    elag_sparse_net net;
    elag_infer_stats st;
    OK(elag_sparse_net_init(&net, &e, be, 37, 0));
    OK(elag_sparse_net_evaluate(&net, &data.test, 37, &st, sparse_logits));
    elag_sparse_net_free(&net);
    cr_expect_float_eq(st.accuracy, want, 1.5 / (double)data.test.n,
                       "infer %.6f, eval %.6f (one example may flip: folding reassociates)",
                       st.accuracy, want);
    elag_export d;
    OK(elag_export_load(dense_path, &d));
    OK(elag_sparse_net_init(&net, &d, be, 37, 0));
    OK(elag_sparse_net_evaluate(&net, &data.test, 37, &st, dense_logits));
    elag_sparse_net_free(&net);
    double err = elag_logits_max_rel_err(sparse_logits, dense_logits, count);
    cr_expect_leq(err, ELAG_INFER_VERIFY_TOL, "max rel err %g", err);
    /* the file shrinks by what the weights shrink (this model is small: the header is not) */
    int64_t csr_bytes = 0, dense_bytes = 0;
    for (int i = 0; i < e.n_tensors; i++)
        if (e.t[i].is_weight) {
            csr_bytes += elag_sparse_bytes(&e.t[i].w);
            dense_bytes += elag_sparse_bytes(&d.t[i].w);
        }
    cr_expect_lt(csr_bytes, dense_bytes * 3 / 4, "CSR weights %lld bytes, dense %lld",
                 (long long)csr_bytes, (long long)dense_bytes);
    struct stat a, b;
    cr_assert(stat(path, &a) == 0 && stat(dense_path, &b) == 0);
    cr_expect_lt(a.st_size, b.st_size, "CSR %lld bytes, dense %lld", (long long)a.st_size,
                 (long long)b.st_size);
    free(sparse_logits);
    free(dense_logits);
    elag_export_free(&d);
    elag_export_free(&e);
    elag_run_data_free(&data);
    elag_backend_free(be);
}

/* ---- `--format auto` on a device that refuses a format ---- */

/* A CPU backend dressed as a GPU without TF32 tensor cores: it refuses Blocked-ELL, either
 * up front in supports() (stub_mode 0) or only when sparse_create meets the matrix, as
 * cuSPARSE can (stub_mode 1). stub_bell_creates counts Blocked-ELL matrices that reached
 * the real sparse_create. */
static int stub_mode, stub_bell_creates;
static elag_support (*real_supports)(elag_backend *, elag_op, const elag_op_query *, char *,
                                     size_t);
static elag_status (*real_create)(elag_backend *, const elag_sparse_host *,
                                  const elag_sparse_opts *, elag_sparse_dev **);

static elag_support stub_supports(elag_backend *b, elag_op op, const elag_op_query *q, char *why,
                                  size_t why_len)
{
    if (stub_mode == 0 && op == ELAG_OP_SPARSE_MM && q->format == ELAG_SPARSE_FORMAT_BELL) {
        snprintf(why, why_len, "stub refuses Blocked-ELL");
        return ELAG_SUPPORT_NO;
    }
    return real_supports(b, op, q, why, why_len);
}

static elag_status stub_create(elag_backend *b, const elag_sparse_host *a,
                               const elag_sparse_opts *opts, elag_sparse_dev **out)
{
    if (a->format == ELAG_SPARSE_FORMAT_BELL) {
        stub_bell_creates++;
        if (stub_mode == 1) return elag_fail(ELAG_ERR_UNSUPPORTED, "stub cuSPARSE refuses it");
    }
    return real_create(b, a, opts, out);
}

Test(export_auto, skips_formats_the_device_refuses)
{
    /* fc1 (64, 16): Blocked-ELL 16 stores no more than dense, so it is a real candidate */
    char *d = elag_test_tmpdir("export-auto");
    cr_assert_not_null(d);
    elag_config c;
    elag_test_small_config(&c, 64); /* not pruned: every candidate format is a real one */
    elag_train_summary s;
    elag_test_train(&c, d, NULL, 0, &s);
    char path[800];
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    elag_backend *real;
    OK(elag_backend_open("cpu", 2, &real, NULL, 0));
    real_supports = real->supports;
    real_create = real->sparse_create;
    for (stub_mode = 0; stub_mode < 2; stub_mode++) {
        elag_backend stub = *real; /* never freed: real owns the state */
        stub.supports = stub_supports;
        stub.sparse_create = stub_create;
        stub_bell_creates = 0;
        elag_export e;
        OK(elag_export_from_checkpoint(path, &e));
        elag_export_timing tm[ELAG_MAX_PARAMS];
        OK(elag_export_choose_auto(&e, &stub, 64, tm));
        int fc1 = -1;
        for (int i = 0; i < e.n_tensors; i++) {
            if (!e.t[i].is_weight) continue;
            if (e.t[i].w.rows == 64) fc1 = i;
            cr_expect(tm[i].dense_ms >= 0 && tm[i].csr_ms >= 0, "mode %d: tensor %d timed",
                      stub_mode, i);
            cr_expect(tm[i].bell16_ms < 0 && tm[i].bell32_ms < 0, "mode %d: bell timed", stub_mode);
            cr_expect_neq(e.t[i].w.format, ELAG_SPARSE_FORMAT_BELL, "mode %d: bell chosen",
                          stub_mode);
        }
        cr_assert_geq(fc1, 0);
        const char *want =
            stub_mode ? "bell:16: stub cuSPARSE refuses it" : "bell:16: stub refuses Blocked-ELL";
        cr_expect(strstr(tm[fc1].refused, want) != NULL, "mode %d: refused '%s'", stub_mode,
                  tm[fc1].refused);
        /* refused up front: nothing prepared; refused by sparse_create: it was tried */
        cr_expect_eq(stub_bell_creates > 0, stub_mode == 1, "mode %d: %d Blocked-ELL creates",
                     stub_mode, stub_bell_creates);
        elag_export_free(&e);
    }
    elag_backend_free(real);
    elag_test_rmtree(d);
    free(d);
}
