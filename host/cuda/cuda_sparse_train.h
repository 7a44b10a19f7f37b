/*
 * Private to host/cuda/ (and its tests): the sparse training ops on CUDA (backend.h,
 * "sparse training"), cuda_sparse_train.c. They run, but no GPU has run them yet, so
 * supports(ELAG_OP_SPARSE_TRAIN) answers ELAG_SUPPORT_OPT_IN: `train.sparse_compute: on`
 * and `elag bench layer` use them, `auto` keeps the dense masked step on the GPU.
 */
#ifndef ELAG_CUDA_CUDA_SPARSE_TRAIN_H
#define ELAG_CUDA_CUDA_SPARSE_TRAIN_H

#include "backend/backend.h"

#include <stdint.h>

/* Why ELAG_OP_SPARSE_TRAIN is only opt-in here (one line, for supports()'s `why`). Drop the
 * opt-in (answer FP32) once tests/test_cuda_sparse_train.c has passed on a GPU. */
#define ELAG_CUDA_SPARSE_TRAIN_WHY                                                                 \
    "the CUDA sparse training step (cuSPARSE SpMM and SDDMM) has not been verified on a GPU "      \
    "yet: train.sparse_compute 'auto' trains dense here, 'on' runs it"

/* supports() for ELAG_OP_SPARSE_TRAIN on CUDA: ELAG_SUPPORT_OPT_IN, with
 * ELAG_CUDA_SPARSE_TRAIN_WHY in why (why_len bytes; why may be NULL). */
elag_support elag_cuda_sparse_train_supports(char *why, size_t why_len);

/* W^T's CSR from W's (host arrays; a counting sort, no device): W (rows, cols) with indptr
 * (rows + 1) and indices (indptr[rows]) in CSR order; writes t_indptr (cols + 2: the first
 * cols + 1 are W^T's row pointers, the last is scratch), t_indices (nnz: W's row of each
 * W^T entry, increasing within a W^T row) and t_src (nnz: W's CSR position of each). What
 * sparse_pattern_create runs once per mask update; exposed so it is tested without a GPU. */
void elag_cuda_pattern_transpose(int rows, int cols, const int32_t *indptr, const int32_t *indices,
                                 int32_t *t_indptr, int32_t *t_indices, int32_t *t_src);

/* How p's products run (cuSPARSE, with the SDDMM description it took at create, or the own
 * kernels), for tests and logs; "" for NULL or a pattern of another backend. */
const char *elag_cuda_pattern_paths(const elag_sparse_pattern *p);

/* For tests: p's products run on the own kernels of kernels/sparse_pattern.cu from now on,
 * whatever cuSPARSE takes, so the fallbacks are checked on a GPU too. */
void elag_cuda_pattern_use_own_kernels(elag_sparse_pattern *p);

void elag_cuda_install_sparse_train_ops(elag_backend *b);

#endif /* ELAG_CUDA_CUDA_SPARSE_TRAIN_H */
