/*
 * elag public API: exports. A training checkpoint (a run's model.safetensors) becomes a
 * network in inference form (batch norm folded into the preceding layer, dropout left
 * out, pruned weights exactly 0), whose weights are converted to dense, CSR or
 * Blocked-ELL, or each to the format that ran fastest on a device ("auto"), then written
 * as a self-contained export file that elag_net_open reads back:
 *
 *     elag_net_t *net;
 *     elag_net_from_checkpoint(&net, "runs/x/model.safetensors");
 *     elag_net_convert(net, "csr", NULL);
 *     elag_net_save(net, "x.csr.safetensors");
 *     elag_net_free(net);
 *
 * This is `elag export MODEL --format F -o FILE`; docs/sparse.md describes the file.
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

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_EXPORT_H */
