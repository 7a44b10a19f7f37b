/*
 * Row sums of a row-major matrix: the bias gradient of the feature-major layout, where a
 * row is one feature over the batch. One block per row and the fixed tree of reduce.cuh,
 * summed in double like the reference: deterministic, so a training step gives the same
 * bits every run.
 */
#include "elag_kernels.h"
#include "launch.cuh"
#include "reduce.cuh"

/* Block b sums rows b, b + gridDim.x, ...; thread t adds columns t, t + ELAG_REDUCE_BLOCK,
 * ... of the row in order, then the block tree adds the partial sums. cols == 0 gives 0. */
static __global__ void row_sum_kernel(float *out, const float *x, size_t rows, size_t cols)
{
    __shared__ double buf[ELAG_REDUCE_BLOCK];
    for (size_t r = blockIdx.x; r < rows; r += gridDim.x) { /* uniform over the block */
        const float *xr = x + r * cols;                     /* (cols) */
        double s = 0.0;
        for (size_t c = threadIdx.x; c < cols; c += ELAG_REDUCE_BLOCK) s += xr[c];
        s = elag_block_sum(s, buf);
        if (threadIdx.x == 0) out[r] = (float)s;
    }
}

extern "C" cudaError_t elag_cuda_row_sum(float *out, const float *x, int rows, int cols,
                                         cudaStream_t stream)
{
    if (rows <= 0) return cudaSuccess;
    size_t c = cols > 0 ? (size_t)cols : 0;
    row_sum_kernel<<<elag_grid_rows((size_t)rows), ELAG_REDUCE_BLOCK, 0, stream>>>(out, x,
                                                                                   (size_t)rows, c);
    return cudaGetLastError();
}
