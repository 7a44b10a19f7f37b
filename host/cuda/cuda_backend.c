/*
 * The CUDA backend's lifecycle: counting devices, opening one (stream, cuBLAS and
 * cuSPARSE handles, workspace, memory pool) and closing it. The ops live in
 * cuda_memory.c, cuda_blas.c, cuda_ops.c and cuda_layers.c (the last two call kernels/).
 * On a machine without a GPU or driver the runtime reports an error from
 * cudaGetDeviceCount; that is simply zero devices, and the CPU backends carry on.
 */
#include "cuda/cuda_backend.h"

#include "core/check.h"
#include "cuda/cuda_ctx.h"
#include "cuda/cuda_sparse.h"
#include "cuda/cuda_sparse_train.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* cuBLAS's recommended workspace: 32 MiB on Hopper and later, 4 MiB before. */
#define ELAG_CUBLAS_WORKSPACE_HOPPER ((size_t)32 << 20)
#define ELAG_CUBLAS_WORKSPACE_OTHER ((size_t)4 << 20)

int elag_cuda_count_devices(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no device: not an error for the caller */
        return 0;
    }
    return n > 0 ? n : 0;
}

elag_status elag_cuda_enter(elag_backend *b, elag_cuda_ctx **ctx_out)
{
    elag_cuda_ctx *ctx = (elag_cuda_ctx *)b->ctx;
    int cur = -1;
    ELAG_CUDA_CHECK(cudaGetDevice(&cur));
    if (cur != ctx->device) ELAG_CUDA_CHECK(cudaSetDevice(ctx->device));
    *ctx_out = ctx;
    return ELAG_OK;
}

/* Frees what elag_cuda_ctx_open made, in reverse order; tolerates a partial context. */
static void elag_cuda_ctx_close(elag_cuda_ctx *ctx)
{
    if (ctx->stream) (void)cudaStreamSynchronize(ctx->stream);
    elag_cuda_dev_free(ctx, ctx->scratch);
    elag_cuda_dev_free(ctx, ctx->counter);
    if (ctx->sparse) (void)cusparseDestroy(ctx->sparse);
    if (ctx->blas) (void)cublasDestroy(ctx->blas);
    elag_cuda_dev_free(ctx, ctx->workspace); /* after cuBLAS stopped using it */
    if (ctx->stream) {
        (void)cudaStreamSynchronize(ctx->stream);
        (void)cudaStreamDestroy(ctx->stream);
    }
    (void)cudaGetLastError(); /* teardown errors are not the next op's problem */
}

static elag_status elag_cuda_ctx_open(elag_cuda_ctx *ctx, int device)
{
    struct cudaDeviceProp prop;
    int pools = 0;
    ctx->device = device;
    snprintf(ctx->name, sizeof ctx->name, "cuda:%d", device);
    ELAG_CUDA_CHECK(cudaSetDevice(device));
    ELAG_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    snprintf(ctx->device_name, sizeof ctx->device_name, "%s", prop.name);
    ctx->cc_major = prop.major;
    ctx->cc_minor = prop.minor;
    ELAG_CUDA_CHECK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device));
    ctx->use_pool = pools != 0;
    if (ctx->use_pool) {
        /* Keep freed blocks in this process's pool instead of returning them to the driver
         * at every synchronisation: training frees and reallocates the same sizes. */
        cudaMemPool_t pool;
        uint64_t keep = UINT64_MAX;
        ELAG_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
        ELAG_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    }
    ELAG_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));

    ctx->workspace_bytes =
        prop.major >= 9 ? ELAG_CUBLAS_WORKSPACE_HOPPER : ELAG_CUBLAS_WORKSPACE_OTHER;
    ELAG_TRY(elag_cuda_dev_alloc(ctx, ctx->workspace_bytes, &ctx->workspace));
    ELAG_CUDA_CHECK(cublasCreate(&ctx->blas));
    /* cublasSetStream resets the workspace to cuBLAS's own pool: set the stream first. */
    ELAG_CUDA_CHECK(cublasSetStream(ctx->blas, ctx->stream));
    ELAG_CUDA_CHECK(cublasSetWorkspace(ctx->blas, ctx->workspace, ctx->workspace_bytes));
    ELAG_CUDA_CHECK(cublasSetPointerMode(ctx->blas, CUBLAS_POINTER_MODE_HOST));
    /* No atomics: the same GEMM gives the same bits every run. */
    ELAG_CUDA_CHECK(cublasSetAtomicsMode(ctx->blas, CUBLAS_ATOMICS_NOT_ALLOWED));
    ctx->tf32 = 0;
    ELAG_TRY(elag_cuda_apply_math_mode(ctx));
    ELAG_CUDA_CHECK(cusparseCreate(&ctx->sparse));
    ELAG_CUDA_CHECK(cusparseSetStream(ctx->sparse, ctx->stream));

    void *counter = NULL;
    ELAG_TRY(elag_cuda_dev_alloc(ctx, sizeof(unsigned long long), &counter));
    ctx->counter = (unsigned long long *)counter;
    ELAG_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return ELAG_OK;
}

static void elag_cuda_destroy(elag_backend *b)
{
    if (b == NULL) return;
    elag_cuda_ctx *ctx = (elag_cuda_ctx *)b->ctx;
    if (ctx) {
        int cur = -1;
        if (cudaGetDevice(&cur) == cudaSuccess && cur != ctx->device)
            (void)cudaSetDevice(ctx->device);
        elag_cuda_ctx_close(ctx);
        free(ctx);
    }
    free(b);
}

/* What this device runs and in which arithmetic: everything in FP32 but Blocked-ELL SpMM
 * (cuda_sparse.c says when and how), and GEMMs in TF32 when cuda.tf32 is on. */
static elag_support elag_cuda_supports(elag_backend *b, elag_op op, const elag_op_query *q,
                                       char *why, size_t why_len)
{
    const elag_cuda_ctx *ctx = (const elag_cuda_ctx *)b->ctx;
    switch (op) {
    case ELAG_OP_CONV:
        if (why && why_len)
            snprintf(why, why_len, "no direct convolution on CUDA (conv2d uses im2col + cuBLAS)");
        return ELAG_SUPPORT_NO;
    case ELAG_OP_SPARSE_TRAIN: /* opt-in until a GPU has run it (cuda_sparse_train.h) */
        return elag_cuda_sparse_train_supports(why, why_len);
    case ELAG_OP_SPARSE_MM:
        return elag_cuda_sparse_supports(ctx->cc_major, ctx->cc_minor, ctx->name, q, why, why_len);
    case ELAG_OP_GEMM:
        if (!q->tf32 && !ctx->tf32) return ELAG_SUPPORT_FP32;
        if (ctx->cc_major < 8) { /* cuBLAS would quietly compute in FP32 */
            if (q->tf32 && why && why_len)
                snprintf(why, why_len,
                         "TF32 tensor cores need compute capability 8.0+; %s is "
                         "%d.%d",
                         ctx->name, ctx->cc_major, ctx->cc_minor);
            return q->tf32 ? ELAG_SUPPORT_NO : ELAG_SUPPORT_FP32;
        }
        if (why && why_len) snprintf(why, why_len, "cuBLAS TF32 tensor-core math (cuda.tf32)");
        return ELAG_SUPPORT_TF32;
    default:
        return ELAG_SUPPORT_FP32;
    }
}

elag_status elag_cuda_backend_init(int device_index, elag_backend **out)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_cuda_backend_init: out is NULL");
    *out = NULL;
    int count = elag_cuda_count_devices();
    if (count == 0) return elag_fail(ELAG_ERR_NO_DEVICE, "no CUDA device found");
    if (device_index < 0 || device_index >= count)
        return elag_fail(ELAG_ERR_NO_DEVICE, "no CUDA device %d (%d found)", device_index,
                         count);

    elag_backend *b = calloc(1, sizeof *b);
    elag_cuda_ctx *ctx = calloc(1, sizeof *ctx);
    if (b == NULL || ctx == NULL) {
        free(b);
        free(ctx);
        return elag_fail(ELAG_ERR_NOMEM, "out of host memory opening cuda:%d", device_index);
    }
    elag_status st = elag_cuda_ctx_open(ctx, device_index);
    if (st != ELAG_OK) {
        elag_cuda_ctx_close(ctx);
        free(ctx);
        free(b);
        return st;
    }
    b->name = ctx->name;
    b->kind = ELAG_DEVICE_CUDA;
    b->device_index = device_index;
    b->threads = 1; /* one host thread drives the stream */
    b->ctx = ctx;
    b->destroy = elag_cuda_destroy;
    b->supports = elag_cuda_supports;
    elag_cuda_install_memory_ops(b);
    elag_cuda_install_blas_ops(b);
    elag_cuda_install_kernel_ops(b);
    elag_cuda_install_layer_ops(b);
    elag_cuda_install_sparse_ops(b);
    elag_cuda_install_sparse_train_ops(b);
    *out = b;
    return ELAG_OK;
}

int elag_cuda_set_tf32(elag_backend *b, int on)
{
    if (b == NULL || b->kind != ELAG_DEVICE_CUDA || b->ctx == NULL)
        return (int)elag_fail(ELAG_ERR_USAGE, "cuda.tf32: the backend is not a CUDA backend");
    elag_cuda_ctx *ctx = NULL;
    elag_status st = elag_cuda_enter(b, &ctx);
    if (st != ELAG_OK) return (int)st;
    int prev = ctx->tf32;
    ctx->tf32 = on != 0;
    st = elag_cuda_apply_math_mode(ctx);
    if (st != ELAG_OK) {
        ctx->tf32 = prev;
        return (int)st;
    }
    return prev;
}

const char *elag_cuda_device_name(const elag_backend *b)
{
    if (b == NULL || b->kind != ELAG_DEVICE_CUDA || b->ctx == NULL) return "";
    return ((const elag_cuda_ctx *)b->ctx)->device_name;
}
