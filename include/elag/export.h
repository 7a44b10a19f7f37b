/*
 * elag public API: exports. A training checkpoint (a run's model.safetensors) becomes a
 * network in inference form (batch norm folded into the preceding layer, dropout left
 * out, pruned weights exactly 0), whose weights are converted to dense, CSR or
 * Blocked-ELL, or each to the format that ran fastest on a device ("auto"), then written
 * as a self-contained export file that elag_net_open reads back:
 *
 *     elag_net_t *net;
 *     elag_net_from_checkpoint(&net, "runs/x/model.safetensors");
 *     elag_net_thin(net, NULL, NULL);         optional: drop constant neurons/filters
 *     elag_net_convert(net, "csr", NULL);
 *     elag_net_save(net, "x.csr.safetensors");
 *     elag_net_free(net);
 *
 * This is `elag export MODEL [--thin] --format F -o FILE`; docs/sparse.md describes the
 * file.
 */
#ifndef ELAG_INCLUDE_EXPORT_H
#define ELAG_INCLUDE_EXPORT_H

#include "backend.h"
#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the checkpoint at `path` into a network in inference form, every weight dense.
 * ELAG_ERR_IO when it cannot be read, ELAG_ERR_INPUT when it is not a valid checkpoint.
 * The caller owns *out (elag_net_free). */
elag_status elag_net_from_checkpoint(elag_net_t **out, const char *path);

/* Checks a format name without converting anything: "dense", "csr", "bell" (block 16),
 * "bell:B" (B in 1..1024) or "auto". ELAG_ERR_USAGE with the reason for anything else.
 * *is_auto (may be NULL) is 1 for "auto". */
elag_status elag_export_format_parse(const char *format, int *is_auto);

/* Converts every weight of net to `format` (as elag_export_format_parse reads it). "auto"
 * times each weight's product at batch 256 on `device` (required then; unused otherwise)
 * as dense, csr, bell:16 and bell:32 and keeps the fastest; elag_net_weight_timing then
 * has the timings. */
elag_status elag_net_convert(elag_net_t *net, const char *format, elag_device_t *device);

/* Writes net as an export file, atomically (the old file stays whole on failure). */
elag_status elag_net_save(const elag_net_t *net, const char *path);

/* What "auto" measured for one weight: median milliseconds of its product in each
 * candidate format, negative for a candidate that was skipped (a Blocked-ELL larger than
 * the dense matrix, or a format the device refuses, which `refused` names with why). */
typedef struct elag_weight_timing {
    double dense_ms, csr_ms, bell16_ms, bell32_ms;
    char refused[256]; /* "bell:16: <why>; bell:32: <why>", or "" */
} elag_weight_timing;

/* The timings of weight i (as elag_net_weight counts) from the last "auto" conversion;
 * all 0 when net was not converted with "auto". ELAG_ERR_USAGE for a bad i. */
elag_status elag_net_weight_timing(const elag_net_t *net, int i, elag_weight_timing *out);

/* After an "auto" conversion of an MLP that left its layers in mixed formats: what the
 * whole-net check compared (every layer CSR, which runs tile-major, against the layers'
 * own choices) and kept; "" otherwise. Valid while net lives. */
const char *elag_net_auto_note(const elag_net_t *net);

/* ---- thinning: `elag export MODEL --thin` ---- */

#define ELAG_THIN_OPTIONS_VERSION 1
/* Largest max_i |thin_i - masked_i| / max(1, |masked_i|) over the logits that
 * elag_net_thin accepts: ELAG_INFER_VERIFY_TOL's bound, for the same reason. Both sides
 * are FP32 gemms of the same weights; they differ by the rounding of folded biases and
 * merged columns and by sums over fewer terms (1.0e-6 on LeNet-300-100 and 2.3e-6 on
 * vgg-small with half their units removed, docs/sparse.md). A unit removed wrongly moves
 * logits by 1e-2 and more. */
#define ELAG_THIN_VERIFY_TOL 1e-4
/* Test samples elag_net_thin runs through both models when `samples` is 0. */
#define ELAG_THIN_VERIFY_SAMPLES 256

typedef struct elag_thin_options {
    unsigned int version; /* ELAG_THIN_OPTIONS_VERSION */
    double tolerance;     /* largest relative logit difference accepted; 0: ELAG_THIN_VERIFY_TOL */
    int samples;          /* test samples compared (the first of the test set); 0: the default */
} elag_thin_options;

#define ELAG_THIN_OPTIONS_INIT                                                                     \
    {                                                                                              \
        ELAG_THIN_OPTIONS_VERSION, 0.0, 0                                                          \
    }

/* Fills *opts with the defaults of `version`; ELAG_ERR_USAGE for an unknown version. */
elag_status elag_thin_options_init(elag_thin_options *opts, unsigned int version);

#define ELAG_THIN_RESULT_VERSION 1

/* What elag_net_thin checked. */
typedef struct elag_thin_result {
    unsigned int version; /* set by the caller: ELAG_THIN_RESULT_VERSION */
    long samples;         /* test samples run through both models */
    double max_rel_error; /* max |thin - masked| / max(1, |masked|) over their logits */
    double tolerance;     /* what it was held to */
} elag_thin_result;

#define ELAG_THIN_RESULT_INIT                                                                      \
    {                                                                                              \
        ELAG_THIN_RESULT_VERSION, 0, 0.0, 0.0                                                      \
    }

/* Removes the constant output units (all-zero weight rows after batch-norm folding) of
 * net's linear and conv2d layers, with the matching input columns of the next such layer,
 * folding or merging nonzero constants so the logits stay the same (the rule:
 * docs/sparse.md, "Thinning"); the last layer (the classes) is never cut. Every weight
 * must still be dense (call before elag_net_convert). Then runs the first `samples` test
 * samples of net's config through the masked model and the thinned one (dense, on the
 * CPU) and fails with ELAG_ERR_INTERNAL when their logits differ by more than the
 * tolerance; the network is then thinned but wrong: do not save it. result may be NULL. */
elag_status elag_net_thin(elag_net_t *net, const elag_thin_options *opts,
                          elag_thin_result *result);

/* One linear or conv2d layer of a thinned network: output units before and after, and
 * how the constant ones went (-1 each for a network read from a file, which records the
 * widths only). */
typedef struct elag_thin_info {
    char layer[64];
    int original, kept;
    int zero;   /* removed: 0 where the next layer reads them */
    int folded; /* removed: nonzero constants added to the next layer's bias */
    int merged; /* removed: nonzero constants merged into one kept constant unit */
    int held;   /* constant units kept */
} elag_thin_info;

/* Layers described by elag_net_thin_layer: 0 when net is not thinned. */
int elag_net_thin_count(const elag_net_t *net);

/* Layer i (0 <= i < elag_net_thin_count); ELAG_ERR_USAGE for another i. */
elag_status elag_net_thin_layer(const elag_net_t *net, int i, elag_thin_info *out);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_EXPORT_H */
