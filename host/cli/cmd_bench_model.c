/*
 * `elag bench model FILE`: end-to-end inference of an export, its own formats against
 * the same weights run dense (every layer a gemm of its dense expansion), on random
 * inputs, per batch size. Dense and sparse forwards alternate so drift in machine load
 * hits both alike; medians over --repeat runs after warm-up, speedup = dense / sparse.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "backend/philox.h"
#include "sparse/infer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MODEL_MAX_BATCHES 32
#define BENCH_MODEL_WARMUP 3

static const char bench_model_usage[] =
    "usage: elag bench model FILE [options]\n"
    "\n"
    "End-to-end inference of an export (elag export) against the same weights run dense:\n"
    "median latency per batch of each, samples/s and the speedup dense / sparse, per batch\n"
    "size, on random inputs (forward passes including the host transposes and copies).\n"
    "\n"
    "options:\n"
    "  --batch LIST   batch sizes, comma separated (default 1,32,256)\n"
    "  --device D     auto | cpu | cpu-ref | cuda | cuda:N (default auto)\n"
    "  --threads N    CPU threads, 0 = all cores (default 0)\n"
    "  --repeat N     timed forwards of each side per batch size (default 20)\n"
    "  --json         one JSON object per batch size on stdout\n"
    "  --help         this help\n";

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return elag_cli_usage_error("bench model", "%s '%s': expected an integer in %ld..%ld",
                                    opt, v, lo, hi);
    *out = x;
    return 0;
}

static int parse_batches(const char *text, int *out, int *count)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    *count = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long v = 0;
        if (*count == BENCH_MODEL_MAX_BATCHES)
            return elag_cli_usage_error("bench model", "--batch: at most %d sizes",
                                        BENCH_MODEL_MAX_BATCHES);
        if (parse_long("--batch", t, 1, 1 << 20, &v)) return 2;
        out[(*count)++] = (int)v;
    }
    if (*count == 0) return elag_cli_usage_error("bench model", "--batch: empty list");
    return 0;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

typedef struct bench_model_row {
    int batch;
    double sparse_ms, dense_ms;
} bench_model_row;

/* Times both nets at batch n on the same random input. */
static elag_status bench_batch(const elag_export *e, elag_backend *be, int n, int repeat,
                               bench_model_row *row)
{
    elag_sparse_net sp, dn;
    size_t in_count = (size_t)n * e->input_dim, out_count = (size_t)n * e->classes;
    float *x = malloc(in_count * sizeof *x);         /* (n, input_dim) */
    float *logits = malloc(out_count * sizeof *x);   /* (n, classes) */
    double *ts = malloc((size_t)repeat * sizeof *ts), *td = malloc((size_t)repeat * sizeof *td);
    if (!x || !logits || !ts || !td) {
        free(x), free(logits), free(ts), free(td);
        return elag_fail(ELAG_ERR_NOMEM, "bench model: out of host memory");
    }
    for (size_t i = 0; i < in_count; i++) x[i] = elag_philox_uniform(1, 0, i) * 2.0f - 1.0f;
    elag_status st = elag_sparse_net_init(&sp, e, be, n, 0);
    if (st == ELAG_OK) {
        st = elag_sparse_net_init(&dn, e, be, n, 1);
        if (st != ELAG_OK) elag_sparse_net_free(&sp);
    }
    if (st != ELAG_OK) {
        free(x), free(logits), free(ts), free(td);
        return st;
    }
    for (int w = 0; st == ELAG_OK && w < BENCH_MODEL_WARMUP; w++) {
        st = elag_sparse_net_forward(&sp, x, n, logits);
        if (st == ELAG_OK) st = elag_sparse_net_forward(&dn, x, n, logits);
    }
    for (int r = 0; st == ELAG_OK && r < repeat; r++) {
        double t0 = now_ms();
        st = elag_sparse_net_forward(&dn, x, n, logits);
        double t1 = now_ms();
        if (st == ELAG_OK) st = elag_sparse_net_forward(&sp, x, n, logits);
        double t2 = now_ms();
        td[r] = t1 - t0;
        ts[r] = t2 - t1;
    }
    if (st == ELAG_OK) {
        double p99;
        row->batch = n;
        elag_latency_percentiles(ts, repeat, &row->sparse_ms, &p99);
        elag_latency_percentiles(td, repeat, &row->dense_ms, &p99);
    }
    elag_sparse_net_free(&sp);
    elag_sparse_net_free(&dn);
    free(x), free(logits), free(ts), free(td);
    return st;
}

static void print_row(const char *file, const char *device, const char *formats, double sparsity,
                      const bench_model_row *r, int json)
{
    double speedup = r->sparse_ms > 0 ? r->dense_ms / r->sparse_ms : 0.0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", file);
        cJSON_AddStringToObject(o, "device", device);
        cJSON_AddStringToObject(o, "formats", formats);
        cJSON_AddNumberToObject(o, "sparsity", sparsity);
        cJSON_AddNumberToObject(o, "batch", r->batch);
        cJSON_AddNumberToObject(o, "dense_ms_median", r->dense_ms);
        cJSON_AddNumberToObject(o, "sparse_ms_median", r->sparse_ms);
        cJSON_AddNumberToObject(o, "dense_samples_per_second", 1e3 * r->batch / r->dense_ms);
        cJSON_AddNumberToObject(o, "sparse_samples_per_second", 1e3 * r->batch / r->sparse_ms);
        cJSON_AddNumberToObject(o, "speedup", speedup);
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (text) printf("%s\n", text);
        free(text);
        return;
    }
    printf("%7d %12.4f %12.4f %14.0f %14.0f %8.2fx\n", r->batch, r->dense_ms, r->sparse_ms,
           1e3 * r->batch / r->dense_ms, 1e3 * r->batch / r->sparse_ms, speedup);
}

int elag_cmd_bench_model(int argc, char **argv)
{
    const char *path = NULL, *device = "auto", *batch_s = "1,32,256", *threads_s = NULL,
               *repeat_s = NULL;
    int json = 0, batches[BENCH_MODEL_MAX_BATCHES], n_batches = 0;
    long threads = 0, repeat = 20;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(bench_model_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) { json = 1; continue; }
        if ((r = elag_cli_take_value(argc, argv, &i, "--device", &device)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--batch", &batch_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--threads", &threads_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--repeat", &repeat_s)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_usage_error("bench model", "unknown option '%s'", argv[i]);
        if (path) return elag_cli_usage_error("bench model", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return elag_cli_usage_error("bench model", "missing FILE");
    if (parse_batches(batch_s, batches, &n_batches)) return 2;
    if (threads_s && parse_long("--threads", threads_s, 0, 1024, &threads)) return 2;
    if (repeat_s && parse_long("--repeat", repeat_s, 1, 100000, &repeat)) return 2;

    elag_export e;
    elag_status st = elag_export_load(path, &e);
    if (st != ELAG_OK) return elag_cli_fail(st);
    char formats[ELAG_MAX_LAYERS * 16] = "", note[256] = "";
    elag_export_formats(&e, formats, sizeof formats);
    double sparsity;
    elag_export_sparsity(&e, NULL, NULL, &sparsity);
    elag_backend *be = NULL;
    st = elag_backend_open(device, (int)threads, &be, note, sizeof note);
    if (st == ELAG_OK && note[0] && !json) fprintf(stderr, "elag: %s\n", note);
    if (st == ELAG_OK && !json) {
        printf("file %s, device %s, formats %s, sparsity %.4f, median of %ld\n\n", path,
               be->name, formats, sparsity, repeat);
        printf("%7s %12s %12s %14s %14s %9s\n", "batch", "dense_ms", "sparse_ms", "dense_sps",
               "sparse_sps", "speedup");
    }
    for (int b = 0; st == ELAG_OK && b < n_batches; b++) {
        bench_model_row row;
        st = bench_batch(&e, be, batches[b], (int)repeat, &row);
        if (st == ELAG_OK) {
            print_row(path, be->name, formats, sparsity, &row, json);
            fflush(stdout);
        }
    }
    elag_backend_free(be);
    elag_export_free(&e);
    return st == ELAG_OK ? 0 : elag_cli_fail(st);
}
