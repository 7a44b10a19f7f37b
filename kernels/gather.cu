/*
 * Gathers by an index vector: rows of a float matrix (a mini-batch of samples) and
 * int32 entries (their labels). idx lives on the device, so a shuffled epoch costs one
 * upload of the permutation, not one copy per batch.
 */
#include "elag_kernels.h"
#include "launch.cuh"

static __global__ void gather_rows_kernel(float *dst, const float *src, const int32_t *idx,
                                          size_t total, int cols)
{
    ELAG_GRID_LOOP(i, total)
    {
        size_t r = i / (size_t)cols, c = i % (size_t)cols;
        dst[i] = src[(size_t)idx[r] * (size_t)cols + c];
    }
}

static __global__ void gather_i32_kernel(int32_t *dst, const int32_t *src, const int32_t *idx,
                                         size_t rows)
{
    ELAG_GRID_LOOP(r, rows) dst[r] = src[idx[r]];
}

extern "C" cudaError_t elag_cuda_gather_rows(float *dst, const float *src, const int32_t *idx,
                                             int rows, int cols, cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    size_t total = (size_t)rows * (size_t)cols;
    gather_rows_kernel<<<elag_grid_for(total), ELAG_BLOCK, 0, stream>>>(dst, src, idx, total,
                                                                         cols);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_gather_i32(int32_t *dst, const int32_t *src, const int32_t *idx,
                                            int rows, cudaStream_t stream)
{
    if (rows <= 0) return cudaSuccess;
    gather_i32_kernel<<<elag_grid_for((size_t)rows), ELAG_BLOCK, 0, stream>>>(dst, src, idx,
                                                                             (size_t)rows);
    return cudaGetLastError();
}
