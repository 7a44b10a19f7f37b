/*
 * elag public API: inference. A session puts a network (elag/model.h) on a device, every
 * weight in its own format (sparse weights run as sparse products), and runs float
 * batches through it:
 *
 *     elag_net_t *net;  elag_infer_t *s;
 *     elag_infer_options o = ELAG_INFER_OPTIONS_INIT;
 *     o.device = "auto";  o.max_batch = 64;
 *     elag_net_open(&net, "model.csr.safetensors");
 *     elag_infer_open(&s, net, NULL, &o);
 *     elag_infer_run(s, x, n, logits);      x (n, input_dim), logits (n, classes)
 *     elag_infer_free(s);  elag_net_free(net);
 *
 * A session is used by one thread at a time; several sessions may run at once.
 */
#ifndef ELAG_INCLUDE_INFER_H
#define ELAG_INCLUDE_INFER_H

#include "backend.h"
#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A network prepared on a device (opaque). Free with elag_infer_free. */
typedef struct elag_infer elag_infer_t;

#define ELAG_INFER_OPTIONS_VERSION 1
/* Batch a session prepares for when max_batch is 0. */
#define ELAG_INFER_DEFAULT_MAX_BATCH 256

typedef struct elag_infer_options {
    unsigned int version; /* ELAG_INFER_OPTIONS_VERSION */
    const char *device;   /* "auto" (also when NULL), "cpu", "cpu-ref", "cuda", "cuda:N";
                           * unused when elag_infer_open is given a device */
    int threads;          /* CPU threads, like device; <= 0: the cores that are free */
    int max_batch;        /* samples per product the session prepares buffers for (0:
                           * ELAG_INFER_DEFAULT_MAX_BATCH); a larger elag_infer_run batch
                           * is run in pieces of this size */
    int dense;            /* 1: run every weight as its dense expansion (the masked dense
                           * model, a reference for the sparse one); 0: each in its format */
} elag_infer_options;

#define ELAG_INFER_OPTIONS_INIT                                                                    \
    {                                                                                              \
        ELAG_INFER_OPTIONS_VERSION, NULL, 0, 0, 0                                                  \
    }

/* Fills *opts with the defaults of `version`; ELAG_ERR_USAGE for an unknown version. */
elag_status elag_infer_options_init(elag_infer_options *opts, unsigned int version);

/* Prepares `net` on `device`, or (device NULL) on a device the session opens from
 * opts->device and opts->threads and owns. opts NULL: the defaults. `net` and `device`
 * must stay open until the session is freed. The caller owns *out. */
elag_status elag_infer_open(elag_infer_t **out, const elag_net_t *net, elag_device_t *device,
                            const elag_infer_options *opts);

void elag_infer_free(elag_infer_t *s); /* NULL does nothing */

/* logits (n, classes) = net(x (n, input_dim)): host memory, row-major, one sample per row.
 * n >= 0; n == 0 does nothing. Synchronous: the logits are there on return. */
elag_status elag_infer_run(elag_infer_t *s, const float *x, int n, float *logits);

/* The device the session computes on ("cpu", "cuda:0"). */
const char *elag_infer_device_name(const elag_infer_t *s);

/* The batch the session's buffers hold (opts->max_batch or its default). */
int elag_infer_max_batch(const elag_infer_t *s);

/* ---- evaluation on a test set ---- */

/* The test set a network's config names, loaded and normalised as in training (opaque,
 * host memory). Free with elag_testset_free. */
typedef struct elag_testset elag_testset_t;

/* Loads the test set of net's config (its data section). ELAG_ERR_INPUT when the data is
 * missing or bad (the message names the file). The caller owns *out. */
elag_status elag_testset_open(elag_testset_t **out, const elag_net_t *net);

void elag_testset_free(elag_testset_t *t); /* NULL does nothing */

/* Samples in the test set: the rows of the logits elag_infer_evaluate writes. */
long elag_testset_count(const elag_testset_t *t);

#define ELAG_INFER_RESULT_VERSION 1

/* What elag_infer_evaluate measured. */
typedef struct elag_infer_result {
    unsigned int version;      /* set by the caller: ELAG_INFER_RESULT_VERSION */
    long samples;              /* examples evaluated */
    double accuracy;           /* argmax (the first maximum) == label */
    double samples_per_second; /* over all batches */
    double latency_ms_median, latency_ms_p99; /* per full batch (a partial last batch
                                               * counts only when it is the only one) */
    int batches;
} elag_infer_result;

#define ELAG_INFER_RESULT_INIT                                                                     \
    {                                                                                              \
        ELAG_INFER_RESULT_VERSION, 0, 0, 0, 0, 0, 0                                                \
    }

/* Runs the whole test set through the session in batches of `batch` (1..max_batch of the
 * session), after one untimed warm-up batch, timing each. `logits` (may be NULL; host,
 * (elag_testset_count(t), classes)) receives every sample's logits. */
elag_status elag_infer_evaluate(elag_infer_t *s, const elag_testset_t *t, int batch,
                                elag_infer_result *result, float *logits);

/* max_i |a_i - b_i| / max(1, |b_i|) over n values, b the reference; a NaN in either array
 * gives +inf. `elag infer --verify` compares a network's logits (a) with those of the same
 * file run dense (b: elag_infer_options.dense = 1) and wants at most
 * elag_net_verify_tol(): ELAG_INFER_VERIFY_TOL when both runs are FP32,
 * ELAG_INFER_VERIFY_TOL_TF32 when either rounds its inputs to TF32. */
double elag_logits_max_rel_err(const float *a, const float *b, size_t n);
#define ELAG_INFER_VERIFY_TOL 1e-4
/* TF32 keeps 10 mantissa bits: one product of two inputs, each converted with a relative
 * error below 2^-10 (truncation; 2^-11 when rounded to nearest), is off by up to 2^-9 of
 * sum |w| |x| per layer (tests/support/tf32.h derives it). A logit passes through several
 * such layers and sum |w| |x| exceeds max(1, |y|) where terms cancel; 16 x 2^-9 = 2^-5
 * allows for both. That factor is an assumption, not a guarantee: tests/test_tf32_bound.c
 * emulates TF32 networks on the CPU and checks that their error stays within a quarter of
 * this, and above ELAG_INFER_VERIFY_TOL (which TF32 cannot meet). */
#define ELAG_INFER_VERIFY_TOL_TF32 0.03125

/* The arithmetic `net` runs in on `device`: "tf32" when any of its products rounds FP32
 * inputs to TF32 there (a Blocked-ELL weight on CUDA, which cuSPARSE runs on tensor cores
 * only; any dense weight when the device was opened with tf32 = 1), else "fp32". dense: 1
 * for the run with every weight dense (elag_infer_options.dense). A format the device
 * cannot run counts as "fp32" (elag_infer_open refuses it). */
const char *elag_net_math(const elag_net_t *net, elag_device_t *device, int dense);

/* The tolerance `elag infer --verify` holds `net` on `device` to: ELAG_INFER_VERIFY_TOL_TF32
 * when its own formats or its dense run compute in TF32 there (elag_net_math), else
 * ELAG_INFER_VERIFY_TOL. */
double elag_net_verify_tol(const elag_net_t *net, elag_device_t *device);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_INFER_H */
