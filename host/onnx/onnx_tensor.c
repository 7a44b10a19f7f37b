/*
 * ONNX file reading and tensor decoding for the import (onnx_tensor.h). raw_data is
 * little-endian by the ONNX spec, as every machine elag builds for; values are read with
 * memcpy (a protobuf buffer need not be aligned for float).
 */
#include "onnx/onnx_tensor.h"

#include "core/check.h"
#include "io/atomic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

elag_status elag_onnx_read(const char *path, Onnx__ModelProto **out)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    ELAG_TRY(elag_read_file(path, &buf, &len));
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf);
    free(buf);
    if (!m)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: not an ONNX model (protobuf cannot parse its %zu "
                         "bytes: truncated or corrupt?)",
                         path, len);
    if (!m->graph || m->graph->n_node == 0) {
        onnx__model_proto__free_unpacked(m, NULL);
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: not an ONNX model (no graph or no nodes: "
                         "truncated or corrupt?)",
                         path);
    }
    *out = m;
    return ELAG_OK;
}

int64_t elag_onnx_tensor_count(const Onnx__TensorProto *t)
{
    int64_t n = 1;
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0 || (t->dims[d] > 0 && n > INT64_MAX / 8 / t->dims[d])) return -1;
        n *= t->dims[d];
    }
    return n;
}

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24); /* subnormal */
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 0x400), exp - 25);
    return sign ? -v : v;
}

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static const char *type_name(int t)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&onnx__tensor_proto__data_type__descriptor, t);
    return v ? v->name : "unknown";
}

elag_status elag_onnx_tensor_f32(const Onnx__TensorProto *t, const char *what, float **out,
                                 size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    const char *name = t->name ? t->name : "";
    if (t->n_external_data > 0 ||
        (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: tensor '%s' keeps its data in an external file; "
                         "save the model with its weights inside",
                         what, name);
    int64_t count = elag_onnx_tensor_count(t);
    if (count < 0) return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' has a bad shape", what, name);
    int type = t->data_type;
    size_t width = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT    ? 4
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? 8
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
                           type == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16
                       ? 2
                       : 0;
    if (width == 0)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: tensor '%s' is %s; elag imports FLOAT, and "
                         "converts FLOAT16, BFLOAT16 and DOUBLE to it",
                         what, name, type_name(type));
    size_t have = t->has_raw_data                                 ? t->raw_data.len / width
                  : type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT  ? t->n_float_data
                  : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data
                                                                  : t->n_int32_data;
    if ((t->has_raw_data && t->raw_data.len % width) || have != (size_t)count)
        return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' holds %zu values, its shape says %lld",
                         what, name, have, (long long)count);
    float *v = malloc((size_t)(count ? count : 1) * sizeof *v);
    if (!v) return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", what);
    const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
    for (int64_t i = 0; i < count; i++) {
        switch (type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
            if (raw)
                memcpy(&v[i], raw + 4 * i, 4);
            else
                v[i] = t->float_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
            double d;
            if (raw)
                memcpy(&d, raw + 8 * i, 8);
            else
                d = t->double_data[i];
            if (isfinite(d) && fabs(d) > 3.4028234663852886e38) {
                free(v);
                return elag_fail(ELAG_ERR_INPUT,
                                 "%s: DOUBLE tensor '%s' holds %g at %lld, "
                                 "outside F32's range",
                                 what, name, d, (long long)i);
            }
            v[i] = (float)d;
            break;
        }
        default: { /* FLOAT16, BFLOAT16: raw bytes or the low 16 bits of int32_data */
            uint16_t h;
            if (raw)
                memcpy(&h, raw + 2 * i, 2);
            else
                h = (uint16_t)t->int32_data[i];
            v[i] = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ? half_to_float(h)
                                                                  : bf16_to_float(h);
        }
        }
        if (!isfinite(v[i])) {
            const char *bad = isnan(v[i]) ? "NaN" : "Inf";
            free(v);
            return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' holds %s at %lld", what, name, bad,
                             (long long)i);
        }
    }
    *out = v;
    *n_out = (size_t)count;
    return ELAG_OK;
}

elag_status elag_onnx_tensor_i64(const Onnx__TensorProto *t, const char *what, int64_t *out,
                                 size_t max, size_t *n_out)
{
    const char *name = t->name ? t->name : "";
    int64_t count = elag_onnx_tensor_count(t);
    int type = t->data_type;
    int wide = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    if (!wide && type != ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
        return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' is %s, expected INT64", what, name,
                         type_name(type));
    size_t width = wide ? 8 : 4;
    size_t have = t->has_raw_data ? t->raw_data.len / width
                  : wide          ? t->n_int64_data
                                  : t->n_int32_data;
    if (count < 0 || have != (size_t)count || (size_t)count > max)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: tensor '%s' holds %zu values (shape: %lld, at "
                         "most %zu expected)",
                         what, name, have, (long long)count, max);
    for (size_t i = 0; i < have; i++) {
        if (t->has_raw_data && wide)
            memcpy(&out[i], t->raw_data.data + 8 * i, 8);
        else if (t->has_raw_data) {
            int32_t x;
            memcpy(&x, t->raw_data.data + 4 * i, 4);
            out[i] = x;
        } else
            out[i] = wide ? t->int64_data[i] : t->int32_data[i];
    }
    *n_out = have;
    return ELAG_OK;
}
