/*
 * The benchmark commands' refusals and output modes, beyond test_bench_spmm.c and
 * test_bench_layer.c: every bad option of `elag bench spmm` and `elag bench layer` gives
 * exit 2 and one line naming the option; the table, CSV and JSON modes print what they
 * promise (rows, crossovers, headers); and the public API (include/elag/bench.h) refuses
 * NULLs, unknown versions and bad options with ELAG_ERR_USAGE and a message. Timings are
 * not checked (a shared machine), only shapes, counts and names.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "io/safetensors.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void setup(void) { dir = elag_test_tmpdir("cov-bench"); }
static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_bench, .init = setup, .fini = teardown, .timeout = 600);

/* Runs `elag ARGS` in dir, stdout and stderr into dir/out; the exit status. */
static int cli(const char *args)
{
    char cmd[4096], out[600];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    snprintf(out, sizeof out, "%s/out", dir);
    return elag_test_run(cmd, out);
}

static char *output(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/out", dir);
    return elag_test_slurp(path);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* `elag ARGS` must exit 2 with exactly one line that contains `what`. */
static void bad_usage(const char *args, const char *what)
{
    int rc = cli(args);
    char *o = output();
    cr_expect_eq(rc, 2, "elag %s: exit %d, want 2 (%s)", args, rc, o);
    cr_expect_eq(count_lines(o), 1, "elag %s: not one line: %s", args, o);
    cr_expect(strstr(o, what) != NULL, "elag %s: '%s' does not say '%s'", args, o, what);
    free(o);
}

Test(cov_bench, spmm_bad_options)
{
    static const struct {
        const char *args, *what;
    } cases[] = {
        {"bench", "missing what to benchmark"},
        {"bench spmm --threads 0", "--threads: '0' is not an integer in 1..4096"},
        {"bench spmm --threads x", "--threads"},
        {"bench spmm --repeat 0", "--repeat: '0'"},
        {"bench spmm --warmup -1", "--warmup: '-1'"},
        {"bench spmm --seed=-2", "--seed: '-2'"},
        {"bench spmm --seed ''", "--seed: ''"},
        {"bench spmm --min-sample-ms 2e4", "--min-sample-ms: '2e4'"},
        {"bench spmm --min-sample-ms x", "--min-sample-ms: 'x'"},
        {"bench spmm --min-sample-ms ''", "--min-sample-ms"},
        {"bench spmm --min-sample-ms -1", "--min-sample-ms: '-1'"},
        {"bench spmm --repeat", "option --repeat needs a value"},
        {"bench spmm --bogus", "unknown option '--bogus'"},
        {"bench spmm extra", "unexpected argument 'extra'"},
        {"bench spmm --shape 4x4 --shapes s.yaml", "not both"},
        {"bench spmm --batch ''", "--batch: ''"},
        {"bench spmm --batch 4,x", "--batch: '4,x'"},
        {"bench spmm --sparsity ''", "--sparsity: ''"},
        {"bench spmm --sparsity 0.5,x", "--sparsity: '0.5,x'"},
        {"bench spmm --sparsity 0.5e", "--sparsity"},
        {"bench spmm --mask block:x", "block size in 'block:x'"},
        {"bench spmm --mask m.safetensors --shape 4x4", "drop --shape/--shapes"},
        {"bench spmm --mask m.safetensors --shapes s.yaml", "drop --shape/--shapes"},
        {"bench spmm --shape 4x", "--shape: '4x'"},
        {"bench spmm --shape x4", "--shape"},
        {"bench spmm --shape 0x4", "--shape"},
        {"bench spmm --formats ,", "--formats: ',' names no format"},
        {"bench spmm --shape 4x4 --device cpu --formats csr-alg9", "--formats"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) bad_usage(cases[i].args, cases[i].what);
    /* 65 batch sizes: more than a list holds */
    char args[1024] = "bench spmm --batch 1";
    for (int i = 0; i < 64; i++) strcat(args, ",1");
    bad_usage(args, "--batch");
    /* a missing model for --mask is bad input naming the file */
    bad_usage("bench spmm --mask nothere.safetensors", "nothere.safetensors");
    cr_expect_eq(cli("bench -h"), 0);
    char *o = output();
    cr_expect(strstr(o, "usage: elag bench spmm") != NULL, "%s", o);
    free(o);
    cr_expect_eq(cli("bench spmm -h"), 0);
}

/* The table mode: the device line, one row per (shape, batch, sparsity, format), then one
 * crossover line per sparse (shape, batch, format). */
Test(cov_bench, spmm_table_and_csv)
{
    elag_test_put(dir, "s.yaml", "shapes:\n  - {name: a, m: 8, k: 6}\n  - {name: b, m: 5, k: 9}\n");
    cr_assert_eq(cli("bench spmm --device cpu --threads 1 --shapes s.yaml --batch 3 --sparsity "
                     "0.5,0.9 --formats dense,csr,csr --repeat 1 --warmup 0 --min-sample-ms 0 "
                     "--seed 3 --mask random"),
                 0);
    char *o = output();
    cr_expect(strstr(o, "device cpu, 1 thread; median of 1 samples after 0 warm-up runs") != NULL,
              "%s", o);
    cr_expect(strstr(o, "elag bench: measuring a\n") != NULL, "progress lines: %s", o);
    /* per shape: dense once (it has no sparsity), csr at each of 2 sparsities (the repeated
     * csr counts once) */
    int rows = 0, cross = 0;
    for (const char *p = o; (p = strchr(p, '\n')) != NULL; p++) {
        if (strncmp(p + 1, "a ", 2) == 0 || strncmp(p + 1, "b ", 2) == 0) {
            const char *eol = strchr(p + 1, '\n');
            int words = 0;
            for (const char *q = p + 1; q < eol; q++) words += q[0] != ' ' && (q[1] == ' ' || q + 1 == eol);
            if (words == 13) rows++;
            else if (words == 6) cross++;
        }
    }
    cr_expect_eq(rows, 2 * (1 + 2), "table rows: %s", o);
    cr_expect_eq(cross, 2, "crossover lines (one per shape for csr): %s", o);
    free(o);

    /* CSV: one header and a row per measurement, quiet, block masks */
    cr_assert_eq(cli("bench spmm --device cpu --threads 1 --shape 8x8 --batch 2,3 --sparsity 0.5 "
                     "--formats dense,bell:16 --mask block:4 --repeat 1 --warmup 0 --csv --quiet"),
                 0);
    o = output();
    cr_expect_eq(strncmp(o, "shape,m,k,n,", 12), 0, "%s", o);
    cr_expect_eq(count_lines(o), 1 + 2 * 2, "%s", o);
    cr_expect(strstr(o, ",bell:16,") != NULL, "%s", o);
    free(o);
}

static void write_model(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    elag_st_writer *w = NULL;
    cr_assert_eq(elag_st_writer_init(&w), ELAG_OK);
    float m1[12] = {1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0}, w1[12] = {0};
    int64_t s1[2] = {3, 4};
    cr_assert_eq(elag_st_writer_add(w, "fc1.weight", ELAG_DTYPE_F32, 2, s1, w1), ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "fc1.mask", ELAG_DTYPE_F32, 2, s1, m1), ELAG_OK);
    cr_assert_eq(elag_st_writer_save(w, path), ELAG_OK);
    elag_st_writer_free(w);
}

/* JSON rows from a model's masks: its shape, its own sparsity, and a crossover field on
 * every sparse row. */
Test(cov_bench, spmm_json_from_a_model)
{
    write_model();
    cr_assert_eq(cli("bench spmm --device cpu --threads 1 --mask m.safetensors --batch 2 "
                     "--formats csr --repeat 1 --warmup 0 --json --quiet"),
                 0);
    char *o = output();
    int rows = 0;
    for (char *line = strtok(o, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != '{') continue; /* a note on stderr */
        cJSON *j = cJSON_Parse(line);
        cr_assert_not_null(j, "not JSON: %s", line);
        cr_expect_str_eq(cJSON_GetObjectItem(j, "shape")->valuestring, "fc1");
        cr_expect_eq(cJSON_GetObjectItem(j, "m")->valueint, 3);
        cr_expect_eq(cJSON_GetObjectItem(j, "k")->valueint, 4);
        cr_expect_eq(cJSON_GetObjectItem(j, "nnz")->valueint, 7);
        const char *fmt = cJSON_GetObjectItem(j, "format")->valuestring;
        if (strcmp(fmt, "csr") == 0)
            cr_expect_not_null(cJSON_GetObjectItem(j, "crossover_sparsity"), "%s", line);
        cJSON_Delete(j);
        rows++;
    }
    cr_expect_geq(rows, 1);
    free(o);
}

Test(cov_bench, layer_bad_options_and_table)
{
    static const struct {
        const char *args, *what;
    } cases[] = {
        {"bench layer --shape 4x4x", "--shape '4x4x'"},
        {"bench layer --shape 4y4", "--shape '4y4'"},
        {"bench layer --shape 2000000x4", "--shape"},
        {"bench layer --shape 4x2000000", "--shape"},
        {"bench layer --sparsity ''", "--sparsity: empty list"},
        {"bench layer --sparsity x", "--sparsity 'x'"},
        {"bench layer --sparsity 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.1,0.2,0.3,0.4,0.5,0.6,0.7,"
         "0.8,0.9,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.1,0.2,"
         "0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.1,0.2,0.3,0.4,0.5,0.6,"
         "0.7,0.8,0.9,0.1,0.2,0.3,0.4,0.5,0.6,0.7",
         "--sparsity"},
        {"bench layer --batch x", "--batch 'x'"},
        {"bench layer --threads -1", "--threads '-1'"},
        {"bench layer --warmup -1", "--warmup '-1'"},
        {"bench layer --seed 1x", "--seed '1x'"},
        {"bench layer --seed", "option --seed needs a value"},
        {"bench layer stray", "unexpected argument 'stray'"},
        {"bench layer -", "unexpected argument '-'"},
        {"bench layer --device cpu0", "cpu0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) bad_usage(cases[i].args, cases[i].what);
    cr_expect_eq(cli("bench layer -h"), 0);

    /* the table: a header, then per sparsity the dense row and the sparse row */
    cr_assert_eq(cli("bench layer --device cpu-ref --shape 6x5 --batch 3 --sparsity 0,1 "
                     "--threads 1 --repeats 1 --warmup 1 --seed 9"),
                 0);
    char *o = output();
    cr_expect(strstr(o, "layer 6x5, batch 3, device cpu-ref, median of 1 steps after 1 warm-up") !=
                  NULL,
              "%s", o);
    int dense = 0, sparse = 0;
    for (char *line = strtok(o, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "6x5 ", 4) != 0) continue;
        dense += strstr(line, " dense ") != NULL;
        sparse += strstr(line, " sparse ") != NULL;
    }
    cr_expect(dense == 2 && sparse == 2, "rows dense %d sparse %d", dense, sparse);
    free(o);
}

/* ---- the public API ---- */

#define USAGE(call, what)                                                                          \
    do {                                                                                           \
        elag_status st_ = (call);                                                                  \
        cr_expect_eq(st_, ELAG_ERR_USAGE, "%s gave %s (%s)", #call, elag_status_name(st_),         \
                     elag_last_error());                                                           \
        cr_expect(strstr(elag_last_error(), (what)) != NULL, "%s: '%s' does not say '%s'", #call, \
                  elag_last_error(), (what));                                                      \
    } while (0)

static int stop_at_first(const elag_bench_layer_row *r, void *user)
{
    (void)r;
    ++*(int *)user;
    return 1;
}

Test(cov_bench, api_refusals)
{
    elag_bench_shape_list_t *l = (elag_bench_shape_list_t *)dir;
    USAGE(elag_bench_shape_list_open(NULL, ELAG_BENCH_SHAPES_FROM_LIST, "4x4"), "out is NULL");
    USAGE(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_LIST, NULL), "text is NULL");
    cr_expect_null(l, "the output is cleared on a refusal");
    USAGE(elag_bench_shape_list_open(&l, (elag_bench_shapes_from)42, "4x4"), "unknown source 42");
    USAGE(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_LIST, "4x4,,5"), "4x4,,5");
    cr_assert_eq(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_LIST, "4x3,2x7"), ELAG_OK);
    cr_expect_eq(elag_bench_shape_list_count(l), 2);
    elag_bench_shape_list_free(NULL);

    USAGE(elag_bench_formats_check(NULL), "NULL list");
    USAGE(elag_bench_formats_check(""), "names no format");
    cr_expect_eq(elag_bench_formats_check("dense,csr,bell:16"), ELAG_OK);

    elag_bench_spmm_options so;
    USAGE(elag_bench_spmm_options_init(NULL, ELAG_BENCH_SPMM_OPTIONS_VERSION), "opts is NULL");
    USAGE(elag_bench_spmm_options_init(&so, 0), "version 0");
    USAGE(elag_bench_spmm_options_init(&so, ELAG_BENCH_SPMM_OPTIONS_VERSION + 1), "version");
    cr_assert_eq(elag_bench_spmm_options_init(&so, ELAG_BENCH_SPMM_OPTIONS_VERSION), ELAG_OK);

    elag_device_t *dev = NULL;
    elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
    d.device = "cpu-ref";
    cr_assert_eq(elag_device_open(&dev, &d), ELAG_OK, "%s", elag_last_error());
    USAGE(elag_bench_spmm_run(NULL, l, &so), "device is NULL");
    USAGE(elag_bench_spmm_run(dev, NULL, &so), "shapes is NULL");
    USAGE(elag_bench_spmm_run(dev, l, NULL), "opts is NULL");
    so.version = 7;
    USAGE(elag_bench_spmm_run(dev, l, &so), "version 7");
    so.version = ELAG_BENCH_SPMM_OPTIONS_VERSION, so.formats = "coo";
    USAGE(elag_bench_spmm_run(dev, l, &so), "coo");

    elag_bench_net_options no;
    USAGE(elag_bench_net_options_init(NULL, ELAG_BENCH_NET_OPTIONS_VERSION), "opts is NULL");
    USAGE(elag_bench_net_options_init(&no, 3), "version 3");
    cr_assert_eq(elag_bench_net_options_init(&no, ELAG_BENCH_NET_OPTIONS_VERSION), ELAG_OK);
    elag_bench_net_result res = ELAG_BENCH_NET_RESULT_INIT;
    USAGE(elag_bench_net(NULL, dev, &no, &res), "net is NULL");

    elag_bench_layer_options lo = ELAG_BENCH_LAYER_OPTIONS_INIT;
    double sp[2] = {0.5, 1.5};
    lo.out = 4, lo.in = 3, lo.batch = 2, lo.repeat = 1, lo.warmup = 0;
    lo.sparsities = sp, lo.n_sparsities = 1;
    USAGE(elag_bench_layer_run(NULL, &lo), "device is NULL");
    USAGE(elag_bench_layer_run(dev, NULL), "opts is NULL");
    lo.version = 2;
    USAGE(elag_bench_layer_run(dev, &lo), "options version 2");
    lo.version = ELAG_BENCH_LAYER_OPTIONS_VERSION;
    int *fields[] = {&lo.out, &lo.in, &lo.batch, &lo.repeat};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        int keep = *fields[i];
        *fields[i] = 0;
        USAGE(elag_bench_layer_run(dev, &lo), "each >= 1");
        *fields[i] = keep;
    }
    lo.warmup = -1;
    USAGE(elag_bench_layer_run(dev, &lo), "warmup -1");
    lo.warmup = 0, lo.n_sparsities = 0;
    USAGE(elag_bench_layer_run(dev, &lo), "0 sparsities");
    lo.n_sparsities = 1, lo.sparsities = NULL;
    USAGE(elag_bench_layer_run(dev, &lo), "sparsities");
    lo.sparsities = sp, lo.n_sparsities = 2;
    USAGE(elag_bench_layer_run(dev, &lo), "sparsity 1.5 outside [0, 1]");
    /* an emit that returns non-zero stops the run after that row */
    sp[1] = 0.9;
    int calls = 0;
    lo.emit = stop_at_first, lo.user = &calls;
    cr_expect_eq(elag_bench_layer_run(dev, &lo), ELAG_OK, "%s", elag_last_error());
    cr_expect_eq(calls, 1, "rows after a stop: %d", calls);

    elag_bench_shape_list_free(l);
    elag_device_free(dev);
}
