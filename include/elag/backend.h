/*
 * elag public API: devices. A device is where elag computes: "cpu" (OpenBLAS + OpenMP),
 * "cpu-ref" (naive loops, the reference), "cuda" / "cuda:N" (cuBLAS, cuSPARSE and elag's
 * kernels), or "auto" (cuda:0 when a CUDA device is present, else cpu).
 *
 * The CUDA backend lives in its own library, libelag_cuda (pkg-config elag-cuda, CMake
 * target elag::elag_cuda). A program linked with libelag alone needs no CUDA library: it
 * reports zero CUDA devices, "auto" picks the CPU and "cuda" fails with
 * ELAG_ERR_NO_DEVICE. Linked with libelag_cuda as well, the same calls reach the GPU.
 */
#ifndef ELAG_INCLUDE_BACKEND_H
#define ELAG_INCLUDE_BACKEND_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An open device (opaque). Free with elag_device_free. */
typedef struct elag_device elag_device_t;

#define ELAG_DEVICE_OPTIONS_VERSION 1

typedef struct elag_device_options {
    unsigned int version; /* ELAG_DEVICE_OPTIONS_VERSION */
    const char *device;   /* "auto" (also when NULL), "cpu", "cpu-ref", "cuda", "cuda:N" */
    int threads;          /* CPU threads (OpenMP and BLAS); <= 0: the cores that are free */
    int tf32;             /* CUDA: 1 = TF32 tensor-core GEMMs; 0 (default) = plain FP32 */
} elag_device_options;

#define ELAG_DEVICE_OPTIONS_INIT                                                                   \
    {                                                                                              \
        ELAG_DEVICE_OPTIONS_VERSION, NULL, 0, 0                                                    \
    }

/* Fills *opts with the defaults of `version` (ELAG_DEVICE_OPTIONS_VERSION);
 * ELAG_ERR_USAGE for a version this library does not know. */
elag_status elag_device_options_init(elag_device_options *opts, unsigned int version);

/* Opens the device opts names (opts NULL: the defaults, "auto"). ELAG_ERR_NO_DEVICE when
 * it does not exist (e.g. "cuda" without a GPU, or without libelag_cuda linked),
 * ELAG_ERR_USAGE for an unknown name. The caller owns *out. */
elag_status elag_device_open(elag_device_t **out, const elag_device_options *opts);

void elag_device_free(elag_device_t *dev); /* NULL does nothing */

/* "cpu", "cpu-ref" or "cuda:0"; valid while dev is open. */
const char *elag_device_name(const elag_device_t *dev);

/* 1 for a CUDA device, 0 for a CPU one. */
int elag_device_is_cuda(const elag_device_t *dev);

/* CPU threads the device computes with (1 for a CUDA device's host side). */
int elag_device_threads(const elag_device_t *dev);

/* What "auto" chose and why ("no CUDA device found, using the CPU (8 threads)"), or "". */
const char *elag_device_note(const elag_device_t *dev);

/* Number of CUDA devices: 0 when none is present or libelag_cuda is not linked. */
int elag_cuda_device_count(void);

/* 1 when this program was linked with libelag_cuda (whether or not a GPU is present). */
int elag_cuda_linked(void);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_BACKEND_H */
