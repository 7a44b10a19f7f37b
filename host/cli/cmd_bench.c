/*
 * `elag bench spmm`: sparse vs dense products on real layer shapes (elag_bench_spmm_run,
 * include/elag/bench.h), printed as one JSON object per line (--json), CSV (--csv) or a
 * table with the crossover sparsities last. `elag bench model ...` is dispatched to
 * cmd_bench_model.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_MAX_LIST 64

/* `elag bench --help`: what each benchmark answers, so a user can pick one. */
static const char bench_overview[] =
    "usage: elag bench spmm|model|layer [options]   ('elag bench <which> --help' for options)\n"
    "\n"
    "Three benchmarks, each with its dense baseline measured in the same run, medians of\n"
    "repeated timings after warm-up, a table (or --json rows):\n"
    "\n"
    "  spmm          one product y = W x with W sparse vs dense, over weight shapes (--shape\n"
    "                MxK or --shapes configs/shapes/*.yaml), batches, sparsities and formats\n"
    "                (csr, bell:B): GFLOP/s, GB/s, speedup and the crossover sparsity above\n"
    "                which sparse wins. Is sparsity worth it for these shapes on this device?\n"
    "  model FILE    a whole exported network (elag export) sparse vs the same weights dense:\n"
    "                latency per batch (median, p10, p90), samples/s, speedup per batch size.\n"
    "                How much faster is my pruned model end to end?\n"
    "  layer         one training step of a linear layer (forward, both gradients, SGD) with\n"
    "                the CSR path vs dense, per sparsity. Does sparse training pay here?\n"
    "\n"
    "Timings are noisy on a busy machine: 'bench model' warns when the load average is\n"
    "above half the cores or its p90 / p10 spread above 1.5. More in docs/perf.md.\n";

static const char bench_usage[] =
    "usage: elag bench spmm [options]\n"
    "\n"
    "Times y = W x for weights W (m, k) and feature-major activations x (k, n): the dense\n"
    "GEMM of the backend (the baseline, measured in the same run) against its sparse\n"
    "formats, over shapes, batches and sparsities. Reports medians after warm-up, GFLOP/s\n"
    "(useful: 2 nnz n / t; effective: 2 m k n / t), GB/s, speedup over dense and, per\n"
    "shape, batch and format, the crossover sparsity above which sparse wins.\n"
    "\n"
    "options:\n"
    "  --shape MxK[,MxK...]  weight shapes (default 1024x1024)\n"
    "  --shapes FILE         shapes from a YAML file (configs/shapes/*.yaml)\n"
    "  --batch LIST          batch sizes n (default 256)\n"
    "  --sparsity LIST       fractions of zero weights (default 0.5,0.7,0.8,0.9,0.95,0.99)\n"
    "  --formats LIST        dense, dense-tf32 (CUDA), csr, csr-alg1|2|3 (CUDA: cuSPARSE's\n"
    "                        algorithm; csr = the backend's default), bell:16, bell:32\n"
    "                        (default dense,csr, plus dense-tf32 on CUDA)\n"
    "  --mask M              random (default: each weight kept with probability 1 - s),\n"
    "                        block[:B] (random B x B tiles, default B 32: what Blocked-ELL\n"
    "                        is for), or MODEL.safetensors (its <layer>.mask tensors give\n"
    "                        the shapes and sparsities)\n"
    "  --device D            auto | cpu | cpu-ref | cuda | cuda:N (default auto)\n"
    "  --threads N           CPU threads (default: all cores)\n"
    "  --repeat N            timed samples per measurement (default 10)\n"
    "  --warmup N            untimed runs first (default 3)\n"
    "  --min-sample-ms X     a sample repeats the product to last at least X ms (default 1)\n"
    "  --seed N              Philox seed of masks, weights and activations (default 1)\n"
    "  --json                one JSON object per line on stdout\n"
    "  --csv                 CSV on stdout\n"
    "  --quiet               no progress on stderr\n"
    "  --help                this help\n";

/* A row kept for the table, with its strings (a row's are valid during emit only). */
typedef struct kept_row {
    elag_bench_row r; /* r's strings point into the fields below once printing starts */
    char shape[64], format[16], device[64];
} kept_row;

typedef struct bench_cli {
    int json, csv, quiet, tty, header_done;
    uint64_t seed;
    const char *last_shape;
    kept_row *rows; /* table mode: every row, printed at the end */
    int n_rows, cap_rows;
} bench_cli;

/* ---- argument lists ---- */

static int parse_long(const char *t, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (!*t || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Splits a comma list into at most BENCH_MAX_LIST items (copies into buf). */
static int split(const char *text, char *buf, size_t size, char **items)
{
    snprintf(buf, size, "%s", text);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == BENCH_MAX_LIST) return -1;
        items[n++] = t;
    }
    return n;
}

static int parse_batches(const char *text, int *out)
{
    char buf[1024], *items[BENCH_MAX_LIST];
    int n = split(text, buf, sizeof buf, items);
    for (int i = 0; i < n; i++) {
        long v;
        if (parse_long(items[i], 1, 1 << 20, &v)) return -1;
        out[i] = (int)v;
    }
    return n;
}

static int parse_sparsities(const char *text, double *out)
{
    char buf[1024], *items[BENCH_MAX_LIST];
    int n = split(text, buf, sizeof buf, items);
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        errno = 0;
        double v = strtod(items[i], &end);
        if (!*items[i] || *end || errno || !(v >= 0.0 && v <= 1.0)) return -1;
        out[i] = v;
    }
    return n;
}

/* ---- output ---- */

static cJSON *row_json(const elag_bench_row *r, uint64_t seed)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "shape", r->shape);
    cJSON_AddNumberToObject(o, "m", r->m);
    cJSON_AddNumberToObject(o, "k", r->k);
    cJSON_AddNumberToObject(o, "n", r->n);
    cJSON_AddNumberToObject(o, "sparsity", r->sparsity);
    cJSON_AddNumberToObject(o, "actual_sparsity", r->actual_sparsity);
    cJSON_AddStringToObject(o, "format", r->format);
    cJSON_AddStringToObject(o, "math", r->math);
    cJSON_AddStringToObject(o, "device", r->device);
    cJSON_AddStringToObject(o, "mask", r->mask);
    cJSON_AddNumberToObject(o, "nnz", (double)r->nnz);
    cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
    cJSON_AddNumberToObject(o, "median_ms", r->median_ms);
    cJSON_AddNumberToObject(o, "p10_ms", r->p10_ms);
    cJSON_AddNumberToObject(o, "p90_ms", r->p90_ms);
    cJSON_AddNumberToObject(o, "gflops", r->gflops);
    cJSON_AddNumberToObject(o, "effective_gflops", r->effective_gflops);
    cJSON_AddNumberToObject(o, "gbps", r->gbps);
    cJSON_AddNumberToObject(o, "speedup_vs_dense", r->speedup_vs_dense);
    if (!isnan(r->speedup_vs_tf32))
        cJSON_AddNumberToObject(o, "speedup_vs_dense_tf32", r->speedup_vs_tf32);
    if (r->is_sparse) {
        /* a number stays a number (plots read it); "_at_most" says it is a bound */
        if (r->has_crossover)
            cJSON_AddNumberToObject(o, "crossover_sparsity", r->crossover);
        else
            cJSON_AddStringToObject(o, "crossover_sparsity", "none");
        if (r->has_crossover) cJSON_AddBoolToObject(o, "crossover_at_most", r->has_crossover == 2);
        if (r->has_crossover_tf32 >= 1)
            cJSON_AddNumberToObject(o, "crossover_sparsity_vs_dense_tf32", r->crossover_tf32);
        else if (r->has_crossover_tf32 == 0)
            cJSON_AddStringToObject(o, "crossover_sparsity_vs_dense_tf32", "none");
    }
    cJSON_AddNumberToObject(o, "threads", r->threads);
    cJSON_AddNumberToObject(o, "repeat", r->repeat);
    cJSON_AddNumberToObject(o, "warmup", r->warmup);
    cJSON_AddNumberToObject(o, "inner", r->inner);
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    return o;
}

/* "<=0.50" for a crossover known only as a bound: two decimals, or three significant
 * digits where two would round (0.999 is not "<=1.00"). */
static void bound_text(double s, char *buf, size_t len)
{
    if (fabs(s * 100 - round(s * 100)) < 1e-9)
        snprintf(buf, len, "<=%.2f", s);
    else
        snprintf(buf, len, "<=%.3g", s);
}

static const char csv_header[] =
    "shape,m,k,n,sparsity,actual_sparsity,format,device,mask,nnz,bytes,median_ms,p10_ms,p90_ms,"
    "gflops,effective_gflops,gbps,speedup_vs_dense,speedup_vs_dense_tf32,crossover_sparsity,"
    "threads,repeat,warmup,inner,math,crossover_sparsity_vs_dense_tf32\n";

static void print_csv(const elag_bench_row *r)
{
    char tf32[32] = "", cross[32] = "", cross_tf32[32] = "";
    if (!isnan(r->speedup_vs_tf32)) snprintf(tf32, sizeof tf32, "%.6g", r->speedup_vs_tf32);
    if (r->is_sparse && r->has_crossover)
        snprintf(cross, sizeof cross, "%s%.6g", r->has_crossover == 2 ? "<=" : "", r->crossover);
    else if (r->is_sparse)
        snprintf(cross, sizeof cross, "none");
    if (r->is_sparse && r->has_crossover_tf32 >= 1)
        snprintf(cross_tf32, sizeof cross_tf32, "%s%.6g", r->has_crossover_tf32 == 2 ? "<=" : "",
                 r->crossover_tf32);
    else if (r->is_sparse && r->has_crossover_tf32 == 0)
        snprintf(cross_tf32, sizeof cross_tf32, "none");
    printf("%s,%d,%d,%d,%.6g,%.6g,%s,%s,%s,%lld,%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%s,"
           "%d,%d,%d,%d,%s,%s\n",
           r->shape, r->m, r->k, r->n, r->sparsity, r->actual_sparsity, r->format, r->device,
           r->mask, (long long)r->nnz, (long long)r->bytes, r->median_ms, r->p10_ms, r->p90_ms,
           r->gflops, r->effective_gflops, r->gbps, r->speedup_vs_dense, tf32, cross, r->threads,
           r->repeat, r->warmup, r->inner, r->math, cross_tf32);
}

static int emit_rows(const elag_bench_row *rows, int n, void *user)
{
    bench_cli *cli = user;
    for (int i = 0; i < n; i++) {
        const elag_bench_row *r = &rows[i];
        if (cli->json) {
            cJSON *o = row_json(r, cli->seed);
            char *text = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            if (!text) return 1;
            printf("%s\n", text);
            free(text);
        } else if (cli->csv) {
            if (!cli->header_done) fputs(csv_header, stdout);
            cli->header_done = 1;
            print_csv(r);
        } else {
            if (cli->n_rows == cli->cap_rows) {
                int cap = cli->cap_rows ? 2 * cli->cap_rows : 64;
                kept_row *v = realloc(cli->rows, sizeof *v * (size_t)cap);
                if (!v) return 1;
                cli->rows = v, cli->cap_rows = cap;
            }
            kept_row *k = &cli->rows[cli->n_rows++];
            k->r = *r;
            snprintf(k->shape, sizeof k->shape, "%s", r->shape);
            snprintf(k->format, sizeof k->format, "%s", r->format);
            snprintf(k->device, sizeof k->device, "%s", r->device);
            k->r.mask = ""; /* not printed; math points to a static string */
        }
    }
    return fflush(stdout) != 0;
}

static void print_table(bench_cli *cli)
{
    if (cli->n_rows == 0) return;
    for (int i = 0; i < cli->n_rows; i++) { /* the kept strings: rows no longer move */
        kept_row *k = &cli->rows[i];
        k->r.shape = k->shape, k->r.format = k->format, k->r.device = k->device;
    }
    const elag_bench_row *r0 = &cli->rows[0].r;
    printf("device %s, %d thread%s; median of %d samples after %d warm-up runs\n\n", r0->device,
           r0->threads, r0->threads == 1 ? "" : "s", r0->repeat, r0->warmup);
    printf("%-14s %6s %6s %6s %-11s %-4s %8s %10s %9s %9s %8s %8s %8s\n", "shape", "m", "k", "n",
           "format", "math", "sparsity", "median ms", "GFLOP/s", "eff GF/s", "GB/s", "speedup",
           "vs tf32");
    for (int i = 0; i < cli->n_rows; i++) {
        const elag_bench_row *r = &cli->rows[i].r;
        char vs_tf32[32] = "-";
        if (!isnan(r->speedup_vs_tf32)) snprintf(vs_tf32, sizeof vs_tf32, "%.2f", r->speedup_vs_tf32);
        printf("%-14s %6d %6d %6d %-11s %-4s %8.4f %10.4f %9.2f %9.2f %8.2f %8.2f %8s\n", r->shape,
               r->m, r->k, r->n, r->format, r->math, r->actual_sparsity, r->median_ms, r->gflops,
               r->effective_gflops, r->gbps, r->speedup_vs_dense, vs_tf32);
    }
    printf("\nspeedup: over FP32 dense; vs tf32: over dense-tf32 (the baseline of tf32 rows)\n");
    printf("crossover: the sparsity above which the format beats dense (interpolated; <=s: it\n"
           "wins at every measured sparsity, so the crossover is s, the lowest, or below)\n");
    printf("%-14s %6s %-11s %-4s %10s %10s\n", "shape", "n", "format", "math", "crossover",
           "vs tf32");
    for (int i = 0; i < cli->n_rows; i++) {
        const elag_bench_row *r = &cli->rows[i].r;
        int first = r->is_sparse;
        for (int j = 0; j < i && first; j++)
            first = !(cli->rows[j].r.is_sparse && cli->rows[j].r.n == r->n &&
                      strcmp(cli->rows[j].shape, r->shape) == 0 &&
                      strcmp(cli->rows[j].format, r->format) == 0);
        if (!first) continue;
        char fp[32] = "none", tf[32] = "-";
        if (r->has_crossover == 2) /* every measured sparsity wins: only a bound is known */
            bound_text(r->crossover, fp, sizeof fp);
        else if (r->has_crossover)
            snprintf(fp, sizeof fp, "%.3f", r->crossover);
        if (r->has_crossover_tf32 == 2)
            bound_text(r->crossover_tf32, tf, sizeof tf);
        else if (r->has_crossover_tf32 == 1)
            snprintf(tf, sizeof tf, "%.3f", r->crossover_tf32);
        else if (r->has_crossover_tf32 == 0)
            snprintf(tf, sizeof tf, "none");
        printf("%-14s %6d %-11s %-4s %10s %10s\n", r->shape, r->n, r->format, r->math, fp, tf);
    }
}

static void on_note(const char *text, void *user)
{
    (void)user;
    fprintf(stderr, "elag bench: %s\n", text);
}

static void on_progress(const char *shape, int n, const char *format, double s, void *user)
{
    bench_cli *cli = user;
    if (cli->quiet) return;
    if (cli->tty) {
        fprintf(stderr, "\r\033[Kbench: %s n=%d %s sparsity %.3g", shape, n, format, s);
    } else if (cli->last_shape != shape) {
        fprintf(stderr, "elag bench: measuring %s\n", shape);
    }
    cli->last_shape = shape;
}

/* ---- the command ---- */

typedef struct bench_args {
    const char *shape, *shapes, *batch, *sparsity, *formats, *mask, *device;
    long threads, repeat, warmup, seed;
    double min_sample_ms;
} bench_args;

/* Parses `elag bench spmm` options (argv[0] = "spmm"); 0 ok, 1 --help printed, 2 usage error. */
static int parse_args(int argc, char **argv, bench_args *a, bench_cli *cli)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *arg = argv[i];
        int r = 0;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(bench_usage, stdout);
            return 1;
        }
        if (strcmp(arg, "--json") == 0) { cli->json = 1; continue; }
        if (strcmp(arg, "--csv") == 0) { cli->csv = 1; continue; }
        if (strcmp(arg, "--quiet") == 0) { cli->quiet = 1; continue; }
        static const char *const names[] = {"--shape", "--shapes", "--batch", "--sparsity",
                                            "--formats", "--mask", "--device", "--threads",
                                            "--repeat", "--warmup", "--seed", "--min-sample-ms"};
        int which = -1;
        for (int k = 0; k < (int)(sizeof names / sizeof *names) && which < 0; k++)
            if ((r = elag_cli_take_value(argc, argv, &i, names[k], &v)) != 0) which = k;
        if (r < 0) return 2;
        if (which < 0) {
            if (arg[0] == '-')
                return elag_cli_unknown_option("bench spmm", arg, bench_usage);
            return elag_cli_usage_error("bench spmm", "unexpected argument '%s'", arg);
        }
        long *nums[] = {&a->threads, &a->repeat, &a->warmup, &a->seed};
        const long lo[] = {1, 1, 0, 0}, hi[] = {4096, 100000, 100000, LONG_MAX};
        const char **strs[] = {&a->shape, &a->shapes, &a->batch, &a->sparsity, &a->formats,
                               &a->mask, &a->device};
        if (which < 7) {
            *strs[which] = v;
        } else if (which < 11) {
            if (parse_long(v, lo[which - 7], hi[which - 7], nums[which - 7]))
                return elag_cli_usage_error("bench spmm", "%s: '%s' is not an integer in %ld..%ld",
                                            names[which], v, lo[which - 7], hi[which - 7]);
        } else {
            char *end = NULL;
            errno = 0;
            a->min_sample_ms = strtod(v, &end);
            if (!*v || *end || errno || !(a->min_sample_ms >= 0.0 && a->min_sample_ms <= 1e4))
                return elag_cli_usage_error("bench spmm",
                                            "--min-sample-ms: '%s' is not in 0..10000", v);
        }
    }
    if (cli->json && cli->csv)
        return elag_cli_usage_error("bench spmm", "--json and --csv exclude each other");
    if (a->shape && a->shapes)
        return elag_cli_usage_error("bench spmm", "give --shape or --shapes, not both");
    return 0;
}

static int bench_spmm(int argc, char **argv)
{
    bench_args a = {.batch = "256", .sparsity = "0.5,0.7,0.8,0.9,0.95,0.99", .device = "auto",
                    .threads = 0, .repeat = 10, .warmup = 3, .seed = 1, .min_sample_ms = 1.0};
    bench_cli cli = {0};
    int rc = parse_args(argc, argv, &a, &cli);
    if (rc) return rc == 1 ? 0 : rc;
    cli.seed = (uint64_t)a.seed;
    cli.tty = isatty(STDERR_FILENO);

    int batches[BENCH_MAX_LIST];
    double sparsities[BENCH_MAX_LIST];
    int n_batches = parse_batches(a.batch, batches);
    if (n_batches < 1)
        return elag_cli_usage_error("bench spmm", "--batch: '%s' is not a list of 1 to %d sizes in "
                                    "1..1048576", a.batch, BENCH_MAX_LIST);
    int n_sp = parse_sparsities(a.sparsity, sparsities);
    if (n_sp < 1)
        return elag_cli_usage_error("bench spmm", "--sparsity: '%s' is not a list of 1 to %d "
                                    "numbers in [0, 1]", a.sparsity, BENCH_MAX_LIST);
    elag_bench_spmm_options c = ELAG_BENCH_SPMM_OPTIONS_INIT;
    c.batches = batches, c.n_batches = n_batches;
    c.sparsities = sparsities, c.n_sparsities = n_sp;
    c.repeat = (int)a.repeat, c.warmup = (int)a.warmup;
    c.min_sample_ms = a.min_sample_ms, c.seed = (uint64_t)a.seed;
    c.emit = emit_rows, c.note = on_note, c.progress = on_progress, c.user = &cli;
    c.mask = ELAG_BENCH_MASK_RANDOM, c.mask_block = 32;
    const char *model = NULL;
    if (a.mask && strcmp(a.mask, "random") == 0) {
        c.mask = ELAG_BENCH_MASK_RANDOM;
    } else if (a.mask && strncmp(a.mask, "block", 5) == 0 && (!a.mask[5] || a.mask[5] == ':')) {
        long bsz = 32;
        if (a.mask[5] && parse_long(a.mask + 6, 1, 4096, &bsz))
            return elag_cli_usage_error("bench spmm", "--mask: block size in '%s' is not 1..4096",
                                        a.mask);
        c.mask = ELAG_BENCH_MASK_BLOCK, c.mask_block = (int)bsz;
    } else if (a.mask) {
        model = a.mask, c.mask = ELAG_BENCH_MASK_MODEL;
        if (a.shape || a.shapes)
            return elag_cli_usage_error("bench spmm", "--mask MODEL takes its shapes from the "
                                        "model; drop --shape/--shapes");
    }

    elag_bench_shape_list_t *shapes = NULL;
    elag_status st = ELAG_OK;
    if (model) {
        st = elag_bench_shape_list_open(&shapes, ELAG_BENCH_SHAPES_FROM_MODEL, model);
    } else if (a.shapes) {
        st = elag_bench_shape_list_open(&shapes, ELAG_BENCH_SHAPES_FROM_FILE, a.shapes);
    } else if (elag_bench_shape_list_open(&shapes, ELAG_BENCH_SHAPES_FROM_LIST,
                                          a.shape ? a.shape : "1024x1024") != ELAG_OK) {
        return elag_cli_usage_error("bench spmm", "--shape: '%s' is not a list of MxK", a.shape);
    }
    if (st != ELAG_OK) return elag_cli_fail(st);

    /* formats: a given list is checked before anything runs; the default needs the device */
    if (a.formats && elag_bench_formats_check(a.formats) != ELAG_OK) {
        elag_bench_shape_list_free(shapes);
        return elag_cli_usage_error("bench spmm", "--formats: %s", elag_last_error());
    }
    elag_device_t *dev = NULL;
    elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
    d.device = a.device;
    d.threads = (int)a.threads;
    st = elag_device_open(&dev, &d);
    if (st == ELAG_OK && elag_device_note(dev)[0] && !cli.quiet)
        elag_cli_note(elag_device_note(dev), NULL);
    if (st == ELAG_OK) {
        c.formats = a.formats; /* NULL: the device's default list */
        st = elag_bench_spmm_run(dev, shapes, &c);
        if (cli.tty && !cli.quiet) fprintf(stderr, "\r\033[K");
        if (!cli.json && !cli.csv) print_table(&cli);
    }
    free(cli.rows);
    elag_device_free(dev);
    elag_bench_shape_list_free(shapes);
    return st == ELAG_OK ? 0 : elag_cli_fail(st);
}

int elag_cmd_bench_layer(int argc, char **argv); /* cmd_bench_layer.c: argv[0] = "layer" */

int elag_cmd_bench(int argc, char **argv)

{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc < 2)
            return elag_cli_usage_error("bench", "missing what to benchmark: spmm, model or layer");
        fputs(bench_overview, stdout);
        return 0;
    }
    if (strcmp(argv[1], "model") == 0) return elag_cmd_bench_model(argc - 1, argv + 1);
    if (strcmp(argv[1], "spmm") == 0) return bench_spmm(argc - 1, argv + 1);
    if (strcmp(argv[1], "layer") == 0) return elag_cmd_bench_layer(argc - 1, argv + 1);
    static const char *const names[] = {"spmm", "model", "layer", "--help"};
    const char *best = elag_suggest(argv[1], names, sizeof names / sizeof names[0]);
    if (best)
        return elag_cli_usage_error("bench", "unknown benchmark '%s' (did you mean '%s'?)",
                                    argv[1], best);
    return elag_cli_usage_error("bench", "unknown benchmark '%s' (expected spmm, model or layer)",
                                argv[1]);
}
