/*
 * The CUDA backend's entry points (host/cuda/): device count, constructor, and the one
 * switch of its behaviour (TF32 GEMMs). host/backend/backend.c reaches these through its
 * single #ifdef ELAG_HAVE_CUDA; everything else goes through the elag_backend table.
 */
#ifndef ELAG_CUDA_CUDA_BACKEND_H
#define ELAG_CUDA_CUDA_BACKEND_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of CUDA devices; 0 (no message, no error recorded) when the runtime reports any
 * error: no driver, no device, a driver too old for this toolkit. */
int elag_cuda_count_devices(void);

/* Opens device `device_index` (0-based): a stream, cuBLAS and cuSPARSE handles, the cuBLAS
 * workspace, FP32 GEMMs (TF32 off). ELAG_ERR_NO_DEVICE when there is no such device. The
 * caller owns *out and frees it with elag_backend_free. */
elag_status elag_cuda_backend_init(int device_index, elag_backend **out);

/* Turns TF32 tensor-core GEMMs on (on != 0) or off for backend b (config key cuda.tf32;
 * default off: plain FP32). Returns the previous setting (0 or 1), or a negative
 * elag_status when b is not a CUDA backend or cuBLAS refuses the math mode. */
int elag_cuda_set_tf32(elag_backend *b, int on);

/* The GPU's marketing name ("NVIDIA H200"), or "" when b is not a CUDA backend. */
const char *elag_cuda_device_name(const elag_backend *b);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_CUDA_CUDA_BACKEND_H */
