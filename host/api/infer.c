/*
 * elag/infer.h: a network on a device, a thin wrapper over elag_sparse_net
 * (host/sparse/infer.h). Batches larger than the prepared one run in pieces. A test set
 * is the test split of elag_run_data_load_test (host/train/train.h).
 */
#include "api/api.h"

#include "core/check.h"
#include "sparse/infer.h"
#include "train/train.h"

#include <stdlib.h>

struct elag_infer {
    elag_sparse_net net;
    elag_device_t *own; /* the device the session opened, or NULL */
    elag_device_t *dev; /* own or the caller's */
    int max_n, input_dim, classes;
};

elag_status elag_infer_options_init(elag_infer_options *opts, unsigned int version)
{
    if (opts == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_infer_options_init: opts is NULL");
    ELAG_TRY(elag_api_check_version(version, ELAG_INFER_OPTIONS_VERSION, "elag_infer_options"));
    elag_infer_options d = ELAG_INFER_OPTIONS_INIT;
    *opts = d;
    return ELAG_OK;
}

elag_status elag_infer_open(elag_infer_t **out, const elag_net_t *net, elag_device_t *device,
                            const elag_infer_options *opts)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_infer_open: out is NULL");
    *out = NULL;
    if (net == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_infer_open: net is NULL");
    elag_infer_options o = ELAG_INFER_OPTIONS_INIT;
    if (opts) {
        ELAG_TRY(elag_api_check_version(opts->version, ELAG_INFER_OPTIONS_VERSION,
                                        "elag_infer_options"));
        o = *opts;
    }
    if (o.max_batch < 0)
        return elag_fail(ELAG_ERR_USAGE, "elag_infer_open: max_batch %d (must be >= 0)",
                         o.max_batch);
    elag_infer_t *s = calloc(1, sizeof *s);
    if (s == NULL) return elag_fail(ELAG_ERR_NOMEM, "elag_infer_open: out of host memory");
    s->max_n = o.max_batch > 0 ? o.max_batch : ELAG_INFER_DEFAULT_MAX_BATCH;
    s->input_dim = elag_net_input_dim(net);
    s->classes = elag_net_classes(net);
    elag_status st = ELAG_OK;
    if (device) {
        s->dev = device;
    } else {
        elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
        d.device = o.device;
        d.threads = o.threads;
        st = elag_device_open(&s->own, &d);
        s->dev = s->own;
    }
    if (st == ELAG_OK) st = elag_sparse_net_init(&s->net, &net->e, s->dev->be, s->max_n, o.dense);
    if (st != ELAG_OK) {
        elag_device_free(s->own); /* sparse_net_init cleans up after itself */
        free(s);
        return st;
    }
    *out = s;
    return ELAG_OK;
}

void elag_infer_free(elag_infer_t *s)
{
    if (s == NULL) return;
    elag_sparse_net_free(&s->net);
    elag_device_free(s->own);
    free(s);
}

elag_status elag_infer_run(elag_infer_t *s, const float *x, int n, float *logits)
{
    if (s == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_infer_run: session is NULL");
    if (n < 0) return elag_fail(ELAG_ERR_USAGE, "elag_infer_run: batch of %d samples", n);
    if (n == 0) return ELAG_OK;
    if (x == NULL || logits == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_infer_run: %s is NULL", x ? "logits" : "x");
    for (int i = 0; i < n; i += s->max_n) {
        int chunk = n - i < s->max_n ? n - i : s->max_n;
        ELAG_TRY(elag_sparse_net_forward(&s->net, x + (size_t)i * (size_t)s->input_dim, chunk,
                                         logits + (size_t)i * (size_t)s->classes));
    }
    return ELAG_OK;
}

const char *elag_infer_device_name(const elag_infer_t *s)
{
    ELAG_ASSERT(s != NULL);
    return elag_device_name(s->dev);
}

int elag_infer_max_batch(const elag_infer_t *s)
{
    ELAG_ASSERT(s != NULL);
    return s->max_n;
}

/* The weakest arithmetic of net's products on be: each weight in its format, or (dense)
 * every weight as a GEMM of its dense expansion. */
static elag_support net_support(const elag_net_t *net, elag_backend *be, int dense)
{
    elag_support worst = ELAG_SUPPORT_FP32;
    for (int j = 0; j < net->e.n_tensors; j++) {
        const elag_export_tensor *t = &net->e.t[j];
        if (!t->is_weight) continue;
        elag_op_query q = {.format = t->w.format, .block = t->w.block};
        elag_op op = ELAG_OP_SPARSE_MM;
        if (dense || t->w.format == ELAG_SPARSE_FORMAT_DENSE) {
            q = (elag_op_query){.tf32 = 0}; /* a plain GEMM: TF32 only if the device says so */
            op = ELAG_OP_GEMM;
        }
        if (elag_be_supports(be, op, &q, NULL, 0) == ELAG_SUPPORT_TF32) worst = ELAG_SUPPORT_TF32;
    }
    return worst;
}

const char *elag_net_math(const elag_net_t *net, elag_device_t *device, int dense)
{
    ELAG_ASSERT(net != NULL && device != NULL);
    return net_support(net, device->be, dense) == ELAG_SUPPORT_TF32 ? "tf32" : "fp32";
}

double elag_net_verify_tol(const elag_net_t *net, elag_device_t *device)
{
    ELAG_ASSERT(net != NULL && device != NULL);
    int tf32 = net_support(net, device->be, 0) == ELAG_SUPPORT_TF32 ||
               net_support(net, device->be, 1) == ELAG_SUPPORT_TF32;
    return tf32 ? ELAG_INFER_VERIFY_TOL_TF32 : ELAG_INFER_VERIFY_TOL;
}

struct elag_testset {
    elag_run_data data; /* only .test is loaded */
};

elag_status elag_testset_open(elag_testset_t **out, const elag_net_t *net)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_testset_open: out is NULL");
    *out = NULL;
    if (net == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_testset_open: net is NULL");
    elag_testset_t *t = calloc(1, sizeof *t);
    if (t == NULL) return elag_fail(ELAG_ERR_NOMEM, "elag_testset_open: out of host memory");
    elag_status st = elag_run_data_load_test(&net->e.cfg, &t->data);
    if (st != ELAG_OK) {
        elag_testset_free(t);
        return st;
    }
    *out = t;
    return ELAG_OK;
}

void elag_testset_free(elag_testset_t *t)
{
    if (t == NULL) return;
    elag_run_data_free(&t->data);
    free(t);
}

long elag_testset_count(const elag_testset_t *t)
{
    ELAG_ASSERT(t != NULL);
    return t->data.test.n;
}

elag_status elag_infer_evaluate(elag_infer_t *s, const elag_testset_t *t, int batch,
                                elag_infer_result *result, float *logits)
{
    if (s == NULL || t == NULL || result == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_infer_evaluate: %s is NULL",
                         s == NULL ? "session" : t == NULL ? "test set" : "result");
    ELAG_TRY(elag_api_check_version(result->version, ELAG_INFER_RESULT_VERSION,
                                    "elag_infer_result"));
    elag_infer_stats stats;
    ELAG_TRY(elag_sparse_net_evaluate(&s->net, &t->data.test, batch, &stats, logits));
    result->samples = stats.samples;
    result->accuracy = stats.accuracy;
    result->samples_per_second = stats.samples_per_second;
    result->latency_ms_median = stats.latency_ms_median;
    result->latency_ms_p99 = stats.latency_ms_p99;
    result->batches = stats.batches;
    return ELAG_OK;
}
