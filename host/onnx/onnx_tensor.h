/*
 * What onnx_import.c needs from a parsed ONNX file: the file read and unpacked with one
 * clear error, and a tensor (an initializer or a Constant node's value) as F32 or INT64
 * values with the conversions onnx.h documents.
 */
#ifndef ELAG_ONNX_ONNX_TENSOR_H
#define ELAG_ONNX_ONNX_TENSOR_H

#include "elag/common.h"
#include "onnx/onnx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Reads and unpacks path; ELAG_ERR_INPUT "<path>: not an ONNX model (...)" when protobuf
 * cannot parse it or it has no graph. Free with onnx__model_proto__free_unpacked. */
elag_status elag_onnx_read(const char *path, Onnx__ModelProto **out);

/* Elements of t (the product of its dims; 1 for a scalar); -1 for a negative dim. */
int64_t elag_onnx_tensor_count(const Onnx__TensorProto *t);

/* t's values as F32 (*out malloc'd, *n of them): FLOAT as is, FLOAT16, BFLOAT16 and DOUBLE
 * converted; other types, external data or a size that does not match its dims are
 * ELAG_ERR_INPUT naming `what` (the file and the node). */
elag_status elag_onnx_tensor_f32(const Onnx__TensorProto *t, const char *what, float **out,
                                 size_t *n);

/* t's values as INT64 (INT64 or INT32 tensors), at most max of them; ELAG_ERR_INPUT else. */
elag_status elag_onnx_tensor_i64(const Onnx__TensorProto *t, const char *what, int64_t *out,
                                 size_t max, size_t *n);

#endif /* ELAG_ONNX_ONNX_TENSOR_H */
