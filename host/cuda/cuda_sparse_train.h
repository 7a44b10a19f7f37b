/*
 * Private to host/cuda/: the sparse training ops on CUDA (backend.h, "sparse training").
 * Not implemented yet: every entry refuses with ELAG_ERR_UNSUPPORTED and supports() says NO
 * for ELAG_OP_SPARSE_TRAIN, so a caller runs the dense masked step on the GPU instead.
 */
#ifndef ELAG_CUDA_CUDA_SPARSE_TRAIN_H
#define ELAG_CUDA_CUDA_SPARSE_TRAIN_H

#include "backend/backend.h"

/* Why ELAG_OP_SPARSE_TRAIN is not supported here (one line, for supports()'s `why`). */
#define ELAG_CUDA_SPARSE_TRAIN_WHY                                                                 \
    "no sparse training step on CUDA yet (cuSPARSE SpMM with a transposed op and "                 \
    "cusparseSDDMM are planned): the layer runs dense and masked"

void elag_cuda_install_sparse_train_ops(elag_backend *b);

#endif /* ELAG_CUDA_CUDA_SPARSE_TRAIN_H */
