/*
 * ONNX files (docs/onnx.md): elag's inference graph written as a standard ONNX model
 * (opset 13), and an ONNX model read back as an elag checkpoint. The protobuf code comes
 * from host/onnx/onnx.proto through protoc-c at build time; this header keeps it out of
 * the callers' sight.
 *
 * Export (onnx_export.c): the graph of an elag_export (batch norm already folded into the
 * conv2d or linear before it, dropout left out, masked or thinned weights) as Gemm
 * (transB = 1), Conv, BatchNormalization (one not folded), Relu, MaxPool, AveragePool
 * (count_include_pad = 1: elag's average counts the padding as zeros), GlobalAveragePool
 * and Flatten nodes; weights as FLOAT initializers in raw_data; the input "input" of
 * shape (N, features) or (N, C, H, W) with a symbolic batch N, already normalised; the
 * output "logits" (N, classes).
 *
 * Import (onnx_import.c): a chain of those operators (plus MatMul + Add, Reshape to
 * (N, -1), and the inference no-ops Identity and Dropout) mapped onto elag layers with
 * elag's default names, written as a checkpoint (weights and masks of ones, no optimizer
 * state) whose embedded config describes the network. Initializers in FLOAT16, BFLOAT16
 * or DOUBLE are converted to F32 (a DOUBLE value outside F32's range is refused); every
 * other type, external data, an operator or attribute elag has no layer for, a branch in
 * the graph, or a file protobuf cannot parse is ELAG_ERR_INPUT naming the file and, where
 * there is one, the node.
 */
#ifndef ELAG_ONNX_ONNX_H
#define ELAG_ONNX_ONNX_H

#include "sparse/export.h"

#define ELAG_ONNX_OPSET      13
#define ELAG_ONNX_IR_VERSION 7 /* the IR version that introduced opset 13's era (ONNX 1.8) */

/* Writes e's graph as an ONNX model at path (atomically, host/io). Weights in any format
 * are written dense. ELAG_ERR_UNSUPPORTED for a layer kind ONNX export does not know. */
elag_status elag_onnx_write(const elag_export *e, const char *path);

/* What elag_onnx_import made of the file: one line per elag layer. */
typedef struct elag_onnx_import_info {
    int n_layers;
    char layer[ELAG_MAX_LAYERS][160]; /* "fc1 linear 300 <- Gemm 'fc1'" */
    int classes;
    elag_fshape input;
} elag_onnx_import_info;

/* Reads the ONNX model at onnx_path, maps it onto elag layers, applies the config
 * overrides ("key=value", as --set) to the config it builds, and writes the checkpoint at
 * out_path. info may be NULL. */
elag_status elag_onnx_import(const char *onnx_path, const char *out_path,
                             const char *const *overrides, int n_overrides,
                             elag_onnx_import_info *info);

#endif /* ELAG_ONNX_ONNX_H */
