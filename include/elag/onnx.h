/*
 * elag public API: ONNX (docs/onnx.md). A network (a checkpoint read with
 * elag_net_from_checkpoint, thinned or not, or an export read with elag_net_open) written
 * as a standard ONNX model (opset 13) that ONNX Runtime and other runtimes load; and an
 * ONNX model (from PyTorch's torch.onnx.export, say) read as an elag checkpoint that
 * `elag eval` evaluates and `train.init_from` starts a training run from.
 */
#ifndef ELAG_INCLUDE_ONNX_H
#define ELAG_INCLUDE_ONNX_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes net as ONNX at path (atomically). The graph takes the already-normalised input
 * "input", (N, features) for a network without spatial layers, else (N, C, H, W), with a
 * symbolic batch N, and gives "logits" (N, classes): Gemm (transB = 1) and Conv with batch
 * norm folded in, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten. Weights are
 * written dense whatever their format (pruned entries as zeros). */
elag_status elag_net_save_onnx(const elag_net_t *net, const char *path);

#define ELAG_IMPORT_OPTIONS_VERSION 1

typedef struct elag_import_options {
    unsigned int version;         /* ELAG_IMPORT_OPTIONS_VERSION */
    const char *const *overrides; /* config overrides "key.path=value" (as --set), or NULL */
    int n_overrides;
} elag_import_options;

#define ELAG_IMPORT_OPTIONS_INIT                                                                   \
    {                                                                                              \
        ELAG_IMPORT_OPTIONS_VERSION, NULL, 0                                                       \
    }

#define ELAG_IMPORT_RESULT_VERSION 1
#define ELAG_IMPORT_MAX_LAYERS     32

/* What elag_import_onnx made. */
typedef struct elag_import_result {
    unsigned int version; /* set by the caller: ELAG_IMPORT_RESULT_VERSION */
    int n_layers;
    char layers[ELAG_IMPORT_MAX_LAYERS][160]; /* "fc1      linear 300 <- Gemm 'fc1'" */
    int classes;
    int input_shape[3]; /* per sample (C, H, W); flat features are (F, 1, 1) */
} elag_import_result;

#define ELAG_IMPORT_RESULT_INIT                                                                    \
    {                                                                                              \
        ELAG_IMPORT_RESULT_VERSION, 0, {{0}}, 0,                                                   \
        {                                                                                          \
            0, 0, 0                                                                                \
        }                                                                                          \
    }

/* Reads the ONNX model at onnx_path (a chain of Gemm, MatMul + Add, Conv,
 * BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape to
 * (N, -1); Identity and Dropout are skipped), and writes an elag checkpoint at out_path:
 * the weights (FLOAT16, BFLOAT16 and DOUBLE initializers converted to F32), masks of ones,
 * no optimizer state, and a config whose model.layers describe the network with elag's
 * default layer names; opts->overrides set the other keys (data.*, train.*). An operator
 * elag cannot map, or a file that is not an ONNX model, is ELAG_ERR_INPUT naming the node
 * or the file. opts and result may be NULL. */
elag_status elag_import_onnx(const char *onnx_path, const char *out_path,
                             const elag_import_options *opts, elag_import_result *result);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_ONNX_H */
