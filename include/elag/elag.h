/*
 * elag public API, the umbrella header: include this one.
 *
 *   elag/common.h   version, status codes, the per-thread last error
 *   elag/backend.h  devices: "auto", "cpu", "cpu-ref", "cuda", "cuda:N" (elag_device_t)
 *   elag/model.h    a trained, pruned network read from an export file (elag_net_t)
 *   elag/infer.h    running a network on a device, a float batch at a time (elag_infer_t)
 *   elag/array.h    the user's arrays in .npy / .safetensors files (inputs, logits)
 *   elag/train.h    training (and pruning) the model a config file describes into a run
 *                   folder (elag_run_train), evaluating its checkpoint (elag_run_eval)
 *   elag/export.h   a checkpoint as a network in inference form, converted to dense, CSR,
 *                   Blocked-ELL or the fastest of them per weight, and saved
 *   elag/bench.h    benchmarks: sparse vs dense products, a network sparse vs dense
 *   elag/sweep.h    sweeps: a grid of runs, its ledger and the commands of its runs
 *   elag/sensitivity.h  per-layer pruning sensitivity of a checkpoint or a config, and
 *                   per-layer targets for a global sparsity budget
 *   elag/onnx.h     a network written as ONNX; an ONNX model imported as a checkpoint
 *
 * Conventions (libgit2's): handles are opaque (`*_t`) and made by `_open`, freed by `_free`
 * (`_free(NULL)` does nothing); functions return an elag_status (ELAG_OK == 0, errors < 0)
 * and leave a message in elag_last_error(); option structs carry a `version` field and
 * are initialised with their `*_INIT` macro or `*_options_init()`, so fields can be added
 * later without breaking programs built against an older header. docs/api.md has more.
 */
#ifndef ELAG_ELAG_H
#define ELAG_ELAG_H

#include "common.h"
#include "backend.h"
#include "model.h"
#include "infer.h"
#include "array.h"
#include "train.h"
#include "export.h"
#include "bench.h"
#include "sweep.h"
#include "sensitivity.h"
#include "onnx.h"

#endif /* ELAG_ELAG_H */
