/*
 * Memory ops of the CUDA backend: zeroed allocation from the stream-ordered pool
 * (cudaMallocAsync, or cudaMalloc where pools are unsupported), copies on the backend's
 * stream, synchronisation, and the growable scratch buffer of mask_select.
 * Copies from the host return once the host buffer may be reused; copies to the host
 * return once the data is there. Device-to-device copies and frees stay asynchronous.
 */
#include "core/check.h"
#include "cuda/cuda_ctx.h"

elag_status elag_cuda_dev_alloc(elag_cuda_ctx *ctx, size_t bytes, void **out)
{
    *out = NULL;
    if (bytes == 0) bytes = 1; /* a valid, distinct pointer, like malloc(1) */
    cudaError_t e = ctx->use_pool ? cudaMallocAsync(out, bytes, ctx->stream)
                                  : cudaMalloc(out, bytes);
    if (e == cudaErrorMemoryAllocation) {
        size_t free_b = 0, total_b = 0;
        (void)cudaGetLastError(); /* recoverable: do not fail the next launch check */
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
        *out = NULL;
        return elag_fail(ELAG_ERR_NOMEM,
                         "CUDA out of memory: requested %zu bytes, %zu bytes free (of %zu on %s)",
                         bytes, free_b, total_b, ctx->name);
    }
    if (e != cudaSuccess) {
        *out = NULL;
        return elag_cuda_check_runtime(e, ctx->use_pool ? "cudaMallocAsync" : "cudaMalloc",
                                       __FILE__, __LINE__);
    }
    return ELAG_OK;
}

void elag_cuda_dev_free(elag_cuda_ctx *ctx, void *p)
{
    if (p == NULL) return;
    cudaError_t e = ctx->use_pool ? cudaFreeAsync(p, ctx->stream) : cudaFree(p);
    if (e != cudaSuccess) (void)cudaGetLastError(); /* nothing useful to report from a free */
}

elag_status elag_cuda_scratch(elag_cuda_ctx *ctx, size_t bytes, void **out)
{
    if (ctx->scratch == NULL || ctx->scratch_bytes < bytes) {
        elag_cuda_dev_free(ctx, ctx->scratch); /* stream-ordered: queued users finish first */
        ctx->scratch = NULL;
        ctx->scratch_bytes = 0;
        /* Grow by half again so a slowly growing global scope does not reallocate each time. */
        size_t want = bytes + bytes / 2;
        if (want < bytes) want = bytes;
        elag_status st = elag_cuda_dev_alloc(ctx, want, &ctx->scratch);
        if (st != ELAG_OK && want > bytes) { /* no room for the margin: try the exact size */
            want = bytes;
            st = elag_cuda_dev_alloc(ctx, want, &ctx->scratch);
        }
        if (st != ELAG_OK) return st;
        ctx->scratch_bytes = want;
    }
    *out = ctx->scratch;
    return ELAG_OK;
}

static elag_status cuda_alloc(elag_backend *b, size_t bytes, void **out)
{
    elag_cuda_ctx *ctx;
    *out = NULL;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    void *p = NULL;
    ELAG_TRY(elag_cuda_dev_alloc(ctx, bytes, &p));
    elag_status st = ELAG_CUDA_STATUS(cudaMemsetAsync(p, 0, bytes, ctx->stream),
                                      "cudaMemsetAsync(p, 0, bytes, ctx->stream)");
    if (st != ELAG_OK) {
        elag_cuda_dev_free(ctx, p);
        return st;
    }
    *out = p;
    return ELAG_OK;
}

static void cuda_release(elag_backend *b, void *p)
{
    elag_cuda_ctx *ctx;
    if (p == NULL || elag_cuda_enter(b, &ctx) != ELAG_OK) return;
    elag_cuda_dev_free(ctx, p);
}

static elag_status cuda_to_device(elag_backend *b, void *dst, const void *src_host, size_t bytes)
{
    elag_cuda_ctx *ctx;
    if (bytes == 0) return ELAG_OK;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, ctx->stream));
    /* The caller may free or refill src_host as soon as we return (it may be pinned, in
     * which case the copy above would still be reading it). */
    ELAG_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_to_host(elag_backend *b, void *dst_host, const void *src, size_t bytes)
{
    elag_cuda_ctx *ctx;
    if (bytes == 0) return ELAG_OK;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    ELAG_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_copy(elag_backend *b, void *dst, const void *src, size_t bytes)
{
    elag_cuda_ctx *ctx;
    if (bytes == 0 || dst == src) return ELAG_OK;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream));
    return ELAG_OK;
}

static elag_status cuda_sync(elag_backend *b)
{
    elag_cuda_ctx *ctx;
    ELAG_TRY(elag_cuda_enter(b, &ctx));
    ELAG_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return ELAG_OK;
}

void elag_cuda_install_memory_ops(elag_backend *b)
{
    b->alloc = cuda_alloc;
    b->release = cuda_release;
    b->to_device = cuda_to_device;
    b->to_host = cuda_to_host;
    b->copy = cuda_copy;
    b->sync = cuda_sync;
}
