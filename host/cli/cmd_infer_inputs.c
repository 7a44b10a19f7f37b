/*
 * `elag infer FILE --inputs X [--output LOGITS.npy]`: the network on the user's own
 * inputs instead of its test set. X is a .npy (float32, or float64 rounded) or a
 * .safetensors file with one F32 tensor, of shape (N, features) or (N, C, H, W), already
 * normalised as the network's training data was (--normalize applies the data config's
 * (x - data.mean) / data.std first, for inputs scaled like the training data before
 * normalisation: pixels in [0, 1] for IDX data). The logits (N, classes) go to a .npy
 * file; without --output the predicted class of each sample is printed, one a line.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Index of the first maximum of row (len values). */
static int argmax(const float *row, int len)
{
    int best = 0;
    for (int j = 1; j < len; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

static elag_status run_session(const elag_net_t *net, elag_device_t *dev, int batch, int dense,
                               const float *x, long n, float *logits)
{
    elag_infer_t *s = NULL;
    elag_infer_options o = ELAG_INFER_OPTIONS_INIT;
    o.max_batch = batch;
    o.dense = dense;
    elag_status st = elag_infer_open(&s, net, dev, &o);
    if (st == ELAG_OK) st = elag_infer_run(s, x, (int)n, logits);
    elag_infer_free(s);
    return st;
}

static void print_result(const elag_infer_inputs_args *a, const elag_device_t *dev, long n,
                         int classes, const float *logits, double seconds, double max_rel_err,
                         double tol)
{
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", a->file);
        cJSON_AddStringToObject(o, "inputs", a->inputs);
        if (a->output) cJSON_AddStringToObject(o, "output", a->output);
        cJSON_AddStringToObject(o, "device", elag_device_name(dev));
        cJSON_AddNumberToObject(o, "samples", (double)n);
        cJSON_AddNumberToObject(o, "classes", classes);
        cJSON_AddBoolToObject(o, "normalized", a->normalize);
        cJSON_AddNumberToObject(o, "seconds", seconds);
        cJSON *pred = cJSON_AddArrayToObject(o, "predictions");
        for (long i = 0; pred && i < n; i++)
            cJSON_AddItemToArray(
                pred, cJSON_CreateNumber(argmax(logits + (size_t)i * (size_t)classes, classes)));
        if (a->verify) {
            cJSON_AddNumberToObject(o, "verify_max_rel_error", max_rel_err);
            cJSON_AddNumberToObject(o, "verify_tolerance", tol);
            cJSON_AddBoolToObject(o, "verified", max_rel_err <= tol);
        }
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (text) printf("%s\n", text);
        free(text);
        return;
    }
    if (a->output) {
        printf("wrote the logits of %ld samples (%ld x %d) to %s\n", n, n, classes, a->output);
    } else {
        for (long i = 0; i < n; i++)
            printf("%d\n", argmax(logits + (size_t)i * (size_t)classes, classes));
    }
    if (a->verify)
        fprintf(stderr, "elag: verify: max relative error %.3g (tolerance %.3g): %s\n", max_rel_err,
                tol, max_rel_err <= tol ? "ok" : "FAILED");
}

int elag_cli_infer_inputs(const elag_infer_inputs_args *a, const elag_net_t *net,
                          elag_device_t *dev)
{
    elag_array x = ELAG_ARRAY_INIT, y = ELAG_ARRAY_INIT;
    float *ref = NULL; /* (n, classes): the dense run, for --verify */
    long n = 0;
    int classes = elag_net_classes(net);
    double seconds = 0, max_rel_err = 0, tol = elag_net_verify_tol(net, dev);
    elag_status st = elag_array_load(&x, a->inputs);
    if (st == ELAG_OK) st = elag_net_check_inputs(net, &x, a->inputs, &n);
    int normalized = 0; /* --normalize and the network has a normalisation */
    if (st == ELAG_OK && a->normalize) {
        double mean, std;
        if ((normalized = elag_net_normalization(net, &mean, &std))) {
            size_t total = (size_t)n * (size_t)elag_net_input_dim(net);
            for (size_t i = 0; i < total; i++) x.data[i] = (float)((x.data[i] - mean) / std);
        }
    }
    size_t count = (size_t)n * (size_t)classes;
    if (st == ELAG_OK) {
        y.ndim = 2;
        y.shape[0] = n;
        y.shape[1] = classes;
        y.data = malloc((count ? count : 1) * sizeof *y.data);
        if (a->verify) ref = malloc((count ? count : 1) * sizeof *ref);
        if (!y.data || (a->verify && !ref)) {
            fprintf(stderr, "elag: infer: out of host memory for %ld x %d logits\n", n, classes);
            elag_array_free(&x);
            elag_array_free(&y);
            free(ref);
            return 1;
        }
    }
    if (st == ELAG_OK) {
        double t0 = now_seconds();
        st = run_session(net, dev, a->batch, 0, x.data, n, y.data);
        seconds = now_seconds() - t0;
    }
    if (st == ELAG_OK && a->verify) {
        st = run_session(net, dev, a->batch, 1, x.data, n, ref);
        if (st == ELAG_OK) max_rel_err = elag_logits_max_rel_err(y.data, ref, count);
    }
    if (st == ELAG_OK && a->output) st = elag_array_save(a->output, &y);
    int code = 0;
    if (st == ELAG_OK) {
        elag_infer_inputs_args shown = *a;
        shown.normalize = normalized;
        print_result(&shown, dev, n, classes, y.data, seconds, max_rel_err, tol);
        if (a->verify && !(max_rel_err <= tol)) {
            fprintf(stderr,
                    "elag: infer --verify: %s: sparse and dense logits differ, max "
                    "relative error %.3g > %.3g\n",
                    a->file, max_rel_err, tol);
            code = 1;
        }
    } else {
        code = elag_cli_fail(st);
    }
    elag_array_free(&x);
    elag_array_free(&y);
    free(ref);
    return code;
}
