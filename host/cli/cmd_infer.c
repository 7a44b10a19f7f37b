/*
 * `elag infer FILE`: runs an export (include/elag/infer.h) on the test set its config
 * names: test accuracy, throughput, latency per batch (median, p99) and sparsity, as a
 * table or one JSON object, with the arithmetic the products ran in (`math`: fp32, or
 * tf32 for Blocked-ELL on CUDA, which cuSPARSE runs on tensor cores). --verify also runs
 * the dense masked model built from the same file and fails (exit 1) when the logits
 * differ by more than the tolerance (max over all logits of |sparse - dense| /
 * max(1, |dense|)): 1e-4 when both runs are FP32, ELAG_INFER_VERIFY_TOL_TF32 (2^-5,
 * derived in include/elag/infer.h) when either is TF32. With --inputs it runs on the
 * user's own inputs instead (cmd_infer_inputs.c).
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INFER_DEFAULT_BATCH 256
#define INFER_FORMATS_LEN 512 /* "csr,bell:16,..." of up to 32 layers */

static const char infer_usage[] =
    "usage: elag infer FILE [options]\n"
    "       elag infer FILE --inputs X.npy [--output LOGITS.npy] [options]\n"
    "\n"
    "Sparse inference of an export (elag export): test accuracy on the test set of the\n"
    "config stored in FILE, samples/s, latency per batch (median, p99) and sparsity.\n"
    "With --inputs, the logits of your own inputs instead.\n"
    "\n"
    "options:\n"
    "  --inputs X     run on X instead of the test set: a .npy file (float32, or float64\n"
    "                 rounded to float32) or a .safetensors file with one F32 tensor, of\n"
    "                 shape (N, features) or (N, C, H, W), already normalised the way the\n"
    "                 training data was (see --normalize)\n"
    "  --output Y     with --inputs: write the logits (N, classes) to Y as .npy (float32);\n"
    "                 without it the predicted class of each sample is printed, one a line\n"
    "  --normalize    with --inputs: apply the network's data normalisation first,\n"
    "                 (x - data.mean) / data.std when its config has data.normalize: true\n"
    "  --batch N      examples per batch (default 256)\n"
    "  --device D     auto | cpu | cpu-ref | cuda | cuda:N (default auto)\n"
    "  --threads N    CPU threads, 0 = all cores (default 0)\n"
    "  --verify       compare the logits with the dense masked model from the same file:\n"
    "                 max |sparse - dense| / max(1, |dense|) must be <= 1e-4, else exit 1\n"
    "                 (<= 2^-5 when either run is TF32: Blocked-ELL on CUDA runs on tensor\n"
    "                 cores, which round FP32 inputs to TF32's 10-bit mantissa)\n"
    "  --json         print one JSON object on stdout\n"
    "  --help         this help\n";

static int parse_int(const char *opt, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return elag_cli_usage_error("infer", "%s '%s': expected an integer in %ld..%ld", opt, v,
                                    lo, hi);
    *out = (int)x;
    return 0;
}

typedef struct infer_report {
    const char *file, *device;
    int batch;
    double sparsity;
    elag_infer_result s;
    int verify;
    double max_rel_err, tol; /* tol: elag_net_verify_tol */
    const char *math;        /* the sparse run's arithmetic: "fp32" or "tf32" */
    char formats[INFER_FORMATS_LEN];
} infer_report;

static void print_report(const infer_report *r, int json)
{
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", r->file);
        cJSON_AddStringToObject(o, "device", r->device);
        cJSON_AddNumberToObject(o, "batch", r->batch);
        cJSON_AddNumberToObject(o, "test_accuracy", r->s.accuracy);
        cJSON_AddNumberToObject(o, "samples", (double)r->s.samples);
        cJSON_AddNumberToObject(o, "samples_per_second", r->s.samples_per_second);
        cJSON_AddNumberToObject(o, "latency_ms_median", r->s.latency_ms_median);
        cJSON_AddNumberToObject(o, "latency_ms_p99", r->s.latency_ms_p99);
        cJSON_AddNumberToObject(o, "sparsity", r->sparsity);
        cJSON_AddStringToObject(o, "formats", r->formats);
        cJSON_AddStringToObject(o, "math", r->math);
        if (r->verify) {
            cJSON_AddNumberToObject(o, "verify_max_rel_error", r->max_rel_err);
            cJSON_AddNumberToObject(o, "verify_tolerance", r->tol);
            cJSON_AddBoolToObject(o, "verified", r->max_rel_err <= r->tol);
        }
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (text) printf("%s\n", text);
        free(text);
        return;
    }
    printf("file           %s\n", r->file);
    printf("device         %s\n", r->device);
    printf("formats        %s\n", r->formats);
    printf("math           %s\n", r->math);
    printf("sparsity       %.4f\n", r->sparsity);
    printf("test accuracy  %.4f (%ld examples)\n", r->s.accuracy, r->s.samples);
    printf("throughput     %.0f samples/s\n", r->s.samples_per_second);
    printf("latency        %.3f ms median, %.3f ms p99 (batch %d, %d batches)\n",
           r->s.latency_ms_median, r->s.latency_ms_p99, r->batch, r->s.batches);
    if (r->verify)
        printf("verify         max relative error %.3g (tolerance %.3g%s): %s\n", r->max_rel_err,
               r->tol, r->tol > ELAG_INFER_VERIFY_TOL ? ", TF32" : "",
               r->max_rel_err <= r->tol ? "ok" : "FAILED");
}

/* A session on dev with buffers for `batch` samples, dense or in the file's formats. */
static elag_status open_session(elag_infer_t **out, const elag_net_t *net, elag_device_t *dev,
                                int batch, int dense)
{
    elag_infer_options o = ELAG_INFER_OPTIONS_INIT;
    o.max_batch = batch;
    o.dense = dense;
    return elag_infer_open(out, net, dev, &o);
}

/* Sparse run, then (verify) the dense masked model on the same inputs. */
static elag_status run(const elag_net_t *net, elag_device_t *dev, const elag_testset_t *test,
                       infer_report *r)
{
    elag_infer_t *sparse = NULL, *dense = NULL;
    float *logits = NULL, *ref = NULL; /* (n, classes) */
    size_t count = (size_t)elag_testset_count(test) * (size_t)elag_net_classes(net);
    elag_status st = open_session(&sparse, net, dev, r->batch, 0);
    if (st != ELAG_OK) return st;
    if (r->verify && (!(logits = malloc((count ? count : 1) * sizeof *logits)) ||
                      !(ref = malloc((count ? count : 1) * sizeof *ref))))
        st = elag_fail(ELAG_ERR_NOMEM, "infer: out of host memory");
    if (st == ELAG_OK) st = elag_infer_evaluate(sparse, test, r->batch, &r->s, logits);
    elag_infer_free(sparse);
    if (st == ELAG_OK && r->verify) {
        elag_infer_result ds = ELAG_INFER_RESULT_INIT;
        st = open_session(&dense, net, dev, r->batch, 1);
        if (st == ELAG_OK) {
            st = elag_infer_evaluate(dense, test, r->batch, &ds, ref);
            elag_infer_free(dense);
        }
        if (st == ELAG_OK) r->max_rel_err = elag_logits_max_rel_err(logits, ref, count);
    }
    free(logits);
    free(ref);
    return st;
}

/* --inputs: the network and a device, then cmd_infer_inputs.c. */
static int infer_inputs(const char *path, const char *inputs, const char *output,
                        const char *device, int batch, int threads, int json, int verify,
                        int normalize)
{
    elag_net_t *net = NULL;
    elag_device_t *dev = NULL;
    elag_status st = elag_net_open(&net, path);
    if (st == ELAG_OK) {
        elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
        d.device = device;
        d.threads = threads;
        st = elag_device_open(&dev, &d);
    }
    int code;
    if (st == ELAG_OK) {
        if (elag_device_note(dev)[0] && !json) elag_cli_note(elag_device_note(dev), NULL);
        elag_infer_inputs_args a = {path, inputs, output, batch, json, verify, normalize};
        code = elag_cli_infer_inputs(&a, net, dev);
    } else {
        code = elag_cli_fail(st);
    }
    elag_device_free(dev);
    elag_net_free(net);
    return code;
}

int elag_cmd_infer(int argc, char **argv)
{
    const char *path = NULL, *device = "auto", *batch_s = NULL, *threads_s = NULL;
    const char *inputs = NULL, *output = NULL;
    int json = 0, verify = 0, normalize = 0, batch = INFER_DEFAULT_BATCH, threads = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(infer_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) { json = 1; continue; }
        if (strcmp(argv[i], "--verify") == 0) { verify = 1; continue; }
        if (strcmp(argv[i], "--normalize") == 0) { normalize = 1; continue; }
        if ((r = elag_cli_take_value(argc, argv, &i, "--device", &device)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--batch", &batch_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--threads", &threads_s)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--inputs", &inputs)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--output", &output)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("infer", argv[i], infer_usage);
        if (path) return elag_cli_usage_error("infer", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return elag_cli_usage_error("infer", "missing FILE");
    if (batch_s && parse_int("--batch", batch_s, 1, 1 << 20, &batch)) return 2;
    if (threads_s && parse_int("--threads", threads_s, 0, 1024, &threads)) return 2;
    if (!inputs && (output || normalize))
        return elag_cli_usage_error("infer", "%s needs --inputs",
                                    output ? "--output" : "--normalize");
    if (inputs) return infer_inputs(path, inputs, output, device, batch, threads, json, verify,
                                    normalize);

    elag_net_t *net = NULL;
    elag_status st = elag_net_open(&net, path);
    if (st != ELAG_OK) return elag_cli_fail(st);
    elag_testset_t *test = NULL;
    elag_device_t *dev = NULL;
    infer_report r;
    memset(&r, 0, sizeof r);
    r.file = path;
    r.batch = batch;
    r.verify = verify;
    r.s.version = ELAG_INFER_RESULT_VERSION;
    r.sparsity = elag_net_sparsity(net, NULL, NULL);
    elag_net_formats(net, r.formats, sizeof r.formats);
    st = elag_testset_open(&test, net);
    if (st == ELAG_OK) {
        elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
        d.device = device;
        d.threads = threads;
        st = elag_device_open(&dev, &d);
    }
    if (st == ELAG_OK && elag_device_note(dev)[0] && !json)
        elag_cli_note(elag_device_note(dev), NULL);
    if (st == ELAG_OK) {
        r.device = elag_device_name(dev);
        r.math = elag_net_math(net, dev, 0);
        r.tol = elag_net_verify_tol(net, dev);
        st = run(net, dev, test, &r);
    }
    int code = 0;
    if (st == ELAG_OK) {
        print_report(&r, json);
        if (verify && !(r.max_rel_err <= r.tol)) {
            fprintf(stderr, "elag: infer --verify: %s: sparse and dense logits differ, max "
                            "relative error %.3g > %.3g\n", path, r.max_rel_err, r.tol);
            code = 1;
        }
    } else {
        code = elag_cli_fail(st);
    }
    elag_device_free(dev);
    elag_testset_free(test);
    elag_net_free(net);
    return code;
}
