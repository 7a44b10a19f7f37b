/*
 * The sparse-vs-dense benchmark (host/sparse/bench.c, shapes.c, `elag bench spmm`): the
 * crossover interpolation, format names, shapes files (the ones in configs/shapes/ and
 * errors that name file:line), masks from a model file, a small run of the engine on the
 * CPU (rows, nested masks, notes for what the CPU cannot run), and the CLI's JSON rows and
 * exit codes. Timings themselves are not checked: a shared machine is no place for that.
 */
#define _POSIX_C_SOURCE 200809L
#include "backend/backend.h"
#include "io/safetensors.h"
#include "sparse/bench.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static char *dir;

static void setup(void) { dir = elag_test_tmpdir("bench"); }
static void teardown(void) { free(dir); }

TestSuite(bench, .init = setup, .fini = teardown);

static void write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- crossover ---- */

Test(bench, crossover_interpolates_between_the_last_loss_and_the_first_win)
{
    double s[] = {0.5, 0.7, 0.8, 0.9}, sp[] = {0.5, 0.9, 1.3, 2.0}, x = -1;
    cr_assert_eq(elag_bench_crossover(s, sp, 4, &x), 1);
    cr_expect_float_eq(x, 0.7 + 0.1 * (1.0 - 0.9) / (1.3 - 0.9), 1e-12); /* 0.725 */
    double all[] = {1.5, 2.0, 3.0, 4.0};
    cr_assert_eq(elag_bench_crossover(s, all, 4, &x), 2, "every point wins: a bound");
    cr_expect_float_eq(x, 0.5, 1e-12, "every point wins: the lowest measured sparsity");
    double never[] = {0.1, 0.2, 0.5, 0.99};
    cr_expect_eq(elag_bench_crossover(s, never, 4, &x), 0, "never wins: none");
    double flaky[] = {1.2, 0.8, 1.1, 1.5}; /* a win below a loss does not count */
    cr_assert_eq(elag_bench_crossover(s, flaky, 4, &x), 1);
    cr_expect_float_eq(x, 0.7 + 0.1 * (1.0 - 0.8) / (1.1 - 0.8), 1e-12);
    double last_loses[] = {2.0, 2.0, 2.0, 1.0}; /* speedup exactly 1 is not a win */
    cr_expect_eq(elag_bench_crossover(s, last_loses, 4, &x), 0);
    cr_expect_eq(elag_bench_crossover(s, sp, 0, &x), 0);
}

Test(bench, format_names)
{
    elag_bench_format f;
    OK(elag_bench_format_parse("dense-tf32", &f));
    cr_expect(f.format == ELAG_SPARSE_FORMAT_DENSE && f.tf32 == 1);
    OK(elag_bench_format_parse("csr", &f));
    cr_expect(f.format == ELAG_SPARSE_FORMAT_CSR && f.alg == 0);
    OK(elag_bench_format_parse("csr-alg3", &f));
    cr_expect_eq(f.alg, 3);
    OK(elag_bench_format_parse("bell", &f));
    cr_expect(f.format == ELAG_SPARSE_FORMAT_BELL && f.block == 32);
    cr_expect_str_eq(f.name, "bell:32");
    OK(elag_bench_format_parse("bell:16", &f));
    cr_expect_eq(f.block, 16);
    const char *bad[] = {"csr-alg4", "csr-alg", "bell:8", "Dense", "", "csr-alg12"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(elag_bench_format_parse(bad[i], &f), ELAG_ERR_USAGE, "'%s'", bad[i]);
}

/* ---- shapes ---- */

static void expect_shape(const elag_bench_shape *v, int n, int m, int k)
{
    for (int i = 0; i < n; i++)
        if (v[i].m == m && v[i].k == k) return;
    cr_expect_fail("no %dx%d shape", m, k);
}

Test(bench, shipped_shape_files_parse)
{
    static const struct {
        const char *file;
        int n, m, k;
    } files[] = {{"lenet-300-100.yaml", 3, 300, 784}, {"bert-base.yaml", 3, 3072, 768},
                 {"gpt2-small.yaml", 4, 2304, 768},   {"square-4096.yaml", 1, 4096, 4096},
                 {"square-1024.yaml", 1, 1024, 1024}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/configs/shapes/%s", ELAG_SOURCE_DIR, files[i].file);
        elag_bench_shape *v = NULL;
        int n = 0;
        OK(elag_bench_shapes_load(path, &v, &n));
        cr_expect_eq(n, files[i].n, "%s", files[i].file);
        expect_shape(v, n, files[i].m, files[i].k);
        for (int j = 0; j < n; j++) cr_expect(v[j].name[0] != '\0' && v[j].mask == NULL);
        elag_bench_shapes_free(v, n);
    }
}

Test(bench, shape_file_errors_name_file_and_line)
{
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"shapes:\n  - {name: a, m: 3, k: 4}\n  - {name: b, m: 0, k: 4}\n", ":3: m must be"},
        {"shapes:\n  - {name: a, m: 3, kk: 4}\n", ":2: unknown key 'kk'"},
        {"shape:\n  - {m: 3, k: 4}\n", ":1: unknown key 'shape'"},
        {"shapes:\n  - {name: a, m: 3}\n", ":2: a shape needs m and k"},
        {"shapes: {m: 3, k: 4}\n", ":1: 'shapes' must be a list"},
        {"shapes:\n  - {name: a, m: x3, k: 4}\n", ":2: m must be a positive integer"},
        {"shapes: [\n", ":2:1: YAML syntax error"},
        {"", "expected a mapping"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[512];
        write_file("bad.yaml", cases[i].text, path, sizeof path);
        elag_bench_shape *v = NULL;
        int n = -1;
        cr_expect_eq(elag_bench_shapes_load(path, &v, &n), ELAG_ERR_INPUT, "case %zu", i);
        cr_expect_null(v);
        cr_expect(strstr(elag_last_error(), "bad.yaml") != NULL, "%s", elag_last_error());
        cr_expect(strstr(elag_last_error(), cases[i].needle) != NULL, "case %zu: '%s' not in %s",
                  i, cases[i].needle, elag_last_error());
    }
    elag_bench_shape *v = NULL;
    int n = 0;
    cr_expect_eq(elag_bench_shapes_load("/nonexistent/shapes.yaml", &v, &n), ELAG_ERR_INPUT);
}

/* A checkpoint-like file: fc1.weight, fc1.mask (U8 3x4), fc2.mask (F32 2x3). */
static void write_model(char *path, size_t size)
{
    snprintf(path, size, "%s/model.safetensors", dir);
    elag_st_writer *w = NULL;
    OK(elag_st_writer_init(&w));
    float weight[12] = {0};
    uint8_t m1[12] = {1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0};
    float m2[6] = {0, 1, 0, 0, 0, 1};
    int64_t s1[2] = {3, 4}, s2[2] = {2, 3};
    OK(elag_st_writer_add(w, "fc1.weight", ELAG_DTYPE_F32, 2, s1, weight));
    OK(elag_st_writer_add(w, "fc1.mask", ELAG_DTYPE_U8, 2, s1, m1));
    OK(elag_st_writer_add(w, "fc2.mask", ELAG_DTYPE_F32, 2, s2, m2));
    OK(elag_st_writer_save(w, path));
    elag_st_writer_free(w);
}

Test(bench, shapes_from_model_masks)
{
    char path[512];
    write_model(path, sizeof path);
    elag_bench_shape *v = NULL;
    int n = 0;
    OK(elag_bench_shapes_from_model(path, &v, &n));
    cr_assert_eq(n, 2);
    cr_expect_str_eq(v[0].name, "fc1");
    cr_expect(v[0].m == 3 && v[0].k == 4 && v[1].m == 2 && v[1].k == 3);
    cr_expect(v[0].mask[0] == 1 && v[0].mask[1] == 0 && v[1].mask[1] == 1 && v[1].mask[2] == 0);
    elag_bench_shapes_free(v, n);
    char bad[512];
    write_file("empty.yaml", "x", bad, sizeof bad);
    cr_expect_eq(elag_bench_shapes_from_model(bad, &v, &n), ELAG_ERR_INPUT);
}

/* ---- the engine on the CPU ---- */

typedef struct collected {
    elag_bench_row rows[256];
    char fmt[256][16];
    int n, notes;
    char note_text[1024];
} collected;

static int collect(const elag_bench_row *rows, int n, void *user)
{
    collected *c = user;
    for (int i = 0; i < n && c->n < 256; i++) {
        c->rows[c->n] = rows[i];
        snprintf(c->fmt[c->n], 16, "%s", rows[i].format);
        c->n++;
    }
    return 0;
}

static void collect_note(const char *text, void *user)
{
    collected *c = user;
    c->notes++;
    strncat(c->note_text, text, sizeof c->note_text - strlen(c->note_text) - 1);
}

static collected *run_engine(elag_backend *b, const char *fmts, elag_bench_mask mask,
                             const elag_bench_shape *shapes, int n_shapes)
{
    static elag_bench_format formats[8];
    static const int batches[] = {4, 7};
    static const double sparsities[] = {0.0, 0.5, 0.9, 1.0};
    collected *c = calloc(1, sizeof *c);
    char buf[128], *save = NULL;
    snprintf(buf, sizeof buf, "%s", fmts);
    int nf = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        OK(elag_bench_format_parse(t, &formats[nf++]));
    elag_bench_config cfg = {.shapes = shapes, .n_shapes = n_shapes, .batches = batches,
                             .n_batches = 2, .sparsities = sparsities, .n_sparsities = 4,
                             .formats = formats, .n_formats = nf, .repeat = 3, .warmup = 1,
                             .min_sample_ms = 0.0, .mask = mask, .mask_block = 8, .seed = 7,
                             .emit = collect, .note = collect_note, .user = c};
    OK(elag_bench_spmm(b, &cfg));
    return c;
}

static const elag_bench_row *find(const collected *c, const char *fmt, int n, double s)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->fmt[i], fmt) == 0 && c->rows[i].n == n &&
            fabs(c->rows[i].sparsity - s) < 1e-9)
            return &c->rows[i];
    return NULL;
}

Test(bench, engine_rows_on_the_cpu)
{
    elag_backend *b = NULL;
    OK(elag_backend_open("cpu", 1, &b, NULL, 0));
    elag_bench_shape shape = {.name = "odd", .m = 37, .k = 29};
    collected *c = run_engine(b, "dense,dense-tf32,csr,csr-alg2,bell:16", ELAG_BENCH_MASK_RANDOM,
                              &shape, 1);
    /* dense per batch, csr and bell:16 per batch and sparsity; tf32 and alg2 skipped */
    cr_expect_eq(c->n, 2 + 2 * 4 * 2, "rows: %d", c->n);
    cr_expect_eq(c->notes, 2, "notes: %s", c->note_text);
    cr_expect(strstr(c->note_text, "dense-tf32") && strstr(c->note_text, "csr-alg2"));
    int64_t prev = -1;
    for (int si = 3; si >= 0; si--) { /* masks are nested: nnz grows as sparsity falls */
        double s = (double[]){0.0, 0.5, 0.9, 1.0}[si];
        const elag_bench_row *r = find(c, "csr", 7, s), *q = find(c, "bell:16", 7, s);
        cr_assert(r && q, "rows at sparsity %g", s);
        cr_expect_eq(r->nnz, q->nnz, "same mask for every format");
        cr_expect_geq(r->nnz, prev);
        prev = r->nnz;
        cr_expect(r->median_ms > 0 && r->p10_ms <= r->median_ms && r->median_ms <= r->p90_ms);
        cr_expect(r->is_sparse && r->inner >= 1 && r->threads == 1 && r->repeat == 3);
        cr_expect_float_eq(r->actual_sparsity, 1.0 - r->nnz / (37.0 * 29.0), 1e-12);
        /* the mask has the requested sparsity: each of the 1073 weights is dropped with
         * probability s, so the measured sparsity lies within 5 standard deviations of s
         * (0.046 at s = 0.9; a mask that ignored or inverted s would be 0.4 or more away) */
        cr_expect_float_eq(r->sparsity, s, 1e-12);
        cr_expect(fabs(r->actual_sparsity - s) <= 5 * sqrt(s * (1 - s) / (37.0 * 29.0)) + 1e-12,
                  "requested sparsity %g, the mask has %g (nnz %lld)", s, r->actual_sparsity,
                  (long long)r->nnz);
        cr_expect_float_eq(r->gflops, 2.0 * r->nnz * 7 / (r->median_ms * 1e-3) * 1e-9, 1e-6);
        cr_expect_float_eq(r->effective_gflops, 2.0 * 37 * 29 * 7 / (r->median_ms * 1e-3) * 1e-9,
                           1e-6);
        cr_expect(isnan(r->speedup_vs_tf32));
    }
    cr_expect_eq(find(c, "csr", 4, 0.0)->nnz, 37 * 29);
    cr_expect_eq(find(c, "csr", 4, 1.0)->nnz, 0);
    const elag_bench_row *d = find(c, "dense", 7, 0.0), *r = find(c, "csr", 7, 0.9);
    cr_assert(d && r);
    cr_expect(!d->is_sparse && d->nnz == 37 * 29);
    cr_expect_float_eq(d->speedup_vs_dense, 1.0, 1e-12);
    cr_expect_float_eq(r->speedup_vs_dense, d->median_ms / r->median_ms, 1e-9);
    cr_expect_eq(r->bytes, 8 * r->nnz + 4 * 38 + 4 * (29 * 7 + 37 * 7));
    free(c);
    elag_backend_free(b);
}

Test(bench, engine_block_and_model_masks)
{
    elag_backend *b = NULL;
    OK(elag_backend_open("cpu", 1, &b, NULL, 0));
    elag_bench_shape shape = {.name = "blocky", .m = 64, .k = 48};
    collected *c = run_engine(b, "dense,csr", ELAG_BENCH_MASK_BLOCK, &shape, 1);
    const elag_bench_row *r = find(c, "csr", 4, 0.5);
    cr_assert_not_null(r);
    cr_expect_eq(r->nnz % 64, 0, "8x8 tiles kept whole: nnz %lld", (long long)r->nnz);
    cr_expect_str_eq(r->mask, "block:8");
    free(c);

    char path[512];
    write_model(path, sizeof path);
    elag_bench_shape *v = NULL;
    int n = 0;
    OK(elag_bench_shapes_from_model(path, &v, &n));
    c = run_engine(b, "dense,csr", ELAG_BENCH_MASK_MODEL, v, n);
    cr_expect_eq(c->n, 2 * (2 + 2), "per layer: dense and csr at the mask's own sparsity");
    const elag_bench_row *m1 = NULL;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->rows[i].shape, "fc1") == 0 && c->rows[i].is_sparse) m1 = &c->rows[i];
    cr_assert_not_null(m1);
    cr_expect_eq(m1->nnz, 5, "nnz %lld", (long long)m1->nnz); /* the mask's 5 ones */
    cr_expect_float_eq(m1->sparsity, 7.0 / 12.0, 1e-12);
    free(c);
    elag_bench_shapes_free(v, n);
    elag_backend_free(b);
}

/* ---- the CLI ---- */

static int cli(const char *args, const char *out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    return elag_test_run(cmd, out);
}

Test(bench, cli_json_rows_and_bad_arguments)
{
    char out[600];
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    cr_assert_eq(cli("bench spmm --device cpu --threads 1 --shape 33x17 --batch 5,8 "
                     "--sparsity 0.5,0.95 --formats dense,csr,bell:16 --repeat 2 --warmup 0 "
                     "--json --quiet 2>/dev/null", out),
                 0);
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f);
    char line[4096];
    int rows = 0;
    const char *keys[] = {"m", "k", "n", "sparsity", "format", "device", "median_ms", "gflops",
                          "speedup_vs_dense", "p10_ms", "p90_ms", "bytes", "nnz", "threads",
                          "repeat", "effective_gflops", "gbps"};
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o, "not JSON: %s", line);
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            cr_expect_not_null(cJSON_GetObjectItem(o, keys[i]), "no %s in %s", keys[i], line);
        const char *fmt = cJSON_GetObjectItem(o, "format")->valuestring;
        if (strcmp(fmt, "dense") != 0)
            cr_expect_not_null(cJSON_GetObjectItem(o, "crossover_sparsity"), "%s", line);
        cJSON_Delete(o);
        rows++;
    }
    fclose(f);
    cr_expect_eq(rows, 2 + 2 * 2 * 2);
    cr_expect_eq(cli("bench spmm --device cpu --shape 16x16 --batch 4 --sparsity 0.9 --repeat 1 "
                     "--formats dense,csr --csv --quiet", out), 0);
    cr_expect_eq(cli("bench spmm --shape 12", NULL), 2);
    cr_expect_eq(cli("bench spmm --batch 0", NULL), 2);
    cr_expect_eq(cli("bench spmm --sparsity 1.5", NULL), 2);
    cr_expect_eq(cli("bench spmm --formats csr,coo", NULL), 2);
    cr_expect_eq(cli("bench spmm --json --csv", NULL), 2);
    cr_expect_eq(cli("bench spmm --shapes nothere.yaml", NULL), 2);
    cr_expect_eq(cli("bench spmm --mask block:0", NULL), 2);
    cr_expect_eq(cli("bench frobnicate", NULL), 2);
    cr_expect_eq(cli("bench spmm --help", out), 0);
}
