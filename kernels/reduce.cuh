/*
 * Deterministic block reduction shared by the kernels that give one block a whole row
 * (row_sum.cu, batchnorm.cu). Each thread first sums its strided share of the row in a
 * fixed order; the block then adds the ELAG_REDUCE_BLOCK partial sums by a fixed binary
 * tree in shared memory. No atomics, and the tree depends only on the block size, so the
 * same input gives the same bits on every run and every GPU. Sums are in double, like
 * the long sums of the reference (host/cpu/cpu_ref.c).
 */
#ifndef ELAG_KERNELS_REDUCE_CUH
#define ELAG_KERNELS_REDUCE_CUH

#include <cuda_runtime.h>

#define ELAG_REDUCE_BLOCK 256 /* threads per block of a row kernel; a power of 2 */

/* The sum of v over the block's ELAG_REDUCE_BLOCK threads, returned to every thread.
 * buf: shared, ELAG_REDUCE_BLOCK doubles. Every thread of the block must call it (it
 * synchronises); on return buf may be reused at once. */
static __device__ __forceinline__ double elag_block_sum(double v, double *buf)
{
    buf[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = ELAG_REDUCE_BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    double total = buf[0];
    __syncthreads(); /* everyone has read buf[0] before a next call overwrites buf */
    return total;
}

#endif /* ELAG_KERNELS_REDUCE_CUH */
