/*
 * Private to host/cuda/ (and its tests): the parts of cuda_sparse.c that need no GPU, so
 * tests/test_ops_sparse.c can check them on any machine that builds the CUDA backend: how a
 * cuSPARSE status is read while sparse_create probes a dense layout, and what the backend
 * can run in which arithmetic (supports()).
 */
#ifndef ELAG_CUDA_CUDA_SPARSE_H
#define ELAG_CUDA_CUDA_SPARSE_H

#include "backend/backend.h"
#include "cuda/cuda_check.h"

/* The elag_status a cuSPARSE status becomes in cuda_sparse.c (pure: records nothing).
 * *may_fall_back is 1 only for CUSPARSE_STATUS_NOT_SUPPORTED, the one status by which
 * cuSPARSE refuses a valid request (an algorithm that does not take row-major dense
 * matrices), so sparse_create may retry column-major; that is ELAG_ERR_UNSUPPORTED.
 * CUSPARSE_STATUS_INVALID_VALUE means elag passed a bad argument: ELAG_ERR_INTERNAL,
 * never a fallback, so the bug shows. Every other failure is ELAG_ERR_DEVICE. */
elag_status elag_cuda_sparse_status(cusparseStatus_t s, int *may_fall_back);

/* Records the failure of cuSPARSE call `call` at file:line (the generic check's message,
 * with a note for INVALID_VALUE) and returns elag_cuda_sparse_status's status for s. */
elag_status elag_cuda_sparse_fail(cusparseStatus_t s, const char *call, const char *file, int line);

/* supports() for ELAG_OP_SPARSE_MM on a device of compute capability cc_major.cc_minor
 * (q already checked by the wrapper): CSR in FP32; Blocked-ELL in TF32 from 8.0 on, NO
 * before. `device` names the device in the reason. */
elag_support elag_cuda_sparse_supports(int cc_major, int cc_minor, const char *device,
                                       const elag_op_query *q, char *why, size_t why_len);

#endif /* ELAG_CUDA_CUDA_SPARSE_H */
