/*
 * `elag bench model FILE`: end-to-end inference of an export, its own formats against
 * the same weights run dense (every layer a gemm of its dense expansion), on random
 * inputs, per batch size (elag_bench_net, include/elag/bench.h). Dense and sparse
 * forwards alternate so drift in machine load hits both alike; medians over --repeat
 * runs after warm-up, speedup = dense / sparse. `math` says what the sparse side computes
 * in (tf32 when a Blocked-ELL weight runs on CUDA: cuSPARSE runs it on tensor cores). On
 * CUDA the dense side is also timed with cuBLAS TF32 tensor-op math (a second handle on
 * the same GPU opened with tf32 = 1: cublasSetMathMode CUBLAS_TF32_TENSOR_OP_MATH), the
 * baseline a TF32 sparse side is fairly compared with: speedup_vs_dense_tf32.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* getloadavg */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_MODEL_MAX_BATCHES 32
#define BENCH_MODEL_WARMUP 3
#define BENCH_MODEL_SPREAD 1.5 /* p90 / p10 above this: the timings are noise-bound */
#define BENCH_MODEL_FORMATS_LEN 512 /* "csr,bell:16,..." of up to 32 layers */

static const char bench_model_usage[] =
    "usage: elag bench model FILE [options]\n"
    "\n"
    "End-to-end inference of an export (elag export) against the same weights run dense:\n"
    "median latency per batch of each with its spread (p10-p90), samples/s and the speedup\n"
    "dense / sparse, per batch size, on random inputs (forward passes including the host\n"
    "transposes and copies). A warning on stderr says when the timings are not to be\n"
    "trusted: the 1-minute load average above half the cores before the run (other work\n"
    "competes), or a p90 / p10 above 1.5 on either side.\n"
    "math: what the sparse side computes in (tf32 for Blocked-ELL on CUDA); on CUDA the\n"
    "dense side is also timed in TF32 (cuBLAS tensor-op math) as that side's baseline.\n"
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

/* tf32_ms: the dense side's median with TF32 GEMMs, or < 0 when not measured (CPU). */
static void print_row(const char *file, const char *device, const char *formats, double sparsity,
                      const char *math, const elag_bench_net_result *r, double tf32_ms, int json)
{
    double speedup = r->sparse_ms > 0 ? r->dense_ms / r->sparse_ms : 0.0;
    double speedup_tf32 = tf32_ms >= 0 && r->sparse_ms > 0 ? tf32_ms / r->sparse_ms : 0.0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", file);
        cJSON_AddStringToObject(o, "device", device);
        cJSON_AddStringToObject(o, "formats", formats);
        cJSON_AddNumberToObject(o, "sparsity", sparsity);
        cJSON_AddNumberToObject(o, "batch", r->batch);
        cJSON_AddNumberToObject(o, "dense_ms_median", r->dense_ms);
        cJSON_AddNumberToObject(o, "dense_ms_p10", r->dense_ms_p10);
        cJSON_AddNumberToObject(o, "dense_ms_p90", r->dense_ms_p90);
        cJSON_AddNumberToObject(o, "sparse_ms_median", r->sparse_ms);
        cJSON_AddNumberToObject(o, "sparse_ms_p10", r->sparse_ms_p10);
        cJSON_AddNumberToObject(o, "sparse_ms_p90", r->sparse_ms_p90);
        cJSON_AddNumberToObject(o, "dense_samples_per_second", 1e3 * r->batch / r->dense_ms);
        cJSON_AddNumberToObject(o, "sparse_samples_per_second", 1e3 * r->batch / r->sparse_ms);
        cJSON_AddNumberToObject(o, "speedup", speedup);
        cJSON_AddStringToObject(o, "math", math);
        if (tf32_ms >= 0) {
            cJSON_AddNumberToObject(o, "dense_tf32_ms_median", tf32_ms);
            cJSON_AddNumberToObject(o, "speedup_vs_dense_tf32", speedup_tf32);
        }
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (text) printf("%s\n", text);
        free(text);
        return;
    }
    char tf_ms[32] = "-", tf_x[32] = "-";
    if (tf32_ms >= 0) {
        snprintf(tf_ms, sizeof tf_ms, "%.4f", tf32_ms);
        snprintf(tf_x, sizeof tf_x, "%.2fx", speedup_tf32);
    }
    char dspread[48], sspread[48];
    snprintf(dspread, sizeof dspread, "%.4f-%.4f", r->dense_ms_p10, r->dense_ms_p90);
    snprintf(sspread, sizeof sspread, "%.4f-%.4f", r->sparse_ms_p10, r->sparse_ms_p90);
    printf("%7d %-4s %12.4f %17s %12.4f %17s %14.0f %14.0f %8.2fx %12s %8s\n", r->batch, math,
           r->dense_ms, dspread, r->sparse_ms, sspread, 1e3 * r->batch / r->dense_ms,
           1e3 * r->batch / r->sparse_ms, speedup, tf_ms, tf_x);
}

/* The 1-minute load average ($ELAG_LOADAVG when set: the tests pin it), or -1. */
static double load_average(void)
{
    const char *env = getenv("ELAG_LOADAVG");
    if (env && *env) return strtod(env, NULL);
    double l[1];
    return getloadavg(l, 1) == 1 ? l[0] : -1.0;
}

/* Warns on stderr when a row's timings spread wider than BENCH_MODEL_SPREAD. */
static void warn_spread(const elag_bench_net_result *r)
{
    double d = r->dense_ms_p10 > 0 ? r->dense_ms_p90 / r->dense_ms_p10 : 0;
    double s = r->sparse_ms_p10 > 0 ? r->sparse_ms_p90 / r->sparse_ms_p10 : 0;
    if (d > BENCH_MODEL_SPREAD || s > BENCH_MODEL_SPREAD)
        fprintf(stderr, "elag: warning: batch %d: timings spread widely (p90 / p10: dense %.2f, "
                        "sparse %.2f); the machine may be busy, compare medians with care\n",
                r->batch, d, s);
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
            return elag_cli_unknown_option("bench model", argv[i], bench_model_usage);
        if (path) return elag_cli_usage_error("bench model", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return elag_cli_usage_error("bench model", "missing FILE");
    if (parse_batches(batch_s, batches, &n_batches)) return 2;
    if (threads_s && parse_long("--threads", threads_s, 0, 1024, &threads)) return 2;
    if (repeat_s && parse_long("--repeat", repeat_s, 1, 100000, &repeat)) return 2;

    elag_net_t *net = NULL;
    elag_status st = elag_net_open(&net, path);
    if (st != ELAG_OK) return elag_cli_fail(st);
    char formats[BENCH_MODEL_FORMATS_LEN] = "";
    elag_net_formats(net, formats, sizeof formats);
    double sparsity = elag_net_sparsity(net, NULL, NULL);
    elag_device_t *dev = NULL, *dev_tf32 = NULL; /* dev_tf32: the same GPU, TF32 GEMMs */
    elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
    d.device = device;
    d.threads = (int)threads;
    st = elag_device_open(&dev, &d);
    if (st == ELAG_OK && elag_device_note(dev)[0] && !json)
        elag_cli_note(elag_device_note(dev), NULL);
    if (st == ELAG_OK && elag_device_is_cuda(dev)) {
        elag_device_options t = d;
        t.device = elag_device_name(dev); /* "auto" must not pick another device */
        t.tf32 = 1;
        st = elag_device_open(&dev_tf32, &t);
    }
    const char *math = st == ELAG_OK ? elag_net_math(net, dev, 0) : "fp32";
    if (st == ELAG_OK) {
        /* before any timing: our own threads are not in the load yet */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        double load = load_average();
        if (cores > 0 && load > 0.5 * (double)cores)
            fprintf(stderr, "elag: warning: the machine is busy (load average %.2f on %ld "
                            "cores): timings will be noisy, compare them with care\n",
                    load, cores);
    }
    if (st == ELAG_OK && !json) {
        printf("file %s, device %s, formats %s (math %s), sparsity %.4f, median of %ld\n\n",
               path, elag_device_name(dev), formats, math, sparsity, repeat);
        printf("%7s %-4s %12s %17s %12s %17s %14s %14s %9s %12s %8s\n", "batch", "math",
               "dense_ms", "dense_p10-p90", "sparse_ms", "sparse_p10-p90", "dense_sps",
               "sparse_sps", "speedup", "dense_tf32_ms", "vs tf32");
    }
    for (int b = 0; st == ELAG_OK && b < n_batches; b++) {
        elag_bench_net_options o = ELAG_BENCH_NET_OPTIONS_INIT;
        o.batch = batches[b];
        o.repeat = (int)repeat;
        o.warmup = BENCH_MODEL_WARMUP;
        elag_bench_net_result row = ELAG_BENCH_NET_RESULT_INIT;
        elag_bench_net_result tf32_row = ELAG_BENCH_NET_RESULT_INIT;
        st = elag_bench_net(net, dev, &o, &row);
        /* on the TF32 handle only its dense side is used: the TF32 baseline */
        if (st == ELAG_OK && dev_tf32) st = elag_bench_net(net, dev_tf32, &o, &tf32_row);
        if (st == ELAG_OK) {
            warn_spread(&row);
            print_row(path, elag_device_name(dev), formats, sparsity, math, &row,
                      dev_tf32 ? tf32_row.dense_ms : -1.0, json);
            fflush(stdout);
        }
    }
    elag_device_free(dev_tf32);
    elag_device_free(dev);
    elag_net_free(net);
    return st == ELAG_OK ? 0 : elag_cli_fail(st);
}
