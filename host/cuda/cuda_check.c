/*
 * The generic CUDA-family failure and its three thin per-library checkers
 * (see cuda_check.h). Messages name the call, the library's own error name and
 * text, and the source position, e.g.
 *   cuda: cudaMemcpyAsync(...) failed: cudaErrorInvalidValue (1): invalid argument
 *   (host/cuda/cuda_memory.c:97)
 */
#include "cuda/cuda_check.h"

#include <string.h>

/* "/abs/path/host/cuda/x.c" -> "host/cuda/x.c": the part a reader finds in the repo. */
static const char *elag_cuda_short_path(const char *file)
{
    const char *best = NULL;
    for (const char *p = file; (p = strstr(p, "host/")) != NULL; p++) best = p;
    if (best == NULL)
        for (const char *p = file; (p = strstr(p, "kernels/")) != NULL; p++) best = p;
    return best ? best : file;
}

elag_status elag_cuda_fail(elag_cuda_lib lib, int code, const char *error_name,
                           const char *error_string, const char *call, const char *file,
                           int line)
{
    if (lib == ELAG_CUDA_LIB_RUNTIME) (void)cudaGetLastError();
    /* The error name says which library failed (cudaError..., CUBLAS_STATUS_...,
     * CUSPARSE_STATUS_...); the number is for names this toolkit does not know. */
    if (error_name == NULL) error_name = "unknown status";
    return elag_fail(ELAG_ERR_DEVICE, "cuda: %s failed: %s (%d): %s (%s:%d)", call, error_name,
                     code, error_string ? error_string : "no description",
                     elag_cuda_short_path(file), line);
}

elag_status elag_cuda_check_runtime(cudaError_t e, const char *call, const char *file, int line)
{
    if (e == cudaSuccess) return ELAG_OK;
    return elag_cuda_fail(ELAG_CUDA_LIB_RUNTIME, (int)e, cudaGetErrorName(e),
                          cudaGetErrorString(e), call, file, line);
}

elag_status elag_cuda_check_cublas(cublasStatus_t s, const char *call, const char *file, int line)
{
    if (s == CUBLAS_STATUS_SUCCESS) return ELAG_OK;
    return elag_cuda_fail(ELAG_CUDA_LIB_CUBLAS, (int)s, cublasGetStatusName(s),
                          cublasGetStatusString(s), call, file, line);
}

elag_status elag_cuda_check_cusparse(cusparseStatus_t s, const char *call, const char *file,
                                     int line)
{
    if (s == CUSPARSE_STATUS_SUCCESS) return ELAG_OK;
    return elag_cuda_fail(ELAG_CUDA_LIB_CUSPARSE, (int)s, cusparseGetErrorName(s),
                          cusparseGetErrorString(s), call, file, line);
}
