/*
 * Private to host/cuda/: the CUDA backend's context (b->ctx) and the pieces its files
 * share. cuda_backend.c creates and destroys the context and fills the table from the
 * installers below; each op file keeps its functions static.
 */
#ifndef ELAG_CUDA_CUDA_CTX_H
#define ELAG_CUDA_CUDA_CTX_H

#include "backend/backend.h"
#include "cuda/cuda_check.h"

#include <stddef.h>

typedef struct elag_cuda_ctx {
    int device;                 /* CUDA ordinal */
    char name[16];              /* "cuda:N", b->name points here */
    char device_name[256];      /* cudaDeviceProp.name */
    int cc_major, cc_minor;     /* compute capability (what supports() weighs) */
    cudaStream_t stream;        /* every op of this backend runs on it, in order */
    cublasHandle_t blas;        /* bound to stream, workspace below, math mode pinned */
    cusparseHandle_t sparse;    /* bound to stream (sparse formats use it) */
    void *workspace;            /* device, workspace_bytes: cuBLAS workspace */
    size_t workspace_bytes;
    void *scratch;              /* device, scratch_bytes: mask_select state, xent partials;
                                 * grown on demand */
    size_t scratch_bytes;
    unsigned long long *counter; /* device, 1: count_nonzero result */
    int use_pool;               /* cudaMallocAsync/cudaFreeAsync are supported */
    int tf32;                   /* cuBLAS may use TF32 tensor cores (off by default) */
} elag_cuda_ctx;

/* The context of b with the calling thread's current device set to b's device, so ops
 * called from any host thread (sweep workers) reach the right GPU. */
elag_status elag_cuda_enter(elag_backend *b, elag_cuda_ctx **ctx_out);

/* Device memory of `bytes` (not zeroed), stream-ordered on ctx->stream when pools are
 * supported. Out of memory gives ELAG_ERR_NOMEM with requested and free bytes. */
elag_status elag_cuda_dev_alloc(elag_cuda_ctx *ctx, size_t bytes, void **out);
/* Frees memory from elag_cuda_dev_alloc after the work queued so far; NULL does nothing. */
void elag_cuda_dev_free(elag_cuda_ctx *ctx, void *p);
/* *out = ctx->scratch, grown to at least `bytes` first (contents not kept). */
elag_status elag_cuda_scratch(elag_cuda_ctx *ctx, size_t bytes, void **out);

/* Fill the table entries of each file. */
void elag_cuda_install_memory_ops(elag_backend *b); /* cuda_memory.c: alloc .. sync */
void elag_cuda_install_blas_ops(elag_backend *b);   /* cuda_blas.c: gemm */
void elag_cuda_install_kernel_ops(elag_backend *b); /* cuda_ops.c: kernels/ launchers */
void elag_cuda_install_layer_ops(elag_backend *b);  /* cuda_layers.c: conv, pool, norm, dropout */
void elag_cuda_install_sparse_ops(elag_backend *b); /* cuda_sparse.c: cuSPARSE SpMM, epilogue */

/* Math mode of the cuBLAS handle for ctx->tf32 (cuda_blas.c). */
elag_status elag_cuda_apply_math_mode(elag_cuda_ctx *ctx);

#endif /* ELAG_CUDA_CUDA_CTX_H */
