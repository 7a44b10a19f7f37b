/*
 * Bias kernels: broadcast add over rows, and the bias gradient as a column reduction.
 * The reduction is deterministic (fixed tree, no atomics) so a training step gives the
 * same result every run, and sums in double like the reference.
 */
#include "elag_kernels.h"
#include "launch.cuh"

#define BIAS_TILE_X 32 /* columns per block: one warp reads 32 adjacent floats of a row */
#define BIAS_TILE_Y 8  /* row lanes per block */

static __global__ void bias_add_kernel(float *y, const float *bias, size_t total, int cols)
{
    ELAG_GRID_LOOP(i, total) y[i] += bias[i % (size_t)cols];
}

/* Block (32, 8) owns 32 columns; thread (x, y) sums rows y, y + 8, ... of its column, then
 * the 8 partial sums of each column are added in a fixed order. */
static __global__ void bias_grad_kernel(float *db, const float *dy, int rows, int cols)
{
    __shared__ double part[BIAS_TILE_Y][BIAS_TILE_X + 1];
    int c = blockIdx.x * BIAS_TILE_X + threadIdx.x;
    double s = 0.0; /* double like the reference: a batch-long sum */
    if (c < cols)
        for (int r = threadIdx.y; r < rows; r += BIAS_TILE_Y) s += dy[(size_t)r * cols + c];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        double t = 0.0;
        for (int j = 0; j < BIAS_TILE_Y; j++) t += part[j][threadIdx.x];
        db[c] = (float)t;
    }
}

extern "C" cudaError_t elag_cuda_bias_add(float *y, const float *bias, int rows, int cols,
                                          cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    size_t total = (size_t)rows * (size_t)cols;
    bias_add_kernel<<<elag_grid_for(total), ELAG_BLOCK, 0, stream>>>(y, bias, total, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_bias_grad(float *db, const float *dy, int rows, int cols,
                                           cudaStream_t stream)
{
    if (cols <= 0) return cudaSuccess;
    if (rows < 0) rows = 0;
    dim3 block(BIAS_TILE_X, BIAS_TILE_Y);
    unsigned grid = (unsigned)((cols + BIAS_TILE_X - 1) / BIAS_TILE_X);
    bias_grad_kernel<<<grid, block, 0, stream>>>(db, dy, rows, cols);
    return cudaGetLastError();
}
