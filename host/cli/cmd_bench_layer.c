/*
 * `elag bench layer`: one linear layer's full training step (forward, input gradient,
 * weight gradient, SGD with momentum), the dense path against the sparse one, per sparsity
 * (elag_bench_layer_run, include/elag/bench.h). Prints a table, or with --json one object
 * per path and sparsity: shape, batch, sparsity, path, median_ms, speedup_vs_dense and the
 * parts of the step.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_LAYER_MAX_SPARSITIES 32

/* Declared here and called by cmd_bench.c (which declares it too): cli.h is shared. */
int elag_cmd_bench_layer(int argc, char **argv);

static const char bench_layer_usage[] =
    "usage: elag bench layer [options]\n"
    "\n"
    "Times one training step of a linear layer y = W x, W (out, in), batch n: forward,\n"
    "input gradient, weight gradient and SGD with momentum. The dense path (three GEMMs, the\n"
    "masked SGD over every weight) and the sparse path (CSR products with W and W^T, the\n"
    "weight gradient at the kept entries only, SGD on the kept values) alternate step by\n"
    "step in one run; medians after warm-up and the speedup dense / sparse per sparsity.\n"
    "prepare_ms: building the sparse pattern at a mask update (once); scatter_ms: what\n"
    "writing the sparse weights back into the dense W every step would add.\n"
    "\n"
    "options:\n"
    "  --shape OxI       W's shape (default 2048x2048)\n"
    "  --batch N         batch size n (default 256)\n"
    "  --sparsity LIST   fractions of pruned weights (default 0.9,0.95)\n"
    "  --device D        auto | cpu | cpu-ref | cuda | cuda:N (default cpu; CUDA's\n"
    "                    sparse step is not yet verified on a GPU: docs/sparse.md)\n"
    "  --threads N       CPU threads, 0 = all cores (default 0)\n"
    "  --repeats N       timed steps of each path per sparsity (default 10)\n"
    "  --warmup N        untimed steps of each path first (default 2)\n"
    "  --seed N          Philox seed of mask, weights and data (default 1)\n"
    "  --json            one JSON object per line on stdout\n"
    "  --help            this help\n";

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return elag_cli_usage_error("bench layer", "%s '%s': expected an integer in %ld..%ld", opt,
                                    v, lo, hi);
    *out = x;
    return 0;
}

static int parse_shape(const char *v, int *out, int *in)
{
    char *end;
    errno = 0;
    long o = strtol(v, &end, 10), i = 0;
    int ok = !errno && end != v && *end == 'x' && o >= 1 && o <= (1L << 20);
    if (ok) {
        const char *rest = end + 1;
        i = strtol(rest, &end, 10);
        ok = !errno && end != rest && !*end && i >= 1 && i <= (1L << 20);
    }
    if (!ok)
        return elag_cli_usage_error("bench layer", "--shape '%s': expected OxI, e.g. 2048x2048", v);
    *out = (int)o, *in = (int)i;
    return 0;
}

static int parse_sparsities(const char *text, double *out, int *count)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    *count = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        errno = 0;
        double s = strtod(t, &end);
        if (errno || end == t || *end || !(s >= 0.0 && s <= 1.0) ||
            *count == BENCH_LAYER_MAX_SPARSITIES)
            return elag_cli_usage_error("bench layer",
                                        "--sparsity '%s': expected 1 to %d fractions in [0, 1]",
                                        text, BENCH_LAYER_MAX_SPARSITIES);
        out[(*count)++] = s;
    }
    if (*count == 0) return elag_cli_usage_error("bench layer", "--sparsity: empty list");
    return 0;
}

typedef struct layer_cli {
    int json;
    const char *device;
} layer_cli;

static int emit_row(const elag_bench_layer_row *r, void *user)
{
    const layer_cli *c = user;
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%d", r->out, r->in);
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "shape", shape);
        cJSON_AddNumberToObject(o, "batch", r->batch);
        cJSON_AddNumberToObject(o, "sparsity", r->sparsity);
        cJSON_AddStringToObject(o, "path", r->path);
        cJSON_AddNumberToObject(o, "median_ms", r->median_ms);
        cJSON_AddNumberToObject(o, "speedup_vs_dense", r->speedup_vs_dense);
        cJSON_AddNumberToObject(o, "p10_ms", r->p10_ms);
        cJSON_AddNumberToObject(o, "p90_ms", r->p90_ms);
        cJSON_AddNumberToObject(o, "forward_ms", r->forward_ms);
        cJSON_AddNumberToObject(o, "input_grad_ms", r->input_grad_ms);
        cJSON_AddNumberToObject(o, "weight_grad_ms", r->weight_grad_ms);
        cJSON_AddNumberToObject(o, "optimizer_ms", r->optimizer_ms);
        cJSON_AddNumberToObject(o, "prepare_ms", r->prepare_ms);
        cJSON_AddNumberToObject(o, "scatter_ms", r->scatter_ms);
        cJSON_AddNumberToObject(o, "nnz", (double)r->nnz);
        cJSON_AddStringToObject(o, "device", c->device);
        cJSON_AddNumberToObject(o, "threads", r->threads);
        cJSON_AddNumberToObject(o, "repeat", r->repeat);
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (text) printf("%s\n", text);
        free(text);
    } else {
        printf("%-11s %6d %8.4f %-6s %10.3f %8.2fx %9.3f %9.3f %9.3f %9.3f %10.3f %10.3f\n", shape,
               r->batch, r->sparsity, r->path, r->median_ms, r->speedup_vs_dense, r->forward_ms,
               r->input_grad_ms, r->weight_grad_ms, r->optimizer_ms, r->prepare_ms, r->scatter_ms);
    }
    fflush(stdout);
    return 0;
}

int elag_cmd_bench_layer(int argc, char **argv)
{
    const char *device = "cpu", *shape_s = "2048x2048", *batch_s = NULL, *sp_s = "0.9,0.95",
               *threads_s = NULL, *repeat_s = NULL, *warmup_s = NULL, *seed_s = NULL;
    layer_cli c = {0};
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(bench_layer_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--device", &device)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--shape", &shape_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--batch", &batch_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--sparsity", &sp_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--threads", &threads_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--repeats", &repeat_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--warmup", &warmup_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--seed", &seed_s)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("bench layer", argv[i], bench_layer_usage);
        return elag_cli_usage_error("bench layer", "unexpected argument '%s'", argv[i]);
    }
    elag_bench_layer_options o = ELAG_BENCH_LAYER_OPTIONS_INIT;
    double sparsities[BENCH_LAYER_MAX_SPARSITIES];
    long threads = 0, v = 0;
    if (parse_shape(shape_s, &o.out, &o.in)) return 2;
    if (parse_sparsities(sp_s, sparsities, &o.n_sparsities)) return 2;
    o.sparsities = sparsities;
    if (batch_s) {
        if (parse_long("--batch", batch_s, 1, 1 << 20, &v)) return 2;
        o.batch = (int)v;
    }
    if (threads_s && parse_long("--threads", threads_s, 0, 1024, &threads)) return 2;
    if (repeat_s) {
        if (parse_long("--repeats", repeat_s, 1, 100000, &v)) return 2;
        o.repeat = (int)v;
    }
    if (warmup_s) {
        if (parse_long("--warmup", warmup_s, 0, 100000, &v)) return 2;
        o.warmup = (int)v;
    }
    if (seed_s) {
        if (parse_long("--seed", seed_s, 0, 0x7fffffffL, &v)) return 2;
        o.seed = (uint64_t)v;
    }
    elag_device_t *dev = NULL;
    elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
    d.device = device;
    d.threads = (int)threads;
    elag_status st = elag_device_open(&dev, &d);
    if (st != ELAG_OK) return elag_cli_fail(st);
    c.device = elag_device_name(dev);
    if (!c.json) {
        printf("layer %dx%d, batch %d, device %s, median of %d steps after %d warm-up\n\n", o.out,
               o.in, o.batch, c.device, o.repeat, o.warmup);
        printf("%-11s %6s %8s %-6s %10s %9s %9s %9s %9s %9s %10s %10s\n", "shape", "batch",
               "sparsity", "path", "median_ms", "speedup", "fwd_ms", "dx_ms", "dw_ms", "opt_ms",
               "prepare_ms", "scatter_ms");
    }
    o.emit = emit_row;
    o.user = &c;
    st = elag_bench_layer_run(dev, &o);
    elag_device_free(dev);
    return st == ELAG_OK ? 0 : elag_cli_fail(st);
}
