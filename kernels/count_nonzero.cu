/*
 * Number of nonzero entries of a tensor (sparsity reports, mask checks): per-thread
 * counts, a warp shuffle sum, then one 64-bit atomic per block into a device counter
 * that the host reads back.
 */
#include "elag_kernels.h"
#include "launch.cuh"

static __global__ void count_nonzero_kernel(const float *x, size_t n, unsigned long long *count)
{
    __shared__ unsigned long long warp_sum[ELAG_BLOCK / 32];
    unsigned long long c = 0;
    ELAG_GRID_LOOP(i, n) c += x[i] != 0.0f; /* NaN != 0: counted, as in the reference */
    for (int off = 16; off > 0; off >>= 1) c += __shfl_down_sync(0xffffffffu, c, off);
    if (threadIdx.x % 32 == 0) warp_sum[threadIdx.x / 32] = c;
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long t = 0;
        for (int w = 0; w < ELAG_BLOCK / 32; w++) t += warp_sum[w];
        if (t) atomicAdd(count, t);
    }
}

extern "C" cudaError_t elag_cuda_count_nonzero(const float *x, size_t n, unsigned long long *count,
                                               cudaStream_t stream)
{
    cudaError_t e = cudaMemsetAsync(count, 0, sizeof *count, stream);
    if (e != cudaSuccess || n == 0) return e;
    count_nonzero_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(x, n, count);
    return cudaGetLastError();
}
