/*
 * Status checks for the three CUDA-family libraries, built on one generic function so a
 * cuSPARSE status is never read as a CUDA one. ELAG_CUDA_CHECK(call) picks the checker
 * from the type of `call` (C11 _Generic: cudaError_t, cublasStatus_t, cusparseStatus_t),
 * evaluates `call` once, and on failure records
 *   "cuda: <call> failed: <error name>: <error string> (<file>:<line>)"
 * as ELAG_ERR_DEVICE and returns it from the enclosing function.
 */
#ifndef ELAG_CUDA_CUDA_CHECK_H
#define ELAG_CUDA_CUDA_CHECK_H

#include "elag/elag.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#ifndef DISABLE_CUSPARSE_DEPRECATED
#define DISABLE_CUSPARSE_DEPRECATED /* the legacy API we never call warns on every include */
#endif
#include <cusparse.h>

typedef enum elag_cuda_lib {
    ELAG_CUDA_LIB_RUNTIME = 0,
    ELAG_CUDA_LIB_CUBLAS = 1,
    ELAG_CUDA_LIB_CUSPARSE = 2
} elag_cuda_lib;

/* Records the failure of `call` (source text) with library status `code`, its symbolic
 * name and description, at file:line; returns ELAG_ERR_DEVICE. For the runtime it also
 * clears the runtime's last-error slot, so a recoverable error is not reported again by
 * the next kernel launch check. */
elag_status elag_cuda_fail(elag_cuda_lib lib, int code, const char *error_name,
                           const char *error_string, const char *call, const char *file,
                           int line);

/* ELAG_OK on success, else elag_cuda_fail(...). Called through ELAG_CUDA_CHECK. */
elag_status elag_cuda_check_runtime(cudaError_t e, const char *call, const char *file, int line);
elag_status elag_cuda_check_cublas(cublasStatus_t s, const char *call, const char *file,
                                   int line);
elag_status elag_cuda_check_cusparse(cusparseStatus_t s, const char *call, const char *file,
                                     int line);

/* The status of `call` as an elag_status; `call` is evaluated once (the _Generic
 * controlling expression is not evaluated). A plain int (an enum constant) matches no
 * library and does not compile: the checker must know whose status it reads. */
#define ELAG_CUDA_STATUS(call, text)                                                               \
    _Generic((call),                                                                               \
        cudaError_t: elag_cuda_check_runtime,                                                      \
        cublasStatus_t: elag_cuda_check_cublas,                                                    \
        cusparseStatus_t: elag_cuda_check_cusparse)((call), (text), __FILE__, __LINE__)

#define ELAG_CUDA_CHECK(call)                                                                      \
    do {                                                                                           \
        elag_status elag_cuda_s_ = ELAG_CUDA_STATUS(call, #call);                                  \
        if (elag_cuda_s_ != ELAG_OK) return elag_cuda_s_;                                          \
    } while (0)

/* Like ELAG_CUDA_CHECK but keeps the status in `st` and jumps to a cleanup label. */
#define ELAG_CUDA_CHECK_GOTO(st, call, label)                                                      \
    do {                                                                                           \
        (st) = ELAG_CUDA_STATUS(call, #call);                                                      \
        if ((st) != ELAG_OK) goto label;                                                           \
    } while (0)

#endif /* ELAG_CUDA_CUDA_CHECK_H */
